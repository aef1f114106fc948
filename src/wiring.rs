//! The one place where the bot is put together: each layer's service is built from the one
//! below and from what it uses of the config, and the tasks of [`crate::run_with_listener`]
//! and [`crate::run_worker`] are handed the services they run on.

use std::sync::Arc;

use tokio::sync::Notify;

use crate::{
    base::{
        config::Config,
        e2ee::Crypto,
        matrix::{Homeserver, MatrixClient},
        permissions::Permissions,
        store::Store,
        telemetry::{self, HomeserverHealth},
    },
    broadcasts::Broadcasts,
    delivery::Delivery,
    edge::{appservice::Intake, health::Health},
    rooms::Rooms,
};

/// The bot's services, wired together.
pub struct Bot {
    pub config: Config,
    /// The broadcasts layer, and through it the delivery and rooms layers.
    pub broadcasts: Arc<Broadcasts>,
    /// Woken when new events are in the inbox: by the HTTP edge, for the dispatcher.
    pub inbox_ready: Arc<Notify>,
    /// Whether the homeserver answers: the probe and the workers tell, `/health` reads it.
    pub health: Arc<HomeserverHealth>,
}

impl Bot {
    /// The services of a bot on `store` and `homeserver`, with end-to-end encryption through
    /// `crypto` when given.
    pub fn new(
        config: Config,
        permissions: Permissions,
        store: Store,
        homeserver: Arc<dyn Homeserver>,
        crypto: Option<Arc<Crypto>>,
    ) -> Self {
        let rooms = Rooms::new(&config, permissions, store, homeserver);
        let rooms = match crypto {
            Some(crypto) => rooms.with_crypto(crypto, &config.encryption),
            None => rooms,
        };
        Self::over(config, Arc::new(rooms))
    }

    /// The services of a bot of `config` over the rooms layer `rooms`.
    fn over(config: Config, rooms: Arc<Rooms>) -> Self {
        let health = Arc::new(HomeserverHealth::default());
        let delivery = Arc::new(Delivery::new(rooms.clone(), health.clone()));
        let broadcasts = Arc::new(Broadcasts::new(rooms, delivery, &config));
        Self { config, broadcasts, inbox_ready: Arc::default(), health }
    }

    /// The bot of `config`: metrics registered, the store connected and migrated, the
    /// homeserver client made (and the crypto store opened, with `encryption.enabled`).
    pub async fn connect(config: Config) -> anyhow::Result<Self> {
        telemetry::register_metrics();
        let permissions = config.permissions()?;
        let store = Store::connect(&config.database.uri, config.database.max_connections).await?;
        let client = MatrixClient::new(&config).await?;
        if !config.encryption.enabled {
            return Ok(Self::new(config, permissions, store, Arc::new(client), None));
        }
        let crypto = Crypto::open(&config, Arc::new(client.clone())).await?;
        let homeserver = Arc::new(client.with_encryption(crypto.clone()));
        Ok(Self::new(config, permissions, store, homeserver, Some(crypto)))
    }

    pub fn rooms(&self) -> &Arc<Rooms> {
        &self.broadcasts.rooms
    }

    pub fn delivery(&self) -> &Arc<Delivery> {
        &self.broadcasts.delivery
    }

    /// What the health endpoints of this process look at.
    pub fn health_checks(&self) -> Arc<Health> {
        Arc::new(Health::new(self.rooms().store.clone(), self.health.clone()))
    }

    /// The state of the HTTP edge, answering health checks from `health`.
    pub fn intake(&self, health: Arc<Health>) -> Intake {
        let rooms = self.rooms();
        Intake::new(
            &self.config,
            rooms.bot.clone(),
            rooms.store.clone(),
            self.inbox_ready.clone(),
            health,
            rooms.crypto.clone(),
        )
    }
}
