//! The bot's [`Crypto`] against the fake homeserver's key server, with recipients that are
//! real crypto state machines ([`OlmMachine`], in memory): what the bot encrypts they decrypt,
//! what they encrypt the bot decrypts, and the requests it costs.

use std::{collections::BTreeMap, sync::Arc};

use matrix_sdk_crypto::{
    types::events::room::encrypted::EncryptedEvent, EncryptionSettings, EncryptionSyncChanges, OlmMachine,
};
use ruma::{
    api::client::sync::sync_events::DeviceLists, events::AnyMessageLikeEventContent, serde::Raw,
    OneTimeKeyAlgorithm, OwnedRoomId, OwnedUserId, RoomId, TransactionId, UInt, UserId,
};
use serde_json::{json, Value};

use super::{as_request, decryption_settings, rooms::Undecryptable, Crypto, DeviceUpdates};
use crate::base::{
    config::Config,
    matrix::{
        fake::FakeHomeserver, Account, CryptoRequest, CryptoResponse, DirectChats, Homeserver, MatrixError,
        RoomEncryption,
    },
};

/// The crypto store's pickle key in tests (32 characters, the shortest accepted).
const PICKLE_KEY: &str = "unit-test-pickle-key-0123456789a";

/// The bot's side of a test: its config (crypto store in a temporary directory) and the fake
/// homeserver. Only what the crypto needs: no store, no services.
struct TestBot {
    config: Config,
    hs: Arc<FakeHomeserver>,
    _dir: tempfile::TempDir,
}

/// The bot's crypto, opened on a crypto store in the test's directory and started (its
/// device keys and cross-signing keys uploaded to the fake).
async fn bot() -> (TestBot, Arc<Crypto>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let extra = format!("encryption:\n  enabled: true\n  pickle_key: {PICKLE_KEY}\n");
    let config = Config::for_unit_tests(dir.path(), &extra);
    let test = TestBot { config, hs: Arc::new(FakeHomeserver::default()), _dir: dir };
    let crypto = Crypto::open(&test.config, test.hs.clone()).await.expect("crypto store opens");
    crypto.start().await.expect("the bot's keys are uploaded");
    (test, crypto)
}

/// Issue 24: a new crypto store is the owner's only: its directory 0700, its database and the
/// database's WAL 0600 (they were made with the umask, world-readable).
#[tokio::test]
async fn a_new_crypto_store_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let (test, _crypto) = bot().await;
    let store = test.config.encryption.store_path(&test.config.database.uri);
    let mode = |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&store), 0o700, "{}", store.display());
    let files: Vec<_> = std::fs::read_dir(&store).unwrap().map(|entry| entry.unwrap().path()).collect();
    assert!(files.iter().any(|file| file.ends_with(super::CRYPTO_STORE_FILE)), "{files:?}");
    for file in files {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
}

/// Tells `machine` the answer to its request `id`.
async fn mark(machine: &OlmMachine, id: &TransactionId, response: &CryptoResponse) {
    super::mark_sent(machine, id, response).await.expect("the answer is taken");
}

/// A recipient's client: a crypto state machine in memory, speaking to the fake's key server
/// from its own device.
struct Recipient {
    user: OwnedUserId,
    machine: OlmMachine,
    hs: Arc<dyn Homeserver>,
}

impl Recipient {
    /// A user of the fake with a device that has not uploaded its keys yet.
    async fn new(fake: &FakeHomeserver, localpart: &str) -> Recipient {
        let user = fake.user(localpart, None);
        let device = ruma::device_id!("PHONE");
        let machine = OlmMachine::new(&user, device).await;
        let hs = fake.acting_as(&user, device);
        Recipient { user, machine, hs }
    }

    /// Sends what the machine asks for (its keys first of all), as a client does after login.
    async fn flush(&self) {
        for _ in 0..8 {
            let requests = self.machine.outgoing_requests().await.expect("requests");
            if requests.is_empty() {
                return;
            }
            for request in requests {
                let outgoing = as_request(request.request()).expect("no in-room verification");
                let response = self.hs.crypto(outgoing).await.expect("the fake answers");
                mark(&self.machine, request.request_id(), &response).await;
            }
        }
    }

    /// A recipient whose device has uploaded its keys (and its fallback key, asked for by its
    /// first sync).
    async fn logged_in(fake: &FakeHomeserver, localpart: &str) -> Recipient {
        let recipient = Recipient::new(fake, localpart).await;
        recipient.flush().await;
        recipient.sync(fake).await;
        recipient
    }

