//! Replies come home: what a recipient writes in their DM goes into a thread in the control
//! room of the broadcast they last received there, and what a broadcaster writes in that thread
//! goes back into the DM. `stop` and `start` in a DM switch broadcasts off and on; read receipts
//! in a DM count as "read".
//!
//! A relayed message only ever goes to a control room, and an answer only to the one recipient
//! whose thread it is: replies never reach another recipient. A persona's DMs work alike: the
//! bot relays from them, and the persona writes into them (answers, `stop`/`start` notices).

use ruma::{
    events::{room::member::MembershipState, StateEventType},
    EventId, OwnedTransactionId, RoomId, TransactionId, UserId,
};
use serde_json::{json, Value};

use crate::{
    base::{
        config::{BroadcastConfig, RecipientLanguage},
        i18n::Language,
        matrix::{membership, send_json, txn_for},
        message::{cut_to_fit, StoredMessage},
        permissions::Level,
        poll::{self, Poll},
        store::{now_ms, BroadcastId, DmRoom, ReplyThread, Store, StoreError},
    },
    rooms::Rooms,
    rooms::{
        dm::has_third_member,
        handled::{Failure, Handled},
        notices::{post_in_thread, post_notice, react, try_post_text},
        throttle::Verdict,
    },
};

/// The pseudo broadcast of messages that answer no broadcast.
const NO_BROADCAST: BroadcastId = BroadcastId(0);

/// A message the recipient of `dm` wrote in it.
#[tracing::instrument(skip_all, fields(user = %dm.user_id))]
pub async fn on_dm_message(
    rooms: &Rooms,
    dm: &DmRoom,
    room: &RoomId,
    event_id: &EventId,
    event: &Value,
) -> Handled {
    Handled::of("cannot handle a message in a DM", dm_message(rooms, dm, room, event_id, event).await)
}

async fn dm_message(
    rooms: &Rooms,
    dm: &DmRoom,
    room: &RoomId,
    event_id: &EventId,
    event: &Value,
) -> Result<(), Failure> {
    let content = &event["content"];
    if content["m.relates_to"]["rel_type"] == "m.replace" {
        return relay_edit(rooms, dm, room, event_id, content).await;
    }
    let word = content["body"].as_str().unwrap_or("").trim().to_lowercase();
    let language = rooms.recipient_language(&dm.user_id).await;
    let switched = match choose_language(rooms, &dm.user_id, &word).await? {
        Some(confirmation) => Some(confirmation),
        None => switch_broadcasts(&rooms.store, &rooms.broadcast, language, &dm.user_id, &word).await?,
    };
    if let Some((kind, confirmation)) = switched {
        notice_in_dm(rooms, dm, room, &txn_for(kind, event_id), &confirmation).await;
        return Ok(());
    }
    if !rooms.broadcast.relay_replies {
        return Ok(());
    }
    let Some(message) = StoredMessage::copy_of(event).map(defused).map(cut_to_event) else { return Ok(()) };
    let Some(thread) = thread_for(rooms, dm, room, event_id).await? else { return Ok(()) };
    match rooms.relay_throttle.check(&dm.user_id, now_ms()) {
        Verdict::Pass => relay(rooms, &thread, room, event_id, message).await,
        Verdict::FirstHeld => {
            let (user, count) = (dm.user_id.as_str(), rooms.relay_throttle.allowed());
            let text = crate::base::i18n::t!(rooms.language(), "relay-flood", user = user, count = count);
            let (root, txn) = (&thread.root_event_id, txn_for("flood", event_id));
            post_in_thread(rooms.hs(), &thread.control_room_id, &txn, root, root, &text).await;
            Ok(())
        }
        Verdict::Held => Ok(()),
    }
}

/// Posts a notice into the DM `room` as its owner: the bot, or the persona whose DM it is.
async fn notice_in_dm(rooms: &Rooms, dm: &DmRoom, room: &RoomId, txn: &TransactionId, text: &str) {
    match rooms.sender(dm.persona.as_deref()).await {
        Ok(owner) => {
            post_notice(owner.homeserver, room, txn, text).await;
        }
        Err(error) => tracing::warn!(%error, %room, "cannot write into a DM as its owner"),
    }
}

/// The name the recipient's member event in their DM shows (read as the DM's owner, the bot or
/// a persona), else their localpart: the homeserver has it at hand, where a profile look-up of a
/// remote user would wait on their server.
async fn name_in_dm(rooms: &Rooms, dm: &DmRoom, room: &RoomId) -> String {
    let user = &dm.user_id;
    let member = match rooms.sender(dm.persona.as_deref()).await {
        Ok(owner) => {
            owner.homeserver.state(room, StateEventType::RoomMember, user.as_str()).await.ok().flatten()
        }
        Err(_) => None,
    };
    let name = member.and_then(|member| member["displayname"].as_str().map(str::to_owned));
    name.unwrap_or_else(|| user.localpart().to_owned())
}

/// The content keys of a message that are relayed; anything else a client put there is not.
const RELAYED_KEYS: [&str; 9] =
    ["msgtype", "body", "format", "formatted_body", "url", "info", "file", "filename", "geo_uri"];

/// A recipient's message as it may appear in a control room, where the bot can usually ping
/// everyone: known content keys only, HTML reduced to the tags the Matrix spec recommends, and
/// `m.mentions: {}` so that it mentions nobody.
fn defused(message: StoredMessage) -> StoredMessage {
    let mut content: serde_json::Map<String, Value> = message
        .content
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(key, _)| RELAYED_KEYS.contains(&key.as_str()))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    if let Some(Value::String(html)) = content.get_mut("formatted_body") {
        *html = ruma::html::sanitize_html(
            html,
            ruma::html::HtmlSanitizerMode::Strict,
            ruma::html::RemoveReplyFallback::Yes,
        );
    }
    content.insert("m.mentions".into(), json!({}));
    StoredMessage { event_type: message.event_type, content: Value::Object(content) }
}

/// The most bytes a relayed message's content may take as JSON: Synapse's 65,536 bytes per
/// event, less room for the thread relation and the event's own fields (IDs, hashes, signatures).
const MAX_RELAYED_BYTES: usize = 60_000;

