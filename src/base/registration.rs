//! The appservice registration file that the homeserver loads (`app_service_config_files`).
//!
//! `generate-registration` makes two random 64-character tokens, writes `registration.yaml` with
//! mode 0600 and writes the same tokens back into the config file, editing only the two token
//! lines so that the comments of the config survive.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use rand::{distributions::Alphanumeric, Rng};
use regex::Regex;
use ruma::api::appservice::{Namespace, Namespaces, Registration, RegistrationInit};

use crate::base::config::{Config, ConfigError};

/// Why a registration could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    /// The config is unusable for a registration (e.g. the placeholder domain).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    /// A registration file could not be read or parsed.
    #[error("cannot read registration {path}: {message} (regenerate it with generate-registration)")]
    Read { path: PathBuf, message: String },
    /// A registration file does not match the config.
    #[error(
        "registration {path} does not match the config: {what} differs (regenerate it, then restart Synapse)"
    )]
    Mismatch { path: PathBuf, what: &'static str },
    /// A registration file lacks flags the config needs.
    #[error("registration {path} lacks {flags} (regenerate it, then restart Synapse)")]
    MissingFlags { path: PathBuf, flags: String },
}

/// The config key that needs `flag` in the registration.
fn needed_by(flag: &str) -> &'static str {
    if flag == MSC4190_FLAG {
        "appservice.msc4190"
    } else {
        "encryption.enabled"
    }
}

/// A random token of 64 letters and digits.
pub fn random_token() -> String {
    rand::thread_rng().sample_iter(&Alphanumeric).take(64).map(char::from).collect()
}

/// The registration for `config`, with the given tokens.
pub fn registration(config: &Config, as_token: String, hs_token: String) -> Registration {
    let domain = regex::escape(config.homeserver.domain.as_str());
    let bot = format!("^@{}:{domain}$", regex::escape(&config.appservice.bot.username));
    let personas = format!("^@{}_.*:{domain}$", regex::escape(&config.appservice.bot.username));
    let mut namespaces = Namespaces::new();
    namespaces.users = vec![Namespace::new(true, bot), Namespace::new(true, personas)];
    let mut registration: Registration = RegistrationInit {
        id: config.appservice.id.clone(),
        url: Some(registered_url(config).to_owned()),
        as_token,
        hs_token,
        sender_localpart: config.appservice.bot.username.clone(),
        namespaces,
        rate_limited: Some(false),
        protocols: None,
    }
    .into();
    registration.receive_ephemeral = true;
    registration
}

/// The flags end-to-end encryption needs in a registration: to-device messages (MSC2409), and
/// device-list changes and one-time-key counts (MSC3202), pushed in transactions.
const ENCRYPTION_FLAGS: [&str; 2] = ["de.sorunome.msc2409.push_ephemeral", "org.matrix.msc3202"];

/// The flag that lets an appservice create devices without logging in (MSC4190), which a
/// homeserver with delegated logins (Matrix Authentication Service) requires.
pub const MSC4190_FLAG: &str = "io.element.msc4190";

/// The flags `config` needs in its registration: [`ENCRYPTION_FLAGS`] with
/// `encryption.enabled`, [`MSC4190_FLAG`] with `appservice.msc4190`.
pub fn flags(config: &Config) -> Vec<&'static str> {
    let mut flags = Vec::new();
    if config.encryption.enabled {
        flags.extend(ENCRYPTION_FLAGS);
    }
    if config.appservice.msc4190 {
        flags.push(MSC4190_FLAG);
    }
    flags
}

/// `registration` as the YAML the homeserver loads, with the [`flags`] `config` needs.
pub fn to_yaml(config: &Config, registration: &Registration) -> Result<String, serde_yaml::Error> {
    let mut document = serde_yaml::to_value(registration)?;
    if let Some(map) = document.as_mapping_mut() {
        for flag in flags(config) {
            map.insert(flag.into(), true.into());
        }
    }
    serde_yaml::to_string(&document)
}

/// Writes a new registration to `registration_path` (mode 0600) and the tokens into the config.
pub fn generate(config_path: &Path, registration_path: &Path) -> Result<Registration, RegistrationError> {
    let config = Config::load(config_path)?;
    config.check_domain()?;
    let registration = registration(&config, random_token(), random_token());
    let yaml = to_yaml(&config, &registration).map_err(|error| RegistrationError::Write {
        path: registration_path.to_owned(),
        source: std::io::Error::other(error),
    })?;
    write_private(registration_path, &yaml)?;

    let text = std::fs::read_to_string(config_path)
        .map_err(|source| ConfigError::Read { path: config_path.to_owned(), source })?;
    let text = set_token(&text, "as_token", &registration.as_token);
    let text = set_token(&text, "hs_token", &registration.hs_token);
    let text = set_pickle_key(&text);
    write_private(config_path, &text)?;
    Ok(registration)
}

