//! `!bc send`, `!bc audience` and `!bc confirm`: check what was asked, then hand the broadcast to
//! the [lifecycle](crate::broadcasts::lifecycle), which resolves its audience in a task and previews or
//! starts it.

use super::{find_broadcast, fits, markdown_message, Answer, Context};
use crate::{
    base::{
        i18n::{t, Language},
        message::StoredMessage,
        poll::Poll,
        store::{now_ms, AudienceOptions, BroadcastId, BroadcastState, SendOptions},
        when,
    },
    broadcasts::{
        audience,
        lifecycle::{self, Draft},
    },
    rooms::notices::{error_text, shortened},
};

/// The most audience words, and the most `--except` words, of one command. More people belong
/// in a room or space, which is one word however many members it has.
pub const MAX_AUDIENCE_WORDS: usize = 1_000;

/// The most characters of a broadcast's name (`--name`), which every answer about it shows.
pub const MAX_NAME_CHARS: usize = 100;

/// The words and switches of a `send` (or `audience`) command.
pub struct SendRequest {
    pub audience: Vec<String>,
    pub name: Option<String>,
    pub except: Vec<String>,
    pub recursive: bool,
    pub when: When,
    /// `--as`: the persona to send as.
    pub persona: Option<String>,
    pub yes: bool,
    pub dry_run: bool,
    pub default: bool,
}

/// `--at TIME` or `--in DURATION`, as typed.
#[derive(Default)]
pub struct When {
    pub at: Option<String>,
    pub r#in: Option<String>,
}

impl When {
    /// When to send (Unix milliseconds), `None` for now; the refusal names the formats.
    fn send_at(&self, zone: &jiff::tz::TimeZone) -> Result<Option<i64>, Answer> {
        let now = now_ms();
        let parsed = match (&self.at, &self.r#in) {
            (Some(at), _) => when::parse_at(at, zone, now),
            (None, Some(after)) => when::parse_in(after, zone, now),
            (None, None) => return Ok(None),
        };
        parsed.map(Some).map_err(Answer::error)
    }
}

impl SendRequest {
    /// Refuses too many audience or `--except` words and too long a name, naming the limit.
    fn within_limits(&self, language: Language) -> Result<(), Answer> {
        let most = MAX_AUDIENCE_WORDS;
        if self.audience.len() > MAX_AUDIENCE_WORDS {
            let count = self.audience.len();
            return Err(Answer::error(t!(language, "send-too-many-words", count = count, most = most)));
        }
        if self.except.len() > MAX_AUDIENCE_WORDS {
            let count = self.except.len();
            return Err(Answer::error(t!(language, "send-too-many-except", count = count, most = most)));
        }
        let name = self.name.as_deref().unwrap_or("");
        if name.chars().count() > MAX_NAME_CHARS {
            let count = name.chars().count();
            return Err(Answer::error(t!(
                language,
                "send-name-too-long",
                count = count,
                most = MAX_NAME_CHARS
            )));
        }
        Ok(())
    }

    /// `!bc audience`: a dry run of a plain send.
    pub fn dry_run(audience: Vec<String>) -> Self {
        Self {
            audience,
            name: None,
            except: vec![],
            recursive: false,
            when: When::default(),
            persona: None,
            yes: false,
            dry_run: true,
            default: false,
        }
    }
}

