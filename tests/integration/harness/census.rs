//! Looking at what recipients got: the DM rooms the bot made, and the copies in them.

use std::collections::HashMap;

use super::{
    client::{encode, DmRoom},
    TestUser,
};

/// The DM rooms the bot made for `user`.
pub fn dms_of<'a>(census: &'a [DmRoom], user: &TestUser) -> Vec<&'a DmRoom> {
    census.iter().filter(|room| room.others.contains(&user.user_id)).collect()
}

pub fn bodies(room: &DmRoom) -> Vec<String> {
    room.messages.iter().map(|content| content["body"].as_str().unwrap_or_default().to_owned()).collect()
}

/// The rooms of `census` but those nobody besides the bot was ever in and the bot sent nothing
/// to: a `createRoom` cut short by Synapse's death (its answer lost, the room without its invite,
/// and not among the bot's joined rooms to adopt) leaves such a room, which no one can see.
/// Each is printed with its state.
pub async fn without_orphans(root: &TestUser, census: Vec<DmRoom>) -> Vec<DmRoom> {
    let mut rooms = Vec::with_capacity(census.len());
    for room in census {
        if !(room.others.is_empty() && room.messages.is_empty() && room.encrypted.is_empty()) {
            rooms.push(room);
            continue;
        }
        let path = format!("/_synapse/admin/v1/rooms/{}/state", encode(&room.room_id));
        let (_, state) = root.call(reqwest::Method::GET, &path, None).await;
        let state: Vec<String> = state["state"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|event| {
                format!("{} {} {}", event["type"], event["state_key"], event["content"]["membership"])
            })
            .collect();
        eprintln!("an orphan room of the bot, ignored: {} with state {state:?}", room.room_id);
    }
    rooms
}

/// Every recipient has exactly one DM room, with only them and the bot, holding exactly one
/// copy of `body`.
pub async fn assert_exactly_one_copy_each(
    root: &TestUser,
    bot: &str,
    control_room: &str,
    users: &[TestUser],
    body: &str,
) {
    let users: Vec<&str> = users.iter().map(|user| user.user_id.as_str()).collect();
    one_dm_each(root, bot, control_room, &users, |user, room| {
        let copies = room.messages.iter().filter(|content| content["body"] == body).count();
        assert_eq!(copies, 1, "{user} has exactly one copy");
    })
    .await;
}

/// Every one of `users` has exactly one DM room with the bot, with only them and the bot in
/// it, which passes `check`; and the bot made no other room (but `control_room`, and orphans a
/// `createRoom` cut short by Synapse's stop leaves, seen once in the outage test on
/// PostgreSQL). Returns each user's DM, in the order of `users`.
pub async fn one_dm_each(
    root: &TestUser,
    bot: &str,
    control_room: &str,
    users: &[&str],
    check: impl Fn(&str, &DmRoom),
) -> Vec<String> {
    let census = without_orphans(root, root.dm_census(bot, &[control_room]).await).await;
    let mut by_user: HashMap<&str, Vec<_>> = HashMap::new();
    for room in &census {
        assert_eq!(room.others.len(), 1, "a DM has exactly one member besides the bot: {room:?}");
        by_user.entry(room.others[0].as_str()).or_default().push(room);
    }
    let mut dms = Vec::with_capacity(users.len());
    for user in users {
        let rooms = by_user.get(user).cloned().unwrap_or_default();
        assert_eq!(rooms.len(), 1, "{user} has exactly one DM room with the bot: {rooms:?}");
        check(user, rooms[0]);
        dms.push(rooms[0].room_id.clone());
    }
    assert_eq!(census.len(), users.len(), "no stray rooms");
    dms
}