/// A message too large for one event once relayed (the thread relation adds to it: a pushed
/// event may be larger than Synapse lets a client send) is relayed as the start of its text,
/// saying how long it was; the recipient's DM keeps it whole.
fn cut_to_event(message: StoredMessage) -> StoredMessage {
    if message.content_bytes() <= MAX_RELAYED_BYTES {
        return message;
    }
    let body = message.content["body"].as_str().unwrap_or("");
    let content = |text: &str| json!({ "msgtype": "m.text", "body": text, "m.mentions": {} });
    let text = cut_to_fit(body, |text| content(text).to_string().len() <= MAX_RELAYED_BYTES);
    StoredMessage { event_type: "m.room.message".into(), content: content(&text) }
}

/// `stop` or `start` (as configured, by default those of the recipient's `language`) written
/// alone: opts `user` out or in. Returns the kind and text of the confirmation, `None` for any
/// other word.
async fn switch_broadcasts(
    store: &Store,
    config: &BroadcastConfig,
    language: Language,
    user: &UserId,
    word: &str,
) -> Result<Option<(&'static str, String)>, StoreError> {
    let is = |keywords: &[String]| keywords.iter().any(|keyword| keyword.to_lowercase() == word);
    let (stop_words, start_words) = (config.stop_words(language), config.start_words());
    if is(&stop_words) {
        store.opt_out(user).await?;
        let start = start_words.first().map(String::as_str).unwrap_or("start");
        return Ok(Some(("stop", crate::base::i18n::t!(language, "recipient-stopped", start = start))));
    }
    if is(&start_words) {
        store.opt_in(user).await?;
        return Ok(Some(("start", crate::base::i18n::t!(language, "recipient-started"))));
    }
    Ok(None)
}

/// The words that choose the language of the bot's notices: `language de`, `sprache en`.
const LANGUAGE_WORDS: [&str; 2] = ["language", "sprache"];

/// `language <code>` written alone (lowercased), with `broadcast.recipient_language: user`:
/// records the language `user` chose. Returns the kind and text of the answer (in the chosen
/// language, or a list of the languages the bot speaks), `None` for anything else.
async fn choose_language(
    rooms: &Rooms,
    user: &UserId,
    word: &str,
) -> Result<Option<(&'static str, String)>, StoreError> {
    if rooms.broadcast.recipient_language != RecipientLanguage::User {
        return Ok(None);
    }
    let mut words = word.split_whitespace();
    let (Some(keyword), Some(code), None) = (words.next(), words.next(), words.next()) else {
        return Ok(None);
    };
    if !LANGUAGE_WORDS.contains(&keyword) {
        return Ok(None);
    }
    let Some(language) = Language::of(code) else {
        let current = rooms.recipient_language(user).await;
        return Ok(Some((
            "language",
            crate::base::i18n::t!(current, "recipient-language-unknown", code = code),
        )));
    };
    rooms.store.set_language(user, language).await?;
    tracing::info!(language = language.code(), "a recipient chose the language of the bot's notices");
    Ok(Some(("language", crate::base::i18n::t!(language, "recipient-language-set"))))
}

/// Posts a recipient's message into their thread and records where it went.
async fn relay(
    rooms: &Rooms,
    thread: &ReplyThread,
    dm_room: &RoomId,
    event_id: &EventId,
    message: StoredMessage,
) -> Result<(), Failure> {
    let mut relayed = message.content;
    relayed["m.relates_to"] = json!({
        "rel_type": "m.thread",
        "event_id": thread.root_event_id,
        "is_falling_back": true,
        "m.in_reply_to": { "event_id": thread.root_event_id },
    });
    let room = &thread.control_room_id;
    // A failure is tried again (the transaction ID keeps a retry from posting twice).
    let copy =
        send_json(rooms.hs(), room, &txn_for("relay", event_id), &message.event_type, &relayed).await?;
    rooms.store.record_relay(dm_room, event_id, room, &copy).await?;
    if thread.broadcast_id != NO_BROADCAST {
        rooms.store.mark_replied(thread.broadcast_id, &thread.user_id).await?;
    }
    Ok(())
}

/// The thread for the messages of `dm`'s recipient in it (`room`): the one for the broadcast last
/// delivered there, or for messages that answer none (in the first configured control room).
/// Started when new.
async fn thread_for(
    rooms: &Rooms,
    dm: &DmRoom,
    room: &RoomId,
    event_id: &EventId,
) -> Result<Option<ReplyThread>, Failure> {
    let user = &dm.user_id;
    let broadcast = match rooms.store.last_delivered_in(room).await? {
        Some(id) => Some(rooms.store.broadcast(id).await?),
        None => None,
    };
    let id = broadcast.as_ref().map(|broadcast| broadcast.id).unwrap_or(NO_BROADCAST);
    if let Some(thread) = rooms.store.reply_thread(id, user).await? {
        return Ok(may_relay_into(rooms, room, &thread.control_room_id).await?.then_some(thread));
    }
    let control_room = match &broadcast {
        Some(broadcast) => broadcast.control_room_id.clone(),
        None => match rooms.default_control_room.get().cloned() {
            Some(room) => room,
            None => {
                let text = crate::base::i18n::t!(rooms.recipient_language(user).await, "recipient-unread");
                notice_in_dm(rooms, dm, room, &txn_for("unread", event_id), &text).await;
                return Ok(None);
            }
        },
    };
    if !may_relay_into(rooms, room, &control_room).await? {
        return Ok(None);
    }
    let name = name_in_dm(rooms, dm, room).await;
    let (language, user_id) = (rooms.language(), user.as_str());
    let title = match &broadcast {
        Some(broadcast) => crate::base::i18n::t!(
            language,
            "relay-thread-title",
            name = &name,
            user = user_id,
            broadcast = &broadcast.name,
            id = broadcast.id.to_string(),
        ),
        None => {
            crate::base::i18n::t!(language, "relay-thread-title-no-broadcast", name = &name, user = user_id)
        }
    };
    let root_txn = OwnedTransactionId::from(format!("thread-{}-{user}", id.0));
    let root = try_post_text(rooms.hs(), &control_room, &root_txn, &title).await?;
    let thread = ReplyThread {
        broadcast_id: id,
        user_id: user.to_owned(),
        control_room_id: control_room,
        root_event_id: root,
    };
    rooms.store.add_reply_thread(&thread).await?;
    Ok(Some(thread))
}

