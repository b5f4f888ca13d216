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

/// `text` with every control character (and every bidirectional override, which reorders what
/// a terminal shows) written as an escape: names that come from the API must not move the
/// cursor, clear the screen, set the window title or forge a line of the plan.
pub(super) fn terminal_safe(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char =
        |c: char| c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else if unsafe_char(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
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
                    Segment::Plain(t) => terminal_safe(t).into_owned(),
                    Segment::Removed(t) => {
                        self.paint(style("-").strikethrough(), &terminal_safe(t))
                    }
                    Segment::Added(t) => self.paint(style("+").underline(), &terminal_safe(t)),
                })
                .collect()
        } else {
            terminal_safe(&line.marked()).into_owned()
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
        let name = terminal_safe(&resource.to_string()).into_owned();
        let _ = writeln!(
            out,
            "  {}",
            p.paint(bold, &format!("# {name} {}", verb(resource, action)))
        );
        let header = Line {
            symbol: action.symbol(),
            depth: 0,
            text: vec![Segment::Plain(format!("{name} {{"))],
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
                terminal_safe(&d.address.to_string()),
                d.expected,
                terminal_safe(&d.reason)
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
                terminal_safe(&w.address.to_string()),
                terminal_safe(&w.message)
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
        // A hint several blockers share (the command that supplies every missing secret) is
        // shown once, after the last of them.
        for (at, b) in plan.blockers.iter().enumerate() {
            let _ = writeln!(
                out,
                "  {} {}: {}",
                p.paint(red, "✗"),
                terminal_safe(&b.address.to_string()),
                p.paint(red, &terminal_safe(&b.message))
            );
            for hint in &b.hints {
                let later = plan.blockers[at + 1..]
                    .iter()
                    .any(|l| l.hints.contains(hint));
                if !later {
                    let _ = writeln!(out, "      {}", terminal_safe(hint));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Address, DiffOptions, Unmanaged, Warning, diff};
    use crate::testing::{STAGING, audited, manifest};

    #[test]
    fn control_characters_from_the_api_are_escaped() {
        let mut plan = diff(&manifest(STAGING), &audited(), &DiffOptions::default());
        plan.warnings.push(Warning {
            address: Address::Unmanaged {
                kind: Unmanaged::Worker,
                name: "\u{1b}[2J".to_owned(),
            },
            message: "binding `X\u{202e}gpj.exe` is\nPlan: 0 to add".to_owned(),
        });
        let Address::D1 { key } = &mut plan.changes[0].address else {
            panic!("the audited plan starts with its database");
        };
        key.push_str("\u{1b}]0;title\u{7}");
        for color in [false, true] {
            let out = text(&plan, color);
            assert!(!out.contains("\u{1b}[2J"), "{out}");
            assert!(!out.contains("\u{1b}]0"), "{out}");
            assert!(!out.contains('\u{7}') && !out.contains('\u{202e}'), "{out}");
            assert!(out.contains("unmanaged.worker.\\u{1b}[2J: "), "{out}");
            assert!(out.contains("is\\nPlan: 0 to add"), "{out}");
            assert!(out.contains("X\\u{202e}gpj.exe"), "{out}");
        }
    }
}
