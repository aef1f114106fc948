//! The configuration file: its shape, its defaults and its validation.
//!
//! Every key is documented in `config.example.yaml` at the repository root, which is embedded as
//! [`EXAMPLE`] and parsed by a test. Loading never panics: every failure is a [`ConfigError`]
//! whose text names the key and the fix, printed as one line by `main`.

mod checks;
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use ruma::{OwnedDeviceId, OwnedMxcUri, OwnedServerName, OwnedUserId, UserId};
use serde::Deserialize;
use url::Url;

use crate::base::{
    i18n::Language,
    permissions::{Level, Permissions},
};

mod encryption;
pub use encryption::{DmEncryption, EncryptionConfig};

/// The documented example configuration (`config.example.yaml`).
pub const EXAMPLE: &str = include_str!("../../../config.example.yaml");

/// The placeholder the example uses for `homeserver.domain`.
const PLACEHOLDER_DOMAIN: &str = "example.org";
/// The placeholder the example uses for tokens not generated yet.
const PLACEHOLDER_TOKEN: &str = "generate";

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source} (pass the right file with -c)")]
    Read { path: PathBuf, source: std::io::Error },
    /// The YAML is malformed, has an unknown key or a value of the wrong type.
    #[error("config {path}: {message}")]
    Syntax { path: PathBuf, message: String },
    /// A value parsed but cannot be used.
    #[error("config: {key} {problem}")]
    Invalid { key: String, problem: String },
}

impl ConfigError {
    fn invalid(key: impl Into<String>, problem: impl Into<String>) -> Self {
        Self::Invalid { key: key.into(), problem: problem.into() }
    }
}

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub homeserver: HomeserverConfig,
    pub appservice: AppserviceConfig,
    #[serde(default)]
    pub database: DatabaseConfig,
    #[serde(default)]
    pub broadcast: BroadcastConfig,
    #[serde(default)]
    pub permissions: BTreeMap<String, Level>,
    /// Senders besides the bot, by the name `--as NAME` uses.
    #[serde(default)]
    pub personas: BTreeMap<String, PersonaConfig>,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub logging: LoggingConfig,
    #[serde(default)]
    pub encryption: EncryptionConfig,
    /// The language of every text the bot writes (`en` or `de`).
    #[serde(default)]
    pub language: Language,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HomeserverConfig {
    pub address: Url,
    pub domain: OwnedServerName,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppserviceConfig {
    pub address: Url,
    #[serde(default = "default_hostname")]
    pub hostname: String,
    #[serde(default = "default_port")]
    pub port: u16,
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    #[serde(default = "default_id")]
    pub id: String,
    pub as_token: String,
    pub hs_token: String,
    #[serde(default)]
    pub bot: BotConfig,
    #[serde(default = "default_device_id")]
    pub device_id: OwnedDeviceId,
    /// MSC4190: the homeserver delegates logins (Matrix Authentication Service), so the bot and
    /// its personas never log in; their devices are created as the appservice
    /// (`PUT /devices/{id}?user_id=…`). The registration needs `io.element.msc4190: true`.
    #[serde(default)]
    pub msc4190: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BotConfig {
    #[serde(default = "default_bot_username")]
    pub username: String,
    #[serde(default)]
    pub displayname: String,
    #[serde(default)]
    pub avatar: String,
}

/// A persona: a user of the bot's namespace (`@<bot>_…`) that broadcasts may be sent as.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonaConfig {
    pub username: String,
    #[serde(default)]
    pub displayname: String,
    #[serde(default)]
    pub avatar: String,
    /// Who may send as this persona (`--as`): levels (`admin`, `broadcaster`: that level or
    /// higher) and user IDs. Default: admins only.
    #[serde(default = "default_persona_allowed")]
    pub allowed: Vec<String>,
}

fn default_persona_allowed() -> Vec<String> {
    vec!["admin".to_owned()]
}

/// The levels a persona's `allowed` list may name.
const PERSONA_LEVELS: [(&str, Level); 2] = [("admin", Level::Admin), ("broadcaster", Level::Broadcaster)];

impl BotConfig {
    /// The display name and avatar to set; `None` for those left empty (left as they are).
    pub fn profile(&self) -> (Option<&str>, Option<OwnedMxcUri>) {
        profile(&self.displayname, &self.avatar)
    }
}

impl PersonaConfig {
    /// The display name and avatar to set; `None` for those left empty (left as they are).
    pub fn profile(&self) -> (Option<&str>, Option<OwnedMxcUri>) {
        profile(&self.displayname, &self.avatar)
    }

    /// Whether `user`, of `level`, may send as this persona.
    pub fn allows(&self, user: &UserId, level: Level) -> bool {
        self.allowed.iter().any(|entry| match PERSONA_LEVELS.iter().find(|(name, _)| name == entry) {
            Some((_, needed)) => level >= *needed,
            None => entry == user.as_str(),
        })
    }
}

fn profile<'a>(displayname: &'a str, avatar: &str) -> (Option<&'a str>, Option<OwnedMxcUri>) {
    let displayname = Some(displayname).filter(|name| !name.is_empty());
    (displayname, Some(avatar).filter(|avatar| !avatar.is_empty()).map(OwnedMxcUri::from))
}