/// Whether what the recipient writes in the DM `dm_room` may go into `control_room`: it must
/// still be a control room (see [`still_a_control_room`]), and what comes from an encrypted DM
/// goes only into an encrypted one, unless the config allows more (the room is told once).
async fn may_relay_into(rooms: &Rooms, dm_room: &RoomId, control_room: &RoomId) -> Result<bool, Failure> {
    if !still_a_control_room(&rooms.store, control_room).await? {
        return Ok(false);
    }
    // Without crypto nothing encrypted is read, so nothing of it can be relayed.
    let Some(crypto) = &rooms.crypto else { return Ok(true) };
    if rooms.broadcast.relay_encrypted_to_plain_rooms
        || !crypto.is_encrypted(dm_room).await?
        || crypto.is_encrypted(control_room).await?
    {
        return Ok(true);
    }
    tracing::info!(room = %control_room, "a reply from an encrypted DM was not relayed into a plain control room");
    if !rooms.store.told_plain(control_room).await? {
        let text = crate::base::i18n::t!(rooms.language(), "relay-not-into-plain-room");
        let txn = OwnedTransactionId::from(format!("plain-room-{control_room}"));
        // Recorded once posted: a failure is tried again, with the same transaction ID.
        try_post_text(rooms.hs(), control_room, &txn, &text).await?;
        rooms.store.mark_told_plain(control_room).await?;
    }
    Ok(false)
}

/// Whether replies may still go into `room`: it stopped being a control room when it was opened
/// up or the bot left it, and then nothing is relayed there.
async fn still_a_control_room(store: &Store, room: &RoomId) -> Result<bool, StoreError> {
    let control = store.is_control_room(room).await?;
    if !control {
        tracing::warn!(%room, "a reply was not relayed: its room is no longer a control room");
    }
    Ok(control)
}

/// An edit by the recipient (`event_id` in their DM `room`) replaces the relayed copy. It passes
/// the gate a new reply passes: the room must still be a control room, the per-person limit
/// counts it, and its content is defused and cut to fit like a reply's.
async fn relay_edit(
    rooms: &Rooms,
    dm: &DmRoom,
    room: &RoomId,
    event_id: &EventId,
    content: &Value,
) -> Result<(), Failure> {
    let Some(original) = content["m.relates_to"]["event_id"].as_str().and_then(|id| EventId::parse(id).ok())
    else {
        return Ok(());
    };
    let Some((control_room, copy)) = rooms.store.relayed(room, &original).await? else { return Ok(()) };
    if !may_relay_into(rooms, room, &control_room).await? {
        return Ok(());
    }
    if rooms.relay_throttle.check(&dm.user_id, now_ms()) != Verdict::Pass {
        tracing::debug!("an edit of a relayed reply is held: too many messages");
        return Ok(());
    }
    let new =
        StoredMessage { event_type: "m.room.message".into(), content: content["m.new_content"].clone() };
    let new = cut_to_event(defused(new)).content;
    let mut edit = new.clone();
    for fallback in ["body", "formatted_body"] {
        if let Some(text) = new[fallback].as_str() {
            edit[fallback] = json!(format!("* {text}"));
        }
    }
    edit["m.new_content"] = new;
    edit["m.relates_to"] = json!({ "rel_type": "m.replace", "event_id": copy });
    send_json(rooms.hs(), &control_room, &txn_for("edit", event_id), "m.room.message", &edit).await?;
    Ok(())
}

/// A redaction by the recipient in their DM `room` retracts the relayed copy.
pub async fn on_dm_redaction(rooms: &Rooms, room: &RoomId, redacts: &EventId) -> Handled {
    let retracted = async {
        if let Some((control_room, copy)) = rooms.store.relayed(room, redacts).await? {
            rooms.hs().redact(&control_room, &copy, &txn_for("redact", redacts), None).await?;
        }
        Ok::<_, Failure>(())
    };
    Handled::of("cannot retract a relayed message", retracted.await)
}

/// A message in a control room thread. In a reply thread, an answer by a broadcaster goes into
/// the recipient's DM (✅), or ❌ with the reason; other threads are not the bot's.
pub async fn on_thread_message(
    rooms: &Rooms,
    room: &RoomId,
    sender: &UserId,
    event_id: &EventId,
    event: &Value,
) -> Handled {
    let relation = &event["content"]["m.relates_to"];
    if relation["rel_type"] != "m.thread" {
        return Handled::Done;
    }
    let Some(root) = relation["event_id"].as_str().and_then(|id| EventId::parse(id).ok()) else {
        return Handled::Done;
    };
    let thread = match rooms.store.thread_by_root(&root).await {
        Ok(Some(thread)) if thread.control_room_id == room => thread,
        Ok(_) => return Handled::Done,
        Err(error) => return Handled::of("cannot look up a reply thread", Err(error)),
    };
    if rooms.permissions.level(sender) < Level::Broadcaster {
        return Handled::Done;
    }
    match answer(rooms, &thread, event_id, event).await {
        Ok(()) => react(rooms.hs(), room, event_id, "✅").await,
        Err(reason) => {
            react(rooms.hs(), room, event_id, "❌").await;
            let text = crate::base::i18n::t!(rooms.language(), "relay-not-delivered", reason = reason);
            let txn = txn_for("undelivered", event_id);
            post_in_thread(rooms.hs(), room, &txn, &thread.root_event_id, event_id, &text).await;
        }
    }
    Handled::Done
}

