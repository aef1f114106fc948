//! A throwaway Synapse on a free loopback port: SQLite, a temp directory, the bot's
//! registration. Killed when dropped.
//!
//! The pinned `matrix-synapse` comes from `scripts/lib/synapse-venv` (a git-ignored virtualenv,
//! installed on first use and reused afterwards); `SYNAPSE_PYTHON` may point at another python.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::OnceLock,
    time::Duration,
};

use base64::Engine;
use rand::RngCore;
use tempfile::TempDir;

use super::{free_port, random_secret, wait_until};

pub const SERVER_NAME: &str = "test.local";

/// The as_token of the second appservice (a stand-in for a bridge) every test Synapse has.
pub const BRIDGE_TOKEN: &str = "bridge-as-token-for-tests";

const BRIDGE_REGISTRATION: &str = r#"id: bridge
url: null
as_token: bridge-as-token-for-tests
hs_token: bridge-hs-token-for-tests
sender_localpart: bridge_bot
namespaces:
  users:
  - exclusive: true
    regex: "^@bridge_.*:test\\.local$"
rate_limited: false
"#;

/// The python of the Synapse virtualenv, provisioned once per test process.
fn synapse_python() -> &'static PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        if let Ok(python) = std::env::var("SYNAPSE_PYTHON") {
            return PathBuf::from(python);
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/lib/synapse-venv");
        let output =
            Command::new(&script).stderr(Stdio::inherit()).output().expect("run scripts/lib/synapse-venv");
        assert!(output.status.success(), "scripts/lib/synapse-venv failed");
        PathBuf::from(String::from_utf8(output.stdout).expect("utf-8 path").trim())
    })
}

/// A running Synapse.
pub struct Synapse {
    pub dir: TempDir,
    pub url: String,
    registration_secret: String,
    child: Option<Child>,
}

impl Synapse {
    /// Starts Synapse with `registration_yaml` (the bot) and a second appservice, a bridge that
    /// owns `@bridge_.*` and whose token is [`BRIDGE_TOKEN`], and waits until it answers.
    /// `extra` is appended to its homeserver.yaml (top-level settings).
    pub async fn start_with(registration_yaml: &str, extra: &str) -> Synapse {
        let dir = tempfile::Builder::new().prefix("synapse-").tempdir().expect("temp dir");
        let port = free_port();
        let registration_secret = random_secret();
        let config = include_str!("../../synapse/homeserver.yaml")
            .replace("${SERVER_NAME}", SERVER_NAME)
            .replace("${DIR}", dir.path().to_str().expect("utf-8 temp dir"))
            .replace("${PORT}", &port.to_string())
            .replace("${SECRET2}", &random_secret())
            .replace("${SECRET3}", &random_secret())
            .replace("${SECRET}", &registration_secret)
            + "\n"
            + extra;
        let path = dir.path();
        std::fs::write(path.join("homeserver.yaml"), config).expect("write homeserver.yaml");
        std::fs::write(path.join("registration.yaml"), registration_yaml).expect("write registration.yaml");
        std::fs::write(path.join("bridge-registration.yaml"), BRIDGE_REGISTRATION)
            .expect("write the bridge's registration");
        std::fs::write(path.join("log.config"), log_config(path)).expect("write log.config");
        let mut seed = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut seed);
        let key = base64::engine::general_purpose::STANDARD_NO_PAD.encode(seed);
        std::fs::write(path.join("signing.key"), format!("ed25519 a_test {key}\n"))
            .expect("write signing key");
        let mut synapse =
            Synapse { url: format!("http://127.0.0.1:{port}"), dir, registration_secret, child: None };
        synapse.launch().await;
        synapse
    }

    async fn launch(&mut self) {
        let path = self.dir.path();
        let output = std::fs::File::create(path.join("stdout.log")).expect("synapse stdout log");
        let child = Command::new(synapse_python())
            .args(["-m", "synapse.app.homeserver", "-c"])
            .arg(path.join("homeserver.yaml"))
            .stdout(output.try_clone().expect("clone log handle"))
            .stderr(output)
            .spawn()
            .expect("start synapse");
        self.child = Some(child);
        let versions = format!("{}/_matrix/client/versions", self.url);
        let http = reqwest::Client::new();
        let log = path.join("homeserver.log");
        wait_until("synapse answers /versions", Duration::from_secs(90), || {
            let request = http.get(&versions).send();
            async move { request.await.is_ok_and(|response| response.status().is_success()) }
        })
        .await
        .unwrap_or_else(|error| panic!("{error}\n{}", std::fs::read_to_string(&log).unwrap_or_default()));
    }

    /// Kills Synapse (SIGKILL) and starts it again on the same port and database.
    pub async fn restart(&mut self) {
        self.kill();
        self.launch().await;
    }

    /// Stops Synapse (SIGKILL), as an outage or an upgrade would; [`Synapse::start_again`] brings
    /// it back on the same port and database.
    pub fn stop(&mut self) {
        self.kill();
    }

    /// Starts a stopped Synapse again and waits until it answers.
    pub async fn start_again(&mut self) {
        self.launch().await;
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The process id of the running Synapse (`examples/throughput.rs` reads its CPU time;
    /// `scaleout` hangs it with SIGSTOP).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The shared secret of `POST /_synapse/admin/v1/register`.
    pub fn registration_secret(&self) -> &str {
        &self.registration_secret
    }
}

impl Drop for Synapse {
    fn drop(&mut self) {
        self.kill();
    }
}

fn log_config(dir: &Path) -> String {
    format!(
        r#"version: 1
formatters:
  precise:
    format: '%(asctime)s - %(name)s - %(levelname)s - %(message)s'
handlers:
  file:
    class: logging.FileHandler
    formatter: precise
    filename: {}/homeserver.log
root:
  level: WARNING
  handlers: [file]
disable_existing_loggers: false
"#,
        dir.display()
    )
}
