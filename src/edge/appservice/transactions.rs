//! `PUT /_matrix/app/v1/transactions/{txnId}`: events pushed by the homeserver.
//!
//! Reads the body up to `appservice.max_body_bytes` (413 beyond), refuses non-JSON (400
//! `M_NOT_JSON`), acknowledges a recently seen transaction ID without touching it again, skips a
//! malformed event alone, and persists the rest into the inbox before answering 200, so that a
//! crash after the answer loses nothing. The inbox's unique event IDs make a re-pushed event a
//! no-op even after a restart.

use std::{
    collections::{HashSet, VecDeque},
    sync::{Arc, Mutex},
};

use axum::{
    body::Body,
    extract::{Path, State},
    http::StatusCode,
    Json,
};
use ruma::{OwnedEventId, OwnedRoomId, OwnedUserId, UserId};
use serde_json::{json, Value};

use super::{ApiError, Intake};
use crate::base::{
    registration::is_own_user,
    store::{Arrival, Lane, RECEIPT_EVENT_TYPE, RECEIPT_KEY_PREFIX},
};

/// How many transaction IDs are remembered. The homeserver retries a transaction until it is
/// acknowledged, so only recent IDs can come again (and Synapse's counter may restart).
const REMEMBERED_TRANSACTIONS: usize = 4096;

/// The most recently acknowledged transaction IDs, oldest forgotten first.
#[derive(Debug, Default)]
pub struct RecentTransactions {
    inner: Mutex<(HashSet<String>, VecDeque<String>)>,
}

impl RecentTransactions {
    fn contains(&self, txn_id: &str) -> bool {
        self.inner.lock().map(|inner| inner.0.contains(txn_id)).unwrap_or(false)
    }

    fn remember(&self, txn_id: String) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let (set, order) = &mut *inner;
        if set.insert(txn_id.clone()) {
            order.push_back(txn_id);
            if order.len() > REMEMBERED_TRANSACTIONS {
                if let Some(oldest) = order.pop_front() {
                    set.remove(&oldest);
                }
            }
        }
    }
}

/// An event worth keeping, as its ID and sender: it has an ID, a type, a room and a sender.
/// Anything else is skipped.
fn checked_event(event: &Value) -> Option<(OwnedEventId, OwnedUserId)> {
    let event_id = event.get("event_id")?.as_str()?;
    event.get("type")?.as_str()?;
    event.get("room_id")?.as_str()?;
    let sender = OwnedUserId::try_from(event.get("sender")?.as_str()?).ok()?;
    Some((OwnedEventId::try_from(event_id).ok()?, sender))
}

#[tracing::instrument(skip_all, fields(txn_id = %txn_id))]
pub async fn push(
    State(intake): State<Arc<Intake>>,
    Path(txn_id): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let bytes = axum::body::to_bytes(body, intake.max_body_bytes).await.map_err(|_| {
        tracing::warn!(limit = intake.max_body_bytes, "transaction body too large");
        metrics::counter!("matrix_broadcast_transactions_total", "result" => "too_large").increment(1);
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "M_TOO_LARGE", "Transaction body too large")
    })?;
    let body: Value = serde_json::from_slice(&bytes).map_err(|error| {
        tracing::warn!(%error, "transaction body is not JSON");
        metrics::counter!("matrix_broadcast_transactions_total", "result" => "not_json").increment(1);
        ApiError::new(StatusCode::BAD_REQUEST, "M_NOT_JSON", "Body is not JSON")
    })?;
    if intake.recent_transactions.contains(&txn_id) {
        tracing::debug!("transaction already processed; acknowledged again");
        metrics::counter!("matrix_broadcast_transactions_total", "result" => "duplicate").increment(1);
        return Ok(Json(json!({})));
    }
    let pushed = pushed_of(&intake.bot, &body);

    for malformed in &pushed.malformed {
        let Malformed { event_type, sender } = malformed;
        tracing::warn!(?event_type, ?sender, "malformed event skipped");
        metrics::counter!("matrix_broadcast_events_total", "result" => "malformed").increment(1);
    }
    metrics::counter!("matrix_broadcast_events_total", "result" => "own").increment(pushed.own);
    receive_device_updates(&intake, &body).await?;
    let (keep, events) = (pushed.rows, pushed.events);
    let new = intake.store.push_inbox(&keep).await.map_err(|error| {
        tracing::error!(%error, "cannot persist pushed events; the homeserver will retry");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "M_UNKNOWN", "Temporarily unable to store events")
    })?;
    metrics::counter!("matrix_broadcast_events_total", "result" => "queued").increment(new);
    metrics::counter!("matrix_broadcast_events_total", "result" => "duplicate")
        .increment(keep.len() as u64 - new);
    metrics::counter!("matrix_broadcast_transactions_total", "result" => "accepted").increment(1);
    intake.recent_transactions.remember(txn_id);
    intake.inbox_ready.notify_one();
    tracing::debug!(events, receipts = keep.len() - events, new, "transaction accepted");
    Ok(Json(json!({})))
}

