use super::*;

#[test]
fn parses_send_with_options() {
    let command =
        parse_command(Language::En, "!bc", "!bc send #all:example.org @a:b --name Welcome --yes").unwrap();
    assert_eq!(
        command,
        Command::Send {
            audience: vec!["#all:example.org".into(), "@a:b".into()],
            name: Some("Welcome".into()),
            default: false,
            except: vec![],
            recursive: false,
            persona: None,
            at: None,
            r#in: None,
            yes: true,
            dry_run: false,
        }
    );
    let command = parse_command(Language::En, "!bc", "!bc send @a:b --as hr").unwrap();
    assert!(matches!(&command, Command::Send { persona: Some(name), .. } if name == "hr"), "{command:?}");
}

#[test]
fn parses_broadcast_ids_with_or_without_hash() {
    assert_eq!(
        parse_command(Language::En, "!bc", "!bc status #12").unwrap(),
        Command::Status { id: BroadcastId(12) }
    );
    assert_eq!(
        parse_command(Language::En, "!bc", "!bc confirm 3").unwrap(),
        Command::Confirm { id: BroadcastId(3) }
    );
}

#[test]
fn unknown_command_gets_a_caret_under_it_and_a_suggestion() {
    let answer = parse_command(Language::En, "!bc", "!bc sned #all:example.org").unwrap_err();
    assert!(!answer.ok);
    assert!(answer.markdown.contains("!bc sned #all:example.org\n    ^^^^\n```"), "{}", answer.markdown);
    assert!(answer.markdown.contains("'send'"), "{}", answer.markdown);
}

#[test]
fn bad_value_gets_a_caret_under_it() {
    let answer = parse_command(Language::En, "!bc", "!bc status twelve").unwrap_err();
    assert!(answer.markdown.contains("!bc status twelve\n           ^^^^^^\n```"), "{}", answer.markdown);
    assert!(answer.markdown.contains("Usage: !bc status <ID>"), "{}", answer.markdown);
}

#[test]
fn unknown_option_gets_a_caret_under_it() {
    let answer = parse_command(Language::En, "!bc", "!bc send @a:b --yse").unwrap_err();
    assert!(answer.markdown.contains("!bc send @a:b --yse\n              ^^^^^\n```"), "{}", answer.markdown);
}

#[test]
fn a_mistake_in_a_100000_character_line_gets_a_short_answer() {
    let line = format!("!bc send @x:example.org --yes {}", "x".repeat(100_000));
    let answer = parse_command(Language::En, "!bc", &format!("{line} --yse")).unwrap_err();
    assert!(answer.markdown.len() < 2_000, "{} bytes", answer.markdown.len());
    assert!(answer.markdown.contains("xxx --yse\n"), "the caret's window: {}", answer.markdown);
    let answer =
        parse_command(Language::En, "!bc", &format!("!bc status {}", "1".repeat(100_000))).unwrap_err();
    assert!(answer.markdown.len() < 2_000, "{} bytes", answer.markdown.len());
    assert!(answer.markdown.starts_with("Invalid value '1111"), "{}", answer.markdown);
}

#[test]
fn the_help_of_send_names_the_limits_as_they_are() {
    let help = help(Language::En, "!bc", Some("send")).markdown;
    let number = |n: usize| crate::base::i18n::number(Language::En, n as i64);
    let bytes = format!("at most {} bytes", number(MAX_CONTENT_BYTES));
    let words = format!("at most {} audience words", number(send::MAX_AUDIENCE_WORDS));
    let name = format!("(at most {} characters)", send::MAX_NAME_CHARS);
    for limit in [bytes, words, name] {
        assert!(help.contains(&limit), "{limit:?} in {help}");
    }
}

#[test]
fn missing_argument_points_past_the_end() {
    let answer = parse_command(Language::En, "!bc", "!bc status").unwrap_err();
    assert!(answer.markdown.contains("!bc status\n           ^\n```"), "{}", answer.markdown);
}

