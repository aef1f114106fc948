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
    let (id, language) = (broadcast.id, broadcasts.rooms.language());
    let audience = match Authorized::stored(&broadcast.audience) {
        Ok(audience) => audience,
        Err(error) => {
            let (id, error) = (id.to_string(), error.to_string());
            let reason =
                crate::base::i18n::t!(language, "lifecycle-audience-unreadable", id = id, error = error);
            return abandon(&broadcasts.rooms.store, broadcast.id, reason).await;
        }
    };
    let rooms = match queue_audience(broadcasts, broadcast, &audience).await {
        Ok(rooms) => rooms,
        Err(error) => return abandon(&broadcasts.rooms.store, id, error.text(language)).await,
    };
    if let Some(stopped) = stopped_while_resolving(broadcasts, broadcast).await {
        return stopped;
    }
    // A re-dispatched command counts what an earlier run queued too.
    let store = &broadcasts.rooms.store;
    let (count, mut who) = match describe_queue(language, store, broadcast, audience.targets()).await {
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

/// Queues the recipients of `broadcast`'s checked `audience`: the rooms it reaches, its
/// welcome recorded when it is a default, and the users of each streamed into the queue. On a
/// failure what was queued is forgotten. Returns the rooms reached and left out.
async fn queue_audience(
    broadcasts: &Broadcasts,
    broadcast: &Broadcast,
    audience: &Authorized,
) -> Result<audience::Rooms, AudienceError> {
    let (id, options, rooms_layer) = (broadcast.id, &broadcast.options, &broadcasts.rooms);
    let level = rooms_layer.permissions.level(&broadcast.created_by);
    let recursive = options.audience.recursive;
    let rooms = audience::rooms(rooms_layer.hs(), audience, recursive, &broadcast.created_by, level).await?;
    if options.default && !options.dry_run {
        record_defaults(&rooms_layer.store, id, audience.targets(), &rooms).await?;
    }
    let exclusions =
        Exclusions::new(&rooms_layer.bot, &rooms_layer.broadcast.exclude, &options.audience.except);
    let needs_names = broadcast.message.needs_displayname();
    let (store, language) = (&rooms_layer.store, rooms_layer.language());
    let resolved = audience::resolve(
        store,
        rooms_layer.hs(),
        &exclusions,
        id,
        audience.targets(),
        &rooms,
        needs_names,
        language,
    );
    if let Err(error) = resolved.await {
        log_failure(store.delete_deliveries(id).await, id, "forget a failed audience"); // not for people
        return Err(error);
    }
    Ok(rooms)
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
async fn abandon(store: &Store, id: BroadcastId, reason: String) -> Answer {
    settle(store, id, BroadcastState::Cancelled).await;
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
mod tests;
