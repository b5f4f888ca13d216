//! The plan as Terraform-style text: one block per resource, drift and warnings, the summary,
//! and blockers last, in red.

use std::fmt::Write;

use anstyle::{AnsiColor, Style};

use super::lines::{Line, Segment, resource_action, resource_lines, verb};
use super::summary_line;
use crate::plan::{Action, Plan};

fn style(symbol: &str) -> Style {
    let color = match symbol {
        "+" => AnsiColor::Green,
        "-" => AnsiColor::Red,
        "~" => AnsiColor::Yellow,
        "-/+" => AnsiColor::Magenta,
        _ => return Style::new(),
    };
    Style::new().fg_color(Some(color.into()))
}

struct Painter {
    color: bool,
}

impl Painter {
    fn paint(&self, style: Style, text: &str) -> String {
        if self.color {
            format!("{style}{text}{style:#}")
        } else {
            text.to_owned()
        }
    }

    fn line(&self, indent: usize, line: &Line) -> String {
        let pad = " ".repeat(indent + 4 * line.depth);
        let symbol = self.paint(style(line.symbol).bold(), &format!("{:>3}", line.symbol));
        let text = if self.color {
            line.text
                .iter()
                .map(|s| match s {
                    Segment::Plain(t) => t.clone(),
                    Segment::Removed(t) => self.paint(style("-").strikethrough(), t),
                    Segment::Added(t) => self.paint(style("+").underline(), t),
                })
                .collect()
        } else {
            line.marked()
        };
        format!("{pad}{symbol} {text}")
    }
}

/// Render the plan as text.
pub fn text(plan: &Plan, color: bool) -> String {
    let p = Painter { color };
    let bold = Style::new().bold();
    let red = Style::new().fg_color(Some(AnsiColor::Red.into())).bold();
    let yellow = Style::new().fg_color(Some(AnsiColor::Yellow.into()));
    let mut out = String::new();
    let resources: Vec<_> = plan
        .resources()
        .into_iter()
        .filter(|(_, changes)| changes.iter().any(|c| c.action != Action::NoOp))
        .collect();
    if !resources.is_empty() {
        let _ = match &plan.base {
            None => writeln!(
                out,
                "lmsinfra will perform the following actions on {} (account {}):\n",
                p.paint(bold, &plan.environment),
                plan.account_id
            ),
            Some(base) => writeln!(
                out,
                "The manifest change means these actions on {} (compared with {base}, not with the live account):\n",
                p.paint(bold, &plan.environment),
            ),
        };
    }
    for (resource, changes) in &resources {
        let action = resource_action(resource, changes);
        let _ = writeln!(
            out,
            "  {}",
            p.paint(bold, &format!("# {resource} {}", verb(action)))
        );
        let header = Line {
            symbol: action.symbol(),
            depth: 0,
            text: vec![Segment::Plain(format!("{resource} {{"))],
        };
        let _ = writeln!(out, "{}", p.line(0, &header));
        for line in resource_lines(resource, changes) {
            let _ = writeln!(out, "{}", p.line(4, &line));
        }
        let _ = writeln!(out, "    }}\n");
    }
    if !plan.drift.is_empty() {
        let _ = writeln!(
            out,
            "{}",
            p.paint(
                bold,
                "Drift that apply cannot fix (the Worker's code must):"
            )
        );
        for d in &plan.drift {
            let actual = d
                .actual
                .as_ref()
                .map_or("missing".to_owned(), |a| format!("{a:?}"));
            let _ = writeln!(
                out,
                "  {} {}: {actual}, expected {:?}\n      {}",
                p.paint(yellow, "!"),
                d.address,
                d.expected,
                d.reason
            );
        }
        out.push('\n');
    }
    if !plan.warnings.is_empty() {
        let _ = writeln!(out, "{}", p.paint(bold, "Warnings:"));
        for w in &plan.warnings {
            let _ = writeln!(
                out,
                "  {} {}: {}",
                p.paint(yellow, "!"),
                w.address,
                w.message
            );
        }
        out.push('\n');
    }
    let _ = writeln!(out, "{}", p.paint(bold, &summary_line(plan)));
    if plan.is_blocked() {
        let _ = writeln!(
            out,
            "\n{}",
            p.paint(
                red,
                &format!(
                    "Blocked: apply will refuse until {} resolved:",
                    if plan.blockers.len() == 1 {
                        "this is".to_owned()
                    } else {
                        format!("these {} are", plan.blockers.len())
                    }
                )
            )
        );
        for b in &plan.blockers {
            let _ = writeln!(
                out,
                "  {} {}: {}",
                p.paint(red, "✗"),
                b.address,
                p.paint(red, &b.message)
            );
            for hint in &b.hints {
                let _ = writeln!(out, "      {hint}");
            }
        }
    }
    out
}
