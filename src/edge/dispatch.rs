//! Takes events out of the inbox, those people wait for first (see
//! [`Lane`](crate::base::store::Lane)), each lane oldest first, and routes each to the module
//! that owns it: the bot's own memberships to `control_rooms`, other joins to `defaults`, `!bc`
//! lines in control rooms to `commands`, messages in DMs and reply threads to `relay`, read
//! receipts and answers to polls to `relay`, ✅ on a preview to the broadcast `lifecycle`.
//!
//! An event is removed from the inbox once handled, or once it failed for a reason that trying
//! again cannot change (answered where a person is waiting); a failure that may pass (the
//! database, a homeserver that is failing) is tried again later, a few times. The keys of handled
//! events are kept a week, so that a transaction Synapse pushes again is not handled twice.
//! Nothing that waits on another server runs inline: it is left to bounded background work.

use std::sync::Arc;

use ruma::{
    events::{
        relation::Annotation,
        room::{
            member::{MembershipState, OriginalRoomMemberEvent},
            message::{MessageType, OriginalRoomMessageEvent, Relation},
        },
        AnyMessageLikeEvent, AnyStateEvent, AnyTimelineEvent, MessageLikeEvent, StateEvent,
    },
    EventId, OwnedEventId, RoomId, UserId,
};
use serde_json::Value;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify, Semaphore};

use crate::{
    base::{
        e2ee::{rooms::Undecryptable, Crypto},
        permissions::Level,
        poll,
        registration::is_own_user,
        store::{BroadcastState, InboxEvent, Store, StoreError, RECEIPT_EVENT_TYPE, RECEIPT_KEY_PREFIX},
    },
    broadcasts::Broadcasts,
    broadcasts::{defaults, lifecycle},
    edge::commands::{self, Answer, Context},
    rooms::{control_rooms, handled::Handled, relay},
};

/// How many inbox events are read at once.
const BATCH: i64 = 50;
/// How many events' background work (what waits on other servers) runs at once.
const BACKGROUND_AT_ONCE: usize = 8;
/// How long an event whose work runs in the background is not read again; when the bot stops
/// before the work ends, the event is handled again after this.
const BACKGROUND_LEASE_MS: i64 = 5 * 60 * 1000;
/// How long an event waits for a background slot when all are taken; no try is used.
const BACKGROUND_FULL_WAIT_MS: i64 = 5_000;
/// How many times an event whose handling failed for a reason that may pass is tried in all.
const MAX_TRIES: i64 = 8;
/// The longest wait between two tries of an event (they double from 2 s).
const MAX_RETRY_WAIT_MS: i64 = 5 * 60 * 1000;
/// How long the keys of handled events are kept (a transaction pushed again is ignored).
const HANDLED_KEPT_MS: i64 = 7 * 24 * 60 * 60 * 1000;
const PRUNE_EVERY: Duration = Duration::from_secs(60 * 60);

