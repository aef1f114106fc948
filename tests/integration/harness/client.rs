//! A Matrix user driven through plain client-server API calls, the way Element would.

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha1::Sha1;

use super::{wait_for, Synapse};

/// The password of every test user.
pub const PASSWORD: &str = "password-of-a-test-user";

/// A registered user with an access token.
#[derive(Clone)]
pub struct TestUser {
    pub user_id: String,
    pub token: String,
    base: String,
    http: reqwest::Client,
}

/// Percent-encodes one path segment.
pub fn encode(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes()).collect::<String>().replace('+', "%20")
}

impl TestUser {
    /// Registers `localpart` through Synapse's shared-secret admin API.
    pub async fn register(synapse: &Synapse, localpart: &str, server_admin: bool) -> TestUser {
        let http = reqwest::Client::new();
        let url = format!("{}/_synapse/admin/v1/register", synapse.url);
        let nonce: Value = http.get(&url).send().await.expect("nonce").json().await.expect("nonce json");
        let nonce = nonce["nonce"].as_str().expect("nonce field").to_owned();
        let password = PASSWORD;
        let admin = if server_admin { "admin" } else { "notadmin" };
        let mut mac =
            Hmac::<Sha1>::new_from_slice(synapse.registration_secret().as_bytes()).expect("hmac key");
        mac.update(format!("{nonce}\0{localpart}\0{password}\0{admin}").as_bytes());
        let mac = hex::encode(mac.finalize().into_bytes());
        let body = json!({"nonce": nonce, "username": localpart, "password": password, "admin": server_admin, "mac": mac});
        let response = http.post(&url).json(&body).send().await.expect("register");
        assert!(
            response.status().is_success(),
            "register {localpart}: {}",
            response.text().await.unwrap_or_default()
        );
        let registered: Value = response.json().await.expect("register json");
        TestUser {
            user_id: registered["user_id"].as_str().expect("user_id").to_owned(),
            token: registered["access_token"].as_str().expect("access_token").to_owned(),
            base: synapse.url.clone(),
            http,
        }
    }

    /// A client acting with an existing access token, e.g. an appservice's `as_token` (then it
    /// acts as the appservice's sender; `examples/throughput.rs` uses [`super::synapse::BRIDGE_TOKEN`]).
    #[allow(dead_code)]
    pub fn with_token(synapse: &Synapse, user_id: &str, token: &str) -> TestUser {
        TestUser {
            user_id: user_id.to_owned(),
            token: token.to_owned(),
            base: synapse.url.clone(),
            http: reqwest::Client::new(),
        }
    }

    /// A request to the client-server API as this user; `path` starts after `/_matrix/client/v3`.
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = if path.starts_with("/_") {
            format!("{}{path}", self.base)
        } else {
            format!("{}/_matrix/client/v3{path}", self.base)
        };
        let mut request = self.http.request(method, url).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request to synapse");
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    async fn ok(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let (status, response) = self.call(method.clone(), path, body).await;
        assert!((200..300).contains(&status), "{method} {path} as {}: {status} {response}", self.user_id);
        response
    }

    pub async fn create_room(&self, body: Value) -> String {
        let response = self.ok(reqwest::Method::POST, "/createRoom", Some(body)).await;
        response["room_id"].as_str().expect("room_id").to_owned()
    }

    pub async fn invite(&self, room: &str, user: &str) {
        self.ok(
            reqwest::Method::POST,
            &format!("/rooms/{}/invite", encode(room)),
            Some(json!({ "user_id": user })),
        )
        .await;
    }

    pub async fn join(&self, room: &str) {
        self.ok(reqwest::Method::POST, &format!("/join/{}", encode(room)), Some(json!({}))).await;
    }

    /// Sends a text message and returns its event ID.
    pub async fn send_text(&self, room: &str, body: &str) -> String {
        let txn = super::random_secret();
        let path = format!("/rooms/{}/send/m.room.message/{txn}", encode(room));
        let response =
            self.ok(reqwest::Method::PUT, &path, Some(json!({"msgtype": "m.text", "body": body}))).await;
        response["event_id"].as_str().expect("event_id").to_owned()
    }

    /// `user`'s membership in `room` (join, invite, leave, …), if any.
    pub async fn membership(&self, room: &str, user: &str) -> Option<String> {
        let path = format!("/rooms/{}/state/m.room.member/{}", encode(room), encode(user));
        let (status, content) = self.call(reqwest::Method::GET, &path, None).await;
        (status == 200).then(|| content["membership"].as_str().unwrap_or_default().to_owned())
    }

    /// Waits until `user`'s membership in `room` is `membership`.
    pub async fn wait_for_membership(&self, room: &str, user: &str, membership: &str) {
        wait_for(&format!("{user} to be {membership} in {room}"), || async {
            (self.membership(room, user).await.as_deref() == Some(membership)).then_some(())
        })
        .await
    }

