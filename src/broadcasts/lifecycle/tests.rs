use super::*;

#[test]
fn audiences_are_described_with_a_sample() {
    let users: Vec<ruma::OwnedUserId> =
        ["@a:x.org", "@b:x.org"].iter().map(|u| ruma::UserId::parse(*u).unwrap()).collect();
    let en = Language::En;
    let text = describe_audience(en, 1200, &users, &[Target::Server]);
    assert_eq!(text, "1,200 recipients: `@a:x.org`, `@b:x.org` and 1,198 more.");
    assert_eq!(describe_audience(en, 1, &users[..1], &[Target::Server]), "1 recipient: `@a:x.org`.");
    assert_eq!(describe_audience(en, 0, &[], &[]), "0 recipients (no audience).");
    let de = Language::De;
    let text = describe_audience(de, 1200, &users, &[Target::Server]);
    assert_eq!(text, "1.200 Empfänger: `@a:x.org`, `@b:x.org` und 1.198 weitere.");
    assert_eq!(describe_audience(de, 0, &[], &[]), "0 Empfänger (keine Empfängerangabe).");
}

use crate::{base::store::AudienceOptions, broadcasts::testing::TestBroadcasts};

/// A `resolving` broadcast of "Hello" to `audience` with `options`, from a control room.
async fn resolving(test: &TestBroadcasts, audience: &[&str], options: SendOptions) -> Broadcast {
    resolving_by(test, "@admin:example.org", audience, options).await
}

/// [`resolving`], made by `creator`.
async fn resolving_by(
    test: &TestBroadcasts,
    creator: &str,
    audience: &[&str],
    options: SendOptions,
) -> Broadcast {
    let control = test.control_room().await;
    let admin: ruma::OwnedUserId = creator.try_into().unwrap();
    let words: Vec<String> = audience.iter().map(|word| word.to_string()).collect();
    let new = NewBroadcast {
        name: "Hello",
        control_room_id: &control,
        created_by: &admin,
        message: &StoredMessage::markdown("Hello"),
        state: BroadcastState::Resolving,
        audience: &words,
        options: &options,
        command_event_id: None,
    };
    let id = test.store().create_broadcast(new).await.unwrap();
    test.store().broadcast(id).await.unwrap()
}

async fn state(test: &TestBroadcasts, id: BroadcastId) -> BroadcastState {
    test.store().broadcast(id).await.unwrap().state
}

#[tokio::test]
async fn a_small_audience_starts_at_once_and_a_large_one_waits_for_confirmation() {
    let test = TestBroadcasts::with_config("broadcast:\n  confirm_above: 2\n").await;
    let people: Vec<String> =
        ["a", "b", "c"].iter().map(|name| test.hs.user(name, None).to_string()).collect();
    let small = resolving(&test, &[&people[0], &people[1]], SendOptions::default()).await;
    let answer = finish_preparing(&test.broadcasts, &small).await;
    assert_eq!(answer, Answer::ok(format!("Sending {} «Hello».", small.id)));
    assert_eq!(state(&test, small.id).await, BroadcastState::Running);
    assert_eq!(
        test.hs.bodies_in(&small.control_room_id),
        [format!("«Hello» {}: 0 / 2 delivered, 0 failed", small.id)]
    );

    let words: Vec<&str> = people.iter().map(String::as_str).collect();
    let large = resolving(&test, &words, SendOptions::default()).await;
    let answer = finish_preparing(&test.broadcasts, &large).await;
    assert_eq!(answer.preview_of, Some(large.id));
    assert!(
        answer
            .markdown
            .starts_with(&format!("**Preview of {} «Hello»** — 3 recipients: `@a:example.org`", large.id)),
        "{}",
        answer.markdown
    );
    assert_eq!(state(&test, large.id).await, BroadcastState::Prepared);

    let yes = resolving(&test, &words, SendOptions { yes: true, ..SendOptions::default() }).await;
    assert!(finish_preparing(&test.broadcasts, &yes).await.ok);
    assert_eq!(state(&test, yes.id).await, BroadcastState::Running, "--yes skips the preview");
}

