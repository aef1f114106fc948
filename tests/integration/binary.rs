//! The real `matrix-broadcast` binary, for tests that signal or kill the process.

use std::{path::Path, process::Child};

/// Starts `matrix-broadcast -c config` with its log on `stderr`.
pub fn spawn(config: &Path, stderr: std::process::Stdio) -> Child {
    spawn_logging(config, "matrix_broadcast=info", stderr)
}

/// Starts `matrix-broadcast -c config` with the log filter `log` (`RUST_LOG`), its log on `stderr`.
pub fn spawn_logging(config: &Path, log: &str, stderr: std::process::Stdio) -> Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_matrix-broadcast"))
        .args(["-c", config.to_str().expect("utf-8 path")])
        .env("RUST_LOG", log)
        .stderr(stderr)
        .spawn()
        .expect("start matrix-broadcast")
}
