//! Encrypted rooms: which rooms are encrypted, who reads them, encrypting what the bot sends
//! into them and decrypting what it reads there.
//!
//! A room is encrypted when the crypto store has settings for it: recorded when the bot makes
//! an encrypted DM, when it sees `m.room.encryption`, or when a send finds the state event on
//! the homeserver (asked once per room and process). The readers of a DM are its recipient;
//! of another room, its joined and invited members (asked at most every [`MEMBERS_TTL`]).

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::{Duration, Instant},
};

use async_trait::async_trait;
use matrix_sdk_crypto::{
    store::types::RoomSettings, types::events::room::encrypted::EncryptedEvent,
    vodozemac::megolm::DecryptionError, EncryptionSettings, MegolmError,
};
use ruma::{
    events::{AnyMessageLikeEventContent, StateEventType},
    serde::Raw,
    OwnedRoomId, OwnedUserId, RoomId, UserId,
};
use serde_json::Value;

use super::{decryption_settings, keys_query, to_device, Crypto, CryptoError};
use crate::base::matrix::{CryptoRequest, MatrixError, RoomEncryption};

/// How long a room's member list is used before it is asked for again.
const MEMBERS_TTL: Duration = Duration::from_secs(60);
/// When a send into an encrypted DM whose recipient has no device yet is tried again.
pub const NO_DEVICE_RETRY: Duration = Duration::from_secs(15);
/// The reason recorded for a copy waiting for its recipient's first device, matched by
/// `deliveries_waiting`: an internal marker, which [`shown_reason`] puts into words.
pub const NO_DEVICE_YET: &str = "waiting: the recipient has no device that could decrypt it yet"; // not for people

/// A recorded reason as people read it in `language`: [`NO_DEVICE_YET`] in words, any other as
/// it is.
pub fn shown_reason(language: crate::base::i18n::Language, reason: &str) -> String {
    match reason {
        NO_DEVICE_YET => crate::base::i18n::t!(language, "e2ee-no-device-yet"),
        _ => reason.to_owned(),
    }
}

/// Readers per room, and when they were learnt (`None`: a DM's, for good).
type Readers = HashMap<OwnedRoomId, (Vec<OwnedUserId>, Option<Instant>)>;

/// What the bot knows of rooms, in memory.
#[derive(Default)]
pub struct Rooms {
    members: std::sync::Mutex<Readers>,
    /// Rooms found plain in this process.
    plain: std::sync::Mutex<HashSet<OwnedRoomId>>,
    /// One encryption at a time per room (sharing its key, then encrypting with it).
    locks: std::sync::Mutex<HashMap<OwnedRoomId, Arc<tokio::sync::Mutex<()>>>>,
}

impl Rooms {
    fn lock(&self, room: &RoomId) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        locks.entry(room.to_owned()).or_default().clone()
    }

    fn cached_members(&self, room: &RoomId) -> Option<Vec<OwnedUserId>> {
        let members = self.members.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (users, learnt) = members.get(room)?;
        learnt.is_none_or(|at| at.elapsed() < MEMBERS_TTL).then(|| users.clone())
    }

    fn learn_members(&self, room: &RoomId, users: Vec<OwnedUserId>, for_good: bool) {
        let mut members = self.members.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        members.insert(room.to_owned(), (users, (!for_good).then(Instant::now)));
    }

    fn forget_members(&self, room: &RoomId) {
        self.members.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(room);
    }

    fn is_plain(&self, room: &RoomId) -> bool {
        self.plain.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).contains(room)
    }

    fn set_plain(&self, room: &RoomId, plain: bool) {
        let mut rooms = self.plain.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if plain {
            rooms.insert(room.to_owned());
        } else {
            rooms.remove(room);
        }
    }
}

/// Why an event could not be decrypted.
#[derive(Debug, thiserror::Error)]
pub enum Undecryptable {
    /// The room key has not arrived (yet): worth trying again when keys arrive.
    #[error("the room key is missing: {0}")]
    KeyMissing(String),
    /// It will never be readable (malformed, or not encrypted for the bot).
    #[error("{0}")]
    Never(String),
}