    /// The latest events of `room`, oldest first.
    pub async fn events(&self, room: &str) -> Vec<Value> {
        let path = format!("/rooms/{}/messages?dir=b&limit=200", encode(room));
        let response = self.ok(reqwest::Method::GET, &path, None).await;
        let mut events = response["chunk"].as_array().cloned().unwrap_or_default();
        events.reverse();
        events
    }

    /// One event of `room` as this user's client reads it (edits and redactions applied in
    /// `unsigned`, as Synapse bundles them).
    pub async fn event(&self, room: &str, event: &str) -> Value {
        self.ok(reqwest::Method::GET, &format!("/rooms/{}/event/{}", encode(room), encode(event)), None).await
    }

    /// Waits for a message from `sender` in `room` whose body contains `text`.
    pub async fn wait_for_message(&self, room: &str, sender: &str, text: &str) -> Value {
        wait_for(&format!("a message from {sender} containing {text:?}"), || async {
            self.events(room).await.into_iter().find(|event| {
                event["type"] == "m.room.message"
                    && event["sender"] == sender
                    && event["content"]["body"].as_str().is_some_and(|body| body.contains(text))
            })
        })
        .await
    }

    /// Waits for the bot's `m.notice` reply to `command` (an event that may exist only in a
    /// pushed transaction: then the bot's reaction is refused by Synapse, but its reply is not).
    pub async fn wait_for_reply(&self, room: &str, bot: &str, command: &str) -> Value {
        wait_for(&format!("the reply to {command}"), || async {
            answers_to(&self.events(room).await, bot, command).into_iter().next()
        })
        .await
    }

    /// Waits for the bot's answer to `command`: its reaction key and its `m.notice` reply.
    pub async fn wait_for_answer(&self, room: &str, bot: &str, command: &str) -> Answer {
        wait_for(&format!("the answer to {command}"), || async {
            let events = self.events(room).await;
            let reply = answers_to(&events, bot, command).into_iter().next()?;
            let reaction = events.iter().find(|event| {
                event["type"] == "m.reaction"
                    && event["sender"] == bot
                    && event["content"]["m.relates_to"]["event_id"] == command
            })?;
            Some(Answer {
                reaction: reaction["content"]["m.relates_to"]["key"].as_str().unwrap_or_default().to_owned(),
                msgtype: reply["content"]["msgtype"].as_str().unwrap_or_default().to_owned(),
                body: reply["content"]["body"].as_str().unwrap_or_default().to_owned(),
                formatted_body: reply["content"]["formatted_body"].as_str().unwrap_or_default().to_owned(),
            })
        })
        .await
    }
}

/// The bot's replies to `command` among `events`.
pub fn answers_to(events: &[Value], bot: &str, command: &str) -> Vec<Value> {
    events
        .iter()
        .filter(|event| {
            event["type"] == "m.room.message"
                && event["sender"] == bot
                && event["content"]["m.relates_to"]["m.in_reply_to"]["event_id"] == command
        })
        .cloned()
        .collect()
}

/// How the bot answered a command.
#[derive(Debug)]
pub struct Answer {
    /// ✅ or ❌.
    pub reaction: String,
    pub msgtype: String,
    pub body: String,
    pub formatted_body: String,
}

/// One DM room the bot made, as the server admin sees it.
#[derive(Debug, Clone)]
pub struct DmRoom {
    pub room_id: String,
    /// Members other than the bot, joined or invited.
    pub others: Vec<String>,
    /// Whether the recipient's membership event is flagged `is_direct`.
    pub is_direct: bool,
    /// The bot's messages in it, oldest first (their contents).
    pub messages: Vec<Value>,
    /// The bot's `m.room.encrypted` events in it, oldest first (their contents: ciphertext).
    pub encrypted: Vec<Value>,
}

impl TestUser {
    /// Every room the bot created that is not `except`, with its members and the bot's messages,
    /// read through the Synapse admin API (this user must be a server admin).
    pub async fn dm_census(&self, bot: &str, except: &[&str]) -> Vec<DmRoom> {
        let mut rooms = Vec::new();
        let mut from = 0;
        loop {
            let page = self
                .ok(reqwest::Method::GET, &format!("/_synapse/admin/v1/rooms?limit=500&from={from}"), None)
                .await;
            for room in page["rooms"].as_array().cloned().unwrap_or_default() {
                let room_id = room["room_id"].as_str().unwrap_or_default().to_owned();
                if room["creator"] != bot || except.contains(&room_id.as_str()) {
                    continue;
                }
                rooms.push(self.dm_room(bot, room_id).await);
            }
            match page["next_batch"].as_u64() {
                Some(next) => from = next,
                None => return rooms,
            }
        }
    }