/// Sends an answer into the recipient's DM with the sender of the thread's broadcast (the bot
/// or a persona), as that sender; the error is the reason shown in the thread.
async fn answer(
    rooms: &Rooms,
    thread: &ReplyThread,
    event_id: &EventId,
    event: &Value,
) -> Result<(), String> {
    let user = &thread.user_id;
    let persona = match thread.broadcast_id {
        NO_BROADCAST => None,
        id => rooms.store.broadcast(id).await.map_err(|error| error.to_string())?.options.persona,
    };
    let owner = rooms.sender(persona.as_deref()).await.map_err(|error| error.to_string())?;
    let dm = rooms.store.live_dm(persona.as_deref(), user).await.map_err(|error| error.to_string())?;
    let language = rooms.language();
    let Some(dm_room) = dm.and_then(|dm| dm.room_id) else {
        return Err(crate::base::i18n::t!(language, "relay-no-dm", user = user.as_str()));
    };
    let homeserver = owner.homeserver;
    let membership = membership(homeserver, &dm_room, user).await.map_err(|error| error.to_string())?;
    if !matches!(membership, Some(MembershipState::Join | MembershipState::Invite)) {
        return Err(crate::base::i18n::t!(language, "relay-dm-left", user = user.as_str()));
    }
    let members = homeserver.joined_members(&dm_room).await.map_err(|error| error.to_string())?;
    if has_third_member(&members, homeserver.bot(), user) {
        return Err(crate::base::i18n::t!(language, "relay-dm-third-member", user = user.as_str()));
    }
    let message =
        StoredMessage::copy_of(event).ok_or_else(|| crate::base::i18n::t!(language, "relay-answer-empty"))?;
    send_json(homeserver, &dm_room, &txn_for("answer", event_id), &message.event_type, &message.content)
        .await
        .map(|_| ())
        .map_err(|error| error.to_string())
}

/// An answer to a poll broadcast (`event`, of `event_type`) in a DM: tallied, never relayed.
/// It counts when its writer is the recipient of the copy it answers, and it was given before
/// the poll was closed; a later answer of the same person replaces it.
pub async fn on_poll_answer(rooms: &Rooms, event_type: &str, event: &Value) -> Handled {
    Handled::of("cannot record an answer to a poll", poll_answer(rooms, event_type, event).await)
}

async fn poll_answer(rooms: &Rooms, event_type: &str, event: &Value) -> Result<(), StoreError> {
    let room = event["room_id"].as_str().and_then(|room| RoomId::parse(room).ok());
    let sender = event["sender"].as_str().and_then(|user| UserId::parse(user).ok());
    let answered_at = event["origin_server_ts"].as_i64().unwrap_or_else(now_ms);
    let (Some(room), Some(sender), Some((start, choices))) =
        (room, sender, poll::response(event_type, &event["content"]))
    else {
        return Ok(());
    };
    let Some((id, recipient)) = rooms.store.copy_of(&room, &start).await? else { return Ok(()) };
    if recipient != sender {
        return Ok(());
    }
    let broadcast = rooms.store.broadcast(id).await?;
    let Some(poll) = Poll::of(&broadcast.message) else { return Ok(()) };
    if broadcast.poll_closed_at.is_some_and(|closed| answered_at > closed) {
        tracing::debug!(broadcast = %id, "an answer after the poll was closed does not count");
        return Ok(());
    }
    rooms.store.record_poll_answer(id, &sender, &poll.valid_choices(&choices), answered_at).await
}

