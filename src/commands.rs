//! One module per subcommand; this file only dispatches.

mod alerts;
mod assets;
mod check;
mod connect;
mod demo;
mod detector;
mod events;
mod init;
mod login;
mod quarantine;
mod recordings;
mod request;
mod serve;
mod ssh;
mod users;

use anyhow::Result;

use crate::cli::{Cli, Command};

/// Runs the parsed command.
pub async fn run(cli: Cli) -> Result<()> {
    match &cli.command {
        Command::Init(args) => init::run(args).await,
        Command::Serve { config } => serve::run(config).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Check { config } => check::run(config),
        Command::Openapi => {
            println!("{}", otgate_web::openapi_json());
            Ok(())
        }
        Command::Login(args) => login::login(&cli, args).await,
        Command::Logout => login::logout(&cli).await,
        Command::Assets(command) => assets::run(&cli, command).await,
        Command::Users(command) => users::users(&cli, command).await,
        Command::Keys(command) => users::keys(&cli, command).await,
        Command::Vault(command) => users::vault(&cli, command).await,
        Command::Request(command) => request::request(&cli, command).await,
        Command::Grant(command) => request::grant(&cli, command).await,
        Command::Quarantine(command) => quarantine::run(&cli, command).await,
        Command::Events(args) => events::run(&cli, args).await,
        Command::Ssh(args) => ssh::run(&cli, args).await,
        Command::Connect(args) => connect::run(&cli, args).await,
        Command::Sessions(command) => recordings::sessions(&cli, command).await,
        Command::Replay(args) => recordings::replay(&cli, args).await,
        Command::Alerts(command) => alerts::run(&cli, command).await,
        Command::Detector(command) => detector::run(&cli, command),
        Command::Audit(command) => match recordings::audit(&cli, command).await? {
            0 => Ok(()),
            code => Err(ExitCode(code).into()),
        },
    }
}

/// A command that finished its work but must exit with this status (e.g. a failed
/// verification, already reported).
#[derive(Debug, thiserror::Error)]
#[error("exit status {0}")]
pub struct ExitCode(pub u8);

/// Whether the command runs a server (and so logs at info level).
pub fn is_server(command: &Command) -> bool {
    matches!(command, Command::Serve { .. })
        || matches!(command, Command::Demo(args) if args.command.is_none())
}
