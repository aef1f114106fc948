//! One private DM room per recipient, created once and reused.
//!
//! A DM is a room the bot created with preset `private_chat`, `is_direct` and only the recipient
//! invited. Room creation is not idempotent on the homeserver, so the intent is recorded first
//! (with a nonce that goes into the room's create event); a `creating` record left by a crash is
//! reconciled by finding the room with that nonce among the bot's rooms before anything is
//! created again. A room that gained a third member is retired and a new one made; a recipient
//! who left is invited again; a pending invite is left as it is.
//!
//! [`Dms`] owns this: it takes the store and the homeserver and nothing else of the bot. Each
//! persona has a `Dms` of its own, over a homeserver handle acting as the persona: its DMs, its
//! `m.direct`, never the bot's.

mod adopt;
mod direct;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex as SyncMutex},
    time::Duration,
};

use ruma::{
    events::{room::member::MembershipState, StateEventType},
    EventId, OwnedRoomId, OwnedRoomOrAliasId, OwnedUserId, RoomId, UserId,
};
use tokio::sync::{watch, Mutex, Notify};

use crate::{
    base::{
        i18n::Language,
        matrix::{membership, txn_for, Homeserver, MatrixError, DM_NONCE_KEY},
        registration::random_token,
        store::{now_ms, Claim, DmRoom, DmState, Store, StoreError},
    },
    rooms::notices::post_notice,
};

/// How old a `creating` record must be before another process may reconcile it (the creator
/// might still be at work).
const CREATING_GRACE_MS: i64 = 120_000;
/// How long after a `creating` record was made its room may still appear: the homeserver
/// finishes a `createRoom` whose client died. Until then a search that finds no room waits
/// instead of creating a second one.
const UNFINISHED_CREATION_MS: i64 = 30_000;

/// Serialises DM work per recipient within this process.
#[derive(Default)]
struct DmLocks {
    locks: SyncMutex<HashMap<OwnedUserId, Arc<Mutex<()>>>>,
}

impl DmLocks {
    fn lock_for(&self, user: &UserId) -> Arc<Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if locks.len() > 10_000 {
            locks.retain(|_, lock| Arc::strong_count(lock) > 1);
        }
        locks.entry(user.to_owned()).or_default().clone()
    }
}

/// A set this process remembers things in, forgotten all at once beyond 10,000 (what it holds
/// only matters for moments).
struct Recent<T>(SyncMutex<std::collections::HashSet<T>>);

impl<T> Default for Recent<T> {
    fn default() -> Self {
        Self(SyncMutex::default())
    }
}

impl<T: std::hash::Hash + Eq> Recent<T> {
    fn held(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<T>> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn insert(&self, item: T) {
        let mut held = self.held();
        if held.len() > 10_000 {
            held.clear();
        }
        held.insert(item);
    }

    fn contains<Q: std::hash::Hash + Eq + ?Sized>(&self, item: &Q) -> bool
    where
        T: std::borrow::Borrow<Q>,
    {
        self.held().contains(item)
    }

    fn remove<Q: std::hash::Hash + Eq + ?Sized>(&self, item: &Q) -> bool
    where
        T: std::borrow::Borrow<Q>,
    {
        self.held().remove(item)
    }
}

/// The languages the bot writes in: the config's (to admins), and to each recipient theirs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Languages {
    /// `language:` of the config.
    pub config: Language,
    /// `broadcast.recipient_language: user`: a recipient's choice wins.
    pub chosen_by_recipients: bool,
}

/// The language of what the bot writes to `user`: their choice when `languages` lets them
/// choose and they did (and the store answers), else the config's.
pub async fn recipient_language(store: &Store, languages: Languages, user: &UserId) -> Language {
    if !languages.chosen_by_recipients {
        return languages.config;
    }
    match store.language(user).await {
        Ok(chosen) => chosen.unwrap_or(languages.config),
        Err(error) => {
            tracing::warn!(%error, %user, "cannot look up a recipient's language");
            languages.config
        }
    }
}