impl Default for BotConfig {
    fn default() -> Self {
        Self { username: default_bot_username(), displayname: "Broadcast".into(), avatar: String::new() }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    #[serde(default = "default_database_uri")]
    pub uri: String,
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self { uri: default_database_uri(), max_connections: default_max_connections() }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BroadcastConfig {
    #[serde(default = "default_command_prefix")]
    pub command_prefix: String,
    #[serde(default)]
    pub control_rooms: Vec<String>,
    #[serde(default = "default_confirm_above")]
    pub confirm_above: u64,
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// A delivery not sent this many hours after it became due fails (outages do not use up
    /// `max_attempts`, so this bounds them).
    #[serde(default = "default_give_up_after_hours")]
    pub give_up_after_hours: u64,
    #[serde(default = "default_exclude")]
    pub exclude: Vec<String>,
    #[serde(default = "default_true")]
    pub relay_replies: bool,
    /// Whether replies written in an encrypted DM may be relayed into a control room that is not
    /// encrypted (where they, and the keys of their attachments, would be stored in clear).
    #[serde(default)]
    pub relay_encrypted_to_plain_rooms: bool,
    /// The words that switch broadcasts off and on; by default those of `language`.
    #[serde(default)]
    pub stop_keywords: Option<Vec<String>>,
    #[serde(default)]
    pub start_keywords: Option<Vec<String>>,
    /// Whose language the bot's notices to a recipient are in: the config's, or the one the
    /// recipient chose (`language en` / `sprache de` in their DM).
    #[serde(default)]
    pub recipient_language: RecipientLanguage,
    #[serde(default = "default_new_user_poll_seconds")]
    pub new_user_poll_seconds: u64,
    /// The time zone of `--at` times and of the times the bot shows (an IANA name).
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// The persona broadcasts are sent as without `--as`; empty: the bot.
    #[serde(default)]
    pub default_persona: String,
}

impl Default for BroadcastConfig {
    fn default() -> Self {
        Self {
            command_prefix: default_command_prefix(),
            control_rooms: Vec::new(),
            confirm_above: default_confirm_above(),
            concurrency: default_concurrency(),
            max_attempts: default_max_attempts(),
            exclude: default_exclude(),
            relay_replies: true,
            relay_encrypted_to_plain_rooms: false,
            stop_keywords: None,
            start_keywords: None,
            recipient_language: RecipientLanguage::default(),
            new_user_poll_seconds: default_new_user_poll_seconds(),
            give_up_after_hours: default_give_up_after_hours(),
            timezone: default_timezone(),
            default_persona: String::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Where `GET /metrics` is served: a listener of its own, never the appservice port.
    #[serde(default = "default_metrics_listen")]
    pub listen: std::net::SocketAddr,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self { enabled: true, listen: default_metrics_listen() }
    }
}

fn default_metrics_listen() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 29390))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggingConfig {
    #[serde(default = "default_log_level")]
    pub level: String,
    #[serde(default)]
    pub format: LogFormat,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self { level: default_log_level(), format: LogFormat::default() }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

fn default_hostname() -> String {
    "127.0.0.1".into()
}
fn default_port() -> u16 {
    29340
}
fn default_max_body_bytes() -> usize {
    10 * 1024 * 1024
}
fn default_id() -> String {
    "broadcast".into()
}
fn default_device_id() -> OwnedDeviceId {
    "BROADCAST".into()
}
fn default_bot_username() -> String {
    "broadcast".into()
}
fn default_database_uri() -> String {
    "sqlite://matrix-broadcast.db".into()
}
fn default_max_connections() -> u32 {
    8
}
fn default_command_prefix() -> String {
    "!bc".into()
}
fn default_timezone() -> String {
    "UTC".into()
}

fn default_confirm_above() -> u64 {
    10
}
fn default_concurrency() -> usize {
    8
}
fn default_give_up_after_hours() -> u64 {
    24
}
fn default_max_attempts() -> u32 {
    8
}
/// `broadcast.exclude`'s default: user IDs ending in `-bot` or `_bot`, not every name that
/// ends in "bot" (`@talbot:…` is a person).
pub const DEFAULT_EXCLUDE: &str = "@[^:]+[-_]bot:.+";

fn default_exclude() -> Vec<String> {
    vec![DEFAULT_EXCLUDE.into()]
}
fn default_new_user_poll_seconds() -> u64 {
    30
}
fn default_true() -> bool {
    true
}
fn default_log_level() -> String {
    "info".into()
}

impl Config {
    /// The unit tests' config: `example.org`, a SQLite database in `dir`, `@admin:example.org`
    /// admin, everyone on example.org a broadcaster; `extra` (whole top-level sections) appended.
    #[cfg(test)]
    pub fn for_unit_tests(dir: &Path, extra: &str) -> Config {
        let text = format!(
            "homeserver:\n  address: http://fake.example.org\n  domain: example.org\n\
             appservice:\n  address: http://127.0.0.1:29340\n  as_token: as-token-for-unit-tests-0123456789\n  hs_token: hs-token-for-unit-tests-0123456789\n\
             database:\n  uri: sqlite://{}\n  max_connections: 4\n\
             permissions:\n  \"*\": none\n  \"example.org\": broadcaster\n  \"@nobody:example.org\": none\n  \
             \"@admin:example.org\": admin\n{extra}",
            dir.join("bot.db").display()
        );
        Config::parse(&text, Path::new("unit-test.yaml")).expect("test config parses")
    }

    /// Reads and parses a config file, without the start-up checks of [`Config::validate`].
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        Self::parse(&text, path)
    }

    /// Parses config text; `path` only names the source in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let deserializer = serde_yaml::Deserializer::from_str(text);
        serde_path_to_error::deserialize(deserializer).map_err(|error| {
            let key = error.path().to_string();
            let message = error.into_inner().to_string();
            // serde_yaml usually names the key itself; add it where it does not.
            let named = message
                .split(": ")
                .next()
                .is_some_and(|first| key == first || key.starts_with(&format!("{first}.")));
            let message = if key == "." || named { message } else { format!("{key}: {message}") };
            ConfigError::Syntax { path: path.to_owned(), message }
        })
    }

