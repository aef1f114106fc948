//! The real `matrix-broadcast` binary, for tests that signal or kill the process.

use std::{
    path::Path,
    process::{Child, Command},
};

/// `matrix-broadcast`, as cargo built it for the integration tests (the examples that share the
/// harness have no binary beside them, and never start one).
fn command() -> Command {
    let Some(binary) = option_env!("CARGO_BIN_EXE_matrix-broadcast") else {
        panic!("the binary is built by cargo for the integration tests only");
    };
    Command::new(binary)
}

/// Starts `matrix-broadcast -c config` with its log on `stderr`.
pub fn spawn(config: &Path, stderr: std::process::Stdio) -> Child {
    spawn_logging(config, "matrix_broadcast=info", stderr)
}

/// Starts `matrix-broadcast -c config` with the log filter `log` (`RUST_LOG`), its log on `stderr`.
pub fn spawn_logging(config: &Path, log: &str, stderr: std::process::Stdio) -> Child {
    command()
        .args(["-c", config.to_str().expect("utf-8 path")])
        .env("RUST_LOG", log)
        .stderr(stderr)
        .spawn()
        .expect("start matrix-broadcast")
}

/// Starts `matrix-broadcast worker -c config`, serving `/metrics`, `/live` and `/ready` on `listen`.
pub fn spawn_worker(config: &Path, listen: &str) -> Child {
    command()
        .args(["worker", "-c", config.to_str().expect("utf-8 path"), "--listen", listen])
        .env("RUST_LOG", "matrix_broadcast=info")
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start matrix-broadcast worker")
}

/// Sends SIGTERM to `child` and waits up to `limit` for it to exit; its exit status, or `None`
/// when it was still running at the limit (then it is killed).
pub fn terminate(child: &mut Child, limit: std::time::Duration) -> Option<std::process::ExitStatus> {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -TERM");
    let until = std::time::Instant::now() + limit;
    while std::time::Instant::now() < until {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            return Some(status);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}
