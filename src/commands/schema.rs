//! `lmsinfra schema`: print a JSON Schema.

use super::print_stdout;
use crate::cli::{SchemaArgs, SchemaKind};
use crate::error::{Error, Outcome};
use crate::manifest;
use crate::plan;

pub(super) fn schema(args: SchemaArgs) -> Result<Outcome, Error> {
    let schema = match args.kind {
        SchemaKind::Manifest => manifest::Manifest::json_schema(),
        SchemaKind::Plan => plan::schema().into(),
    };
    let text = serde_json::to_string_pretty(&schema).expect("a JSON Schema serialises to JSON");
    print_stdout(&text)?;
    Ok(Outcome::Success)
}
