//! `encryption:`: end-to-end encryption on the bot's own device.

use std::path::PathBuf;

use serde::Deserialize;

use super::{ConfigError, PLACEHOLDER_TOKEN};

/// The shortest pickle key accepted: it encrypts the crypto store, so it must be a secret.
pub const MIN_PICKLE_KEY: usize = 32;

/// The crypto store's directory when `encryption.store` is not set.
const DEFAULT_STORE: &str = "matrix-broadcast-crypto";

/// How the bot makes new DMs when encryption is on.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DmEncryption {
    #[default]
    Encrypted,
    Plain,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptionConfig {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub default_dm: DmEncryption,
    /// Turn existing plain DMs encrypted before their next broadcast.
    #[serde(default)]
    pub upgrade_dms: bool,
    /// The crypto store's directory (an SQLite database inside); beside the SQLite database when unset.
    #[serde(default)]
    pub store: Option<PathBuf>,
    /// Encrypts the crypto store.
    #[serde(default)]
    pub pickle_key: String,
}

impl EncryptionConfig {
    /// Whether the bot makes its new DMs encrypted.
    pub fn encrypts_new_dms(&self) -> bool {
        self.enabled && self.default_dm == DmEncryption::Encrypted
    }

    /// The crypto store's path: `store`, or a file beside the SQLite database (`database_uri`),
    /// or in the working directory when the database is PostgreSQL.
    pub fn store_path(&self, database_uri: &str) -> PathBuf {
        if let Some(store) = &self.store {
            return store.clone();
        }
        let sqlite_file =
            database_uri.strip_prefix("sqlite://").or_else(|| database_uri.strip_prefix("sqlite:"));
        let directory = sqlite_file
            .map(|file| PathBuf::from(file.split('?').next().unwrap_or(file)))
            .and_then(|file| file.parent().map(PathBuf::from))
            .unwrap_or_default();
        directory.join(DEFAULT_STORE)
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !self.enabled {
            return Ok(());
        }
        let key = &self.pickle_key;
        if key.is_empty() || key == PLACEHOLDER_TOKEN {
            return Err(ConfigError::invalid(
                "encryption.pickle_key",
                "is not set: it encrypts the crypto store (generate-registration fills in a random one, or \
                 use `openssl rand -hex 32`)",
            ));
        }
        if key.chars().count() < MIN_PICKLE_KEY {
            return Err(ConfigError::invalid(
                "encryption.pickle_key",
                format!("is too short: use at least {MIN_PICKLE_KEY} random characters (e.g. `openssl rand -hex 32`)"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enabled(pickle_key: &str) -> EncryptionConfig {
        EncryptionConfig { enabled: true, pickle_key: pickle_key.into(), ..EncryptionConfig::default() }
    }

    #[test]
    fn a_missing_or_short_pickle_key_is_refused_with_the_fix() {
        for key in ["", "generate"] {
            let error = enabled(key).validate().unwrap_err().to_string();
            assert!(error.contains("encryption.pickle_key is not set"), "{error}");
        }
        let error = enabled("short").validate().unwrap_err().to_string();
        assert!(error.contains("too short: use at least 32"), "{error}");
        enabled(&"k".repeat(32)).validate().expect("32 characters are enough");
        EncryptionConfig::default().validate().expect("no key is needed while encryption is off");
    }

    #[test]
    fn the_store_is_beside_the_sqlite_database_by_default() {
        let config = EncryptionConfig::default();
        assert_eq!(
            config.store_path("sqlite:///var/lib/bc/bot.db"),
            PathBuf::from("/var/lib/bc/matrix-broadcast-crypto")
        );
        assert_eq!(config.store_path("sqlite://bot.db?mode=rwc"), PathBuf::from("matrix-broadcast-crypto"));
        assert_eq!(config.store_path("postgres://db/bc"), PathBuf::from("matrix-broadcast-crypto"));
        let chosen = EncryptionConfig { store: Some("/secure/crypto.db".into()), ..config };
        assert_eq!(chosen.store_path("postgres://db/bc"), PathBuf::from("/secure/crypto.db"));
    }
}
