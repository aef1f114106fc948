//! Who may do what: the `permissions` table of the config, resolved per user.
//!
//! The most specific entry wins: the exact user ID, then the user's server name, then `"*"`.
//! Anyone matched by nothing has [`Level::None`]. This module only answers questions; it never
//! talks to the homeserver.

use std::collections::{BTreeMap, HashMap};

use ruma::{OwnedServerName, OwnedUserId, ServerName, UserId};
use serde::Deserialize;

/// What a user may do, in increasing order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// No access: commands are refused and invites declined.
    None,
    /// May send broadcasts to users and to rooms/spaces where they have power level 50.
    Broadcaster,
    /// May do everything, including inviting the bot into control rooms.
    Admin,
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Level::None => "none",
            Level::Broadcaster => "broadcaster",
            Level::Admin => "admin",
        })
    }
}

/// The resolved permission table.
#[derive(Debug, Clone, Default)]
pub struct Permissions {
    users: HashMap<OwnedUserId, Level>,
    servers: HashMap<OwnedServerName, Level>,
    everyone: Option<Level>,
}

impl Permissions {
    /// Builds the table from the config map; a key that is neither a user ID, a server name nor
    /// `"*"` is returned as the error.
    pub fn new(entries: &BTreeMap<String, Level>) -> Result<Self, String> {
        let mut table = Self::default();
        for (key, level) in entries {
            if key == "*" {
                table.everyone = Some(*level);
            } else if key.starts_with('@') {
                let user = UserId::parse(key.as_str()).map_err(|_| key.clone())?;
                table.users.insert(user, *level);
            } else {
                let server = ServerName::parse(key.as_str()).map_err(|_| key.clone())?;
                table.servers.insert(server, *level);
            }
        }
        Ok(table)
    }

    /// The level of `user`: exact user ID > server name > `"*"` > none.
    pub fn level(&self, user: &UserId) -> Level {
        self.users
            .get(user)
            .or_else(|| self.servers.get(user.server_name()))
            .or(self.everyone.as_ref())
            .copied()
            .unwrap_or(Level::None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(entries: &[(&str, Level)]) -> Permissions {
        Permissions::new(&entries.iter().map(|(k, v)| (k.to_string(), *v)).collect()).unwrap()
    }

    fn user(id: &str) -> OwnedUserId {
        UserId::parse(id).unwrap()
    }

    #[test]
    fn most_specific_entry_wins() {
        let permissions = table(&[
            ("*", Level::Broadcaster),
            ("example.org", Level::None),
            ("@boss:example.org", Level::Admin),
        ]);
        assert_eq!(permissions.level(&user("@boss:example.org")), Level::Admin);
        assert_eq!(permissions.level(&user("@someone:example.org")), Level::None);
        assert_eq!(permissions.level(&user("@guest:other.net")), Level::Broadcaster);
    }

    #[test]
    fn nobody_has_access_by_default() {
        assert_eq!(Permissions::default().level(&user("@a:b.c")), Level::None);
    }

    #[test]
    fn levels_are_ordered() {
        assert!(Level::None < Level::Broadcaster && Level::Broadcaster < Level::Admin);
    }

    #[test]
    fn invalid_keys_are_returned() {
        let entries = [("@no server".to_string(), Level::Admin)].into_iter().collect();
        assert_eq!(Permissions::new(&entries).unwrap_err(), "@no server");
    }
}
