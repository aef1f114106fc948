//! What `check-config` and the start check in a config: tokens, the domain, personas, ranges and URLs of each section.

use super::*;

impl Config {
    /// Everything that must hold before the bot may start. Placeholders are refused by name.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.check_domain()?;
        check_http_url("homeserver.address", &self.homeserver.address)?;
        self.appservice.validate()?;
        self.bot_user_id()?;
        self.database.validate()?;
        self.broadcast.validate()?;
        self.check_personas()?;
        self.encryption.validate()?;
        self.check_permissions()?;
        let metrics = self.metrics.listen;
        if self.metrics.enabled && metrics.port() != 0 && metrics.port() == self.appservice.port {
            return Err(ConfigError::invalid(
                "metrics.listen",
                "uses appservice.port: metrics need a port of their own (e.g. 127.0.0.1:29390)",
            ));
        }
        tracing_subscriber::EnvFilter::try_new(&self.logging.level).map_err(|error| {
            ConfigError::invalid(
                "logging.level",
                format!("is not a valid filter ({error}); try info or debug"),
            )
        })?;
        Ok(())
    }

    /// Refuses the example's placeholder domain (also checked by `generate-registration`).
    pub fn check_domain(&self) -> Result<(), ConfigError> {
        if self.homeserver.domain.as_str() == PLACEHOLDER_DOMAIN {
            return Err(ConfigError::invalid(
                "homeserver.domain",
                "is still example.org: set it to your homeserver's server_name",
            ));
        }
        Ok(())
    }

    /// The permission table parses, names no user or server of the example's placeholder
    /// domain (still there when only `homeserver.domain` was edited), and names an admin: a
    /// bot that nobody may control only declines invites.
    fn check_permissions(&self) -> Result<(), ConfigError> {
        self.permissions()?;
        let placeholder = |key: &str| key.rsplit(':').next() == Some(PLACEHOLDER_DOMAIN);
        if let Some(key) = self.permissions.keys().find(|key| placeholder(key)) {
            return Err(ConfigError::invalid(
                format!("permissions.{key:?}"),
                format!(
                    "is the example's placeholder: name your own admins and servers (e.g. \"@you:{}\": admin)",
                    self.homeserver.domain
                ),
            ));
        }
        if !self.permissions.values().any(|level| *level == Level::Admin) {
            return Err(ConfigError::invalid(
                "permissions",
                format!(
                    "names no admin: nobody could control the bot; add one (e.g. \"@you:{}\": admin)",
                    self.homeserver.domain
                ),
            ));
        }
        Ok(())
    }

    /// Every persona is a valid user of the registration's persona namespace `@<bot>_…`, each
    /// user only once, and `broadcast.default_persona` names one of them.
    fn check_personas(&self) -> Result<(), ConfigError> {
        let mut users = std::collections::BTreeSet::new();
        for (name, persona) in &self.personas {
            let user = self.check_persona(name, persona)?;
            if !users.insert(user) {
                let key = format!("personas.{name}.username");
                return Err(ConfigError::invalid(key, "is the username of another persona"));
            }
        }
        match self.default_persona() {
            Some(name) if !self.personas.contains_key(name) => Err(ConfigError::invalid(
                "broadcast.default_persona",
                format!("{name:?} is not a persona: name one of `personas:` or leave it empty for the bot"),
            )),
            _ => Ok(()),
        }
    }

    /// The persona `name`: a usable name, a user of the bot's namespace (returned), an mxc://
    /// avatar, and levels or user IDs in `allowed`.
    fn check_persona(&self, name: &str, persona: &PersonaConfig) -> Result<OwnedUserId, ConfigError> {
        let key = format!("personas.{name}");
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(ConfigError::invalid(key, "is not a usable name: use letters, digits, _ and -"));
        }
        let Some(user) = self.persona_user_id(name) else {
            return Err(ConfigError::invalid(
                format!("{key}.username"),
                "is not a valid localpart: use lower-case letters, digits and ._=-/",
            ));
        };
        let prefix = format!("{}_", self.appservice.bot.username);
        if !persona.username.starts_with(&prefix) || persona.username.len() == prefix.len() {
            return Err(ConfigError::invalid(
                format!("{key}.username"),
                format!(
                    "{:?} is outside the bot's namespace: it must start with \"{prefix}\" (the registration \
                     claims @{prefix}.*:{}), e.g. {prefix}{name}",
                    persona.username, self.homeserver.domain
                ),
            ));
        }
        if !persona.avatar.is_empty() && !persona.avatar.starts_with("mxc://") {
            return Err(ConfigError::invalid(format!("{key}.avatar"), "must be an mxc:// URI or empty"));
        }
        let known = |entry: &String| {
            PERSONA_LEVELS.iter().any(|(level, _)| level == entry) || UserId::parse(entry.as_str()).is_ok()
        };
        if let Some(entry) = persona.allowed.iter().find(|entry| !known(entry)) {
            return Err(ConfigError::invalid(
                format!("{key}.allowed"),
                format!("{entry:?} is neither a level (admin, broadcaster) nor a user ID (@user:server)"),
            ));
        }
        Ok(user)
    }
}

