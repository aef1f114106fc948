//! What the stub homeserver remembers: rooms with their members, aliases, the bot's device, the
//! transaction IDs it has seen, and what the bot wrote into watched rooms (the control room).
//!
//! People are not stored: every `@person<digits>` of the domain exists, with the display name
//! "Person <digits>". Memory grows with the rooms (a DM is a few hundred bytes) and with the
//! messages sent (one transaction ID each).

use std::{
    collections::{HashMap, HashSet},
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use serde_json::{json, Value};

/// A member's state in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Membership {
    Join,
    Invite,
    Leave,
}

impl Membership {
    fn as_str(self) -> &'static str {
        match self {
            Membership::Join => "join",
            Membership::Invite => "invite",
            Membership::Leave => "leave",
        }
    }
}

/// One room.
#[derive(Debug, Default)]
pub struct Room {
    pub creator: String,
    pub members: Vec<(String, Membership)>,
    pub is_space: bool,
    /// Extra keys of the create event (the bot's DM nonce).
    pub creation_content: Option<Value>,
    /// Rooms below a space, for `/hierarchy`.
    pub children: Vec<String>,
    /// What is sent here is kept in [`World::watched`] (the control room).
    pub watched: bool,
}

impl Room {
    pub fn membership(&self, user: &str) -> Option<Membership> {
        self.members.iter().find(|(member, _)| member == user).map(|(_, membership)| *membership)
    }

    pub fn set_membership(&mut self, user: &str, membership: Membership) {
        match self.members.iter_mut().find(|(member, _)| member == user) {
            Some(entry) => entry.1 = membership,
            None => self.members.push((user.to_owned(), membership)),
        }
    }

    pub fn joined(&self) -> impl Iterator<Item = &str> {
        self.members.iter().filter(|(_, membership)| *membership == Membership::Join).map(|(m, _)| m.as_str())
    }

    /// The content of a state event, `None` when the room has none.
    pub fn state(&self, event_type: &str, state_key: &str) -> Option<Value> {
        match (event_type, state_key) {
            ("m.room.create", "") => Some(self.create_content()),
            ("m.room.join_rules", "") => Some(json!({ "join_rule": "invite" })),
            ("m.room.history_visibility", "") => Some(json!({ "history_visibility": "shared" })),
            ("m.room.power_levels", "") => Some(json!({ "users": { self.creator.clone(): 100 } })),
            ("m.room.member", user) => {
                self.membership(user).map(|membership| json!({ "membership": membership.as_str() }))
            }
            _ => None,
        }
    }

    fn create_content(&self) -> Value {
        let mut content = json!({ "room_version": "11", "creator": self.creator });
        if self.is_space {
            content["type"] = json!("m.space");
        }
        if let Some(Value::Object(extra)) = &self.creation_content {
            for (key, value) in extra {
                content[key] = value.clone();
            }
        }
        content
    }
}

/// Who did what where, for an event pushed to the bot.
pub struct Event<'a> {
    pub event_type: &'a str,
    pub room: &'a str,
    pub sender: &'a str,
    pub state_key: Option<&'a str>,
}

/// Something the bot sent into a watched room.
#[derive(Debug, Clone)]
pub struct Posted {
    pub at: Instant,
    /// The text a person sees: the new text of an edit, else the body.
    pub text: String,
}

/// When the bot sent into rooms that are not watched (its DMs), and how often.
#[derive(Debug, Default, Clone, Copy)]
pub struct DmSends {
    pub count: u64,
    pub first: Option<Instant>,
    pub last: Option<Instant>,
}

