//! The life of a broadcast: created once per command, its audience resolved into the queue,
//! then previewed (waiting for a confirmation), started, or reported as a dry run or as empty;
//! resumed at start-up when a stopped bot left it half-prepared; finished by [`progress`] when no
//! delivery is left.
//!
//! Commands, reactions and defaults drive broadcasts through here; this module uses the audience
//! and the store below it and answers through [`notices`](crate::rooms::notices). Resolving is
//! idempotent because the queue is unique per (broadcast, recipient).

pub mod progress;
pub mod schedule;

use std::sync::Arc;

use ruma::{EventId, RoomId, UserId};

use crate::{
    base::{
        i18n::Language,
        message::StoredMessage,
        permissions::Level,
        store::{
            now_ms, Broadcast, BroadcastId, BroadcastState, DefaultScope, NewBroadcast, SendOptions, Store,
            StoreError,
        },
        when,
    },
    broadcasts::audience::{self, AudienceError, Authorized, Exclusions, Target},
    broadcasts::Broadcasts,
    rooms::notices::{self, Answer},
};

/// How many recipients a preview or dry run names.
const SAMPLE: i64 = 10;

/// A broadcast as a command asks for it, before its audience is known.
pub struct Draft<'a> {
    pub name: String,
    pub control_room: &'a RoomId,
    pub created_by: &'a UserId,
    pub command: &'a EventId,
    pub message: &'a StoredMessage,
    pub audience: &'a Authorized,
    pub options: &'a SendOptions,
}

/// Records the broadcast of a command and starts resolving it in a task that answers the
/// command when done.
pub async fn create(broadcasts: &Arc<Broadcasts>, draft: Draft<'_>) -> Result<(), StoreError> {
    let id = broadcasts
        .rooms
        .store
        .create_broadcast(NewBroadcast {
            name: &draft.name,
            control_room_id: draft.control_room,
            created_by: draft.created_by,
            message: draft.message,
            state: BroadcastState::Resolving,
            audience: &draft.audience.words(),
            options: draft.options,
            command_event_id: Some(draft.command),
        })
        .await?;
    tokio::spawn(resolve_and_answer(broadcasts.clone(), id));
    Ok(())
}

/// Resumes resolving the broadcasts a stopped bot left half-prepared (at start-up).
pub async fn resume_preparing(broadcasts: &Arc<Broadcasts>) -> Result<(), StoreError> {
    for broadcast in broadcasts.rooms.store.broadcasts_in_state(BroadcastState::Resolving).await? {
        tracing::info!(broadcast = %broadcast.id, "resuming the preparation of a broadcast");
        tokio::spawn(resolve_and_answer(broadcasts.clone(), broadcast.id));
    }
    Ok(())
}

/// Resolves a broadcast's audience and answers its command.
async fn resolve_and_answer(broadcasts: Arc<Broadcasts>, id: BroadcastId) {
    let broadcast = match broadcasts.rooms.store.broadcast(id).await {
        Ok(broadcast) => broadcast,
        Err(error) => return tracing::error!(%error, broadcast = %id, "cannot read a broadcast to resolve"),
    };
    let answer = finish_preparing(&broadcasts, &broadcast).await;
    if let Some(command) = &broadcast.command_event_id {
        answer_command(&broadcasts, &broadcast.control_room_id, command, &answer).await;
    }
}

/// Posts a command's answer, and records it when it is the preview of a broadcast.
pub async fn answer_command(broadcasts: &Broadcasts, room: &RoomId, command: &EventId, answer: &Answer) {
    let posted = notices::answer(broadcasts.rooms.hs(), room, command, answer).await;
    if let (Some(preview), Some(id)) = (posted, answer.preview_of) {
        if let Err(error) = broadcasts.rooms.store.set_preview_event(id, &preview).await {
            tracing::error!(%error, broadcast = %id, "cannot record a preview");
        }
    }
}