#[test]
fn help_lists_every_command_from_the_enum() {
    let answer = help(Language::En, "!bc", None);
    assert!(answer.ok);
    for name in [
        "help", "send", "confirm", "cancel", "list", "status", "edit", "redact", "poll", "defaults",
        "default", "audience",
    ] {
        assert!(
            answer.markdown.contains(&format!("`!bc {name}")),
            "{name} missing from\n{}",
            answer.markdown
        );
    }
    assert!(answer.markdown.contains("Prepare a broadcast"));
}

#[test]
fn help_of_one_command_shows_its_options() {
    let answer = help(Language::En, "!bc", Some("send"));
    assert!(answer.markdown.contains("--dry-run"), "{}", answer.markdown);
    assert!(answer.markdown.contains("--as <PERSONA>"), "{}", answer.markdown);
    assert!(!help(Language::En, "!bc", Some("nope")).ok);
}

/// Every subcommand and argument of every level, with the key its help comes from.
fn help_keys(command: &clap::Command, key: &str, found: &mut Vec<(String, Vec<String>)>) {
    for sub in command.get_subcommands() {
        let key = format!("{key}-{}", sub.get_name());
        let arguments =
            sub.get_arguments().map(|arg| format!("{key}-{}", arg.get_id().as_str().replace('_', "-")));
        let mut keys = vec![key.clone()];
        if sub.get_long_about().is_some() {
            keys.push(format!("{key}-details"));
        }
        keys.extend(arguments);
        found.push((sub.get_name().to_owned(), keys));
        help_keys(sub, &key, found);
    }
}

/// Issue 15: every command and argument takes its help from the catalogue, in every language.
#[test]
fn every_command_and_argument_has_its_help_in_the_catalogue() {
    let mut found = Vec::new();
    help_keys(&CommandLine::command(), "help", &mut found);
    assert!(found.len() >= 13, "{found:?}");
    let mut missing = Vec::new();
    for language in Language::ALL {
        for key in found.iter().flat_map(|(_, keys)| keys).chain([&"help-bc".to_owned()]) {
            if help_text(language, key) == *key {
                missing.push(format!("{}: {key}", language.code()));
            }
        }
    }
    assert!(missing.is_empty(), "help texts missing from locales/*/help.ftl:\n{}", missing.join("\n"));
}

/// The English catalogue says what the doc comments of [`Command`] say (clap's own help).
#[test]
fn the_english_help_is_the_doc_comments() {
    fn compare(derived: &clap::Command, localized: &clap::Command) {
        for (ours, theirs) in derived.get_subcommands().zip(localized.get_subcommands()) {
            let name = ours.get_name();
            assert_eq!(
                ours.get_about().map(ToString::to_string),
                theirs.get_about().map(ToString::to_string),
                "{name}"
            );
            assert_eq!(
                ours.get_long_about().map(ToString::to_string),
                theirs.get_long_about().map(ToString::to_string),
                "{name}"
            );
            for (a, b) in ours.get_arguments().zip(theirs.get_arguments()) {
                assert_eq!(
                    a.get_help().map(ToString::to_string),
                    b.get_help().map(ToString::to_string),
                    "{name} {}",
                    a.get_id()
                );
                assert_eq!(
                    a.get_long_help().map(ToString::to_string),
                    b.get_long_help().map(ToString::to_string),
                    "{name} {}",
                    a.get_id()
                );
            }
            compare(ours, theirs);
        }
    }
    compare(&CommandLine::command(), &localized_command(Language::En));
}

#[test]
fn the_help_of_send_in_german() {
    let answer = help(Language::De, "!bc", Some("send"));
    let help = answer.markdown;
    assert!(help.starts_with("```\nBereitet eine Rundsendung vor"), "{help}");
    assert!(help.contains("höchstens 30.000 Bytes"), "{help}");
    assert!(help.contains("höchstens 1.000 Empfänger-Wörter"), "{help}");
    assert!(help.contains("\nAufruf: !bc send [OPTIONS] <AUDIENCE>...\n"), "{help}");
    assert!(help.contains("\nOptionen:\n"), "{help}");
    assert!(help.contains("--dry-run\n          Zeigen, wer sie erhielte, und nichts senden"), "{help}");
    let all = help_all_german();
    assert!(all.starts_with("**Befehle**\n\n- `!bc help [COMMAND]` — Zeigt die Befehle"), "{all}");
    assert!(help_default_german().contains("[mögliche Werte: off, on]"));
    let none = super::help(Language::De, "!bc", Some("nope"));
    assert_eq!(none, Answer::error("Es gibt keinen Befehl `nope`. `!bc help` listet die Befehle."));
}

