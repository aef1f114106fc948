//! A body pushed to `PUT /_matrix/app/v1/transactions/{txnId}`: the appservice's pure reading of
//! it (`parse_transaction`), then each row it would store read back as the dispatcher reads it
//! (JSON, then ruma's timeline event). Nothing may panic, and every row is JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use matrix_broadcast::edge::appservice::transactions::parse_transaction;
use ruma::{events::AnyTimelineEvent, user_id};

fuzz_target!(|data: &[u8]| {
    let Ok(pushed) = parse_transaction(user_id!("@broadcast:example.org"), data) else { return };
    assert!(pushed.events <= pushed.rows.len());
    for (_, json) in &pushed.rows {
        let raw: serde_json::Value = serde_json::from_str(json).expect("a stored row is JSON");
        let _ = serde_json::from_value::<AnyTimelineEvent>(raw);
    }
});
