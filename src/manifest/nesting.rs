//! A linear pre-scan for flow-collection nesting, before the YAML parser sees the text.
//!
//! The parser's scanner does work proportional to the nesting depth for every flow collection
//! it opens, so `[[[[…` a few hundred thousand deep (well under the size limit) takes minutes
//! before its recursion limit is ever reached. This scan counts `[` and `{` outside quoted
//! scalars and comments in one pass and stops at the first one past [`MAX_FLOW_DEPTH`].

/// Deeper flow nesting than this is refused. Manifests nest flow collections two or three deep
/// (`DB: { type: d1, database: main }`); the parser's own recursion limit is 128.
pub(crate) const MAX_FLOW_DEPTH: usize = 64;

/// The byte offset of the first `[` or `{` that opens a flow collection deeper than
/// [`MAX_FLOW_DEPTH`], if any.
///
/// The scan errs towards counting: a quote only opens a quoted scalar where YAML allows one
/// (at the start of a line or after whitespace, `[`, `{`, `,` or `:`), and a `#` only starts a
/// comment at the start of a line or after whitespace, so text inside plain scalars is counted
/// like flow syntax. Nothing a real manifest holds comes near the limit either way.
pub(crate) fn too_deep(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut at = 0;
    while at < bytes.len() {
        let byte = bytes[at];
        let previous = at.checked_sub(1).map(|p| bytes[p]);
        let after_separator = previous
            .is_none_or(|p| matches!(p, b' ' | b'\t' | b'\n' | b'\r' | b'[' | b'{' | b',' | b':'));
        match byte {
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_FLOW_DEPTH {
                    return Some(at);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b'#' if previous.is_none_or(|p| matches!(p, b' ' | b'\t' | b'\n' | b'\r')) => {
                at = end_of_line(bytes, at);
                continue;
            }
            b'"' if after_separator => at = closing(bytes, at, b'"'),
            b'\'' if after_separator => at = closing(bytes, at, b'\''),
            _ => {}
        }
        at += 1;
    }
    None
}

fn end_of_line(bytes: &[u8], from: usize) -> usize {
    bytes[from..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |offset| from + offset)
}

/// The offset of the quote that closes the scalar opened at `open` (the end of the text when
/// none does). In double quotes a backslash escapes the next byte; in single quotes `''` is a
/// quote, which this treats as a close and a new open.
fn closing(bytes: &[u8], open: usize, quote: u8) -> usize {
    let mut at = open + 1;
    while at < bytes.len() {
        match bytes[at] {
            b'\\' if quote == b'"' => at += 2,
            b if b == quote => return at,
            _ => at += 1,
        }
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_flow_collections_pass() {
        assert_eq!(too_deep("a: { b: [1, 2], c: {d: [e]} }\n"), None);
    }

    #[test]
    fn the_first_bracket_past_the_limit_is_found() {
        let text = format!("environment: {}", "[".repeat(200_000));
        assert_eq!(
            too_deep(&text),
            Some("environment: ".len() + MAX_FLOW_DEPTH)
        );
    }

    #[test]
    fn brackets_in_quotes_and_comments_do_not_count() {
        let deep = "[".repeat(MAX_FLOW_DEPTH + 1);
        assert_eq!(too_deep(&format!("a: \"{deep}\"\n")), None);
        assert_eq!(too_deep(&format!("a: '{deep}'\n")), None);
        assert_eq!(too_deep(&format!("a: 1 # {deep}\n")), None);
        assert_eq!(too_deep(&format!("a: \"\\\"{deep}\"\n")), None);
        assert!(too_deep(&format!("a: it's {deep}\n")).is_some());
    }
}