/// Dispatches inbox events until `shutdown` turns true. Each event leaves the inbox once its
/// handling succeeded or failed for a reason that trying again cannot change; other failures
/// are tried again later (see [`Handled`]), and work that waits on other servers runs in at most
/// [`BACKGROUND_AT_ONCE`] background tasks, never holding up the next event.
pub async fn run(broadcasts: Arc<Broadcasts>, inbox_ready: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
    let later = Arc::new(Later::new(inbox_ready.clone()));
    let mut pruned_at: Option<Instant> = None;
    loop {
        if *shutdown.borrow() {
            return;
        }
        if pruned_at.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
            prune_handled(&broadcasts.rooms.store).await;
            pruned_at = Some(Instant::now());
        }
        let batch = match broadcasts.rooms.store.inbox_batch(BATCH).await {
            Ok(batch) => batch,
            Err(error) => {
                tracing::error!(%error, "cannot read the inbox; trying again shortly");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.changed() => return,
                }
                continue;
            }
        };
        if batch.is_empty() {
            tokio::select! {
                _ = inbox_ready.notified() => {}
                _ = later.until_next_try(&broadcasts.rooms.store) => {}
                _ = shutdown.changed() => return,
            }
            continue;
        }
        if let Err(error) = dispatch_batch(&broadcasts, &later, batch).await {
            // The database fails: what was not recorded stays as it was and is read again
            // (handlers allow that: answers and copies have transaction IDs made from the event).
            tracing::error!(%error, "cannot record how inbox events were handled; trying again shortly");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// Dispatches `batch` in order. A handled event leaves the inbox at once, in one commit with
/// the read receipts handled before it: receipts come by the thousand and marking one read
/// twice changes nothing, while a command run twice could act twice.
async fn dispatch_batch(
    broadcasts: &Arc<Broadcasts>,
    later: &Arc<Later>,
    batch: Vec<InboxEvent>,
) -> Result<(), StoreError> {
    let mut done = Vec::with_capacity(batch.len());
    for event in batch {
        match dispatch(broadcasts, &event.event_json).await {
            Handled::Done => {
                let receipt = event.key.starts_with(RECEIPT_KEY_PREFIX);
                done.push(event);
                if !receipt {
                    broadcasts.rooms.store.inbox_handled(&done).await?;
                    done.clear();
                }
            }
            handled => settle(broadcasts, later, event, handled).await?,
        }
    }
    broadcasts.rooms.store.inbox_handled(&done).await
}

/// The events put off for a later try: those whose work runs in the background (in one of
/// [`BACKGROUND_AT_ONCE`] slots), those that failed for a reason that may pass, and when the
/// next of them is due. The inbox is asked for that time only when it is not known (at start-up,
/// once a known time has passed): the question scans the inbox table, and on PostgreSQL that
/// reads every event deleted since the table was last vacuumed. Asked whenever the inbox was
/// empty, it made each idle moment of a large broadcast cost more than the one before.
struct Later {
    background: Arc<Semaphore>,
    next: tokio::sync::Mutex<NextTry>,
    /// The dispatcher's wake-up, for an event put off while it sleeps.
    wake: Arc<Notify>,
}

/// When the next event put off is due, as far as the dispatcher knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NextTry {
    /// The inbox has to be asked.
    Unknown,
    /// Not before this time (Unix ms); perhaps later, when that event was handled meanwhile.
    At(i64),
    /// No event is put off.
    Never,
}

impl Later {
    fn new(wake: Arc<Notify>) -> Self {
        let background = Arc::new(Semaphore::new(BACKGROUND_AT_ONCE));
        Self { background, next: tokio::sync::Mutex::new(NextTry::Unknown), wake }
    }

    /// Keeps `event` in the inbox, read again at `not_before` (Unix ms), after `tries` failures.
    async fn put_off(
        &self,
        store: &Store,
        event: &InboxEvent,
        tries: i64,
        not_before: i64,
    ) -> Result<(), StoreError> {
        store.inbox_later(event, tries, not_before).await?;
        let mut next = self.next.lock().await;
        *next = match *next {
            NextTry::At(at) => NextTry::At(at.min(not_before)),
            NextTry::Never => NextTry::At(not_before),
            NextTry::Unknown => NextTry::Unknown,
        };
        drop(next);
        self.wake.notify_one();
        Ok(())
    }

    /// Sleeps until the next event put off is due (forever when none is).
    async fn until_next_try(&self, store: &Store) {
        let next = {
            let mut next = self.next.lock().await;
            if matches!(*next, NextTry::At(at) if at <= crate::base::store::now_ms()) {
                *next = NextTry::Unknown;
            }
            if *next == NextTry::Unknown {
                // Held while asking: an event put off meanwhile is counted once the answer is in.
                *next = match store.inbox_next_due().await {
                    Ok(Some(due)) => NextTry::At(due),
                    Ok(None) => NextTry::Never,
                    Err(error) => {
                        tracing::error!(%error, "cannot read the inbox");
                        NextTry::At(crate::base::store::now_ms() + 1000)
                    }
                };
            }
            *next
        };
        match next {
            NextTry::At(at) => {
                let wait = u64::try_from(at - crate::base::store::now_ms()).unwrap_or(0);
                tokio::time::sleep(Duration::from_millis(wait)).await
            }
            NextTry::Unknown | NextTry::Never => std::future::pending().await,
        }
    }
}

