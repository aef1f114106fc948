//! Broadcasts: one row each, with the short id shown as `#12`. The JSON columns (message,
//! audience words, options) are decoded here into their types; a row that does not decode is an
//! error naming the broadcast, never a default.

use std::str::FromStr;

use ruma::{OwnedEventId, OwnedRoomId, OwnedUserId, RoomId, UserId};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use super::{now_ms, parse, BroadcastId, Pool, Store, StoreError};
use crate::base::message::StoredMessage;

/// Options that change who is addressed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AudienceOptions {
    /// Users left out (`--except`).
    #[serde(default)]
    pub except: Vec<OwnedUserId>,
    /// Include every room in a space's hierarchy (`--recursive`).
    #[serde(default)]
    pub recursive: bool,
}

/// What `!bc send` was asked, stored with the broadcast.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendOptions {
    #[serde(flatten)]
    pub audience: AudienceOptions,
    #[serde(default)]
    pub yes: bool,
    #[serde(default)]
    pub dry_run: bool,
    /// Also a default broadcast: people who join later get it too.
    #[serde(default)]
    pub default: bool,
    /// `--at` / `--in`: when to send it (Unix milliseconds); `None`: when confirmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_at: Option<i64>,
    /// Sent as this persona (`--as`, its name in the config); `None`: as the bot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persona: Option<String>,
}

/// Where a broadcast is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BroadcastState {
    /// Its audience is being written into the delivery queue.
    Resolving,
    /// Waiting for `!bc confirm` (or ✅ on the preview).
    Prepared,
    /// Confirmed, waiting for its `send_at` time.
    Scheduled,
    /// Workers are delivering it.
    Running,
    /// Every delivery ended (delivered, failed, skipped or cancelled).
    Done,
    /// Stopped by `!bc cancel`.
    Cancelled,
    /// A `--dry-run` or `!bc audience`: counted, never sent.
    DryRun,
    /// Its audience was empty.
    Empty,
}

impl BroadcastState {
    /// Whether `!bc cancel` and `!bc redact` can still stop it from sending: its audience is
    /// being resolved, or it waits (for a confirmation or its time), or it is being sent.
    pub fn is_stoppable(self) -> bool {
        matches!(self, Self::Resolving | Self::Prepared | Self::Scheduled | Self::Running)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Resolving => "resolving",
            Self::Prepared => "prepared",
            Self::Scheduled => "scheduled",
            Self::Running => "running",
            Self::Done => "done",
            Self::Cancelled => "cancelled",
            Self::DryRun => "dry_run",
            Self::Empty => "empty",
        }
    }
}

impl FromStr for BroadcastState {
    type Err = ();
    fn from_str(text: &str) -> Result<Self, ()> {
        [
            Self::Resolving,
            Self::Prepared,
            Self::Scheduled,
            Self::Running,
            Self::Done,
            Self::Cancelled,
            Self::DryRun,
            Self::Empty,
        ]
        .into_iter()
        .find(|state| state.as_str() == text)
        .ok_or(())
    }
}

/// A broadcast as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Broadcast {
    pub id: BroadcastId,
    pub name: String,
    pub control_room_id: OwnedRoomId,
    pub created_by: OwnedUserId,
    /// The message, with `{displayname}`-style placeholders still in it.
    pub message: StoredMessage,
    pub state: BroadcastState,
    pub created_at: i64,
    /// The audience words as typed.
    pub audience: Vec<String>,
    /// `--except`, `--recursive` and the like.
    pub options: SendOptions,
    pub command_event_id: Option<OwnedEventId>,
    pub preview_event_id: Option<OwnedEventId>,
    pub progress_event_id: Option<OwnedEventId>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    /// Raised by each `!bc edit`; a delivered copy shows the message of one revision.
    pub revision: i64,
    /// When `!bc redact` retracted it.
    pub retracted_at: Option<i64>,
    /// When `!bc poll close` ended its poll.
    pub poll_closed_at: Option<i64>,
}

/// What is needed to create a broadcast.
#[derive(Debug, Clone)]
pub struct NewBroadcast<'a> {
    pub name: &'a str,
    pub control_room_id: &'a RoomId,
    pub created_by: &'a UserId,
    pub message: &'a StoredMessage,
    pub state: BroadcastState,
    pub audience: &'a [String],
    pub options: &'a SendOptions,
    pub command_event_id: Option<&'a ruma::EventId>,
}

