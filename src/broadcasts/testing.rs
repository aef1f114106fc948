//! What the unit tests of the broadcasts layer stand on: [`TestDelivery`] with the broadcasts
//! service over it.

use std::sync::Arc;

use crate::{broadcasts::Broadcasts, delivery::testing::TestDelivery};

/// The broadcasts layer over the delivery and rooms layers, on a fake homeserver.
pub struct TestBroadcasts {
    layers: TestDelivery,
    pub broadcasts: Arc<Broadcasts>,
}

impl std::ops::Deref for TestBroadcasts {
    type Target = TestDelivery;

    fn deref(&self) -> &TestDelivery {
        &self.layers
    }
}

impl TestBroadcasts {
    pub async fn new() -> Self {
        Self::with_config("").await
    }

    /// With `extra` YAML (whole top-level sections) appended to the test config.
    pub async fn with_config(extra: &str) -> Self {
        let layers = TestDelivery::with_config(extra).await;
        let broadcasts =
            Arc::new(Broadcasts::new(layers.rooms.clone(), layers.delivery.clone(), &layers.config));
        Self { layers, broadcasts }
    }
}