impl From<CryptoError> for MatrixError {
    /// A crypto store failure is like a database failure: worth trying again shortly.
    fn from(error: CryptoError) -> Self {
        match error {
            CryptoError::Matrix(error) => error,
            CryptoError::Store(message) => {
                MatrixError::Transient { retry_after: Some(Duration::from_secs(1)), message }
            }
        }
    }
}

impl Crypto {
    /// Whether `room` is encrypted (see the module's documentation).
    pub async fn is_encrypted(&self, room: &RoomId) -> Result<bool, CryptoError> {
        // In memory first: a plain room costs no read of the crypto store.
        if self.rooms.is_plain(room) {
            return Ok(false);
        }
        if self.machine.room_settings(room).await?.is_some() {
            return Ok(true);
        }
        let encrypted = self.homeserver.state(room, StateEventType::RoomEncryption, "").await?.is_some();
        if encrypted {
            self.mark_encrypted(room).await?;
        } else {
            self.rooms.set_plain(room, true);
        }
        Ok(encrypted)
    }

    /// Records that `room` is encrypted (Megolm, the default rotation).
    pub async fn mark_encrypted(&self, room: &RoomId) -> Result<(), CryptoError> {
        if self.machine.room_settings(room).await?.is_none() {
            let settings = RoomSettings::default();
            self.machine
                .set_room_settings(room, &settings)
                .await
                .map_err(|error| CryptoError::Store(error.to_string()))?;
        }
        self.rooms.set_plain(room, false);
        Ok(())
    }

    /// Someone joined or left `room` (not a DM): its readers are asked for again on its next
    /// encrypted message.
    pub fn members_changed(&self, room: &RoomId) {
        self.rooms.forget_members(room);
    }

    /// Makes the plain DM `room` encrypted (`upgrade_dms`): sends `m.room.encryption`.
    pub async fn upgrade(&self, room: &RoomId) -> Result<(), CryptoError> {
        let content = crate::base::matrix::megolm();
        self.homeserver.send_state(room, StateEventType::RoomEncryption, "", content).await?;
        self.mark_encrypted(room).await
    }

    /// Gets ready to send to `recipients` at once, each in their DM if they have one: one key
    /// query for every recipient the machine does not know yet, and one claim of one-time keys
    /// for every device it has no session with, instead of one of each per recipient.
    pub async fn prepare(&self, recipients: &[(&UserId, Option<&RoomId>)]) -> Result<(), CryptoError> {
        for (user, dm) in recipients {
            if let Some(room) = dm {
                let readers = vec![self.homeserver.bot().to_owned(), (*user).to_owned()];
                self.rooms.learn_members(room, readers, true);
            }
        }
        let users: Vec<&UserId> = recipients.iter().map(|(user, _)| *user).collect();
        self.machine.update_tracked_users(users.clone()).await?;
        self.flush().await?;
        self.establish_sessions(&users).await
    }

    /// Who reads `room`: remembered, or asked of the homeserver.
    async fn readers(&self, room: &RoomId) -> Result<Vec<OwnedUserId>, CryptoError> {
        if let Some(members) = self.rooms.cached_members(room) {
            return Ok(members);
        }
        let members = self.homeserver.room_members(room).await?;
        self.rooms.learn_members(room, members.clone(), false);
        Ok(members)
    }

    /// Olm sessions with every device of `users` that has none: one claim.
    async fn establish_sessions(&self, users: &[&UserId]) -> Result<(), CryptoError> {
        // An owned iterator: a borrowing one makes the future not `Send` for `async_trait`.
        #[allow(clippy::unnecessary_to_owned)]
        let missing = self.machine.get_missing_sessions(users.to_vec().into_iter()).await?;
        if let Some((id, claim)) = missing {
            let response = self.homeserver.crypto(CryptoRequest::KeysClaim(claim)).await?;
            self.mark(&id, &response).await?;
        }
        Ok(())
    }

