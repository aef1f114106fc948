use super::*;

fn example() -> Config {
    Config::parse(EXAMPLE, Path::new("config.example.yaml")).expect("the example parses")
}

/// The example as a self-hoster first edits it: the domain (and so the permission table's
/// placeholders) and the tokens.
fn usable(text: &str) -> String {
    text.replace("example.org", "test.local")
        .replace("as_token: generate", "as_token: as-0123456789abcdefghijklmnopqrstuvwxyz")
        .replace("hs_token: generate", "hs_token: hs-0123456789abcdefghijklmnopqrstuvwxyz")
}

#[test]
fn example_parses_and_documents_the_defaults() {
    let config = example();
    assert_eq!(config.appservice.port, 29340);
    assert_eq!(config.broadcast.command_prefix, "!bc");
    assert_eq!(config.database.max_connections, 8);
    assert_eq!(config.appservice.device_id.as_str(), "BROADCAST");
}

#[test]
fn example_is_refused_by_its_placeholder_domain() {
    let error = example().validate().unwrap_err().to_string();
    assert_eq!(
        error,
        "config: homeserver.domain is still example.org: set it to your homeserver's server_name"
    );
}

#[test]
fn example_with_a_domain_and_tokens_is_valid() {
    let config = Config::parse(&usable(EXAMPLE), Path::new("c.yaml")).unwrap();
    config.validate().unwrap();
    assert_eq!(config.bot_user_id().unwrap().as_str(), "@broadcast:test.local");
}

#[test]
fn placeholder_tokens_are_refused_by_name() {
    let text = EXAMPLE.replace("domain: example.org", "domain: test.local");
    let error = Config::parse(&text, Path::new("c.yaml")).unwrap().validate().unwrap_err().to_string();
    assert!(
        error.starts_with(
            "config: appservice.as_token is not set: run `matrix-broadcast generate-registration"
        ),
        "{error}"
    );
}

