//! The plan as markdown for a pull-request comment: a summary line, blockers first, then each
//! resource in a collapsed `<details>` block with a `diff` code fence (GitHub colours the
//! symbols), and a mermaid diagram of the environment in a collapsed section last. Cut at
//! GitHub's comment limit with a visible note; the diagram is the first thing left out.

use std::fmt::Write;

use super::lines::{resource_action, resource_lines, verb};
use super::summary_line;
use super::text::terminal_safe;
use crate::plan::{Action, Plan};

/// The longest comment produced; GitHub refuses comments over 65,536 characters.
pub const MARKDOWN_LIMIT: usize = 65_000;

/// Render the plan as markdown.
pub fn markdown(plan: &Plan) -> String {
    markdown_with_diagram(plan, None)
}

/// Render the plan as markdown, with `mermaid` (a diagram of the environment the plan marks)
/// in a collapsed section at the end when it fits.
pub fn markdown_with_diagram(plan: &Plan, mermaid: Option<&str>) -> String {
    let mut head = String::new();
    let _ = writeln!(head, "<!-- lmsinfra-plan:{} -->", html(&plan.environment));
    match &plan.base {
        None => {
            let _ = writeln!(head, "### lmsinfra plan: {}\n", code(&plan.environment));
        }
        Some(base) => {
            let _ = writeln!(
                head,
                "### lmsinfra diff: {}\n\nThe manifest change compared with {}, not with the live account.\n",
                code(&plan.environment),
                code(base)
            );
        }
    }
    let verdict = if plan.is_blocked() {
        format!(" — **blocked** ({} to resolve)", plan.blockers.len())
    } else {
        String::new()
    };
    let _ = writeln!(head, "**{}**{verdict}\n", summary_line(plan));
    if plan.is_blocked() {
        let _ = writeln!(
            head,
            "> [!CAUTION]\n> **Apply will refuse until these are resolved:**"
        );
        // A hint several blockers share is shown once, after the last of them, as in text.
        for (at, b) in plan.blockers.iter().enumerate() {
            let _ = writeln!(
                head,
                "> - {}: {}",
                code(&b.address.to_string()),
                html(&b.message)
            );
            for hint in &b.hints {
                if !plan.blockers[at + 1..]
                    .iter()
                    .any(|l| l.hints.contains(hint))
                {
                    let _ = writeln!(head, ">   - {}", code(hint));
                }
            }
        }
        head.push('\n');
    }

    let mut sections = Vec::new();
    for (resource, changes) in plan.resources() {
        let action = resource_action(&resource, &changes);
        if action == Action::NoOp {
            continue;
        }
        let lines: Vec<String> = resource_lines(&resource, &changes)
            .iter()
            .map(|line| {
                // GitHub colours a diff line by its first character.
                let symbol = match line.symbol {
                    "-/+" => "!",
                    "~" => "!",
                    other => other,
                };
                let text = terminal_safe(&line.marked()).into_owned();
                format!("{symbol} {}{text}", "    ".repeat(line.depth))
            })
            .collect();
        // A fence longer than any run of backticks in the lines, so none can close it.
        let fence = "`".repeat(longest_backtick_run(&lines.concat()).max(2) + 1);
        let mut s = String::new();
        let _ = writeln!(
            s,
            "<details><summary><code>{} {}</code> {}</summary>\n\n{fence}diff",
            action.symbol(),
            html(&resource.to_string()),
            verb(&resource, action)
        );
        for line in lines {
            let _ = writeln!(s, "{line}");
        }
        let _ = writeln!(s, "{fence}\n\n</details>\n");
        sections.push(s);
    }
    if !plan.drift.is_empty() {
        let mut s = String::from(
            "#### Drift that apply cannot fix\n\n| header | live | expected |\n| --- | --- | --- |\n",
        );
        for d in &plan.drift {
            let _ = writeln!(
                s,
                "| `{}` | {} | `{}` |",
                cell(&d.address.to_string()),
                d.actual
                    .as_ref()
                    .map_or("missing".to_owned(), |a| format!("`{}`", cell(a))),
                cell(&d.expected)
            );
        }
        s.push('\n');
        sections.push(s);
    }
    if !plan.warnings.is_empty() {
        let mut s = String::from("#### Warnings\n\n");
        for w in &plan.warnings {
            let _ = writeln!(
                s,
                "- {}: {}",
                code(&w.address.to_string()),
                html(&w.message)
            );
        }
        s.push('\n');
        sections.push(s);
    }
    if let Some(mermaid) = mermaid {
        // The diagram's labels come from a restricted alphabet (`render::graph`): no backtick
        // can close the fence.
        sections.push(format!(
            "<details><summary>Diagram of {}</summary>\n\n```mermaid\n{}\n```\n\n</details>\n",
            html(&plan.environment),
            mermaid.trim_end()
        ));
    }
    fit(head, &sections, &plan.environment)
}