/// Resolves the audience of a `resolving` broadcast, then previews, starts or reports it.
async fn finish_preparing(broadcasts: &Broadcasts, broadcast: &Broadcast) -> Answer {
    let id = broadcast.id;
    let audience = match Authorized::stored(&broadcast.audience) {
        Ok(audience) => audience,
        Err(error) => {
            let id = id.to_string();
            let reason = crate::base::i18n::t!(
                broadcasts.rooms.language(),
                "lifecycle-audience-unreadable",
                id = id,
                error = error.to_string()
            );
            return abandon(broadcasts, broadcast.id, reason).await;
        }
    };
    let options = &broadcast.options;
    let language = broadcasts.rooms.language();
    let level = broadcasts.rooms.permissions.level(&broadcast.created_by);
    let recursive = options.audience.recursive;
    let rooms = match audience::rooms(
        broadcasts.rooms.hs(),
        &audience,
        recursive,
        &broadcast.created_by,
        level,
    )
    .await
    {
        Ok(rooms) => rooms,
        Err(error) => return abandon(broadcasts, id, error.text(broadcasts.rooms.language())).await,
    };
    if options.default && !options.dry_run {
        if let Err(error) = record_defaults(&broadcasts.rooms.store, id, audience.targets(), &rooms).await {
            return abandon(broadcasts, id, error.text(language)).await;
        }
    }
    let exclusions =
        Exclusions::new(&broadcasts.rooms.bot, &broadcasts.rooms.broadcast.exclude, &options.audience.except);
    let needs_names = broadcast.message.needs_displayname();
    let resolved = audience::resolve(
        &broadcasts.rooms.store,
        broadcasts.rooms.hs(),
        &exclusions,
        id,
        audience.targets(),
        &rooms,
        needs_names,
        broadcasts.rooms.language(),
    );
    if let Err(error) = resolved.await {
        log_failure(broadcasts.rooms.store.delete_deliveries(id).await, id, "forget a failed audience"); // not for people
        return abandon(broadcasts, id, error.text(language)).await;
    }
    if let Some(stopped) = stopped_while_resolving(broadcasts, broadcast).await {
        return stopped;
    }
    // A re-dispatched command counts what an earlier run queued too.
    let (count, mut who) =
        match describe_queue(language, &broadcasts.rooms.store, broadcast, audience.targets()).await {
            Ok(described) => described,
            Err(error) => return Answer::store_failed_in(language, error),
        };
    if !rooms.left_out.is_empty() {
        let names: Vec<String> = rooms.left_out.iter().map(|room| format!("`{room}`")).collect();
        let level = audience::REQUIRED_POWER_LEVEL.to_string();
        let left_out =
            crate::base::i18n::t!(language, "lifecycle-left-out", rooms = names.join(", "), level = level);
        who.push_str(&format!(" {left_out}"));
    }
    decide(broadcasts, broadcast, count, who).await
}

/// The answer when `!bc cancel` or `!bc redact` stopped `broadcast` while its audience was
/// being resolved: what the resolution queued is cancelled and the defaults it recorded are
/// switched off, so nothing is sent. `None` while it is still resolving.
async fn stopped_while_resolving(broadcasts: &Broadcasts, broadcast: &Broadcast) -> Option<Answer> {
    let id = broadcast.id;
    let state = match broadcasts.rooms.store.broadcast(id).await {
        Ok(now) => now.state,
        Err(error) => return Some(Answer::store_failed_in(broadcasts.rooms.language(), error)),
    };
    if state == BroadcastState::Resolving {
        return None;
    }
    tracing::info!(broadcast = %id, state = state.as_str(), "stopped while its audience was resolved");
    let cleared = async {
        broadcasts.rooms.store.cancel_deliveries(id).await?;
        broadcasts.rooms.store.set_default_active(id, false).await
    };
    if let Err(error) = cleared.await {
        return Some(Answer::store_failed_in(broadcasts.rooms.language(), error));
    }
    let titled = notices::titled(broadcast);
    Some(Answer::error(crate::base::i18n::t!(
        broadcasts.rooms.language(),
        "lifecycle-stopped-while-resolving",
        titled = titled
    )))
}