/// Reads a registration file and checks that it belongs to `config`.
pub fn check(config: &Config, path: &Path) -> Result<Registration, RegistrationError> {
    let read_error = |message: String| RegistrationError::Read { path: path.to_owned(), message };
    let text = std::fs::read_to_string(path).map_err(|error| read_error(error.to_string()))?;
    let registration: Registration =
        serde_yaml::from_str(&text).map_err(|error| read_error(error.to_string()))?;
    let mismatch = |what| RegistrationError::Mismatch { path: path.to_owned(), what };
    let document: serde_yaml::Value = serde_yaml::from_str(&text).unwrap_or_default();
    let missing: Vec<String> = flags(config)
        .into_iter()
        .filter(|flag| document.get(*flag) != Some(&true.into()))
        .map(|flag| format!("{flag}: true (for {})", needed_by(flag)))
        .collect();
    if !missing.is_empty() {
        return Err(RegistrationError::MissingFlags { path: path.to_owned(), flags: missing.join(", ") });
    }
    if registration.as_token != config.appservice.as_token {
        return Err(mismatch("as_token"));
    }
    if registration.hs_token != config.appservice.hs_token {
        return Err(mismatch("hs_token"));
    }
    if registration.id != config.appservice.id {
        return Err(mismatch("id"));
    }
    if registration.sender_localpart != config.appservice.bot.username {
        return Err(mismatch("sender_localpart (appservice.bot.username)"));
    }
    if registration.url.as_deref().map(|url| url.trim_end_matches('/')) != Some(registered_url(config)) {
        return Err(mismatch("url (appservice.address)"));
    }
    if !claims_own_users(config, &registration) {
        return Err(mismatch("namespaces.users (exclusive, for the bot and its personas @<username>_…)"));
    }
    Ok(registration)
}

/// The `url` the registration gives the homeserver for pushing to the bot: `appservice.address`
/// without a trailing slash.
fn registered_url(config: &Config) -> &str {
    config.appservice.address.as_str().trim_end_matches('/')
}

/// Whether `registration` claims, exclusively, the bot's user and the personas' (`@<bot>_…`).
fn claims_own_users(config: &Config, registration: &Registration) -> bool {
    let Ok(bot) = config.bot_user_id() else { return false };
    let persona = format!("@{}_persona:{}", bot.localpart(), bot.server_name());
    let exclusive: Vec<Regex> = registration
        .namespaces
        .users
        .iter()
        .filter(|namespace| namespace.exclusive)
        .filter_map(|namespace| Regex::new(&namespace.regex).ok())
        .collect();
    [bot.as_str(), persona.as_str()].iter().all(|user| exclusive.iter().any(|pattern| pattern.is_match(user)))
}

/// Fills in a random `pickle_key:` where the config says `generate` (the example does).
fn set_pickle_key(text: &str) -> String {
    let placeholder = Regex::new(r"(?m)^([ \t]+pickle_key:)[ \t]*generate[ \t]*$").expect("static regex");
    placeholder.replace(text, format!("${{1}} {}", random_token())).into_owned()
}

/// Replaces the value of `key:` in the `appservice:` section, or adds the key to that section.
fn set_token(text: &str, key: &str, value: &str) -> String {
    let existing = Regex::new(&format!(r"(?m)^([ \t]+{key}:)[^\n]*$")).expect("static regex");
    if existing.is_match(text) {
        return existing.replace(text, format!("${{1}} {value}")).into_owned();
    }
    let section = Regex::new(r"(?m)^appservice:[^\n]*$").expect("static regex");
    match section.find(text) {
        Some(found) => format!("{}\n    {key}: {value}{}", &text[..found.end()], &text[found.end()..]),
        None => format!("{text}\nappservice:\n    {key}: {value}\n"),
    }
}

fn write_private(path: &Path, text: &str) -> Result<(), RegistrationError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let write_error = |source| RegistrationError::Write { path: path.to_owned(), source };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(write_error)?;
    // An existing file keeps its old mode on open: tighten it explicitly.
    file.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(write_error)?;
    file.write_all(text.as_bytes()).map_err(write_error)
}

