//! The delivery queue: claiming due copies in batches under a lease, giving them back, and recording the workers' outcomes in batches.

use super::*;

/// The claim of a batch of due deliveries. Both walk the running broadcasts in order and, in
/// each, the index `deliveries_by_broadcast` (broadcast, state, due, user) in order from a
/// [`QueuePosition`], so a claim reads about as many entries as it takes however long the queue:
/// on PostgreSQL the entries of the deliveries claimed before stay in the index until a vacuum,
/// and the position skips them. PostgreSQL locks the rows it takes (`SKIP LOCKED`: several
/// processes may share the queue), SQLite has one writer at a time.
const CLAIM_SQLITE: &str =
    "UPDATE deliveries SET state = 'sending', claimed_until = $1, attempts = attempts + 1, updated_at = $2
     WHERE rowid IN (
         SELECT d.rowid FROM broadcasts b
         CROSS JOIN deliveries d INDEXED BY deliveries_by_broadcast ON d.broadcast_id = b.id
         WHERE b.state = 'running' AND d.state = 'pending' AND d.next_attempt_at <= $2
             AND (d.next_attempt_at, d.user_id) >= ($4, $5)
         ORDER BY b.id, d.next_attempt_at, d.user_id LIMIT $3)
     RETURNING broadcast_id, user_id, attempts, queued_at, displayname,
         (SELECT json_extract(options_json, '$.persona') FROM broadcasts WHERE id = broadcast_id), next_attempt_at";

