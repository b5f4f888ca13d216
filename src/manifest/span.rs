//! Where each node of a manifest sits in its source text.
//!
//! `yaml_serde` gives locations only for its own syntax errors; everything found later (a wrong
//! type, an unknown field, a broken naming rule) is addressed by a path of keys. This module
//! reads the text a second time as a stream of parser events and records the byte range of every
//! key and value by path, so a path becomes a file, line and column.
//!
//! It runs only after `yaml_serde` accepted the text, so nesting depth and alias expansion are
//! already bounded; the pass itself is a loop over events with an explicit stack and never
//! expands aliases.
//!
//! Anchors and aliases: a value reached through an alias (`key: *anchor`) or a merge key
//! (`<<: *anchor`) has no text of its own at that path. Lookups follow the alias to the anchored
//! node, so a problem inside a merged mapping points at its definition under the anchor, where
//! it has to be fixed.

use std::collections::HashMap;
use std::ops::Range;

use saphyr_parser::{Event, Marker, Parser, ScalarStyle};

/// A path of mapping keys and sequence indices from the document root.
pub(crate) type NodePath = Vec<String>;

/// The source ranges (in bytes) of one node.
#[derive(Debug, Clone)]
struct NodeSpan {
    /// The mapping key that holds the node, when it is a mapping value.
    key: Option<Range<usize>>,
    /// The node itself; for a mapping or a sequence, its first character.
    value: Range<usize>,
}

/// Which part of a node a diagnostic points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    /// The key that holds the node (falls back to the value).
    Key,
    /// The node's value.
    Value,
}

/// The byte ranges of every node in one document, by path.
#[derive(Debug, Default)]
pub(crate) struct SpanIndex {
    nodes: HashMap<NodePath, NodeSpan>,
    /// Paths whose content comes from an anchored node (through an alias or a merge key).
    redirects: HashMap<NodePath, Vec<NodePath>>,
    /// Keys that repeat an earlier key of the same mapping, in document order.
    duplicates: Vec<Range<usize>>,
    /// Merge keys (`<<`) whose value is a scalar, which cannot be merged.
    scalar_merges: Vec<Range<usize>>,
    /// The start of a second document, which a manifest may not have.
    second_document: Option<Range<usize>>,
}

/// One open collection while walking the events.
enum Frame {
    Map {
        path: NodePath,
        /// The key just read, waiting for its value.
        key: Option<(String, Range<usize>)>,
    },
    Seq {
        path: NodePath,
        next: usize,
    },
}

/// How many alias hops a lookup follows; anchors inside anchors are rare, cycles impossible.
const MAX_REDIRECTS: usize = 8;

/// Nesting deeper than this ends the pass (yaml_serde rejects such documents anyway); it keeps
/// the pass linear when it runs on a document yaml_serde stopped reading early.
const MAX_DEPTH: usize = 128;

impl SpanIndex {
    /// Index `text`. A parse error ends the pass early: whatever was indexed so far stays usable.
    pub(crate) fn build(text: &str) -> Self {
        let offsets = ByteOffsets::new(text);
        let mut index = SpanIndex::default();
        let mut anchors: HashMap<usize, NodePath> = HashMap::new();
        let mut stack: Vec<Frame> = Vec::new();
        let mut parser = Parser::new_from_str(text);
        while let Some(Ok((event, span))) = parser.next_event() {
            let range =
                offsets.byte(&span.start)..offsets.byte(&span.end).max(offsets.byte(&span.start));
            match event {
                Event::Scalar(value, style, anchor, _) => {
                    let range = match style {
                        ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => {
                            quoted(text, range)
                        }
                        _ => range,
                    };
                    if let Some(Frame::Map {
                        key: key @ None, ..
                    }) = stack.last_mut()
                    {
                        *key = Some((value.into_owned(), range));
                        continue;
                    }
                    if let Some(path) = index.place(&mut stack, range.clone()) {
                        if path.last().is_some_and(|last| last == "<<") {
                            index.scalar_merges.push(range);
                        }
                        remember_anchor(&mut anchors, anchor, path);
                    }
                }
                Event::Alias(anchor) => {
                    if let Some(Frame::Map {
                        key: key @ None, ..
                    }) = stack.last_mut()
                    {
                        *key = Some((String::new(), range));
                        continue;
                    }
                    let Some(path) = index.place(&mut stack, range) else {
                        continue;
                    };
                    let Some(target) = anchors.get(&anchor).cloned() else {
                        continue;
                    };
                    index.redirect(path, target);
                }
                Event::MappingStart(anchor, _) | Event::SequenceStart(anchor, _) => {
                    let is_map = matches!(event, Event::MappingStart(..));
                    let first = range.start..next_char(text, range.start);
                    let path = match stack.last_mut() {
                        // A collection used as a mapping key: index it under an unreachable name.
                        Some(Frame::Map {
                            path,
                            key: key @ None,
                        }) => {
                            let mut inner = path.clone();
                            inner.push("\0complex key".to_owned());
                            *key = Some((String::new(), first.clone()));
                            Some(inner)
                        }
                        _ => index.place(&mut stack, first),
                    };
                    let path = path.unwrap_or_default();
                    remember_anchor(&mut anchors, anchor, path.clone());
                    if stack.len() >= MAX_DEPTH {
                        break;
                    }
                    stack.push(if is_map {
                        Frame::Map { path, key: None }
                    } else {
                        Frame::Seq { path, next: 0 }
                    });
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    stack.pop();
                }
                Event::DocumentStart(_) if index.nodes.contains_key(&NodePath::new()) => {
                    // Only the first document is a manifest; yaml_serde rejects more.
                    index.second_document = Some(range.start..next_char(text, range.start));
                    break;
                }
                _ => {}
            }
        }
        index
    }