#[tokio::test]
async fn a_german_bot_previews_starts_and_counts_in_german() {
    let test = TestBroadcasts::with_config("language: de\nbroadcast:\n  confirm_above: 2\n").await;
    let people: Vec<String> =
        ["a", "b", "c"].iter().map(|name| test.hs.user(name, None).to_string()).collect();
    let small = resolving(&test, &[&people[0], &people[1]], SendOptions::default()).await;
    let answer = finish_preparing(&test.broadcasts, &small).await;
    assert_eq!(answer, Answer::ok(format!("Sende {} «Hello».", small.id)));
    assert_eq!(
        test.hs.bodies_in(&small.control_room_id),
        [format!("«Hello» {}: 0 / 2 zugestellt, 0 fehlgeschlagen", small.id)]
    );

    let words: Vec<&str> = people.iter().map(String::as_str).collect();
    let large = resolving(&test, &words, SendOptions::default()).await;
    let answer = finish_preparing(&test.broadcasts, &large).await;
    let start = format!("**Vorschau von {} «Hello»** — 3 Empfänger: `@a:example.org`", large.id);
    assert!(answer.markdown.starts_with(&start), "{}", answer.markdown);
    let end = format!(
        "\n\nDie Nachricht:\n\n> Hello\n\nReagieren Sie mit ✅ auf diese Nachricht oder schreiben Sie \
         `!bc confirm {id}`, um sie zu senden; `!bc cancel {id}` verwirft sie.",
        id = large.id
    );
    assert!(answer.markdown.ends_with(&end), "{}", answer.markdown);

    let alice = test.hs.user("alice", None).to_string();
    let dry = resolving(&test, &[&alice], SendOptions { dry_run: true, ..SendOptions::default() }).await;
    let answer = finish_preparing(&test.broadcasts, &dry).await;
    assert_eq!(answer, Answer::ok("Probelauf, nichts gesendet: 1 Empfänger: `@alice:example.org`."));
    let users_only = SendOptions { default: true, ..SendOptions::default() };
    let users_only = resolving(&test, &[&alice], users_only).await;
    let answer = finish_preparing(&test.broadcasts, &users_only).await;
    assert_eq!(
        answer,
        Answer::error("`--default` braucht einen Raum, einen Space oder `server` unter den Empfängern.")
    );
}

#[tokio::test]
async fn the_preview_and_the_start_say_which_persona_sends() {
    let config = format!("{}broadcast:\n  confirm_above: 1\n", crate::rooms::testing::HR_PERSONA);
    let test = TestBroadcasts::with_config(&config).await;
    let people: Vec<String> = ["a", "b"].iter().map(|name| test.hs.user(name, None).to_string()).collect();
    let words: Vec<&str> = people.iter().map(String::as_str).collect();
    let as_hr = SendOptions { persona: Some("hr".into()), ..SendOptions::default() };
    let large = resolving(&test, &words, as_hr.clone()).await;
    let answer = finish_preparing(&test.broadcasts, &large).await;
    let from = "from HR Team (`@broadcast_hr:example.org`)";
    let preview = format!("**Preview of {} «Hello»** {from} — 2 recipients", large.id);
    assert!(answer.markdown.starts_with(&preview), "{}", answer.markdown);
    let small = resolving(&test, &words[..1], as_hr).await;
    let answer = finish_preparing(&test.broadcasts, &small).await;
    assert_eq!(answer, Answer::ok(format!("Sending {} «Hello» {from}.", small.id)));
    let bot = resolving(&test, &words[..1], SendOptions::default()).await;
    let answer = finish_preparing(&test.broadcasts, &bot).await;
    let from_bot = "from Broadcast (`@broadcast:example.org`)";
    assert_eq!(answer, Answer::ok(format!("Sending {} «Hello» {from_bot}.", bot.id)), "personas exist");
}

