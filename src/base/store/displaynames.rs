//! The display name each user was last seen with, from their member events in the DMs and the
//! profile look-ups of the audience: a personalised copy for someone seen before needs no
//! request for their name. An empty name means they have none.

use std::collections::HashMap;

use ruma::OwnedUserId;

use super::{in_list, json_list, now_ms, parse, Pool, Store, StoreError};

impl Store {
    /// The display names seen of those of `users` that were seen (`""`: none set).
    pub async fn displaynames_of(
        &self,
        users: &[OwnedUserId],
    ) -> Result<HashMap<OwnedUserId, String>, StoreError> {
        if users.is_empty() {
            return Ok(HashMap::new());
        }
        let sql = format!("SELECT user_id, displayname FROM displaynames WHERE user_id {}", in_list(self));
        let list = json_list(users.iter().map(|user| user.as_str()));
        let rows: Vec<(String, String)> = on_pool!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(&list).fetch_all(pool).await?
        });
        rows.into_iter().map(|(user, name)| Ok((parse("displaynames.user_id", user)?, name))).collect()
    }

    /// Remembers the display names `seen` just now (`None`: none set), replacing older ones.
    pub async fn remember_displaynames(
        &self,
        seen: &[(OwnedUserId, Option<String>)],
    ) -> Result<(), StoreError> {
        if seen.is_empty() {
            return Ok(());
        }
        // One row per user, the last seen (PostgreSQL refuses to update a row twice in one statement).
        let last: HashMap<&OwnedUserId, &str> =
            seen.iter().map(|(user, name)| (user, name.as_deref().unwrap_or_default())).collect();
        let rows: Vec<serde_json::Value> =
            last.into_iter().map(|(user, name)| serde_json::json!([user, name])).collect();
        let rows = serde_json::Value::from(rows).to_string();
        let sql = if self.is_sqlite() {
            "INSERT INTO displaynames (user_id, displayname, seen_at)
             SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), $2 FROM json_each($1)
             WHERE true ON CONFLICT (user_id) DO UPDATE SET displayname = excluded.displayname, seen_at = excluded.seen_at"
        } else {
            "INSERT INTO displaynames (user_id, displayname, seen_at)
             SELECT v->>0, v->>1, $2 FROM jsonb_array_elements(($1::text)::jsonb) v
             ON CONFLICT (user_id) DO UPDATE SET displayname = excluded.displayname, seen_at = excluded.seen_at"
        };
        on_pool!(self, |pool| {
            sqlx::query(sql).bind(&rows).bind(now_ms()).execute(pool).await?;
        });
        Ok(())
    }
}