/// A read receipt by `user` in `room`: their copy of the broadcast last delivered there is read.
pub async fn on_receipt(store: &Store, room: &RoomId, user: &UserId) -> Result<(), StoreError> {
    let Some(dm) = store.dm_by_room(room).await? else { return Ok(()) };
    if dm.user_id != user {
        return Ok(());
    }
    if let Some(id) = store.last_delivered_in(room).await? {
        store.mark_read(id, user).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use ruma::{
        events::room::member::MembershipState, owned_event_id, OwnedEventId, OwnedRoomId, OwnedUserId,
    };

    use super::*;
    use crate::{base::store::SendOptions, testing::TestApp};

    /// Broadcast `text` from `control` delivered to `users` in their DMs (as the workers would).
    async fn delivered(test: &TestApp, control: &RoomId, text: &str, users: &[OwnedUserId]) -> BroadcastId {
        let id = test.running_broadcast(control, text, users, SendOptions::default()).await;
        while let Some(claim) = test.store().claim_delivery(60_000).await.unwrap() {
            let room = test.rooms.senders.dms.ensure(&claim.user_id).await.unwrap().room;
            let event: OwnedEventId =
                format!("$copy-{}-{}", id.0, claim.user_id.localpart()).try_into().unwrap();
            test.store().mark_delivered(&claim, &room, &event).await.unwrap();
        }
        id
    }

    /// `user` writes `body` in their DM; returns the event ID.
    async fn write_in_dm(test: &TestApp, user: &UserId, body: &str, n: u32) -> OwnedEventId {
        let dm = test.store().live_dm(None, user).await.unwrap().expect("a DM");
        let room = dm.room_id.clone().expect("created");
        let event_id: OwnedEventId = format!("${}-{n}", user.localpart()).try_into().unwrap();
        let event = json!({ "type": "m.room.message", "room_id": room, "sender": user, "event_id": event_id,
                            "content": { "msgtype": "m.text", "body": body } });
        on_dm_message(&test.rooms, &dm, &room, &event_id, &event).await;
        event_id
    }

    fn thread_of(sent: &crate::base::matrix::fake::Sent) -> Option<String> {
        sent.content["m.relates_to"]["event_id"].as_str().map(str::to_owned)
    }

    #[tokio::test]
    async fn a_reply_too_long_for_one_event_is_relayed_cut_and_says_so() {
        let test = TestApp::new().await;
        let control = test.control_room().await;
        let alice = test.hs.user("alice", Some("Alice"));
        delivered(&test, &control, "Survey", std::slice::from_ref(&alice)).await;
        let long = format!("My answer: {}", "<b>yes</b> ".repeat(10_000));
        write_in_dm(&test, &alice, &long, 1).await;
        let relayed = test.hs.sent_to(&control).pop().expect("relayed");
        let size = relayed.content.to_string().len();
        assert!(size <= MAX_RELAYED_BYTES + 300, "{size} bytes relayed");
        let body = relayed.content["body"].as_str().unwrap();
        assert!(body.starts_with("My answer: <b>yes</b>"), "{:.40}", body);
        assert!(
            body.ends_with(&format!("of {} characters)", long.chars().count())),
            "{}",
            &body[body.len() - 80..]
        );
        assert!(thread_of(&relayed).is_some(), "in the thread");
        assert_eq!(relayed.content["m.mentions"], json!({}), "still mentions nobody");
    }

    #[tokio::test]
    async fn replies_go_to_the_thread_of_the_last_broadcast_and_never_cross() {
        let test = TestApp::new().await;
        let (room_a, room_b) = (test.control_room().await, test.control_room().await);
        let alice = test.hs.user("alice", Some("Alice"));
        let bob = test.hs.user("bob", None);
        let first = delivered(&test, &room_a, "Offsite?", &[alice.clone(), bob.clone()]).await;
        let second = delivered(&test, &room_b, "Lunch?", std::slice::from_ref(&alice)).await;

        write_in_dm(&test, &alice, "Lunch yes", 1).await;
        write_in_dm(&test, &alice, "and dessert", 2).await;
        write_in_dm(&test, &bob, "Offsite yes", 1).await;

        let in_b = test.hs.sent_to(&room_b);
        assert_eq!(in_b[0].content["body"], "Replies from “Alice” (@alice:example.org) to «Lunch?» #2");
        let root = in_b[0].event_id.to_string();
        let replies: Vec<_> =
            in_b[1..].iter().map(|sent| (sent.content["body"].clone(), thread_of(sent))).collect();
        assert_eq!(replies, [(json!("Lunch yes"), Some(root.clone())), (json!("and dessert"), Some(root))]);
        let in_a = test.hs.bodies_in(&room_a);
        assert_eq!(
            in_a,
            ["Replies from “bob” (@bob:example.org) to «Offsite?» #1", "Offsite yes"],
            "bob's only"
        );
        assert_eq!(test.store().read_and_replied(second).await.unwrap().1, 1);
        assert_eq!(test.store().repliers(first, 10).await.unwrap(), [bob]);
    }

    #[tokio::test]
    async fn messages_about_no_broadcast_go_to_the_default_control_room_or_get_a_polite_notice() {
        let test = TestApp::new().await;
        let alice = test.hs.user("alice", None);
        let dm = test.rooms.senders.dms.ensure(&alice).await.unwrap().room;
        write_in_dm(&test, &alice, "hello?", 1).await;
        assert_eq!(
            test.hs.bodies_in(&dm),
            ["Thanks for your message. Nobody reads messages here yet, so it was not passed on."]
        );
        let control = test.control_room().await;
        test.rooms.default_control_room.set(control.clone()).unwrap();
        write_in_dm(&test, &alice, "anyone?", 2).await;
        assert_eq!(
            test.hs.bodies_in(&control),
            ["Messages from “alice” (@alice:example.org), not about a broadcast", "anyone?"]
        );
    }

    #[tokio::test]
    async fn stop_and_start_switch_broadcasts_off_and_on_and_are_not_relayed() {
        let test = TestApp::new().await;
        let control = test.control_room().await;
        let alice = test.hs.user("alice", None);
        delivered(&test, &control, "News", std::slice::from_ref(&alice)).await;
        let dm: OwnedRoomId = test.store().live_dm(None, &alice).await.unwrap().unwrap().room_id.unwrap();
        write_in_dm(&test, &alice, "  STOP ", 1).await;
        assert!(test.store().is_opted_out(&alice).await.unwrap());
        write_in_dm(&test, &alice, "start", 2).await;
        assert!(!test.store().is_opted_out(&alice).await.unwrap());
        assert_eq!(
            test.hs.bodies_in(&dm),
            [
                "You will get no more broadcasts from here. Write `start` to get them again.",
                "You will get broadcasts again."
            ]
        );
        assert!(test.hs.sent_to(&control).is_empty(), "keywords are not replies");
    }

    #[tokio::test]
    async fn an_answer_in_the_thread_reaches_only_that_recipient_or_says_why_not() {
        let test = TestApp::new().await;
        let control = test.control_room().await;
        let alice = test.hs.user("alice", None);
        let bob = test.hs.user("bob", None);
        delivered(&test, &control, "News", &[alice.clone(), bob.clone()]).await;
        write_in_dm(&test, &alice, "question", 1).await;
        let root = test.hs.sent_to(&control)[0].event_id.clone();
        let answer = |n: u32| {
            let event_id: OwnedEventId = format!("$answer-{n}").try_into().unwrap();
            let event = json!({ "type": "m.room.message", "event_id": event_id, "content": {
                "msgtype": "m.text", "body": format!("answer {n}"),
                "m.relates_to": { "rel_type": "m.thread", "event_id": root } } });
            (event_id, event)
        };
        let admin: OwnedUserId = "@admin:example.org".try_into().unwrap();
        let (event_id, event) = answer(1);
        assert!(matches!(
            on_thread_message(&test.rooms, &control, &admin, &event_id, &event).await,
            Handled::Done
        ));
        let alice_dm = test.store().live_dm(None, &alice).await.unwrap().unwrap().room_id.unwrap();
        let bob_dm = test.store().live_dm(None, &bob).await.unwrap().unwrap().room_id.unwrap();
        assert_eq!(test.hs.bodies_in(&alice_dm), ["answer 1"]);
        assert!(test.hs.bodies_in(&bob_dm).is_empty(), "never another recipient");
        let reactions: Vec<_> =
            test.hs.sent_to(&control).into_iter().filter(|sent| sent.event_type == "m.reaction").collect();
        assert_eq!(reactions[0].content["m.relates_to"]["key"], "✅");

        let nobody: OwnedUserId = "@nobody:example.org".try_into().unwrap();
        let (event_id, event) = answer(2);
        assert!(matches!(
            on_thread_message(&test.rooms, &control, &nobody, &event_id, &event).await,
            Handled::Done
        ));
        assert_eq!(test.hs.bodies_in(&alice_dm), ["answer 1"], "people without the level are not passed on");

        test.hs.set_membership(&alice_dm, &alice, MembershipState::Leave);
        let (event_id, event) = answer(3);
        assert!(matches!(
            on_thread_message(&test.rooms, &control, &admin, &event_id, &event).await,
            Handled::Done
        ));
        let last = test.hs.sent_to(&control).pop().unwrap();
        assert_eq!(last.content["body"], "Not delivered: @alice:example.org has left their DM with me");
        assert_eq!(thread_of(&last), Some(root.to_string()));
        // Issue 10, item 15: never into a DM that gained a third member.
        test.hs.set_membership(&alice_dm, &alice, MembershipState::Join);
        let mallory = test.hs.user("mallory", None);
        test.hs.set_membership(&alice_dm, &mallory, MembershipState::Join);
        let (event_id, event) = answer(4);
        assert!(matches!(
            on_thread_message(&test.rooms, &control, &admin, &event_id, &event).await,
            Handled::Done
        ));
        assert_eq!(test.hs.bodies_in(&alice_dm), ["answer 1"], "nothing into a room with a third member");
        let last = test.hs.sent_to(&control).pop().unwrap();
        assert_eq!(
            last.content["body"],
            "Not delivered: the DM of @alice:example.org has a third member, so nothing is sent there"
        );
        let sent_before = test.hs.sent_to(&control).len();
        let not_a_thread = json!({ "content": { "body": "x" } });
        on_thread_message(&test.rooms, &control, &admin, &owned_event_id!("$x"), &not_a_thread).await;
        assert_eq!(test.hs.sent_to(&control).len(), sent_before, "a message outside a thread is left alone");
        assert_eq!(test.hs.bodies_in(&alice_dm), ["answer 1"]);
    }

    /// Issue 10, item 14: what a recipient writes cannot ping the control room or smuggle markup.
    #[tokio::test]
    async fn relayed_replies_cannot_ping_or_spoof() {
        let test = TestApp::new().await;
        let control = test.control_room().await;
        let mallory = test.hs.user("mallory", Some("@room"));
        delivered(&test, &control, "News", std::slice::from_ref(&mallory)).await;
        let dm = test.store().live_dm(None, &mallory).await.unwrap().unwrap();
        let room = dm.room_id.clone().unwrap();
        let event_id = owned_event_id!("$evil");
        let event = json!({ "type": "m.room.message", "room_id": room, "sender": mallory, "event_id": event_id,
            "content": { "msgtype": "m.text", "body": "@room look", "format": "org.matrix.custom.html",
                "formatted_body": "<b>hi</b><script>alert(1)</script><img src=\"https://evil.example/x.png\">",
                "m.mentions": { "room": true }, "evil.key": 1 } });
        on_dm_message(&test.rooms, &dm, &room, &event_id, &event).await;
        let sent = test.hs.sent_to(&control);
        let (title, relayed) = (&sent[0].content, &sent[1].content);
        assert_eq!(title["body"], "Replies from “@room” (@mallory:example.org) to «News» #1");
        assert_eq!(title["m.mentions"], json!({}), "the title mentions nobody");
        assert_eq!(relayed["m.mentions"], json!({}), "the relayed copy mentions nobody");
        let html = relayed["formatted_body"].as_str().unwrap();
        assert!(
            html.starts_with("<b>hi</b>") && !html.contains("<script") && !html.contains("<img"),
            "{html}"
        );
        assert!(relayed.get("evil.key").is_none(), "only known content keys: {relayed}");
        assert_eq!(relayed["body"], "@room look");
    }

    /// `user`'s edit `n` in their DM `room` of their message `original`, to `new` (content).
    async fn edit_in_dm(
        test: &TestApp,
        user: &UserId,
        room: &RoomId,
        original: &EventId,
        n: u32,
        new: Value,
    ) {
        let dm = test.store().live_dm(None, user).await.unwrap().expect("a DM");
        let event_id: OwnedEventId = format!("${}-edit-{n}", user.localpart()).try_into().unwrap();
        let event = json!({ "type": "m.room.message", "room_id": room, "sender": user, "event_id": event_id,
            "content": { "msgtype": "m.text", "body": "* edited", "m.new_content": new,
                "m.relates_to": { "rel_type": "m.replace", "event_id": original } } });
        on_dm_message(&test.rooms, &dm, room, &event_id, &event).await;
    }

    fn edits_in(test: &TestApp, room: &RoomId) -> Vec<Value> {
        let sent = test.hs.sent_to(room).into_iter();
        sent.filter(|sent| sent.content["m.relates_to"]["rel_type"] == "m.replace")
            .map(|sent| sent.content)
            .collect()
    }

    /// Issue 22, item 5: an edit of a relayed reply passes the gate a new reply passes: its HTML
    /// is sanitized, it mentions nobody, the per-person limit counts it, and it never goes into a
    /// room that stopped being a control room.
    #[tokio::test]
    async fn an_edit_of_a_relayed_reply_passes_the_same_gate() {
        let test = TestApp::new().await;
        let control = test.control_room().await;
        let mallory = test.hs.user("mallory", None);
        delivered(&test, &control, "News", std::slice::from_ref(&mallory)).await;
        let dm = test.store().live_dm(None, &mallory).await.unwrap().unwrap().room_id.unwrap();
        let original = write_in_dm(&test, &mallory, "hello", 1).await;
        let evil = json!({ "msgtype": "m.text", "body": "@room look", "format": "org.matrix.custom.html",
            "formatted_body": "<b>hi</b><script>alert(1)</script>", "m.mentions": { "room": true } });
        edit_in_dm(&test, &mallory, &dm, &original, 1, evil).await;
        let edits = edits_in(&test, &control);
        assert_eq!(edits.len(), 1, "{edits:?}");
        let edit = &edits[0];
        assert_eq!(edit["m.mentions"], json!({}), "the edit mentions nobody: {edit}");
        assert_eq!(edit["m.new_content"]["m.mentions"], json!({}), "{edit}");
        let html = edit["m.new_content"]["formatted_body"].as_str().unwrap();
        assert!(html.starts_with("<b>hi</b>") && !html.contains("<script"), "{html}");
        assert!(!edit["formatted_body"].as_str().unwrap().contains("<script"), "{edit}");
        assert_eq!(edit["body"], "* @room look");

        // Two more messages and the next edit fill the minute's five; the edit after is held.
        for n in 2..=3 {
            write_in_dm(&test, &mallory, &format!("more {n}"), n).await;
        }
        edit_in_dm(&test, &mallory, &dm, &original, 2, json!({ "msgtype": "m.text", "body": "fifth" })).await;
        edit_in_dm(&test, &mallory, &dm, &original, 3, json!({ "msgtype": "m.text", "body": "sixth" })).await;
        let bodies: Vec<_> = edits_in(&test, &control).iter().map(|edit| edit["body"].clone()).collect();
        assert_eq!(
            bodies,
            [json!("* @room look"), json!("* fifth")],
            "the sixth message of the minute is held"
        );

        let test = TestApp::new().await;
        let control = test.control_room().await;
        delivered(&test, &control, "News", std::slice::from_ref(&mallory)).await;
        let dm = test.store().live_dm(None, &mallory).await.unwrap().unwrap().room_id.unwrap();
        let original = write_in_dm(&test, &mallory, "hello", 1).await;
        test.store().remove_control_room(&control).await.unwrap();
        edit_in_dm(&test, &mallory, &dm, &original, 1, json!({ "msgtype": "m.text", "body": "late" })).await;
        assert!(edits_in(&test, &control).is_empty(), "nothing into a room that is no longer a control room");
    }

    /// Issue 22, item 12: an edit or redaction names a relayed message by its event ID, which
    /// counts only in the DM the message came from.
    #[tokio::test]
    async fn edits_and_redactions_count_only_in_the_dm_of_the_relayed_message() {
        let test = TestApp::new().await;
        let control = test.control_room().await;
        let (alice, bob) = (test.hs.user("alice", None), test.hs.user("bob", None));
        delivered(&test, &control, "News", &[alice.clone(), bob.clone()]).await;
        let alice_dm = test.store().live_dm(None, &alice).await.unwrap().unwrap().room_id.unwrap();
        let bob_dm = test.store().live_dm(None, &bob).await.unwrap().unwrap().room_id.unwrap();
        let original = write_in_dm(&test, &alice, "hello", 1).await;

        edit_in_dm(&test, &bob, &bob_dm, &original, 1, json!({ "msgtype": "m.text", "body": "forged" }))
            .await;
        assert!(edits_in(&test, &control).is_empty(), "an edit from another DM is ignored");
        on_dm_redaction(&test.rooms, &bob_dm, &original).await;
        assert!(test.hs.with(|state| state.redacted.is_empty()), "a redaction from another DM is ignored");

        edit_in_dm(&test, &alice, &alice_dm, &original, 1, json!({ "msgtype": "m.text", "body": "fixed" }))
            .await;
        assert_eq!(edits_in(&test, &control).len(), 1, "her own edit is relayed");
        on_dm_redaction(&test.rooms, &alice_dm, &original).await;
        assert_eq!(test.hs.with(|state| state.redacted.len()), 1, "her own redaction retracts the copy");
    }

    /// Issue 10, item 5: nothing is relayed into a room that is no longer a control room.
    #[tokio::test]
    async fn nothing_is_relayed_into_a_room_that_stopped_being_a_control_room() {
        let test = TestApp::new().await;
        let control = test.control_room().await;
        let alice = test.hs.user("alice", None);
        delivered(&test, &control, "News", std::slice::from_ref(&alice)).await;
        test.store().remove_control_room(&control).await.unwrap();
        write_in_dm(&test, &alice, "secret", 1).await;
        assert!(test.hs.sent_to(&control).is_empty(), "{:?}", test.hs.bodies_in(&control));
    }

    /// Issue 10, item 3: a flood from one person folds into one notice per minute.
    #[tokio::test]
    async fn a_flood_of_replies_folds_into_one_notice() {
        let test = TestApp::new().await;
        let control = test.control_room().await;
        let alice = test.hs.user("alice", None);
        delivered(&test, &control, "News", std::slice::from_ref(&alice)).await;
        for n in 0..10 {
            write_in_dm(&test, &alice, &format!("spam {n}"), n).await;
        }
        let bodies = test.hs.bodies_in(&control);
        assert_eq!(bodies.len(), 1 + 5 + 1, "title, five replies, one notice: {bodies:?}");
        assert_eq!(bodies[5], "spam 4");
        assert!(bodies[6].contains("more than 5 messages within a minute"), "{bodies:?}");
    }

    /// Issue 10, item 3: a slow remote profile look-up does not hold up the dispatcher; issue 22:
    /// the thread's title takes the name from the member event in the DM, never asking a profile.
    #[tokio::test]
    async fn a_slow_profile_look_up_does_not_hold_up_a_reply() {
        let test = TestApp::new().await;
        let control = test.control_room().await;
        let alice = test.hs.user("alice", Some("Alice"));
        delivered(&test, &control, "News", std::slice::from_ref(&alice)).await;
        test.hs.with(|state| state.slow.insert("displayname", std::time::Duration::from_secs(30)));
        let started = std::time::Instant::now();
        write_in_dm(&test, &alice, "hello", 1).await;
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "took {:?}", started.elapsed());
        assert_eq!(test.hs.bodies_in(&control)[0], "Replies from “Alice” (@alice:example.org) to «News» #1");
        assert_eq!(test.hs.count("displayname"), 0, "no profile look-up");
    }

    /// Issue 15: with `language: de`, `stopp` opts out and the recipient is answered in German.
    #[tokio::test]
    async fn in_german_stopp_opts_out_with_a_german_confirmation() {
        let test = TestApp::with_config("language: de\n").await;
        let control = test.control_room().await;
        let alice = test.hs.user("alice", None);
        delivered(&test, &control, "Neuigkeiten", std::slice::from_ref(&alice)).await;
        let dm: OwnedRoomId = test.store().live_dm(None, &alice).await.unwrap().unwrap().room_id.unwrap();
        write_in_dm(&test, &alice, "Stopp", 1).await;
        assert!(test.store().is_opted_out(&alice).await.unwrap());
        write_in_dm(&test, &alice, "start", 2).await;
        assert!(!test.store().is_opted_out(&alice).await.unwrap());
        write_in_dm(&test, &alice, "stop", 3).await;
        assert!(test.store().is_opted_out(&alice).await.unwrap(), "`stop` too");
        assert_eq!(
            test.hs.bodies_in(&dm),
            [
                "Sie erhalten von hier keine Rundsendungen mehr. Schreiben Sie `start`, um sie wieder zu erhalten.",
                "Sie erhalten wieder Rundsendungen.",
                "Sie erhalten von hier keine Rundsendungen mehr. Schreiben Sie `start`, um sie wieder zu erhalten.",
            ]
        );
        assert!(test.hs.sent_to(&control).is_empty(), "keywords are not replies");
    }

    /// Issue 15: in German, the thread of a recipient's replies has a German title, and the
    /// notices about a flood and an undelivered answer are German.
    #[tokio::test]
    async fn in_german_threads_and_their_notices_are_german() {
        let test = TestApp::with_config("language: de\n").await;
        let control = test.control_room().await;
        let alice = test.hs.user("alice", Some("Alice"));
        delivered(&test, &control, "Umfrage", std::slice::from_ref(&alice)).await;
        for n in 0..7 {
            write_in_dm(&test, &alice, &format!("Antwort {n}"), n).await;
        }
        let bodies = test.hs.bodies_in(&control);
        assert_eq!(bodies[0], "Antworten von „Alice“ (@alice:example.org) auf »Umfrage« #1");
        assert_eq!(
            bodies[6],
            "@alice:example.org hat innerhalb einer Minute mehr als 5 Nachrichten gesendet; die weiteren dieser \
             Minute werden nicht weitergeleitet (sie bleiben im Direktchat)."
        );
        let root = test.hs.sent_to(&control)[0].event_id.clone();
        let dm = test.store().live_dm(None, &alice).await.unwrap().unwrap().room_id.unwrap();
        test.hs.set_membership(&dm, &alice, MembershipState::Leave);
        let event = json!({ "type": "m.room.message", "event_id": "$answer", "content": {
            "msgtype": "m.text", "body": "Danke", "m.relates_to": { "rel_type": "m.thread", "event_id": root } } });
        let admin: OwnedUserId = "@admin:example.org".try_into().unwrap();
        assert!(matches!(
            on_thread_message(&test.rooms, &control, &admin, &owned_event_id!("$answer"), &event).await,
            Handled::Done
        ));
        assert_eq!(
            test.hs.bodies_in(&control).pop().unwrap(),
            "Nicht zugestellt: @alice:example.org hat den Direktchat mit mir verlassen"
        );
    }

    /// Issue 15: with `recipient_language: user`, `sprache de` switches the bot's notices to
    /// that recipient to German; the control room stays in the config's language.
    #[tokio::test]
    async fn a_recipient_who_chooses_german_gets_german_notices_while_admins_keep_english() {
        let test = TestApp::with_config("broadcast:\n  recipient_language: user\n").await;
        let control = test.control_room().await;
        let (alice, bob) = (test.hs.user("alice", Some("Alice")), test.hs.user("bob", None));
        delivered(&test, &control, "News", &[alice.clone(), bob.clone()]).await;
        let alice_dm = test.store().live_dm(None, &alice).await.unwrap().unwrap().room_id.unwrap();
        let bob_dm = test.store().live_dm(None, &bob).await.unwrap().unwrap().room_id.unwrap();

        write_in_dm(&test, &alice, "  SPRACHE de ", 1).await;
        assert_eq!(test.store().language(&alice).await.unwrap(), Some(Language::De));
        write_in_dm(&test, &alice, "stopp", 2).await;
        assert!(test.store().is_opted_out(&alice).await.unwrap(), "German stop words for her");
        write_in_dm(&test, &alice, "start", 3).await;
        write_in_dm(&test, &alice, "Hallo", 4).await;
        assert_eq!(
            test.hs.bodies_in(&alice_dm),
            [
                "Ab jetzt schreibe ich Ihnen auf Deutsch.",
                "Sie erhalten von hier keine Rundsendungen mehr. Schreiben Sie `start`, um sie wieder zu erhalten.",
                "Sie erhalten wieder Rundsendungen.",
            ]
        );
        assert_eq!(
            test.hs.bodies_in(&control),
            ["Replies from “Alice” (@alice:example.org) to «News» #1", "Hallo"],
            "the admins' texts stay English, and the language words are not relayed"
        );
        assert_eq!(test.rooms.recipient_language(&alice).await, Language::De);

        write_in_dm(&test, &bob, "stopp", 1).await;
        assert!(!test.store().is_opted_out(&bob).await.unwrap(), "bob speaks English: `stopp` is a reply");
        write_in_dm(&test, &bob, "stop", 2).await;
        write_in_dm(&test, &alice, "language EN", 5).await;
        write_in_dm(&test, &alice, "stop", 6).await;
        assert_eq!(
            test.hs.bodies_in(&bob_dm),
            ["You will get no more broadcasts from here. Write `start` to get them again."]
        );
        assert_eq!(
            test.hs.bodies_in(&alice_dm)[3..],
            [
                "From now on I will write to you in English.",
                "You will get no more broadcasts from here. Write `start` to get them again.",
            ]
        );
    }

    /// Issue 15: a language the bot does not speak gets a short answer naming those it does.
    #[tokio::test]
    async fn an_unknown_language_gets_the_list_of_languages() {
        let test = TestApp::with_config("broadcast:\n  recipient_language: user\n").await;
        let control = test.control_room().await;
        let alice = test.hs.user("alice", None);
        delivered(&test, &control, "News", std::slice::from_ref(&alice)).await;
        let dm = test.store().live_dm(None, &alice).await.unwrap().unwrap().room_id.unwrap();
        write_in_dm(&test, &alice, "language fr", 1).await;
        write_in_dm(&test, &alice, "sprache de", 2).await;
        write_in_dm(&test, &alice, "Sprache xx", 3).await;
        assert_eq!(
            test.hs.bodies_in(&dm),
            [
                "I do not speak “fr”. Write `language en` for English or `language de` for German.",
                "Ab jetzt schreibe ich Ihnen auf Deutsch.",
                "Die Sprache „xx“ spreche ich nicht. Schreiben Sie `sprache de` für Deutsch oder `sprache en` für \
                 Englisch.",
            ]
        );
        assert_eq!(test.store().language(&alice).await.unwrap(), Some(Language::De), "kept");
        assert!(test.hs.sent_to(&control).is_empty(), "not relayed");
    }

    /// Issue 15: with `recipient_language: config` (the default), `sprache de` is a reply.
    #[tokio::test]
    async fn without_a_recipients_choice_language_words_are_replies() {
        let test = TestApp::new().await;
        let control = test.control_room().await;
        let alice = test.hs.user("alice", None);
        delivered(&test, &control, "News", std::slice::from_ref(&alice)).await;
        write_in_dm(&test, &alice, "sprache de", 1).await;
        assert_eq!(test.hs.bodies_in(&control)[1], "sprache de");
        assert_eq!(test.store().language(&alice).await.unwrap(), None);
        assert_eq!(test.rooms.recipient_language(&alice).await, Language::En);
    }
}
