//! `lmsinfra completions`: a shell completion script.

use crate::cli::CompletionsArgs;
use crate::error::{Error, Outcome};
use crate::printer::Printer;

pub(super) fn completions(printer: Printer, args: CompletionsArgs) -> Result<Outcome, Error> {
    let mut command = crate::cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "lmsinfra", &mut script);
    printer.data(String::from_utf8_lossy(&script).trim_end())?;
    Ok(Outcome::Success)
}