const CLAIM_POSTGRES: &str =
    "UPDATE deliveries SET state = 'sending', claimed_until = $1, attempts = attempts + 1, updated_at = $2
     WHERE (broadcast_id, user_id) IN (
         SELECT d.broadcast_id, d.user_id FROM broadcasts b, LATERAL (
             SELECT broadcast_id, user_id, next_attempt_at FROM deliveries
             WHERE broadcast_id = b.id AND state = 'pending' AND next_attempt_at <= $2
                 AND (next_attempt_at, user_id COLLATE \"C\") >= ($4, $5)
             ORDER BY next_attempt_at, user_id COLLATE \"C\" LIMIT $3 FOR UPDATE SKIP LOCKED) d
         WHERE b.state = 'running' ORDER BY b.id, d.next_attempt_at, d.user_id COLLATE \"C\" LIMIT $3)
     RETURNING broadcast_id, user_id, attempts, queued_at, displayname,
         (SELECT options_json::jsonb->>'persona' FROM broadcasts WHERE id = broadcast_id), next_attempt_at";

/// Where in the queue a claim starts reading: the due deliveries ordered by when they became
/// due, then by user. The deliveries before it are the ones claimed already, as far as the
/// claimer knows: it starts again from [`QueuePosition::START`] every few seconds and whenever
/// a claim finds fewer than it asked for, so a delivery made due again behind it (a lease that
/// ran out) waits a few seconds at most.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuePosition {
    due_at: i64,
    user_id: String,
}

impl QueuePosition {
    /// The start of the queue.
    pub const START: QueuePosition = QueuePosition { due_at: i64::MIN, user_id: String::new() };

    /// The position of the first of `claims` in the queue's order (user IDs in byte order, as
    /// the claim compares them: `COLLATE "C"` on PostgreSQL), from where the next claim finds
    /// what these did not take; `START` when there are none.
    pub fn of_first(claims: &[Claim]) -> QueuePosition {
        claims
            .iter()
            .map(|claim| QueuePosition { due_at: claim.due_at, user_id: claim.user_id.to_string() })
            .min_by(|a, b| (a.due_at, &a.user_id).cmp(&(b.due_at, &b.user_id)))
            .unwrap_or(Self::START)
    }
}

/// Records a batch of outcomes, each only while its row is still that claim's (being sent, with
/// the claim's attempt). The row's state is tested in a `CASE`, which no index can serve, so that
/// PostgreSQL finds each row by its key: with `state = 'sending' OR …` it read every delivery
/// that had ever been sent (their index entries stay until a vacuum) for each batch.
const RECORD_SQLITE: &str = "UPDATE deliveries SET state = v.state, room_id = COALESCE(v.room, room_id),
        event_id = COALESCE(v.event, event_id), last_error = v.reason, next_attempt_at = v.next,
        claimed_until = 0, updated_at = $2, attempts = v.counted, shown_revision = v.rev
     FROM (SELECT json_extract(value, '$.b') AS b, json_extract(value, '$.u') AS u, json_extract(value, '$.rev') AS rev,
                  json_extract(value, '$.a') AS a, json_extract(value, '$.state') AS state,
                  json_extract(value, '$.room') AS room, json_extract(value, '$.event') AS event,
                  json_extract(value, '$.reason') AS reason, json_extract(value, '$.next') AS next,
                  json_extract(value, '$.counted') AS counted FROM json_each($1)) AS v
     WHERE deliveries.broadcast_id = v.b AND deliveries.user_id = v.u AND deliveries.attempts = v.a
       AND (deliveries.state = 'sending' OR (deliveries.state = 'cancelled' AND v.state = 'delivered'))";

const RECORD_POSTGRES: &str = "UPDATE deliveries SET state = v.state, room_id = COALESCE(v.room, deliveries.room_id),
        event_id = COALESCE(v.event, deliveries.event_id), last_error = v.reason, next_attempt_at = v.next,
        claimed_until = 0, updated_at = $2, attempts = v.counted, shown_revision = v.rev
     FROM jsonb_to_recordset(($1::text)::jsonb)
          AS v(b BIGINT, u TEXT, a BIGINT, state TEXT, room TEXT, event TEXT, reason TEXT, next BIGINT, counted BIGINT,
               rev BIGINT)
     WHERE deliveries.broadcast_id = v.b AND deliveries.user_id = v.u AND deliveries.attempts = v.a
       AND CASE deliveries.state WHEN 'sending' THEN true WHEN 'cancelled' THEN v.state = 'delivered' ELSE false END";

impl Store {
    /// Claims the next due delivery of a running broadcast for `lease_ms`, if there is one.
    pub async fn claim_delivery(&self, lease_ms: i64) -> Result<Option<Claim>, StoreError> {
        Ok(self.claim_deliveries(lease_ms, 1).await?.pop())
    }

    /// Claims up to `limit` due deliveries of running broadcasts for `lease_ms`, each with its
    /// sender (the bot or a persona), the recipient's live DM with that sender and whether they
    /// opted out: three statements for the whole batch. Deliveries whose lease ran out (their
    /// worker died) are claimable again after [`Store::release_expired_leases`]. When the database
    /// fails on the way (a connection killed after the commit, say), what may have been claimed
    /// is given back at once instead of waiting for its lease.
    pub async fn claim_deliveries(&self, lease_ms: i64, limit: i64) -> Result<Vec<Claim>, StoreError> {
        self.claim_deliveries_from(&QueuePosition::START, lease_ms, limit).await
    }

    /// As [`Store::claim_deliveries`], reading the queue from `position` on: the deliveries due
    /// before it are left for a claim from [`QueuePosition::START`].
    pub async fn claim_deliveries_from(
        &self,
        position: &QueuePosition,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<Claim>, StoreError> {
        let now = now_ms();
        let claimed = self.claim_until(position, now, now + lease_ms, limit).await;
        if claimed.is_err() {
            self.give_back(now + lease_ms).await;
        }
        claimed
    }

    /// Gives back the deliveries claimed until `until` (exactly: the lease of one claim) without
    /// counting the try; a few times while the database still fails. Another process's claim of
    /// the same millisecond would be given back too: its copy has the same transaction ID.
    async fn give_back(&self, until: i64) {
        let mut delay = std::time::Duration::from_millis(200);
        for _ in 0..5 {
            let given_back = on_pool!(self, |pool| {
                sqlx::query(
                    "UPDATE deliveries SET state = 'pending', claimed_until = 0, attempts = attempts - 1
                     WHERE state = 'sending' AND claimed_until = $1",
                )
                .bind(until)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
            });
            match given_back {
                Ok(deliveries) if deliveries > 0 => {
                    return tracing::info!(deliveries, "gave back deliveries claimed as the database failed");
                }
                Ok(_) => return,
                Err(_) => tokio::time::sleep(delay).await,
            }
            delay *= 2;
        }
        tracing::warn!("cannot give back a failed claim; its deliveries are due again after their lease");
    }

    async fn claim_until(
        &self,
        position: &QueuePosition,
        now: i64,
        until: i64,
        limit: i64,
    ) -> Result<Vec<Claim>, StoreError> {
        let claim = if self.is_sqlite() { CLAIM_SQLITE } else { CLAIM_POSTGRES };
        let rows: Vec<ClaimRow> = on_pool!(self, |pool| {
            sqlx::query_as(claim)
                .bind(until)
                .bind(now)
                .bind(limit)
                .bind(position.due_at)
                .bind(position.user_id.as_str())
                .fetch_all(pool)
                .await?
        });
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let users = json_list(rows.iter().map(|row| row.1.as_str()));
        let mut dms: std::collections::HashMap<_, _> = self
            .live_dms_of_list(&users)
            .await?
            .into_iter()
            .map(|dm| ((dm.persona.clone(), dm.user_id.clone()), dm))
            .collect();
        let opted_out = self.opted_out_of(&users).await?;
        let mut claims = Vec::with_capacity(rows.len());
        for (broadcast, user, attempts, queued_at, displayname, persona, due_at) in rows {
            let user_id: OwnedUserId = parse("deliveries.user_id", user)?;
            claims.push(Claim {
                broadcast_id: BroadcastId(broadcast),
                opted_out: opted_out.contains(&user_id),
                dm: dms.remove(&(persona.clone(), user_id.clone())),
                persona,
                user_id,
                attempts,
                queued_at,
                due_at,
                displayname,
            });
        }
        claims.sort_by(|a, b| (a.broadcast_id, &a.user_id).cmp(&(b.broadcast_id, &b.user_id)));
        Ok(claims)
    }

    /// Makes the deliveries whose lease ran out (their worker died) claimable again; how many.
    ///
    /// Not part of every claim: every delivery passes through `sending`, and on PostgreSQL each
    /// leaves an index entry there until the table is vacuumed, so looking for expired leases
    /// reads all of them (37,818 after 36,000 deliveries with autovacuum off): per claim, that
    /// made a broadcast's time grow with the square of its size. The claimer runs it every few
    /// seconds ([`crate::delivery`]).
    pub async fn release_expired_leases(&self) -> Result<u64, StoreError> {
        let released = on_pool!(self, |pool| {
            sqlx::query(
                "UPDATE deliveries SET state = 'pending' WHERE state = 'sending' AND claimed_until < $1",
            )
            .bind(now_ms())
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(released)
    }

    /// Which of `users` (a JSON list) opted out.
    async fn opted_out_of(&self, users: &str) -> Result<std::collections::HashSet<OwnedUserId>, StoreError> {
        let sql = format!("SELECT user_id FROM opt_outs WHERE user_id {}", in_list(self));
        let rows: Vec<(String,)> = on_pool!(self, |pool| sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
            .bind(users)
            .fetch_all(pool)
            .await?);
        rows.into_iter().map(|(user,)| parse("opt_outs.user_id", user)).collect()
    }

    /// A live DM (with the bot or a persona) of each of `users` who has one, in one statement.
    pub async fn live_dms_of(
        &self,
        users: &[OwnedUserId],
    ) -> Result<std::collections::HashMap<OwnedUserId, DmRoom>, StoreError> {
        let dms = self.live_dms_of_list(&json_list(users.iter().map(|user| user.as_str()))).await?;
        Ok(dms.into_iter().map(|dm| (dm.user_id.clone(), dm)).collect())
    }

    /// The live DMs of `users` (a JSON list), with the bot and with every persona.
    async fn live_dms_of_list(&self, users: &str) -> Result<Vec<DmRoom>, StoreError> {
        let sql = format!(
            "SELECT {} FROM dm_rooms WHERE state <> 'retired' AND user_id {}",
            super::super::dm_rooms::COLUMNS,
            in_list(self)
        );
        let rows: Vec<super::super::dm_rooms::Row> =
            on_pool!(self, |pool| sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                .bind(users)
                .fetch_all(pool)
                .await?);
        rows.into_iter().map(super::super::dm_rooms::dm_room).collect()
    }

    /// When the next pending delivery of a running broadcast becomes due, if any is waiting.
    pub async fn next_due_at(&self) -> Result<Option<i64>, StoreError> {
        let (due,): (Option<i64>,) = on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT MIN(d.next_attempt_at) FROM deliveries d JOIN broadcasts b ON b.id = d.broadcast_id
                 WHERE b.state = 'running' AND d.state = 'pending'",
            )
            .fetch_one(pool)
            .await?
        });
        Ok(due)
    }

    /// How many deliveries of running broadcasts wait to be sent (pending, due or not) and are
    /// being sent: the queue depth shown in the metrics.
    pub async fn queue_depth(&self) -> Result<(i64, i64), StoreError> {
        let rows: Vec<(String, i64)> = on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT c.state, CAST(SUM(c.n) AS BIGINT) FROM broadcasts b JOIN delivery_counts c ON c.broadcast_id = b.id
                 WHERE b.state = 'running' AND c.state IN ('pending', 'sending') GROUP BY c.state",
            )
            .fetch_all(pool)
            .await?
        });
        let mut counts = DeliveryCounts::default();
        for (state, count) in rows {
            counts.add(parse("deliveries.state", state)?, count);
        }
        Ok((counts.pending, counts.sending))
    }

    /// Makes every claimed delivery claimable at once: at start-up of a process that is the only
    /// one using the database (SQLite), whatever was `sending` belonged to a process that died.
    pub async fn release_claims(&self) -> Result<u64, StoreError> {
        let released = on_pool!(self, |pool| {
            sqlx::query("UPDATE deliveries SET state = 'pending', claimed_until = 0 WHERE state = 'sending'")
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(released)
    }

    /// Records a delivered message.
    pub async fn mark_delivered(
        &self,
        claim: &Claim,
        room: &RoomId,
        event: &EventId,
    ) -> Result<(), StoreError> {
        self.record(claim, Outcome::delivered(room, event, 0)).await
    }

    /// Puts a delivery back in the queue, due at `next_attempt_at`; this try counts.
    pub async fn retry_delivery(
        &self,
        claim: &Claim,
        next_attempt_at: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        self.record(claim, Outcome::retry(next_attempt_at, error)).await
    }

    /// Puts a delivery back in the queue without counting this try, due at `next_attempt_at`.
    pub async fn release_delivery(
        &self,
        claim: &Claim,
        next_attempt_at: i64,
        reason: &str,
    ) -> Result<(), StoreError> {
        self.record(claim, Outcome::release(next_attempt_at, reason)).await
    }

    /// Ends a delivery as failed or skipped, with the reason shown in `!bc status`.
    pub async fn end_delivery(
        &self,
        claim: &Claim,
        state: DeliveryState,
        reason: &str,
    ) -> Result<(), StoreError> {
        self.record(claim, Outcome::end(state, reason)).await
    }

    async fn record(&self, claim: &Claim, outcome: Outcome) -> Result<(), StoreError> {
        self.record_outcomes(&[(claim.clone(), outcome)]).await
    }

    /// Records the outcomes of a batch of claims in one statement, each only while its row is
    /// still that claim's (being sent, with the claim's attempt): a worker whose lease ran out,
    /// or whose delivery was cancelled meanwhile, changes nothing and is told so in the log. A
    /// copy that went out although its delivery was cancelled meanwhile is recorded as
    /// delivered, as it was: `!bc redact` must find it.
    pub async fn record_outcomes(&self, outcomes: &[(Claim, Outcome)]) -> Result<(), StoreError> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let rows: Vec<serde_json::Value> = outcomes
            .iter()
            .map(|(claim, outcome)| {
                serde_json::json!({
                    "b": claim.broadcast_id.0, "u": claim.user_id, "a": claim.attempts,
                    "state": outcome.state.as_str(), "room": outcome.room, "event": outcome.event,
                    "reason": outcome.reason, "next": outcome.next_attempt_at,
                    "counted": if outcome.counted { claim.attempts } else { claim.attempts - 1 },
                    "rev": outcome.revision,
                })
            })
            .collect();
        let rows = serde_json::Value::from(rows).to_string();
        let sql = if self.is_sqlite() { RECORD_SQLITE } else { RECORD_POSTGRES };
        let recorded = on_pool!(self, |pool| {
            sqlx::query(sql).bind(&rows).bind(now_ms()).execute(pool).await?.rows_affected()
        });
        if recorded < outcomes.len() as u64 {
            tracing::warn!(
                outcomes = outcomes.len(),
                recorded,
                "some outcomes were not recorded: their deliveries were claimed again or cancelled meanwhile"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 25: without statistics SQLite read the due deliveries by scanning the whole index
    /// and sorting (and SQLite 3.40 found the rows to update by the broadcast alone): every claim
    /// read every delivery, 22 ms at 100,000 queued, so a broadcast's time grew with the square
    /// of its size. The claim walks the running broadcasts, and in each the index from its first
    /// due delivery; the rows it took are updated by their rowid.
    #[tokio::test]
    async fn the_sqlite_claim_finds_the_rows_it_takes_by_their_key() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            Store::connect(&format!("sqlite://{}", dir.path().join("bot.db").display()), 1).await.unwrap();
        let Pool::Sqlite(pool) = &*store.pool else { unreachable!("a SQLite store") };
        let plan: Vec<(i64, i64, i64, String)> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {CLAIM_SQLITE}")))
                .bind(0)
                .bind(0)
                .bind(1)
                .fetch_all(pool)
                .await
                .unwrap();
        let details: Vec<&str> = plan.iter().map(|row| row.3.as_str()).collect();
        let updated =
            details.iter().find(|detail| detail.contains(" deliveries ")).expect("the updated table");
        assert_eq!(*updated, "SEARCH deliveries USING INTEGER PRIMARY KEY (rowid=?)", "{details:#?}");
        // The due deliveries are read in the index's order from the claim's position: no scan of
        // the table or the index, no sort.
        assert!(
            details.iter().all(|detail| !detail.starts_with("SCAN d") && !detail.contains("TEMP B-TREE")),
            "{details:#?}"
        );
    }
}
