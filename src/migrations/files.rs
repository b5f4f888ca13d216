//! Reading a migrations directory: the up files in wrangler's order and the down files beside
//! them, each with its SHA-256.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The most bytes one migration file may hold (D1 takes at most 100 KB per statement; a
/// migration is a handful of them).
pub const FILE_LIMIT: u64 = 16 * 1024 * 1024;

/// One up migration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// The file name, `0001_init.sql`: the name wrangler's ledger records.
    pub name: String,
    /// The number before the first `_`, when there is one.
    pub number: Option<u64>,
    /// The file's bytes.
    pub bytes: Vec<u8>,
    /// The SHA-256 of the bytes, in hex.
    pub sha256: String,
}

impl Migration {
    /// The name without `.sql`, as plan addresses show it.
    pub fn stem(&self) -> &str {
        self.name.strip_suffix(".sql").unwrap_or(&self.name)
    }

    /// The file's text, when it is UTF-8.
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.bytes).ok()
    }
}

/// One down file, `down/0002_add_x.down.sql`, undoing the up file `0002_add_x.sql`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownFile {
    /// The down file's path.
    pub path: PathBuf,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// A database's migrations as the project holds them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationSet {
    /// The directory they were read from.
    pub directory: PathBuf,
    /// The up files, in the order wrangler applies them.
    pub migrations: Vec<Migration>,
    /// The down files, by the name of the up file each undoes.
    pub downs: BTreeMap<String, DownFile>,
}

impl MigrationSet {
    /// The up file called `name`.
    pub fn get(&self, name: &str) -> Option<&Migration> {
        self.migrations.iter().find(|m| m.name == name)
    }

    /// The next number, as `wrangler d1 migrations create` picks it: the highest plus one.
    pub fn next_number(&self) -> u64 {
        self.migrations
            .iter()
            .filter_map(|m| m.number)
            .max()
            .unwrap_or(0)
            + 1
    }
}

/// The number before the first `_` of a file name, as wrangler's `parseInt` reads it.
pub fn number_of(name: &str) -> Option<u64> {
    let head = name.split('_').next().unwrap_or_default();
    let digits: String = head.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Sort file names as wrangler does: by name, then (stably) by their number, numbered first.
pub fn wrangler_order(names: &mut [String]) {
    names.sort();
    names.sort_by_key(|name| number_of(name).map_or((1, 0), |n| (0, n)));
}

/// Why a migrations directory could not be read.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ReadError {
    /// The directory or a file in it could not be read.
    #[error("cannot read {}: {source}", path.display())]
    #[diagnostic(help(
        "`migrations.directory` is relative to the project root (the folder holding environments/)"
    ))]
    Io {
        /// What could not be read.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file is larger than any migration should be.
    #[error("{} is larger than {} MiB", path.display(), FILE_LIMIT >> 20)]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
}

/// Read the migrations in `root/directory`. A directory that does not exist holds none: the
/// ledger's rows then show up as missing files, which blocks.
pub fn read_set(root: &Path, directory: &str) -> Result<MigrationSet, ReadError> {
    let dir = root.join(directory);
    if !dir.exists() {
        return Ok(MigrationSet {
            directory: dir,
            ..MigrationSet::default()
        });
    }
    let mut names = sql_files(&dir)?;
    wrangler_order(&mut names);
    let migrations = names
        .into_iter()
        .map(|name| {
            let bytes = read_file(&dir.join(&name))?;
            let sha256 = hex::encode(Sha256::digest(&bytes));
            Ok(Migration {
                number: number_of(&name),
                name,
                bytes,
                sha256,
            })
        })
        .collect::<Result<Vec<_>, ReadError>>()?;
    let down_dir = dir.join("down");
    let mut downs = BTreeMap::new();
    if down_dir.is_dir() {
        for name in sql_files(&down_dir)? {
            let Some(stem) = name.strip_suffix(".down.sql") else {
                continue;
            };
            let path = down_dir.join(&name);
            let bytes = read_file(&path)?;
            downs.insert(format!("{stem}.sql"), DownFile { path, bytes });
        }
    }
    Ok(MigrationSet {
        directory: dir,
        migrations,
        downs,
    })
}

/// The names of the regular `.sql` files directly in `dir`.
fn sql_files(dir: &Path) -> Result<Vec<String>, ReadError> {
    let io = |source| ReadError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if name.ends_with(".sql") && entry.file_type().map_err(io)?.is_file() {
            names.push(name);
        }
    }
    Ok(names)
}

fn read_file(path: &Path) -> Result<Vec<u8>, ReadError> {
    let io = |source| ReadError::Io {
        path: path.to_owned(),
        source,
    };
    let size = std::fs::metadata(path).map_err(io)?.len();
    if size > FILE_LIMIT {
        return Err(ReadError::TooLarge {
            path: path.to_owned(),
        });
    }
    std::fs::read(path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_ordered_as_wrangler_orders_them() {
        let mut names: Vec<String> = ["10_c.sql", "9_b.sql", "notes.sql", "1_a.sql", "0002_x.sql"]
            .map(String::from)
            .to_vec();
        wrangler_order(&mut names);
        assert_eq!(
            names,
            ["1_a.sql", "0002_x.sql", "9_b.sql", "10_c.sql", "notes.sql"]
        );
    }

    #[test]
    fn the_number_is_the_digits_before_the_first_underscore() {
        assert_eq!(number_of("0007_add_quiz.sql"), Some(7));
        assert_eq!(number_of("12.sql"), Some(12));
        assert_eq!(number_of("init.sql"), None);
    }
}
