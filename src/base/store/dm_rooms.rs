//! The private DM room of each recipient with the bot, and with each persona of the bot.
//!
//! A room goes `creating` (intent recorded, with a nonce that is also put into the room's create
//! event) → `ready` (room ID known) → `retired` (a third member joined; never used again). At
//! most one room per user and owner (the bot or a persona) is not retired (a partial unique
//! index), so two workers can never both create a room for one person. An owner is named as a
//! broadcast's options name its sender: `None` for the bot, else the persona's name; stored as
//! `''` for the bot.

use ruma::{events::room::member::MembershipState, OwnedRoomId, OwnedUserId, RoomId, UserId};

use super::{now_ms, parse, Pool, Store, StoreError};

/// Where a DM room is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DmState {
    /// The intent is recorded; the room may or may not exist yet.
    Creating,
    /// The room exists and takes messages.
    Ready,
    /// A third member joined: never used for delivery again.
    Retired,
}

impl std::str::FromStr for DmState {
    type Err = ();
    fn from_str(text: &str) -> Result<Self, ()> {
        match text {
            "creating" => Ok(Self::Creating),
            "ready" => Ok(Self::Ready),
            "retired" => Ok(Self::Retired),
            _ => Err(()),
        }
    }
}

/// A recipient's DM as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmRoom {
    pub nonce: String,
    pub user_id: OwnedUserId,
    /// Whose DM it is: `None` the bot's, else the persona's of that name.
    pub persona: Option<String>,
    /// `None` while the room is being created.
    pub room_id: Option<OwnedRoomId>,
    pub state: DmState,
    pub created_at: i64,
    /// The homeserver made the room encrypted: the bot cannot read what the recipient writes.
    pub encrypted: bool,
    /// The recipient's membership, as the last member event pushed to the bot said.
    pub membership: MembershipState,
}

pub(super) type Row = (String, String, Option<String>, String, i64, i64, String, String);
/// The columns of [`Row`].
pub(super) const COLUMNS: &str = "nonce, user_id, room_id, state, created_at, encrypted, membership, owner";

/// How the DMs of the bot (`None`) or of a persona are told apart in `dm_rooms.owner`.
pub(super) fn owner(persona: Option<&str>) -> &str {
    persona.unwrap_or("")
}

pub(super) fn dm_room(
    (nonce, user, room, state, created_at, encrypted, membership, owner): Row,
) -> Result<DmRoom, StoreError> {
    Ok(DmRoom {
        nonce,
        user_id: parse("dm_rooms.user_id", user)?,
        persona: Some(owner).filter(|owner| !owner.is_empty()),
        room_id: room.map(|room| parse("dm_rooms.room_id", room)).transpose()?,
        state: parse("dm_rooms.state", state)?,
        created_at,
        encrypted: encrypted != 0,
        membership: MembershipState::from(membership.as_str()),
    })
}