    /// Takes the to-device messages the fake holds for the device, with its key counts, as a
    /// sync does; sends what the machine asks for then; returns how many room keys arrived.
    async fn sync(&self, fake: &FakeHomeserver) -> usize {
        let device = (self.user.clone(), self.machine.device_id().to_owned());
        let to_device = fake.take_to_device(&self.user, self.machine.device_id());
        let (counts, fallback) = fake.with(|state| {
            let mut counts: BTreeMap<OneTimeKeyAlgorithm, UInt> = BTreeMap::new();
            for id in state.keys.one_time_keys.get(&device).into_iter().flat_map(BTreeMap::keys) {
                *counts.entry(id.algorithm()).or_default() += UInt::from(1u32);
            }
            let fallback = state.keys.fallback_keys.get(&device).into_iter().flat_map(BTreeMap::keys);
            (counts, fallback.map(|id| id.algorithm()).collect::<Vec<_>>())
        });
        let changes = EncryptionSyncChanges {
            to_device_events: to_device,
            changed_devices: &DeviceLists::new(),
            one_time_keys_counts: &counts,
            unused_fallback_keys: Some(&fallback),
            next_batch_token: None,
        };
        let (_, keys) =
            self.machine.receive_sync_changes(changes, &decryption_settings()).await.expect("sync");
        self.flush().await;
        keys.len()
    }

    /// The event the bot sent into `room` with `content` (`m.room.encrypted`), decrypted.
    async fn decrypt(&self, bot: &UserId, room: &RoomId, content: &Raw<AnyMessageLikeEventContent>) -> Value {
        let event = encrypted_event(bot, room, content);
        let raw: Raw<EncryptedEvent> = serde_json::from_value(event).expect("an encrypted event");
        let decrypted =
            self.machine.decrypt_room_event(&raw, room, &decryption_settings()).await.expect("decrypts");
        serde_json::from_str(decrypted.event.json().get()).expect("JSON")
    }

    /// `content` encrypted by the recipient for `room`, whose other member is `bot`: the room
    /// key is shared with the bot's device through the fake (one query, one claim, to-device).
    async fn encrypt(&self, bot: &UserId, room: &RoomId, content: &Value) -> Raw<AnyMessageLikeEventContent> {
        self.machine.update_tracked_users([bot]).await.expect("tracked");
        self.flush().await;
        let missing = self.machine.get_missing_sessions([bot].into_iter()).await.expect("sessions");
        if let Some((id, claim)) = missing {
            let response = self.hs.crypto(CryptoRequest::KeysClaim(claim)).await.expect("claimed");
            mark(&self.machine, &id, &response).await;
        }
        let users = [self.user.as_ref(), bot];
        let shares = self
            .machine
            .share_room_key(room, users.into_iter(), EncryptionSettings::default())
            .await
            .expect("room key shared");
        for share in shares {
            let request = CryptoRequest::ToDevice(super::to_device(&share));
            let response = self.hs.crypto(request).await.expect("sent");
            mark(&self.machine, &share.txn_id, &response).await;
        }
        let content = Raw::new(content).expect("JSON").cast_unchecked();
        let encrypted =
            self.machine.encrypt_room_event_raw(room, "m.room.message", &content).await.expect("encrypted");
        encrypted.content.cast_unchecked()
    }
}

/// `content` as the `m.room.encrypted` event `sender` sent into `room`, as pushed.
fn encrypted_event(sender: &UserId, room: &RoomId, content: &Raw<AnyMessageLikeEventContent>) -> Value {
    let content: Value = serde_json::from_str(content.json().get()).expect("JSON");
    assert_eq!(content["algorithm"], "m.megolm.v1.aes-sha2", "{content}");
    assert!(content.get("body").is_none(), "no plaintext: {content}");
    json!({
        "type": "m.room.encrypted", "event_id": format!("$e{}", rand::random::<u32>()),
        "sender": sender, "origin_server_ts": 1_700_000_000_000u64, "room_id": room, "content": content,
    })
}

fn text(body: &str) -> Raw<AnyMessageLikeEventContent> {
    Raw::new(&json!({ "msgtype": "m.text", "body": body })).expect("JSON").cast_unchecked()
}

/// The bot's encrypted DM with `user`, made as the bot makes it (created encrypted).
async fn encrypted_dm(test: &TestBot, crypto: &Crypto, user: &UserId) -> OwnedRoomId {
    let room = test.hs.create_dm(user, "nonce", true).await.expect("DM");
    crypto.dm_created(&room, user, true).await;
    room
}

/// `content` encrypted by the bot for `room`.
async fn send(
    crypto: &Crypto,
    room: &RoomId,
    body: &str,
) -> Result<Raw<AnyMessageLikeEventContent>, MatrixError> {
    let encrypted = crypto.encrypt(room, "m.room.message", &text(body)).await?;
    Ok(encrypted.expect("the room is encrypted"))
}

