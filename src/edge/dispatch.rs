//! Takes events out of the inbox, oldest first, and routes each to the module that owns it: the
//! bot's own memberships to `control_rooms`, other joins to `defaults`, `!bc` lines in control
//! rooms to `commands`, messages in DMs and reply threads to `relay`, read receipts and answers
//! to polls to `relay`, ✅ on a preview to the broadcast `lifecycle`.
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
        store::{BroadcastState, InboxEvent, StoreError, RECEIPT_EVENT_TYPE, RECEIPT_KEY_PREFIX},
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
    let background = Arc::new(Semaphore::new(BACKGROUND_AT_ONCE));
    let mut pruned_at: Option<Instant> = None;
    loop {
        if *shutdown.borrow() {
            return;
        }
        if pruned_at.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
            prune_handled(&broadcasts).await;
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
                _ = until_next_try(&broadcasts) => {}
                _ = shutdown.changed() => return,
            }
            continue;
        }
        if let Err(error) = dispatch_batch(&broadcasts, &background, batch).await {
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
    background: &Arc<Semaphore>,
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
            handled => settle(broadcasts, background, event, handled).await?,
        }
    }
    broadcasts.rooms.store.inbox_handled(&done).await
}

/// Sleeps until the next event put off for a later try is due (forever when none is).
async fn until_next_try(broadcasts: &Broadcasts) {
    match broadcasts.rooms.store.inbox_next_due().await {
        Ok(Some(due)) => {
            let wait = u64::try_from(due - crate::base::store::now_ms()).unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(wait)).await
        }
        Ok(None) => std::future::pending().await,
        Err(error) => {
            tracing::error!(%error, "cannot read the inbox");
            tokio::time::sleep(Duration::from_secs(1)).await
        }
    }
}

async fn prune_handled(broadcasts: &Broadcasts) {
    let before = crate::base::store::now_ms() - HANDLED_KEPT_MS;
    if let Err(error) = broadcasts.rooms.store.prune_handled(before).await {
        tracing::warn!(%error, "cannot forget the keys of events handled long ago");
    }
}

/// Records what became of `event`; work left for the background is started here.
async fn settle(
    broadcasts: &Arc<Broadcasts>,
    background: &Arc<Semaphore>,
    event: InboxEvent,
    handled: Handled,
) -> Result<(), StoreError> {
    let Handled::Later(work) = handled else { return record(broadcasts, &event, handled).await };
    let Ok(slot) = background.clone().try_acquire_owned() else {
        tracing::debug!(event = %event.key, "all background slots are taken; the event waits");
        let not_before = crate::base::store::now_ms() + BACKGROUND_FULL_WAIT_MS;
        return broadcasts.rooms.store.inbox_later(&event, event.tries, not_before).await;
    };
    let lease = crate::base::store::now_ms() + BACKGROUND_LEASE_MS;
    broadcasts.rooms.store.inbox_later(&event, event.tries, lease).await?;
    let broadcasts = broadcasts.clone();
    tokio::spawn(async move {
        let handled = work.await;
        drop(slot);
        if let Err(error) = record(&broadcasts, &event, handled).await {
            // The lease runs out and the event is handled again.
            tracing::error!(%error, "cannot record how an inbox event was handled");
        }
    });
    Ok(())
}

