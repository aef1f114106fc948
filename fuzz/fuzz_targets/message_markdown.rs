//! A broadcast's text: Markdown rendered to `body` + `formatted_body`, the placeholders filled
//! per recipient (HTML-escaped in the formatted body), an edit of it, its summary, and its size
//! check. The input is `displayname NUL text`. Nothing may panic, and a display name never
//! adds markup to the formatted body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use matrix_broadcast::base::message::StoredMessage;
use ruma::{event_id, user_id};

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else { return };
    let (displayname, text) = input.split_once('\0').unwrap_or(("", input));
    let message = StoredMessage::markdown(text);
    let _ = message.summary();
    let _ = message.replacing(event_id!("$original"));
    let _ = message.content_bytes();
    let user = user_id!("@alice:example.org");
    let template = message.content["formatted_body"].as_str().unwrap_or("").matches('<').count();
    for name in [Some(displayname), None] {
        let copy = message.personalised(user, name);
        let html = copy.content["formatted_body"].as_str().unwrap_or("");
        assert_eq!(html.matches('<').count(), template, "a display name added markup: {html:?}");
    }
});
