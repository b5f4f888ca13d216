//! Problems found in a manifest, first addressed by path and then placed in the source text.
//!
//! Checks produce [`Problem`]s, which name a node by its path (`workers.api.bindings.DB`).
//! [`Problem::place`] turns one into a [`Diagnostic`] with a file, a line, a column and a labelled
//! span, which miette renders for people and serde serialises for machines.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use miette::{LabeledSpan, NamedSource, SourceSpan};
use serde::Serialize;

use super::span::{NodePath, Part, SpanIndex};

/// How bad a diagnostic is: errors make a manifest invalid, warnings never do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The manifest is invalid.
    Error,
    /// Worth a look; the manifest stays valid.
    Warning,
}

/// Where a problem is: a node by path, or a byte range when there is no node (syntax errors).
#[derive(Debug, Clone)]
pub(crate) enum Location {
    Node(NodePath, Part),
    Bytes(Range<usize>),
}

/// A problem found in one manifest, before it is placed in the source.
#[derive(Debug, Clone)]
pub(crate) struct Problem {
    pub(crate) severity: Severity,
    pub(crate) code: &'static str,
    pub(crate) message: String,
    pub(crate) location: Location,
    pub(crate) label: String,
    pub(crate) help: Option<String>,
}

impl Problem {
    /// An error about the value at `path`.
    pub(crate) fn error(code: &'static str, path: NodePath, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            code,
            message: message.into(),
            location: Location::Node(path, Part::Value),
            label: "here".to_owned(),
            help: None,
        }
    }

    /// An error at a byte range of the text.
    pub(crate) fn at_bytes(
        code: &'static str,
        range: Range<usize>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            location: Location::Bytes(range),
            ..Self::error(code, NodePath::new(), message)
        }
    }

    /// Point at the key that holds the node rather than at its value.
    pub(crate) fn on_key(mut self) -> Self {
        if let Location::Node(_, part) = &mut self.location {
            *part = Part::Key;
        }
        self
    }

    /// Make this a warning.
    pub(crate) fn warning(mut self) -> Self {
        self.severity = Severity::Warning;
        self
    }

    /// The label shown on the offending text.
    pub(crate) fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    /// What to do about it.
    pub(crate) fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// The node path this problem is about, when it is about a node.
    pub(crate) fn path(&self) -> Option<&[String]> {
        match &self.location {
            Location::Node(path, _) => Some(path),
            Location::Bytes(_) => None,
        }
    }

    /// Place the problem in `source`.
    pub(crate) fn place(self, source: &Source, spans: &SpanIndex) -> Diagnostic {
        let range = match &self.location {
            Location::Node(path, part) => spans.locate(path, *part),
            Location::Bytes(range) => range.clone(),
        };
        let (line, column) = source.line_column(range.start);
        Diagnostic {
            severity: self.severity,
            code: self.code,
            message: self.message,
            file: source.label.clone(),
            line,
            column,
            label: self.label,
            help: self.help,
            related: Vec::new(),
            span: SourceSpan::from(range),
            source: source.named(),
        }
    }
}

/// A manifest's text and the name diagnostics show for it.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    pub(crate) label: String,
    pub(crate) text: Arc<String>,
}

impl Source {
    pub(crate) fn new(label: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            text: Arc::new(text.into()),
        }
    }

    fn named(&self) -> NamedSource<Arc<String>> {
        NamedSource::new(&self.label, Arc::clone(&self.text)).with_language("yaml")
    }

    /// The 1-based line and column (in characters) of a byte offset.
    pub(crate) fn line_column(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..floor_char_boundary(&self.text, offset)];
        let line_start = before.rfind('\n').map_or(0, |at| at + 1);
        let line = before.matches('\n').count() + 1;
        (line, before[line_start..].chars().count() + 1)
    }
}

/// The largest char boundary at or before `offset` (which must be at most `text.len()`).
pub(crate) fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// One diagnostic about one manifest, placed in its source: what `validate` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// A stable identifier of the rule, e.g. `manifest::unknown-field`.
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
    /// The file, as diagnostics name it (a path, or `REV:path` for a git revision).
    pub file: String,
    /// 1-based line of the offending text.
    pub line: usize,
    /// 1-based column (in characters) of the offending text.
    pub column: usize,
    /// The label shown on the offending text.
    pub label: String,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// Other places involved, e.g. the other environment of a parity warning.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub related: Vec<Diagnostic>,
    #[serde(skip)]
    span: SourceSpan,
    #[serde(skip)]
    source: NamedSource<Arc<String>>,
}