async fn prune_handled(store: &Store) {
    let before = crate::base::store::now_ms() - HANDLED_KEPT_MS;
    if let Err(error) = store.prune_handled(before).await {
        tracing::warn!(%error, "cannot forget the keys of events handled long ago");
    }
}

/// Records what became of `event`; work left for the background is started here.
async fn settle(
    broadcasts: &Arc<Broadcasts>,
    later: &Arc<Later>,
    event: InboxEvent,
    handled: Handled,
) -> Result<(), StoreError> {
    let store = &broadcasts.rooms.store;
    let Handled::Later(work) = handled else { return record(store, later, &event, handled).await };
    let Ok(slot) = later.background.clone().try_acquire_owned() else {
        tracing::debug!(event = %event.key, "all background slots are taken; the event waits");
        let not_before = crate::base::store::now_ms() + BACKGROUND_FULL_WAIT_MS;
        return later.put_off(store, &event, event.tries, not_before).await;
    };
    let lease = crate::base::store::now_ms() + BACKGROUND_LEASE_MS;
    later.put_off(store, &event, event.tries, lease).await?;
    let (broadcasts, later) = (broadcasts.clone(), later.clone());
    tokio::spawn(async move {
        let handled = work.await;
        drop(slot);
        if let Err(error) = record(&broadcasts.rooms.store, &later, &event, handled).await {
            // The lease runs out and the event is handled again.
            tracing::error!(%error, "cannot record how an inbox event was handled");
        }
    });
    Ok(())
}

/// Removes a handled event from the inbox, or keeps it for a later try.
async fn record(
    store: &Store,
    later: &Later,
    event: &InboxEvent,
    handled: Handled,
) -> Result<(), StoreError> {
    let Handled::Retry(reason) = handled else {
        return store.inbox_handled(std::slice::from_ref(event)).await;
    };
    let tries = event.tries + 1;
    if tries >= MAX_TRIES {
        tracing::error!(event = %event.key, %reason, tries, "an inbox event could not be handled; given up");
        return store.inbox_handled(std::slice::from_ref(event)).await;
    }
    let wait = (2_000_i64 << (tries - 1).min(20)).min(MAX_RETRY_WAIT_MS);
    later.put_off(store, event, tries, crate::base::store::now_ms() + wait).await
}

/// Routes one event.
async fn dispatch(broadcasts: &Arc<Broadcasts>, json: &str) -> Handled {
    let Ok(raw) = serde_json::from_str::<Value>(json) else {
        tracing::warn!("an inbox event is not JSON; ignored");
        return Handled::Done;
    };
    if raw["type"] == "m.room.encrypted" {
        return match decrypted(broadcasts, &raw, json).await {
            Some(decrypted) => route(broadcasts, decrypted).await,
            None => Handled::Done,
        };
    }
    route(broadcasts, raw).await
}

/// How long an encrypted event waits for its room key (or, decrypted, to be handled after a
/// failure that may pass) before it is given up.
const KEY_WAIT_MS: i64 = 10 * 60 * 1000;
/// How often parked encrypted events are tried again, besides when room keys arrive.
const UNDECRYPTED_RETRY: std::time::Duration = std::time::Duration::from_secs(5);

