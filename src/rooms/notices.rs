//! Talking back in a room: command answers (✅/❌ reaction plus an `m.notice` reply), reactions,
//! plain and threaded notices, and edits of a notice.
//!
//! Everything here goes through `&dyn Homeserver` and imports nothing above `matrix`: the
//! dispatcher, the commands, the relay and the delivery path all use it, and it uses none of
//! them. Transaction IDs derive from the event being answered, so that handling an event twice
//! never answers twice. Failures to post are logged, never returned: a notice that cannot be
//! posted must not stop the work it reports on. A notice too long for one event (it may quote
//! whatever someone typed) is cut to fit, saying so, rather than refused by the homeserver.

use ruma::{
    events::{
        reaction::ReactionEventContent,
        relation::{Annotation, Reply, Thread},
        room::message::{Relation, ReplacementMetadata, RoomMessageEventContent},
        Mentions,
    },
    EventId, OwnedEventId, RoomId, TransactionId,
};

use crate::base::{
    i18n::Language,
    matrix::{send, txn_for, Homeserver, MatrixError},
    message::{cut_to_fit, MAX_CONTENT_BYTES},
    store::{Broadcast, BroadcastId, StoreError},
};

/// What a command answers: success or failure, and Markdown text for an `m.notice`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub ok: bool,
    pub markdown: String,
    /// The answer is the preview of this broadcast: its event is recorded (✅ on it confirms).
    pub preview_of: Option<BroadcastId>,
}

impl Answer {
    pub fn ok(markdown: impl Into<String>) -> Self {
        Self { ok: true, markdown: markdown.into(), preview_of: None }
    }

    pub fn error(markdown: impl Into<String>) -> Self {
        Self { ok: false, markdown: markdown.into(), preview_of: None }
    }

    pub fn preview(id: BroadcastId, markdown: impl Into<String>) -> Self {
        Self { ok: true, markdown: markdown.into(), preview_of: Some(id) }
    }

    /// The answer when the bot's own database fails, in English; see [`Answer::store_failed_in`].
    pub fn store_failed(error: StoreError) -> Self {
        Self::store_failed_in(Language::En, error)
    }

    /// The answer in `language` when the bot's own database fails; the details go to the log.
    pub fn store_failed_in(language: Language, error: StoreError) -> Self {
        tracing::error!(%error, "store failed during a command");
        Self::error(crate::base::i18n::t!(language, "database-failed"))
    }
}

/// Answers `command`: ✅ or ❌ on it, and the text as an `m.notice` reply, whose event ID is
/// returned.
pub async fn answer(
    homeserver: &dyn Homeserver,
    room: &RoomId,
    command: &EventId,
    answer: &Answer,
) -> Option<OwnedEventId> {
    react(homeserver, room, command, if answer.ok { "✅" } else { "❌" }).await;
    let mut notice = fitted(&answer.markdown, |text| RoomMessageEventContent::notice_markdown(text));
    notice.relates_to = Some(Relation::Reply(Reply::with_event_id(command.to_owned())));
    post(homeserver, room, &txn_for("answer", command), &notice, "answer a command").await
}

/// Reacts to an event with `key` (once: the transaction ID derives from the event).
pub async fn react(homeserver: &dyn Homeserver, room: &RoomId, event: &EventId, key: &str) {
    let reaction = ReactionEventContent::new(Annotation::new(event.to_owned(), key.to_owned()));
    if let Err(error) = send(homeserver, room, &txn_for("reaction", event), &reaction).await {
        tracing::warn!(%error, "cannot react to a message");
    }
}

/// Posts a plain notice (Markdown) into a room; returns its event ID.
pub async fn post_notice(
    homeserver: &dyn Homeserver,
    room: &RoomId,
    txn_id: &TransactionId,
    markdown: &str,
) -> Option<OwnedEventId> {
    let notice = fitted(markdown, |text| RoomMessageEventContent::notice_markdown(text));
    post(homeserver, room, txn_id, &notice, "post a notice").await
}

/// Posts a plain-text notice (no Markdown: names in it are shown as written); returns its
/// event ID.
pub async fn post_text(
    homeserver: &dyn Homeserver,
    room: &RoomId,
    txn_id: &TransactionId,
    text: &str,
) -> Option<OwnedEventId> {
    logged(room, "post a notice", try_post_text(homeserver, room, txn_id, text).await)
}

/// Like [`post_text`], the failure returned rather than logged (for a caller that tries again).
pub async fn try_post_text(
    homeserver: &dyn Homeserver,
    room: &RoomId,
    txn_id: &TransactionId,
    text: &str,
) -> Result<OwnedEventId, MatrixError> {
    let notice = fitted(text, |text| RoomMessageEventContent::notice_plain(text));
    send_mentioning_nobody(homeserver, room, txn_id, &notice).await
}

