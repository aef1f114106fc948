//! An in-memory [`Homeserver`] for unit tests: rooms with members, power levels, create events
//! and space children; aliases; profiles; the Synapse admin user list (with appservice and
//! deactivated accounts); every event the bot (or a persona) sent; the users registered and
//! the devices logged in; a count of requests per endpoint; and failures injected per call.
//! A handle [acting as](Account::acting_as) a persona shares the state of the fake.
//!
//! It answers the way Synapse does where the bot's logic depends on it: `M_FORBIDDEN` for rooms
//! the bot is not in and for admin calls without server-admin rights, one event per transaction
//! ID, an unknown user's profile as 404.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use ruma::{
    api::client::{
        keys::{claim_keys, get_keys, upload_keys, upload_signatures, upload_signing_keys},
        to_device::send_event_to_device,
    },
    encryption::{CrossSigningKey, DeviceKeys, OneTimeKey},
    events::{
        room::member::MembershipState, AnyMessageLikeEventContent, AnyToDeviceEvent, MessageLikeEventType,
        StateEventType,
    },
    serde::Raw,
    to_device::DeviceIdOrAllDevices,
    DeviceId, EventId, OneTimeKeyAlgorithm, OwnedDeviceId, OwnedEventId, OwnedMxcUri, OwnedOneTimeKeyId,
    OwnedRoomAliasId, OwnedRoomId, OwnedUserId, RoomAliasId, RoomId, RoomOrAliasId, TransactionId, UInt,
    UserId,
};
use serde_json::{json, Value};

use super::{
    Account, AdminApi, AdminUser, CryptoRequest, CryptoResponse, CryptoTransport, DirectChats, Homeserver,
    MatrixError, RoomApi, RoomCreation, RoomFacts, DM_NONCE_KEY,
};

/// One room as the fake keeps it.
#[derive(Debug, Clone, Default)]
pub struct FakeRoom {
    pub creator: Option<OwnedUserId>,
    /// The `m.room.create` content.
    pub create: Value,
    pub members: BTreeMap<OwnedUserId, MembershipState>,
    /// The `m.room.power_levels` content, if any.
    pub power_levels: Option<Value>,
    pub public: bool,
    pub encrypted: bool,
    /// Rooms below this one in its space hierarchy.
    pub children: Vec<OwnedRoomId>,
}

impl FakeRoom {
    fn joined(&self, user: &UserId) -> bool {
        self.members.get(user) == Some(&MembershipState::Join)
    }
}

/// An event the bot (or a persona) sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    pub sender: OwnedUserId,
    pub room: OwnedRoomId,
    pub event_type: String,
    pub content: Value,
    pub event_id: OwnedEventId,
}

/// Everything the fake holds; tests read and change it through [`FakeHomeserver::with`].
#[derive(Debug, Default)]
pub struct FakeState {
    pub rooms: BTreeMap<OwnedRoomId, FakeRoom>,
    pub aliases: HashMap<OwnedRoomAliasId, OwnedRoomId>,
    /// After its first look-up, an alias points to this room instead (a remote server that
    /// answers one room, then another).
    pub alias_moves: HashMap<OwnedRoomAliasId, OwnedRoomId>,
    /// Users that exist, with their display names.
    pub profiles: HashMap<OwnedUserId, Option<String>>,
    /// The admin API's accounts, as the single-user answer shows them (with `appservice_id`).
    pub accounts: Vec<AdminUser>,
    pub server_admin: bool,
    /// While true, every request fails as if the homeserver could not be reached.
    pub down: bool,
    /// Endpoints that answer only after this long (a remote server that is slow).
    pub slow: HashMap<&'static str, Duration>,
    pub sent: Vec<Sent>,
    /// Events that exist in rooms, readable with `room_event`.
    pub events: HashMap<OwnedEventId, Value>,
    pub redacted: Vec<OwnedEventId>,
    /// Each user's `m.direct`.
    pub direct: HashMap<OwnedUserId, Value>,
    /// The users registered with `register_bot`, in order.
    pub registered: Vec<OwnedUserId>,
    /// The devices logged in with `ensure_device`, in order.
    pub devices: Vec<(OwnedUserId, OwnedDeviceId)>,
    /// Requests per endpoint (the trait method's name; [`CryptoRequest::name`] for crypto).
    pub requests: BTreeMap<&'static str, usize>,
    /// The key server of end-to-end encryption, shared by the bot, its personas and any
    /// test client speaking [`CryptoTransport::crypto`] through [`Account::acting_as`].
    pub keys: KeyServer,
    failures: HashMap<&'static str, VecDeque<MatrixError>>,
    transactions: HashMap<String, OwnedEventId>,
    next: u64,
}