/// The decrypted form of an encrypted event; `None` when there is none (yet): an event whose
/// room key has not arrived is parked and tried again by [`retry_undecrypted`].
async fn decrypted(broadcasts: &Broadcasts, raw: &Value, json: &str) -> Option<Value> {
    let crypto = broadcasts.rooms.crypto.as_ref()?;
    match crypto.decrypt(raw).await {
        Ok(event) => Some(event),
        Err(Undecryptable::KeyMissing(reason)) => {
            tracing::debug!(%reason, event = %raw["event_id"], "an encrypted event waits for its room key");
            let event_id = raw["event_id"].as_str().unwrap_or_default();
            if let Err(error) = broadcasts.rooms.store.park_undecrypted(event_id, json).await {
                tracing::error!(%error, "cannot keep an encrypted event for later; it is lost");
            }
            None
        }
        Err(Undecryptable::Never(reason)) => {
            tracing::warn!(%reason, event = %raw["event_id"], room = %raw["room_id"], "an encrypted event cannot be decrypted; ignored");
            None
        }
    }
}

/// Tries the parked encrypted events again whenever room keys arrive (and every few seconds),
/// until `shutdown`; one that waited longer than [`KEY_WAIT_MS`] is given up with a log line.
pub async fn retry_undecrypted(broadcasts: Arc<Broadcasts>, mut shutdown: watch::Receiver<bool>) {
    let Some(crypto) = broadcasts.rooms.crypto.clone() else { return };
    while !*shutdown.borrow() {
        tokio::select! {
            _ = crypto.keys_arrived.notified() => {}
            _ = tokio::time::sleep(UNDECRYPTED_RETRY) => {}
            _ = shutdown.changed() => return,
        }
        let parked = match broadcasts.rooms.store.undecrypted(BATCH).await {
            Ok(parked) => parked,
            Err(error) => {
                tracing::warn!(%error, "cannot read the encrypted events waiting for keys");
                continue;
            }
        };
        for (event_id, json, parked_at) in parked {
            retry_one(&broadcasts, &crypto, &event_id, &json, parked_at).await;
        }
    }
}

/// One more try of a parked encrypted event.
async fn retry_one(
    broadcasts: &Arc<Broadcasts>,
    crypto: &Crypto,
    event_id: &str,
    json: &str,
    parked_at: i64,
) {
    let Ok(raw) = serde_json::from_str::<Value>(json) else {
        return forget_undecrypted(&broadcasts.rooms.store, event_id).await;
    };
    match crypto.decrypt(&raw).await {
        Ok(event) => match route(broadcasts, event).await {
            // Kept parked: tried again with the next round, until its time is up.
            Handled::Retry(reason) if crate::base::store::now_ms() - parked_at <= KEY_WAIT_MS => {
                tracing::debug!(%reason, event = event_id, "a decrypted event will be handled again");
            }
            Handled::Retry(reason) => {
                tracing::error!(%reason, event = event_id, "a decrypted event could not be handled; given up");
                forget_undecrypted(&broadcasts.rooms.store, event_id).await;
            }
            Handled::Later(work) => {
                forget_undecrypted(&broadcasts.rooms.store, event_id).await;
                tokio::spawn(work);
            }
            Handled::Done => forget_undecrypted(&broadcasts.rooms.store, event_id).await,
        },
        Err(Undecryptable::KeyMissing(reason)) if crate::base::store::now_ms() - parked_at > KEY_WAIT_MS => {
            tracing::warn!(%reason, event = event_id, sender = %raw["sender"], "no room key arrived for an encrypted event; given up");
            forget_undecrypted(&broadcasts.rooms.store, event_id).await;
        }
        Err(Undecryptable::KeyMissing(_)) => {}
        Err(Undecryptable::Never(reason)) => {
            tracing::warn!(%reason, event = event_id, "an encrypted event cannot be decrypted; ignored");
            forget_undecrypted(&broadcasts.rooms.store, event_id).await;
        }
    }
}

async fn forget_undecrypted(store: &Store, event_id: &str) {
    if let Err(error) = store.forget_undecrypted(event_id).await {
        tracing::warn!(%error, "cannot forget an encrypted event that was handled");
    }
}

