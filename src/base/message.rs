//! What a broadcast sends: the message (event type + content) as stored, and its templates.
//!
//! A message is stored once, with `{displayname}`, `{localpart}` and `{user_id}` still in its
//! `body` and `formatted_body`; each recipient's copy fills them in (HTML-escaped in the
//! formatted body). Content copied from a replied-to message is sent as it was — an image keeps
//! its `mxc://` URL — without the relations of the original. A leaf: it imports nothing of the
//! bot and never talks to the homeserver.

use ruma::{events::room::message::RoomMessageEventContent, UserId};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::base::i18n::Language;

/// The most bytes a message's content may take as JSON: a broadcast's, an answer's, a relayed
/// reply's. Synapse refuses an event larger than 65,536 bytes (content, IDs and signatures
/// together), and an edit (`m.replace`) carries the content twice.
pub const MAX_CONTENT_BYTES: usize = 30_000;

/// A message as stored in `broadcasts.content_json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredMessage {
    /// The event type, e.g. `m.room.message` or `org.matrix.msc3381.poll.start`.
    #[serde(rename = "type")]
    pub event_type: String,
    pub content: Value,
}

impl StoredMessage {
    /// A text message written in Markdown (plain `body` plus HTML `formatted_body`).
    pub fn markdown(text: &str) -> Self {
        let content = RoomMessageEventContent::text_markdown(text);
        Self {
            event_type: "m.room.message".into(),
            content: serde_json::to_value(content)
                .unwrap_or_else(|_| serde_json::json!({"msgtype": "m.text", "body": text})),
        }
    }

    /// The content of an existing event (a message replied to), without its relations.
    pub fn copy_of(event: &Value) -> Option<Self> {
        let event_type = event.get("type")?.as_str()?.to_owned();
        let mut content = event.get("content")?.clone();
        let object = content.as_object_mut()?;
        object.remove("m.relates_to");
        object.remove("m.new_content");
        if object.is_empty() {
            return None; // redacted
        }
        Some(Self { event_type, content })
    }

    /// A short text to show for this message in previews and lists, in English; see
    /// [`StoredMessage::summary_in`].
    pub fn summary(&self) -> String {
        self.summary_in(Language::En)
    }

    /// A short text to show for this message in previews and lists, in `language`.
    pub fn summary_in(&self, language: Language) -> String {
        let body = self.content.get("body").and_then(Value::as_str).unwrap_or("");
        let msgtype = self.content.get("msgtype").and_then(Value::as_str).unwrap_or("");
        match msgtype {
            "m.image" => crate::base::i18n::t!(language, "message-image", body = body),
            "m.file" => crate::base::i18n::t!(language, "message-file", body = body),
            "m.video" => crate::base::i18n::t!(language, "message-video", body = body),
            "m.audio" => crate::base::i18n::t!(language, "message-audio", body = body),
            _ if self.event_type.ends_with("poll.start") => crate::base::i18n::t!(language, "message-poll"),
            _ => body.to_owned(),
        }
    }

    /// The content of an edit (`m.replace`) that makes `original` show this message: a
    /// fallback starting with `* ` for clients without edits, and the message as new content.
    pub fn replacing(&self, original: &ruma::EventId) -> Value {
        let mut content = self.content.clone();
        if let Some(object) = content.as_object_mut() {
            for field in ["body", "formatted_body"] {
                if let Some(Value::String(text)) = object.get_mut(field) {
                    *text = format!("* {text}");
                }
            }
            object.insert("m.new_content".into(), self.content.clone());
            object.insert(
                "m.relates_to".into(),
                serde_json::json!({ "rel_type": "m.replace", "event_id": original }),
            );
        }
        content
    }

    /// The size of the content as JSON, as it goes into an event; see [`MAX_CONTENT_BYTES`].
    pub fn content_bytes(&self) -> usize {
        self.content.to_string().len()
    }

    /// Whether this is a text message (which `!bc edit` can replace).
    pub fn is_text(&self) -> bool {
        self.event_type == "m.room.message"
            && matches!(self.content.get("msgtype").and_then(Value::as_str), Some("m.text" | "m.notice"))
    }

    fn uses(&self, placeholder: &str) -> bool {
        ["body", "formatted_body"].iter().any(|field| {
            self.content.get(*field).and_then(Value::as_str).is_some_and(|text| text.contains(placeholder))
        })
    }
}

/// The placeholders a message may use.
const PLACEHOLDERS: [&str; 3] = ["{displayname}", "{localpart}", "{user_id}"];

impl StoredMessage {
    /// Whether the message uses `{displayname}` (its recipients' names must be looked up).
    pub fn needs_displayname(&self) -> bool {
        self.uses("{displayname}")
    }

    /// `user`'s copy: the placeholders filled in, `displayname` falling back to the localpart
    /// when unset or blank.
    pub fn personalised(&self, user: &UserId, displayname: Option<&str>) -> StoredMessage {
        if !PLACEHOLDERS.iter().any(|placeholder| self.uses(placeholder)) {
            return self.clone();
        }
        let displayname =
            displayname.filter(|name| !name.trim().is_empty()).unwrap_or_else(|| user.localpart());
        let values =
            [("{displayname}", displayname), ("{localpart}", user.localpart()), ("{user_id}", user.as_str())];
        let mut message = self.clone();
        if let Some(object) = message.content.as_object_mut() {
            for (field, html) in [("body", false), ("formatted_body", true)] {
                if let Some(Value::String(text)) = object.get_mut(field) {
                    *text = fill(text, &values, html);
                }
            }
        }
        message
    }
}