impl Diagnostic {
    /// Attach another place, shown after this diagnostic.
    pub(crate) fn with_related(mut self, related: Diagnostic) -> Self {
        self.related.push(related);
        self
    }

    /// Whether this diagnostic makes its manifest invalid.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Never show any of `values` (secret values): every line of the excerpt that holds one is
    /// replaced by a notice, and the message, label and help lose them too.
    pub(crate) fn withhold(&mut self, values: &[&str]) {
        let values: Vec<&str> = values.iter().copied().filter(|v| !v.is_empty()).collect();
        if values.is_empty() {
            return;
        }
        let text = self.source.inner();
        if values.iter().any(|value| text.contains(value)) {
            let withheld = withhold_lines(text, &values);
            self.source =
                NamedSource::new(self.source.name(), Arc::new(withheld)).with_language("yaml");
        }
        for field in [&mut self.message, &mut self.label] {
            *field = withhold_in(field, &values);
        }
        if let Some(help) = &mut self.help {
            *help = withhold_in(help, &values);
        }
        for related in &mut self.related {
            related.withhold(&values);
        }
    }
}

/// What a withheld line shows, padded or cut to the line's length.
const WITHHELD_LINE: &str = "# (line withheld: it holds a secret value)";

/// `text` with each line that holds one of `values` replaced by a notice of the same byte
/// length, so every span still points at the same line and column.
fn withhold_lines(text: &str, values: &[&str]) -> String {
    // A value spanning lines withholds every line it touches.
    let mut hidden = vec![false; text.len()];
    for value in values {
        for (at, _) in text.match_indices(value) {
            hidden[at..at + value.len()].fill(true);
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut start = 0;
    for line in text.split_inclusive('\n') {
        let end = start + line.len();
        let body = line.trim_end_matches(['\n', '\r']);
        if hidden[start..end].contains(&true) {
            let notice: String = WITHHELD_LINE
                .chars()
                .chain(std::iter::repeat(' '))
                .take(body.len())
                .collect();
            out.push_str(&notice);
            out.push_str(&line[body.len()..]);
        } else {
            out.push_str(line);
        }
        start = end;
    }
    out
}

fn withhold_in(text: &str, values: &[&str]) -> String {
    values.iter().fold(text.to_owned(), |text, value| {
        text.replace(value, "(withheld)")
    })
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Diagnostic {}

impl miette::Diagnostic for Diagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|help| Box::new(help) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        Some(Box::new(std::iter::once(LabeledSpan::new_with_span(
            Some(self.label.clone()),
            self.span,
        ))))
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        if self.related.is_empty() {
            return None;
        }
        Some(Box::new(
            self.related.iter().map(|d| d as &dyn miette::Diagnostic),
        ))
    }
}

/// The best match for `unknown` among `candidates`, when one is close enough to be a typo.
pub(crate) fn did_you_mean<'a>(
    unknown: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|candidate| (strsim::jaro_winkler(unknown, candidate), candidate))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typo_suggests_the_closest_field() {
        assert_eq!(did_you_mean("databse", ["database"]), Some("database"));
        assert_eq!(
            did_you_mean("worker", ["workers", "environment"]),
            Some("workers")
        );
        assert_eq!(did_you_mean("zzz", ["database"]), None);
    }

    #[test]
    fn lines_holding_a_secret_value_are_withheld_at_the_same_length() {
        let text = "a: 1\nb: hunter2-canary x\nc: ünï\n";
        let withheld = withhold_lines(text, &["hunter2-canary", "ünï"]);
        assert!(!withheld.contains("hunter2"), "{withheld}");
        assert_eq!(withheld.len(), text.len());
        let lines: Vec<&str> = withheld.lines().collect();
        assert_eq!(lines[0], "a: 1");
        assert!(lines[1].starts_with("# (line withheld"), "{withheld}");
        assert_eq!(lines[2], &WITHHELD_LINE[..lines[2].len()]);
    }

    #[test]
    fn line_and_column_count_characters() {
        let source = Source::new("f.yaml", "a: 1\nké: x\n");
        assert_eq!(source.line_column(0), (1, 1));
        assert_eq!(source.line_column("a: 1\nké: ".len()), (2, 5));
    }
}