/// Routes one event, decrypted if it was encrypted.
async fn route(broadcasts: &Arc<Broadcasts>, raw: Value) -> Handled {
    if raw["type"] == RECEIPT_EVENT_TYPE {
        return on_receipt(&broadcasts.rooms.store, &raw).await;
    }
    if let Some(event_type) = raw["type"].as_str().filter(|kind| poll::RESPONSE_TYPES.contains(kind)) {
        return relay::on_poll_answer(&broadcasts.rooms.store, event_type, &raw).await;
    }
    let event: AnyTimelineEvent = match serde_json::from_value(raw.clone()) {
        Ok(event) => event,
        Err(error) => {
            // Event types the bot does not know, or content it cannot read: nothing to do.
            tracing::debug!(%error, "event ignored");
            return Handled::Done;
        }
    };
    if is_own_user(&broadcasts.rooms.bot, event.sender()) {
        return Handled::Done;
    }
    if raw["type"] == "m.room.encryption" {
        return on_encryption(broadcasts, event.room_id()).await;
    }
    if matches!(raw["type"].as_str(), Some("m.room.join_rules" | "m.room.history_visibility")) {
        return control_rooms::on_access_change(&broadcasts.rooms, event.room_id(), &raw["content"]).await;
    }
    match event {
        AnyTimelineEvent::State(AnyStateEvent::RoomMember(StateEvent::Original(member))) => {
            on_member(broadcasts, &member).await
        }
        AnyTimelineEvent::MessageLike(AnyMessageLikeEvent::RoomMessage(MessageLikeEvent::Original(
            message,
        ))) => on_message(broadcasts, &message, &raw).await,
        AnyTimelineEvent::MessageLike(AnyMessageLikeEvent::RoomRedaction(_)) => {
            on_redaction(broadcasts, event.room_id(), event.sender(), &raw).await
        }
        AnyTimelineEvent::MessageLike(AnyMessageLikeEvent::Reaction(MessageLikeEvent::Original(
            reaction,
        ))) => {
            on_reaction(broadcasts, &reaction.room_id, &reaction.sender, &reaction.content.relates_to).await
        }
        _ => Handled::Done,
    }
}

/// Someone turned on encryption in a room of the bot: what it sends there is encrypted from now
/// on (when the bot encrypts), and a DM's copies count as encrypted.
async fn on_encryption(broadcasts: &Broadcasts, room: &RoomId) -> Handled {
    if let Some(crypto) = &broadcasts.rooms.crypto {
        if let Err(error) = crypto.mark_encrypted(room).await {
            tracing::error!(%error, %room, "cannot record that a room is encrypted; it is looked up on the next send");
        }
    }
    Handled::of("cannot record that a DM is encrypted", broadcasts.rooms.store.dm_encrypted(room).await)
}

/// Membership changes in DMs of the bot or a persona (kept, so that a send needs no request to
/// know whether the DM is usable), the bot's own membership changes, and joins of others
/// (welcome messages).
async fn on_member(broadcasts: &Arc<Broadcasts>, member: &OriginalRoomMemberEvent) -> Handled {
    match broadcasts.rooms.store.dm_by_room(&member.room_id).await {
        Ok(Some(dm)) => {
            let Some(dms) = broadcasts.rooms.senders.dms_of(dm.persona.as_deref()) else {
                tracing::warn!(room = %member.room_id, "a DM of a persona no longer in the config");
                return Handled::Done;
            };
            let content = &member.content;
            let changed = dms.member_changed(
                &dm,
                &member.state_key,
                &content.membership,
                content.displayname.as_deref(),
            );
            return Handled::of("cannot record a membership in a DM", changed.await);
        }
        Ok(None) => {}
        Err(error) => return Handled::of("cannot look up DM rooms", Err(error)),
    }
    if let Some(crypto) = &broadcasts.rooms.crypto {
        // Who reads what the bot encrypts there changed (a DM's readers are its recipient).
        crypto.members_changed(&member.room_id);
    }
    if member.state_key == broadcasts.rooms.bot {
        return control_rooms::on_bot_membership(&broadcasts.rooms, member).await;
    }
    let was_joined = member
        .unsigned
        .prev_content
        .as_ref()
        .is_some_and(|before| before.membership == MembershipState::Join);
    if member.content.membership != MembershipState::Join || was_joined {
        return Handled::Done;
    }
    let name = member.content.displayname.as_deref();
    defaults::on_join(broadcasts, &member.room_id, &member.state_key, name).await
}

