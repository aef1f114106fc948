//! What comes back from recipients: opt-outs, reads, replies and where they were relayed.

use ruma::{EventId, OwnedEventId, OwnedRoomId, OwnedUserId, RoomId, UserId};

use super::{now_ms, parse, BroadcastId, Pool, Store, StoreError};

/// The thread in a control room that collects one recipient's replies to one broadcast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyThread {
    /// `BroadcastId(0)` for messages that answer no broadcast.
    pub broadcast_id: BroadcastId,
    pub user_id: OwnedUserId,
    pub control_room_id: OwnedRoomId,
    pub root_event_id: OwnedEventId,
}

type ThreadRow = (i64, String, String, String);

fn thread((broadcast, user, room, root): ThreadRow) -> Result<ReplyThread, StoreError> {
    Ok(ReplyThread {
        broadcast_id: BroadcastId(broadcast),
        user_id: parse("reply_threads.user_id", user)?,
        control_room_id: parse("reply_threads.control_room_id", room)?,
        root_event_id: parse("reply_threads.root_event_id", root)?,
    })
}

impl Store {
    /// Records that `user` wants no more broadcasts.
    pub async fn opt_out(&self, user: &UserId) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            sqlx::query("INSERT INTO opt_outs (user_id, opted_out_at) VALUES ($1, $2) ON CONFLICT (user_id) DO NOTHING")
                .bind(user.as_str())
                .bind(now_ms())
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Records that `user` wants broadcasts again.
    pub async fn opt_in(&self, user: &UserId) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            sqlx::query("DELETE FROM opt_outs WHERE user_id = $1").bind(user.as_str()).execute(pool).await?;
        });
        Ok(())
    }

    /// Whether `user` opted out.
    pub async fn is_opted_out(&self, user: &UserId) -> Result<bool, StoreError> {
        let row: Option<(String,)> = on_pool!(self, |pool| {
            sqlx::query_as("SELECT user_id FROM opt_outs WHERE user_id = $1")
                .bind(user.as_str())
                .fetch_optional(pool)
                .await?
        });
        Ok(row.is_some())
    }

    /// Whether the bot has ever delivered a broadcast to `user`.
    pub async fn was_delivered_to(&self, user: &UserId) -> Result<bool, StoreError> {
        let row: Option<(i64,)> = on_pool!(self, |pool| {
            // By key, broadcast after broadcast: no index leads with the user.
            sqlx::query_as(
                "SELECT 1 FROM broadcasts b WHERE EXISTS (SELECT 1 FROM deliveries d
                     WHERE d.broadcast_id = b.id AND d.user_id = $1 AND d.state = 'delivered') LIMIT 1",
            )
            .bind(user.as_str())
            .fetch_optional(pool)
            .await?
        });
        Ok(row.is_some())
    }

    /// Marks the queued deliveries of broadcast `id` to people who opted out as skipped.
    pub async fn skip_opted_out(&self, id: BroadcastId) -> Result<u64, StoreError> {
        let skipped = on_pool!(self, |pool| {
            sqlx::query(
                "UPDATE deliveries SET state = 'skipped', last_error = 'opted out', updated_at = $1
                 WHERE broadcast_id = $2 AND state = 'pending' AND user_id IN (SELECT user_id FROM opt_outs)",
            )
            .bind(now_ms())
            .bind(id.0)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(skipped)
    }

    /// The broadcast last delivered into DM `room`.
    pub async fn last_delivered_in(&self, room: &RoomId) -> Result<Option<BroadcastId>, StoreError> {
        let row: Option<(i64,)> = on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT broadcast_id FROM deliveries WHERE room_id = $1 AND state = 'delivered'
                 ORDER BY updated_at DESC, broadcast_id DESC LIMIT 1",
            )
            .bind(room.as_str())
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(|(id,)| BroadcastId(id)))
    }

    /// Marks `user`'s copy of broadcast `id` read (the first time counts).
    pub async fn mark_read(&self, id: BroadcastId, user: &UserId) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            sqlx::query(
                "UPDATE deliveries SET read_at = $1 WHERE broadcast_id = $2 AND user_id = $3 AND read_at IS NULL",
            )
            .bind(now_ms())
            .bind(id.0)
            .bind(user.as_str())
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Marks `user`'s copy of broadcast `id` replied to (and so read).
    pub async fn mark_replied(&self, id: BroadcastId, user: &UserId) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            sqlx::query(
                "UPDATE deliveries SET replied_at = COALESCE(replied_at, $1), read_at = COALESCE(read_at, $1)
                 WHERE broadcast_id = $2 AND user_id = $3",
            )
            .bind(now_ms())
            .bind(id.0)
            .bind(user.as_str())
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// How many recipients of broadcast `id` read it and how many replied.
    pub async fn read_and_replied(&self, id: BroadcastId) -> Result<(i64, i64), StoreError> {
        let counts: (i64, i64) = on_pool!(self, |pool| {
            sqlx::query_as("SELECT COUNT(read_at), COUNT(replied_at) FROM deliveries WHERE broadcast_id = $1")
                .bind(id.0)
                .fetch_one(pool)
                .await?
        });
        Ok(counts)
    }

    /// Up to `limit` recipients of broadcast `id` who replied.
    pub async fn repliers(&self, id: BroadcastId, limit: i64) -> Result<Vec<OwnedUserId>, StoreError> {
        let rows: Vec<(String,)> = on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT user_id FROM deliveries WHERE broadcast_id = $1 AND replied_at IS NOT NULL
                 ORDER BY replied_at LIMIT $2",
            )
            .bind(id.0)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(|(user,)| parse("deliveries.user_id", user)).collect()
    }

    /// The thread of `user`'s replies to broadcast `id`, if it was started.
    pub async fn reply_thread(
        &self,
        id: BroadcastId,
        user: &UserId,
    ) -> Result<Option<ReplyThread>, StoreError> {
        let row: Option<ThreadRow> = on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT broadcast_id, user_id, control_room_id, root_event_id FROM reply_threads
                 WHERE broadcast_id = $1 AND user_id = $2",
            )
            .bind(id.0)
            .bind(user.as_str())
            .fetch_optional(pool)
            .await?
        });
        row.map(thread).transpose()
    }

    /// The reply thread whose root is `root`, if any.
    pub async fn thread_by_root(&self, root: &EventId) -> Result<Option<ReplyThread>, StoreError> {
        let row: Option<ThreadRow> = on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT broadcast_id, user_id, control_room_id, root_event_id FROM reply_threads
                 WHERE root_event_id = $1",
            )
            .bind(root.as_str())
            .fetch_optional(pool)
            .await?
        });
        row.map(thread).transpose()
    }

    /// Records a new reply thread.
    pub async fn add_reply_thread(&self, thread: &ReplyThread) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO reply_threads (broadcast_id, user_id, control_room_id, root_event_id, created_at)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            )
            .bind(thread.broadcast_id.0)
            .bind(thread.user_id.as_str())
            .bind(thread.control_room_id.as_str())
            .bind(thread.root_event_id.as_str())
            .bind(now_ms())
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Records where a message (`source`, written in the DM `source_room`) was relayed to.
    pub async fn record_relay(
        &self,
        source_room: &RoomId,
        source: &EventId,
        room: &RoomId,
        target: &EventId,
    ) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO relayed_events (source_event_id, source_room_id, target_room_id, target_event_id)
                 VALUES ($1, $2, $3, $4) ON CONFLICT (source_event_id) DO NOTHING",
            )
            .bind(source.as_str())
            .bind(source_room.as_str())
            .bind(room.as_str())
            .bind(target.as_str())
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Where a message written in the DM `source_room` was relayed to, if it was: an edit or a
    /// redaction from another room naming the same event finds nothing.
    pub async fn relayed(
        &self,
        source_room: &RoomId,
        source: &EventId,
    ) -> Result<Option<(OwnedRoomId, OwnedEventId)>, StoreError> {
        let row: Option<(String, String)> = on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT target_room_id, target_event_id FROM relayed_events
                 WHERE source_event_id = $1 AND source_room_id = $2",
            )
            .bind(source.as_str())
            .bind(source_room.as_str())
            .fetch_optional(pool)
            .await?
        });
        row.map(|(room, event)| {
            Ok((
                parse("relayed_events.target_room_id", room)?,
                parse("relayed_events.target_event_id", event)?,
            ))
        })
        .transpose()
    }
}