    /// Whether someone besides the bot has a device to decrypt with.
    async fn has_a_reader(&self, readers: &[&UserId]) -> Result<bool, CryptoError> {
        for user in readers.iter().filter(|user| **user != self.homeserver.bot()) {
            if self.machine.get_user_devices(user, None).await?.devices().next().is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Whether someone besides the bot has a device, asking the homeserver again: a device list
    /// the machine holds may predate the first login (the homeserver tells of changes only to
    /// users who share a joined room).
    async fn has_a_reader_now(&self, readers: &[&UserId]) -> Result<bool, CryptoError> {
        let (id, query) = self.machine.query_keys_for_users(readers.iter().copied());
        let response = self.homeserver.crypto(keys_query(&query)).await?;
        self.mark(&id, &response).await?;
        self.has_a_reader(readers).await
    }

    /// `content` encrypted for `room`, its key shared with every device of its readers first.
    /// A room nobody else could decrypt in is [`MatrixError::Waiting`]: the message is sent
    /// once a device appears.
    async fn encrypt_for(
        &self,
        room: &RoomId,
        event_type: &str,
        content: &Raw<AnyMessageLikeEventContent>,
    ) -> Result<Raw<AnyMessageLikeEventContent>, MatrixError> {
        let lock = self.rooms.lock(room);
        let _one = lock.lock().await;
        let readers = self.readers(room).await?;
        let readers: Vec<&UserId> = readers.iter().map(AsRef::as_ref).collect();
        self.machine.update_tracked_users(readers.clone()).await.map_err(CryptoError::from)?;
        self.flush().await?;
        if !self.has_a_reader(&readers).await? && !self.has_a_reader_now(&readers).await? {
            return Err(MatrixError::Waiting {
                retry_after: NO_DEVICE_RETRY,
                message: NO_DEVICE_YET.to_owned(),
            });
        }
        self.establish_sessions(&readers).await?;
        let shares = self
            .machine
            .share_room_key(room, readers.clone().into_iter(), EncryptionSettings::default())
            .await
            .map_err(CryptoError::from)?;
        for share in shares {
            let response = self.homeserver.crypto(CryptoRequest::ToDevice(to_device(&share))).await?;
            self.mark(&share.txn_id, &response).await?;
        }
        let encrypted = self
            .machine
            .encrypt_room_event_raw(room, event_type, content)
            .await
            .map_err(|error| CryptoError::Store(error.to_string()))?;
        Ok(encrypted.content.cast_unchecked())
    }

    /// The decrypted form of `event` (an `m.room.encrypted` event as pushed), with its ID,
    /// sender, room and relations.
    pub async fn decrypt(&self, event: &Value) -> Result<Value, Undecryptable> {
        let room = event["room_id"].as_str().and_then(|room| RoomId::parse(room).ok());
        let room = room.ok_or_else(|| Undecryptable::Never("no room".into()))?; // not for people
        let raw: Raw<EncryptedEvent> =
            serde_json::from_value(event.clone()).map_err(|error| Undecryptable::Never(error.to_string()))?;
        match self.machine.decrypt_room_event(&raw, &room, &decryption_settings()).await {
            Ok(decrypted) => serde_json::from_str(decrypted.event.json().get())
                .map_err(|error| Undecryptable::Never(error.to_string())),
            // A key that starts later than the message may be followed by a better one.
            Err(
                error @ (MegolmError::MissingRoomKey(_)
                | MegolmError::Decryption(DecryptionError::UnknownMessageIndex(..))
                | MegolmError::Store(_)),
            ) => Err(Undecryptable::KeyMissing(error.to_string())),
            Err(error) => Err(Undecryptable::Never(error.to_string())),
        }
    }
}

#[async_trait]
impl RoomEncryption for Crypto {
    async fn encrypt(
        &self,
        room: &RoomId,
        event_type: &str,
        content: &Raw<AnyMessageLikeEventContent>,
    ) -> Result<Option<Raw<AnyMessageLikeEventContent>>, MatrixError> {
        if !self.is_encrypted(room).await? {
            return Ok(None);
        }
        self.encrypt_for(room, event_type, content).await.map(Some)
    }

    async fn dm_created(&self, room: &RoomId, user: &UserId, encrypted: bool) {
        self.rooms.learn_members(room, vec![self.homeserver.bot().to_owned(), user.to_owned()], true);
        if !encrypted {
            return self.rooms.set_plain(room, true);
        }
        if let Err(error) = self.mark_encrypted(room).await {
            tracing::warn!(%error, %room, "cannot record that a new DM is encrypted; it is looked up on its first send");
        }
    }
}