impl FakeState {
    fn next_id(&mut self) -> u64 {
        self.next += 1;
        self.next
    }
}

/// A device, as the key server files its keys and messages.
pub type DeviceKey = (OwnedUserId, OwnedDeviceId);

/// What the fake's key server holds: uploaded device, one-time, fallback and cross-signing
/// keys, and the to-device messages not taken yet.
#[derive(Debug, Default)]
pub struct KeyServer {
    pub device_keys: BTreeMap<OwnedUserId, BTreeMap<OwnedDeviceId, Raw<DeviceKeys>>>,
    /// One-time keys not claimed yet, per device.
    pub one_time_keys: BTreeMap<DeviceKey, BTreeMap<OwnedOneTimeKeyId, Raw<OneTimeKey>>>,
    /// Each device's fallback keys (the latest per algorithm), handed out when its one-time
    /// keys run out, and not removed then (as on Synapse).
    pub fallback_keys: BTreeMap<DeviceKey, BTreeMap<OwnedOneTimeKeyId, Raw<OneTimeKey>>>,
    pub master_keys: BTreeMap<OwnedUserId, Raw<CrossSigningKey>>,
    pub self_signing_keys: BTreeMap<OwnedUserId, Raw<CrossSigningKey>>,
    pub user_signing_keys: BTreeMap<OwnedUserId, Raw<CrossSigningKey>>,
    /// Signatures uploaded, per signer: `(user, key ID or device ID)` of each signed key.
    pub signatures: Vec<(OwnedUserId, OwnedUserId, String)>,
    /// To-device messages per recipient device, oldest first, until taken.
    pub to_device: BTreeMap<DeviceKey, Vec<Raw<AnyToDeviceEvent>>>,
}

impl KeyServer {
    /// How many one-time keys `device` has left, per algorithm.
    fn counts(&self, device: &DeviceKey) -> BTreeMap<OneTimeKeyAlgorithm, UInt> {
        let mut counts: BTreeMap<OneTimeKeyAlgorithm, UInt> = BTreeMap::new();
        for key in self.one_time_keys.get(device).into_iter().flat_map(BTreeMap::keys) {
            *counts.entry(key.algorithm()).or_default() += UInt::from(1u32);
        }
        counts
    }

    fn upload(&mut self, device: DeviceKey, request: upload_keys::v3::Request) -> upload_keys::v3::Response {
        if let Some(keys) = request.device_keys {
            self.device_keys.entry(device.0.clone()).or_default().insert(device.1.clone(), keys);
        }
        self.one_time_keys.entry(device.clone()).or_default().extend(request.one_time_keys);
        if !request.fallback_keys.is_empty() {
            let fallback = self.fallback_keys.entry(device.clone()).or_default();
            for (id, key) in request.fallback_keys {
                fallback.retain(|old, _| old.algorithm() != id.algorithm());
                fallback.insert(id, key);
            }
        }
        upload_keys::v3::Response::new(self.counts(&device))
    }

    fn query(&self, asking: &UserId, request: get_keys::v3::Request) -> get_keys::v3::Response {
        let mut response = get_keys::v3::Response::new();
        for (user, devices) in request.device_keys {
            let known = self.device_keys.get(&user).cloned().unwrap_or_default();
            let wanted =
                known.into_iter().filter(|(device, _)| devices.is_empty() || devices.contains(device));
            response.device_keys.insert(user.clone(), wanted.collect());
            if let Some(key) = self.master_keys.get(&user) {
                response.master_keys.insert(user.clone(), key.clone());
            }
            if let Some(key) = self.self_signing_keys.get(&user) {
                response.self_signing_keys.insert(user.clone(), key.clone());
            }
            if let Some(key) = self.user_signing_keys.get(&user).filter(|_| user == asking) {
                response.user_signing_keys.insert(user.clone(), key.clone());
            }
        }
        response
    }