impl BroadcastConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let prefix = &self.command_prefix;
        if prefix.is_empty() || prefix.chars().any(char::is_whitespace) {
            return Err(ConfigError::invalid(
                "broadcast.command_prefix",
                "must be one word without spaces, e.g. \"!bc\"",
            ));
        }
        for (index, room) in self.control_rooms.iter().enumerate() {
            if ruma::OwnedRoomOrAliasId::try_from(room.as_str()).is_err() {
                return Err(ConfigError::invalid(
                    format!("broadcast.control_rooms[{index}]"),
                    format!("{room:?} is neither a room ID (!…) nor an alias (#…:server)"),
                ));
            }
        }
        check_range("broadcast.concurrency", self.concurrency as u64, 1..=256)?;
        check_range("broadcast.new_user_poll_seconds", self.new_user_poll_seconds, 1..=86_400)?;
        check_range("broadcast.max_attempts", self.max_attempts.into(), 1..=100)?;
        check_range("broadcast.give_up_after_hours", self.give_up_after_hours, 1..=720)?;
        crate::base::when::zone(&self.timezone)
            .map_err(|error| ConfigError::invalid("broadcast.timezone", error))?;
        for (index, pattern) in self.exclude.iter().enumerate() {
            if let Err(error) = regex::Regex::new(pattern) {
                return Err(ConfigError::invalid(
                    format!("broadcast.exclude[{index}]"),
                    format!("is not a valid regular expression: {error}"),
                ));
            }
        }
        for (key, words) in [
            ("broadcast.stop_keywords", &self.stop_keywords),
            ("broadcast.start_keywords", &self.start_keywords),
        ] {
            let Some(words) = words else { continue };
            if words.is_empty() || words.iter().any(|word| word.trim().is_empty()) {
                return Err(ConfigError::invalid(key, "must list at least one non-empty word"));
            }
        }
        Ok(())
    }
}

/// The fewest characters a token may have, and the fewest different ones among them: a token
/// guessed opens the bot's API (`hs_token`) or the homeserver as the bot (`as_token`).
const MIN_TOKEN_CHARS: usize = 32;

const MIN_TOKEN_DISTINCT_CHARS: usize = 10;

/// Refuses a token that is short or repetitive enough to be guessed, naming its `key`.
fn check_token(key: &str, token: &str) -> Result<(), ConfigError> {
    let distinct = token.chars().collect::<std::collections::HashSet<_>>().len();
    if token.chars().count() < MIN_TOKEN_CHARS || distinct < MIN_TOKEN_DISTINCT_CHARS {
        return Err(ConfigError::invalid(
            key,
            format!(
                "is too easy to guess: it needs at least {MIN_TOKEN_CHARS} characters, {MIN_TOKEN_DISTINCT_CHARS} of them \
                 different (generate-registration makes random tokens of 64)"
            ),
        ));
    }
    Ok(())
}

impl AppserviceConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        check_http_url("appservice.address", &self.address)?;
        for (key, token) in [("appservice.as_token", &self.as_token), ("appservice.hs_token", &self.hs_token)]
        {
            if token.is_empty() || token == PLACEHOLDER_TOKEN {
                return Err(ConfigError::invalid(
                    key,
                    "is not set: run `matrix-broadcast generate-registration -c <config> -r registration.yaml`",
                ));
            }
            check_token(key, token)?;
        }
        if self.as_token == self.hs_token {
            return Err(ConfigError::invalid(
                "appservice.hs_token",
                "equals appservice.as_token: they must differ (generate-registration makes two random tokens)",
            ));
        }
        check_range("appservice.port", self.port.into(), 1..=65535)?;
        if self.max_body_bytes < 1024 {
            return Err(ConfigError::invalid("appservice.max_body_bytes", "must be at least 1024"));
        }
        if self.id.is_empty() {
            return Err(ConfigError::invalid("appservice.id", "must not be empty"));
        }
        Ok(())
    }
}

impl DatabaseConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        check_range("database.max_connections", self.max_connections.into(), 1..=1000)?;
        if !["sqlite:", "postgres://", "postgresql://"].iter().any(|scheme| self.uri.starts_with(scheme)) {
            return Err(ConfigError::invalid(
                "database.uri",
                "must start with sqlite:// or postgres:// (e.g. sqlite://matrix-broadcast.db)",
            ));
        }
        Ok(())
    }
}

/// Refuses `value` of `key` outside `range`, naming the range.
fn check_range(key: &str, value: u64, range: std::ops::RangeInclusive<u64>) -> Result<(), ConfigError> {
    if range.contains(&value) {
        return Ok(());
    }
    Err(ConfigError::invalid(key, format!("must be between {} and {}", range.start(), range.end())))
}

fn check_http_url(key: &str, url: &Url) -> Result<(), ConfigError> {
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(ConfigError::invalid(key, format!("{url} must be an http:// or https:// URL")));
    }
    Ok(())
}