/// What happens to a resolved broadcast of `count` recipients: a dry run, nothing, a preview, or
/// the start.
async fn decide(broadcasts: &Broadcasts, broadcast: &Broadcast, count: i64, who: String) -> Answer {
    let (id, options, titled) = (broadcast.id, &broadcast.options, notices::titled(broadcast));
    let language = broadcasts.rooms.language();
    if options.dry_run {
        log_failure(broadcasts.rooms.store.delete_deliveries(id).await, id, "forget a dry run's audience"); // not for people
        settle(&broadcasts.rooms.store, id, BroadcastState::DryRun).await;
        return Answer::ok(crate::base::i18n::t!(language, "lifecycle-dry-run", who = who));
    }
    if count == 0 && !options.default {
        settle(&broadcasts.rooms.store, id, BroadcastState::Empty).await;
        return Answer::error(crate::base::i18n::t!(
            language,
            "lifecycle-nobody",
            titled = titled,
            who = who
        ));
    }
    if count as u64 > broadcasts.rooms.broadcast.confirm_above && !options.yes {
        if !settle(&broadcasts.rooms.store, id, BroadcastState::Prepared).await {
            return Answer::error(crate::base::i18n::t!(language, "lifecycle-database-failed-nothing-sent"));
        }
        let prefix = &broadcasts.rooms.broadcast.command_prefix;
        let quote = broadcast.message.summary_in(language).replace('\n', "\n> ");
        let from = from_whom(broadcasts, options);
        let when = match options.send_at {
            Some(at) => {
                let at = when::show(at, &broadcasts.rooms.broadcast.time_zone());
                format!(" {}", crate::base::i18n::t!(language, "lifecycle-preview-at", at = at))
            }
            None => String::new(),
        };
        let preview = crate::base::i18n::t!(
            language,
            "lifecycle-preview",
            titled = titled,
            from = from,
            who = who,
            when = when,
            quote = quote,
            prefix = prefix,
            id = id.to_string(),
        );
        return Answer::preview(id, preview);
    }
    start(broadcasts, id, BroadcastState::Resolving).await
}

/// A broadcast that cannot be prepared is cancelled; `reason` is the answer.
async fn abandon(broadcasts: &Broadcasts, id: BroadcastId, reason: String) -> Answer {
    settle(&broadcasts.rooms.store, id, BroadcastState::Cancelled).await;
    Answer::error(reason)
}

/// Moves a `resolving` broadcast to `to`; false (and a log line) when the store failed.
async fn settle(store: &Store, id: BroadcastId, to: BroadcastState) -> bool {
    match store.transition(id, BroadcastState::Resolving, to).await {
        Ok(_) => true,
        Err(error) => {
            tracing::error!(%error, broadcast = %id, to = to.as_str(), "cannot record a broadcast's state");
            false
        }
    }
}

fn log_failure(result: Result<(), StoreError>, id: BroadcastId, what: &str) {
    if let Err(error) = result {
        tracing::error!(%error, broadcast = %id, "cannot {what}");
    }
}

/// How many recipients are queued, and a sentence naming some of them and the opted-out.
async fn describe_queue(
    language: Language,
    store: &Store,
    broadcast: &Broadcast,
    targets: &[Target],
) -> Result<(i64, String), StoreError> {
    store.skip_opted_out(broadcast.id).await?;
    let counts = store.delivery_counts(broadcast.id).await?;
    let sample = store.sample_recipients(broadcast.id, SAMPLE).await?;
    let mut who = describe_audience(language, counts.pending, &sample, targets);
    if counts.skipped > 0 {
        who.push_str(&format!(
            " {}",
            crate::base::i18n::t!(language, "lifecycle-opted-out", count = counts.skipped)
        ));
    }
    Ok((counts.pending, who))
}

/// "42 recipients: @a, @b, … (and 32 more)".
fn describe_audience(
    language: Language,
    count: i64,
    sample: &[ruma::OwnedUserId],
    targets: &[Target],
) -> String {
    let shown: Vec<String> = sample.iter().map(|user| format!("`{user}`")).collect();
    let more = count.saturating_sub(sample.len() as i64);
    let mut text = crate::base::i18n::t!(language, "recipients", count = count);
    if !shown.is_empty() {
        text.push_str(&format!(": {}", shown.join(", ")));
        if more > 0 {
            text.push_str(&format!(
                " {}",
                crate::base::i18n::t!(language, "lifecycle-audience-more", count = more)
            ));
        }
    }
    if targets.is_empty() {
        text.push_str(&format!(" {}", crate::base::i18n::t!(language, "lifecycle-no-audience")));
    }
    text.push('.');
    text
}

