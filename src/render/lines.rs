//! The body of each resource block as lines with a symbol and a depth, shared by the text and
//! markdown renderers.

use serde_json::Value;

use crate::plan::{Action, Address, Change, KNOWN_AFTER_APPLY, SENSITIVE};

/// Strings longer than this are shown as a word diff rather than `old -> new`.
const LONG_VALUE: usize = 60;

/// One line of a resource block.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Line {
    /// `+`, `-`, `~`, `-/+` or blank.
    pub(crate) symbol: &'static str,
    /// Nesting below the resource (0: an attribute of the resource).
    pub(crate) depth: usize,
    /// The text after the symbol.
    pub(crate) text: Vec<Segment>,
}

/// A run of text, with what it means for colouring a word diff.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Segment {
    /// Plain text.
    Plain(String),
    /// Text only the old value has.
    Removed(String),
    /// Text only the new value has.
    Added(String),
}

impl Line {
    fn plain(symbol: &'static str, depth: usize, text: String) -> Self {
        Self {
            symbol,
            depth,
            text: vec![Segment::Plain(text)],
        }
    }

    /// The line's text with word-diff markers (`[-old-]{+new+}`), for output without colour.
    pub(crate) fn marked(&self) -> String {
        self.text
            .iter()
            .map(|s| match s {
                Segment::Plain(t) => t.clone(),
                Segment::Removed(t) => format!("[-{t}-]"),
                Segment::Added(t) => format!("{{+{t}+}}"),
            })
            .collect()
    }
}

/// What happens to a resource, in the words of a plan's headings. lmsinfra never creates a
/// Worker: a new one (in `diff` of a new environment) is deployed by wrangler first.
pub(crate) fn verb(resource: &Address, action: Action) -> &'static str {
    match action {
        Action::Create if matches!(resource, Address::Worker { .. }) => {
            "must be deployed (wrangler deploy), then apply sets it up"
        }
        Action::Create => "will be created",
        Action::Update => "will be updated in-place",
        Action::Replace => "must be replaced",
        Action::Delete => "will be destroyed",
        Action::NoOp => "is unchanged",
    }
}

/// What a resource's header says will happen to it.
pub(crate) fn resource_action(resource: &Address, changes: &[&Change]) -> Action {
    match changes.iter().find(|c| &c.address == resource) {
        Some(own) if own.action != Action::NoOp => own.action,
        _ if changes.iter().any(|c| c.action != Action::NoOp) => Action::Update,
        _ => Action::NoOp,
    }
}

/// The lines of one resource's block: its own attributes, then every effective change below it.
pub(crate) fn resource_lines(resource: &Address, changes: &[&Change]) -> Vec<Line> {
    let mut lines = Vec::new();
    for change in changes {
        if change.action == Action::NoOp {
            continue;
        }
        if &change.address == resource {
            let value = change.after.as_ref().or(change.before.as_ref());
            if let Some(Value::Object(fields)) = value {
                let width = fields.keys().map(String::len).max().unwrap_or(0);
                for (name, v) in fields {
                    lines.push(Line::plain(
                        change.action.symbol(),
                        0,
                        format!("{name:width$} = {}", scalar(v)),
                    ));
                }
            }
            continue;
        }
        let name = change.address.within_resource().unwrap_or_default();
        lines.extend(attribute_lines(&name, change));
    }
    lines
}

