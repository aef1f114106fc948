//! A Matrix user on a real end-to-end-encrypted client (matrix-sdk, in-memory stores), as
//! Element would be: its own device keys, a sync loop that receives room keys and joins every
//! invite, megolm sessions shared with every device of a room's members (verified or not), and
//! messages decrypted from any device (no cross-signing required). For the bot's E2EE tests.
//!
//! It must not stand in for the server-side view: what Synapse stores is read from its
//! database ([`synapse_holds_text`]), never through this client.

use std::time::Duration;

use matrix_sdk::{
    config::SyncSettings,
    deserialized_responses::TimelineEvent,
    room::MessagesOptions,
    ruma::{
        api::client::room::{
            create_room::v3::{Request as CreateRoomRequest, RoomPreset},
            Visibility,
        },
        events::{
            room::{encryption::RoomEncryptionEventContent, message::RoomMessageEventContent},
            InitialStateEvent,
        },
        OwnedDeviceId, OwnedRoomId, OwnedUserId, UInt,
    },
    Client, Room, RoomMemberships, RoomState,
};
use matrix_sdk_crypto::{CollectStrategy, DecryptionSettings, TrustRequirement};
use serde_json::{json, Value};
use sqlx::Connection;
use tokio::task::JoinHandle;

use super::{client::PASSWORD, wait_for, Synapse, TestUser, DEADLINE};

/// One device of a user, logged in with matrix-sdk; its sync loop (if any: see
/// [`E2eeUser::login_quiet`]) stops when it is dropped.
pub struct E2eeUser {
    pub user_id: String,
    pub client: Client,
    sync: Option<JoinHandle<()>>,
}

impl E2eeUser {
    /// Logs `user` in as a new device of its own (fresh in-memory crypto store), uploads its
    /// keys, and starts syncing.
    pub async fn login(synapse: &Synapse, user: &TestUser) -> E2eeUser {
        Self::login_at(&synapse.url, &user.user_id).await
    }

    /// Another device of the same user (a second password login), behaving the same.
    pub async fn second_device(&self) -> E2eeUser {
        Self::login_at(self.client.homeserver().as_str(), &self.user_id).await
    }

    /// Logs `user` in as a new device and uploads its keys (one sync), like [`Self::login`],
    /// but runs no sync loop: hundreds of them fit on a small machine. It learns what happened
    /// since only when told to ([`Self::catch_up`]).
    pub async fn login_quiet(synapse: &Synapse, user: &TestUser) -> E2eeUser {
        let client = Self::logged_in(&synapse.url, &user.user_id).await;
        E2eeUser { user_id: user.user_id.clone(), client, sync: None }
    }

    async fn login_at(homeserver: &str, user_id: &str) -> E2eeUser {
        let client = Self::logged_in(homeserver, user_id).await;
        let sync = tokio::spawn(sync_forever(client.clone()));
        E2eeUser { user_id: user_id.to_owned(), client, sync: Some(sync) }
    }

    /// A new device of `user_id`, its keys uploaded by a first sync.
    async fn logged_in(homeserver: &str, user_id: &str) -> Client {
        let client = Client::builder()
            .homeserver_url(homeserver)
            // As Element does by default (matrix-sdk's defaults too): room keys go to every device
            // of every member, and messages from unverified devices are decrypted.
            .with_room_key_recipient_strategy(CollectStrategy::AllDevices)
            .with_decryption_settings(DecryptionSettings {
                sender_device_trust_requirement: TrustRequirement::Untrusted,
            })
            // Room keys travel only the way the bot must send them: no MSC4268 history bundles.
            .with_enable_share_history_on_invite(false)
            .build()
            .await
            .expect("build a matrix-sdk client");
        client
            .matrix_auth()
            .login_username(user_id, PASSWORD)
            .initial_device_display_name("e2ee test client")
            .await
            .unwrap_or_else(|error| panic!("{user_id} logs in: {error}"));
        client.encryption().wait_for_e2ee_initialization_tasks().await;
        // The first sync uploads the device's keys: others can encrypt for it from now on.
        client.sync_once(SyncSettings::default()).await.expect("first sync");
        client
    }

    /// For a client without a sync loop ([`Self::login_quiet`]): syncs (room keys, invites),
    /// joins every invite, and syncs again until nothing is left to join.
    pub async fn catch_up(&self) {
        for _ in 0..5 {
            self.client.sync_once(SyncSettings::default()).await.expect("sync");
            let invited = self.client.invited_rooms();
            if invited.is_empty() {
                return;
            }
            for room in invited {
                room.join()
                    .await
                    .unwrap_or_else(|error| panic!("{} joins {}: {error}", self.user_id, room.room_id()));
            }
        }
    }

    /// This device's ID.
    pub fn device_id(&self) -> String {
        self.client.device_id().expect("logged in").to_string()
    }

