//! What the unit tests of the rooms layer stand on: the layer's service over the
//! [fake homeserver](crate::base::matrix::fake) and a SQLite store in a temporary directory.
//! `@admin:example.org` is an admin of the bot, everyone else on example.org a broadcaster,
//! `@nobody:example.org` none. The layers above put their services over it
//! (`delivery::testing`, `broadcasts::testing`).

use std::sync::Arc;

use ruma::{OwnedRoomId, OwnedUserId, RoomId};

use crate::{
    base::{
        config::Config,
        matrix::fake::FakeHomeserver,
        message::StoredMessage,
        store::{BroadcastId, BroadcastState, NewBroadcast, SendOptions, Store},
    },
    rooms::Rooms,
};

/// A `personas:` section for [`TestRooms::with_config`]: `hr` is `@broadcast_hr:example.org`,
/// "HR Team".
pub const HR_PERSONA: &str = "personas:\n  hr: { username: broadcast_hr, displayname: \"HR Team\" }\n";

/// The rooms layer alone on a fake homeserver: for tests of DMs, senders, the relay and
/// control rooms that send nothing through the delivery queue.
pub struct TestRooms {
    pub rooms: Arc<Rooms>,
    pub hs: Arc<FakeHomeserver>,
    pub config: Config,
    _dir: tempfile::TempDir,
}

impl TestRooms {
    pub async fn new() -> Self {
        Self::with_config("").await
    }

    /// With `extra` YAML (whole top-level sections) appended to the test config.
    pub async fn with_config(extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = Config::for_unit_tests(dir.path(), extra);
        let store = Store::connect(&config.database.uri, 4).await.expect("store");
        let hs = Arc::new(FakeHomeserver::default());
        let permissions = config.permissions().expect("permissions");
        let rooms = Arc::new(Rooms::new(&config, permissions, store, hs.clone()));
        Self { rooms, hs, config, _dir: dir }
    }

    pub fn store(&self) -> &Store {
        &self.rooms.store
    }

    /// A control room made by `@admin:example.org`, with the bot in it, recorded as one.
    pub async fn control_room(&self) -> OwnedRoomId {
        let admin = self.hs.user("admin", Some("Admin"));
        let room = self.hs.room(&admin, &[], true);
        self.store().add_control_room(&room, &admin).await.expect("control room");
        room
    }

    /// A broadcast of `text` from `control_room` to `users`, already running.
    pub async fn running_broadcast(
        &self,
        control_room: &RoomId,
        text: &str,
        users: &[OwnedUserId],
        options: SendOptions,
    ) -> BroadcastId {
        self.broadcast_in(BroadcastState::Running, control_room, text, &[], users, options).await
    }

    /// A broadcast of `text` from `control_room` by `@admin:example.org` to the audience words
    /// `audience`, with `users` queued, moved from resolving to `state` (prepared, running, or
    /// through running to done).
    pub async fn broadcast_in(
        &self,
        state: BroadcastState,
        control_room: &RoomId,
        text: &str,
        audience: &[&str],
        users: &[OwnedUserId],
        options: SendOptions,
    ) -> BroadcastId {
        let audience: Vec<String> = audience.iter().map(|word| word.to_string()).collect();
        let admin: OwnedUserId = "@admin:example.org".try_into().expect("admin");
        let message = StoredMessage::markdown(text);
        let new = NewBroadcast {
            name: text,
            control_room_id: control_room,
            created_by: &admin,
            message: &message,
            state: BroadcastState::Resolving,
            audience: &audience,
            options: &options,
            command_event_id: None,
        };
        let id = self.store().create_broadcast(new).await.expect("broadcast");
        self.store().add_deliveries(id, users).await.expect("deliveries");
        let path: &[BroadcastState] = match state {
            BroadcastState::Done => &[BroadcastState::Running, BroadcastState::Done],
            BroadcastState::Resolving => &[],
            _ => std::slice::from_ref(&state),
        };
        let mut from = BroadcastState::Resolving;
        for to in path {
            assert!(self.store().transition(id, from, *to).await.expect("transition"), "{from:?} → {to:?}");
            from = *to;
        }
        id
    }
}
