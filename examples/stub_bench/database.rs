//! The bot's database for one run: a fresh SQLite file, or a throwaway PostgreSQL database made
//! and dropped with `psql` (`PGHOST`/`PGPORT`/`PGUSER`, default 127.0.0.1:5432 as postgres,
//! trust authentication).

use std::{path::Path, process::Command};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

/// One run's database.
pub struct Database {
    pub backend: Backend,
    pub uri: String,
    /// The PostgreSQL database to drop at the end.
    postgres_name: Option<String>,
}

fn pg(key: &str, default: &str) -> String {
    std::env::var(key).ok().filter(|value| !value.is_empty()).unwrap_or_else(|| default.to_owned())
}

fn psql(sql: &str) -> Result<(), String> {
    let output = Command::new("psql")
        .args([
            "-h",
            &pg("PGHOST", "127.0.0.1"),
            "-p",
            &pg("PGPORT", "5432"),
            "-U",
            &pg("PGUSER", "postgres"),
        ])
        .args(["-d", "postgres", "-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        .output()
        .map_err(|error| format!("cannot run psql: {error}"))?;
    match output.status.success() {
        true => Ok(()),
        false => Err(format!("psql {sql:?} failed: {}", String::from_utf8_lossy(&output.stderr).trim())),
    }
}

impl Database {
    /// A fresh database of `backend`; `label` makes the PostgreSQL name unique.
    pub fn create(backend: Backend, dir: &Path, label: &str) -> Result<Self, String> {
        match backend {
            Backend::Sqlite => {
                let uri = format!("sqlite://{}", dir.join("bot.db").display());
                Ok(Self { backend, uri, postgres_name: None })
            }
            Backend::Postgres => {
                let name = format!("matrix_broadcast_stub_{}_{label}", std::process::id());
                psql(&format!("CREATE DATABASE {name}"))?;
                let (host, port, user) =
                    (pg("PGHOST", "127.0.0.1"), pg("PGPORT", "5432"), pg("PGUSER", "postgres"));
                let uri = format!("postgres://{user}@{host}:{port}/{name}");
                Ok(Self { backend, uri, postgres_name: Some(name) })
            }
        }
    }

    /// Drops a PostgreSQL database (the SQLite file goes with the run's directory).
    pub fn drop_now(self) {
        if let Some(name) = self.postgres_name {
            if let Err(error) = psql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")) {
                eprintln!("warning: {error}");
            }
        }
    }

    /// The CPU seconds so far of the whole PostgreSQL server: its live processes (the
    /// postmaster, this database's connections, the background workers) and the connections
    /// that ended, which the postmaster has reaped into its children's time. Counting only live
    /// connections would lose the share of one closed between two readings. `None` on SQLite,
    /// which runs inside the bot. The bench is the server's only user while it measures.
    pub fn server_cpu_seconds(&self) -> Option<f64> {
        self.postgres_name.as_ref()?;
        let processes = std::fs::read_dir("/proc").ok()?;
        let pids = processes.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok());
        let mut seconds = 0.0;
        for pid in pids {
            let command = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let command = String::from_utf8_lossy(&command);
            let postmaster = command.contains("bin/postgres\0") || command.ends_with("bin/postgres");
            if postmaster {
                seconds += super::bot::cpu_seconds_of(pid) + super::bot::reaped_children_cpu_seconds_of(pid);
            } else if command.starts_with("postgres: ") {
                seconds += super::bot::cpu_seconds_of(pid);
            }
        }
        Some(seconds)
    }

    /// Whether PostgreSQL answers at all.
    pub fn postgres_available() -> bool {
        psql("SELECT 1").is_ok()
    }
}
