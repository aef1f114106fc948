//! Takes events out of the inbox, oldest first, and routes each to the module that owns it: the
//! bot's own memberships to `control_rooms`, other joins to `defaults`, `!bc` lines in control
//! rooms to `commands`, messages in DMs and reply threads to `relay`, read receipts and answers
//! to polls to `relay`, ✅ on a preview to the broadcast `lifecycle`.
//!
//! An event is removed from the inbox once handled, whatever the outcome: a failure is logged
//! and answered where a person is waiting, never retried forever.

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
use tokio::sync::watch;

use crate::{
    commands::{self, Answer, Context},
    context::App,
    control_rooms, defaults,
    e2ee::{rooms::Undecryptable, Crypto},
    lifecycle,
    permissions::Level,
    poll,
    registration::is_own_user,
    relay,
    store::{BroadcastState, RECEIPT_EVENT_TYPE},
};

/// How many inbox events are read at once.
const BATCH: i64 = 50;

/// Dispatches inbox events until `shutdown` turns true.
pub async fn run(app: Arc<App>, mut shutdown: watch::Receiver<bool>) {
    loop {
        if *shutdown.borrow() {
            return;
        }
        let batch = match app.store.inbox_batch(BATCH).await {
            Ok(batch) => batch,
            Err(error) => {
                tracing::error!(%error, "cannot read the inbox; trying again shortly");
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                    _ = shutdown.changed() => return,
                }
                continue;
            }
        };
        if batch.is_empty() {
            tokio::select! {
                _ = app.inbox_ready.notified() => {}
                _ = shutdown.changed() => return,
            }
            continue;
        }
        // Removed together once the batch is dispatched: one commit per batch. After a crash
        // the batch is dispatched again, which every handler allows (answers and copies have
        // transaction IDs made from the event, broadcasts are found by their command).
        for event in &batch {
            dispatch(&app, &event.event_json).await;
        }
        let seqs: Vec<i64> = batch.iter().map(|event| event.seq).collect();
        if let Err(error) = app.store.remove_inbox(&seqs).await {
            tracing::error!(%error, "cannot remove dispatched events from the inbox");
        }
    }
}

/// Routes one event.
async fn dispatch(app: &Arc<App>, json: &str) {
    let Ok(raw) = serde_json::from_str::<Value>(json) else {
        return tracing::warn!("an inbox event is not JSON; ignored");
    };
    if raw["type"] == "m.room.encrypted" {
        if let Some(decrypted) = decrypted(app, &raw, json).await {
            route(app, decrypted).await;
        }
        return;
    }
    route(app, raw).await
}

/// How long an encrypted event waits for its room key before it is given up.
const KEY_WAIT_MS: i64 = 10 * 60 * 1000;
/// How often parked encrypted events are tried again, besides when room keys arrive.
const UNDECRYPTED_RETRY: std::time::Duration = std::time::Duration::from_secs(5);