    /// Creates a private room (preset private_chat) encrypted with megolm from its first
    /// event, inviting `invite`; returns its ID.
    pub async fn create_encrypted_room(&self, invite: &[&str]) -> String {
        let encryption = RoomEncryptionEventContent::with_recommended_defaults();
        let mut request = CreateRoomRequest::new();
        request.preset = Some(RoomPreset::PrivateChat);
        request.visibility = Visibility::Private;
        request.invite = invite.iter().map(|user| user_id(user)).collect();
        request.initial_state = vec![InitialStateEvent::with_empty_state_key(encryption).to_raw_any()];
        let room = self.client.create_room(request).await.expect("create an encrypted room");
        room.room_id().to_string()
    }

    /// Sends an encrypted `m.text` message; returns its event ID.
    pub async fn send_text(&self, room: &str, body: &str) -> String {
        let room = self.encrypted_room(room).await;
        let response = room.send(RoomMessageEventContent::text_plain(body)).await;
        response
            .unwrap_or_else(|error| panic!("{} sends to {}: {error}", self.user_id, room.room_id()))
            .response
            .event_id
            .to_string()
    }

    /// Sends an encrypted `m.room.message` with any content (a thread reply, a reply, …);
    /// returns its event ID.
    pub async fn send_content(&self, room: &str, content: Value) -> String {
        self.send_event(room, "m.room.message", content).await
    }

    /// Sends an encrypted message-like event of any type (a poll, a poll answer, …); returns its
    /// event ID.
    pub async fn send_event(&self, room: &str, event_type: &str, content: Value) -> String {
        let room = self.encrypted_room(room).await;
        let response = room.send_raw(event_type, content).await;
        response
            .unwrap_or_else(|error| panic!("{} sends to {}: {error}", self.user_id, room.room_id()))
            .response
            .event_id
            .to_string()
    }

    /// `room` once this client's sync knows it as joined and encrypted (never sends in clear).
    async fn encrypted_room(&self, room: &str) -> Room {
        let room_id = room_id(room);
        wait_for(&format!("{} to know {room} as joined and encrypted", self.user_id), || async {
            let room = self.client.get_room(&room_id)?;
            (room.state() == RoomState::Joined && room.encryption_state().is_encrypted()).then_some(room)
        })
        .await
    }

    /// Waits until this client has joined `room` (its sync loop accepts invites by itself).
    pub async fn wait_joined(&self, room: &str) {
        let room_id = room_id(room);
        wait_for(&format!("{} to join {room}", self.user_id), || async {
            let room = self.client.get_room(&room_id)?;
            (room.state() == RoomState::Joined).then_some(())
        })
        .await
    }

    /// Waits until this client knows `device` of `user` (has its keys), so that what it sends
    /// next is encrypted for that device too.
    pub async fn wait_for_device(&self, user: &str, device: &str) {
        let (user_id, device_id) = (user_id(user), OwnedDeviceId::from(device));
        wait_for(&format!("{} to know device {device} of {user}", self.user_id), || async {
            let known = self.client.encryption().get_device(&user_id, &device_id).await;
            known.ok().flatten().map(|_| ())
        })
        .await
    }

    /// Whether `device` of `user` is signed by its owner's cross-signing identity, as this
    /// client sees it (what Element shows as "verified by its owner").
    pub async fn sees_cross_signed_by_owner(&self, user: &str, device: &str) -> bool {
        self.wait_for_device(user, device).await;
        let (user_id, device_id) = (user_id(user), OwnedDeviceId::from(device));
        let device = self.client.encryption().get_device(&user_id, &device_id).await;
        device.ok().flatten().is_some_and(|device| device.is_cross_signed_by_owner())
    }

    /// The latest 200 message events of `room` (no state events), oldest first, fetched anew and
    /// decrypted where this device has the keys, as JSON `{event_id, sender, type, content,
    /// encrypted}`; one it cannot decrypt keeps type `m.room.encrypted`.
    pub async fn decrypted_events(&self, room: &str) -> Vec<Value> {
        let room_id = room_id(room);
        let room = wait_for(&format!("{} to know {room}", self.user_id), || async {
            self.client.get_room(&room_id)
        })
        .await;
        let mut options = MessagesOptions::backward();
        options.limit = UInt::from(200u32);
        let messages = room.messages(options).await.expect("/messages");
        let mut events: Vec<Value> = messages.chunk.iter().filter_map(event_json).collect();
        events.reverse();
        events
    }