/// Whether `sender` (of `level`) may manage `broadcast` (confirm, edit, retract, close its
/// poll): its creator, or someone who may address its whole audience. The refusal says why.
pub async fn may_manage(
    broadcasts: &Broadcasts,
    broadcast: &Broadcast,
    sender: &UserId,
    level: Level,
) -> Result<(), Answer> {
    if broadcast.created_by == sender {
        return Ok(());
    }
    let audience = Authorized::stored(&broadcast.audience)
        .map_err(|error| Answer::error(error.text(broadcasts.rooms.language())))?;
    audience::authorize(broadcasts.rooms.hs(), sender, level, audience.targets()).await.map(drop).map_err(
        |error| {
            Answer::error(crate::base::i18n::t!(
                broadcasts.rooms.language(),
                "lifecycle-may-not-manage",
                id = broadcast.id.to_string(),
                creator = broadcast.created_by.to_string(),
                error = error.to_string(),
            ))
        },
    )
}

/// Starts a broadcast that is in `from` (resolving, prepared or scheduled), or schedules it when
/// its `--at` time is still to come.
pub async fn start(broadcasts: &Broadcasts, id: BroadcastId, from: BroadcastState) -> Answer {
    let language = broadcasts.rooms.language();
    let store_failed = |error| Answer::store_failed_in(language, error);
    let send_at = match broadcasts.rooms.store.broadcast(id).await {
        Ok(broadcast) => broadcast.options.send_at,
        Err(error) => return store_failed(error),
    };
    let to = match send_at {
        Some(at) if at > now_ms() => BroadcastState::Scheduled,
        _ => BroadcastState::Running,
    };
    match broadcasts.rooms.store.transition(id, from, to).await {
        Ok(true) => {}
        Ok(false) => {
            return match broadcasts.rooms.store.broadcast(id).await {
                Ok(broadcast) => Answer::error(crate::base::i18n::t!(
                    language,
                    "lifecycle-cannot-start",
                    id = id.to_string(),
                    state = broadcast.state.as_str(),
                )),
                Err(error) => store_failed(error),
            };
        }
        Err(error) => return store_failed(error),
    }
    let broadcast = match broadcasts.rooms.store.broadcast(id).await {
        Ok(broadcast) => broadcast,
        Err(error) => return store_failed(error),
    };
    if let (BroadcastState::Scheduled, Some(at)) = (to, send_at) {
        let zone = broadcasts.rooms.broadcast.time_zone();
        tracing::info!(broadcast = %id, send_at = at, "broadcast scheduled");
        return Answer::ok(crate::base::i18n::t!(
            language,
            "lifecycle-scheduled",
            titled = notices::titled(&broadcast),
            at = when::show(at, &zone),
            length = when::show_length(language, at - now_ms()),
            prefix = &broadcasts.rooms.broadcast.command_prefix,
            id = id.to_string(),
        ));
    }
    progress::announce(language, &broadcasts.rooms.store, broadcasts.rooms.hs(), &broadcast).await;
    broadcasts.delivery.wake();
    tracing::info!(broadcast = %id, "broadcast started");
    let (titled, from) = (notices::titled(&broadcast), from_whom(broadcasts, &broadcast.options));
    Answer::ok(crate::base::i18n::t!(language, "lifecycle-sending", titled = titled, from = from))
}

/// Who a broadcast is sent as, for its preview and start: " from HR Team
/// (`@broadcast_hr:example.org`)" for a persona, and for the bot too when there are personas;
/// nothing when the bot is the only sender.
fn from_whom(broadcasts: &Broadcasts, options: &SendOptions) -> String {
    let language = broadcasts.rooms.language();
    let (name, user) = match options.persona.as_deref() {
        None if broadcasts.rooms.senders.personas().next().is_none() => return String::new(),
        None => (broadcasts.bot_displayname.as_str(), broadcasts.rooms.bot.as_ref()),
        Some(persona) => match broadcasts.rooms.senders.persona(persona) {
            Some(persona) => (persona.config.displayname.as_str(), persona.user_id()),
            None => {
                return format!(
                    " {}",
                    crate::base::i18n::t!(language, "lifecycle-from-lost-persona", persona = persona)
                )
            }
        },
    };
    let user = user.to_string();
    let from = match name {
        "" => crate::base::i18n::t!(language, "lifecycle-from-user", user = user),
        name => {
            crate::base::i18n::t!(
                language,
                "lifecycle-from-named",
                name = notices::escape_markdown(name),
                user = user
            )
        }
    };
    format!(" {from}")
}