/// Checks and records the broadcast; a task resolves its audience and answers the command
/// (`None`: answered later), so that a large audience does not hold up other commands.
pub async fn send(ctx: &Context<'_>, request: SendRequest) -> Option<Answer> {
    match ctx.broadcasts.rooms.store.broadcast_by_command(ctx.event_id).await {
        Ok(None) => {}
        Ok(Some(existing)) => {
            // Dispatched again after a restart: its resolution was resumed at start-up.
            tracing::info!(broadcast = %existing.id, "command seen again; its broadcast exists");
            return None;
        }
        Err(error) => return Some(Answer::store_failed(error)),
    }
    let language = ctx.language();
    let refuse = |error: audience::AudienceError| Answer::error(error.text(language));
    let checked = async {
        request.within_limits(language)?;
        let targets = audience::parse_targets(&request.audience).map_err(refuse)?;
        let except = audience::parse_users(&request.except).map_err(refuse)?;
        let audience = audience::authorize(ctx.broadcasts.rooms.hs(), ctx.sender, ctx.level, &targets)
            .await
            .map_err(refuse)?;
        let send_at = request.when.send_at(&ctx.broadcasts.rooms.broadcast.time_zone())?;
        let persona = persona(ctx, request.persona.as_deref())?;
        let message = message(ctx, request.dry_run).await?;
        let options = SendOptions {
            audience: AudienceOptions { except, recursive: request.recursive },
            yes: request.yes,
            dry_run: request.dry_run,
            default: request.default,
            send_at,
            persona,
        };
        Ok::<_, Answer>((audience, message, options))
    };
    let (audience, message, options) = match checked.await {
        Ok(checked) => checked,
        Err(answer) => return Some(answer),
    };
    let draft = Draft {
        name: request.name.clone().unwrap_or_else(|| default_name(language, &message)),
        control_room: ctx.room,
        created_by: ctx.sender,
        command: ctx.event_id,
        message: &message,
        audience: &audience,
        options: &options,
    };
    lifecycle::create(ctx.broadcasts, draft).await.err().map(Answer::store_failed)
}

/// Who a `send` is sent as: the persona `--as` names, else `broadcast.default_persona` (`None`:
/// the bot). A name that is not a persona is refused with the list of personas, and so is a
/// persona the sender is not on the `allowed` list of.
fn persona(ctx: &Context<'_>, name: Option<&str>) -> Result<Option<String>, Answer> {
    let rooms = &ctx.broadcasts.rooms;
    let Some(name) = name else {
        let default = &rooms.broadcast.default_persona;
        return Ok(Some(default.clone()).filter(|name| !name.is_empty()));
    };
    if let Some(persona) = rooms.senders.persona(name) {
        if !persona.config.allows(ctx.sender, ctx.level) {
            return Err(Answer::error(t!(ctx.language(), "send-persona-not-allowed", name = name)));
        }
        return Ok(Some(name.to_owned()));
    }
    let known: Vec<String> = rooms.senders.personas().map(|known| format!("`{}`", known.name)).collect();
    let language = ctx.language();
    Err(Answer::error(match known.is_empty() {
        true => t!(language, "send-no-persona", name = name),
        false => t!(language, "send-unknown-persona", name = name, personas = known.join(", ")),
    }))
}

/// The message of a `send`: the lines after the command, or the message the command replies to.
async fn message(ctx: &Context<'_>, dry_run: bool) -> Result<StoredMessage, Answer> {
    let language = ctx.language();
    if !ctx.body.trim().is_empty() {
        return markdown_message(language, ctx.body);
    }
    if let Some(replied) = &ctx.reply_to {
        let event = ctx.broadcasts.rooms.hs().room_event(ctx.room, replied).await.map_err(|error| {
            Answer::error(t!(language, "send-cannot-read-reply", error = error_text(&error)))
        })?;
        let event = decrypted(ctx, event).await?;
        return StoredMessage::copy_of(&event)
            .ok_or_else(|| Answer::error(t!(language, "send-reply-has-no-content")))
            .and_then(|message| fits(language, message));
    }
    if dry_run {
        return Ok(StoredMessage::markdown(""));
    }
    let prefix = &ctx.broadcasts.rooms.broadcast.command_prefix;
    Err(Answer::error(t!(language, "send-what-to-send", prefix = prefix)))
}

/// `event` as its sender wrote it: decrypted when it is encrypted (and the bot can decrypt).
async fn decrypted(ctx: &Context<'_>, event: serde_json::Value) -> Result<serde_json::Value, Answer> {
    if event["type"] != "m.room.encrypted" {
        return Ok(event);
    }
    let Some(crypto) = &ctx.broadcasts.rooms.crypto else {
        return Err(Answer::error(t!(ctx.language(), "send-reply-encrypted")));
    };
    crypto.decrypt(&event).await.map_err(|error| {
        Answer::error(t!(ctx.language(), "send-cannot-decrypt-reply", error = error_text(&error)))
    })
}