fn help_all_german() -> String {
    help(Language::De, "!bc", None).markdown
}

fn help_default_german() -> String {
    help(Language::De, "!bc", Some("default")).markdown
}

#[test]
fn mistakes_are_explained_in_german() {
    let answer = parse_command(Language::De, "!bc", "!bc sned #all:example.org").unwrap_err();
    assert_eq!(
        answer.markdown,
        "Unbekannter Befehl 'sned'\n```\n!bc sned #all:example.org\n    ^^^^\n```\n\
         Aufruf: !bc <BEFEHL> … (die Befehle: `!bc help`)\nTipp: ein ähnlicher Befehl existiert: 'send'"
    );
    let answer = parse_command(Language::De, "!bc", "!bc status twelve").unwrap_err();
    assert!(
        answer
            .markdown
            .starts_with("Ungültiger Wert 'twelve' für '<ID>': \"twelve\" ist keine Rundsendungsnummer"),
        "{}",
        answer.markdown
    );
    assert!(answer.markdown.contains("\nAufruf: !bc status <ID>"), "{}", answer.markdown);
    let answer = parse_command(Language::De, "!bc", "!bc send @a:b --yse").unwrap_err();
    assert!(answer.markdown.starts_with("Unerwartetes Argument '--yse'\n"), "{}", answer.markdown);
    let answer = parse_command(Language::De, "!bc", "!bc send @a:b --name").unwrap_err();
    assert!(answer.markdown.starts_with("'--name <NAME>' braucht einen Wert"), "{}", answer.markdown);
    let answer = parse_command(Language::De, "!bc", "!bc status").unwrap_err();
    assert!(answer.markdown.starts_with("Folgende Pflichtargumente fehlen:"), "{}", answer.markdown);
    let answer = parse_command(Language::De, "!bc", "!bc send @a:b --at 09:00 --in 2h").unwrap_err();
    assert!(
        answer.markdown.contains("kann nicht zusammen mit '--in <DURATION>' verwendet werden"),
        "{}",
        answer.markdown
    );
    let answer = parse_command(Language::De, "!bc", "!bc send \"x").unwrap_err();
    assert!(
        answer.markdown.starts_with("Ein Anführungszeichen ist nicht geschlossen:"),
        "{}",
        answer.markdown
    );
    assert_eq!(
        parse_command(Language::De, "!bc", "!bc status #12").unwrap(),
        Command::Status { id: BroadcastId(12) }
    );
}

#[test]
fn the_english_tips_are_clap_s() {
    let answer = parse_command(Language::En, "!bc", "!bc send @a:b --yse").unwrap_err();
    assert!(
        answer.markdown.ends_with("\ntip: to pass '--yse' as a value, use '-- --yse'"),
        "{}",
        answer.markdown
    );
    let answer = parse_command(Language::En, "!bc", "!bc send @a:b --yes --yes").unwrap_err();
    assert!(
        answer.markdown.starts_with("The argument '--yes' cannot be used multiple times\n"),
        "{}",
        answer.markdown
    );
    let answer = parse_command(Language::En, "!bc", "!bc default maybe #1").unwrap_err();
    assert!(answer.markdown.starts_with("Invalid value 'maybe' for '<off|on>'\n"), "{}", answer.markdown);
}

mod rooms_and_rights {
    use std::sync::Arc;

    use ruma::{OwnedRoomId, OwnedUserId, RoomId};

