//! Who is never addressed, whatever the audience: the bot, bridged and appservice accounts, `broadcast.exclude` and `--except`.

use super::*;

/// From how many accounts not known yet the user list is read, rather than asking for each.
const LIST_FROM: usize = 100;

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
    /// once ever: through the user list when there are many, else one by one, eight at a time.
    /// Without server-admin rights it cannot be told, and the member is addressed.
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
    /// API tells (those it does not are left out of the answer). Many are first found in the
    /// user list (see [`Self::seen_in_list`]); the rest are asked one by one. The first is asked
    /// alone: when it finds that the bot is no server admin, nobody else is asked.
    async fn look_up_bridged(
        &self,
        homeserver: &dyn Homeserver,
        users: Vec<OwnedUserId>,
    ) -> Vec<(OwnedUserId, bool)> {
        let (mut found, users) = match users.len() >= LIST_FROM {
            true => self.seen_in_list(homeserver, users).await,
            false => (Vec::new(), users),
        };
        found.extend(self.ask_each(homeserver, users).await);
        found
    }

    /// Reads the user list, a page at a time, for `users`: those who have logged in are no
    /// application service's (such accounts never log in). Returns them as not bridged, and
    /// the rest (never seen, or not listed: guests, deactivated) in their order, to be asked one
    /// by one. A page of 500 answers for 500 accounts, where asking for each costs a request.
    async fn seen_in_list(
        &self,
        homeserver: &dyn Homeserver,
        users: Vec<OwnedUserId>,
    ) -> (Vec<(OwnedUserId, bool)>, Vec<OwnedUserId>) {
        let mut wanted: std::collections::HashSet<&OwnedUserId> = users.iter().collect();
        let mut seen = std::collections::HashSet::new();
        let mut pages = AccountPages::new(homeserver, false);
        while !wanted.is_empty() {
            match pages.next().await {
                Ok(Some(page)) => {
                    let logged_in = page.into_iter().filter(|account| account.last_seen_ts.is_some());
                    seen.extend(
                        logged_in.filter(|account| wanted.remove(&account.name)).map(|account| account.name),
                    );
                }
                Ok(None) => break,
                Err(error) if error.is_not_server_admin() => {
                    self.not_server_admin.store(true, std::sync::atomic::Ordering::Relaxed);
                    break;
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot read the user list; asking for each account");
                    break;
                }
            }
        }
        let (seen, rest): (Vec<_>, Vec<_>) = users.into_iter().partition(|user| seen.contains(user));
        (seen.into_iter().map(|user| (user, false)).collect(), rest)
    }

    /// Asks the admin API for each of `users`, a few at a time.
    async fn ask_each(
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