/// Why a DM could not be had.
#[derive(Debug, thiserror::Error)]
pub enum DmError {
    #[error(transparent)]
    Matrix(#[from] MatrixError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The DM was recorded moments ago and the homeserver may still be creating it (for another
    /// process, or for one that died): try later.
    #[error("the DM is still being created")]
    CreatingElsewhere,
}

/// A send into a DM whose recipient is banned from it (the reason in `language`).
fn banned(language: Language) -> MatrixError {
    MatrixError::Permanent {
        errcode: Some("M_FORBIDDEN".into()),
        status: None,
        message: crate::base::i18n::t!(language, "dm-banned"),
    }
}

/// Whether someone besides the bot and `user` is among a DM's joined `members`.
pub fn has_third_member(members: &[(OwnedUserId, Option<String>)], bot: &UserId, user: &UserId) -> bool {
    members.iter().any(|(member, _)| member != user && member != bot)
}

/// A recipient's DM, ready for a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dm {
    pub room: OwnedRoomId,
    /// The homeserver made it encrypted: the bot cannot read replies there.
    pub encrypted: bool,
}

/// The DM rooms of the bot, or of one persona.
pub struct Dms {
    store: Store,
    homeserver: Arc<dyn Homeserver>,
    /// The user whose DMs these are: the bot, or the persona.
    bot: OwnedUserId,
    /// The persona's name, `None` for the bot's DMs.
    persona: Option<String>,
    locks: DmLocks,
    /// Woken when the DM rooms changed and `m.direct` must be rewritten.
    direct_dirty: Notify,
    /// [`UNFINISHED_CREATION_MS`], shorter in unit tests.
    unfinished_creation_ms: i64,
    /// Nonces of DMs this process began creating: its `createRoom` calls for them are over
    /// whenever the per-user lock is free, so a room not found for one will not appear.
    begun: Recent<String>,
    /// Of those, the ones whose room was not asked for yet (see [`Dms::begin_for`]).
    untried: Recent<String>,
    /// DMs this process retired, so that a claim's older view of them is not used.
    retired: Recent<OwnedRoomId>,
    /// Whether the homeserver makes new private rooms encrypted (Synapse's
    /// `encryption_enabled_by_default_for_room_type`): looked at in the first DM made.
    encrypted_by_default: std::sync::OnceLock<bool>,
    /// Whether new DMs are made end-to-end encrypted (`encryption.default_dm`; the bot's only).
    encrypt_new: bool,
    /// Whether the owner reads encrypted DMs (`encryption.enabled`; the bot's only).
    reads_encrypted: bool,
    /// The languages of what the owner writes: to recipients, and reasons for admins.
    languages: Languages,
}

impl Dms {
    pub fn new(store: Store, homeserver: Arc<dyn Homeserver>, bot: OwnedUserId) -> Self {
        let encrypted_by_default = std::sync::OnceLock::new();
        Self {
            store,
            homeserver,
            bot,
            persona: None,
            locks: DmLocks::default(),
            direct_dirty: Notify::new(),
            unfinished_creation_ms: UNFINISHED_CREATION_MS,
            begun: Default::default(),
            untried: Default::default(),
            retired: Default::default(),
            encrypted_by_default,
            encrypt_new: false,
            reads_encrypted: false,
            languages: Languages::default(),
        }
    }

    /// The same DMs, written in `languages`.
    pub fn speaking(self, languages: Languages) -> Self {
        Self { languages, ..self }
    }

    /// The language of what the owner writes to `user`.
    async fn language_of(&self, user: &UserId) -> Language {
        recipient_language(&self.store, self.languages, user).await
    }

    /// The same DMs, of an owner that reads encrypted DMs, and makes new ones encrypted when
    /// `encrypt_new` is true.
    pub fn with_encryption(self, encrypt_new: bool) -> Self {
        Self { encrypt_new, reads_encrypted: true, ..self }
    }

    /// The DMs of the persona `name`, whose user `homeserver` acts as.
    pub fn for_persona(store: Store, homeserver: Arc<dyn Homeserver>, name: &str) -> Self {
        let user = homeserver.bot().to_owned();
        Self { persona: Some(name.to_owned()), ..Self::new(store, homeserver, user) }
    }

    /// The persona whose DMs these are, `None` for the bot's.
    pub fn persona(&self) -> Option<&str> {
        self.persona.as_deref()
    }

    /// Marks `m.direct` for rewriting.
    pub fn direct_changed(&self) {
        self.direct_dirty.notify_one();
    }

    /// The DM room of `user`, ready for a message: created, adopted or re-invited as needed.
    pub async fn ensure(&self, user: &UserId) -> Result<Dm, DmError> {
        let lock = self.locks.lock_for(user);
        let _held = lock.lock().await;
        let live = self.store.live_dm(self.persona(), user).await?;
        self.ensure_locked(user, live).await
    }