/// The decrypted form of an encrypted event; `None` when there is none (yet): an event whose
/// room key has not arrived is parked and tried again by [`retry_undecrypted`].
async fn decrypted(app: &App, raw: &Value, json: &str) -> Option<Value> {
    let crypto = app.crypto.as_ref()?;
    match crypto.decrypt(raw).await {
        Ok(event) => Some(event),
        Err(Undecryptable::KeyMissing(reason)) => {
            tracing::debug!(%reason, event = %raw["event_id"], "an encrypted event waits for its room key");
            let event_id = raw["event_id"].as_str().unwrap_or_default();
            if let Err(error) = app.store.park_undecrypted(event_id, json).await {
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
pub async fn retry_undecrypted(app: Arc<App>, mut shutdown: watch::Receiver<bool>) {
    let Some(crypto) = app.crypto.clone() else { return };
    while !*shutdown.borrow() {
        tokio::select! {
            _ = crypto.keys_arrived.notified() => {}
            _ = tokio::time::sleep(UNDECRYPTED_RETRY) => {}
            _ = shutdown.changed() => return,
        }
        let parked = match app.store.undecrypted(BATCH).await {
            Ok(parked) => parked,
            Err(error) => {
                tracing::warn!(%error, "cannot read the encrypted events waiting for keys");
                continue;
            }
        };
        for (event_id, json, parked_at) in parked {
            retry_one(&app, &crypto, &event_id, &json, parked_at).await;
        }
    }
}

/// One more try of a parked encrypted event.
async fn retry_one(app: &Arc<App>, crypto: &Crypto, event_id: &str, json: &str, parked_at: i64) {
    let Ok(raw) = serde_json::from_str::<Value>(json) else {
        return forget_undecrypted(app, event_id).await;
    };
    match crypto.decrypt(&raw).await {
        Ok(event) => {
            forget_undecrypted(app, event_id).await;
            route(app, event).await;
        }
        Err(Undecryptable::KeyMissing(reason)) if crate::store::now_ms() - parked_at > KEY_WAIT_MS => {
            tracing::warn!(%reason, event = event_id, sender = %raw["sender"], "no room key arrived for an encrypted event; given up");
            forget_undecrypted(app, event_id).await;
        }
        Err(Undecryptable::KeyMissing(_)) => {}
        Err(Undecryptable::Never(reason)) => {
            tracing::warn!(%reason, event = event_id, "an encrypted event cannot be decrypted; ignored");
            forget_undecrypted(app, event_id).await;
        }
    }
}

async fn forget_undecrypted(app: &App, event_id: &str) {
    if let Err(error) = app.store.forget_undecrypted(event_id).await {
        tracing::warn!(%error, "cannot forget an encrypted event that was handled");
    }
}

/// Routes one event, decrypted if it was encrypted.
async fn route(app: &Arc<App>, raw: Value) {
    if raw["type"] == RECEIPT_EVENT_TYPE {
        return on_receipt(app, &raw).await;
    }
    if let Some(event_type) = raw["type"].as_str().filter(|kind| poll::RESPONSE_TYPES.contains(kind)) {
        return relay::on_poll_answer(app, event_type, &raw).await;
    }
    let event: AnyTimelineEvent = match serde_json::from_value(raw.clone()) {
        Ok(event) => event,
        Err(error) => {
            // Event types the bot does not know, or content it cannot read: nothing to do.
            tracing::debug!(%error, "event ignored");
            return;
        }
    };
    if is_own_user(&app.bot, event.sender()) {
        return;
    }
    if raw["type"] == "m.room.encryption" {
        return on_encryption(app, event.room_id()).await;
    }
    if matches!(raw["type"].as_str(), Some("m.room.join_rules" | "m.room.history_visibility")) {
        return control_rooms::on_access_change(app, event.room_id(), &raw["content"]).await;
    }
    match event {
        AnyTimelineEvent::State(AnyStateEvent::RoomMember(StateEvent::Original(member))) => {
            on_member(app, &member).await
        }
        AnyTimelineEvent::MessageLike(AnyMessageLikeEvent::RoomMessage(MessageLikeEvent::Original(
            message,
        ))) => on_message(app, &message, &raw).await,
        AnyTimelineEvent::MessageLike(AnyMessageLikeEvent::RoomRedaction(_)) => {
            on_redaction(app, event.room_id(), event.sender(), &raw).await
        }
        AnyTimelineEvent::MessageLike(AnyMessageLikeEvent::Reaction(MessageLikeEvent::Original(
            reaction,
        ))) => on_reaction(app, &reaction.room_id, &reaction.sender, &reaction.content.relates_to).await,
        _ => {}
    }
}

/// Someone turned on encryption in a room of the bot: what it sends there is encrypted from now
/// on (when the bot encrypts), and a DM's copies count as encrypted.
async fn on_encryption(app: &App, room: &RoomId) {
    if let Some(crypto) = &app.crypto {
        if let Err(error) = crypto.mark_encrypted(room).await {
            tracing::error!(%error, %room, "cannot record that a room is encrypted; it is looked up on the next send");
        }
    }
    if let Err(error) = app.store.dm_encrypted(room).await {
        tracing::error!(%error, %room, "cannot record that a DM is encrypted");
    }
}

/// Membership changes in DMs of the bot or a persona (kept, so that a send needs no request to
/// know whether the DM is usable), the bot's own membership changes, and joins of others
/// (welcome messages).
async fn on_member(app: &Arc<App>, member: &OriginalRoomMemberEvent) {
    match app.store.dm_by_room(&member.room_id).await {
        Ok(Some(dm)) => {
            let Some(dms) = app.dms_of(dm.persona.as_deref()) else {
                return tracing::warn!(room = %member.room_id, "a DM of a persona no longer in the config");
            };
            let changed = dms.member_changed(&dm, &member.state_key, &member.content.membership);
            if let Err(error) = changed.await {
                tracing::error!(%error, room = %member.room_id, "cannot record a membership in a DM");
            }
            return;
        }
        Ok(None) => {}
        Err(error) => return tracing::error!(%error, "cannot look up DM rooms"),
    }
    if let Some(crypto) = &app.crypto {
        // Who reads what the bot encrypts there changed (a DM's readers are its recipient).
        crypto.members_changed(&member.room_id);
    }
    if member.state_key == app.bot {
        return control_rooms::on_bot_membership(app, member).await;
    }
    let was_joined = member
        .unsigned
        .prev_content
        .as_ref()
        .is_some_and(|before| before.membership == MembershipState::Join);
    if member.content.membership == MembershipState::Join && !was_joined {
        let name = member.content.displayname.as_deref();
        defaults::on_join(app, &member.room_id, &member.state_key, name).await;
    }
}

/// A message: a recipient's in their DM, a command in a control room, or an answer in a reply
/// thread.
async fn on_message(app: &Arc<App>, message: &OriginalRoomMessageEvent, raw: &Value) {
    let (room, event_id, sender) = (&message.room_id, &message.event_id, &message.sender);
    match app.store.dm_by_room(room).await {
        Ok(Some(dm)) if dm.user_id == *sender => {
            return relay::on_dm_message(app, &dm, room, event_id, raw).await
        }
        Ok(Some(_)) => return, // someone else in a recipient's DM
        Ok(None) => {}
        Err(error) => return tracing::error!(%error, "cannot look up DM rooms"),
    }
    let edit = matches!(message.content.relates_to, Some(Relation::Replacement(_)));
    if edit {
        return;
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
        if let Some(line) = command_line(&app.config.broadcast.command_prefix, body) {
            return on_command(app, room, event_id, sender, line, body, reply_to).await;
        }
    }
    relay::on_thread_message(app, room, sender, event_id, raw).await;
}

/// A redaction by a recipient in their DM retracts the relayed copy.
async fn on_redaction(app: &App, room: &RoomId, sender: &UserId, raw: &Value) {
    let redacts = raw["content"]["redacts"].as_str().or(raw["redacts"].as_str());
    let Some(redacts) = redacts.and_then(|id| EventId::parse(id).ok()) else { return };
    match app.store.dm_by_room(room).await {
        Ok(Some(dm)) if dm.user_id == sender => relay::on_dm_redaction(app, &redacts).await,
        Ok(_) => {}
        Err(error) => tracing::error!(%error, "cannot look up DM rooms"),
    }
}

/// A read receipt the HTTP edge put into the inbox.
async fn on_receipt(app: &App, raw: &Value) {
    let room = raw["room_id"].as_str().and_then(|room| RoomId::parse(room).ok());
    let user = raw["sender"].as_str().and_then(|user| UserId::parse(user).ok());
    let (Some(room), Some(user)) = (room, user) else {
        return tracing::warn!("a stored read receipt has no room or reader; ignored");
    };
    if let Err(error) = relay::on_receipt(&app.store, &room, &user).await {
        tracing::error!(%error, "cannot record a read receipt");
    }
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
    app: &Arc<App>,
    room: &RoomId,
    event_id: &EventId,
    sender: &UserId,
    line: &str,
    body: &str,
    reply_to: Option<OwnedEventId>,
) {
    let level = app.permissions.level(sender);
    let is_control_room = match app.store.is_control_room(room).await {
        Ok(is_control_room) => is_control_room,
        Err(error) => return tracing::error!(%error, "cannot look up control rooms"),
    };
    let prefix = &app.config.broadcast.command_prefix;
    let answer = if !is_control_room {
        // Only an admin is told why; anyone else is not answered outside control rooms.
        let hint = crate::t!(app.language(), "dispatch-outside-control-room", prefix = prefix.as_str());
        (level == Level::Admin).then(|| Answer::error(hint))
    } else if level < Level::Broadcaster {
        tracing::info!(%level, "command refused: not allowed");
        Some(Answer::error(crate::t!(app.language(), "dispatch-not-allowed", level = level.to_string())))
    } else {
        match commands::parse_command(app.language(), prefix, line) {
            Ok(command) => {
                let body = body.split_once('\n').map(|(_, rest)| rest).unwrap_or("");
                let ctx = Context { app, room, event_id, sender, level, body, reply_to };
                commands::run(&ctx, command).await
            }
            Err(answer) => Some(answer),
        }
    };
    if let Some(answer) = answer {
        lifecycle::answer_command(app, room, event_id, &answer).await;
    }
}

/// ✅ on a broadcast's preview, by someone who may send, confirms it.
async fn on_reaction(app: &Arc<App>, room: &RoomId, sender: &UserId, annotation: &Annotation) {
    if !annotation.key.starts_with('✅') || app.permissions.level(sender) < Level::Broadcaster {
        return;
    }
    let broadcast = match app.store.broadcast_by_preview(&annotation.event_id).await {
        Ok(Some(broadcast)) if broadcast.control_room_id == room => broadcast,
        Ok(_) => return,
        Err(error) => return tracing::error!(%error, "cannot look up a preview"),
    };
    if let Err(refused) = lifecycle::may_manage(app, &broadcast, sender, app.permissions.level(sender)).await
    {
        return tracing::info!(answer = %refused.markdown, "confirmation by reaction refused");
    }
    tracing::info!(broadcast = %broadcast.id, %sender, "preview confirmed with a reaction");
    let answer = lifecycle::start(app, broadcast.id, BroadcastState::Prepared).await;
    if !answer.ok {
        tracing::info!(answer = %answer.markdown, "confirmation by reaction refused");
    }
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
        let dm = test.app.dms.ensure(&alice).await.unwrap().room;
        test.store().mark_delivered(&claim, &dm, ruma::event_id!("$copy")).await.unwrap();
        let receipt = serde_json::json!({ "type": RECEIPT_EVENT_TYPE, "room_id": dm, "sender": alice });
        // Someone else's receipt in her DM, or hers elsewhere, counts for nothing.
        let other = serde_json::json!({ "type": RECEIPT_EVENT_TYPE, "room_id": control, "sender": alice });
        dispatch(&test.app, &other.to_string()).await;
        assert_eq!(test.store().read_and_replied(id).await.unwrap(), (0, 0));
        dispatch(&test.app, &receipt.to_string()).await;
        assert_eq!(test.store().read_and_replied(id).await.unwrap(), (1, 0));
    }

    /// Issue 11: the member events pushed from a DM keep the recipient's membership in the store
    /// and retire the DM when a third person comes in, so that a send needs no request to know.
    #[tokio::test]
    async fn member_events_in_a_dm_are_kept_and_a_third_member_retires_it() {
        let test = crate::testing::TestApp::new().await;
        let alice = test.hs.user("alice", None);
        let dm = test.app.dms.ensure(&alice).await.unwrap().room;
        let member = |sender: &ruma::UserId, state_key: &ruma::UserId, membership: &str, n: u32| {
            serde_json::json!({ "type": "m.room.member", "event_id": format!("$member{n}"), "room_id": dm,
                "sender": sender, "state_key": state_key, "origin_server_ts": 1,
                "content": { "membership": membership } })
            .to_string()
        };
        dispatch(&test.app, &member(&alice, &alice, "join", 1)).await;
        let stored = test.store().live_dm(None, &alice).await.unwrap().unwrap();
        assert_eq!(stored.membership, MembershipState::Join);
        dispatch(&test.app, &member(&alice, &alice, "leave", 2)).await;
        assert_eq!(
            test.store().live_dm(None, &alice).await.unwrap().unwrap().membership,
            MembershipState::Leave
        );
        let mallory = test.hs.user("mallory", None);
        dispatch(&test.app, &member(&alice, &mallory, "invite", 3)).await;
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
            let event = serde_json::json!({ "type": "m.room.message", "room_id": control, "sender": test.app.bot,
                                            "content": { "msgtype": "m.text", "body": "alice's secret" } });
            state.events.insert(event_id.clone(), event);
            event_id
        });
        let command = serde_json::json!({
            "type": "m.room.message", "room_id": control, "sender": "@admin:example.org", "event_id": "$command",
            "origin_server_ts": 1, "content": { "msgtype": "m.text", "body": format!("!bc send {alice}"),
                "m.relates_to": { "rel_type": "m.thread", "event_id": "$root", "is_falling_back": true,
                                  "m.in_reply_to": { "event_id": private } } } });
        dispatch(&test.app, &command.to_string()).await;
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
            dispatch(&test.app, &event.to_string()).await;
            assert!(!test.store().is_control_room(&control).await.unwrap(), "{content}");
            let said = test.hs.bodies_in(&control);
            assert!(said.last().is_some_and(|text| text.contains("no longer a control room")), "{said:?}");
        }
        let test = crate::testing::TestApp::new().await;
        let control = test.control_room().await;
        let event = serde_json::json!({ "type": "m.room.join_rules", "state_key": "", "room_id": control,
            "sender": "@admin:example.org", "event_id": "$closed", "origin_server_ts": 1,
            "content": { "join_rule": "invite" } });
        dispatch(&test.app, &event.to_string()).await;
        assert!(test.store().is_control_room(&control).await.unwrap(), "invite-only stays a control room");
    }
}
