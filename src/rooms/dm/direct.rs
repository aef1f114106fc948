//! The bot's (or a persona's) `m.direct`: rewritten while its DMs change, a batch at a time, and the DMs a worker process made.

use super::*;

/// How long `m.direct` changes are gathered before the account data is rewritten.
const DIRECT_COALESCE: Duration = Duration::from_secs(2);
/// How often the DM table is looked at for DMs made by other processes (PostgreSQL).
const DIRECT_POLL: Duration = Duration::from_secs(5);
/// A rewrite of `m.direct` that took `t` is followed by at least this many times `t` without one.
const DIRECT_COST_FACTOR: u32 = 100;

impl Dms {
    /// Writes the owner's `m.direct` account data from the store: every ready DM. The whole object
    /// is rewritten each time, so calls are coalesced by [`Dms::run_direct_writer`].
    async fn write_direct(&self) -> Result<(), DmError> {
        let mut direct: serde_json::Map<String, serde_json::Value> = serde_json::Map::new();
        for (user, room) in self.store.ready_dms(self.persona()).await? {
            if let Some(rooms) =
                direct.entry(user.to_string()).or_insert_with(|| serde_json::json!([])).as_array_mut()
            {
                rooms.push(serde_json::Value::String(room.to_string()));
            }
        }
        self.homeserver.set_direct(serde_json::Value::Object(direct)).await?;
        Ok(())
    }

    /// Completes once the DM table differs from `seen` (looked at every [`DIRECT_POLL`]); never
    /// on SQLite, which only this process uses.
    async fn changed_elsewhere(&self, seen: &Option<(i64, i64, i64)>) {
        if self.store.is_sqlite() {
            return std::future::pending().await;
        }
        loop {
            tokio::time::sleep(DIRECT_POLL).await;
            let now = self.fingerprint().await;
            if now.is_some() && now != *seen {
                return;
            }
        }
    }

    /// See [`Store::dm_rooms_fingerprint`]; `None` when the database does not answer.
    async fn fingerprint(&self) -> Option<(i64, i64, i64)> {
        self.store.dm_rooms_fingerprint(self.persona()).await.ok()
    }

    /// Completes once the DM table holds a DM of these DMs' owner (made by another process).
    pub async fn until_made_elsewhere(&self) {
        if self.store.is_sqlite() {
            return std::future::pending().await;
        }
        while self.fingerprint().await.is_none_or(|(all, _, _)| all == 0) {
            tokio::time::sleep(DIRECT_POLL).await;
        }
    }

    /// Rewrites `m.direct` while DMs change, until `stopped`: changes are gathered for two
    /// seconds, and after a rewrite that took `t` the next waits at least 100 × `t`, so that
    /// the rewrites cost the homeserver about 1% of its time whatever the number of DMs. (On
    /// Synapse 1.163 one rewrite took 0.02 s at 1,000 DMs, 0.04 s at 10,000 and 0.31 s at
    /// 100,000, 7.6 MB: `bench/run`.)
    ///
    /// On PostgreSQL, delivery workers in other processes make DMs too: they never write
    /// `m.direct` (one writer, no lost updates), and this one looks at the DM table every few
    /// seconds and rewrites when it changed.
    pub async fn run_direct_writer(&self, mut stopped: watch::Receiver<bool>) {
        self.direct_changed(); // what changed after the last rewrite before a stop
        let mut seen = None;
        loop {
            tokio::select! {
                _ = self.direct_dirty.notified() => {}
                _ = self.changed_elsewhere(&seen) => {}
                _ = stopped.wait_for(|stop| *stop) => return,
            }
            tokio::select! {
                _ = tokio::time::sleep(DIRECT_COALESCE) => {}
                _ = stopped.wait_for(|stop| *stop) => {}
            }
            let started = tokio::time::Instant::now();
            seen = self.fingerprint().await;
            if let Err(error) = self.write_direct().await {
                tracing::warn!(%error, "cannot update the bot's m.direct; will retry with the next change");
                self.direct_changed();
            }
            let rest = (started.elapsed() * DIRECT_COST_FACTOR).saturating_sub(DIRECT_COALESCE);
            tokio::select! {
                _ = tokio::time::sleep(rest) => {}
                _ = stopped.wait_for(|stop| *stop) => {}
            }
            if *stopped.borrow() {
                return;
            }
        }
    }
}