    /// As [`Dms::ensure`], from `seen`: the user's live DM as a claim read it moments ago. A
    /// ready DM costs no request (its usability comes from the member events the homeserver
    /// pushes, see [`Dms::member_changed`]); a new one costs `createRoom`.
    pub async fn ensure_seen(&self, user: &UserId, seen: Option<DmRoom>) -> Result<Dm, DmError> {
        let lock = self.locks.lock_for(user);
        let _held = lock.lock().await;
        let seen = match seen {
            // Retired by this process since the claim read it.
            Some(dm) if dm.room_id.as_ref().is_some_and(|room| self.retired.contains(room)) => {
                self.store.live_dm(self.persona(), user).await?
            }
            // Being created when the claim read it: another claim of the same delivery (its
            // lease ran out during a long outage) may have finished it since.
            Some(dm) if dm.state == DmState::Creating && !self.untried.contains(dm.nonce.as_str()) => {
                self.store.live_dm(self.persona(), user).await?
            }
            seen => seen,
        };
        self.ensure_locked(user, seen).await
    }

    async fn ensure_locked(&self, user: &UserId, mut live: Option<DmRoom>) -> Result<Dm, DmError> {
        loop {
            let Some(dm) = live else {
                // Whether the user exists was checked when the audience was resolved.
                let nonce = random_token();
                // Ours before it is written (see `begin_for`); tried at once when written.
                self.begun.insert(nonce.clone());
                self.untried.insert(nonce.clone());
                if self.store.begin_dm(self.persona(), user, &nonce).await? {
                    self.untried.remove(&nonce);
                    return self.create(user, &nonce).await;
                }
                live = self.store.live_dm(self.persona(), user).await?; // another process recorded one first
                continue;
            };
            match &dm.room_id {
                Some(room) if dm.state == DmState::Ready => {
                    if let Some(ready) = self.usable(&dm, room, user).await? {
                        return Ok(ready);
                    }
                    self.retire(room).await?;
                    live = None;
                }
                _ => return self.finish_creating(user, &dm).await,
            }
        }
    }

    /// Retires a DM: it is never used again, and `m.direct` loses it.
    async fn retire(&self, room: &RoomId) -> Result<(), StoreError> {
        self.store.retire_dm(room).await?;
        self.retired.insert(room.to_owned());
        self.direct_changed();
        Ok(())
    }

    /// A member event in the DM `dm`, pushed by the homeserver: the recipient's membership is
    /// kept, and when they are in, the display name they show (`displayname`), for the copies
    /// that name them; the bot's removal, or a third person invited or joined, retires the DM.
    pub async fn member_changed(
        &self,
        dm: &DmRoom,
        member: &UserId,
        membership: &MembershipState,
        displayname: Option<&str>,
    ) -> Result<(), StoreError> {
        let Some(room) = &dm.room_id else { return Ok(()) };
        if dm.state == DmState::Retired {
            return Ok(());
        }
        if *member == dm.user_id {
            if *membership == MembershipState::Join {
                let seen = (member.to_owned(), displayname.map(str::to_owned));
                self.store.remember_displaynames(&[seen]).await?;
            }
            return self.store.set_dm_membership(room, membership).await;
        }
        let retire = match member == self.bot {
            true => matches!(membership, MembershipState::Leave | MembershipState::Ban),
            false => matches!(membership, MembershipState::Join | MembershipState::Invite),
        };
        if retire {
            tracing::info!(%room, user = %dm.user_id, %member, ?membership, "the DM is no longer private with the bot; retiring it");
            self.retire(room).await?;
        }
        Ok(())
    }

    /// The homeserver refused a message into the DM `room`: what the store knew was out of
    /// date. Asks the homeserver who is in the room, retires the DM when it is no longer
    /// private with the bot, and invites the recipient again when they left.
    pub async fn refused(&self, room: &RoomId, user: &UserId) -> Result<(), DmError> {
        let lock = self.locks.lock_for(user);
        let _held = lock.lock().await;
        if !self.check_with_homeserver(room, user).await? {
            self.retire(room).await?;
        }
        Ok(())
    }

