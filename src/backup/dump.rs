//! Reading a D1 SQL dump as statements, streamed, to check it is one and to summarise it.
//!
//! A backup file is only worth restoring if it is a dump: `restore --from` refuses anything else
//! before its first request, and the restore drill compares two dumps (the source's and the
//! restored copy's) table by table. Both read the file one statement at a time, so a dump of any
//! size is read in constant memory (one statement is at most [`STATEMENT_LIMIT`]; D1 refuses
//! statements over 100 KB).
//!
//! Statements end at a `;` outside quotes and comments; a `CREATE TRIGGER`'s body holds `;`s, so
//! it ends at the `;` after its `END`. A dump holds `PRAGMA`, `CREATE` and `INSERT INTO … VALUES`
//! statements only: D1 writes no other (and refuses `BEGIN`/`COMMIT`).

use std::collections::BTreeMap;
use std::io::BufRead;

use serde::Serialize;
use sha2::{Digest, Sha256};

/// The longest statement read.
pub(crate) const STATEMENT_LIMIT: usize = 1024 * 1024;

/// Why a file is not a dump.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum NotADump {
    #[error("it could not be read: {0}")]
    Read(String),
    #[error("statement {statement} is not UTF-8 text")]
    NotText { statement: usize },
    #[error("statement {statement} is longer than {} KiB", STATEMENT_LIMIT / 1024)]
    TooLong { statement: usize },
    #[error(
        "statement {statement} (`{start}`) is not one a D1 dump holds (PRAGMA, CREATE, INSERT)"
    )]
    Foreign { statement: usize, start: String },
    #[error("statement {statement} does not end with `;`")]
    Unterminated { statement: usize },
    #[error("it holds no CREATE TABLE")]
    NoTable,
}

/// What a dump holds, table by table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Summary {
    /// Every `CREATE` statement, as written, sorted.
    pub(crate) schema: Vec<String>,
    /// Per table (every table a `CREATE TABLE` names, and any an `INSERT` fills).
    pub(crate) tables: BTreeMap<String, TableSummary>,
}

/// One table's rows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct TableSummary {
    /// How many rows.
    pub(crate) rows: u64,
    /// A digest of the rows that does not depend on their order: the sum of each row's SHA-256
    /// (its first 16 bytes, modulo 2^128), in hex.
    pub(crate) digest: String,
    #[serde(skip)]
    sum: u128,
}

/// Read `reader` as a dump and summarise it; an error says why it is not one.
pub(crate) fn summarise(reader: impl BufRead) -> Result<Summary, NotADump> {
    let mut summary = Summary::default();
    let mut statements = Statements::new(reader);
    let mut number = 0;
    while let Some(statement) = statements.next_statement()? {
        number += 1;
        let text =
            std::str::from_utf8(&statement).map_err(|_| NotADump::NotText { statement: number })?;
        let text = text.trim();
        let words: Vec<String> = text
            .split_whitespace()
            .take(3)
            .map(str::to_ascii_uppercase)
            .collect();
        match words.first().map(String::as_str) {
            Some("PRAGMA") => {}
            Some("CREATE") => {
                if words.get(1).map(String::as_str) == Some("TABLE") {
                    let name = identifier(&text["CREATE".len()..].trim_start()["TABLE".len()..])
                        .unwrap_or_default();
                    summary.tables.entry(name).or_default();
                }
                summary.schema.push(text.to_owned());
            }
            Some("INSERT") if words.get(1).map(String::as_str) == Some("INTO") => {
                let rest = text["INSERT".len()..].trim_start()["INTO".len()..].trim_start();
                let name = identifier(rest).unwrap_or_default();
                let row: [u8; 32] = Sha256::digest(text.as_bytes()).into();
                let mut first = [0u8; 16];
                first.copy_from_slice(&row[..16]);
                let table = summary.tables.entry(name).or_default();
                table.rows += 1;
                table.sum = table.sum.wrapping_add(u128::from_be_bytes(first));
            }
            _ => {
                let start: String = text.chars().take(40).collect();
                return Err(NotADump::Foreign {
                    statement: number,
                    start,
                });
            }
        }
    }
    if !summary
        .schema
        .iter()
        .any(|s| s.to_ascii_uppercase().starts_with("CREATE TABLE"))
    {
        return Err(NotADump::NoTable);
    }
    summary.schema.sort();
    for table in summary.tables.values_mut() {
        table.digest = format!("{:032x}", table.sum);
    }
    Ok(summary)
}