macro_rules! broadcast_columns {
    () => {
        "id, name, control_room_id, created_by, content_json, state, created_at, audience_json, options_json, \
         command_event_id, preview_event_id, progress_event_id, started_at, finished_at, revision, \
         retracted_at, poll_closed_at"
    };
}

/// A row of `broadcast_columns!()`.
#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    name: String,
    control_room_id: String,
    created_by: String,
    content_json: String,
    state: String,
    created_at: i64,
    audience_json: String,
    options_json: String,
    command_event_id: Option<String>,
    preview_event_id: Option<String>,
    progress_event_id: Option<String>,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    revision: i64,
    retracted_at: Option<i64>,
    poll_closed_at: Option<i64>,
}

/// A JSON column of broadcast `id`, decoded.
fn decode<T: DeserializeOwned>(id: i64, column: &'static str, json: &str) -> Result<T, StoreError> {
    serde_json::from_str(json).map_err(|error| StoreError::Undecodable {
        broadcast: BroadcastId(id),
        column,
        reason: error.to_string(),
    })
}

/// A value as the JSON text of a column.
fn encode(value: &impl Serialize) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|error| StoreError::Corrupt { column: "json", value: error.to_string() })
}

fn optional<T: FromStr>(column: &'static str, value: Option<String>) -> Result<Option<T>, StoreError> {
    value.map(|value| parse(column, value)).transpose()
}

impl TryFrom<Row> for Broadcast {
    type Error = StoreError;
    fn try_from(row: Row) -> Result<Self, StoreError> {
        let id = row.id;
        Ok(Broadcast {
            id: BroadcastId(id),
            name: row.name,
            control_room_id: parse("broadcasts.control_room_id", row.control_room_id)?,
            created_by: parse("broadcasts.created_by", row.created_by)?,
            message: decode(id, "content_json", &row.content_json)?,
            state: parse("broadcasts.state", row.state)?,
            created_at: row.created_at,
            audience: decode(id, "audience_json", &row.audience_json)?,
            options: decode(id, "options_json", &row.options_json)?,
            command_event_id: optional("broadcasts.command_event_id", row.command_event_id)?,
            preview_event_id: optional("broadcasts.preview_event_id", row.preview_event_id)?,
            progress_event_id: optional("broadcasts.progress_event_id", row.progress_event_id)?,
            started_at: row.started_at,
            finished_at: row.finished_at,
            revision: row.revision,
            retracted_at: row.retracted_at,
            poll_closed_at: row.poll_closed_at,
        })
    }
}

impl Store {
    /// Creates a broadcast and returns its new id.
    pub async fn create_broadcast(&self, new: NewBroadcast<'_>) -> Result<BroadcastId, StoreError> {
        let (message, audience, options) =
            (encode(new.message)?, encode(&new.audience)?, encode(new.options)?);
        let (id,): (i64,) = on_pool!(self, |pool| {
            sqlx::query_as(
                "INSERT INTO broadcasts (name, control_room_id, created_by, content_json, state, created_at,
                                         audience_json, options_json, command_event_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
            )
            .bind(new.name)
            .bind(new.control_room_id.as_str())
            .bind(new.created_by.as_str())
            .bind(&message)
            .bind(new.state.as_str())
            .bind(now_ms())
            .bind(&audience)
            .bind(&options)
            .bind(new.command_event_id.map(|event| event.as_str()))
            .fetch_one(pool)
            .await?
        });
        Ok(BroadcastId(id))
    }

    /// One broadcast, or [`StoreError::NotFound`].
    pub async fn broadcast(&self, id: BroadcastId) -> Result<Broadcast, StoreError> {
        let row: Option<Row> = on_pool!(self, |pool| {
            sqlx::query_as(concat!("SELECT ", broadcast_columns!(), " FROM broadcasts WHERE id = $1"))
                .bind(id.0)
                .fetch_optional(pool)
                .await?
        });
        row.ok_or(StoreError::NotFound)?.try_into()
    }

