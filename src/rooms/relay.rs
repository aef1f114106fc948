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
        store::{now_ms, Broadcast, BroadcastId, DmRoom, ReplyThread, Store, StoreError},
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
    let title = thread_title(rooms.language(), &name, user, broadcast.as_ref());
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

/// The title of the thread of `user` (shown as `name`) for `broadcast`, or for messages that
/// answer none.
fn thread_title(language: Language, name: &str, user: &UserId, broadcast: Option<&Broadcast>) -> String {
    let user = user.as_str();
    match broadcast {
        Some(broadcast) => crate::base::i18n::t!(
            language,
            "relay-thread-title",
            name = name,
            user = user,
            broadcast = &broadcast.name,
            id = broadcast.id.to_string(),
        ),
        None => crate::base::i18n::t!(language, "relay-thread-title-no-broadcast", name = name, user = user),
    }
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
pub async fn on_poll_answer(store: &Store, event_type: &str, event: &Value) -> Handled {
    Handled::of("cannot record an answer to a poll", poll_answer(store, event_type, event).await)
}

async fn poll_answer(store: &Store, event_type: &str, event: &Value) -> Result<(), StoreError> {
    let room = event["room_id"].as_str().and_then(|room| RoomId::parse(room).ok());
    let sender = event["sender"].as_str().and_then(|user| UserId::parse(user).ok());
    let answered_at = event["origin_server_ts"].as_i64().unwrap_or_else(now_ms);
    let (Some(room), Some(sender), Some((start, choices))) =
        (room, sender, poll::response(event_type, &event["content"]))
    else {
        return Ok(());
    };
    let Some((id, recipient)) = store.copy_of(&room, &start).await? else { return Ok(()) };
    if recipient != sender {
        return Ok(());
    }
    let broadcast = store.broadcast(id).await?;
    let Some(poll) = Poll::of(&broadcast.message) else { return Ok(()) };
    if broadcast.poll_closed_at.is_some_and(|closed| answered_at > closed) {
        tracing::debug!(broadcast = %id, "an answer after the poll was closed does not count");
        return Ok(());
    }
    store.record_poll_answer(id, &sender, &poll.valid_choices(&choices), answered_at).await
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
mod tests;
