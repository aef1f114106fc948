//! Takes events out of the inbox, oldest first, and routes each to the module that owns it:
//! the bot's own memberships to `control_rooms`, `!bc` lines in control rooms to `commands`.
//!
//! An event is removed from the inbox once handled, whatever the outcome: a failure is logged
//! and answered where a person is waiting, never retried forever.

use std::sync::Arc;

use ruma::events::room::member::MembershipState;
use ruma::{
    events::{
        reaction::ReactionEventContent,
        relation::{Annotation, Reply},
        room::message::{MessageType, Relation, RoomMessageEventContent},
        AnyMessageLikeEvent, AnyStateEvent, AnyTimelineEvent, MessageLikeEvent, StateEvent,
    },
    EventId, OwnedEventId, OwnedTransactionId, RoomId, UserId,
};
use tokio::sync::watch;

use crate::{
    commands::{self, Answer, Context},
    control_rooms, defaults,
    matrix::send,
    permissions::Level,
    relay, App,
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
        for event in batch {
            dispatch(&app, &event.event_json).await;
            if let Err(error) = app.store.remove_inbox(event.seq).await {
                tracing::error!(%error, seq = event.seq, "cannot remove a dispatched event from the inbox");
            }
        }
    }
}

/// Routes one event.
async fn dispatch(app: &Arc<App>, json: &str) {
    let event: AnyTimelineEvent = match serde_json::from_str(json) {
        Ok(event) => event,
        Err(error) => {
            // Event types the bot does not know, or content it cannot read: nothing to do.
            tracing::debug!(%error, "event ignored");
            return;
        }
    };
    if app.is_own_user(event.sender()) {
        return;
    }
    match event {
        AnyTimelineEvent::State(AnyStateEvent::RoomMember(StateEvent::Original(member)))
            if member.state_key == app.bot =>
        {
            control_rooms::on_bot_membership(app, &member).await;
        }
        AnyTimelineEvent::State(AnyStateEvent::RoomMember(StateEvent::Original(member))) => {
            let was_joined = member
                .unsigned
                .prev_content
                .as_ref()
                .is_some_and(|before| before.membership == MembershipState::Join);
            if member.content.membership == MembershipState::Join && !was_joined {
                defaults::on_join(app, &member.room_id, &member.state_key).await;
            }
        }
        AnyTimelineEvent::MessageLike(AnyMessageLikeEvent::RoomMessage(MessageLikeEvent::Original(
            message,
        ))) => {
            let raw: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
            let (room, event_id, sender) = (&message.room_id, &message.event_id, &message.sender);
            match app.store.dm_by_room(room).await {
                Ok(Some(dm)) if dm.user_id == *sender => {
                    return relay::on_dm_message(app, &dm, room, event_id, &raw).await;
                }
                Ok(Some(_)) => return, // someone else in a recipient's DM
                Ok(None) => {}
                Err(error) => return tracing::error!(%error, "cannot look up DM rooms"),
            }
            let edit = matches!(message.content.relates_to, Some(Relation::Replacement(_)));
            if let (MessageType::Text(text), false) = (&message.content.msgtype, edit) {
                let reply_to = match &message.content.relates_to {
                    Some(Relation::Reply(reply)) => Some(reply.in_reply_to.event_id.clone()),
                    Some(Relation::Thread(thread)) => {
                        thread.in_reply_to.as_ref().map(|reply| reply.event_id.clone())
                    }
                    _ => None,
                };
                let body = if reply_to.is_some() { strip_reply_fallback(&text.body) } else { &text.body };
                if command_line(&app.config.broadcast.command_prefix, body).is_some() {
                    return on_text(app, room, event_id, sender, body, reply_to).await;
                }
            }
            if !edit {
                relay::on_thread_message(app, room, sender, event_id, &raw).await;
            }
        }
        AnyTimelineEvent::MessageLike(AnyMessageLikeEvent::RoomRedaction(_)) => {
            let raw: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
            let redacts = raw["content"]["redacts"].as_str().or(raw["redacts"].as_str());
            let Some(redacts) = redacts.and_then(|id| EventId::parse(id).ok()) else { return };
            let room = event.room_id();
            if let Ok(Some(dm)) = app.store.dm_by_room(room).await {
                if dm.user_id == event.sender() {
                    relay::on_dm_redaction(app, &redacts).await;
                }
            }
        }
        AnyTimelineEvent::MessageLike(AnyMessageLikeEvent::Reaction(MessageLikeEvent::Original(
            reaction,
        ))) => {
            on_reaction(app, &reaction.room_id, &reaction.sender, &reaction.content.relates_to).await;
        }
        _ => {}
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

#[tracing::instrument(skip_all, fields(room = %room, sender = %sender))]
async fn on_text(
    app: &Arc<App>,
    room: &RoomId,
    event_id: &EventId,
    sender: &UserId,
    body: &str,
    reply_to: Option<OwnedEventId>,
) {
    let prefix = &app.config.broadcast.command_prefix;
    let Some(line) = command_line(prefix, body) else {
        return;
    };
    let level = app.permissions.level(sender);
    let is_control_room = match app.store.is_control_room(room).await {
        Ok(is_control_room) => is_control_room,
        Err(error) => {
            tracing::error!(%error, "cannot look up control rooms");
            return;
        }
    };
    if !is_control_room {
        if level == Level::Admin {
            let hint = format!(
                "I only take commands in control rooms. Invite me to a private, unencrypted room, or list a room \
                 in `broadcast.control_rooms`, and type `{prefix} help` there."
            );
            answer_command(app, room, event_id, &Answer::error(hint)).await;
        }
        return;
    }
    let answer = if level < Level::Broadcaster {
        tracing::info!(%level, "command refused: not allowed");
        Some(Answer::error(format!(
            "You are not allowed to use this bot: your level is **{level}** and commands need **broadcaster**. \
             An admin of the bot can change `permissions` in its config."
        )))
    } else {
        match commands::parse_command(prefix, line) {
            Ok(command) => {
                let body = body.split_once('\n').map(|(_, rest)| rest).unwrap_or("");
                let ctx = Context { app, room, event_id, sender, level, body, reply_to: reply_to.clone() };
                commands::run(&ctx, command).await
            }
            Err(answer) => Some(answer),
        }
    };
    if let Some(answer) = answer {
        answer_command(app, room, event_id, &answer).await;
    }
}

/// Posts a command's answer, and records it when it is the preview of a broadcast.
pub async fn answer_command(app: &App, room: &RoomId, command: &EventId, answer: &Answer) {
    if let (Some(preview), Some(id)) = (post_answer(app, room, command, answer).await, answer.preview_of) {
        commands::send::remember_preview(app, id, &preview).await;
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
        Err(error) => {
            tracing::error!(%error, "cannot look up a preview");
            return;
        }
    };
    tracing::info!(broadcast = %broadcast.id, %sender, "preview confirmed with a reaction");
    let answer = commands::send::start(app, broadcast.id, crate::store::BroadcastState::Prepared).await;
    if !answer.ok {
        tracing::info!(answer = %answer.markdown, "confirmation by reaction refused");
    }
}

/// Answers a command: ✅ or ❌ reaction on it, and the text as an `m.notice` reply, whose event
/// ID is returned.
async fn post_answer(app: &App, room: &RoomId, command: &EventId, answer: &Answer) -> Option<OwnedEventId> {
    let homeserver = app.homeserver.as_ref();
    react(app, room, command, if answer.ok { "✅" } else { "❌" }).await;
    // Transaction IDs derive from the command, so a re-dispatched command never answers twice.
    let txn = |suffix: &str| {
        OwnedTransactionId::from(format!("{}.{suffix}", command.as_str().trim_start_matches('$')))
    };
    let mut notice = RoomMessageEventContent::notice_markdown(&answer.markdown);
    notice.relates_to = Some(Relation::Reply(Reply::with_event_id(command.to_owned())));
    match send(homeserver, room, &txn("answer"), &notice).await {
        Ok(event) => Some(event),
        Err(error) => {
            tracing::warn!(%error, "cannot answer a command");
            None
        }
    }
}

/// Reacts to an event with `key` (once: the transaction ID derives from the event).
pub async fn react(app: &App, room: &RoomId, event: &EventId, key: &str) {
    let reaction = ReactionEventContent::new(Annotation::new(event.to_owned(), key.to_owned()));
    let txn = OwnedTransactionId::from(format!("{}.reaction", event.as_str().trim_start_matches('$')));
    if let Err(error) = send(app.homeserver.as_ref(), room, &txn, &reaction).await {
        tracing::warn!(%error, "cannot react to a message");
    }
}

/// Posts a plain notice (not an answer to a command) into a room.
pub async fn post_notice(app: &App, room: &RoomId, txn_id: &str, markdown: &str) {
    let notice = RoomMessageEventContent::notice_markdown(markdown);
    if let Err(error) = send(app.homeserver.as_ref(), room, &OwnedTransactionId::from(txn_id), &notice).await
    {
        tracing::warn!(%error, %room, "cannot post a notice");
    }
}

#[cfg(test)]
mod tests {
    use super::command_line;

    #[test]
    fn reply_fallbacks_are_stripped() {
        use super::strip_reply_fallback;
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
}