impl Store {
    /// The DM of `user` with the bot (`persona` `None`) or a persona that is not retired, if any.
    pub async fn live_dm(&self, persona: Option<&str>, user: &UserId) -> Result<Option<DmRoom>, StoreError> {
        let row: Option<Row> = on_pool!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM dm_rooms WHERE user_id = $1 AND owner = $2 AND state <> 'retired'"
            )))
            .bind(user.as_str())
            .bind(owner(persona))
            .fetch_optional(pool)
            .await?
        });
        row.map(dm_room).transpose()
    }

    /// The DM whose room is `room`, in any state.
    pub async fn dm_by_room(&self, room: &RoomId) -> Result<Option<DmRoom>, StoreError> {
        let row: Option<Row> = on_pool!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM dm_rooms WHERE room_id = $1")))
                .bind(room.as_str())
                .fetch_optional(pool)
                .await?
        });
        row.map(dm_room).transpose()
    }

    /// Records the intent to create a DM of the bot (`persona` `None`) or a persona for `user`;
    /// false when `user` already has a live DM with it (or one being created).
    pub async fn begin_dm(
        &self,
        persona: Option<&str>,
        user: &UserId,
        nonce: &str,
    ) -> Result<bool, StoreError> {
        let inserted = on_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO dm_rooms (nonce, user_id, state, created_at, owner) VALUES ($1, $2, 'creating', $3, $4)
                 ON CONFLICT DO NOTHING",
            )
            .bind(nonce)
            .bind(user.as_str())
            .bind(now_ms())
            .bind(owner(persona))
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(inserted == 1)
    }

    /// Records the intents to create DMs of the bot (`persona` `None`) or a persona for many
    /// users, as (user, nonce), in one statement; returns those recorded (the others have a live
    /// DM with it, or one being created). Each recorded intent is returned as its new `creating` DM.
    pub async fn begin_dms(
        &self,
        persona: Option<&str>,
        intents: &[(OwnedUserId, String)],
    ) -> Result<Vec<DmRoom>, StoreError> {
        if intents.is_empty() {
            return Ok(Vec::new());
        }
        let rows = serde_json::Value::from(
            intents.iter().map(|(user, nonce)| serde_json::json!([user, nonce])).collect::<Vec<_>>(),
        )
        .to_string();
        let sql = if self.is_sqlite() {
            "INSERT INTO dm_rooms (nonce, user_id, state, created_at, owner)
             SELECT json_extract(value, '$[1]'), json_extract(value, '$[0]'), 'creating', $2, $3 FROM json_each($1)
             WHERE true ON CONFLICT DO NOTHING
             RETURNING nonce, user_id, room_id, state, created_at, encrypted, membership, owner"
        } else {
            "INSERT INTO dm_rooms (nonce, user_id, state, created_at, owner)
             SELECT v->>1, v->>0, 'creating', $2, $3 FROM jsonb_array_elements(($1::text)::jsonb) v
             ON CONFLICT DO NOTHING RETURNING nonce, user_id, room_id, state, created_at, encrypted, membership, owner"
        };
        let rows: Vec<Row> = on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(&rows)
            .bind(now_ms())
            .bind(owner(persona))
            .fetch_all(pool)
            .await?);
        rows.into_iter().map(dm_room).collect()
    }

    /// Records the room created for the DM with `nonce`, and whether it is encrypted.
    pub async fn dm_created(&self, nonce: &str, room: &RoomId, encrypted: bool) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            sqlx::query("UPDATE dm_rooms SET room_id = $1, state = 'ready', encrypted = $2 WHERE nonce = $3")
                .bind(room.as_str())
                .bind(i64::from(encrypted))
                .bind(nonce)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// How many deliveries of broadcast `id` went into DMs that are encrypted.
    pub async fn encrypted_dm_deliveries(&self, id: super::BroadcastId) -> Result<i64, StoreError> {
        let (count,): (i64,) = on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT COUNT(*) FROM deliveries d JOIN dm_rooms r ON r.room_id = d.room_id
                 WHERE d.broadcast_id = $1 AND d.state = 'delivered' AND r.encrypted <> 0",
            )
            .bind(id.0)
            .fetch_one(pool)
            .await?
        });
        Ok(count)
    }

    /// Records that the DM `room` is encrypted now (the bot or the recipient turned it on).
    pub async fn dm_encrypted(&self, room: &ruma::RoomId) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            sqlx::query("UPDATE dm_rooms SET encrypted = 1 WHERE room_id = $1")
                .bind(room.as_str())
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Forgets the intent to create a DM whose creation was refused.
    pub async fn abandon_dm(&self, nonce: &str) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            sqlx::query("DELETE FROM dm_rooms WHERE nonce = $1 AND state = 'creating'")
                .bind(nonce)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Records the recipient's membership in their DM `room`, as a pushed member event said.
    pub async fn set_dm_membership(
        &self,
        room: &RoomId,
        membership: &MembershipState,
    ) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            sqlx::query("UPDATE dm_rooms SET membership = $1 WHERE room_id = $2")
                .bind(membership.as_str())
                .bind(room.as_str())
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Retires a DM room: it is never used for delivery again.
    pub async fn retire_dm(&self, room: &RoomId) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            sqlx::query("UPDATE dm_rooms SET state = 'retired' WHERE room_id = $1")
                .bind(room.as_str())
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// What tells whether the DMs of the bot (`persona` `None`) or a persona changed: how many
    /// there are, ready and retired (a DM is made `ready` once and retired once, never back).
    /// Another process sharing the database (`worker`) makes DMs that this one must list in
    /// `m.direct`.
    pub async fn dm_rooms_fingerprint(&self, persona: Option<&str>) -> Result<(i64, i64, i64), StoreError> {
        let counts: (i64, i64, i64) = on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT COUNT(*), COALESCE(SUM(CASE WHEN state = 'ready' THEN 1 ELSE 0 END), 0),
                        COALESCE(SUM(CASE WHEN state = 'retired' THEN 1 ELSE 0 END), 0)
                 FROM dm_rooms WHERE owner = $1",
            )
            .bind(owner(persona))
            .fetch_one(pool)
            .await?
        });
        Ok(counts)
    }

    /// Every ready DM of the bot (`persona` `None`) or a persona: what its `m.direct` lists.
    pub async fn ready_dms(
        &self,
        persona: Option<&str>,
    ) -> Result<Vec<(OwnedUserId, OwnedRoomId)>, StoreError> {
        let rows: Vec<(String, String)> = on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT user_id, room_id FROM dm_rooms WHERE state = 'ready' AND room_id IS NOT NULL AND owner = $1
                 ORDER BY user_id",
            )
            .bind(owner(persona))
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|(user, room)| Ok((parse("dm_rooms.user_id", user)?, parse("dm_rooms.room_id", room)?)))
            .collect()
    }
}