    use super::*;
    use crate::{
        base::store::{BroadcastState, DefaultScope, SendOptions},
        edge::testing::TestApp,
    };

    /// Runs `line` as `sender` typed it in `room`, and returns the answer.
    async fn run_line(broadcasts: &Arc<Broadcasts>, room: &RoomId, sender: &str, line: &str) -> Answer {
        run_with_body(broadcasts, room, sender, line, "").await
    }

    /// [`run_line`] with `body` on the lines after the command.
    async fn run_with_body(
        broadcasts: &Arc<Broadcasts>,
        room: &RoomId,
        sender: &str,
        line: &str,
        body: &str,
    ) -> Answer {
        let sender: OwnedUserId = sender.try_into().unwrap();
        let level = broadcasts.rooms.permissions.level(&sender);
        let event_id: ruma::OwnedEventId =
            format!("$cmd{}", crate::base::store::now_ms()).try_into().unwrap();
        let ctx =
            Context { broadcasts, room, event_id: &event_id, sender: &sender, level, body, reply_to: None };
        run(&ctx, parse_command(broadcasts.rooms.language(), "!bc", line).unwrap())
            .await
            .expect("answered at once")
    }

    /// Two control rooms; in room A, an admin's pending `server` broadcast and a default.
    async fn two_rooms() -> (TestApp, OwnedRoomId, OwnedRoomId, BroadcastId) {
        let test = TestApp::new().await;
        let (room_a, room_b) = (test.control_room().await, test.control_room().await);
        let users = [test.hs.user("alice", None)];
        let id = test
            .broadcast_in(
                BroadcastState::Prepared,
                &room_a,
                "All hands",
                &["server"],
                &users,
                SendOptions::default(),
            )
            .await;
        test.store().add_default(id, &DefaultScope::Server).await.unwrap();
        (test, room_a, room_b, id)
    }

    /// Issue 10, item 2: ids do not reach across control rooms, below admin.
    #[tokio::test]
    async fn a_broadcaster_sees_and_acts_only_on_the_broadcasts_of_their_room() {
        let (test, room_a, room_b, id) = two_rooms().await;
        let bob = "@bob:example.org";
        for line in [
            format!("!bc status {id}"),
            format!("!bc cancel {id}"),
            format!("!bc confirm {id}"),
            format!("!bc default on {id}"),
            format!("!bc edit {id}"),
            format!("!bc redact {id}"),
            format!("!bc poll close {id}"),
        ] {
            let answer = run_line(&test.broadcasts, &room_b, bob, &line).await;
            assert_eq!(answer, Answer::error(format!("There is no broadcast {id} in this room.")), "{line}");
        }
        let list = run_line(&test.broadcasts, &room_b, bob, "!bc list").await;
        assert_eq!(list.markdown, "No broadcasts yet.", "room B's list shows room B's broadcasts");
        let defaults = run_line(&test.broadcasts, &room_b, bob, "!bc defaults").await;
        assert!(!defaults.markdown.contains("All hands"), "{}", defaults.markdown);
        assert_eq!(test.store().broadcast(id).await.unwrap().state, BroadcastState::Prepared, "untouched");
        let admin =
            run_line(&test.broadcasts, &room_b, "@admin:example.org", &format!("!bc status {id}")).await;
        assert!(admin.ok, "an admin may name any id: {admin:?}");
        let own = run_line(&test.broadcasts, &room_a, bob, "!bc list").await;
        assert!(own.markdown.contains("All hands"), "{}", own.markdown);
    }

