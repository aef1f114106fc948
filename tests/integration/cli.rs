//! The command line as a self-hoster uses it: generate the registration, check the config, and
//! get one clear line (exit code 2, no panic) for every kind of bad config.

use std::{os::unix::fs::PermissionsExt, path::Path, process::Command};

use matrix_broadcast::base::config::{Config, EXAMPLE};

fn matrix_broadcast(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_matrix-broadcast"))
        .current_dir(dir)
        .args(args)
        .env_remove("MATRIX_BROADCAST_CONFIG")
        .output()
        .expect("run matrix-broadcast");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The example with a real domain, in `homeserver.domain` and in the permission table, as a
/// self-hoster would first edit it.
fn edited_example(dir: &Path) {
    std::fs::write(dir.join("config.yaml"), EXAMPLE.replace("example.org", "chat.example.net"))
        .expect("write config");
}

#[test]
fn generate_registration_writes_a_private_file_and_the_tokens_back() {
    let dir = tempfile::tempdir().unwrap();
    edited_example(dir.path());
    let (code, stdout, stderr) = matrix_broadcast(
        dir.path(),
        &["generate-registration", "-c", "config.yaml", "-r", "registration.yaml"],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");

    let registration_path = dir.path().join("registration.yaml");
    let mode = std::fs::metadata(&registration_path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "registration.yaml is readable by its owner only");
    let registration: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&registration_path).unwrap()).unwrap();
    let as_token = registration["as_token"].as_str().unwrap();
    let hs_token = registration["hs_token"].as_str().unwrap();
    assert_eq!((as_token.len(), hs_token.len()), (64, 64));
    assert_ne!(as_token, hs_token);
    assert_eq!(registration["sender_localpart"], "broadcast");
    assert_eq!(registration["rate_limited"], false);
    assert_eq!(registration["receive_ephemeral"], true);
    assert_eq!(registration["url"], "http://localhost:29340");
    let users = &registration["namespaces"]["users"];
    assert_eq!(users[0]["regex"], "^@broadcast:chat\\.example\\.net$");
    assert_eq!(users[0]["exclusive"], true);
    assert_eq!(users[1]["regex"], "^@broadcast_.*:chat\\.example\\.net$");

    let config_text = std::fs::read_to_string(dir.path().join("config.yaml")).unwrap();
    let config = Config::parse(&config_text, Path::new("config.yaml")).unwrap();
    assert_eq!(
        (config.appservice.as_token.as_str(), config.appservice.hs_token.as_str()),
        (as_token, hs_token)
    );
    assert!(config_text.contains("# Unique ID of this application service"), "comments survive");
    assert!(!config_text.contains("pickle_key: generate"), "a random pickle key is filled in");
    assert_eq!(config.encryption.pickle_key.len(), 64);

    let (code, stdout, stderr) =
        matrix_broadcast(dir.path(), &["check-config", "-c", "config.yaml", "-r", "registration.yaml"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("ok (bot @broadcast:chat.example.net; language en; end-to-end encryption off)"),
        "{stdout}"
    );

    // -g is the short form; a new registration replaces both tokens.
    let (code, _, stderr) =
        matrix_broadcast(dir.path(), &["-c", "config.yaml", "-g", "-r", "registration.yaml"]);
    assert_eq!(code, 0, "{stderr}");
    let again: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&registration_path).unwrap()).unwrap();
    assert_ne!(again["as_token"].as_str(), Some(as_token));
}

#[test]
fn generate_registration_refuses_the_example_domain() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.yaml"), EXAMPLE).unwrap();
    let (code, _, stderr) = matrix_broadcast(dir.path(), &["-g", "-c", "config.yaml"]);
    assert_eq!(code, 2);
    assert_eq!(
        stderr.trim(),
        "matrix-broadcast: config: homeserver.domain is still example.org: set it to your homeserver's server_name"
    );
    assert!(!dir.path().join("registration.yaml").exists());
}