    /// Record a node at the position the stack says it fills, returning its path.
    fn place(&mut self, stack: &mut [Frame], value: Range<usize>) -> Option<NodePath> {
        let (path, key) = match stack.last_mut() {
            None => (NodePath::new(), None),
            Some(Frame::Map { path, key }) => {
                let (name, key_range) = key.take()?;
                let mut child = path.clone();
                child.push(name);
                (child, Some(key_range))
            }
            Some(Frame::Seq { path, next }) => {
                let mut child = path.clone();
                child.push(next.to_string());
                *next += 1;
                (child, None)
            }
        };
        let span = NodeSpan { key, value };
        if let (Some(key), Some(_)) = (span.key.clone(), self.nodes.insert(path.clone(), span)) {
            self.duplicates.push(key);
        }
        Some(path)
    }

    /// `path` is an alias of `target`. Under a merge key (`<<: *a` or `<<: [*a, *b]`) the
    /// anchored mapping's entries belong to the mapping that holds the merge key.
    fn redirect(&mut self, mut path: NodePath, target: NodePath) {
        let merged_list = path.len() >= 2 && path[path.len() - 2] == "<<";
        if merged_list {
            path.truncate(path.len() - 2);
        } else if path.last().is_some_and(|last| last == "<<") {
            path.pop();
        }
        self.redirects.entry(path).or_default().push(target);
    }

    /// The first key that repeats an earlier key of the same mapping.
    pub(crate) fn first_duplicate(&self) -> Option<Range<usize>> {
        self.duplicates.first().cloned()
    }

    /// The first merge key whose value is a scalar.
    pub(crate) fn first_scalar_merge(&self) -> Option<Range<usize>> {
        self.scalar_merges.first().cloned()
    }

    /// Where a second document starts, if the text has one.
    pub(crate) fn second_document(&self) -> Option<Range<usize>> {
        self.second_document.clone()
    }

    /// The byte range of `part` of the node at `path`; when the node does not exist (a missing
    /// field), the nearest ancestor that does.
    pub(crate) fn locate(&self, path: &[String], part: Part) -> Range<usize> {
        if let Some(range) = self.exact(path, part, 0) {
            return range;
        }
        (0..path.len())
            .rev()
            .find_map(|len| self.exact(&path[..len], Part::Key, 0))
            .unwrap_or(0..0)
    }

    fn exact(&self, path: &[String], part: Part, hops: usize) -> Option<Range<usize>> {
        if let Some(node) = self.nodes.get(path) {
            let range = match (part, &node.key) {
                (Part::Key, Some(key)) => key.clone(),
                _ => node.value.clone(),
            };
            return Some(range);
        }
        if hops >= MAX_REDIRECTS {
            return None;
        }
        (0..=path.len()).rev().find_map(|len| {
            let targets = self.redirects.get(&path[..len])?;
            targets.iter().rev().find_map(|target| {
                let mut redirected = target.clone();
                redirected.extend_from_slice(&path[len..]);
                self.exact(&redirected, part, hops + 1)
            })
        })
    }
}