    /// Issue 12: edit, redact and poll close need the rights to manage the broadcast, refuse
    /// what they cannot do, and change nothing in a dry run.
    #[tokio::test]
    async fn edits_retractions_and_poll_closes_are_refused_when_they_cannot_be_made() {
        let (test, room_a, _, id) = two_rooms().await;
        let store = test.store();
        let bob = "@bob:example.org";
        let answer = run_with_body(&test.broadcasts, &room_a, bob, &format!("!bc edit {id}"), "New").await;
        assert!(!answer.ok && answer.markdown.contains("you may not manage it"), "{answer:?}");
        let answer = run_line(&test.broadcasts, &room_a, bob, &format!("!bc redact {id}")).await;
        assert!(!answer.ok && answer.markdown.contains("you may not manage it"), "{answer:?}");
        let answer = run_line(&test.broadcasts, &room_a, bob, "!bc edit #99").await;
        assert_eq!(answer, Answer::error("There is no broadcast #99 in this room."));

        let admin = "@admin:example.org";
        let answer = run_line(&test.broadcasts, &room_a, admin, &format!("!bc edit {id}")).await;
        assert!(!answer.ok && answer.markdown.starts_with("What is the new text?"), "{answer:?}");
        let answer = run_line(&test.broadcasts, &room_a, admin, &format!("!bc poll close {id}")).await;
        assert_eq!(answer, Answer::error(format!("{id} «All hands» is not a poll.")));
        let dry =
            run_with_body(&test.broadcasts, &room_a, admin, &format!("!bc edit {id} --dry-run"), "New").await;
        assert!(
            dry.ok && dry.markdown.starts_with("Dry run, nothing changed: 0 delivered copies"),
            "{dry:?}"
        );
        let dry = run_line(&test.broadcasts, &room_a, admin, &format!("!bc redact {id} --dry-run")).await;
        assert!(dry.ok && dry.markdown.contains("1 not yet delivered cancelled"), "{dry:?}");
        let broadcast = store.broadcast(id).await.unwrap();
        assert_eq!((broadcast.revision, broadcast.retracted_at), (0, None), "dry runs change nothing");

        let edited =
            run_with_body(&test.broadcasts, &room_a, admin, &format!("!bc edit {id}"), "All **hands**").await;
        assert!(edited.ok, "{edited:?}");
        let broadcast = store.broadcast(id).await.unwrap();
        assert_eq!(
            (broadcast.revision, broadcast.message.content["body"].as_str()),
            (1, Some("All **hands**"))
        );
        let retracted =
            run_line(&test.broadcasts, &room_a, admin, &format!("!bc redact {id} sent by mistake")).await;
        assert!(retracted.ok && retracted.markdown.contains("no longer welcomes"), "{retracted:?}");
        assert_eq!(store.retract_reason(id).await.unwrap().as_deref(), Some("sent by mistake"));
        assert_eq!(store.broadcast(id).await.unwrap().state, BroadcastState::Cancelled);
        let again = run_line(&test.broadcasts, &room_a, admin, &format!("!bc default on {id}")).await;
        assert!(!again.ok, "a retracted default stays off: {again:?}");
        let late = run_with_body(&test.broadcasts, &room_a, admin, &format!("!bc edit {id}"), "x").await;
        assert!(!late.ok && late.markdown.contains("was retracted"), "{late:?}");
    }

    /// Issue 12: a scheduled broadcast can be cancelled, and is then never sent.
    #[tokio::test]
    async fn a_cancelled_scheduled_broadcast_is_never_sent() {
        let test = TestApp::new().await;
        let room = test.control_room().await;
        let users = [test.hs.user("alice", None)];
        let options =
            SendOptions { send_at: Some(crate::base::store::now_ms() - 1), ..SendOptions::default() };
        let id = test.broadcast_in(BroadcastState::Scheduled, &room, "Later", &[], &users, options).await;
        let list = run_line(&test.broadcasts, &room, "@admin:example.org", "!bc list").await;
        assert!(list.markdown.contains("scheduled for "), "{}", list.markdown);
        let answer =
            run_line(&test.broadcasts, &room, "@admin:example.org", &format!("!bc cancel {id}")).await;
        assert!(answer.ok, "{answer:?}");
        crate::broadcasts::lifecycle::schedule::start_due(&test.broadcasts).await.unwrap();
        assert_eq!(test.store().broadcast(id).await.unwrap().state, BroadcastState::Cancelled);
        assert_eq!(test.hs.count("send_raw"), 0, "nothing was sent or announced");
    }