/// A value safe inside a table cell.
fn cell(text: &str) -> String {
    html(text).replace('|', "\\|").replace('`', "'")
}

/// Text that stays text: control characters escaped, and `<`, `>`, `&` as entities, so a name
/// from the API cannot open or close an HTML block (`</details>`, `<!--`) in the comment.
fn html(text: &str) -> String {
    terminal_safe(text)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `text` as an inline code span that nothing in it can close: the span's backtick fence is
/// longer than any run of backticks inside, as CommonMark allows.
fn code(text: &str) -> String {
    let text = terminal_safe(text);
    let fence = "`".repeat(longest_backtick_run(&text) + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{text}{pad}{fence}")
}

fn longest_backtick_run(text: &str) -> usize {
    text.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

/// The head and as many whole sections as fit under the limit, with a note when some did not.
fn fit(head: String, sections: &[String], environment: &str) -> String {
    let total: usize = head.len() + sections.iter().map(String::len).sum::<usize>();
    if total <= MARKDOWN_LIMIT {
        return sections.iter().fold(head, |out, s| out + s);
    }
    let note = |left: usize| {
        format!(
            "\n> [!WARNING]\n> **Cut to fit a comment:** {left} more section{} of this {total}-character plan are not shown. Run `lmsinfra plan {environment}` for the whole plan.\n",
            if left == 1 { "" } else { "s" }
        )
    };
    let mut out = head;
    for (shown, section) in sections.iter().enumerate() {
        let left = sections.len() - shown;
        if out.len() + section.len() + note(left - 1).len() > MARKDOWN_LIMIT {
            out.push_str(&note(left));
            return out;
        }
        out.push_str(section);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Address, Blocker, BlockerKind, DiffOptions, Warning, diff};
    use crate::testing::{STAGING, audited, manifest};

    /// The audited plan with names from the API that try to escape their markup.
    fn hostile_plan() -> Plan {
        let mut plan = diff(&manifest(STAGING), &audited(), &DiffOptions::default());
        plan.warnings.push(Warning {
            address: Address::D1 {
                key: "x` </details> <!--".to_owned(),
            },
            message: "database `lms`</code></summary> \u{1b}]0;owned\u{7} found".to_owned(),
        });
        plan.blockers.push(Blocker {
            address: Address::Worker {
                key: "``api".to_owned(),
            },
            kind: BlockerKind::MissingWorker,
            message: "<img src=x onerror=alert(1)>".to_owned(),
            hints: vec!["run `x` ```".to_owned()],
        });
        let Address::D1 { key } = &mut plan.changes[0].address else {
            panic!("the audited plan starts with its database");
        };
        key.push_str("</code></summary></details>\n```");
        if let Some(serde_json::Value::Object(after)) = &mut plan.changes[0].after {
            after.insert("name".to_owned(), "lms```\n</details>".into());
        }
        plan
    }

    #[test]
    fn names_from_the_api_cannot_close_code_spans_or_details_blocks() {
        let out = markdown(&hostile_plan());
        assert!(!out.contains('\u{1b}'), "{out}");
        assert!(!out.contains("<img"), "{out}");
        let starting = |tag: &str| out.lines().filter(|line| line.starts_with(tag)).count();
        assert_eq!(starting("<details>"), 2, "{out}");
        assert_eq!(starting("</details>"), 2, "{out}");
        assert_eq!(out.matches("</summary>").count(), 2, "{out}");
        // Inside a code span, HTML is text; the span's fence is longer than the name's backticks.
        assert!(out.contains("- ``d1.x` </details> <!--``:"), "{out}");
        assert!(out.contains("> - ```worker.``api```:"), "{out}");
        assert!(
            out.contains("````diff"),
            "a fence longer than the name's backticks: {out}"
        );
    }

    #[test]
    fn the_diagram_comes_last_and_is_left_out_when_it_would_pass_the_limit() {
        let plan = diff(&manifest(STAGING), &audited(), &DiffOptions::default());
        let small = markdown_with_diagram(&plan, Some("flowchart LR\n  a --> b"));
        assert!(
            small.ends_with("```mermaid\nflowchart LR\n  a --> b\n```\n\n</details>\n"),
            "{small}"
        );
        let huge = format!(
            "flowchart LR\n{}",
            "  a --> b\n".repeat(MARKDOWN_LIMIT / 10)
        );
        let cut = markdown_with_diagram(&plan, Some(&huge));
        assert!(cut.len() <= MARKDOWN_LIMIT, "{}", cut.len());
        assert!(!cut.contains("```mermaid"));
        assert!(
            cut.contains("**Cut to fit a comment:** 1 more section"),
            "{cut}"
        );
        assert!(cut.starts_with(&markdown(&plan)));
    }

    #[test]
    fn code_spans_pad_text_that_starts_or_ends_with_a_backtick() {
        assert_eq!(code("plain"), "`plain`");
        assert_eq!(code("`x"), "`` `x ``");
        assert_eq!(code("a\u{1b}b"), "`a\\u{1b}b`");
    }
}