    /// Reads, parses and validates: what `run` and `check-config` use.
    pub fn load_validated(path: &Path) -> Result<Self, ConfigError> {
        let config = Self::load(path)?;
        config.validate()?;
        Ok(config)
    }

    /// `@<bot.username>:<domain>`.
    pub fn bot_user_id(&self) -> Result<OwnedUserId, ConfigError> {
        UserId::parse(format!("@{}:{}", self.appservice.bot.username, self.homeserver.domain)).map_err(|_| {
            ConfigError::invalid(
                "appservice.bot.username",
                "is not a valid localpart: use lower-case letters, digits and ._=-/",
            )
        })
    }

    /// `@<username>:<domain>` of persona `name`, if there is one by that name.
    pub fn persona_user_id(&self, name: &str) -> Option<OwnedUserId> {
        let persona = self.personas.get(name)?;
        UserId::parse(format!("@{}:{}", persona.username, self.homeserver.domain)).ok()
    }

    /// The persona broadcasts are sent as without `--as`; `None`: the bot.
    pub fn default_persona(&self) -> Option<&str> {
        Some(self.broadcast.default_persona.as_str()).filter(|name| !name.is_empty())
    }

    /// The resolved permission table.
    pub fn permissions(&self) -> Result<Permissions, ConfigError> {
        Permissions::new(&self.permissions).map_err(|key| {
            ConfigError::invalid(format!("permissions.{key:?}"), "must be a user ID, a server name or \"*\"")
        })
    }

    /// The address the HTTP listener binds to.
    pub fn listen_address(&self) -> String {
        format!("{}:{}", self.appservice.hostname, self.appservice.port)
    }
}

/// Whose language the bot's notices to a recipient are in.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RecipientLanguage {
    /// `language:` of the config.
    #[default]
    Config,
    /// The recipient's choice (`language en`, `sprache de`), else the config's.
    User,
}

impl BroadcastConfig {
    /// The words that switch broadcasts off: configured, or `stop` (and `stopp` in German).
    pub fn stop_words(&self, language: Language) -> Vec<String> {
        let default = match language {
            Language::En => vec!["stop"],
            Language::De => vec!["stopp", "stop"],
        };
        self.stop_keywords.clone().unwrap_or_else(|| default.into_iter().map(str::to_owned).collect())
    }

    /// The words that switch broadcasts on again: configured, or `start`.
    pub fn start_words(&self) -> Vec<String> {
        self.start_keywords.clone().unwrap_or_else(|| vec!["start".to_owned()])
    }

    /// The configured time zone (checked when the config was loaded; UTC otherwise).
    pub fn time_zone(&self) -> jiff::tz::TimeZone {
        crate::base::when::zone(&self.timezone).unwrap_or(jiff::tz::TimeZone::UTC)
    }
}

#[cfg(test)]
mod tests;