#[test]
fn every_kind_of_bad_config_is_one_line_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    edited_example(dir.path());
    let (code, _, stderr) = matrix_broadcast(dir.path(), &["-g"]);
    assert_eq!(code, 0, "{stderr}");
    let good = std::fs::read_to_string(dir.path().join("config.yaml")).unwrap();

    let cases: [(&str, String, &[&str], &str); 7] = [
        (
            "missing file",
            String::new(),
            &["check-config", "-c", "absent.yaml"],
            "cannot read config file absent.yaml",
        ),
        ("YAML error", "homeserver: [unclosed\n".into(), &[], "config config.yaml: "),
        ("unknown key", good.replace("    port: 29340", "    prot: 29340"), &[], "unknown field `prot`"),
        (
            "placeholder",
            good.replace("domain: chat.example.net", "domain: example.org"),
            &[],
            "homeserver.domain is still example.org",
        ),
        (
            "bad URL",
            good.replace("address: http://localhost:8008", "address: ftp://localhost:8008"),
            &[],
            "homeserver.address",
        ),
        (
            "unreadable registration",
            good.clone(),
            &["check-config", "-r", "missing-registration.yaml"],
            "cannot read registration missing-registration.yaml",
        ),
        (
            "wrong type",
            good.replace("max_connections: 8", "max_connections: lots"),
            &[],
            "database.max_connections: invalid type",
        ),
    ];
    for (what, text, args, expected) in cases {
        if !text.is_empty() {
            std::fs::write(dir.path().join("config.yaml"), &text).unwrap();
        }
        let args = if args.is_empty() { &["check-config"][..] } else { args };
        let (code, _, stderr) = matrix_broadcast(dir.path(), args);
        assert_eq!(code, 2, "{what}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{what}: one line: {stderr}");
        assert!(stderr.contains(expected), "{what}: {stderr}");
        assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    }
}

/// Issue 24: an invalid `RUST_LOG` is reported, naming it, and the process exits 2 before it
/// does anything (it was silently turned into `info`).
#[test]
fn an_invalid_rust_log_is_reported_and_the_bot_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    edited_example(dir.path());
    let generate = ["generate-registration", "-c", "config.yaml", "-r", "registration.yaml"];
    assert_eq!(matrix_broadcast(dir.path(), &generate).0, 0);
    let output = Command::new(env!("CARGO_BIN_EXE_matrix-broadcast"))
        .current_dir(dir.path())
        .args(["-c", "config.yaml"])
        .env("RUST_LOG", "matrix_broadcast=loud")
        .output()
        .expect("run matrix-broadcast");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with("matrix-broadcast: RUST_LOG is no log filter (\"matrix_broadcast=loud\")"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
}

/// Issue 24: `example-config` (`-e`) prints the built-in example; with only its domain edited
/// (what "ok" was said to before), `check-config` refuses its placeholder permissions, naming
/// the key, and a table without an admin.
#[test]
fn example_config_prints_the_example_and_check_config_refuses_its_placeholders() {
    let dir = tempfile::tempdir().unwrap();
    for args in [&["example-config"][..], &["-e"]] {
        let (code, stdout, stderr) = matrix_broadcast(dir.path(), args);
        assert_eq!((code, stderr.as_str()), (0, ""), "{args:?}");
        assert_eq!(stdout, EXAMPLE, "{args:?}");
    }
    let only_domain = EXAMPLE.replace("domain: example.org", "domain: chat.example.net");
    std::fs::write(dir.path().join("config.yaml"), &only_domain).unwrap();
    assert_eq!(matrix_broadcast(dir.path(), &["-g"]).0, 0, "the registration needs only the domain");
    let (code, _, stderr) = matrix_broadcast(dir.path(), &["check-config"]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(
        stderr.trim(),
        "matrix-broadcast: config: permissions.\"@admin:example.org\" is the example's placeholder: name your own \
         admins and servers (e.g. \"@you:chat.example.net\": admin)"
    );

    let config = std::fs::read_to_string(dir.path().join("config.yaml")).unwrap();
    let no_admin = config
        .replace("\"example.org\": broadcaster", "\"chat.example.net\": broadcaster")
        .replace("\"@admin:example.org\": admin", "\"@admin:chat.example.net\": broadcaster");
    std::fs::write(dir.path().join("config.yaml"), no_admin).unwrap();
    let (code, _, stderr) = matrix_broadcast(dir.path(), &["check-config"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("config: permissions names no admin"), "{stderr}");
}