#[tokio::test]
async fn dry_runs_empty_audiences_and_unreadable_ones_send_nothing() {
    let test = TestBroadcasts::new().await;
    let alice = test.hs.user("alice", None).to_string();
    let dry = resolving(&test, &[&alice], SendOptions { dry_run: true, ..SendOptions::default() }).await;
    let answer = finish_preparing(&test.broadcasts, &dry).await;
    assert_eq!(answer, Answer::ok("Dry run, nothing sent: 1 recipient: `@alice:example.org`."));
    assert_eq!(state(&test, dry.id).await, BroadcastState::DryRun);
    assert_eq!(test.store().delivery_counts(dry.id).await.unwrap().total(), 0, "nothing stays queued");

    let except = AudienceOptions { except: vec![alice.as_str().try_into().unwrap()], recursive: false };
    let empty = resolving(&test, &[&alice], SendOptions { audience: except, ..SendOptions::default() }).await;
    let answer = finish_preparing(&test.broadcasts, &empty).await;
    assert_eq!(answer, Answer::error(format!("{} «Hello»: nobody to send to. 0 recipients.", empty.id)));
    assert_eq!(state(&test, empty.id).await, BroadcastState::Empty);

    let unreadable = resolving(&test, &["everyone"], SendOptions::default()).await;
    let answer = finish_preparing(&test.broadcasts, &unreadable).await;
    assert!(
        !answer.ok && answer.markdown.starts_with(&format!("{} cannot be sent", unreadable.id)),
        "{answer:?}"
    );
    assert_eq!(state(&test, unreadable.id).await, BroadcastState::Cancelled);
}

#[tokio::test]
async fn a_default_is_recorded_for_its_rooms_and_needs_one() {
    let test = TestBroadcasts::new().await;
    let owner = test.hs.user("owner", None);
    let space = test.hs.room(&owner, &[], true);
    let child = test.hs.room(&owner, &[], true);
    test.hs.with(|state| state.rooms.get_mut(&space).unwrap().children.push(child.clone()));
    let options = SendOptions {
        default: true,
        audience: AudienceOptions { recursive: true, ..Default::default() },
        ..Default::default()
    };
    let welcome = resolving(&test, &[space.as_str()], options.clone()).await;
    assert!(finish_preparing(&test.broadcasts, &welcome).await.ok);
    for room in [&space, &child] {
        let defaults = test.store().defaults_for(&DefaultScope::Room(room.clone())).await.unwrap();
        assert_eq!(defaults, [welcome.id], "{room}");
    }
    let users_only = resolving(&test, &[owner.as_str()], options).await;
    let answer = finish_preparing(&test.broadcasts, &users_only).await;
    assert_eq!(answer, Answer::error("`--default` needs a room, a space or `server` in the audience."));
    assert_eq!(state(&test, users_only.id).await, BroadcastState::Cancelled);
}

/// Issue 10, item 1: below admin, every room `--recursive` adds passes the same check as the
/// rooms typed; the others are left out and named.
#[tokio::test]
async fn recursive_reaches_only_rooms_where_a_broadcaster_is_a_moderator() {
    let test = TestBroadcasts::new().await;
    let owner = test.hs.user("owner", None);
    let broadcaster = test.hs.user("bea", None);
    let (alice, carol) = (test.hs.user("alice", None), test.hs.user("carol", None));
    let space = test.hs.room(&owner, &[&broadcaster, &alice], true);
    test.hs.set_power(&space, &broadcaster, 50);
    let board = test.hs.room(&owner, &[&carol], true); // bea is not in it
    let team = test.hs.room(&owner, &[&broadcaster], true);
    test.hs.set_power(&team, &broadcaster, 50);
    test.hs.with(|state| state.rooms.get_mut(&space).unwrap().children.extend([board.clone(), team.clone()]));
    let options = SendOptions {
        audience: AudienceOptions { recursive: true, ..Default::default() },
        dry_run: true,
        ..Default::default()
    };
    let dry = resolving_by(&test, broadcaster.as_str(), &[space.as_str()], options.clone()).await;
    let answer = finish_preparing(&test.broadcasts, &dry).await;
    assert!(!answer.markdown.contains("@carol"), "board's members are not shown: {}", answer.markdown);
    assert!(answer.markdown.contains(&format!("Left out: `{board}`")), "{}", answer.markdown);

    let send = resolving_by(
        &test,
        broadcaster.as_str(),
        &[space.as_str()],
        SendOptions { dry_run: false, ..options },
    )
    .await;
    finish_preparing(&test.broadcasts, &send).await;
    let queued = test.store().sample_recipients(send.id, 10).await.unwrap();
    assert!(!queued.contains(&carol), "{queued:?}");
    assert!(queued.contains(&alice), "{queued:?}");
}
