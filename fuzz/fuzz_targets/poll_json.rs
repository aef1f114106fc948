//! Arbitrary JSON as a broadcast's content (a poll start in either form, a copied message) and
//! as an answer to a poll: reading the poll, counting answers, the tally text and the end
//! event. The input is `event type NUL JSON`. Nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use matrix_broadcast::{base::{message::StoredMessage, poll}};
use ruma::event_id;
use serde_json::{json, Value};

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else { return };
    let (event_type, json) = input.split_once('\0').unwrap_or(("org.matrix.msc3381.poll.start", input));
    let Ok(content) = serde_json::from_str::<Value>(json) else { return };
    for event_type in [event_type, "org.matrix.msc3381.poll.start", "m.poll.start"] {
        let message = StoredMessage { event_type: event_type.to_owned(), content: content.clone() };
        let _ = message.summary();
        let _ = message.is_text();
        let _ = StoredMessage::copy_of(&json!({ "type": event_type, "content": content }));
        if let Some(poll) = poll::Poll::of(&message) {
            let answers: Vec<Vec<String>> = poll.answers.iter().map(|(id, _)| vec![id.clone()]).collect();
            let tally = poll.tally(&answers);
            assert!(tally.answered as usize <= answers.len());
            let _ = poll.tally_text(&tally, answers.len() as i64);
            let _ = poll.end_event(event_id!("$start"), &tally);
        }
    }
    for response_type in poll::RESPONSE_TYPES.into_iter().chain([event_type]) {
        let _ = poll::response(response_type, &content);
    }
});
