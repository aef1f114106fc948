//! What a broadcast sends: the stored message (event type + content) and its personalisation.
//!
//! A message is stored once, with `{displayname}`, `{localpart}` and `{user_id}` still in its
//! `body` and `formatted_body`; each recipient's copy fills them in (HTML-escaped in the
//! formatted body). Content copied from a replied-to message is sent as it was — an image keeps
//! its `mxc://` URL — without the relations of the original.

use ruma::{events::room::message::RoomMessageEventContent, UserId};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{matrix::MatrixError, store::Broadcast, App};

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

    /// A short text to show for this message in previews and lists.
    pub fn summary(&self) -> String {
        let body = self.content.get("body").and_then(Value::as_str).unwrap_or("");
        let msgtype = self.content.get("msgtype").and_then(Value::as_str).unwrap_or("");
        match msgtype {
            "m.image" => format!("an image ({body})"),
            "m.file" => format!("a file ({body})"),
            "m.video" => format!("a video ({body})"),
            "m.audio" => format!("an audio message ({body})"),
            _ if self.event_type.ends_with("poll.start") => "a poll".into(),
            _ => body.to_owned(),
        }
    }

    fn uses(&self, placeholder: &str) -> bool {
        ["body", "formatted_body"].iter().any(|field| {
            self.content.get(*field).and_then(Value::as_str).is_some_and(|text| text.contains(placeholder))
        })
    }
}

/// The event type and content for `user`'s copy of `broadcast`.
pub async fn personalise(
    app: &App,
    broadcast: &Broadcast,
    user: &UserId,
) -> Result<(String, Value), MatrixError> {
    let mut message: StoredMessage =
        serde_json::from_str(&broadcast.content_json).map_err(|error| MatrixError::Permanent {
            errcode: None,
            status: None,
            message: format!("stored message unreadable: {error}"),
        })?;
    if !["{displayname}", "{localpart}", "{user_id}"].iter().any(|placeholder| message.uses(placeholder)) {
        return Ok((message.event_type, message.content));
    }
    let displayname = if message.uses("{displayname}") {
        app.homeserver.displayname(user).await?.filter(|name| !name.trim().is_empty())
    } else {
        None
    };
    let displayname = displayname.unwrap_or_else(|| user.localpart().to_owned());
    let values = [
        ("{displayname}", displayname.as_str()),
        ("{localpart}", user.localpart()),
        ("{user_id}", user.as_str()),
    ];
    if let Some(object) = message.content.as_object_mut() {
        for (field, html) in [("body", false), ("formatted_body", true)] {
            if let Some(Value::String(text)) = object.get_mut(field) {
                *text = fill(text, &values, html);
            }
        }
    }
    Ok((message.event_type, message.content))
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