/// The name an identifier at the start of `text` spells: quoted (`"…"`, `[…]`, `` `…` ``,
/// `'…'`) or bare; `IF NOT EXISTS` before it is skipped.
fn identifier(text: &str) -> Option<String> {
    let mut text = text.trim_start();
    let upper = text.to_ascii_uppercase();
    if upper.starts_with("IF NOT EXISTS") {
        text = text["IF NOT EXISTS".len()..].trim_start();
    }
    let mut chars = text.chars();
    let close = match chars.next()? {
        '"' => '"',
        '`' => '`',
        '\'' => '\'',
        '[' => ']',
        _ => {
            let end = text
                .find(|c: char| c.is_whitespace() || c == '(' || c == ';')
                .unwrap_or(text.len());
            return Some(text[..end].to_owned());
        }
    };
    let mut name = String::new();
    let mut rest = chars.peekable();
    while let Some(c) = rest.next() {
        if c == close {
            if close != ']' && rest.peek() == Some(&close) {
                rest.next();
                name.push(c);
                continue;
            }
            return Some(name);
        }
        name.push(c);
    }
    None
}

/// Statements of a SQL text, read one at a time.
struct Statements<R> {
    reader: R,
    done: bool,
    number: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Within {
    Code,
    Quote(u8),
    LineComment,
    BlockComment,
}

impl<R: BufRead> Statements<R> {
    fn new(reader: R) -> Self {
        Self {
            reader,
            done: false,
            number: 0,
        }
    }