/// The whole state of the stub.
#[derive(Debug, Default)]
pub struct World {
    pub rooms: HashMap<String, Room>,
    pub aliases: HashMap<String, String>,
    pub registered: HashSet<String>,
    pub devices: HashSet<String>,
    /// `device \n txn` → event ID: the same transaction from the same device is one event.
    pub transactions: HashMap<String, String>,
    pub watched: Vec<Posted>,
    pub dm_sends: DmSends,
    /// The size of the largest `m.direct` the bot wrote, and how often it wrote one.
    pub largest_direct: usize,
    pub direct_writes: u64,
    /// How many accounts `/_synapse/admin/v2/users` lists (`@person000000…`).
    pub server_accounts: usize,
    /// Events for the bot, pushed in transactions of up to 100 as Synapse does: everything that
    /// happens in the bot's rooms, its own messages included.
    pub outbox: Vec<Value>,
    /// The most events that waited in the outbox at once.
    pub largest_outbox: usize,
    next_id: u64,
}

impl World {
    /// A fresh opaque ID with `sigil` (`!` rooms, `$` events).
    pub fn fresh_id(&mut self, sigil: char, domain: &str) -> String {
        self.next_id += 1;
        match sigil {
            '$' => format!("$stub{:010}", self.next_id),
            _ => format!("{sigil}r{:010}:{domain}", self.next_id),
        }
    }

    /// Queues an event for the bot; returns its ID.
    pub fn push(&mut self, event: Event, content: Value, domain: &str) -> String {
        let event_id = self.fresh_id('$', domain);
        let ts = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_millis() as u64);
        let mut json = json!({
            "type": event.event_type, "room_id": event.room, "sender": event.sender, "event_id": event_id,
            "origin_server_ts": ts, "content": content,
        });
        if let Some(state_key) = event.state_key {
            json["state_key"] = json!(state_key);
        }
        self.outbox.push(json);
        self.largest_outbox = self.largest_outbox.max(self.outbox.len());
        event_id
    }

    /// Queues a membership event for the bot.
    pub fn push_member(&mut self, room: &str, sender: &str, member: &str, content: Value, domain: &str) {
        let event = Event { event_type: "m.room.member", room, sender, state_key: Some(member) };
        self.push(event, content, domain);
    }

    /// Records a message sent as `event` from `device`; returns its event ID (the earlier one
    /// for a repeated transaction).
    pub fn send(&mut self, event: Event, device: &str, txn: &str, content: &Value, domain: &str) -> String {
        let key = format!("{device}\n{txn}");
        if let Some(event_id) = self.transactions.get(&key) {
            return event_id.clone();
        }
        let room_id = event.room;
        let event_id = self.push(event, content.clone(), domain);
        self.transactions.insert(key, event_id.clone());
        let now = Instant::now();
        if self.rooms.get(room_id).is_some_and(|room| room.watched) {
            let text = content["m.new_content"]["body"].as_str().or(content["body"].as_str());
            self.watched.push(Posted { at: now, text: text.unwrap_or_default().to_owned() });
        } else {
            let sends = &mut self.dm_sends;
            sends.count += 1;
            sends.first.get_or_insert(now);
            sends.last = Some(now);
        }
        event_id
    }

    /// Adds a room with `members` all joined.
    pub fn add_room(&mut self, id: &str, creator: &str, members: impl IntoIterator<Item = String>) {
        let members = members.into_iter().map(|member| (member, Membership::Join)).collect();
        self.rooms.insert(id.to_owned(), Room { creator: creator.to_owned(), members, ..Room::default() });
    }
}

/// The display name of a user the stub knows, `None` for an unknown one.
pub fn displayname(user_id: &str, domain: &str) -> Option<String> {
    let localpart = user_id.strip_prefix('@')?.strip_suffix(domain)?.strip_suffix(':')?;
    if let Some(number) = localpart.strip_prefix("person") {
        return number.chars().all(|c| c.is_ascii_digit()).then(|| format!("Person {number}"));
    }
    match localpart {
        "admin" => Some("Admin".into()),
        "broadcast" => Some("Broadcast".into()),
        _ => None,
    }
}

/// The ID of the `n`th person.
pub fn person(n: usize, domain: &str) -> String {
    format!("@person{n:06}:{domain}")
}
