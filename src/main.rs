//! The `shiplog` binary: parse the command line, load the configuration, run the command.

mod cli;
mod commands;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};
use shiplog::exit;

fn main() -> ExitCode {
    shiplog::secret::protect_process();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let code = match err.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    exit::OK
                }
                _ => exit::USAGE,
            };
            let _ = err.print();
            return ExitCode::from(code as u8);
        }
    };
    // One stream needs one thread (its output has a thread of its own): no work stealing and no
    // hand-offs between workers. The team's commands follow many streams at once.
    let mut runtime = match cli.command {
        Some(Command::Follow(_) | Command::Logs(_)) => {
            tokio::runtime::Builder::new_current_thread()
        }
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = match runtime.enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("shiplog: could not start: {err}");
            return ExitCode::from(exit::FOLLOW_FAILED as u8);
        }
    };
    let exit = runtime.block_on(async move {
        match cli.command.clone() {
            Some(Command::Follow(args)) => commands::follow::run(&cli, args).await,
            Some(Command::Logs(args)) => commands::logs::run(&cli, args).await,
            Some(Command::Demo(args)) => commands::demo::run(&cli, args).await,
            Some(Command::Watch) => commands::watch::run(&cli).await,
            Some(Command::Serve { json, .. }) => commands::serve::run(&cli, json).await,
            Some(Command::Alerts(cli::AlertsCommand::Check { file })) => {
                commands::alerts::check(&cli, &file).await
            }
            Some(Command::Alerts(cli::AlertsCommand::Test { channel })) => {
                commands::alerts::test(&cli, &channel).await
            }
            Some(Command::Alerts(command)) => commands::alert_actions::run(&cli, command).await,
            Some(Command::Breakglass(command)) => commands::breakglass::run(&cli, command).await,
            Some(Command::Deployments(command)) => commands::deployments::run(&cli, command).await,
            Some(Command::Webhooks(command)) => commands::hooks::webhooks(&cli, command).await,
            Some(Command::Drains(command)) => commands::hooks::drains(&cli, command).await,
            Some(Command::Silences(command)) => commands::silences::run(&cli, command).await,
            Some(Command::Login(args)) => commands::login::run(&cli, args).await,
            Some(Command::Vault(cli::VaultCommand::Rotate)) => commands::vault::rotate(&cli).await,
            None => commands::dashboard::run(&cli).await,
        }
    });
    let code = exit.unwrap_or_else(|failure| {
        failure.report();
        failure.code
    });
    // Followers may still be winding down on other threads; their state is saved already.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    ExitCode::from(code as u8)
}