    fn claim(&mut self, request: claim_keys::v3::Request) -> claim_keys::v3::Response {
        let mut claimed: BTreeMap<OwnedUserId, claim_keys::v3::OneTimeKeys> = BTreeMap::new();
        for (user, devices) in request.one_time_keys {
            for (device, algorithm) in devices {
                let key = (user.clone(), device.clone());
                let one_time = self.one_time_keys.get_mut(&key).and_then(|keys| {
                    let id = keys.keys().find(|id| id.algorithm() == algorithm)?.clone();
                    keys.remove_entry(&id)
                });
                let fallback = || {
                    let keys = self.fallback_keys.get(&key)?;
                    keys.iter()
                        .find(|(id, _)| id.algorithm() == algorithm)
                        .map(|(id, key)| (id.clone(), key.clone()))
                };
                if let Some((id, key)) = one_time.or_else(fallback) {
                    claimed.entry(user.clone()).or_default().insert(device, BTreeMap::from([(id, key)]));
                }
            }
        }
        claim_keys::v3::Response::new(claimed)
    }

    fn signing_keys(&mut self, user: &UserId, request: upload_signing_keys::v3::Request) {
        let keys = [
            (request.master_key, &mut self.master_keys),
            (request.self_signing_key, &mut self.self_signing_keys),
            (request.user_signing_key, &mut self.user_signing_keys),
        ];
        for (key, stored) in keys {
            if let Some(key) = key {
                stored.insert(user.to_owned(), key);
            }
        }
    }

    /// Adds the uploaded signatures to the device and master keys they sign, as a key query
    /// then shows them.
    fn signatures(&mut self, signer: &UserId, request: upload_signatures::v3::Request) {
        for (user, keys) in request.signed_keys {
            for (id, signed) in keys.iter() {
                self.signatures.push((signer.to_owned(), user.clone(), id.to_owned()));
                let Ok(signed) = serde_json::from_str::<Value>(signed.get()) else { continue };
                let device = self.device_keys.get_mut(&user).and_then(|devices| {
                    devices.iter_mut().find(|(device, _)| device.as_str() == id).map(|(_, keys)| keys)
                });
                if let Some(keys) = device {
                    merge_signatures(keys, &signed);
                } else if let Some(master) = self.master_keys.get_mut(&user) {
                    if master.json().get().contains(&format!("\"ed25519:{id}\"")) {
                        merge_signatures(master, &signed);
                    }
                }
            }
        }
    }

    /// Queues `request`'s messages from `sender`; a message for all devices goes to each
    /// device with keys.
    fn send(&mut self, sender: &UserId, request: send_event_to_device::v3::Request) {
        for (user, messages) in request.messages {
            for (target, content) in messages {
                let devices = match target {
                    DeviceIdOrAllDevices::DeviceId(device) => vec![device],
                    DeviceIdOrAllDevices::AllDevices => self
                        .device_keys
                        .get(&user)
                        .map(|devices| devices.keys().cloned().collect())
                        .unwrap_or_default(),
                };
                let event =
                    json!({ "sender": sender, "type": request.event_type.to_string(), "content": content });
                let event: Raw<AnyToDeviceEvent> = Raw::new(&event).expect("a JSON object").cast_unchecked();
                for device in devices {
                    self.to_device.entry((user.clone(), device)).or_default().push(event.clone());
                }
            }
        }
    }
}

/// Adds the `signatures` of `signed` to those of `keys`.
fn merge_signatures<T>(keys: &mut Raw<T>, signed: &Value) {
    let Ok(mut merged) = serde_json::from_str::<Value>(keys.json().get()) else { return };
    for (signer, signatures) in signed["signatures"].as_object().into_iter().flatten() {
        for (id, signature) in signatures.as_object().into_iter().flatten() {
            merged["signatures"][signer][id] = signature.clone();
        }
    }
    if let Ok(raw) = Raw::new(&merged) {
        *keys = raw.cast_unchecked();
    }
}

/// The fake homeserver of `example.org`, acting as `@broadcast:example.org` from its device
/// `BROADCAST` (or as a persona).
pub struct FakeHomeserver {
    bot: OwnedUserId,
    device: OwnedDeviceId,
    state: Arc<Mutex<FakeState>>,
}

impl Default for FakeHomeserver {
    fn default() -> Self {
        let bot: OwnedUserId = "@broadcast:example.org".try_into().expect("bot id");
        let mut state = FakeState::default();
        state.profiles.insert(bot.clone(), Some("Broadcast".into()));
        Self { bot, device: "BROADCAST".into(), state: Arc::new(Mutex::new(state)) }
    }
}

