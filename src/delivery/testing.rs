//! What the unit tests of the delivery layer stand on: [`TestRooms`] with the delivery service
//! over it.

use std::{sync::Arc, time::Duration};

use crate::{
    base::{store::BroadcastId, telemetry::HomeserverHealth},
    delivery::Delivery,
    rooms::testing::TestRooms,
};

/// The delivery layer over the rooms layer, on a fake homeserver.
pub struct TestDelivery {
    layers: TestRooms,
    pub delivery: Arc<Delivery>,
}

impl std::ops::Deref for TestDelivery {
    type Target = TestRooms;

    fn deref(&self) -> &TestRooms {
        &self.layers
    }
}

impl TestDelivery {
    pub async fn new() -> Self {
        Self::with_config("").await
    }

    /// With `extra` YAML (whole top-level sections) appended to the test config.
    pub async fn with_config(extra: &str) -> Self {
        Self::over(TestRooms::with_config(extra).await)
    }

    /// The delivery service over `layers`.
    pub fn over(layers: TestRooms) -> Self {
        let delivery = Arc::new(Delivery::new(layers.rooms.clone(), Arc::new(HomeserverHealth::default())));
        Self { layers, delivery }
    }

    /// Runs the delivery workers until broadcast `id` has `delivered` deliveries.
    pub async fn deliver_all(&self, id: BroadcastId, delivered: i64) {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let workers = tokio::spawn(crate::delivery::run_workers(self.delivery.clone(), stopped));
        let until = tokio::time::Instant::now() + Duration::from_secs(10);
        while self.store().delivery_counts(id).await.expect("counts").delivered < delivered {
            assert!(tokio::time::Instant::now() < until, "{delivered} deliveries within 10 s");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        stop.send(true).expect("workers listen");
        workers.await.expect("workers stop");
    }
}