/// Gives the crypto machine what the transaction brought for the bot's device, stored before
/// the answer (a room key must not be acknowledged and then lost).
async fn receive_device_updates(intake: &Intake, body: &Value) -> Result<(), ApiError> {
    let Some(crypto) = &intake.crypto else { return Ok(()) };
    let updates = crate::base::e2ee::DeviceUpdates::of(body, &intake.bot, &intake.device);
    crypto.receive(updates).await.map_err(|error| {
        tracing::error!(%error, "cannot store what the homeserver pushed for the bot's device; it will retry");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "M_UNKNOWN", "Temporarily unable to store device updates")
    })
}

/// What a transaction body holds for the inbox, read without touching anything: a pure function
/// of the body, so that it can be fuzzed (`fuzz/`).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pushed {
    /// The inbox rows: first the events worth keeping, then the read receipts.
    pub rows: Vec<Arrival>,
    /// How many of `rows` are events (the rest are read receipts).
    pub events: usize,
    /// How many events were the bot's own (every message it sends comes back): not stored.
    pub own: u64,
    /// Each malformed event, which is skipped.
    pub malformed: Vec<Malformed>,
}

/// What the log shows of a malformed event: its type and sender, when they are strings (cut to
/// [`Malformed::SHOWN`] characters); never its content, which may be anyone's message.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Malformed {
    pub event_type: Option<String>,
    pub sender: Option<String>,
}

impl Malformed {
    const SHOWN: usize = 100;

    fn of(event: &Value) -> Malformed {
        let shown = |key: &str| {
            event.get(key).and_then(Value::as_str).map(|text| text.chars().take(Self::SHOWN).collect())
        };
        Malformed { event_type: shown("type"), sender: shown("sender") }
    }
}

/// Reads a transaction body as the homeserver pushed it. An error when the body is not JSON
/// (serde_json also refuses nesting deeper than 128 levels); otherwise each event is kept or
/// skipped on its own, and anything that is not a transaction yields nothing.
pub fn parse_transaction(bot: &UserId, bytes: &[u8]) -> Result<Pushed, serde_json::Error> {
    Ok(pushed_of(bot, &serde_json::from_slice(bytes)?))
}

/// What a transaction body, read as JSON, holds for the inbox (see [`parse_transaction`]).
fn pushed_of(bot: &UserId, body: &Value) -> Pushed {
    let events = body.get("events").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let mut pushed = Pushed { rows: Vec::with_capacity(events.len()), ..Pushed::default() };
    for event in events {
        match checked_event(event) {
            Some((_, sender)) if is_own_user(bot, &sender) => pushed.own += 1,
            Some((event_id, _)) => pushed.rows.push(Arrival {
                key: event_id.to_string(),
                json: event.to_string(),
                lane: lane_of(bot, event),
            }),
            None => pushed.malformed.push(Malformed::of(event)),
        }
    }
    pushed.events = pushed.rows.len();
    let others = readers(body).into_iter().filter(|reader| !is_own_user(bot, &reader.user));
    pushed.rows.extend(others.map(|reader| reader.inbox_row()));
    pushed
}

/// The inbox lane of a pushed event: the memberships of others than the bot and its personas
/// (a new DM's join, a join that brings a welcome) come by the thousand in a broadcast and wait
/// behind the rest; the bot's own invites and removals are what an admin waits for.
pub fn lane_of(bot: &UserId, event: &Value) -> Lane {
    let member = event["state_key"].as_str().and_then(|key| UserId::parse(key).ok());
    match (event["type"].as_str(), member) {
        (Some("m.room.member"), Some(member)) if !is_own_user(bot, &member) => Lane::Bulk,
        _ => Lane::People,
    }
}