    /// Waits until a decrypted `m.room.message` from `sender` whose body contains `text` is in
    /// `room` (retrying decryption each time: keys may arrive late); returns it. Panics at the
    /// deadline with what it saw, and how many events it could not decrypt.
    pub async fn wait_for_decrypted(&self, room: &str, sender: &str, text: &str) -> Value {
        let until = tokio::time::Instant::now() + DEADLINE;
        loop {
            let events = self.decrypted_events(room).await;
            let found = events.iter().find(|event| {
                event["encrypted"] == true
                    && event["type"] == "m.room.message"
                    && event["sender"] == sender
                    && event["content"]["body"].as_str().is_some_and(|body| body.contains(text))
            });
            if let Some(event) = found {
                return event.clone();
            }
            if tokio::time::Instant::now() >= until {
                let undecryptable = events.iter().filter(|event| event["type"] == "m.room.encrypted");
                panic!(
                    "{} (device {}) saw no encrypted message from {sender} containing {text:?} in {room} \
                     within {DEADLINE:?}; {} of its {} events could not be decrypted:\n{}",
                    self.user_id,
                    self.device_id(),
                    undecryptable.count(),
                    events.len(),
                    summary(&events),
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The rooms this user has joined whose only other member (joined or invited) is `bot`.
    pub async fn dms_with(&self, bot: &str) -> Vec<String> {
        let mut dms = Vec::new();
        for room in self.client.joined_rooms() {
            let Ok(members) = room.members(RoomMemberships::ACTIVE).await else { continue };
            let others: Vec<String> = members
                .iter()
                .map(|member| member.user_id().to_string())
                .filter(|member| *member != self.user_id)
                .collect();
            if others == [bot] {
                dms.push(room.room_id().to_string());
            }
        }
        dms
    }

    /// Waits until this user has joined a DM with `bot` (see [`Self::dms_with`]); returns one.
    pub async fn dm_with(&self, bot: &str) -> String {
        wait_for(&format!("{} to be in a DM with {bot}", self.user_id), || async {
            self.dms_with(bot).await.into_iter().next()
        })
        .await
    }
}

impl Drop for E2eeUser {
    fn drop(&mut self) {
        if let Some(sync) = &self.sync {
            sync.abort();
        }
    }
}

/// Syncs until aborted (to-device room keys, device lists, invites), joining every invite
/// after each sync; a failed join is retried after the next one.
async fn sync_forever(client: Client) {
    let settings = SyncSettings::default().timeout(Duration::from_secs(1));
    loop {
        if let Err(error) = client.sync_once(settings.clone()).await {
            tracing::warn!(%error, "e2ee test client: sync failed");
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        for room in client.invited_rooms() {
            if let Err(error) = room.join().await {
                tracing::warn!(%error, room_id = %room.room_id(), "e2ee test client: join failed");
            }
        }
    }
}

/// A timeline event as JSON (see [`E2eeUser::decrypted_events`]); `None` for a state event.
fn event_json(event: &TimelineEvent) -> Option<Value> {
    let raw: Value = event.raw().deserialize_as().ok()?;
    if raw.get("state_key").is_some() {
        return None;
    }
    let encrypted = event.encryption_info().is_some() || raw["type"] == "m.room.encrypted";
    Some(json!({
        "event_id": raw["event_id"],
        "sender": raw["sender"],
        "type": raw["type"],
        "content": raw["content"],
        "encrypted": encrypted,
    }))
}

/// One line per event: ID, sender, type and body (`-` for an event it could not decrypt).
fn summary(events: &[Value]) -> String {
    let line = |event: &Value| {
        let field = |name: &str| event[name].as_str().unwrap_or("?").to_owned();
        let body = event["content"]["body"].as_str().unwrap_or("-");
        format!("{} {} {} {body:?}", field("event_id"), field("sender"), field("type"))
    };
    events.iter().map(line).collect::<Vec<_>>().join("\n")
}

fn user_id(user: &str) -> OwnedUserId {
    user.try_into().unwrap_or_else(|error| panic!("{user:?} is not a user ID: {error}"))
}

fn room_id(room: &str) -> OwnedRoomId {
    room.try_into().unwrap_or_else(|error| panic!("{room:?} is not a room ID: {error}"))
}

/// Whether any event Synapse stored (table `event_json` of its SQLite database) contains
/// `text` verbatim: an encrypted message's body must never be there.
pub async fn synapse_holds_text(synapse: &Synapse, text: &str) -> bool {
    synapse_holds_text_outside(synapse, text, &[]).await
}

/// Whether any event Synapse stored in a room other than `except` (e.g. a plain control room
/// where the command quoted the message) contains `text` verbatim.
pub async fn synapse_holds_text_outside(synapse: &Synapse, text: &str, except: &[&str]) -> bool {
    let path = synapse.dir.path().join("homeserver.db");
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path).read_only(true);
    let mut connection =
        sqlx::SqliteConnection::connect_with(&options).await.expect("open Synapse's database");
    let rows: Vec<String> = sqlx::query_scalar("SELECT room_id FROM event_json WHERE instr(json, ?) > 0")
        .bind(text)
        .fetch_all(&mut connection)
        .await
        .expect("read Synapse's event_json");
    let _ = connection.close().await;
    rows.iter().any(|room| !except.contains(&room.as_str()))
}