fn remember_anchor(anchors: &mut HashMap<usize, NodePath>, anchor: usize, path: NodePath) {
    if anchor > 0 {
        anchors.insert(anchor, path);
    }
}

/// The range of a quoted scalar that starts at `range.start`, up to its closing quote. The
/// parser's end marker can run past trailing spaces and a comment.
fn quoted(text: &str, range: Range<usize>) -> Range<usize> {
    let Some(quote) = text[range.start..].chars().next() else {
        return range;
    };
    let mut chars = text[range.start + 1..].char_indices();
    while let Some((at, c)) = chars.next() {
        if c == '\\' && quote == '"' {
            chars.next();
        } else if c == quote {
            if quote == '\'' && text[range.start + 1 + at + 1..].starts_with('\'') {
                chars.next();
                continue;
            }
            return range.start..range.start + 1 + at + 1;
        }
    }
    range
}

/// The byte offset just past the character at `at`.
fn next_char(text: &str, at: usize) -> usize {
    text.get(at..)
        .and_then(|rest| rest.chars().next())
        .map_or(at, |c| at + c.len_utf8())
}

/// Converts the parser's markers (line, and column in characters) to byte offsets.
struct ByteOffsets<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> ByteOffsets<'a> {
    fn new(text: &'a str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(at, _)| at + 1))
            .collect();
        Self { text, line_starts }
    }

    fn byte(&self, marker: &Marker) -> usize {
        let Some(&start) = self.line_starts.get(marker.line().saturating_sub(1)) else {
            return self.text.len();
        };
        let line = &self.text[start..];
        let line = &line[..line.find('\n').unwrap_or(line.len())];
        start
            + line
                .char_indices()
                .nth(marker.col())
                .map_or(line.len(), |(at, _)| at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(parts: &[&str]) -> NodePath {
        parts.iter().map(|part| (*part).to_owned()).collect()
    }

    fn text_at<'a>(text: &'a str, index: &SpanIndex, parts: &[&str], part: Part) -> &'a str {
        &text[index.locate(&path(parts), part)]
    }

    #[test]
    fn keys_and_scalars_have_their_own_ranges() {
        let text = "a:\n  b: hello\n  c: [1, two]\n";
        let index = SpanIndex::build(text);
        assert_eq!(text_at(text, &index, &["a", "b"], Part::Key), "b");
        assert_eq!(text_at(text, &index, &["a", "b"], Part::Value), "hello");
        assert_eq!(text_at(text, &index, &["a", "c", "1"], Part::Value), "two");
    }

    #[test]
    fn quoted_scalars_end_at_their_closing_quote() {
        let text = "a: \"x\\\"y\"  # comment\nb: 'it''s'  # comment\n";
        let index = SpanIndex::build(text);
        assert_eq!(text_at(text, &index, &["a"], Part::Value), "\"x\\\"y\"");
        assert_eq!(text_at(text, &index, &["b"], Part::Value), "'it''s'");
    }

    #[test]
    fn offsets_are_bytes_after_multibyte_characters() {
        let text = "é: \"ü\"\nkey: välue\n";
        let index = SpanIndex::build(text);
        assert_eq!(text_at(text, &index, &["key"], Part::Value), "välue");
    }

    #[test]
    fn merged_entries_point_at_the_anchor() {
        let text = "x-common: &common\n  Bad Name: v\nheaders:\n  <<: *common\n";
        let index = SpanIndex::build(text);
        let range = index.locate(&path(&["headers", "Bad Name"]), Part::Key);
        assert_eq!(&text[range.clone()], "Bad Name");
        assert_eq!(range.start, text.find("Bad Name").unwrap());
    }

    #[test]
    fn a_repeated_key_is_found() {
        let text = "a:\n  b: 1\n  c: 2\n  b: 3\n";
        let index = SpanIndex::build(text);
        assert_eq!(
            index.first_duplicate(),
            Some(text.rfind('b').unwrap()..text.rfind('b').unwrap() + 1)
        );
    }

    #[test]
    fn a_missing_node_points_at_its_nearest_ancestor() {
        let text = "workers:\n  api:\n    name: x\n";
        let index = SpanIndex::build(text);
        assert_eq!(
            text_at(
                text,
                &index,
                &["workers", "api", "bindings", "DB"],
                Part::Key
            ),
            "api"
        );
    }
}