    /// Issue 12: a time in the past or an unreadable one is refused with the formats.
    #[tokio::test]
    async fn send_times_in_the_past_or_unreadable_are_refused() {
        let test = TestApp::new().await;
        let room = test.control_room().await;
        let admin = "@admin:example.org";
        let line = "!bc send @alice:example.org --at \"2020-01-01 09:00\"";
        let answer = run_with_body(&test.broadcasts, &room, admin, line, "Hi").await;
        assert!(!answer.ok && answer.markdown.contains("is not in the future"), "{answer:?}");
        assert!(answer.markdown.contains("YYYY-MM-DD HH:MM"), "{answer:?}");
        let answer =
            run_with_body(&test.broadcasts, &room, admin, "!bc send @alice:example.org --in soon", "Hi")
                .await;
        assert!(!answer.ok && answer.markdown.contains("I cannot read the duration `soon`"), "{answer:?}");
        let both = parse_command(Language::En, "!bc", "!bc send @a:b --at 09:00 --in 2h").unwrap_err();
        assert!(both.markdown.contains("cannot be used with"), "{}", both.markdown);
    }

    /// Issue 10, item 14: a broadcast's name is shown as written, never as markup.
    #[tokio::test]
    async fn broadcast_names_are_escaped_in_answers() {
        let test = TestApp::new().await;
        let room = test.control_room().await;
        let name = "<img src=x> *bold* [link](https://evil.example)";
        let id =
            test.broadcast_in(BroadcastState::Prepared, &room, name, &[], &[], SendOptions::default()).await;
        for line in [format!("!bc status {id}"), "!bc list".to_owned(), format!("!bc cancel {id}")] {
            let answer = run_line(&test.broadcasts, &room, "@bob:example.org", &line).await;
            let html =
                ruma::events::room::message::RoomMessageEventContent::notice_markdown(&answer.markdown);
            let rendered = serde_json::to_value(&html).unwrap();
            let formatted = rendered["formatted_body"].as_str().unwrap_or("");
            assert!(
                !formatted.contains("<img") && !formatted.contains("<em>") && !formatted.contains("<a "),
                "{line}: {formatted}"
            );
            assert!(formatted.contains("&lt;img src=x&gt;"), "{line}: {formatted}");
        }
    }

    /// Issue 10, item 2: confirming needs the rights the audience needs.
    #[tokio::test]
    async fn only_the_creator_or_someone_with_the_rights_may_confirm() {
        let test = TestApp::new().await;
        let room = test.control_room().await;
        let users = [test.hs.user("alice", None)];
        let options = SendOptions::default();
        let id = test
            .broadcast_in(BroadcastState::Prepared, &room, "All hands", &["server"], &users, options)
            .await;
        let answer =
            run_line(&test.broadcasts, &room, "@bob:example.org", &format!("!bc confirm {id}")).await;
        assert!(
            !answer.ok && answer.markdown.contains("Only admins of the bot may send to `server`"),
            "{answer:?}"
        );
        assert_eq!(test.store().broadcast(id).await.unwrap().state, BroadcastState::Prepared);
        let answer =
            run_line(&test.broadcasts, &room, "@admin:example.org", &format!("!bc confirm {id}")).await;
        assert!(answer.ok, "{answer:?}");
    }

