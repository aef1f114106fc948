//! Local accounts that belong to another application service (bridged ghosts), as the Synapse
//! admin API told: an account's appservice never changes, so each is looked up once ever.

use std::collections::HashMap;

use ruma::OwnedUserId;

use super::{in_list, json_list, parse, Pool, Store, StoreError};

impl Store {
    /// Whether each of `users` that was looked up before is bridged.
    pub async fn bridged_accounts(
        &self,
        users: &[OwnedUserId],
    ) -> Result<HashMap<OwnedUserId, bool>, StoreError> {
        if users.is_empty() {
            return Ok(HashMap::new());
        }
        let sql = format!("SELECT user_id, bridged FROM accounts WHERE user_id {}", in_list(self));
        let list = json_list(users.iter().map(|user| user.as_str()));
        let rows: Vec<(String, i64)> = on_pool!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(&list).fetch_all(pool).await?
        });
        rows.into_iter().map(|(user, bridged)| Ok((parse("accounts.user_id", user)?, bridged != 0))).collect()
    }

    /// Remembers what the admin API told of `accounts`: (user, bridged).
    pub async fn remember_accounts(&self, accounts: &[(OwnedUserId, bool)]) -> Result<(), StoreError> {
        if accounts.is_empty() {
            return Ok(());
        }
        let rows: Vec<serde_json::Value> =
            accounts.iter().map(|(user, bridged)| serde_json::json!([user, i64::from(*bridged)])).collect();
        let rows = serde_json::Value::from(rows).to_string();
        let sql = if self.is_sqlite() {
            "INSERT INTO accounts (user_id, bridged)
             SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each($1)
             WHERE true ON CONFLICT (user_id) DO NOTHING"
        } else {
            "INSERT INTO accounts (user_id, bridged)
             SELECT v->>0, (v->>1)::bigint FROM jsonb_array_elements(($1::text)::jsonb) v
             ON CONFLICT (user_id) DO NOTHING"
        };
        on_pool!(self, |pool| {
            sqlx::query(sql).bind(&rows).execute(pool).await?;
        });
        Ok(())
    }
}
