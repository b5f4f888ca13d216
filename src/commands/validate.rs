//! `lmsinfra validate`: check manifests offline and print their diagnostics; with `--strict`,
//! as CI runs it, a warning fails too.

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
    let warned = validation.diagnostics.iter().any(|d| !d.is_error());
    let valid = validation.is_valid() && !(args.strict && warned);
    match args.format {
        DiagnosticFormat::Text => {
            for diagnostic in &validation.diagnostics {
                printer.diagnostic(diagnostic.clone());
            }
        }
        DiagnosticFormat::Json => {
            let document = serde_json::json!({
                "valid": valid,
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
    if !valid {
        return Err(Error::ValidationFailed(format!(
            "{}; --strict treats warnings as errors",
            validation.summary()
        )));
    }
    printer.status(validation.summary());
    Ok(Outcome::Success)
}
