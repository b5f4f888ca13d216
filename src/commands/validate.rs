//! `lmsinfra validate`: check manifests offline and print their diagnostics.

use super::print_stdout;
use crate::cli::{DiagnosticFormat, ValidateArgs};
use crate::error::{Error, Outcome};
use crate::manifest;
use crate::settings::Settings;

pub(super) fn validate(settings: &Settings, args: ValidateArgs) -> Result<Outcome, Error> {
    let validation = manifest::check_all(&settings.dir, &args.environments)?;
    match args.format {
        DiagnosticFormat::Text => {
            for diagnostic in &validation.diagnostics {
                if diagnostic.is_error() || !settings.quiet {
                    anstream::eprintln!("{:?}", miette::Report::new(diagnostic.clone()));
                }
            }
        }
        DiagnosticFormat::Json => {
            let document = serde_json::json!({
                "valid": validation.is_valid(),
                "summary": validation.summary(),
                "environments": validation.environments,
                "diagnostics": validation.diagnostics,
            });
            let text =
                serde_json::to_string_pretty(&document).expect("diagnostics serialise to JSON");
            print_stdout(&text)?;
        }
    }
    if !validation.is_valid() {
        return Err(Error::ValidationFailed(validation.summary()));
    }
    if !settings.quiet {
        anstream::eprintln!("{}", validation.summary());
    }
    Ok(Outcome::Success)
}
