//! The privacy audit that runs after every integration test (when its `TestEnv` is dropped):
//! the bot and its personas only ever write into rooms they made while those have at most two
//! members, and no such room holds the user ID of a recipient of another one. Read with the Synapse admin API, as a
//! server admin registered for the audit.

use std::collections::HashMap;

use regex::Regex;
use serde_json::Value;

use super::{client::encode, client::TestUser, synapse::Synapse};

/// One room the bot (or a persona) made: who is in it (joined or invited) and all its events.
#[derive(Clone)]
struct MadeRoom {
    room_id: String,
    members: Vec<String>,
    /// Its events, oldest first.
    timeline: Vec<Value>,
    events: String,
}

/// Panics, naming the room, when the bot or a persona sent a message into a room it made while
/// that room had more than two members (a DM that gained a third member must be retired, never
/// written to again), or when such a room holds the user ID of a recipient of another one.
pub async fn audit(synapse: &Synapse, bot_localpart: &str) {
    let auditor =
        TestUser::register(synapse, &format!("privacy_auditor_{}", super::random_secret()), true).await;
    let made_by_bot = |user: &str| {
        user.strip_prefix('@').and_then(|rest| rest.split(':').next()).is_some_and(|localpart| {
            localpart == bot_localpart || localpart.starts_with(&format!("{bot_localpart}_"))
        })
    };
    let mut rooms = Vec::new();
    let mut from = 0;
    loop {
        let path = format!("/_synapse/admin/v1/rooms?limit=500&from={from}");
        let page = auditor.call(reqwest::Method::GET, &path, None).await.1;
        for room in page["rooms"].as_array().cloned().unwrap_or_default() {
            if room["creator"].as_str().is_some_and(made_by_bot) {
                rooms.push(made_room(&auditor, room["room_id"].as_str().unwrap_or_default()).await);
            }
        }
        match page["next_batch"].as_u64() {
            Some(next) => from = next,
            None => break,
        }
    }
    for room in &rooms {
        never_written_with_a_third_member(room, &made_by_bot);
    }
    no_room_mentions_another_recipient(&rooms, &made_by_bot);
}

/// Every recipient, with the room they are in; then each room's text is searched once for user
/// IDs (linear in the rooms' size: the soak has 2,000 of them).
fn no_room_mentions_another_recipient(rooms: &[MadeRoom], made_by_bot: &impl Fn(&str) -> bool) {
    let mut recipient_of: HashMap<&str, &str> = HashMap::new();
    for room in rooms {
        for member in room.members.iter().filter(|member| !made_by_bot(member)) {
            recipient_of.insert(member, &room.room_id);
        }
    }
    let user_id = Regex::new(r"@[a-z0-9._=/+\-]+:[A-Za-z0-9.\-]+(:[0-9]+)?").expect("static regex");
    for room in rooms {
        for found in user_id.find_iter(&room.events).map(|found| found.as_str().trim_end_matches('.')) {
            let Some(other) = recipient_of.get(found) else { continue };
            assert!(
                room.members.iter().any(|member| member == found),
                "privacy: the DM {} of {:?} mentions {found}, a recipient of {other}",
                room.room_id,
                room.members
            );
        }
    }
}

/// Walks the room's timeline, keeping who is joined or invited, and checks every message the bot
/// or a persona sent.
fn never_written_with_a_third_member(room: &MadeRoom, made_by_bot: &impl Fn(&str) -> bool) {
    let mut members: Vec<String> = Vec::new();
    for event in &room.timeline {
        let sender = event["sender"].as_str().unwrap_or_default();
        if event["type"] == "m.room.member" {
            let user = event["state_key"].as_str().unwrap_or_default().to_owned();
            members.retain(|member| *member != user);
            if matches!(event["content"]["membership"].as_str(), Some("join" | "invite")) {
                members.push(user);
            }
        } else if event.get("state_key").is_none() && made_by_bot(sender) {
            assert!(
                members.len() <= 2,
                "privacy: {sender} wrote into {} while it had {} members: {members:?}",
                room.room_id,
                members.len()
            );
        }
    }
}

async fn made_room(auditor: &TestUser, room_id: &str) -> MadeRoom {
    let path = format!("/_synapse/admin/v1/rooms/{}/members", encode(room_id));
    let members = auditor.call(reqwest::Method::GET, &path, None).await.1;
    let members = members["members"].as_array().cloned().unwrap_or_default();
    let state_path = format!("/_synapse/admin/v1/rooms/{}/state", encode(room_id));
    let state = auditor.call(reqwest::Method::GET, &state_path, None).await.1;
    let invited = state["state"].as_array().cloned().unwrap_or_default().into_iter().filter_map(|event| {
        (event["type"] == "m.room.member" && event["content"]["membership"] == "invite")
            .then(|| event["state_key"].as_str().map(str::to_owned))
            .flatten()
    });
    let mut members: Vec<String> = members.iter().filter_map(Value::as_str).map(str::to_owned).collect();
    members.extend(invited);
    let path = format!("/_synapse/admin/v1/rooms/{}/messages?dir=f&limit=1000", encode(room_id));
    let events = auditor.call(reqwest::Method::GET, &path, None).await.1;
    let timeline = events["chunk"].as_array().cloned().unwrap_or_default();
    MadeRoom { room_id: room_id.to_owned(), members, timeline, events: events["chunk"].to_string() }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn member(user: &str, membership: &str) -> Value {
        json!({ "type": "m.room.member", "state_key": user, "sender": user, "content": { "membership": membership } })
    }

    fn room(timeline: Vec<Value>) -> MadeRoom {
        MadeRoom { room_id: "!dm".into(), members: vec![], events: String::new(), timeline }
    }

    fn is_bot(user: &str) -> bool {
        user == "@broadcast:t"
    }

    const MESSAGE: fn() -> Value =
        || json!({ "type": "m.room.message", "sender": "@broadcast:t", "content": { "body": "hi" } });

    #[test]
    fn writing_to_two_is_fine_and_a_third_member_who_left_again_is_gone() {
        let timeline = vec![
            member("@broadcast:t", "join"),
            member("@alice:t", "invite"),
            MESSAGE(),
            member("@eve:t", "join"),
            member("@eve:t", "leave"),
            MESSAGE(),
        ];
        never_written_with_a_third_member(&room(timeline), &is_bot);
    }

    #[test]
    #[should_panic(expected = "mentions @bob:t, a recipient of !b")]
    fn a_room_that_mentions_another_rooms_recipient_fails_the_audit() {
        let made = |id: &str, member: &str, text: &str| MadeRoom {
            room_id: id.into(),
            members: vec!["@broadcast:t".into(), member.into()],
            timeline: vec![],
            events: format!("[{{\"content\":{{\"body\":\"{text}\"}}}}]"),
        };
        let rooms = [made("!a", "@alice:t", "Hi @alice:t."), made("!b", "@bob:t", "Hi")];
        no_room_mentions_another_recipient(&rooms, &is_bot);
        no_room_mentions_another_recipient(
            &[made("!a", "@alice:t", "Hi @bob:t."), rooms[1].clone()],
            &is_bot,
        );
    }

    #[test]
    #[should_panic(expected = "while it had 3 members")]
    fn writing_with_a_third_member_fails_the_audit() {
        let timeline = vec![
            member("@broadcast:t", "join"),
            member("@alice:t", "join"),
            member("@eve:t", "invite"),
            MESSAGE(),
        ];
        never_written_with_a_third_member(&room(timeline), &is_bot);
    }
}
