//! The privacy audit that runs after every integration test (when its `TestEnv` is dropped):
//! every room the bot or one of its personas made is a DM of at most two members, and no such
//! room holds the user ID of a recipient of another one. Read with the Synapse admin API, as a
//! server admin registered for the audit.

use serde_json::Value;

use super::{client::encode, client::TestUser, synapse::Synapse};

/// One room the bot (or a persona) made: who is in it (joined or invited) and all its events.
struct MadeRoom {
    room_id: String,
    members: Vec<String>,
    events: String,
}

/// Panics, naming the room, when a DM has more than two members or holds the user ID of a
/// recipient of another DM.
pub async fn audit(synapse: &Synapse, bot_localpart: &str) {
    let auditor =
        TestUser::register(synapse, &format!("privacy_auditor_{}", super::random_secret()), true).await;
    let made_by_bot = |creator: &str| {
        creator.strip_prefix('@').and_then(|rest| rest.split(':').next()).is_some_and(|localpart| {
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
    let recipients = |room: &MadeRoom| -> Vec<String> {
        room.members.iter().filter(|member| !made_by_bot(member)).cloned().collect()
    };
    for room in &rooms {
        assert!(
            room.members.len() <= 2,
            "privacy: the DM {} has more than two members: {:?}",
            room.room_id,
            room.members
        );
        let own = recipients(room);
        for other in rooms.iter().filter(|other| other.room_id != room.room_id) {
            for stranger in recipients(other).iter().filter(|user| !own.contains(user)) {
                assert!(
                    !room.events.contains(stranger.as_str()),
                    "privacy: the DM {} of {own:?} mentions {stranger}, a recipient of {}",
                    room.room_id,
                    other.room_id
                );
            }
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
    MadeRoom { room_id: room_id.to_owned(), members, events: events["chunk"].to_string() }
}