/// The requests of each kind the bot's handle and the recipients made so far.
fn counts(fake: &FakeHomeserver) -> [usize; 3] {
    ["keys_query", "keys_claim", "to_device"].map(|kind| fake.count(kind))
}

fn spent(before: [usize; 3], fake: &FakeHomeserver) -> [usize; 3] {
    let now = counts(fake);
    [now[0] - before[0], now[1] - before[1], now[2] - before[2]]
}

#[tokio::test]
async fn the_recipient_decrypts_what_the_bot_encrypts_for_their_dm() {
    let (test, crypto) = bot().await;
    let alice = Recipient::logged_in(&test.hs, "alice").await;
    let room = encrypted_dm(&test, &crypto, &alice.user).await;

    let encrypted = send(&crypto, &room, "Hello, Alice").await.expect("encrypted");

    assert_eq!(alice.sync(&test.hs).await, 1, "the room key arrived");
    let event = alice.decrypt(crypto.homeserver.bot(), &room, &encrypted).await;
    assert_eq!(event["type"], "m.room.message");
    assert_eq!(event["content"], json!({ "msgtype": "m.text", "body": "Hello, Alice" }));
    assert_eq!(event["room_id"], room.as_str());
}

#[tokio::test]
async fn a_plain_room_is_not_encrypted() {
    let (test, crypto) = bot().await;
    let alice = Recipient::logged_in(&test.hs, "alice").await;
    let room = test.hs.create_dm(&alice.user, "nonce", false).await.expect("DM");
    crypto.dm_created(&room, &alice.user, false).await;
    let before = counts(&test.hs);

    let content = crypto.encrypt(&room, "m.room.message", &text("plain")).await.expect("no failure");

    assert!(content.is_none(), "sent as it is");
    assert_eq!(spent(before, &test.hs), [0, 0, 0]);
}

#[tokio::test]
async fn preparing_a_batch_costs_one_key_query_and_one_claim() {
    let (test, crypto) = bot().await;
    let mut recipients = Vec::new();
    for name in ["r1", "r2", "r3", "r4"] {
        let recipient = Recipient::logged_in(&test.hs, name).await;
        let room = encrypted_dm(&test, &crypto, &recipient.user).await;
        recipients.push((recipient, room));
    }
    let before = counts(&test.hs);

    let batch: Vec<(&UserId, Option<&RoomId>)> =
        recipients.iter().map(|(recipient, room)| (recipient.user.as_ref(), Some(room.as_ref()))).collect();
    crypto.prepare(&batch).await.expect("prepared");
    assert_eq!(spent(before, &test.hs), [1, 1, 0], "[query, claim, to-device] for 4 recipients");

    let before = counts(&test.hs);
    for (recipient, room) in &recipients {
        let encrypted = send(&crypto, room, "To all").await.expect("encrypted");
        assert_eq!(recipient.sync(&test.hs).await, 1, "{}: the room key arrived", recipient.user);
        let event = recipient.decrypt(crypto.homeserver.bot(), room, &encrypted).await;
        assert_eq!(event["content"]["body"], "To all");
    }
    assert_eq!(spent(before, &test.hs), [0, 0, 4], "one room key per DM, nothing more asked");
}

#[tokio::test]
async fn a_recipient_without_a_device_waits_then_gets_the_message_once_logged_in() {
    let (test, crypto) = bot().await;
    let bob = Recipient::new(&test.hs, "bob").await;
    let room = encrypted_dm(&test, &crypto, &bob.user).await;
    let before = counts(&test.hs);

    let error = send(&crypto, &room, "Hello, Bob").await.expect_err("nobody could decrypt it");

    assert!(matches!(error, MatrixError::Waiting { .. }), "{error:?}");
    assert_eq!(spent(before, &test.hs)[1..], [0, 0], "no claim, no to-device message");
    assert!(test.hs.take_to_device(&bob.user, bob.machine.device_id()).is_empty());

    bob.flush().await;
    let encrypted = send(&crypto, &room, "Hello, Bob").await.expect("encrypted now");
    assert_eq!(bob.sync(&test.hs).await, 1, "the room key arrived");
    let event = bob.decrypt(crypto.homeserver.bot(), &room, &encrypted).await;
    assert_eq!(event["content"]["body"], "Hello, Bob");
}

