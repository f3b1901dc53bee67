//! The `otgate` binary: parses the command line and the configuration, wires the crates, and
//! does nothing else. Exit codes: 0 success, 1 failure or refusal, 64 bad configuration.

mod cli;
mod client;
mod commands;
mod config;
mod control;
mod detection;
mod hostkey;
mod indexer;
mod node;
mod output;
mod plc;
mod remote;
mod simulator;

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

/// Exit code for a bad configuration (EX_USAGE).
const EXIT_CONFIG: u8 = 64;

fn main() -> ExitCode {
    // One crypto provider for every rustls user in the process.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = cli::Cli::parse();
    let default_level = if commands::is_server(&cli.command) {
        "info"
    } else {
        "warn"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("OTGATE_LOG").unwrap_or_else(|_| EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("otgate: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            if let Some(commands::ExitCode(code)) = error.downcast_ref::<commands::ExitCode>() {
                return ExitCode::from(*code);
            }
            eprintln!("otgate: {error:#}");
            if error.downcast_ref::<config::ConfigError>().is_some() {
                ExitCode::from(EXIT_CONFIG)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
