//! lmsinfra keeps a Cloudflare Workers + D1 application's infrastructure equal to what its
//! manifests say: `validate` checks manifests offline, `plan` diffs them against the live
//! account, `apply` makes the account match.

mod account;
pub mod apply;
pub mod check;
pub mod cli;
pub mod cloudflare;
mod commands;
pub mod error;
pub mod live;
pub mod manifest;
pub mod plan;
mod printer;
pub mod probe;
pub mod render;
pub mod sandbox;
pub mod secret;
mod settings;
pub mod wrangler;

use std::process::ExitCode;

use clap::Parser;

/// Parse the command line, run it, and turn the outcome into an exit code.
pub fn run() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // Usage errors exit 1: exit 2 means "plan has changes".
            let code = if err.use_stderr() { 1 } else { 0 };
            let _ = err.print();
            return ExitCode::from(code);
        }
    };
    let settings = settings::Settings::new(&cli.global);
    let printer = printer::Printer::init(&settings);
    match commands::run(cli.command, &settings, printer) {
        Ok(outcome) => ExitCode::from(outcome.code()),
        Err(err) => {
            let code = err.exit_code();
            printer.error(err.into());
            ExitCode::from(code)
        }
    }
}
