//! Who is never addressed, whatever the audience: the bot, bridged and appservice accounts, `broadcast.exclude` and `--except`.

use super::*;

/// Who is never addressed, whatever the audience.
pub struct Exclusions<'a> {
    bot: &'a UserId,
    patterns: Vec<Regex>,
    except: &'a [OwnedUserId],
    /// The admin API refused a look-up in this run (the bot is no server admin): ask no more.
    not_server_admin: std::sync::atomic::AtomicBool,
}

impl<'a> Exclusions<'a> {
    /// The bot and its personas, users matching `patterns` (`broadcast.exclude`) and `except`.
    pub fn new(bot: &'a UserId, patterns: &[String], except: &'a [OwnedUserId]) -> Self {
        let patterns =
            patterns.iter().filter_map(|pattern| Regex::new(&format!("^(?:{pattern})$")).ok()).collect();
        Self { bot, patterns, except, not_server_admin: Default::default() }
    }

    /// The `members` that may be addressed: not excluded, and not accounts of another
    /// application service (bridged ghosts). The Synapse admin API tells that for local
    /// accounts, and the store keeps the answer (it never changes), so an account is looked up
    /// once ever, eight at a time. Without server-admin rights it cannot be told, and the
    /// member is addressed.
    pub async fn addressable(
        &self,
        store: &Store,
        homeserver: &dyn Homeserver,
        members: &[Recipient],
    ) -> Result<Vec<Recipient>, StoreError> {
        let members: Vec<&Recipient> = members.iter().filter(|member| !self.excludes(&member.user)).collect();
        let local: Vec<OwnedUserId> = members
            .iter()
            .filter(|member| member.user.server_name() == self.bot.server_name())
            .map(|member| member.user.clone())
            .collect();
        let mut bridged = store.bridged_accounts(&local).await?;
        let unknown: Vec<OwnedUserId> =
            local.into_iter().filter(|user| !bridged.contains_key(user)).collect();
        let found = self.look_up_bridged(homeserver, unknown).await;
        store.remember_accounts(&found).await?;
        bridged.extend(found);
        let addressed =
            members.into_iter().filter(|member| !bridged.get(&member.user).copied().unwrap_or(false));
        Ok(addressed.cloned().collect())
    }

    /// Whether each of `users` is an account of an application service, as far as the admin
    /// API tells (those it does not are left out of the answer). The first is asked alone: when
    /// it finds that the bot is no server admin, nobody else is asked.
    async fn look_up_bridged(
        &self,
        homeserver: &dyn Homeserver,
        users: Vec<OwnedUserId>,
    ) -> Vec<(OwnedUserId, bool)> {
        let mut users = users.into_iter();
        let Some(first) = users.next() else { return Vec::new() };
        let mut found: Vec<_> = self.look_up_one(homeserver, first).await.into_iter().collect();
        let rest: Vec<_> = stream::iter(users)
            .map(|user: OwnedUserId| self.look_up_one(homeserver, user))
            .buffered(PROFILE_LOOKUPS)
            .filter_map(std::future::ready)
            .collect()
            .await;
        found.extend(rest);
        found
    }

    async fn look_up_one(
        &self,
        homeserver: &dyn Homeserver,
        user: OwnedUserId,
    ) -> Option<(OwnedUserId, bool)> {
        if self.not_server_admin.load(std::sync::atomic::Ordering::Relaxed) {
            return None;
        }
        match homeserver.admin_user(&user).await {
            Ok(account) => Some((user, account.appservice_id.is_some())),
            Err(error) if error.is_not_server_admin() => {
                self.not_server_admin.store(true, std::sync::atomic::Ordering::Relaxed);
                None
            }
            Err(error) => {
                tracing::warn!(%error, %user, "cannot look up an account");
                None
            }
        }
    }

    /// Whether `user` must be left out.
    pub fn excludes(&self, user: &UserId) -> bool {
        is_own_user(self.bot, user)
            || self.except.iter().any(|except| except == user)
            || self.patterns.iter().any(|pattern| pattern.is_match(user.as_str()))
    }

    /// Whether a local account from the admin user list may be addressed. The list does not say
    /// which accounts belong to application services (bridges); those never logged in, so only
    /// such accounts are looked up one by one.
    pub async fn addresses_account(&self, homeserver: &dyn Homeserver, account: &AdminUser) -> bool {
        if self.excludes_account(account) {
            return false;
        }
        if account.last_seen_ts.is_none() {
            match homeserver.admin_user(&account.name).await {
                Ok(full) => return !self.excludes_account(&full),
                Err(error) => tracing::warn!(%error, user = %account.name, "cannot look up an account"),
            }
        }
        true
    }

    /// Whether a local account must be left out (guests, deactivated, bots, support, and
    /// accounts of application services).
    fn excludes_account(&self, account: &AdminUser) -> bool {
        account.is_guest
            || account.deactivated
            || account.user_type.is_some()
            || account.appservice_id.is_some()
            || self.excludes(&account.name)
    }
}