/// Posts a notice in the thread of `root`, as a reply to `in_reply_to`.
pub async fn post_in_thread(
    homeserver: &dyn Homeserver,
    room: &RoomId,
    txn_id: &TransactionId,
    root: &EventId,
    in_reply_to: &EventId,
    text: &str,
) -> Option<OwnedEventId> {
    let mut notice = fitted(text, |text| RoomMessageEventContent::notice_plain(text));
    notice.relates_to = Some(Relation::Thread(Thread::reply(root.to_owned(), in_reply_to.to_owned())));
    post(homeserver, room, txn_id, &notice, "post in a thread").await // not for people
}

/// Replaces the text of a notice the bot posted (`m.replace`).
pub async fn edit_notice(
    homeserver: &dyn Homeserver,
    room: &RoomId,
    txn_id: &TransactionId,
    original: &EventId,
    text: &str,
) -> Option<OwnedEventId> {
    let edit = fitted(text, |text| RoomMessageEventContent::notice_plain(text))
        .make_replacement(ReplacementMetadata::new(original.to_owned(), None));
    post(homeserver, room, txn_id, &edit, "edit a notice").await
}

/// The notice `build` makes of `text`, cut to fit [`MAX_CONTENT_BYTES`].
fn fitted(text: &str, build: fn(&str) -> RoomMessageEventContent) -> RoomMessageEventContent {
    let size = |text: &str| serde_json::to_vec(&build(text)).map(|json| json.len()).unwrap_or(usize::MAX);
    build(&cut_to_fit(text, |text| size(text) <= MAX_CONTENT_BYTES))
}

async fn post(
    homeserver: &dyn Homeserver,
    room: &RoomId,
    txn_id: &TransactionId,
    content: &RoomMessageEventContent,
    what: &str,
) -> Option<OwnedEventId> {
    logged(room, what, send_mentioning_nobody(homeserver, room, txn_id, content).await)
}

async fn send_mentioning_nobody(
    homeserver: &dyn Homeserver,
    room: &RoomId,
    txn_id: &TransactionId,
    content: &RoomMessageEventContent,
) -> Result<OwnedEventId, MatrixError> {
    // The bot usually has the power to ping everyone in a control room: it mentions nobody.
    let mut content = content.clone();
    content.mentions = Some(Mentions::new());
    send(homeserver, room, txn_id, &content).await
}

/// The event ID a post got, or `None` with its failure logged (it could not `what`).
fn logged(room: &RoomId, what: &str, posted: Result<OwnedEventId, MatrixError>) -> Option<OwnedEventId> {
    match posted {
        Ok(event) => Some(event),
        Err(error) => {
            tracing::warn!(%error, %room, "cannot {what}");
            None
        }
    }
}

/// A broadcast as answers name it: `#12 «Welcome»`, the name escaped so that it shows as written
/// (a name is whatever its creator typed, and answers are Markdown).
pub fn titled(broadcast: &Broadcast) -> String {
    format!("{} «{}»", broadcast.id, escape_markdown(&broadcast.name))
}

/// `text`, or its first `max` characters and `…` when it is longer.
pub fn shortened(text: &str, max: usize) -> String {
    let mut chars = text.chars();
    let mut short: String = chars.by_ref().take(max).collect();
    if chars.next().is_some() {
        short.push('…');
    }
    short
}

/// An error's text as a Markdown answer may show it: as written (a homeserver's error text can
/// come from a remote server, and say anything).
pub fn error_text(error: &impl std::fmt::Display) -> String {
    escape_markdown(&error.to_string())
}

/// `text` with the characters that Markdown or HTML would read as markup backslash-escaped.
pub fn escape_markdown(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        if "\\`*_[]<>()#!|~&".contains(character) {
            escaped.push('\\');
        }
        escaped.push(character);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notice_too_long_for_an_event_is_cut_and_says_so() {
        let short = fitted("**hi**", |text| RoomMessageEventContent::notice_markdown(text));
        assert_eq!(short.body(), "**hi**");
        // `<` becomes `&lt;` in HTML: the rendered size counts, not the text's.
        let long = format!("A caret under the bad word:\n```\n{}\n```", "<".repeat(100_000));
        let notice = fitted(&long, |text| RoomMessageEventContent::notice_markdown(text));
        let size = serde_json::to_vec(&notice).unwrap().len();
        assert!(size <= MAX_CONTENT_BYTES, "{size} bytes");
        assert!(notice.body().starts_with("A caret under the bad word:"), "{}", &notice.body()[..40]);
        assert!(notice.body().contains("(cut: the first"), "it says it was cut");
    }
}
