//! `lmsinfra completions`: a shell completion script.

use super::print_stdout;
use crate::cli::{Cli, CompletionsArgs};
use crate::error::{Error, Outcome};

pub(super) fn completions(args: CompletionsArgs) -> Result<Outcome, Error> {
    use clap::CommandFactory;
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "lmsinfra", &mut script);
    print_stdout(String::from_utf8_lossy(&script).trim_end())?;
    Ok(Outcome::Success)
}
