//! The language each recipient chose for the bot's notices to them (`language de` in their DM,
//! with `broadcast.recipient_language: user`).

use ruma::UserId;

use super::{now_ms, Pool, Store, StoreError};
use crate::base::i18n::Language;

impl Store {
    /// Records that `user` wants the bot's notices in `language` (a later choice replaces it).
    pub async fn set_language(&self, user: &UserId, language: Language) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO recipient_languages (user_id, language, set_at) VALUES ($1, $2, $3)
                 ON CONFLICT (user_id) DO UPDATE SET language = excluded.language, set_at = excluded.set_at",
            )
            .bind(user.as_str())
            .bind(language.code())
            .bind(now_ms())
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The language `user` chose, if they chose one the bot (still) speaks.
    pub async fn language(&self, user: &UserId) -> Result<Option<Language>, StoreError> {
        let code: Option<String> = on_pool!(self, |pool| {
            sqlx::query_scalar("SELECT language FROM recipient_languages WHERE user_id = $1")
                .bind(user.as_str())
                .fetch_optional(pool)
                .await?
        });
        Ok(code.as_deref().and_then(Language::of))
    }
}

#[cfg(test)]
mod tests {
    use ruma::user_id;

    use super::*;

    #[tokio::test]
    async fn a_chosen_language_is_kept_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            Store::connect(&format!("sqlite://{}", dir.path().join("bot.db").display()), 2).await.unwrap();
        let alice = user_id!("@alice:example.org");
        assert_eq!(store.language(alice).await.unwrap(), None);
        store.set_language(alice, Language::De).await.unwrap();
        assert_eq!(store.language(alice).await.unwrap(), Some(Language::De));
        store.set_language(alice, Language::En).await.unwrap();
        assert_eq!(store.language(alice).await.unwrap(), Some(Language::En));
        assert_eq!(store.language(user_id!("@bob:example.org")).await.unwrap(), None);
    }
}
