//! Renderers: one `Plan`, three forms — text for terminals, JSON for machines, markdown for
//! pull-request comments. Text and markdown share [`lines`], so they cannot disagree. [`graph`]
//! draws an environment, marked by a plan.

pub mod graph;
mod lines;
mod markdown;
#[cfg(test)]
mod tests;
mod text;

pub use markdown::{MARKDOWN_LIMIT, markdown, markdown_with_diagram};
pub use text::text;

use crate::plan::Plan;

/// The forms a plan can be printed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Terraform-style text, coloured on a terminal.
    Text,
    /// The JSON plan (its schema: `lmsinfra schema plan`).
    Json,
    /// Markdown for a pull-request comment.
    Markdown,
}

/// Render a plan; `color` only affects text.
pub fn render(plan: &Plan, format: Format, color: bool) -> String {
    match format {
        Format::Text => text(plan, color),
        Format::Json => json(plan),
        Format::Markdown => markdown(plan),
    }
}

/// The JSON plan, pretty-printed, with a final newline.
pub fn json(plan: &Plan) -> String {
    let mut out = serde_json::to_string_pretty(plan).expect("a plan always serializes");
    out.push('\n');
    out
}

/// The summary line: Terraform's words.
pub fn summary_line(plan: &Plan) -> String {
    if plan.is_empty() {
        return match &plan.base {
            None => "No changes. Live infrastructure matches the manifest.".to_owned(),
            Some(base) => format!(
                "No changes. The manifest for {} means the same as at {base}.",
                plan.environment
            ),
        };
    }
    let s = plan.summary();
    let mut line = format!(
        "Plan: {} to add, {} to change, {} to destroy.",
        s.add, s.change, s.destroy
    );
    if !plan.drift.is_empty() {
        line.push_str(&format!(
            " {} drifted header{} apply cannot fix.",
            plan.drift.len(),
            if plan.drift.len() == 1 { "" } else { "s" }
        ));
    }
    line
}
