//! The plan as markdown for a pull-request comment: a summary line, blockers first, then each
//! resource in a collapsed `<details>` block with a `diff` code fence (GitHub colours the
//! symbols). Cut at GitHub's comment limit with a visible note.

use std::fmt::Write;

use super::lines::{resource_action, resource_lines, verb};
use super::summary_line;
use crate::plan::{Action, Plan};

/// The longest comment produced; GitHub refuses comments over 65,536 characters.
pub const MARKDOWN_LIMIT: usize = 65_000;

/// Render the plan as markdown.
pub fn markdown(plan: &Plan) -> String {
    let mut head = String::new();
    let _ = writeln!(head, "<!-- lmsinfra-plan:{} -->", plan.environment);
    match &plan.base {
        None => {
            let _ = writeln!(head, "### lmsinfra plan: `{}`\n", plan.environment);
        }
        Some(base) => {
            let _ = writeln!(
                head,
                "### lmsinfra diff: `{}`\n\nThe manifest change compared with `{base}`, not with the live account.\n",
                plan.environment
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
        for b in &plan.blockers {
            let _ = writeln!(head, "> - `{}`: {}", b.address, b.message);
            for hint in &b.hints {
                let _ = writeln!(head, ">   - `{hint}`");
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
        let mut s = String::new();
        let _ = writeln!(
            s,
            "<details><summary><code>{} {resource}</code> {}</summary>\n\n```diff",
            action.symbol(),
            verb(action)
        );
        for line in resource_lines(&resource, &changes) {
            // GitHub colours a diff line by its first character.
            let symbol = match line.symbol {
                "-/+" => "!",
                "~" => "!",
                other => other,
            };
            let _ = writeln!(s, "{symbol} {}{}", "    ".repeat(line.depth), line.marked());
        }
        let _ = writeln!(s, "```\n\n</details>\n");
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
                d.address,
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
            let _ = writeln!(s, "- `{}`: {}", w.address, w.message);
        }
        s.push('\n');
        sections.push(s);
    }
    fit(head, &sections, &plan.environment)
}

/// A value safe inside a table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('`', "'")
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