    /// Creates the room for a recorded intent.
    async fn create(&self, user: &UserId, nonce: &str) -> Result<Dm, DmError> {
        let room = match self.homeserver.create_dm(user, nonce, self.encrypt_new).await {
            Ok(room) => room,
            Err(error @ MatrixError::Permanent { .. }) => {
                // Refused: no room was made, so there is nothing to reconcile later.
                self.store.abandon_dm(nonce).await?;
                return Err(error.into());
            }
            // Unknown outcome (the room may exist): the record stays for reconciliation.
            Err(error) => return Err(error.into()),
        };
        let encrypted = self.encrypt_new || self.made_encrypted(&room).await;
        self.store.dm_created(nonce, &room, encrypted).await?;
        self.direct_changed();
        tracing::debug!(%user, %room, encrypted, "DM created");
        Ok(Dm { room, encrypted })
    }

    /// Records, in one statement, the intent to create a DM for everyone among `claims` who has
    /// none with the owner of these DMs (and did not opt out), so that their deliveries need no
    /// round trip for it; their claims then carry the `creating` DM. Claims of other senders
    /// are left as they are.
    pub async fn begin_for(&self, claims: &mut [Claim]) -> Result<(), StoreError> {
        let intents: Vec<(OwnedUserId, String)> = claims
            .iter()
            .filter(|claim| claim.persona == self.persona)
            .filter(|claim| claim.dm.is_none() && !claim.opted_out)
            .map(|claim| (claim.user_id.clone(), random_token()))
            .collect();
        // Known as this process's before they are written: when the database fails after the
        // commit, the records found later are still seen as ours to create, not another's.
        for (_, nonce) in &intents {
            self.begun.insert(nonce.clone());
            self.untried.insert(nonce.clone());
        }
        let mut begun: HashMap<OwnedUserId, DmRoom> = self
            .store
            .begin_dms(self.persona(), &intents)
            .await?
            .into_iter()
            .map(|dm| (dm.user_id.clone(), dm))
            .collect();
        for claim in claims.iter_mut().filter(|claim| claim.persona == self.persona) {
            if let Some(dm) = begun.remove(&claim.user_id) {
                claim.dm = Some(dm);
            }
        }
        Ok(())
    }

    /// Forgets `dm` when it is an intent this process recorded and never asked the homeserver
    /// to create (its delivery goes back to the queue untried).
    pub async fn abandon_untried(&self, dm: &DmRoom) -> Result<(), StoreError> {
        if dm.state == DmState::Creating && self.untried.remove(dm.nonce.as_str()) {
            self.store.abandon_dm(&dm.nonce).await?;
        }
        Ok(())
    }

    /// A `creating` record: the room may exist (the creator crashed after creating it) or not.
    async fn finish_creating(&self, user: &UserId, dm: &DmRoom) -> Result<Dm, DmError> {
        if self.untried.remove(dm.nonce.as_str()) {
            return self.create(user, &dm.nonce).await; // recorded by this process, never asked for
        }
        // With SQLite this process is the only one: a `creating` record it did not make itself
        // (under the per-user lock) was left by a process that died. Its own (say, the database
        // failed as the room was recorded) it looks for at once.
        let age = now_ms() - dm.created_at;
        let left_by_another = !self.begun.contains(dm.nonce.as_str());
        if left_by_another && age < CREATING_GRACE_MS && !self.store.is_sqlite() {
            return Err(DmError::CreatingElsewhere);
        }
        if let Some(room) = self.find_room_with_nonce(&dm.nonce).await? {
            tracing::info!(%user, %room, "adopted a DM whose creation was not recorded (a crash, or a database failure)");
            let encrypted = if self.encrypt_new { self.finish_encrypting(&room).await? } else { false }
                || self.made_encrypted(&room).await;
            self.store.dm_created(&dm.nonce, &room, encrypted).await?;
            self.direct_changed();
            // The creation may have stopped before the invite: what the store does not know
            // yet is asked of the homeserver (and the recipient invited when missing).
            if !self.check_with_homeserver(&room, user).await? {
                self.retire(&room).await?;
                return Err(MatrixError::Transient {
                    retry_after: None,
                    message: crate::base::i18n::t!(self.languages.config, "dm-not-private-after-crash"),
                }
                .into());
            }
            return Ok(Dm { room, encrypted });
        }
        if left_by_another && age < self.unfinished_creation_ms {
            return Err(DmError::CreatingElsewhere);
        }
        self.create(user, &dm.nonce).await
    }

    /// Makes an adopted DM that was meant to be encrypted encrypted: the homeserver may have
    /// died before it wrote the `m.room.encryption` of the room's creation (with the bot joined,
    /// the recipient not invited yet), and a room without it would get the copy in clear.
    async fn finish_encrypting(&self, room: &RoomId) -> Result<bool, MatrixError> {
        if self.homeserver.state(room, StateEventType::RoomEncryption, "").await?.is_none() {
            let content = crate::base::matrix::megolm();
            self.homeserver.send_state(room, StateEventType::RoomEncryption, "", content).await?;
            tracing::info!(%room, "an adopted DM had no m.room.encryption yet; sent it");
        }
        Ok(true)
    }