impl FakeHomeserver {
    /// Reads or changes the fake's state.
    pub fn with<T>(&self, change: impl FnOnce(&mut FakeState) -> T) -> T {
        change(&mut self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// Makes a user exist (profile and admin account); returns their ID.
    pub fn user(&self, localpart: &str, displayname: Option<&str>) -> OwnedUserId {
        let user: OwnedUserId = format!("@{localpart}:example.org").try_into().expect("user id");
        self.with(|state| {
            state.profiles.insert(user.clone(), displayname.map(str::to_owned));
            let creation_ts = Some(state.next_id() as i64);
            state.accounts.push(account(&user, displayname, creation_ts));
        });
        user
    }

    /// Creates a room by `creator` with `members` joined (the bot too when `bot_joined`).
    pub fn room(&self, creator: &UserId, members: &[&UserId], bot_joined: bool) -> OwnedRoomId {
        self.with(|state| {
            let room: OwnedRoomId =
                format!("!room{}:example.org", state.next_id()).try_into().expect("room id");
            // Room version 12: the creator has unlimited power without being listed.
            let power_levels = Some(json!({ "users": {}, "users_default": 0 }));
            let mut fake = FakeRoom {
                creator: Some(creator.to_owned()),
                create: json!({ "room_version": "12" }),
                power_levels,
                ..FakeRoom::default()
            };
            fake.members.insert(creator.to_owned(), MembershipState::Join);
            for member in members {
                fake.members.insert((*member).to_owned(), MembershipState::Join);
            }
            if bot_joined {
                fake.members.insert(self.bot.clone(), MembershipState::Join);
            }
            state.rooms.insert(room.clone(), fake);
            room
        })
    }

    /// Gives `alias` (`#name:example.org`) to `room`.
    pub fn alias(&self, room: &RoomId, name: &str) -> OwnedRoomAliasId {
        let alias: OwnedRoomAliasId = format!("#{name}:example.org").try_into().expect("alias");
        self.with(|state| state.aliases.insert(alias.clone(), room.to_owned()));
        alias
    }

    /// Sets `user`'s power level in `room`.
    pub fn set_power(&self, room: &RoomId, user: &UserId, level: i64) {
        self.with(|state| {
            let fake = state.rooms.get_mut(room).expect("room exists");
            let levels = fake.power_levels.get_or_insert_with(|| json!({ "users": {}, "users_default": 0 }));
            levels["users"][user.as_str()] = json!(level);
        });
    }

    /// Sets `user`'s membership in `room`.
    pub fn set_membership(&self, room: &RoomId, user: &UserId, membership: MembershipState) {
        self.with(|state| {
            state.rooms.get_mut(room).expect("room exists").members.insert(user.to_owned(), membership)
        });
    }

    /// The next call of `endpoint` fails with `error` (several calls queue up).
    pub fn fail_next(&self, endpoint: &'static str, error: MatrixError) {
        self.with(|state| state.failures.entry(endpoint).or_default().push_back(error));
    }

    /// Takes the to-device messages queued for `user`'s `device`, oldest first.
    pub fn take_to_device(&self, user: &UserId, device: &DeviceId) -> Vec<Raw<AnyToDeviceEvent>> {
        self.with(|state| {
            state.keys.to_device.remove(&(user.to_owned(), device.to_owned())).unwrap_or_default()
        })
    }

    /// How many requests `endpoint` got.
    pub fn count(&self, endpoint: &str) -> usize {
        self.with(|state| state.requests.get(endpoint).copied().unwrap_or(0))
    }

    /// What the bot sent into `room`, oldest first.
    pub fn sent_to(&self, room: &RoomId) -> Vec<Sent> {
        self.with(|state| state.sent.iter().filter(|sent| sent.room == room).cloned().collect())
    }

    /// The `body` of every `m.room.message` the bot sent into `room`.
    pub fn bodies_in(&self, room: &RoomId) -> Vec<String> {
        self.sent_to(room)
            .into_iter()
            .filter(|sent| sent.event_type == "m.room.message")
            .filter_map(|sent| sent.content["body"].as_str().map(str::to_owned))
            .collect()
    }

    /// The rooms whose members are exactly the bot and `user` (joined or invited).
    pub fn dms_with(&self, user: &UserId) -> Vec<OwnedRoomId> {
        self.dms_between(&self.bot, user)
    }

    /// The rooms whose members are exactly `owner` (joined) and `user` (joined or invited).
    pub fn dms_between(&self, owner: &UserId, user: &UserId) -> Vec<OwnedRoomId> {
        self.with(|state| {
            state
                .rooms
                .iter()
                .filter(|(_, room)| {
                    room.members.len() == 2 && room.members.contains_key(user) && room.joined(owner)
                })
                .map(|(id, _)| id.clone())
                .collect()
        })
    }

    /// Like [`FakeHomeserver::enter`], then waits as long as `endpoint` is set to be slow.
    async fn enter_slowly(&self, endpoint: &'static str) -> Result<(), MatrixError> {
        self.enter(endpoint)?;
        if let Some(delay) = self.with(|state| state.slow.get(endpoint).copied()) {
            tokio::time::sleep(delay).await;
        }
        Ok(())
    }

    /// Counts a request and returns the failure injected for it, if any.
    fn enter(&self, endpoint: &'static str) -> Result<(), MatrixError> {
        self.with(|state| {
            *state.requests.entry(endpoint).or_default() += 1;
            if state.down {
                return Err(MatrixError::NetworkFailure("connection refused".into()));
            }
            match state.failures.get_mut(endpoint).and_then(VecDeque::pop_front) {
                Some(error) => Err(error),
                None => Ok(()),
            }
        })
    }

    /// The room, if the bot may see it (is joined); else Synapse's 403.
    fn visible_room(&self, state: &FakeState, room: &RoomId) -> Result<FakeRoom, MatrixError> {
        match state.rooms.get(room) {
            Some(fake) if fake.joined(&self.bot) => Ok(fake.clone()),
            _ => Err(forbidden("You don't have permission to access that room.")),
        }
    }
}

/// A permanent `M_FORBIDDEN` failure.
pub fn forbidden(message: &str) -> MatrixError {
    MatrixError::Permanent { errcode: Some("M_FORBIDDEN".into()), status: Some(403), message: message.into() }
}

/// A permanent `M_NOT_FOUND` failure.
pub fn not_found(message: &str) -> MatrixError {
    MatrixError::Permanent { errcode: Some("M_NOT_FOUND".into()), status: Some(404), message: message.into() }
}

/// An admin account of `user`.
pub fn account(user: &UserId, displayname: Option<&str>, creation_ts: Option<i64>) -> AdminUser {
    AdminUser {
        name: user.to_owned(),
        user_type: None,
        is_guest: false,
        deactivated: false,
        displayname: displayname.map(str::to_owned),
        appservice_id: None,
        last_seen_ts: Some(1),
        creation_ts,
    }
}

#[async_trait]
impl Account for FakeHomeserver {
    fn address(&self) -> &str {
        "http://fake.example.org"
    }

    fn bot(&self) -> &UserId {
        &self.bot
    }

    fn acting_as(&self, user: &UserId, device: &DeviceId) -> Arc<dyn Homeserver> {
        Arc::new(Self { bot: user.to_owned(), device: device.to_owned(), state: self.state.clone() })
    }

    async fn register_bot(&self) -> Result<(), MatrixError> {
        self.enter("register_bot")?;
        self.with(|state| {
            state.registered.push(self.bot.clone());
            state.profiles.entry(self.bot.clone()).or_default();
        });
        Ok(())
    }

    async fn set_bot_profile(
        &self,
        displayname: Option<&str>,
        _: Option<OwnedMxcUri>,
    ) -> Result<(), MatrixError> {
        self.enter("set_bot_profile")?;
        if let Some(name) = displayname {
            self.with(|state| state.profiles.insert(self.bot.clone(), Some(name.to_owned())));
        }
        Ok(())
    }

    async fn ensure_device(&self) -> Result<(), MatrixError> {
        self.enter("ensure_device")?;
        self.with(|state| state.devices.push((self.bot.clone(), self.device.clone())));
        Ok(())
    }

    async fn ping(&self, _: &str) -> Result<Duration, MatrixError> {
        self.enter("ping").map(|()| Duration::from_millis(1))
    }

    async fn joined_rooms(&self) -> Result<Vec<OwnedRoomId>, MatrixError> {
        self.enter("joined_rooms")?;
        self.with(|state| {
            Ok(state
                .rooms
                .iter()
                .filter(|(_, room)| room.joined(&self.bot))
                .map(|(id, _)| id.clone())
                .collect())
        })
    }
}

#[async_trait]
impl DirectChats for FakeHomeserver {
    async fn create_dm(
        &self,
        user: &UserId,
        nonce: &str,
        encrypted: bool,
    ) -> Result<OwnedRoomId, MatrixError> {
        self.enter("create_dm")?;
        self.with(|state| {
            let room: OwnedRoomId =
                format!("!dm{}:example.org", state.next_id()).try_into().expect("room id");
            let mut fake = FakeRoom {
                creator: Some(self.bot.clone()),
                create: json!({ "room_version": "12", DM_NONCE_KEY: nonce }),
                encrypted,
                ..FakeRoom::default()
            };
            fake.members.insert(self.bot.clone(), MembershipState::Join);
            fake.members.insert(user.to_owned(), MembershipState::Invite);
            state.rooms.insert(room.clone(), fake);
            Ok(room)
        })
    }

    async fn set_direct(&self, content: Value) -> Result<(), MatrixError> {
        self.enter("set_direct")?;
        self.with(|state| state.direct.insert(self.bot.clone(), content));
        Ok(())
    }
}

#[async_trait]
impl RoomApi for FakeHomeserver {
    async fn join(&self, room: &RoomOrAliasId) -> Result<OwnedRoomId, MatrixError> {
        self.enter("join")?;
        let room = match RoomId::parse(room.as_str()) {
            Ok(room) => room,
            Err(_) => {
                let alias = RoomAliasId::parse(room.as_str()).map_err(MatrixError::internal)?;
                self.with(|state| state.aliases.get(&alias).cloned())
                    .ok_or_else(|| not_found("no such alias"))?
            }
        };
        self.with(|state| match state.rooms.get_mut(&room) {
            Some(fake) => {
                fake.members.insert(self.bot.clone(), MembershipState::Join);
                Ok(room)
            }
            None => Err(not_found("no such room")),
        })
    }

    async fn leave(&self, room: &RoomId, _: Option<String>) -> Result<(), MatrixError> {
        self.enter_slowly("leave").await?;
        self.with(|state| {
            if let Some(fake) = state.rooms.get_mut(room) {
                fake.members.insert(self.bot.clone(), MembershipState::Leave);
            }
        });
        Ok(())
    }

    async fn room_facts(&self, room: &RoomId) -> Result<RoomFacts, MatrixError> {
        self.enter("room_facts")?;
        let fake = self.with(|state| self.visible_room(state, room))?;
        Ok(RoomFacts {
            is_space: fake.create["type"] == "m.space",
            open: fake.public.then_some("public"),
            is_encrypted: fake.encrypted,
        })
    }

    async fn send_raw(
        &self,
        room: &RoomId,
        txn_id: &TransactionId,
        content: Raw<AnyMessageLikeEventContent>,
        event_type: MessageLikeEventType,
    ) -> Result<OwnedEventId, MatrixError> {
        self.enter_slowly("send_raw").await?;
        let content: Value = serde_json::from_str(content.json().get()).map_err(MatrixError::internal)?;
        self.with(|state| {
            // Transaction IDs are the sender's own, as on Synapse (per user and device).
            let txn_id = format!("{} {txn_id}", self.bot);
            if let Some(event) = state.transactions.get(&txn_id) {
                return Ok(event.clone());
            }
            self.visible_room(state, room)?;
            let event_id: OwnedEventId = format!("$event{}", state.next_id()).try_into().expect("event id");
            state.transactions.insert(txn_id, event_id.clone());
            let event_type = event_type.to_string();
            let event =
                json!({ "type": event_type, "room_id": room, "sender": self.bot, "content": content });
            state.events.insert(event_id.clone(), event);
            let sender = self.bot.clone();
            state.sent.push(Sent {
                sender,
                room: room.to_owned(),
                event_type,
                content,
                event_id: event_id.clone(),
            });
            Ok(event_id)
        })
    }

    async fn resolve_alias(&self, alias: &RoomAliasId) -> Result<OwnedRoomId, MatrixError> {
        self.enter("resolve_alias")?;
        self.with(|state| {
            let room = state.aliases.get(alias).cloned();
            if let Some(moved) = state.alias_moves.remove(alias) {
                state.aliases.insert(alias.to_owned(), moved);
            }
            room
        })
        .ok_or_else(|| not_found("Room alias not found"))
    }

    async fn joined_members(&self, room: &RoomId) -> Result<Vec<(OwnedUserId, Option<String>)>, MatrixError> {
        self.enter_slowly("joined_members").await?;
        self.with(|state| {
            let fake = self.visible_room(state, room)?;
            Ok(fake
                .members
                .iter()
                .filter(|(_, membership)| **membership == MembershipState::Join)
                .map(|(user, _)| (user.clone(), state.profiles.get(user).cloned().flatten()))
                .collect())
        })
    }

    async fn space_rooms(&self, space: &RoomId) -> Result<Vec<OwnedRoomId>, MatrixError> {
        self.enter("space_rooms")?;
        self.with(|state| {
            let mut found = Vec::new();
            let mut queue = vec![space.to_owned()];
            while let Some(room) = queue.pop() {
                let children = state.rooms.get(&room).map(|fake| fake.children.clone()).unwrap_or_default();
                for child in children {
                    if child != space && !found.contains(&child) {
                        found.push(child.clone());
                        queue.push(child);
                    }
                }
            }
            Ok(found)
        })
    }

    async fn state(
        &self,
        room: &RoomId,
        event_type: StateEventType,
        state_key: &str,
    ) -> Result<Option<Value>, MatrixError> {
        self.enter("state")?;
        self.with(|state| {
            let fake = self.visible_room(state, room)?;
            Ok(match event_type {
                StateEventType::RoomCreate => Some(fake.create.clone()),
                StateEventType::RoomPowerLevels => fake.power_levels.clone(),
                StateEventType::RoomMember => {
                    let user = UserId::parse(state_key).map_err(MatrixError::internal)?;
                    // Like Synapse, the member event carries the user's display name.
                    let name = state.profiles.get(&user).cloned().flatten();
                    fake.members
                        .get(&user)
                        .map(|membership| json!({ "membership": membership.as_str(), "displayname": name }))
                }
                StateEventType::RoomEncryption if fake.encrypted => {
                    Some(json!({ "algorithm": "m.megolm.v1.aes-sha2" }))
                }
                _ => None,
            })
        })
    }

    async fn room_creation(&self, room: &RoomId) -> Result<RoomCreation, MatrixError> {
        self.enter("room_creation")?;
        self.with(|state| {
            let fake = self.visible_room(state, room)?;
            let room_version = fake.create["room_version"].as_str().unwrap_or("1").to_owned();
            Ok(RoomCreation { creators: fake.creator.into_iter().collect(), room_version })
        })
    }

    async fn room_event(&self, room: &RoomId, event: &EventId) -> Result<Value, MatrixError> {
        self.enter("room_event")?;
        self.with(|state| match state.events.get(event) {
            Some(found) if found["room_id"] == room.as_str() => Ok(found.clone()),
            _ => Err(not_found("Event not found.")),
        })
    }

    async fn redact(
        &self,
        room: &RoomId,
        event: &EventId,
        _: &TransactionId,
        _: Option<&str>,
    ) -> Result<(), MatrixError> {
        self.enter("redact")?;
        self.with(|state| {
            self.visible_room(state, room)?;
            state.redacted.push(event.to_owned());
            Ok(())
        })
    }

    async fn send_state(
        &self,
        room: &RoomId,
        event_type: StateEventType,
        _: &str,
        _: Value,
    ) -> Result<OwnedEventId, MatrixError> {
        self.enter("send_state")?;
        self.with(|state| {
            self.visible_room(state, room)?;
            if event_type == StateEventType::RoomEncryption {
                state.rooms.get_mut(room).expect("visible").encrypted = true;
            }
            Ok(format!("$state{}", state.next_id()).try_into().expect("event id"))
        })
    }

    async fn room_members(&self, room: &RoomId) -> Result<Vec<OwnedUserId>, MatrixError> {
        self.enter("room_members")?;
        self.with(|state| {
            let fake = self.visible_room(state, room)?;
            let reads = |membership: &MembershipState| {
                matches!(membership, MembershipState::Join | MembershipState::Invite)
            };
            Ok(fake.members.iter().filter(|(_, m)| reads(m)).map(|(user, _)| user.clone()).collect())
        })
    }

    async fn invite(&self, room: &RoomId, user: &UserId) -> Result<(), MatrixError> {
        self.enter("invite")?;
        self.with(|state| {
            self.visible_room(state, room)?;
            if let Some(fake) = state.rooms.get_mut(room) {
                fake.members.insert(user.to_owned(), MembershipState::Invite);
            }
            Ok(())
        })
    }

    async fn profile(&self, user: &UserId) -> Result<Option<Option<String>>, MatrixError> {
        self.enter("profile")?;
        Ok(self.with(|state| state.profiles.get(user).cloned()))
    }

    async fn displayname(&self, user: &UserId) -> Result<Option<String>, MatrixError> {
        self.enter_slowly("displayname").await?;
        self.with(|state| match state.profiles.get(user) {
            Some(name) => Ok(name.clone()),
            None => Err(not_found("Profile was not found")),
        })
    }
}

#[async_trait]
impl AdminApi for FakeHomeserver {
    async fn admin_users_page(
        &self,
        from: u64,
        limit: u32,
        newest_first: bool,
        name: Option<&str>,
    ) -> Result<(Vec<AdminUser>, Option<u64>), MatrixError> {
        self.enter("admin_users_page")?;
        let contains =
            |text: &str| name.is_none_or(|name| text.to_lowercase().contains(&name.to_lowercase()));
        self.with(|state| {
            if !state.server_admin {
                return Err(forbidden("You are not a server admin"));
            }
            // Like Synapse's list: no guests or deactivated accounts, and no appservice_id.
            let mut accounts: Vec<AdminUser> = state
                .accounts
                .iter()
                .filter(|account| !account.is_guest && !account.deactivated)
                .filter(|account| {
                    contains(account.name.as_str()) || account.displayname.as_deref().is_some_and(contains)
                })
                .map(|account| AdminUser { appservice_id: None, ..account.clone() })
                .collect();
            match newest_first {
                true => accounts.sort_by_key(|account| std::cmp::Reverse(account.creation_ts)),
                false => accounts.sort_by(|a, b| a.name.cmp(&b.name)),
            }
            let page: Vec<AdminUser> =
                accounts.iter().skip(from as usize).take(limit as usize).cloned().collect();
            let end = from + page.len() as u64;
            Ok((page, (end < accounts.len() as u64).then_some(end)))
        })
    }

    async fn admin_user(&self, user: &UserId) -> Result<AdminUser, MatrixError> {
        self.enter("admin_user")?;
        self.with(|state| {
            if !state.server_admin {
                return Err(forbidden("You are not a server admin"));
            }
            state
                .accounts
                .iter()
                .find(|account| account.name == user)
                .cloned()
                .ok_or_else(|| not_found("User not found"))
        })
    }

    async fn admin_room_members(&self, room: &RoomId) -> Result<Vec<OwnedUserId>, MatrixError> {
        self.enter("admin_room_members")?;
        self.with(|state| {
            if !state.server_admin {
                return Err(forbidden("You are not a server admin"));
            }
            let fake = state.rooms.get(room).ok_or_else(|| not_found("Room not found"))?;
            Ok(fake
                .members
                .iter()
                .filter(|(_, m)| **m == MembershipState::Join)
                .map(|(u, _)| u.clone())
                .collect())
        })
    }
}

#[async_trait]
impl CryptoTransport for FakeHomeserver {
    /// A minimal key server (see [`KeyServer`]), from this handle's user and device.
    async fn crypto(&self, request: CryptoRequest) -> Result<CryptoResponse, MatrixError> {
        self.enter(request.name())?;
        let device = (self.bot.clone(), self.device.clone());
        Ok(self.with(|state| {
            let keys = &mut state.keys;
            match request {
                CryptoRequest::KeysUpload(request) => {
                    CryptoResponse::KeysUpload(keys.upload(device, request))
                }
                CryptoRequest::KeysQuery(request) => {
                    CryptoResponse::KeysQuery(keys.query(&self.bot, request))
                }
                CryptoRequest::KeysClaim(request) => CryptoResponse::KeysClaim(keys.claim(request)),
                CryptoRequest::ToDevice(request) => {
                    keys.send(&self.bot, request);
                    CryptoResponse::ToDevice(send_event_to_device::v3::Response::new())
                }
                CryptoRequest::SigningKeysUpload(request) => {
                    keys.signing_keys(&self.bot, request);
                    CryptoResponse::SigningKeysUpload(upload_signing_keys::v3::Response::new())
                }
                CryptoRequest::SignaturesUpload(request) => {
                    keys.signatures(&self.bot, request);
                    CryptoResponse::SignaturesUpload(upload_signatures::v3::Response::new())
                }
            }
        }))
    }
}
