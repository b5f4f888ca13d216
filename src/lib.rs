//! lmsinfra keeps a Cloudflare Workers + D1 application's infrastructure equal to what its
//! manifests say: `validate` checks manifests offline, `plan` diffs them against the live
//! account, `apply` makes the account match.

mod account;
mod address;
mod apply;
mod backup;
mod check;
mod cli;
pub mod cloudflare;
mod commands;
mod edge;
mod error;
mod interrupt;
pub mod live;
pub mod manifest;
pub mod migrations;
pub mod plan;
mod printer;
pub mod probe;
mod release;
pub mod render;
pub mod rotation;
mod sandbox;
pub mod secret;
mod settings;
#[cfg(test)]
mod testing;
mod wrangler;

use std::process::ExitCode;

use clap::FromArgMatches;

/// Parse the command line, run it, and turn the outcome into an exit code.
pub fn run() -> ExitCode {
    let parsed = cli::command()
        .try_get_matches()
        .and_then(|matches| cli::Cli::from_arg_matches(&matches));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(err) => {
            // Usage errors exit 1: exit 2 means "plan has changes".
            if !err.use_stderr() {
                let _ = err.print();
                return ExitCode::SUCCESS;
            }
            print_usage_error(&err, std::env::args_os().skip(1));
            return ExitCode::from(1);
        }
    };
    let settings = settings::Settings::new(&cli.global);
    let printer = printer::Printer::init(&settings);
    match commands::run(cli.command, &settings, printer) {
        Ok(outcome) => ExitCode::from(outcome.code()),
        Err(mut err) => {
            let code = err.exit_code();
            for problem in err.take_problems() {
                printer.diagnostic(problem);
            }
            printer.error(err.into());
            ExitCode::from(code)
        }
    }
}

/// Print clap's usage error, in the style of every other error, without the arguments it quotes. clap quotes the argument it could
/// not place, and that argument may be a secret value typed where a name was expected
/// (`apply staging NAME=value`, `--secret NAME value`): every argument that is not an option's
/// name is withheld from the message, and a note says how secrets are passed instead.
fn print_usage_error(err: &clap::Error, args: impl Iterator<Item = std::ffi::OsString>) {
    let rendered = err.render();
    let mut text = rendered.to_string();
    let mut withheld = false;
    for arg in args {
        let arg = arg.to_string_lossy();
        let mut quoted = vec![arg.as_ref()];
        match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with('-') => quoted.push(value),
            _ if arg.starts_with('-') => continue,
            _ => {}
        }
        for value in quoted.into_iter().filter(|value| !value.is_empty()) {
            for form in [format!("'{value}'"), format!(" {value}'")] {
                if text.contains(&form) {
                    let hidden = form.replace(value, "…");
                    text = text.replace(&form, &hidden);
                    withheld = true;
                }
            }
        }
    }
    let text = text.trim();
    let (message, rest) = text.split_once("\n\n").unwrap_or((text, ""));
    let message = message.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut help: Vec<&str> = rest
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect();
    if withheld {
        help.push(
            "arguments are not repeated here: one may be a secret value. A secret is passed as \
             --secret NAME=env:VAR, NAME=file:PATH or NAME=stdin, never on the command line.",
        );
    }
    // The options are not parsed, so the error is shown as every other one with the defaults.
    let settings = settings::Settings {
        dir: ".".into(),
        target: settings::Target::Cloudflare,
        concurrency: 1,
        quiet: false,
        verbose: 0,
        color: anstream::ColorChoice::Auto,
    };
    printer::Printer::init(&settings).error(miette::Report::new(error::UsageError {
        message: message.trim_start_matches("error: ").to_owned(),
        help: help.join("\n"),
    }));
}
