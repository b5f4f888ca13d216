//! `lmsinfra schema`: print a JSON Schema.

use crate::cli::{SchemaArgs, SchemaKind};
use crate::error::{Error, Outcome};
use crate::manifest;
use crate::plan;
use crate::printer::Printer;

pub(super) fn schema(printer: Printer, args: SchemaArgs) -> Result<Outcome, Error> {
    let schema = match args.kind {
        SchemaKind::Manifest => manifest::Manifest::json_schema(),
        SchemaKind::Plan => plan::schema().into(),
    };
    let text = serde_json::to_string_pretty(&schema).expect("a JSON Schema serialises to JSON");
    printer.data(&text)?;
    Ok(Outcome::Success)
}