/// Issue 22, item 15: a token that could be guessed is refused, by name.
#[test]
fn short_or_repetitive_tokens_are_refused_by_name() {
    let strong = "hs-0123456789abcdefghijklmnopqrstuvwxyz";
    for (weak, key) in [
        ("as_token: short-token", "appservice.as_token"),
        ("as_token: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "appservice.as_token"),
    ] {
        let text = usable(EXAMPLE).replace("as_token: as-0123456789abcdefghijklmnopqrstuvwxyz", weak);
        let error = Config::parse(&text, Path::new("c.yaml")).unwrap().validate().unwrap_err().to_string();
        assert!(error.starts_with(&format!("config: {key} is too easy to guess")), "{error}");
    }
    let text = usable(EXAMPLE).replace(strong, "0123456789012345678901234567890");
    let error = Config::parse(&text, Path::new("c.yaml")).unwrap().validate().unwrap_err().to_string();
    assert!(
        error.starts_with("config: appservice.hs_token is too easy to guess: it needs at least 32"),
        "{error}"
    );
}

#[test]
fn metrics_have_a_listener_of_their_own() {
    let config = Config::parse(&usable(EXAMPLE), Path::new("c.yaml")).unwrap();
    // Issue 24: not 9100, node_exporter's port, where the bot could not start beside it.
    assert_eq!(config.metrics.listen.to_string(), "127.0.0.1:29390");
    assert_eq!(MetricsConfig::default().listen, config.metrics.listen, "the example shows the default");
    let same = usable(EXAMPLE).replace("listen: 127.0.0.1:29390", "listen: 0.0.0.0:29340");
    let error = Config::parse(&same, Path::new("c.yaml")).unwrap().validate().unwrap_err().to_string();
    assert!(error.contains("metrics.listen") && error.contains("a port of their own"), "{error}");
}

/// Issue 24: with only the domain edited, the example's placeholder permissions were accepted,
/// and so was a table without an admin; each is refused, naming the key.
#[test]
fn placeholder_permissions_and_a_table_without_admin_are_refused_by_name() {
    let only_domain = usable(EXAMPLE)
        .replace("\"test.local\": broadcaster", "\"example.org\": broadcaster")
        .replace("\"@admin:test.local\": admin", "\"@admin:example.org\": admin");
    let error = Config::parse(&only_domain, Path::new("c.yaml")).unwrap().validate().unwrap_err().to_string();
    assert_eq!(
        error,
        "config: permissions.\"@admin:example.org\" is the example's placeholder: name your own admins and \
         servers (e.g. \"@you:test.local\": admin)"
    );
    let server_only = usable(EXAMPLE).replace("\"test.local\": broadcaster", "\"example.org\": broadcaster");
    let error = Config::parse(&server_only, Path::new("c.yaml")).unwrap().validate().unwrap_err().to_string();
    assert!(error.starts_with("config: permissions.\"example.org\" is the example's placeholder"), "{error}");

    let no_admin =
        usable(EXAMPLE).replace("\"@admin:test.local\": admin", "\"@boss:test.local\": broadcaster");
    let error = Config::parse(&no_admin, Path::new("c.yaml")).unwrap().validate().unwrap_err().to_string();
    assert_eq!(
        error,
        "config: permissions names no admin: nobody could control the bot; add one (e.g. \"@you:test.local\": admin)"
    );
}

/// [`usable`] with the example's commented-out `hr` persona uncommented, as its comment says.
fn with_hr_persona() -> String {
    let start = EXAMPLE.find("# personas:\n").expect("the commented persona");
    let end = start + EXAMPLE[start..].find("\n\n").expect("the block's end");
    let uncommented: String = EXAMPLE[start..end]
        .lines()
        .map(|line| format!("{}\n", line.strip_prefix("# ").unwrap_or("")))
        .collect();
    usable(EXAMPLE).replace("personas: {}\n", &uncommented)
}

/// Issue 24: the example switches on no persona, and its commented persona, uncommented as it
/// says, is a valid one.
#[test]
fn the_examples_persona_is_commented_out_and_valid_when_uncommented() {
    let config = Config::parse(&usable(EXAMPLE), Path::new("c.yaml")).unwrap();
    assert!(config.personas.is_empty());
    let config = Config::parse(&with_hr_persona(), Path::new("c.yaml")).unwrap();
    config.validate().unwrap();
    assert_eq!(config.persona_user_id("hr").unwrap().as_str(), "@broadcast_hr:test.local");
}

/// Issue 24: the default exclusion (the example's too) leaves out -bot and _bot accounts, not
/// people whose name ends in "bot" (`@.*bot:.*` left out @talbot).
#[test]
fn the_default_exclusion_matches_bot_accounts_only() {
    let config = Config::parse(&usable(EXAMPLE), Path::new("c.yaml")).unwrap();
    assert_eq!(config.broadcast.exclude, [DEFAULT_EXCLUDE]);
    assert_eq!(BroadcastConfig::default().exclude, [DEFAULT_EXCLUDE]);
    let pattern = regex::Regex::new(&format!("^(?:{DEFAULT_EXCLUDE})$")).unwrap();
    for bot in ["@github-bot:test.local", "@ci_bot:test.local", "@helper_bot:other.example"] {
        assert!(pattern.is_match(bot), "{bot}");
    }
    for person in ["@talbot:test.local", "@abbot:test.local", "@bot:test.local", "@anna:bot.example"] {
        assert!(!pattern.is_match(person), "{person}");
    }
}

#[test]
fn unknown_key_names_its_path() {
    let text = usable(EXAMPLE).replace("    port: 29340", "    prot: 29340");
    let error = Config::parse(&text, Path::new("c.yaml")).unwrap_err().to_string();
    assert!(error.starts_with("config c.yaml: appservice: unknown field `prot`"), "{error}");
}

#[test]
fn wrong_type_names_its_path() {
    let text = usable(EXAMPLE).replace("    port: 29340", "    port: many");
    let error = Config::parse(&text, Path::new("c.yaml")).unwrap_err().to_string();
    assert!(error.starts_with("config c.yaml: appservice.port: invalid type"), "{error}");
}

#[test]
fn bad_url_is_refused() {
    let text = usable(EXAMPLE).replace("address: http://localhost:8008", "address: localhost:8008");
    let error = match Config::parse(&text, Path::new("c.yaml")) {
        Err(error) => error.to_string(),
        Ok(config) => config.validate().unwrap_err().to_string(),
    };
    assert!(error.contains("homeserver.address"), "{error}");
}

#[test]
fn bad_permission_key_is_refused() {
    let text = usable(EXAMPLE).replace("\"*\": none", "\"not a server!\": none");
    let error = Config::parse(&text, Path::new("c.yaml")).unwrap().validate().unwrap_err().to_string();
    assert!(error.contains("permissions.\"not a server!\""), "{error}");
}

/// Issue 22, item 8: a persona's `allowed` list names levels and user IDs, nothing else.
#[test]
fn a_persona_allowed_entry_that_is_no_level_or_user_is_refused_by_name() {
    let text = with_hr_persona().replace("allowed: [admin]", "allowed: [admin, everyone]");
    let error = Config::parse(&text, Path::new("c.yaml")).unwrap().validate().unwrap_err().to_string();
    assert!(error.contains("personas.hr.allowed") && error.contains("\"everyone\""), "{error}");
    let config = Config::parse(&with_hr_persona(), Path::new("c.yaml")).unwrap();
    let hr = &config.personas["hr"];
    let someone = ruma::user_id!("@someone:test.local");
    assert!(hr.allows(someone, Level::Admin) && !hr.allows(someone, Level::Broadcaster));
}

#[test]
fn example_personas_are_valid_users_of_the_namespace() {
    let config = Config::parse(&with_hr_persona(), Path::new("c.yaml")).unwrap();
    assert_eq!(config.persona_user_id("hr").unwrap().as_str(), "@broadcast_hr:test.local");
    assert_eq!(config.personas["hr"].displayname, "HR Team");
    assert_eq!(config.default_persona(), None, "empty: the bot");
}

#[test]
fn a_persona_outside_the_namespace_is_refused_with_the_fix() {
    for username in ["hr", "broadcasthr", "broadcast_", "other_hr"] {
        let text = with_hr_persona().replace("username: broadcast_hr", &format!("username: {username}"));
        let error = Config::parse(&text, Path::new("c.yaml")).unwrap().validate().unwrap_err().to_string();
        assert_eq!(
            error,
            format!(
                "config: personas.hr.username {username:?} is outside the bot's namespace: it must start with \
                 \"broadcast_\" (the registration claims @broadcast_.*:test.local), e.g. broadcast_hr"
            )
        );
    }
}

#[test]
fn a_default_persona_must_be_one_of_the_personas() {
    let text = with_hr_persona().replace("default_persona: \"\"", "default_persona: it");
    let error = Config::parse(&text, Path::new("c.yaml")).unwrap().validate().unwrap_err().to_string();
    assert!(error.starts_with("config: broadcast.default_persona \"it\" is not a persona"), "{error}");
    let text = with_hr_persona().replace("default_persona: \"\"", "default_persona: hr");
    let config = Config::parse(&text, Path::new("c.yaml")).unwrap();
    config.validate().unwrap();
    assert_eq!(config.default_persona(), Some("hr"));
}

#[test]
fn two_personas_cannot_share_a_user() {
    let text = with_hr_persona()
        .replace("personas:\n    #", "personas:\n    hr2: { username: broadcast_hr }\n    #");
    let error = Config::parse(&text, Path::new("c.yaml")).unwrap().validate().unwrap_err().to_string();
    assert!(error.contains("is the username of another persona"), "{error}");
}

#[test]
fn bad_control_room_is_refused() {
    let text = usable(EXAMPLE).replace("control_rooms: []", "control_rooms: [\"general\"]");
    let error = Config::parse(&text, Path::new("c.yaml")).unwrap().validate().unwrap_err().to_string();
    assert!(error.starts_with("config: broadcast.control_rooms[0] \"general\" is neither"), "{error}");
}
