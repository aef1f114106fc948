use super::*;

fn example() -> Config {
    Config::parse(EXAMPLE, Path::new("config.example.yaml")).expect("the example parses")
}

fn usable(text: &str) -> String {
    text.replace("domain: example.org", "domain: test.local")
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
    assert_eq!(config.metrics.listen.to_string(), "127.0.0.1:9100");
    let same = usable(EXAMPLE).replace("listen: 127.0.0.1:9100", "listen: 0.0.0.0:29340");
    let error = Config::parse(&same, Path::new("c.yaml")).unwrap().validate().unwrap_err().to_string();
    assert!(error.contains("metrics.listen") && error.contains("a port of their own"), "{error}");
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
    let text = usable(EXAMPLE).replace("allowed: [admin]", "allowed: [admin, everyone]");
    let error = Config::parse(&text, Path::new("c.yaml")).unwrap().validate().unwrap_err().to_string();
    assert!(error.contains("personas.hr.allowed") && error.contains("\"everyone\""), "{error}");
    let config = Config::parse(&usable(EXAMPLE), Path::new("c.yaml")).unwrap();
    let hr = &config.personas["hr"];
    let someone = ruma::user_id!("@someone:test.local");
    assert!(hr.allows(someone, Level::Admin) && !hr.allows(someone, Level::Broadcaster));
}

#[test]
fn example_personas_are_valid_users_of_the_namespace() {
    let config = Config::parse(&usable(EXAMPLE), Path::new("c.yaml")).unwrap();
    assert_eq!(config.persona_user_id("hr").unwrap().as_str(), "@broadcast_hr:test.local");
    assert_eq!(config.personas["hr"].displayname, "HR Team");
    assert_eq!(config.default_persona(), None, "empty: the bot");
}

#[test]
fn a_persona_outside_the_namespace_is_refused_with_the_fix() {
    for username in ["hr", "broadcasthr", "broadcast_", "other_hr"] {
        let text = usable(EXAMPLE).replace("username: broadcast_hr", &format!("username: {username}"));
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
    let text = usable(EXAMPLE).replace("default_persona: \"\"", "default_persona: it");
    let error = Config::parse(&text, Path::new("c.yaml")).unwrap().validate().unwrap_err().to_string();
    assert!(error.starts_with("config: broadcast.default_persona \"it\" is not a persona"), "{error}");
    let text = usable(EXAMPLE).replace("default_persona: \"\"", "default_persona: hr");
    let config = Config::parse(&text, Path::new("c.yaml")).unwrap();
    config.validate().unwrap();
    assert_eq!(config.default_persona(), Some("hr"));
}

#[test]
fn two_personas_cannot_share_a_user() {
    let text = usable(EXAMPLE).replace("personas:\n", "personas:\n    hr2: { username: broadcast_hr }\n");
    let error = Config::parse(&text, Path::new("c.yaml")).unwrap().validate().unwrap_err().to_string();
    assert!(error.contains("is the username of another persona"), "{error}");
}

#[test]
fn bad_control_room_is_refused() {
    let text = usable(EXAMPLE).replace("control_rooms: []", "control_rooms: [\"general\"]");
    let error = Config::parse(&text, Path::new("c.yaml")).unwrap().validate().unwrap_err().to_string();
    assert!(error.starts_with("config: broadcast.control_rooms[0] \"general\" is neither"), "{error}");
}