/// Removes a handled event from the inbox, or keeps it for a later try.
async fn record(broadcasts: &Broadcasts, event: &InboxEvent, handled: Handled) -> Result<(), StoreError> {
    let Handled::Retry(reason) = handled else {
        return broadcasts.rooms.store.inbox_handled(std::slice::from_ref(event)).await;
    };
    let tries = event.tries + 1;
    if tries >= MAX_TRIES {
        tracing::error!(event = %event.key, %reason, tries, "an inbox event could not be handled; given up");
        return broadcasts.rooms.store.inbox_handled(std::slice::from_ref(event)).await;
    }
    let wait = (2_000_i64 << (tries - 1).min(20)).min(MAX_RETRY_WAIT_MS);
    broadcasts.rooms.store.inbox_later(event, tries, crate::base::store::now_ms() + wait).await
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
        return forget_undecrypted(broadcasts, event_id).await;
    };
    match crypto.decrypt(&raw).await {
        Ok(event) => match route(broadcasts, event).await {
            // Kept parked: tried again with the next round, until its time is up.
            Handled::Retry(reason) if crate::base::store::now_ms() - parked_at <= KEY_WAIT_MS => {
                tracing::debug!(%reason, event = event_id, "a decrypted event will be handled again");
            }
            Handled::Retry(reason) => {
                tracing::error!(%reason, event = event_id, "a decrypted event could not be handled; given up");
                forget_undecrypted(broadcasts, event_id).await;
            }
            Handled::Later(work) => {
                forget_undecrypted(broadcasts, event_id).await;
                tokio::spawn(work);
            }
            Handled::Done => forget_undecrypted(broadcasts, event_id).await,
        },
        Err(Undecryptable::KeyMissing(reason)) if crate::base::store::now_ms() - parked_at > KEY_WAIT_MS => {
            tracing::warn!(%reason, event = event_id, sender = %raw["sender"], "no room key arrived for an encrypted event; given up");
            forget_undecrypted(broadcasts, event_id).await;
        }
        Err(Undecryptable::KeyMissing(_)) => {}
        Err(Undecryptable::Never(reason)) => {
            tracing::warn!(%reason, event = event_id, "an encrypted event cannot be decrypted; ignored");
            forget_undecrypted(broadcasts, event_id).await;
        }
    }
}

async fn forget_undecrypted(broadcasts: &Broadcasts, event_id: &str) {
    if let Err(error) = broadcasts.rooms.store.forget_undecrypted(event_id).await {
        tracing::warn!(%error, "cannot forget an encrypted event that was handled");
    }
}