#[tokio::test]
async fn the_room_key_is_shared_once_for_two_messages() {
    let (test, crypto) = bot().await;
    let alice = Recipient::logged_in(&test.hs, "alice").await;
    let room = encrypted_dm(&test, &crypto, &alice.user).await;

    let first = send(&crypto, &room, "one").await.expect("encrypted");
    let before = counts(&test.hs);
    let second = send(&crypto, &room, "two").await.expect("encrypted");
    assert_eq!(spent(before, &test.hs), [0, 0, 0], "[query, claim, to-device] of the second send");

    assert_eq!(alice.sync(&test.hs).await, 1, "one room key");
    for (encrypted, body) in [(first, "one"), (second, "two")] {
        let event = alice.decrypt(crypto.homeserver.bot(), &room, &encrypted).await;
        assert_eq!(event["content"]["body"], body);
    }
}

#[tokio::test]
async fn the_bot_decrypts_a_reply_once_its_room_key_arrives() {
    let (test, crypto) = bot().await;
    let alice = Recipient::logged_in(&test.hs, "alice").await;
    let room = encrypted_dm(&test, &crypto, &alice.user).await;
    let bot = crypto.homeserver.bot().to_owned();

    let reply = alice.encrypt(&bot, &room, &json!({ "msgtype": "m.text", "body": "Thanks!" })).await;
    let event = encrypted_event(&alice.user, &room, &reply);

    let early = crypto.decrypt(&event).await.expect_err("the room key is still on the server");
    assert!(matches!(early, Undecryptable::KeyMissing(_)), "{early:?}");

    let to_device = test.hs.take_to_device(&bot, ruma::device_id!("BROADCAST"));
    assert_eq!(to_device.len(), 1, "the room key, for the bot's device");
    crypto.receive(DeviceUpdates { to_device, ..DeviceUpdates::default() }).await.expect("received");

    let decrypted = crypto.decrypt(&event).await.expect("decrypted");
    assert_eq!(decrypted["content"], json!({ "msgtype": "m.text", "body": "Thanks!" }));
    assert_eq!(decrypted["sender"], alice.user.as_str());
    assert_eq!(decrypted["room_id"], room.as_str());
}

#[tokio::test]
async fn a_device_out_of_one_time_keys_is_reached_through_its_fallback_key() {
    let (test, crypto) = bot().await;
    let alice = Recipient::logged_in(&test.hs, "alice").await;
    let device = (alice.user.clone(), alice.machine.device_id().to_owned());
    let fallback = test.hs.with(|state| {
        state.keys.one_time_keys.remove(&device);
        state.keys.fallback_keys.get(&device).map_or(0, |keys| keys.len())
    });
    assert_eq!(fallback, 1, "the device uploaded a fallback key");
    let room = encrypted_dm(&test, &crypto, &alice.user).await;

    let encrypted = send(&crypto, &room, "Hello, Alice").await.expect("encrypted");

    assert_eq!(alice.sync(&test.hs).await, 1, "the room key arrived");
    let event = alice.decrypt(crypto.homeserver.bot(), &room, &encrypted).await;
    assert_eq!(event["content"]["body"], "Hello, Alice");
    let kept = test.hs.with(|state| state.keys.fallback_keys.get(&device).map_or(0, |keys| keys.len()));
    assert_eq!(kept, 1, "a fallback key is not used up");
}

#[tokio::test]
async fn a_restart_keeps_the_bots_device_and_its_sessions() {
    let (test, crypto) = bot().await;
    let alice = Recipient::logged_in(&test.hs, "alice").await;
    let room = encrypted_dm(&test, &crypto, &alice.user).await;
    send(&crypto, &room, "before").await.expect("encrypted");
    let identity = crypto.machine.identity_keys();
    drop(crypto);

    let crypto = Crypto::open(&test.config, test.hs.clone()).await.expect("the store opens again");
    crypto.start().await.expect("started again");

    assert_eq!(crypto.machine.identity_keys().ed25519, identity.ed25519, "the same device keys");
    let uploaded = test.hs.with(|state| state.keys.device_keys[crypto.homeserver.bot()].len());
    assert_eq!(uploaded, 1, "one device of the bot");
    crypto.dm_created(&room, &alice.user, true).await;
    let before = counts(&test.hs);
    let encrypted = send(&crypto, &room, "after").await.expect("encrypted");
    assert_eq!(spent(before, &test.hs)[1..], [0, 0], "the room key and sessions were kept");
    alice.sync(&test.hs).await;
    let event = alice.decrypt(crypto.homeserver.bot(), &room, &encrypted).await;
    assert_eq!(event["content"]["body"], "after");
}

#[tokio::test]
async fn a_crypto_store_does_not_open_with_another_pickle_key() {
    let (test, crypto) = bot().await;
    drop(crypto);
    let mut config = test.config.clone();
    config.encryption.pickle_key = "another-pickle-key-0123456789abc".into();

    let error = Crypto::open(&config, test.hs.clone()).await.err().expect("refused");

    assert!(error.to_string().contains("pickle_key"), "{error}");
}