/// [`cut_to_fit_in`] English.
pub fn cut_to_fit(text: &str, fits: impl Fn(&str) -> bool) -> String {
    cut_to_fit_in(Language::En, text, fits)
}

/// `text` when it `fits`, else as much of its start as fits and a line (in `language`) saying how
/// much was cut. The start is halved until it fits, so cutting costs about twice the text's length.
pub fn cut_to_fit_in(language: Language, text: &str, fits: impl Fn(&str) -> bool) -> String {
    if fits(text) {
        return text.to_owned();
    }
    let total = text.chars().count();
    let mut kept = total;
    loop {
        kept /= 2;
        let start: String = text.chars().take(kept).collect();
        // Counts as digits only, as ever (English output stays as it was).
        let said = crate::base::i18n::t!(
            language,
            "message-cut",
            kept = kept.to_string(),
            total = total.to_string()
        );
        let cut = format!("{start}\n\n{said}");
        if kept == 0 || fits(&cut) {
            return cut;
        }
    }
}

/// `text` with each placeholder replaced; values HTML-escaped when `html`.
fn fill(text: &str, values: &[(&str, &str)], html: bool) -> String {
    values.iter().fold(text.to_owned(), |text, (placeholder, value)| {
        let value = if html { escape_html(value) } else { (*value).to_owned() };
        text.replace(placeholder, &value)
    })
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_becomes_body_and_formatted_body() {
        let message = StoredMessage::markdown("Hello **{displayname}**");
        assert_eq!(message.event_type, "m.room.message");
        assert_eq!(message.content["body"], "Hello **{displayname}**");
        assert_eq!(message.content["formatted_body"], "Hello <strong>{displayname}</strong>");
    }

    #[test]
    fn placeholders_are_filled_and_escaped_in_html() {
        let values = [("{displayname}", "<Bob & Co>"), ("{localpart}", "bob")];
        assert_eq!(fill("Hi {displayname} ({localpart})", &values, false), "Hi <Bob & Co> (bob)");
        assert_eq!(fill("<b>{displayname}</b>", &values, true), "<b>&lt;Bob &amp; Co&gt;</b>");
    }

    #[test]
    fn personalised_copies_fill_every_placeholder_and_fall_back_to_the_localpart() {
        let message = StoredMessage::markdown("Hi **{displayname}** ({localpart}, {user_id})");
        let bob = ruma::user_id!("@bob:x.org");
        let named = message.personalised(bob, Some("Bob <B>"));
        assert_eq!(named.content["body"], "Hi **Bob <B>** (bob, @bob:x.org)");
        assert_eq!(named.content["formatted_body"], "Hi <strong>Bob &lt;B&gt;</strong> (bob, @bob:x.org)");
        assert_eq!(message.personalised(bob, Some("  ")).content["body"], "Hi **bob** (bob, @bob:x.org)");
        assert!(message.needs_displayname());
        assert!(!StoredMessage::markdown("plain").needs_displayname());
    }

    #[test]
    fn a_text_is_cut_to_fit_and_says_how_much_was_kept() {
        assert_eq!(cut_to_fit("short", |text| text.len() < 10), "short");
        let long = "é".repeat(100_000);
        let cut = cut_to_fit(&long, |text| text.len() <= 30_000);
        assert!(cut.len() <= 30_000 && cut.len() > 15_000, "{}", cut.len());
        assert!(cut.ends_with("(cut: the first 12500 of 100000 characters)"), "{}", &cut[cut.len() - 60..]);
        assert!(cut_to_fit(&long, |_| false).starts_with("\n\n… (cut: the first 0 of 100000"));
    }

    #[test]
    fn the_content_size_is_that_of_its_json() {
        let message = StoredMessage::markdown("a \"quote\"");
        assert_eq!(message.content_bytes(), message.content.to_string().len());
        assert!(message.content_bytes() > "a \"quote\"".len() + "m.text".len());
    }

    #[test]
    fn an_edit_replaces_the_original_with_the_new_content_and_a_fallback() {
        let message = StoredMessage::markdown("New **text**");
        let edit = message.replacing(ruma::event_id!("$original"));
        assert_eq!(edit["body"], "* New **text**");
        assert_eq!(edit["formatted_body"], "* New <strong>text</strong>");
        assert_eq!(edit["m.new_content"]["body"], "New **text**");
        assert!(edit["m.new_content"].get("m.relates_to").is_none());
        assert_eq!(
            edit["m.relates_to"],
            serde_json::json!({ "rel_type": "m.replace", "event_id": "$original" })
        );
        assert!(message.is_text());
    }

    #[test]
    fn copies_drop_relations_and_keep_media() {
        let event = serde_json::json!({
            "type": "m.room.message",
            "content": {
                "msgtype": "m.image", "body": "cat.png", "url": "mxc://example.org/abc",
                "m.relates_to": { "m.in_reply_to": { "event_id": "$x" } }
            }
        });
        let message = StoredMessage::copy_of(&event).unwrap();
        assert_eq!(message.content["url"], "mxc://example.org/abc");
        assert!(message.content.get("m.relates_to").is_none());
        assert_eq!(message.summary(), "an image (cat.png)");
    }
}