    /// Issue 15: answers in German with `language: de`: refusals, status, list, plurals and
    /// numbers written the German way.
    #[tokio::test]
    async fn answers_are_german_with_language_de() {
        let test = TestApp::with_config("language: de\n").await;
        let room = test.control_room().await;
        let admin = "@admin:example.org";
        let answer = run_line(&test.broadcasts, &room, admin, "!bc status #99").await;
        assert_eq!(answer, Answer::error("In diesem Raum gibt es keine Rundsendung #99."));
        let list = run_line(&test.broadcasts, &room, admin, "!bc list").await;
        assert_eq!(list.markdown, "Noch keine Rundsendungen.");
        let defaults = run_line(&test.broadcasts, &room, admin, "!bc defaults").await;
        assert_eq!(defaults.markdown, "Keine Standard-Rundsendungen. `send … --default` erstellt eine.");

        let users = [test.hs.user("alice", None)];
        let id = test
            .broadcast_in(
                BroadcastState::Prepared,
                &room,
                "Alle",
                &["server"],
                &users,
                SendOptions::default(),
            )
            .await;
        let status = run_line(&test.broadcasts, &room, admin, &format!("!bc status {id}")).await;
        assert!(
            status.markdown.starts_with(&format!("**{id} «Alle»** — vorbereitet\n\n")),
            "{}",
            status.markdown
        );
        assert!(status.markdown.contains("- zugestellt: 0\n- ausstehend: 1\n"), "{}", status.markdown);
        let list = run_line(&test.broadcasts, &room, admin, "!bc list").await;
        assert!(
            list.markdown.contains("— vorbereitet — 0 / 1 zugestellt, 0 fehlgeschlagen"),
            "{}",
            list.markdown
        );
        let dry =
            run_with_body(&test.broadcasts, &room, admin, &format!("!bc edit {id} --dry-run"), "Neu").await;
        assert_eq!(
            dry.markdown,
            format!(
                "Probelauf, nichts geändert: 0 zugestellte Kopien von {id} «Alle» würden bearbeitet; 1 noch \
                 nicht zugestellte bekämen den neuen Text."
            )
        );
        let poll = run_line(&test.broadcasts, &room, admin, &format!("!bc poll close {id}")).await;
        assert_eq!(poll, Answer::error(format!("{id} «Alle» ist keine Umfrage.")));
        let bob = ruma::user_id!("@bob:example.org");
        let targets = crate::broadcasts::audience::parse_targets(&["server".to_owned()]).unwrap();
        let refused = crate::broadcasts::audience::authorize(
            test.broadcasts.rooms.hs(),
            bob,
            Level::Broadcaster,
            &targets,
        )
        .await;
        assert_eq!(
            refused.unwrap_err().text(test.broadcasts.rooms.language()),
            "Nur Admins des Bots dürfen an `server` senden (alle auf dem Homeserver)."
        );
        let bad = crate::broadcasts::audience::parse_targets(&["alle".to_owned()]).unwrap_err();
        assert!(bad.text(Language::De).starts_with("`alle` bezeichnet keine Empfänger"), "{bad:?}");
        let cancel = run_line(&test.broadcasts, &room, admin, &format!("!bc cancel {id}")).await;
        assert_eq!(cancel, Answer::ok(format!("{id} «Alle» abgebrochen: 1 nicht zugestellt.")));
        let again = run_line(&test.broadcasts, &room, admin, &format!("!bc cancel {id}")).await;
        assert_eq!(again, Answer::error(format!("{id} ist abgebrochen: nichts abzubrechen.")));

        let many = vec!["@a:example.org"; send::MAX_AUDIENCE_WORDS + 1].join(" ");
        let answer =
            run_with_body(&test.broadcasts, &room, admin, &format!("!bc send {many}"), "Hallo").await;
        assert!(
            answer.markdown.starts_with("Zu viele Empfänger-Wörter: 1.001, höchstens 1.000 in einem Befehl."),
            "{answer:?}"
        );
    }

    /// Plural forms per language, as the answers use them.
    #[test]
    fn plural_forms_follow_the_language() {
        let copies =
            |language, count: i64| crate::base::i18n::t!(language, "after-delivered-copies", count = count);
        assert_eq!(copies(Language::De, 1), "1 zugestellte Kopie");
        assert_eq!(copies(Language::De, 2), "2 zugestellte Kopien");
        assert_eq!(copies(Language::De, 1000), "1.000 zugestellte Kopien");
        assert_eq!(copies(Language::En, 1), "1 delivered copy");
        assert_eq!(copies(Language::En, 1200), "1,200 delivered copies");
        assert_eq!(crate::base::i18n::t!(Language::De, "recipients", count = 1), "1 Empfänger");
        assert_eq!(crate::base::i18n::t!(Language::De, "recipients", count = 2), "2 Empfänger");
    }
}
