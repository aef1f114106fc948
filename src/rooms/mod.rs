//! The rooms layer: the rooms the bot writes in and reads from. One private DM per recipient and
//! sender (`dm`), talking back in a room (`notices`), replies from DMs into control-room threads
//! and answers back (`relay`), which rooms are control rooms (`control_rooms`), and what an
//! event's handler tells the dispatcher (`handled`).

pub mod control_rooms;
pub mod copies;
pub mod dm;
pub mod handled;
pub mod notices;
pub mod relay;
pub mod senders;
#[cfg(test)]
pub mod testing;
pub mod throttle;

use std::sync::{Arc, OnceLock};

use ruma::{OwnedRoomId, OwnedUserId, UserId};

use crate::{
    base::{
        config::{BroadcastConfig, Config, EncryptionConfig},
        e2ee::Crypto,
        i18n::Language,
        matrix::{Homeserver, MatrixError},
        permissions::Permissions,
        store::Store,
    },
    rooms::{
        senders::{Sender, Senders},
        throttle::Throttle,
    },
};

/// How many messages of one person a minute are relayed into a control room; a flood beyond
/// that folds into one notice.
const RELAYS_PER_MINUTE: u32 = 5;

/// The rooms layer's service: what the DMs, the relay and the control rooms use. The layers
/// above reach the store, the homeserver and the senders through it.
pub struct Rooms {
    /// `@broadcast:<domain>`.
    pub bot: OwnedUserId,
    /// `language:` of the config: what the bot writes to admins, and to recipients who chose
    /// none.
    pub language: Language,
    /// `broadcast:` of the config.
    pub broadcast: BroadcastConfig,
    pub permissions: Permissions,
    pub store: Store,
    /// The homeserver, acting as the bot.
    pub homeserver: Arc<dyn Homeserver>,
    /// The bot and its personas, with their DMs.
    pub senders: Senders,
    /// End-to-end encryption on the bot's device, when `encryption.enabled`.
    pub crypto: Option<Arc<Crypto>>,
    /// `encryption.upgrade_dms`: a plain DM of the bot is made encrypted before its next copy.
    upgrade_dms: bool,
    /// How many of a person's messages a minute are relayed into a control room.
    pub relay_throttle: Throttle,
    /// The first room of `broadcast.control_rooms`: messages that answer no broadcast go there.
    pub default_control_room: OnceLock<OwnedRoomId>,
}

impl Rooms {
    /// The rooms of the bot `bot` (acting through `homeserver`), as `config` says.
    pub fn new(
        config: &Config,
        permissions: Permissions,
        store: Store,
        homeserver: Arc<dyn Homeserver>,
    ) -> Self {
        Self {
            bot: homeserver.bot().to_owned(),
            language: config.language,
            broadcast: config.broadcast.clone(),
            permissions,
            senders: Senders::new(config, &store, homeserver.clone()),
            store,
            homeserver,
            crypto: None,
            upgrade_dms: false,
            relay_throttle: Throttle::new(RELAYS_PER_MINUTE, 60_000),
            default_control_room: OnceLock::new(),
        }
    }

    /// The same rooms with end-to-end encryption as `encryption` says: the bot's new DMs are
    /// made as `default_dm` says, plain ones upgraded with `upgrade_dms`, and encrypted rooms
    /// work like plain ones.
    pub fn with_crypto(self, crypto: Arc<Crypto>, encryption: &EncryptionConfig) -> Self {
        let senders = self.senders.encrypting_new_dms(encryption.encrypts_new_dms());
        Self { senders, crypto: Some(crypto), upgrade_dms: encryption.upgrade_dms, ..self }
    }

    /// The homeserver, acting as the bot.
    pub fn hs(&self) -> &dyn Homeserver {
        self.homeserver.as_ref()
    }

    /// The language of what the bot writes to admins (and to recipients, unless they chose one:
    /// see `broadcast.recipient_language`).
    pub fn language(&self) -> Language {
        self.language
    }

    /// The language of what the bot writes to the recipient `user`.
    pub async fn recipient_language(&self, user: &UserId) -> Language {
        self.senders.recipient_language(user).await
    }

    /// Who writes as the bot (`persona` `None`) or as a persona of the config.
    pub async fn sender(&self, persona: Option<&str>) -> Result<Sender<'_>, MatrixError> {
        self.senders.sender(persona).await
    }
}