/// A message: a recipient's in their DM, a command in a control room, or an answer in a reply
/// thread.
async fn on_message(
    broadcasts: &Arc<Broadcasts>,
    message: &OriginalRoomMessageEvent,
    raw: &Value,
) -> Handled {
    let (room, event_id, sender) = (&message.room_id, &message.event_id, &message.sender);
    match broadcasts.rooms.store.dm_by_room(room).await {
        Ok(Some(dm)) if dm.user_id == *sender => {
            return relay::on_dm_message(&broadcasts.rooms, &dm, room, event_id, raw).await
        }
        Ok(Some(_)) => return Handled::Done, // someone else in a recipient's DM
        Ok(None) => {}
        Err(error) => return Handled::of("cannot look up DM rooms", Err(error)),
    }
    let edit = matches!(message.content.relates_to, Some(Relation::Replacement(_)));
    if edit {
        return Handled::Done;
    }
    if let MessageType::Text(text) = &message.content.msgtype {
        let reply_to = match &message.content.relates_to {
            Some(Relation::Reply(reply)) => Some(reply.in_reply_to.event_id.clone()),
            // A thread message's `in_reply_to` is only a real reply when it is not the fallback
            // to the thread's latest event (which may be a recipient's private reply).
            Some(Relation::Thread(thread)) if !thread.is_falling_back => {
                thread.in_reply_to.as_ref().map(|reply| reply.event_id.clone())
            }
            _ => None,
        };
        let body = if reply_to.is_some() { strip_reply_fallback(&text.body) } else { &text.body };
        if let Some(line) = command_line(&broadcasts.rooms.broadcast.command_prefix, body) {
            return on_command(broadcasts, room, event_id, sender, line, body, reply_to).await;
        }
    }
    relay::on_thread_message(&broadcasts.rooms, room, sender, event_id, raw).await
}

/// A redaction by a recipient in their DM retracts the relayed copy.
async fn on_redaction(broadcasts: &Broadcasts, room: &RoomId, sender: &UserId, raw: &Value) -> Handled {
    let redacts = raw["content"]["redacts"].as_str().or(raw["redacts"].as_str());
    let Some(redacts) = redacts.and_then(|id| EventId::parse(id).ok()) else { return Handled::Done };
    match broadcasts.rooms.store.dm_by_room(room).await {
        Ok(Some(dm)) if dm.user_id == sender => {
            relay::on_dm_redaction(&broadcasts.rooms, room, &redacts).await
        }
        Ok(_) => Handled::Done,
        Err(error) => Handled::of("cannot look up DM rooms", Err(error)),
    }
}

/// A read receipt the HTTP edge put into the inbox.
async fn on_receipt(store: &Store, raw: &Value) -> Handled {
    let room = raw["room_id"].as_str().and_then(|room| RoomId::parse(room).ok());
    let user = raw["sender"].as_str().and_then(|user| UserId::parse(user).ok());
    let (Some(room), Some(user)) = (room, user) else {
        tracing::warn!("a stored read receipt has no room or reader; ignored");
        return Handled::Done;
    };
    Handled::of("cannot record a read receipt", relay::on_receipt(store, &room, &user).await)
}