/// Whether `user` is the bot or one of its personas (`@<bot>_…`): never addressed, and their
/// events are ignored.
pub fn is_own_user(bot: &ruma::UserId, user: &ruma::UserId) -> bool {
    user == bot
        || (user.server_name() == bot.server_name()
            && user.localpart().starts_with(&format!("{}_", bot.localpart())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_registration_is_what_generate_writes_for_the_example_config() {
        let example: Registration = serde_yaml::from_str(include_str!("../../registration.yaml")).unwrap();
        let config = Config::parse(crate::base::config::EXAMPLE, Path::new("config.example.yaml")).unwrap();
        let generated = registration(&config, example.as_token.clone(), example.hs_token.clone());
        assert_eq!(serde_yaml::to_value(&generated).unwrap(), serde_yaml::to_value(&example).unwrap());
    }

    #[test]
    fn personas_the_config_accepts_are_in_the_registered_namespace() {
        let text = crate::base::config::EXAMPLE
            .replace("domain: example.org", "domain: test.local")
            .replace("personas: {}", "personas:\n    hr: { username: broadcast_hr }");
        let config = Config::parse(&text, Path::new("c.yaml")).unwrap();
        let registration = registration(&config, "a".into(), "b".into());
        let persona = config.persona_user_id("hr").unwrap();
        let claimed = registration.namespaces.users.iter().filter(|namespace| namespace.exclusive);
        let patterns: Vec<Regex> = claimed.map(|namespace| Regex::new(&namespace.regex).unwrap()).collect();
        assert!(patterns.iter().any(|pattern| pattern.is_match(persona.as_str())), "{persona}");
        assert!(is_own_user(&config.bot_user_id().unwrap(), &persona), "never addressed, events ignored");
    }

    #[test]
    fn encryption_adds_its_flags_and_check_wants_them() {
        let text = crate::base::config::EXAMPLE.replace("domain: example.org", "domain: test.local");
        let mut config = Config::parse(&text, Path::new("c.yaml")).unwrap();
        let plain = to_yaml(&config, &registration(&config, "a".into(), "b".into())).unwrap();
        assert!(!plain.contains("msc3202"), "{plain}");
        config.encryption.enabled = true;
        let yaml = to_yaml(&config, &registration(&config, "a".into(), "b".into())).unwrap();
        assert!(yaml.contains("org.matrix.msc3202: true") && yaml.contains("push_ephemeral: true"), "{yaml}");
        config.appservice.as_token = "a".into();
        config.appservice.hs_token = "b".into();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registration.yaml");
        std::fs::write(&path, &yaml).unwrap();
        check(&config, &path).expect("the flags are there");
        std::fs::write(&path, &plain).unwrap();
        let error = check(&config, &path).unwrap_err().to_string();
        assert!(error.contains("org.matrix.msc3202"), "{error}");
    }

    /// Issue 24: `appservice.msc4190` writes its flag, and `check` names each missing flag, a
    /// wrong `url` and namespaces that do not claim the bot and its personas.
    #[test]
    fn check_names_missing_flags_a_wrong_url_and_unclaimed_users() {
        let text = crate::base::config::EXAMPLE.replace("domain: example.org", "domain: test.local");
        let mut config = Config::parse(&text, Path::new("c.yaml")).unwrap();
        (config.appservice.as_token, config.appservice.hs_token) = ("a".into(), "b".into());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registration.yaml");
        let write = |config: &Config, edit: &dyn Fn(String) -> String| {
            let yaml = to_yaml(config, &registration(config, "a".into(), "b".into())).unwrap();
            std::fs::write(&path, edit(yaml)).unwrap();
        };
        let plain = config.clone();
        (config.appservice.msc4190, config.encryption.enabled) = (true, true);
        write(&config, &|yaml| yaml);
        check(&config, &path).expect("the generated registration passes");
        assert!(std::fs::read_to_string(&path).unwrap().contains("io.element.msc4190: true"));

        write(&plain, &|yaml| yaml);
        let error = check(&config, &path).unwrap_err().to_string();
        for named in [
            "io.element.msc4190: true (for appservice.msc4190)",
            "org.matrix.msc3202: true (for encryption.enabled)",
            "de.sorunome.msc2409.push_ephemeral",
        ] {
            assert!(error.contains(named), "{named} in: {error}");
        }
        write(&plain, &|yaml| yaml.replace("url: http://localhost:29340", "url: http://elsewhere:1"));
        let error = check(&plain, &path).unwrap_err().to_string();
        assert!(error.contains("url (appservice.address)"), "{error}");
        write(&plain, &|yaml| yaml.replace("exclusive: true", "exclusive: false"));
        let error = check(&plain, &path).unwrap_err().to_string();
        assert!(error.contains("namespaces.users"), "{error}");
    }

    #[test]
    fn a_pickle_key_placeholder_is_filled_in_once() {
        let text = "encryption:\n    enabled: true\n    pickle_key: generate\n";
        let filled = set_pickle_key(text);
        let key = filled.lines().last().unwrap().trim().strip_prefix("pickle_key: ").unwrap();
        assert_eq!(key.len(), 64);
        assert_eq!(set_pickle_key(&filled), filled, "a chosen key stays");
    }

    #[test]
    fn tokens_are_64_alphanumerics_and_differ() {
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }

    #[test]
    fn set_token_keeps_comments_and_replaces_only_the_value() {
        let text = "appservice:\n    # the token\n    as_token: generate\n    hs_token: generate\n";
        let text = set_token(text, "as_token", "NEW");
        assert_eq!(text, "appservice:\n    # the token\n    as_token: NEW\n    hs_token: generate\n");
    }

    #[test]
    fn set_token_adds_a_missing_key_to_the_appservice_section() {
        let text = "homeserver:\n    domain: a.b\nappservice:\n    port: 1\n";
        assert_eq!(
            set_token(text, "hs_token", "X"),
            "homeserver:\n    domain: a.b\nappservice:\n    hs_token: X\n    port: 1\n"
        );
    }
}