/// The first line of the message (a poll's question), shortened.
fn default_name(language: Language, message: &StoredMessage) -> String {
    let summary = Poll::of(message).map(|poll| poll.question).unwrap_or_else(|| message.summary());
    let name = shortened(summary.lines().next().unwrap_or("").trim(), 40);
    if name.is_empty() {
        t!(language, "send-default-name")
    } else {
        name
    }
}

/// `!bc confirm <id>`.
pub async fn confirm(ctx: &Context<'_>, id: BroadcastId) -> Answer {
    let broadcast = match find_broadcast(ctx, id).await {
        Ok(broadcast) => broadcast,
        Err(answer) => return answer,
    };
    let (language, id_text) = (ctx.language(), id.to_string());
    if broadcast.control_room_id != ctx.room {
        return Answer::error(t!(language, "confirm-other-room", id = id_text));
    }
    if broadcast.state != BroadcastState::Prepared {
        let state = super::state_name(language, broadcast.state);
        return Answer::error(t!(language, "confirm-not-prepared", id = id_text, state = state));
    }
    if let Err(refused) = lifecycle::may_manage(ctx.broadcasts, &broadcast, ctx.sender, ctx.level).await {
        return refused;
    }
    lifecycle::start(ctx.broadcasts, id, BroadcastState::Prepared).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_default_to_the_start_of_the_message() {
        let message = StoredMessage::markdown("Welcome to the company!\nMore text");
        assert_eq!(default_name(Language::En, &message), "Welcome to the company!");
        let long = StoredMessage::markdown(&"x".repeat(60));
        assert_eq!(default_name(Language::En, &long).chars().count(), 41);
        assert_eq!(default_name(Language::En, &StoredMessage::markdown("")), "Broadcast");
        assert_eq!(default_name(Language::En, &crate::base::poll::tests::element_poll(1)), "Lunch?");
    }

    use crate::{edge::testing::TestApp, rooms::testing::HR_PERSONA};

    /// `!bc send @alice:example.org` + `extra` by an admin, with "Hi" as the message: the
    /// answer, and the options of the broadcast it made.
    async fn send_line(test: &TestApp, extra: &str) -> (Option<Answer>, Option<SendOptions>) {
        let alice = test.hs.user("alice", None);
        send_with_body(test, &format!("!bc send {alice} {extra}"), "Hi").await
    }

    /// `line` + `body` by an admin: the answer, and the options of the broadcast it made.
    async fn send_with_body(test: &TestApp, line: &str, body: &str) -> (Option<Answer>, Option<SendOptions>) {
        let room = test.control_room().await;
        let admin: ruma::OwnedUserId = "@admin:example.org".try_into().unwrap();
        let event_id: ruma::OwnedEventId =
            format!("$send{}", crate::base::store::now_ms()).try_into().unwrap();
        let level = test.broadcasts.rooms.permissions.level(&admin);
        let ctx = Context {
            broadcasts: &test.broadcasts,
            room: &room,
            event_id: &event_id,
            sender: &admin,
            level,
            body,
            reply_to: None,
        };
        let answer = crate::edge::commands::run(
            &ctx,
            crate::edge::commands::parse_command(Language::En, "!bc", line).unwrap(),
        )
        .await;
        let made = test.store().broadcast_by_command(&event_id).await.unwrap();
        (answer, made.map(|broadcast| broadcast.options))
    }

    fn refusal(answer: Option<Answer>) -> String {
        let answer = answer.expect("answered at once");
        assert!(!answer.ok, "{answer:?}");
        answer.markdown
    }

    /// `line` + `body` typed by `sender` in `room`: the answer (`None`: given by the task that
    /// resolves the audience) and the command's event ID.
    async fn run_as(
        test: &TestApp,
        room: &ruma::RoomId,
        sender: &ruma::UserId,
        line: &str,
        body: &str,
    ) -> (Option<Answer>, ruma::OwnedEventId) {
        let event_id: ruma::OwnedEventId =
            format!("$cmd{}", crate::base::store::now_ms()).try_into().unwrap();
        let level = test.broadcasts.rooms.permissions.level(sender);
        let ctx = Context {
            broadcasts: &test.broadcasts,
            room,
            event_id: &event_id,
            sender,
            level,
            body,
            reply_to: None,
        };
        let command = crate::edge::commands::parse_command(Language::En, "!bc", line).unwrap();
        (crate::edge::commands::run(&ctx, command).await, event_id)
    }

    /// The broadcast of the command `event_id` once its audience is resolved (within 5 s).
    async fn prepared(test: &TestApp, event_id: &ruma::EventId) -> crate::base::store::Broadcast {
        let until = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let made = test.store().broadcast_by_command(event_id).await.unwrap().expect("made");
            if made.state != BroadcastState::Resolving {
                return made;
            }
            assert!(tokio::time::Instant::now() < until, "resolved within 5 s");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// The broadcast of the command `event_id`, as soon as it is recorded.
    async fn recorded(test: &TestApp, event_id: &ruma::EventId) -> crate::base::store::Broadcast {
        test.store().broadcast_by_command(event_id).await.unwrap().expect("recorded")
    }

    /// Issue 22, item 6: a broadcast whose audience is still being resolved (a slow room) can
    /// be cancelled and retracted; the resolution that ends afterwards sends nothing, queues
    /// nothing and leaves no welcome switched on.
    #[tokio::test]
    async fn a_broadcast_still_being_resolved_can_be_cancelled_or_retracted_and_sends_nothing() {
        for stop in ["cancel", "redact"] {
            let test = TestApp::new().await;
            let control = test.control_room().await;
            let admin = test.hs.user("admin", Some("Admin"));
            let alice = test.hs.user("alice", None);
            let team = test.hs.room(&admin, &[&alice], true);
            test.hs.with(|state| state.slow.insert("joined_members", std::time::Duration::from_millis(500)));
            let line = format!("!bc send {team} --yes --default");
            let (_, event_id) = run_as(&test, &control, &admin, &line, "Welcome").await;
            let id = recorded(&test, &event_id).await.id;
            let (answer, _) = run_as(&test, &control, &admin, &format!("!bc {stop} {id}"), "").await;
            let answer = answer.expect("answered at once");
            assert!(answer.ok, "{stop} while resolving: {answer:?}");
            let until = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
            while !test.hs.bodies_in(&control).iter().any(|body| body.contains("was stopped while")) {
                assert!(tokio::time::Instant::now() < until, "{stop}: the resolution answers within 5 s");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            let broadcast = prepared(&test, &event_id).await;
            assert_eq!(broadcast.state, BroadcastState::Cancelled, "{stop}");
            let counts = test.store().delivery_counts(id).await.unwrap();
            assert_eq!(counts.pending, 0, "{stop}: nothing left to send");
            let defaults = test.store().all_defaults().await.unwrap();
            assert!(defaults.iter().all(|default| !default.active), "{stop}: no welcome: {defaults:?}");
            test.deliver_all(id, 0).await;
            assert!(test.hs.dms_with(&alice).is_empty(), "{stop}: alice got nothing");
        }
    }

    /// Issue 22, item 8: `cancel` and `default on` need the rights `confirm` needs (the creator,
    /// or someone who may address the whole audience): a broadcaster cannot switch an admin's
    /// `server` welcome back on, nor cancel it.
    #[tokio::test]
    async fn cancel_and_default_on_need_the_rights_over_the_broadcast() {
        let test = TestApp::new().await;
        let control = test.control_room().await;
        let users = [test.hs.user("alice", None)];
        let options = SendOptions { default: true, ..SendOptions::default() };
        let id =
            test.broadcast_in(BroadcastState::Running, &control, "Hi", &["server"], &users, options).await;
        test.store().add_default(id, &crate::base::store::DefaultScope::Server).await.unwrap();
        test.store().set_default_active(id, false).await.unwrap();
        let bob = test.hs.user("bob", None);
        for line in [format!("!bc default on {id}"), format!("!bc cancel {id}")] {
            let (answer, _) = run_as(&test, &control, &bob, &line, "").await;
            let answer = answer.expect("answered");
            assert!(!answer.ok && answer.markdown.contains("`server`"), "{line}: {answer:?}");
        }
        assert!(test.store().all_defaults().await.unwrap().iter().all(|default| !default.active));
        assert_eq!(test.store().broadcast(id).await.unwrap().state, BroadcastState::Running);
    }

    /// Issue 22, item 8: a persona is for admins unless `personas.NAME.allowed` opens it to a
    /// level or to named users.
    #[tokio::test]
    async fn a_persona_is_for_admins_unless_its_allowed_list_opens_it() {
        let test = TestApp::with_config(HR_PERSONA).await;
        let control = test.control_room().await;
        let (bob, alice) = (test.hs.user("bob", None), test.hs.user("alice", None));
        let line = format!("!bc send {alice} --as hr");
        let (answer, event_id) = run_as(&test, &control, &bob, &line, "Hi").await;
        let answer = answer.expect("refused at once");
        assert!(!answer.ok && answer.markdown.contains("`hr`"), "{answer:?}");
        assert!(test.store().broadcast_by_command(&event_id).await.unwrap().is_none(), "nothing made");
        let admin = test.hs.user("admin", None);
        let (answer, _) = run_as(&test, &control, &admin, &line, "Hi").await;
        assert_eq!(answer, None, "an admin may");

        let opened = "personas:\n  hr: { username: broadcast_hr, allowed: [\"@bob:example.org\"] }\n";
        let test = TestApp::with_config(opened).await;
        let control = test.control_room().await;
        let (answer, _) = run_as(&test, &control, &bob, &line, "Hi").await;
        assert_eq!(answer, None, "bob is on the list");
        let carol = test.hs.user("carol", None);
        let (answer, _) = run_as(&test, &control, &carol, &line, "Hi").await;
        assert!(answer.is_some_and(|answer| !answer.ok), "carol is not");

        let everyone = "personas:\n  hr: { username: broadcast_hr, allowed: [broadcaster] }\n";
        let test = TestApp::with_config(everyone).await;
        let control = test.control_room().await;
        let (answer, _) = run_as(&test, &control, &carol, &line, "Hi").await;
        assert_eq!(answer, None, "every broadcaster may");
    }

    /// Issue 22, item 1: an alias is looked up once, when the command is checked; the room that
    /// passed the check is the one whose members get the broadcast, and confirming it looks up
    /// nothing again. Here the alias's server answers the broadcaster's room first and another,
    /// private room the next time.
    #[tokio::test]
    async fn an_alias_is_resolved_once_and_the_room_that_passed_the_check_is_reached() {
        let test = TestApp::new().await;
        let control = test.control_room().await;
        let (bob, alice, carol) =
            (test.hs.user("bob", None), test.hs.user("alice", None), test.hs.user("carol", None));
        let team = test.hs.room(&bob, &[&alice], true);
        let private = test.hs.room(&test.hs.user("dave", None), &[&carol], true);
        let alias = test.hs.alias(&team, "team");
        test.hs.with(|state| state.alias_moves.insert(alias.clone(), private.clone()));
        let (answer, event_id) = run_as(&test, &control, &bob, &format!("!bc send {alias}"), "Hi").await;
        assert_eq!(answer, None, "resolved in a task");
        let broadcast = prepared(&test, &event_id).await;
        assert_eq!(broadcast.audience, [team.to_string()], "the room that passed the check is kept");
        let recipients = test.store().sample_recipients(broadcast.id, 10).await.unwrap();
        assert!(!recipients.contains(&carol), "the other room is never reached: {recipients:?}");
        assert!(recipients.contains(&alice), "{recipients:?}");
        lifecycle::may_manage(
            &test.broadcasts,
            &broadcast,
            &alice,
            test.broadcasts.rooms.permissions.level(&alice),
        )
        .await
        .expect_err("alice has no rights in the room");
        let lookups = test.hs.with(|state| state.requests.get("resolve_alias").copied());
        assert_eq!(lookups, Some(1), "one look-up of the alias");
    }

    #[tokio::test]
    async fn a_message_too_long_for_one_event_is_refused_naming_the_limit_and_nothing_is_made() {
        let test = TestApp::new().await;
        let alice = test.hs.user("alice", None);
        let line = format!("!bc send {alice} --yes");
        let (answer, made) = send_with_body(&test, &line, &"x".repeat(100_000)).await;
        let text = refusal(answer);
        assert!(text.starts_with("The message is too long: 100,000 characters"), "{text}");
        assert!(text.contains("at most 30,000 bytes"), "{text}");
        assert_eq!(made, None, "nothing queued");
        // Under the limit as text, over it once rendered: HTML escapes each `<` as `&lt;`.
        let (answer, made) = send_with_body(&test, &line, &format!("**b** {}", "<".repeat(12_000))).await;
        assert!(refusal(answer).contains("12,006 characters"));
        assert_eq!(made, None);
        let (answer, made) = send_with_body(&test, &line, &"y".repeat(10_000)).await;
        assert_eq!((answer, made.is_some()), (None, true), "10,000 characters are fine");
    }

    #[tokio::test]
    async fn too_many_audience_words_or_too_long_a_name_is_refused_and_nothing_is_made() {
        let test = TestApp::new().await;
        let words: Vec<String> = (0..10_000).map(|n| format!("@user{n}:example.org")).collect();
        let (answer, made) =
            send_with_body(&test, &format!("!bc send {} --yes", words.join(" ")), "Hi").await;
        let text = refusal(answer);
        assert!(text.contains("too many words: 10,000, at most 1,000"), "{text}");
        assert_eq!(made, None);
        let line = format!("!bc send @a:example.org --except {}", words[..1_001].join(" "));
        assert!(refusal(send_with_body(&test, &line, "Hi").await.0).contains("1,001, at most 1,000"));
        let (answer, made) = send_line(&test, &format!("--name {}", "n".repeat(101))).await;
        assert_eq!(refusal(answer), "The name is too long: 101 characters, at most 100.");
        assert_eq!(made, None);
        let (answer, made) = send_line(&test, &format!("--name {}", "n".repeat(100))).await;
        assert_eq!((answer, made.is_some()), (None, true), "a name of 100 characters is fine");
    }

    #[tokio::test]
    async fn an_unknown_persona_is_refused_with_the_list_and_nothing_is_made() {
        let test = TestApp::with_config(&format!("{HR_PERSONA}  it: {{ username: broadcast_it }}\n")).await;
        let (answer, made) = send_line(&test, "--as finance").await;
        assert_eq!(
            answer,
            Some(Answer::error("There is no persona `finance`. The personas are `hr`, `it`."))
        );
        assert_eq!(made, None);
        let test = TestApp::new().await;
        let (answer, _) = send_line(&test, "--as hr").await;
        let answer = answer.expect("refused");
        assert!(!answer.ok && answer.markdown.contains("none is configured"), "{answer:?}");
    }

    #[tokio::test]
    async fn as_names_the_persona_and_without_it_the_default_persona_or_the_bot_sends() {
        let test = TestApp::with_config(HR_PERSONA).await;
        let (answer, made) = send_line(&test, "--as hr").await;
        assert_eq!((answer, made.and_then(|options| options.persona)), (None, Some("hr".into())));
        let (_, made) = send_line(&test, "").await;
        assert_eq!(made.expect("made").persona, None, "the bot");
        let test = TestApp::with_config(&format!("{HR_PERSONA}broadcast:\n  default_persona: hr\n")).await;
        let (_, made) = send_line(&test, "").await;
        assert_eq!(made.expect("made").persona.as_deref(), Some("hr"), "broadcast.default_persona");
    }
}
