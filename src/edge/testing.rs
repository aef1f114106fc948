//! What the unit tests of the edge stand on: every service of the bot on a fake homeserver
//! ([`TestBroadcasts`]), and the wake-up the HTTP edge gives the dispatcher.

use std::sync::Arc;

use tokio::sync::Notify;

use crate::broadcasts::testing::TestBroadcasts;

/// The bot as the edge sees it.
pub struct TestApp {
    layers: TestBroadcasts,
    /// What the HTTP edge wakes the dispatcher with.
    pub inbox_ready: Arc<Notify>,
}

impl std::ops::Deref for TestApp {
    type Target = TestBroadcasts;

    fn deref(&self) -> &TestBroadcasts {
        &self.layers
    }
}

impl TestApp {
    pub async fn new() -> Self {
        Self::with_config("").await
    }

    /// With `extra` YAML (whole top-level sections) appended to the test config.
    pub async fn with_config(extra: &str) -> Self {
        Self { layers: TestBroadcasts::with_config(extra).await, inbox_ready: Arc::default() }
    }
}