/// Routes one event, decrypted if it was encrypted.
async fn route(broadcasts: &Arc<Broadcasts>, raw: Value) -> Handled {
    if raw["type"] == RECEIPT_EVENT_TYPE {
        return on_receipt(broadcasts, &raw).await;
    }
    if let Some(event_type) = raw["type"].as_str().filter(|kind| poll::RESPONSE_TYPES.contains(kind)) {
        return relay::on_poll_answer(&broadcasts.rooms, event_type, &raw).await;
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
            let changed = dms.member_changed(&dm, &member.state_key, &member.content.membership);
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
async fn on_receipt(broadcasts: &Broadcasts, raw: &Value) -> Handled {
    let room = raw["room_id"].as_str().and_then(|room| RoomId::parse(room).ok());
    let user = raw["sender"].as_str().and_then(|user| UserId::parse(user).ok());
    let (Some(room), Some(user)) = (room, user) else {
        tracing::warn!("a stored read receipt has no room or reader; ignored");
        return Handled::Done;
    };
    Handled::of(
        "cannot record a read receipt",
        relay::on_receipt(&broadcasts.rooms.store, &room, &user).await,
    )
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
mod tests {
    use super::*;

    #[test]
    fn reply_fallbacks_are_stripped() {
        assert_eq!(strip_reply_fallback("> <@a:b> hello\n> more\n\n!bc send x"), "!bc send x");
        assert_eq!(strip_reply_fallback("!bc send x"), "!bc send x");
    }

    #[test]
    fn command_lines_start_with_the_prefix_as_a_word() {
        assert_eq!(command_line("!bc", "!bc help\nbody"), Some("!bc help"));
        assert_eq!(command_line("!bc", "!bc"), Some("!bc"));
        assert_eq!(command_line("!bc", "!bcx help"), None);
        assert_eq!(command_line("!bc", "hello !bc help"), None);
    }

    #[tokio::test]
    async fn a_read_receipt_from_the_inbox_marks_the_last_broadcast_in_that_dm_read() {
        let test = crate::testing::TestApp::new().await;
        let alice = test.hs.user("alice", None);
        let control = test.control_room().await;
        let id =
            test.running_broadcast(&control, "News", std::slice::from_ref(&alice), Default::default()).await;
        let claim = test.store().claim_delivery(60_000).await.unwrap().unwrap();
        let dm = test.broadcasts.rooms.senders.dms.ensure(&alice).await.unwrap().room;
        test.store().mark_delivered(&claim, &dm, ruma::event_id!("$copy")).await.unwrap();
        let receipt = serde_json::json!({ "type": RECEIPT_EVENT_TYPE, "room_id": dm, "sender": alice });
        // Someone else's receipt in her DM, or hers elsewhere, counts for nothing.
        let other = serde_json::json!({ "type": RECEIPT_EVENT_TYPE, "room_id": control, "sender": alice });
        dispatch(&test.broadcasts, &other.to_string()).await;
        assert_eq!(test.store().read_and_replied(id).await.unwrap(), (0, 0));
        dispatch(&test.broadcasts, &receipt.to_string()).await;
        assert_eq!(test.store().read_and_replied(id).await.unwrap(), (1, 0));
    }

    /// Issue 11: the member events pushed from a DM keep the recipient's membership in the store
    /// and retire the DM when a third person comes in, so that a send needs no request to know.
    #[tokio::test]
    async fn member_events_in_a_dm_are_kept_and_a_third_member_retires_it() {
        let test = crate::testing::TestApp::new().await;
        let alice = test.hs.user("alice", None);
        let dm = test.broadcasts.rooms.senders.dms.ensure(&alice).await.unwrap().room;
        let member = |sender: &ruma::UserId, state_key: &ruma::UserId, membership: &str, n: u32| {
            serde_json::json!({ "type": "m.room.member", "event_id": format!("$member{n}"), "room_id": dm,
                "sender": sender, "state_key": state_key, "origin_server_ts": 1,
                "content": { "membership": membership } })
            .to_string()
        };
        dispatch(&test.broadcasts, &member(&alice, &alice, "join", 1)).await;
        let stored = test.store().live_dm(None, &alice).await.unwrap().unwrap();
        assert_eq!(stored.membership, MembershipState::Join);
        dispatch(&test.broadcasts, &member(&alice, &alice, "leave", 2)).await;
        assert_eq!(
            test.store().live_dm(None, &alice).await.unwrap().unwrap().membership,
            MembershipState::Leave
        );
        let mallory = test.hs.user("mallory", None);
        dispatch(&test.broadcasts, &member(&alice, &mallory, "invite", 3)).await;
        assert_eq!(test.store().live_dm(None, &alice).await.unwrap(), None, "retired");
    }

    /// Issue 10, item 13: in a reply thread, a command without message lines is not taken as a
    /// reply to the thread's latest event (a recipient's private reply) but asks for the message.
    #[tokio::test]
    async fn a_command_in_a_thread_does_not_send_the_thread_fallback() {
        let test = crate::testing::TestApp::new().await;
        let control = test.control_room().await;
        let alice = test.hs.user("alice", None);
        let private = test.hs.with(|state| {
            let event_id: OwnedEventId = "$private-reply".try_into().unwrap();
            let event = serde_json::json!({ "type": "m.room.message", "room_id": control, "sender": test.broadcasts.rooms.bot,
                                            "content": { "msgtype": "m.text", "body": "alice's secret" } });
            state.events.insert(event_id.clone(), event);
            event_id
        });
        let command = serde_json::json!({
            "type": "m.room.message", "room_id": control, "sender": "@admin:example.org", "event_id": "$command",
            "origin_server_ts": 1, "content": { "msgtype": "m.text", "body": format!("!bc send {alice}"),
                "m.relates_to": { "rel_type": "m.thread", "event_id": "$root", "is_falling_back": true,
                                  "m.in_reply_to": { "event_id": private } } } });
        dispatch(&test.broadcasts, &command.to_string()).await;
        let made = test.store().broadcast_by_command(ruma::event_id!("$command")).await.unwrap();
        assert_eq!(made.map(|broadcast| broadcast.message.summary()), None, "no broadcast of the fallback");
        let answers = test.hs.bodies_in(&control);
        assert!(
            answers.last().is_some_and(|answer| answer.starts_with("What should I send?")),
            "{answers:?}"
        );
    }

    /// Issue 10, item 5: a control room that becomes public, knockable, restricted or
    /// world-readable stops being one, says so, and gets no more replies.
    #[tokio::test]
    async fn a_control_room_opened_up_later_stops_being_one() {
        for (event_type, content) in [
            ("m.room.join_rules", serde_json::json!({ "join_rule": "public" })),
            ("m.room.join_rules", serde_json::json!({ "join_rule": "knock" })),
            ("m.room.join_rules", serde_json::json!({ "join_rule": "restricted", "allow": [] })),
            ("m.room.history_visibility", serde_json::json!({ "history_visibility": "world_readable" })),
        ] {
            let test = crate::testing::TestApp::new().await;
            let control = test.control_room().await;
            let event = serde_json::json!({ "type": event_type, "state_key": "", "room_id": control,
                "sender": "@admin:example.org", "event_id": "$opened", "origin_server_ts": 1, "content": content });
            dispatch(&test.broadcasts, &event.to_string()).await;
            assert!(!test.store().is_control_room(&control).await.unwrap(), "{content}");
            let said = test.hs.bodies_in(&control);
            assert!(said.last().is_some_and(|text| text.contains("no longer a control room")), "{said:?}");
        }
        let test = crate::testing::TestApp::new().await;
        let control = test.control_room().await;
        let event = serde_json::json!({ "type": "m.room.join_rules", "state_key": "", "room_id": control,
            "sender": "@admin:example.org", "event_id": "$closed", "origin_server_ts": 1,
            "content": { "join_rule": "invite" } });
        dispatch(&test.broadcasts, &event.to_string()).await;
        assert!(test.store().is_control_room(&control).await.unwrap(), "invite-only stays a control room");
    }

    /// Runs the dispatcher on `test`'s inbox; it stops when the returned sender is dropped.
    fn dispatcher(test: &crate::testing::TestApp) -> watch::Sender<bool> {
        let (stop, shutdown) = watch::channel(false);
        tokio::spawn(run(test.broadcasts.clone(), test.inbox_ready.clone(), shutdown));
        stop
    }

    /// Puts `events` into the inbox, as a transaction from the homeserver does.
    async fn push(test: &crate::testing::TestApp, events: &[Value]) {
        let events: Vec<_> = events
            .iter()
            .map(|event| (event["event_id"].as_str().unwrap().to_owned(), event.to_string()))
            .collect();
        test.store().push_inbox(&events).await.unwrap();
        test.inbox_ready.notify_one();
    }

    /// Waits until `done` holds (at most `within`), saying `what` was waited for if it does not.
    async fn eventually(within: Duration, what: &str, mut done: impl AsyncFnMut() -> bool) {
        let started = Instant::now();
        while !done().await {
            assert!(started.elapsed() < within, "not within {within:?}: {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn command(room: &RoomId, n: u32, body: &str) -> Value {
        serde_json::json!({ "type": "m.room.message", "room_id": room, "sender": "@admin:example.org",
            "event_id": format!("$command{n}"), "origin_server_ts": 1,
            "content": { "msgtype": "m.text", "body": body } })
    }

    /// Issue 22, item 4: invites from a remote server that never answers are declined in bounded
    /// background work; a command that comes after them is answered at once.
    #[tokio::test]
    async fn invites_from_a_server_that_never_answers_do_not_hold_up_a_command() {
        let test = crate::testing::TestApp::new().await;
        let control = test.control_room().await;
        test.hs.with(|state| state.slow.insert("leave", Duration::from_secs(3600)));
        let invites: Vec<Value> = (0..100)
            .map(|n| {
                serde_json::json!({ "type": "m.room.member", "state_key": test.broadcasts.rooms.bot,
                    "room_id": format!("!stranger{n}:slow.example"), "sender": format!("@s{n}:slow.example"),
                    "event_id": format!("$invite{n}"), "origin_server_ts": 1,
                    "content": { "membership": "invite", "is_direct": true } })
            })
            .collect();
        push(&test, &invites).await;
        push(&test, &[command(&control, 1, "!bc help")]).await;
        let _running = dispatcher(&test);
        eventually(Duration::from_secs(1), "the command is answered", async || {
            !test.hs.bodies_in(&control).is_empty()
        })
        .await;
        assert_eq!(test.hs.count("leave"), BACKGROUND_AT_ONCE, "declines in flight at most");
    }

    /// Issue 22, item 7: a database error while a third member joins a DM keeps the event in the
    /// inbox; it is tried again, and the DM is retired once the database answers.
    #[tokio::test]
    async fn a_database_error_keeps_an_event_for_another_try() {
        let test = crate::testing::TestApp::new().await;
        let alice = test.hs.user("alice", None);
        let dm = test.broadcasts.rooms.senders.dms.ensure(&alice).await.unwrap().room;
        test.store()
            .execute_raw(
                "CREATE TRIGGER broken BEFORE UPDATE ON dm_rooms BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END",
            )
            .await;
        let mallory = test.hs.user("mallory", None);
        let joined = serde_json::json!({ "type": "m.room.member", "event_id": "$mallory", "room_id": dm,
            "sender": mallory, "state_key": mallory, "origin_server_ts": 1, "content": { "membership": "join" } });
        push(&test, &[joined]).await;
        let _running = dispatcher(&test);
        eventually(Duration::from_secs(2), "the event is put off for a later try", async || {
            test.store().inbox_next_due().await.unwrap().is_some_and(|due| due > crate::base::store::now_ms())
        })
        .await;
        assert!(test.store().live_dm(None, &alice).await.unwrap().is_some(), "not retired yet");
        test.store().execute_raw("DROP TRIGGER broken").await;
        eventually(Duration::from_secs(5), "the DM is retired on the next try", async || {
            test.store().live_dm(None, &alice).await.unwrap().is_none()
        })
        .await;
        eventually(Duration::from_secs(1), "the event leaves the inbox", async || {
            test.store().inbox_next_due().await.unwrap().is_none()
        })
        .await;
    }

    /// Issue 22, item 7: a reply whose relay meets a busy homeserver is relayed on a later try;
    /// one the homeserver refuses is not tried again.
    #[tokio::test]
    async fn a_relay_that_meets_a_busy_homeserver_is_tried_again() {
        let test = crate::testing::TestApp::new().await;
        let control = test.control_room().await;
        let alice = test.hs.user("alice", None);
        let id =
            test.running_broadcast(&control, "News", std::slice::from_ref(&alice), Default::default()).await;
        test.deliver_all(id, 1).await;
        let dm = test.store().live_dm(None, &alice).await.unwrap().unwrap().room_id.unwrap();
        let reply = |n: u32| {
            serde_json::json!({ "type": "m.room.message", "room_id": dm, "sender": alice,
                "event_id": format!("$reply{n}"), "origin_server_ts": 1,
                "content": { "msgtype": "m.text", "body": format!("reply {n}") } })
        };
        let busy =
            || crate::base::matrix::MatrixError::Transient { retry_after: None, message: "busy".into() };
        test.hs.fail_next("send_raw", busy());
        push(&test, &[reply(1)]).await;
        let _running = dispatcher(&test);
        eventually(Duration::from_secs(5), "the reply is relayed", async || {
            test.hs.bodies_in(&control).contains(&"reply 1".to_owned())
        })
        .await;
        eventually(Duration::from_secs(1), "the event leaves the inbox", async || {
            test.store().inbox_next_due().await.unwrap().is_none()
        })
        .await;
        let refused = crate::base::matrix::MatrixError::Permanent {
            errcode: Some("M_FORBIDDEN".into()),
            status: Some(403),
            message: "no".into(),
        };
        test.hs.fail_next("send_raw", refused);
        let sends = test.hs.count("send_raw");
        push(&test, &[reply(2)]).await;
        eventually(Duration::from_secs(1), "a refused relay leaves the inbox", async || {
            test.hs.count("send_raw") > sends && test.store().inbox_next_due().await.unwrap().is_none()
        })
        .await;
        assert!(!test.hs.bodies_in(&control).contains(&"reply 2".to_owned()));
    }

    /// Issue 22, item 13: a transaction the homeserver pushes again (the bot crashed before its
    /// answer) is not handled twice.
    #[tokio::test]
    async fn an_event_pushed_again_is_handled_once() {
        let test = crate::testing::TestApp::new().await;
        let control = test.control_room().await;
        let _running = dispatcher(&test);
        let before = test.hs.count("send_raw");
        push(&test, &[command(&control, 1, "!bc help")]).await;
        eventually(Duration::from_secs(2), "the command is answered", async || {
            test.hs.bodies_in(&control).len() == 1 && test.store().inbox_next_due().await.unwrap().is_none()
        })
        .await;
        let per_command = test.hs.count("send_raw") - before;
        push(&test, &[command(&control, 1, "!bc help")]).await;
        push(&test, &[command(&control, 2, "!bc help")]).await;
        eventually(Duration::from_secs(2), "the next command is answered", async || {
            test.hs.bodies_in(&control).len() >= 2
        })
        .await;
        // Requests, not messages: the homeserver would drop a repeated transaction ID itself.
        assert_eq!(
            test.hs.count("send_raw"),
            before + 2 * per_command,
            "the command pushed again is left alone"
        );
    }
}