    /// The next statement without its `;`, or `None` at the end.
    fn next_statement(&mut self) -> Result<Option<Vec<u8>>, NotADump> {
        if self.done {
            return Ok(None);
        }
        self.number += 1;
        let mut statement = Vec::new();
        let mut within = Within::Code;
        let mut previous = 0u8;
        loop {
            let chunk = self
                .reader
                .fill_buf()
                .map_err(|err| NotADump::Read(err.to_string()))?;
            if chunk.is_empty() {
                self.done = true;
                if statement.iter().all(u8::is_ascii_whitespace) && within != Within::Quote(b'\'') {
                    return Ok(None);
                }
                if within == Within::LineComment || only_comments(&statement) {
                    return Ok(None);
                }
                return Err(NotADump::Unterminated {
                    statement: self.number,
                });
            }
            let mut used = 0;
            let mut ended = false;
            for &byte in chunk {
                used += 1;
                within = match (within, byte) {
                    (Within::Code, b'\'' | b'"' | b'`') => Within::Quote(byte),
                    (Within::Code, b'[') => Within::Quote(b']'),
                    (Within::Code, b'-') if previous == b'-' => Within::LineComment,
                    (Within::Code, b'*') if previous == b'/' => Within::BlockComment,
                    (Within::Quote(close), _) if byte == close => Within::Code,
                    (Within::LineComment, b'\n') => Within::Code,
                    (Within::BlockComment, b'/') if previous == b'*' => Within::Code,
                    (state, _) => state,
                };
                if within == Within::Code && byte == b';' && !inside_trigger(&statement) {
                    ended = true;
                    break;
                }
                statement.push(byte);
                // The `/` that closes a block comment cannot also open one.
                previous = if within == Within::Code && byte == b'/' && previous == b'*' {
                    0
                } else {
                    byte
                };
                if statement.len() > STATEMENT_LIMIT {
                    return Err(NotADump::TooLong {
                        statement: self.number,
                    });
                }
            }
            self.reader.consume(used);
            if ended {
                let trimmed = strip_comments(&statement);
                if trimmed.iter().all(u8::is_ascii_whitespace) {
                    statement.clear();
                    within = Within::Code;
                    previous = 0;
                    continue;
                }
                return Ok(Some(trimmed));
            }
        }
    }
}

/// Whether `statement` (so far) is a `CREATE TRIGGER` whose body has not reached its `END`.
fn inside_trigger(statement: &[u8]) -> bool {
    let text = String::from_utf8_lossy(&strip_comments(statement)).to_ascii_uppercase();
    let words: Vec<&str> = text.split_whitespace().take(4).collect();
    let is_trigger = words.first() == Some(&"CREATE")
        && (words.get(1) == Some(&"TRIGGER")
            || (matches!(words.get(1), Some(&"TEMP" | &"TEMPORARY"))
                && words.get(2) == Some(&"TRIGGER")));
    if !is_trigger {
        return false;
    }
    let trimmed = text.trim_end();
    let ends_with_end = trimmed.ends_with("END")
        && !trimmed[..trimmed.len() - 3].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
    !ends_with_end
}

/// `statement` without `--` and `/* */` comments outside quotes.
fn strip_comments(statement: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(statement.len());
    let mut within = Within::Code;
    let mut i = 0;
    while i < statement.len() {
        let byte = statement[i];
        let next = statement.get(i + 1).copied();
        match within {
            Within::Code if byte == b'-' && next == Some(b'-') => {
                within = Within::LineComment;
                i += 2;
                continue;
            }
            Within::Code if byte == b'/' && next == Some(b'*') => {
                within = Within::BlockComment;
                i += 2;
                continue;
            }
            Within::Code => {
                if matches!(byte, b'\'' | b'"' | b'`') {
                    within = Within::Quote(byte);
                } else if byte == b'[' {
                    within = Within::Quote(b']');
                }
                out.push(byte);
            }
            Within::Quote(close) => {
                if byte == close {
                    within = Within::Code;
                }
                out.push(byte);
            }
            Within::LineComment => {
                if byte == b'\n' {
                    within = Within::Code;
                    out.push(byte);
                }
            }
            Within::BlockComment => {
                if byte == b'*' && next == Some(b'/') {
                    within = Within::Code;
                    i += 2;
                    continue;
                }
            }
        }
        i += 1;
    }
    out
}

fn only_comments(statement: &[u8]) -> bool {
    strip_comments(statement)
        .iter()
        .all(u8::is_ascii_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(text: &str) -> Result<Summary, NotADump> {
        summarise(std::io::BufReader::with_capacity(7, text.as_bytes()))
    }

    #[test]
    fn a_dump_is_summarised_per_table_whatever_its_row_order() {
        let dump = "PRAGMA defer_foreign_keys=TRUE;\n\
            CREATE TABLE \"t\" (id INTEGER PRIMARY KEY, note TEXT);\n\
            INSERT INTO \"t\" VALUES(1,'a;b');\n\
            INSERT INTO \"t\" VALUES(2,'it''s -- not a comment');\n\
            CREATE TABLE empty (x);\n\
            CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET note = 'x'; DELETE FROM t WHERE 0; END;\n";
        let swapped = "PRAGMA defer_foreign_keys=TRUE;\n\
            CREATE TABLE \"t\" (id INTEGER PRIMARY KEY, note TEXT);\n\
            INSERT INTO \"t\" VALUES(2,'it''s -- not a comment');\n\
            INSERT INTO \"t\" VALUES(1,'a;b');\n\
            CREATE TABLE empty (x);\n\
            CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET note = 'x'; DELETE FROM t WHERE 0; END;\n";
        let a = summary(dump).unwrap();
        assert_eq!(a, summary(swapped).unwrap());
        assert_eq!(a.schema.len(), 3, "{:?}", a.schema);
        assert_eq!(a.tables["t"].rows, 2);
        assert_eq!(a.tables["empty"].rows, 0);
        let one_row = dump.replace("INSERT INTO \"t\" VALUES(1,'a;b');\n", "");
        let b = summary(&one_row).unwrap();
        assert_eq!(b.tables["t"].rows, 1);
        assert_ne!(a.tables["t"].digest, b.tables["t"].digest);
    }

    #[test]
    fn what_is_not_a_dump_says_why() {
        assert!(matches!(
            summary("CREATE TABLE t (x);\nDELETE FROM t;\n"),
            Err(NotADump::Foreign { statement: 2, .. })
        ));
        assert!(matches!(
            summary("BEGIN TRANSACTION;\nCREATE TABLE t (x);\nCOMMIT;\n"),
            Err(NotADump::Foreign { statement: 1, .. })
        ));
        assert!(matches!(
            summary("CREATE TABLE t (x)"),
            Err(NotADump::Unterminated { .. })
        ));
        assert!(matches!(summary("-- nothing\n"), Err(NotADump::NoTable)));
        assert!(matches!(
            summarise(&b"CREATE TABLE t (x);\nINSERT INTO t VALUES(X'\xff');\xff\xfe;"[..]),
            Err(NotADump::NotText { .. } | NotADump::Foreign { .. })
        ));
        assert!(matches!(
            summary("hello world, this is a note\n"),
            Err(NotADump::Unterminated { .. })
        ));
        let long = format!(
            "CREATE TABLE t (x);\nINSERT INTO t VALUES('{}');",
            "a".repeat(STATEMENT_LIMIT + 1)
        );
        assert!(matches!(
            summary(&long),
            Err(NotADump::TooLong { statement: 2 })
        ));
    }

    #[test]
    fn identifiers_are_read_quoted_or_bare() {
        assert_eq!(identifier(" \"a \"\"b\"\" c\" (x)").unwrap(), "a \"b\" c");
        assert_eq!(identifier("IF NOT EXISTS [x y](a)").unwrap(), "x y");
        assert_eq!(identifier("plain(a)").unwrap(), "plain");
    }
}