fn attribute_lines(name: &str, change: &Change) -> Vec<Line> {
    let symbol = change.action.symbol();
    match (&change.before, &change.after, change.action) {
        (Some(Value::Object(before)), Some(Value::Object(after)), Action::Update) => {
            let mut lines = vec![Line::plain(symbol, 0, format!("{name} {{"))];
            let width = after.keys().map(String::len).max().unwrap_or(0);
            let mut hidden = 0;
            for (field, new) in after {
                match before.get(field) {
                    Some(old) if old == new => hidden += 1,
                    Some(old) => lines.push(update_line(1, &format!("{field:width$}"), old, new)),
                    None => lines.push(Line::plain(
                        "+",
                        1,
                        format!("{field:width$} = {}", scalar(new)),
                    )),
                }
            }
            for (field, old) in before.iter().filter(|(f, _)| !after.contains_key(*f)) {
                lines.push(Line::plain(
                    "-",
                    1,
                    format!("{field:width$} = {}", scalar(old)),
                ));
            }
            if hidden > 0 {
                lines.push(Line::plain(
                    " ",
                    1,
                    format!(
                        "# ({hidden} unchanged attribute{} hidden)",
                        if hidden == 1 { "" } else { "s" }
                    ),
                ));
            }
            lines.push(Line::plain(" ", 0, "}".to_owned()));
            lines
        }
        (_, _, Action::Replace) => {
            let mut lines = vec![Line::plain(symbol, 0, format!("{name} {{"))];
            if let Some(before) = &change.before {
                lines.extend(object_lines("-", before));
            }
            if let Some(after) = &change.after {
                lines.extend(object_lines("+", after));
            }
            lines.push(Line::plain(" ", 0, format!("}} # {}", change.reason)));
            lines
        }
        (Some(old), Some(new), _) if old == new => {
            vec![Line::plain(symbol, 0, format!("{name} = {}", scalar(new)))]
        }
        (Some(old), Some(new), _) => vec![update_line(0, name, old, new)],
        (before, after, _) => {
            let value = after.as_ref().or(before.as_ref());
            match value {
                Some(v @ Value::Object(_)) => {
                    let mut lines = vec![Line::plain(symbol, 0, format!("{name} {{"))];
                    lines.extend(object_lines(symbol, v));
                    lines.push(Line::plain(" ", 0, "}".to_owned()));
                    lines
                }
                Some(v) => vec![Line::plain(symbol, 0, format!("{name} = {}", scalar(v)))],
                None => vec![Line::plain(symbol, 0, name.to_owned())],
            }
        }
    }
}

fn object_lines(symbol: &'static str, value: &Value) -> Vec<Line> {
    let Value::Object(fields) = value else {
        return vec![Line::plain(symbol, 1, scalar(value))];
    };
    let width = fields.keys().map(String::len).max().unwrap_or(0);
    fields
        .iter()
        .map(|(field, v)| Line::plain(symbol, 1, format!("{field:width$} = {}", scalar(v))))
        .collect()
}

/// `name = old -> new`, or a word diff when both are long strings.
fn update_line(depth: usize, name: &str, old: &Value, new: &Value) -> Line {
    if let (Value::String(a), Value::String(b)) = (old, new) {
        if a.len() > LONG_VALUE || b.len() > LONG_VALUE {
            let mut text = vec![Segment::Plain(format!("{name} = \""))];
            let diff = similar::TextDiff::from_words(a.as_str(), b.as_str());
            for change in diff.iter_all_changes() {
                let value = change.value();
                match (change.tag(), text.last_mut()) {
                    (similar::ChangeTag::Equal, Some(Segment::Plain(run)))
                    | (similar::ChangeTag::Delete, Some(Segment::Removed(run)))
                    | (similar::ChangeTag::Insert, Some(Segment::Added(run))) => {
                        run.push_str(value)
                    }
                    (similar::ChangeTag::Equal, _) => text.push(Segment::Plain(value.to_owned())),
                    (similar::ChangeTag::Delete, _) => {
                        text.push(Segment::Removed(value.to_owned()))
                    }
                    (similar::ChangeTag::Insert, _) => text.push(Segment::Added(value.to_owned())),
                }
            }
            text.push(Segment::Plain("\"".to_owned()));
            return Line {
                symbol: "~",
                depth,
                text,
            };
        }
    }
    Line::plain(
        "~",
        depth,
        format!("{name} = {} -> {}", scalar(old), scalar(new)),
    )
}

/// A value as the plan shows it: strings quoted, placeholders bare.
pub(crate) fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) if s == KNOWN_AFTER_APPLY || s == SENSITIVE => s.clone(),
        Value::String(s) => format!("{s:?}"),
        Value::Null => "null".to_owned(),
        other => other.to_string(),
    }
}
