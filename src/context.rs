//! The shared context of the running bot's tasks (dispatcher, command tasks, delivery workers,
//! progress, new-user poll): its config, store, homeserver, DM rooms and the wake-ups between
//! tasks.
//!
//! Tasks hold an `Arc<App>`; the functions they call take only what they use (`&Store`,
//! `&dyn Homeserver`, a config section, [`Dms`]). This module imports nothing above the store,
//! the homeserver client and the DM rooms.

use std::sync::{Arc, OnceLock};

use ruma::{OwnedRoomId, OwnedUserId};
use tokio::sync::Notify;

use crate::{
    config::Config, dm::Dms, matrix::Homeserver, permissions::Permissions, store::Store, throttle::Throttle,
};

/// How many messages of one person a minute are relayed into a control room; a flood beyond
/// that folds into one notice.
const RELAYS_PER_MINUTE: u32 = 5;

/// Everything the running bot shares between its tasks.
pub struct App {
    pub config: Config,
    pub permissions: Permissions,
    /// `@broadcast:<domain>`.
    pub bot: OwnedUserId,
    pub store: Store,
    pub homeserver: Arc<dyn Homeserver>,
    /// The bot's DM rooms with recipients.
    pub dms: Dms,
    /// Woken when new events are in the inbox (shared with the HTTP edge).
    pub inbox_ready: Arc<Notify>,
    /// Woken when deliveries may be due (a broadcast started).
    pub deliveries_ready: Notify,
    /// Woken to refresh progress messages now.
    pub progress_ready: Notify,
    /// The first room of `broadcast.control_rooms`: messages that answer no broadcast go there.
    pub default_control_room: OnceLock<OwnedRoomId>,
    /// How many of a person's messages a minute are relayed into a control room.
    pub relay_throttle: Throttle,
}

impl App {
    pub fn new(
        config: Config,
        permissions: Permissions,
        bot: OwnedUserId,
        store: Store,
        homeserver: Arc<dyn Homeserver>,
    ) -> Self {
        let dms = Dms::new(store.clone(), homeserver.clone(), bot.clone());
        Self {
            config,
            permissions,
            bot,
            store,
            homeserver,
            dms,
            inbox_ready: Arc::new(Notify::new()),
            deliveries_ready: Notify::new(),
            progress_ready: Notify::new(),
            default_control_room: OnceLock::new(),
            relay_throttle: Throttle::new(RELAYS_PER_MINUTE, 60_000),
        }
    }

    /// The homeserver as the functions below the tasks take it.
    pub fn hs(&self) -> &dyn Homeserver {
        self.homeserver.as_ref()
    }
}
