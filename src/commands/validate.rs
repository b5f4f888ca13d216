//! `lmsinfra validate`: check manifests offline and print their diagnostics.

use crate::cli::{DiagnosticFormat, ValidateArgs};
use crate::error::{Error, Outcome};
use crate::manifest;
use crate::printer::Printer;
use crate::settings::Settings;

pub(super) fn validate(
    settings: &Settings,
    printer: Printer,
    args: ValidateArgs,
) -> Result<Outcome, Error> {
    let validation = manifest::check_all(&settings.dir, &args.environments)?;
    match args.format {
        DiagnosticFormat::Text => {
            for diagnostic in &validation.diagnostics {
                printer.diagnostic(diagnostic.clone());
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
            printer.data(&text)?;
        }
    }
    if !validation.is_valid() {
        return Err(Error::ValidationFailed(validation.summary()));
    }
    printer.status(validation.summary());
    Ok(Outcome::Success)
}