    /// The broadcast whose preview is `event`, if any.
    pub async fn broadcast_by_preview(&self, event: &ruma::EventId) -> Result<Option<Broadcast>, StoreError> {
        self.broadcast_where(
            concat!("SELECT ", broadcast_columns!(), " FROM broadcasts WHERE preview_event_id = $1"),
            event,
        )
        .await
    }

    /// The broadcast made by the command `event`, if any.
    pub async fn broadcast_by_command(&self, event: &ruma::EventId) -> Result<Option<Broadcast>, StoreError> {
        self.broadcast_where(
            concat!("SELECT ", broadcast_columns!(), " FROM broadcasts WHERE command_event_id = $1"),
            event,
        )
        .await
    }

    /// The broadcast `sql` (a select of the broadcast columns by one event ID) finds, if any.
    async fn broadcast_where(
        &self,
        sql: &'static str,
        event: &ruma::EventId,
    ) -> Result<Option<Broadcast>, StoreError> {
        let row: Option<Row> =
            on_pool!(self, |pool| { sqlx::query_as(sql).bind(event.as_str()).fetch_optional(pool).await? });
        row.map(Broadcast::try_from).transpose()
    }

    /// Every broadcast in `state`, oldest first.
    pub async fn broadcasts_in_state(&self, state: BroadcastState) -> Result<Vec<Broadcast>, StoreError> {
        let rows: Vec<Row> = on_pool!(self, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                broadcast_columns!(),
                " FROM broadcasts WHERE state = $1 ORDER BY id"
            ))
            .bind(state.as_str())
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(Broadcast::try_from).collect()
    }

    /// The `limit` newest broadcasts of control room `room` that were or are to be sent, newest
    /// first.
    pub async fn recent_broadcasts(&self, room: &RoomId, limit: i64) -> Result<Vec<Broadcast>, StoreError> {
        let rows: Vec<Row> = on_pool!(self, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                broadcast_columns!(),
                " FROM broadcasts WHERE control_room_id = $1 AND state <> 'dry_run' ORDER BY id DESC LIMIT $2"
            ))
            .bind(room.as_str())
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(Broadcast::try_from).collect()
    }

    /// Moves a broadcast from `from` to `to`; false when it was not in `from` (someone else
    /// moved it first). Starting sets `started_at`, ending states set `finished_at`.
    pub async fn transition(
        &self,
        id: BroadcastId,
        from: BroadcastState,
        to: BroadcastState,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        let started = (to == BroadcastState::Running).then_some(now);
        let finished = matches!(to, BroadcastState::Done | BroadcastState::Cancelled).then_some(now);
        let changed = on_pool!(self, |pool| {
            sqlx::query(
                "UPDATE broadcasts SET state = $1, started_at = COALESCE($2, started_at),
                        finished_at = COALESCE($3, finished_at)
                 WHERE id = $4 AND state = $5",
            )
            .bind(to.as_str())
            .bind(started)
            .bind(finished)
            .bind(id.0)
            .bind(from.as_str())
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(changed == 1)
    }

    /// Moves a running broadcast to `done`, unless a delivery of it is pending or being sent (a
    /// welcome may have been queued since it was counted). False when it did not move.
    pub async fn finish_if_idle(&self, id: BroadcastId) -> Result<bool, StoreError> {
        let changed = on_pool!(self, |pool| {
            sqlx::query(
                "UPDATE broadcasts SET state = 'done', finished_at = $1
                 WHERE id = $2 AND state = 'running' AND NOT EXISTS (
                     SELECT 1 FROM deliveries WHERE broadcast_id = $2 AND state IN ('pending', 'sending'))",
            )
            .bind(now_ms())
            .bind(id.0)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(changed == 1)
    }

    /// Remembers the preview message of a prepared broadcast (✅ on it confirms).
    pub async fn set_preview_event(&self, id: BroadcastId, event: &ruma::EventId) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            sqlx::query("UPDATE broadcasts SET preview_event_id = $1 WHERE id = $2")
                .bind(event.as_str())
                .bind(id.0)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Remembers the progress message, which is edited as deliveries go.
    pub async fn set_progress_event(&self, id: BroadcastId, event: &ruma::EventId) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            sqlx::query("UPDATE broadcasts SET progress_event_id = $1 WHERE id = $2")
                .bind(event.as_str())
                .bind(id.0)
                .execute(pool)
                .await?;
        });
        Ok(())
    }
}