/// A reply's body without the quoted fallback of the replied-to message that older clients put
/// first (`> <@alice:example.org> …` lines, then an empty line).
fn strip_reply_fallback(body: &str) -> &str {
    if !body.starts_with("> ") {
        return body;
    }
    let mut rest = body;
    while let Some(line_end) = rest.find('\n') {
        if !rest.starts_with("> ") && !rest.starts_with('>') {
            break;
        }
        rest = &rest[line_end + 1..];
    }
    rest.trim_start_matches('\n')
}

/// Whether the first line of `body` is a command: the prefix alone or followed by whitespace.
fn command_line<'a>(prefix: &str, body: &'a str) -> Option<&'a str> {
    let line = body.lines().next()?.trim_end();
    let rest = line.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with(char::is_whitespace)).then_some(line)
}

/// A command line (`line`, the first line of `body`) typed by `sender` in `room`.
#[tracing::instrument(skip_all, fields(room = %room, sender = %sender))]
async fn on_command(
    broadcasts: &Arc<Broadcasts>,
    room: &RoomId,
    event_id: &EventId,
    sender: &UserId,
    line: &str,
    body: &str,
    reply_to: Option<OwnedEventId>,
) -> Handled {
    let level = broadcasts.rooms.permissions.level(sender);
    let is_control_room = match broadcasts.rooms.store.is_control_room(room).await {
        Ok(is_control_room) => is_control_room,
        Err(error) => return Handled::of("cannot look up control rooms", Err(error)),
    };
    let prefix = &broadcasts.rooms.broadcast.command_prefix;
    let answer = if !is_control_room {
        // Only an admin is told why; anyone else is not answered outside control rooms.
        let hint = crate::base::i18n::t!(
            broadcasts.rooms.language(),
            "dispatch-outside-control-room",
            prefix = prefix.as_str()
        );
        (level == Level::Admin).then(|| Answer::error(hint))
    } else if level < Level::Broadcaster {
        tracing::info!(%level, "command refused: not allowed");
        Some(Answer::error(crate::base::i18n::t!(
            broadcasts.rooms.language(),
            "dispatch-not-allowed",
            level = level.to_string()
        )))
    } else {
        match commands::parse_command(broadcasts.rooms.language(), prefix, line) {
            Ok(command) => {
                let body = body.split_once('\n').map(|(_, rest)| rest).unwrap_or("");
                let ctx = Context { broadcasts, room, event_id, sender, level, body, reply_to };
                commands::run(&ctx, command).await
            }
            Err(answer) => Some(answer),
        }
    };
    if let Some(answer) = answer {
        lifecycle::answer_command(broadcasts, room, event_id, &answer).await;
    }
    // A command is answered, also when it failed: running it again could do it twice.
    Handled::Done
}

/// ✅ on a broadcast's preview, by someone who may send, confirms it.
async fn on_reaction(
    broadcasts: &Arc<Broadcasts>,
    room: &RoomId,
    sender: &UserId,
    annotation: &Annotation,
) -> Handled {
    if !annotation.key.starts_with('✅') || broadcasts.rooms.permissions.level(sender) < Level::Broadcaster {
        return Handled::Done;
    }
    let broadcast = match broadcasts.rooms.store.broadcast_by_preview(&annotation.event_id).await {
        Ok(Some(broadcast)) if broadcast.control_room_id == room => broadcast,
        Ok(_) => return Handled::Done,
        Err(error) => return Handled::of("cannot look up a preview", Err(error)),
    };
    if let Err(refused) =
        lifecycle::may_manage(broadcasts, &broadcast, sender, broadcasts.rooms.permissions.level(sender))
            .await
    {
        tracing::info!(answer = %refused.markdown, "confirmation by reaction refused");
        return Handled::Done;
    }
    tracing::info!(broadcast = %broadcast.id, %sender, "preview confirmed with a reaction");
    let answer = lifecycle::start(broadcasts, broadcast.id, BroadcastState::Prepared).await;
    if !answer.ok {
        tracing::info!(answer = %answer.markdown, "confirmation by reaction refused");
    }
    Handled::Done
}

#[cfg(test)]
mod tests;