    /// Whether a DM the bot just made was made encrypted by the homeserver. All DMs are made
    /// alike, so the first one made in this process is looked at and the answer kept.
    async fn made_encrypted(&self, room: &RoomId) -> bool {
        if let Some(encrypted) = self.encrypted_by_default.get() {
            return *encrypted;
        }
        match self.homeserver.state(room, StateEventType::RoomEncryption, "").await {
            Ok(encryption) => {
                let encrypted = encryption.is_some();
                if encrypted {
                    tracing::warn!(%room, "the homeserver makes the bot's DMs encrypted: replies there cannot be read");
                }
                *self.encrypted_by_default.get_or_init(|| encrypted)
            }
            Err(error) => {
                tracing::warn!(%error, %room, "cannot tell whether a new DM is encrypted");
                false
            }
        }
    }

    /// Among the bot's rooms that are not recorded yet, the one created with `nonce`.
    async fn find_room_with_nonce(&self, nonce: &str) -> Result<Option<OwnedRoomId>, DmError> {
        for room in self.homeserver.joined_rooms().await? {
            if self.store.dm_by_room(&room).await?.is_some() || self.store.is_control_room(&room).await? {
                continue;
            }
            let create = self.homeserver.state(&room, StateEventType::RoomCreate, "").await?;
            if create.as_ref().and_then(|content| content.get(DM_NONCE_KEY)).and_then(|n| n.as_str())
                == Some(nonce)
            {
                return Ok(Some(room));
            }
        }
        Ok(None)
    }

    /// A ready DM as it can take a message, from the recipient's stored membership: invited
    /// again when they left; `None` when the bot can no longer invite them there (retire it).
    async fn usable(&self, dm: &DmRoom, room: &RoomId, user: &UserId) -> Result<Option<Dm>, DmError> {
        let ready = Dm { room: room.to_owned(), encrypted: dm.encrypted };
        match dm.membership {
            MembershipState::Join | MembershipState::Invite => Ok(Some(ready)),
            MembershipState::Ban => Err(banned(self.languages.config).into()),
            _ => match self.homeserver.invite(room, user).await {
                Ok(()) => {
                    self.store.set_dm_membership(room, &MembershipState::Invite).await?;
                    Ok(Some(ready))
                }
                Err(error) if error.errcode() == Some("M_FORBIDDEN") => Ok(None),
                Err(error) => Err(error.into()),
            },
        }
    }

    /// Whether a DM can take a message, asked of the homeserver: the bot still in it and only
    /// `user` with it (else false: retire), and `user` joined or invited (invited again when
    /// they left).
    async fn check_with_homeserver(&self, room: &RoomId, user: &UserId) -> Result<bool, DmError> {
        let members = match self.homeserver.joined_members(room).await {
            Ok(members) => members,
            Err(error) if error.errcode() == Some("M_FORBIDDEN") => {
                // The bot is no longer in the room (the recipient removed it): make a new one.
                tracing::info!(%room, %user, "the bot is no longer in the DM; retiring it");
                return Ok(false);
            }
            Err(error) => return Err(error.into()),
        };
        if has_third_member(&members, &self.bot, user) {
            tracing::info!(%room, %user, "DM has a third member; retiring it");
            return Ok(false);
        }
        if members.iter().any(|(member, _)| member == user) {
            self.store.set_dm_membership(room, &MembershipState::Join).await?;
            return Ok(true);
        }
        match membership(self.homeserver.as_ref(), room, user).await? {
            Some(MembershipState::Invite) => Ok(true),
            Some(MembershipState::Ban) => Err(banned(self.languages.config).into()),
            _ => {
                // They left (or rejected the invite): invite them again.
                self.homeserver.invite(room, user).await?;
                self.store.set_dm_membership(room, &MembershipState::Invite).await?;
                Ok(true)
            }
        }
    }
}

#[cfg(test)]
impl Dms {
    /// Lets a DM whose creation failed be created again at once (unit tests).
    pub fn without_creation_wait(mut self) -> Self {
        self.unfinished_creation_ms = 0;
        self
    }
}

#[cfg(test)]
mod tests;