    async fn dm_room(&self, bot: &str, room_id: String) -> DmRoom {
        let state = self
            .ok(reqwest::Method::GET, &format!("/_synapse/admin/v1/rooms/{}/state", encode(&room_id)), None)
            .await;
        let mut others = Vec::new();
        let mut is_direct = false;
        for event in state["state"].as_array().cloned().unwrap_or_default() {
            let membership = event["content"]["membership"].as_str().unwrap_or_default();
            if event["type"] == "m.room.member"
                && event["state_key"] != bot
                && ["join", "invite"].contains(&membership)
            {
                others.push(event["state_key"].as_str().unwrap_or_default().to_owned());
                is_direct |= event["content"]["is_direct"] == true;
            }
        }
        let path = format!("/_synapse/admin/v1/rooms/{}/messages?dir=f&limit=1000", encode(&room_id));
        let chunk = self.ok(reqwest::Method::GET, &path, None).await;
        let events = chunk["chunk"].as_array().cloned().unwrap_or_default();
        let of_type = |event_type: &str| -> Vec<Value> {
            events
                .iter()
                .filter(|event| event["sender"] == bot && event["type"] == event_type)
                .map(|event| event["content"].clone())
                .collect()
        };
        let (messages, encrypted) = (of_type("m.room.message"), of_type("m.room.encrypted"));
        DmRoom { room_id, others, is_direct, messages, encrypted }
    }

    /// The room an alias points to.
    pub async fn resolve_alias(&self, alias: &str) -> String {
        let response =
            self.ok(reqwest::Method::GET, &format!("/directory/room/{}", encode(alias)), None).await;
        response["room_id"].as_str().expect("room_id").to_owned()
    }

    /// Sets this user's display name.
    pub async fn set_displayname(&self, name: &str) {
        let path = format!("/profile/{}/displayname", encode(&self.user_id));
        self.ok(reqwest::Method::PUT, &path, Some(json!({ "displayname": name }))).await;
    }

    /// Leaves (or rejects the invite to) a room.
    pub async fn leave(&self, room: &str) {
        self.ok(reqwest::Method::POST, &format!("/rooms/{}/leave", encode(room)), Some(json!({}))).await;
    }

    /// Sends any message content and returns its event ID.
    pub async fn send_content(&self, room: &str, content: Value) -> String {
        self.send_event(room, "m.room.message", content).await
    }

    /// Sends an event of any message-like type and returns its event ID.
    pub async fn send_event(&self, room: &str, event_type: &str, content: Value) -> String {
        let txn = super::random_secret();
        let path = format!("/rooms/{}/send/{event_type}/{txn}", encode(room));
        self.ok(reqwest::Method::PUT, &path, Some(content)).await["event_id"]
            .as_str()
            .expect("event_id")
            .to_owned()
    }

    /// Reacts to an event.
    pub async fn react(&self, room: &str, event: &str, key: &str) {
        let txn = super::random_secret();
        let path = format!("/rooms/{}/send/m.reaction/{txn}", encode(room));
        let content =
            json!({ "m.relates_to": { "rel_type": "m.annotation", "event_id": event, "key": key } });
        self.ok(reqwest::Method::PUT, &path, Some(content)).await;
    }

    /// The bot's message in `room` that edits an earlier one (a progress message) into a text
    /// containing `text` (e.g. "beendet" with `language: de`), once there is one.
    pub async fn wait_for_progress_saying(&self, room: &str, bot: &str, text: &str) -> String {
        wait_for(&format!("the progress message saying {text:?}"), || async {
            self.events(room).await.into_iter().find_map(|event| {
                let body = event["content"]["m.new_content"]["body"].as_str()?;
                (event["sender"] == bot && body.contains(text)).then(|| body.to_owned())
            })
        })
        .await
    }

    /// Waits until the bot's progress message for a broadcast says it finished, and returns it.
    pub async fn wait_for_finished(&self, room: &str, bot: &str) -> String {
        self.wait_for_finished_count(room, bot, 1, super::DEADLINE).await.pop().expect("one summary")
    }

    /// Waits until `count` broadcasts finished in `room` (or panics after `deadline`), and
    /// returns their summaries, oldest first.
    pub async fn wait_for_finished_count(
        &self,
        room: &str,
        bot: &str,
        count: usize,
        deadline: Duration,
    ) -> Vec<String> {
        let until = tokio::time::Instant::now() + deadline;
        loop {
            let summaries: Vec<String> = self
                .events(room)
                .await
                .into_iter()
                .filter(|event| event["sender"] == bot)
                .filter_map(|event| event["content"]["m.new_content"]["body"].as_str().map(str::to_owned))
                .filter(|body| body.contains(" finished"))
                .collect();
            if summaries.len() >= count {
                return summaries;
            }
            assert!(
                tokio::time::Instant::now() < until,
                "timed out after {deadline:?} waiting for {count} broadcasts to finish"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A poll as Element Web's composer sends it.
pub fn element_poll() -> Value {
    json!({
        "org.matrix.msc3381.poll.start": {
            "question": { "org.matrix.msc1767.text": "Lunch?", "body": "Lunch?", "msgtype": "m.text" },
            "kind": "org.matrix.msc3381.poll.disclosed",
            "max_selections": 1,
            "answers": [
                { "id": "pizza", "org.matrix.msc1767.text": "Pizza" },
                { "id": "salad", "org.matrix.msc1767.text": "Salad" },
            ],
        },
        "org.matrix.msc1767.text": "Lunch?\n1. Pizza\n2. Salad",
    })
}