/// Records broadcast `id` as a default for the rooms it reaches (with `--recursive`, those of the
/// hierarchy the sender may address) and for the `server` among `targets`.
async fn record_defaults(
    store: &Store,
    id: BroadcastId,
    targets: &[Target],
    rooms: &audience::Rooms,
) -> Result<(), AudienceError> {
    for (room, _) in &rooms.reached {
        store.add_default(id, &DefaultScope::Room(room.clone())).await?;
    }
    let server = targets.contains(&Target::Server);
    if server {
        store.add_default(id, &DefaultScope::Server).await?;
        store.start_new_user_mark().await?;
    }
    if rooms.reached.is_empty() && !server {
        return Err(AudienceError::new("audience-default-needs-a-room", &[]));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
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

    use crate::{base::store::AudienceOptions, testing::TestApp};

    /// A `resolving` broadcast of "Hello" to `audience` with `options`, from a control room.
    async fn resolving(test: &TestApp, audience: &[&str], options: SendOptions) -> Broadcast {
        resolving_by(test, "@admin:example.org", audience, options).await
    }

    /// [`resolving`], made by `creator`.
    async fn resolving_by(
        test: &TestApp,
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

    async fn state(test: &TestApp, id: BroadcastId) -> BroadcastState {
        test.store().broadcast(id).await.unwrap().state
    }

    #[tokio::test]
    async fn a_small_audience_starts_at_once_and_a_large_one_waits_for_confirmation() {
        let test = TestApp::with_config("broadcast:\n  confirm_above: 2\n").await;
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
            answer.markdown.starts_with(&format!(
                "**Preview of {} «Hello»** — 3 recipients: `@a:example.org`",
                large.id
            )),
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
        let test = TestApp::with_config("language: de\nbroadcast:\n  confirm_above: 2\n").await;
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
        let config = format!("{}broadcast:\n  confirm_above: 1\n", crate::testing::HR_PERSONA);
        let test = TestApp::with_config(&config).await;
        let people: Vec<String> =
            ["a", "b"].iter().map(|name| test.hs.user(name, None).to_string()).collect();
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
        let test = TestApp::new().await;
        let alice = test.hs.user("alice", None).to_string();
        let dry = resolving(&test, &[&alice], SendOptions { dry_run: true, ..SendOptions::default() }).await;
        let answer = finish_preparing(&test.broadcasts, &dry).await;
        assert_eq!(answer, Answer::ok("Dry run, nothing sent: 1 recipient: `@alice:example.org`."));
        assert_eq!(state(&test, dry.id).await, BroadcastState::DryRun);
        assert_eq!(test.store().delivery_counts(dry.id).await.unwrap().total(), 0, "nothing stays queued");

        let except = AudienceOptions { except: vec![alice.as_str().try_into().unwrap()], recursive: false };
        let empty =
            resolving(&test, &[&alice], SendOptions { audience: except, ..SendOptions::default() }).await;
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
        let test = TestApp::new().await;
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
        let test = TestApp::new().await;
        let owner = test.hs.user("owner", None);
        let broadcaster = test.hs.user("bea", None);
        let (alice, carol) = (test.hs.user("alice", None), test.hs.user("carol", None));
        let space = test.hs.room(&owner, &[&broadcaster, &alice], true);
        test.hs.set_power(&space, &broadcaster, 50);
        let board = test.hs.room(&owner, &[&carol], true); // bea is not in it
        let team = test.hs.room(&owner, &[&broadcaster], true);
        test.hs.set_power(&team, &broadcaster, 50);
        test.hs.with(|state| {
            state.rooms.get_mut(&space).unwrap().children.extend([board.clone(), team.clone()])
        });
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
}
