//! lmsinfra keeps a Cloudflare Workers + D1 application's infrastructure equal to what its
//! manifests say: `validate` checks manifests offline, `plan` diffs them against the live
//! account, `apply` makes the account match.

mod apply;
mod check;
mod cli;
pub mod cloudflare;
mod error;
pub mod live;
pub mod manifest;
mod output;
pub mod plan;
pub mod probe;
pub mod render;
mod sandbox;
pub mod secret;
mod wrangler;

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
    output::init(&cli.global);
    match cli::run(cli) {
        Ok(outcome) => ExitCode::from(outcome.code()),
        Err(err) => {
            output::report(err.into());
            ExitCode::from(1)
        }
    }
}
