//! The `matrix-broadcast` command line: run the bot, run delivery workers, generate the
//! registration, check a config.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use matrix_broadcast::base::{config::Config, registration, telemetry};

/// A Matrix application service that sends one message privately to any number of people and
/// brings their replies back.
#[derive(Debug, Parser)]
#[command(name = "matrix-broadcast", version)]
struct Cli {
    /// The config file
    #[arg(short, long, global = true, default_value = "config.yaml", env = "MATRIX_BROADCAST_CONFIG")]
    config: PathBuf,
    /// The registration file (written by generate-registration, checked by check-config)
    #[arg(short, long, global = true)]
    registration: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Action>,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Run the bot (the default)
    Run,
    /// Write registration.yaml for the homeserver (mode 0600) and the tokens into the config
    #[command(short_flag = 'g')]
    GenerateRegistration,
    /// Check the config (and the registration, with -r) and exit
    CheckConfig,
    /// Print the example config, every key documented (`matrix-broadcast example-config > config.yaml`)
    #[command(short_flag = 'e')]
    ExampleConfig,
    /// Run delivery workers only, next to the bot on its PostgreSQL database, with the same config
    Worker {
        /// Serve this worker's /metrics, /live and /ready here (host:port; the config's
        /// metrics.listen is the main process's)
        #[arg(long, alias = "metrics-listen", value_name = "ADDRESS")]
        listen: Option<std::net::SocketAddr>,
    },
}

/// Exit code for an unusable config or registration.
const BAD_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let mut cli = Cli::parse();
    match cli.command.take().unwrap_or(Action::Run) {
        Action::GenerateRegistration => {
            let path = cli.registration.clone().unwrap_or_else(|| PathBuf::from("registration.yaml"));
            match registration::generate(&cli.config, &path) {
                Ok(registration) => {
                    println!(
                        "wrote {} (id {}) and the tokens into {}.\nNext: add it to app_service_config_files in \
                         Synapse's homeserver.yaml, restart Synapse, then start matrix-broadcast.",
                        path.display(),
                        registration.id,
                        cli.config.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(error) => fail(BAD_CONFIG, error),
            }
        }
        Action::CheckConfig => match checked_config(&cli) {
            Ok(config) => {
                println!(
                    "{}: ok (bot {}; language {}; {})",
                    cli.config.display(),
                    config.bot_user_id().map(|id| id.to_string()).unwrap_or_default(),
                    config.language.code(),
                    encryption_summary(&config)
                );
                ExitCode::SUCCESS
            }
            Err(error) => fail(BAD_CONFIG, error),
        },
        Action::Run => run(&cli, matrix_broadcast::run),
        Action::ExampleConfig => {
            print!("{}", matrix_broadcast::base::config::EXAMPLE);
            ExitCode::SUCCESS
        }
        Action::Worker { listen } => run(&cli, move |config| {
            matrix_broadcast::run_worker(config, listen, matrix_broadcast::shutdown_signal())
        }),
    }
}

/// Runs `process` (the bot or a worker) with the checked config until it ends.
fn run<F: std::future::Future<Output = anyhow::Result<()>>>(
    cli: &Cli,
    process: impl FnOnce(Config) -> F,
) -> ExitCode {
    let config = match checked_config(cli) {
        Ok(config) => config,
        Err(error) => return fail(BAD_CONFIG, error),
    };
    if let Err(error) = telemetry::init_logging(&config.logging) {
        return fail(BAD_CONFIG, error);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => return fail(1, error),
    };
    let result = runtime.block_on(process(config));
    // Tasks still waiting for a request that hangs are not waited for.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(1, format!("{error:#}")),
    }
}

/// The validated config, and the registration checked against it when `-r` was given.
fn checked_config(cli: &Cli) -> Result<Config, String> {
    let config = Config::load_validated(&cli.config).map_err(|error| error.to_string())?;
    if let Some(path) = &cli.registration {
        registration::check(&config, path).map_err(|error| error.to_string())?;
    }
    Ok(config)
}

fn fail(code: u8, error: impl std::fmt::Display) -> ExitCode {
    eprintln!("matrix-broadcast: {error}");
    ExitCode::from(code)
}

/// What `check-config` says of `encryption:`.
fn encryption_summary(config: &Config) -> String {
    let encryption = &config.encryption;
    if !encryption.enabled {
        return "end-to-end encryption off".into();
    }
    let new_dms = if encryption.encrypts_new_dms() { "encrypted" } else { "plain" };
    let upgrade = if encryption.upgrade_dms { ", plain DMs upgraded" } else { "" };
    let store = encryption.store_path(&config.database.uri);
    format!("end-to-end encryption on: new DMs {new_dms}{upgrade}, crypto store {}", store.display())
}