/// One reader of one event, from a read receipt (an ephemeral event, `receive_ephemeral` in the
/// registration). Receipts are persisted into the inbox before the answer, like everything else
/// the homeserver pushes, and handled by the dispatcher.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reader {
    room: OwnedRoomId,
    user: OwnedUserId,
    event: String,
}

impl Reader {
    /// The inbox row: a key unique per (room, reader, event read) and the stored receipt.
    fn inbox_row(self) -> Arrival {
        let key = format!("{RECEIPT_KEY_PREFIX}{}|{}|{}", self.room, self.user, self.event);
        let json = json!({ "type": RECEIPT_EVENT_TYPE, "room_id": self.room, "sender": self.user });
        Arrival { key, json: json.to_string(), lane: Lane::Bulk }
    }
}

/// Every `m.read` receipt in a transaction's ephemeral events.
fn readers(body: &Value) -> Vec<Reader> {
    let mut readers = Vec::new();
    for key in ["ephemeral", "de.sorunome.msc2409.ephemeral"] {
        for event in body.get(key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
            let Some(room) = event["room_id"].as_str().and_then(|room| ruma::RoomId::parse(room).ok()) else {
                continue;
            };
            if event["type"] != "m.receipt" {
                continue;
            }
            for (read, receipt) in event["content"].as_object().into_iter().flatten() {
                for user in receipt["m.read"].as_object().map(|readers| readers.keys()).into_iter().flatten()
                {
                    if let Ok(user) = ruma::UserId::parse(user.as_str()) {
                        readers.push(Reader { room: room.clone(), user, event: read.clone() });
                    }
                }
            }
        }
    }
    readers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_receipts_are_found_in_both_ephemeral_keys() {
        let body = json!({
            "ephemeral": [{ "type": "m.receipt", "room_id": "!dm:x.org",
                            "content": { "$e": { "m.read": { "@a:x.org": { "ts": 1 } } } } }],
            "de.sorunome.msc2409.ephemeral": [
                { "type": "m.typing", "room_id": "!dm:x.org", "content": {} },
                { "type": "m.receipt", "room_id": "!dm2:x.org",
                  "content": { "$f": { "m.read": { "@b:x.org": {} }, "m.read.private": { "@c:x.org": {} } } } }
            ]
        });
        let found: Vec<String> = readers(&body)
            .into_iter()
            .map(|reader| format!("{} {} {}", reader.room, reader.user, reader.event))
            .collect();
        assert_eq!(found, ["!dm:x.org @a:x.org $e", "!dm2:x.org @b:x.org $f"]);
        let Arrival { key, json, lane } = readers(&body).remove(0).inbox_row();
        assert_eq!(key, "receipt|!dm:x.org|@a:x.org|$e");
        assert_eq!(lane, Lane::Bulk, "nobody waits for a read receipt");
        let stored: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            stored,
            json!({ "type": RECEIPT_EVENT_TYPE, "room_id": "!dm:x.org", "sender": "@a:x.org" })
        );
    }

    fn bot() -> OwnedUserId {
        "@broadcast:x.org".try_into().unwrap()
    }

    /// Issue 25, item 4: the joins of recipients wait behind what people wait for.
    #[test]
    fn memberships_of_others_go_into_the_bulk_lane() {
        let member = |state_key: &str| json!({ "type": "m.room.member", "state_key": state_key });
        assert_eq!(lane_of(&bot(), &member("@alice:x.org")), Lane::Bulk, "a recipient's join");
        assert_eq!(lane_of(&bot(), &member("@alice:elsewhere.org")), Lane::Bulk);
        assert_eq!(lane_of(&bot(), &member("@broadcast:x.org")), Lane::People, "the bot's invite");
        assert_eq!(lane_of(&bot(), &member("@broadcast_hr:x.org")), Lane::People, "a persona's");
        let message = json!({ "type": "m.room.message", "content": { "body": "!bc help" } });
        assert_eq!(lane_of(&bot(), &message), Lane::People);
        assert_eq!(lane_of(&bot(), &json!({ "type": "m.room.member" })), Lane::People, "no state key");
    }

    #[test]
    fn hostile_bodies_are_not_json_and_nothing_panics() {
        let nested = "[".repeat(100_000);
        let error = parse_transaction(&bot(), nested.as_bytes()).unwrap_err();
        assert!(error.to_string().contains("recursion limit"), "{error}");
        let deep_event = format!(r#"{{"events": [{}{}]}}"#, "{\"a\":".repeat(200), "}".repeat(200));
        assert!(parse_transaction(&bot(), deep_event.as_bytes()).is_err(), "nesting inside an event");
        let invalid_utf8 = b"{\"events\": [{\"event_id\": \"$\xff\xfe\"}]}";
        assert!(parse_transaction(&bot(), invalid_utf8).is_err(), "invalid UTF-8");
        assert!(parse_transaction(&bot(), b"").is_err(), "empty");
    }

    #[test]
    fn anything_that_is_not_a_transaction_yields_nothing() {
        for body in [r#"[]"#, "null", "12", r#""events""#, r#"{"events": {"a": 1}}"#, r#"{"ephemeral": 3}"#] {
            assert_eq!(parse_transaction(&bot(), body.as_bytes()).unwrap(), Pushed::default(), "{body}");
        }
    }

    #[test]
    fn wrong_typed_fields_skip_the_event_and_unknown_types_are_kept() {
        let body = json!({ "events": [
            { "event_id": "$1", "type": "m.room.message", "room_id": 7, "sender": "@u:x.org" },
            { "event_id": "$2", "type": "m.room.message", "room_id": "!r:x.org" },
            { "event_id": "$3", "type": ["m.room.message"], "room_id": "!r:x.org", "sender": "@u:x.org" },
            { "event_id": "$4", "type": "m.room.message", "room_id": "!r:x.org", "sender": "not a user" },
            { "event_id": "$5", "type": "m.room.message", "room_id": "!r:x.org", "sender": "@u:x.org",
              "content": { "body": 12 } },
            { "event_id": "$6", "type": "org.example.unknown", "room_id": "!r:x.org", "sender": "@u:x.org" },
            { "event_id": "$7", "type": "m.room.message", "room_id": "!r:x.org", "sender": "@broadcast:x.org" },
        ]});
        let pushed = parse_transaction(&bot(), body.to_string().as_bytes()).unwrap();
        let kept: Vec<&str> = pushed.rows.iter().map(|row| row.key.as_str()).collect();
        assert_eq!(kept, ["$5", "$6"], "a number as body and an unknown type are the dispatcher's to ignore");
        assert_eq!((pushed.events, pushed.own, pushed.malformed.len()), (2, 1, 4));
    }

    /// Issue 22, item 15: the log shows a malformed event's type and sender, never its content.
    #[test]
    fn a_malformed_event_is_shown_by_its_type_and_sender_only() {
        let body = json!({ "events": [
            { "type": "m.room.message", "sender": "@eve:x.org", "content": { "body": "my secret" } },
            { "type": "t".repeat(10_000), "padding": "é".repeat(10_000) },
        ]});
        let pushed = parse_transaction(&bot(), body.to_string().as_bytes()).unwrap();
        let shown =
            Malformed { event_type: Some("m.room.message".into()), sender: Some("@eve:x.org".into()) };
        assert_eq!(pushed.malformed[0], shown, "no content");
        assert_eq!(pushed.malformed[1].event_type.as_ref().map(|shown| shown.chars().count()), Some(100));
        assert_eq!(pushed.malformed[1].sender, None);
    }

    #[test]
    fn recent_transactions_forget_the_oldest() {
        let recent = RecentTransactions::default();
        for n in 0..=REMEMBERED_TRANSACTIONS {
            recent.remember(n.to_string());
        }
        assert!(!recent.contains("0"));
        assert!(recent.contains("1"));
        assert!(recent.contains(&REMEMBERED_TRANSACTIONS.to_string()));
    }

    #[test]
    fn events_without_id_type_room_or_sender_are_malformed() {
        let good = json!({"event_id": "$a", "type": "m.room.message", "room_id": "!r", "sender": "@u:x"});
        assert!(checked_event(&good).is_some());
        for missing in ["event_id", "type", "room_id", "sender"] {
            let mut event = good.clone();
            event.as_object_mut().unwrap().remove(missing);
            assert!(checked_event(&event).is_none(), "{missing}");
        }
        assert!(checked_event(&json!("just a string")).is_none());
    }
}
