//! What the ledgers say about each migration file, and about ledger rows that have no file.
//!
//! wrangler decides "applied" by name alone, so an edited applied file goes unnoticed, a renamed
//! one runs twice and a late file numbered below applied ones runs out of order. lmsinfra reads
//! the same ledger, adds its own checksum, and turns each of these into a state that blocks.

use serde::Serialize;

use super::files::MigrationSet;
use super::ledger::{Ledger, STARTED};

/// The state of one migration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum State {
    /// In the ledger, with the same checksum (or none recorded: applied by wrangler).
    Applied,
    /// Not in the ledger: apply runs it.
    Pending,
    /// Not in the ledger, and numbered below a migration that is.
    OutOfOrder {
        /// The highest-numbered applied migration.
        after: String,
    },
    /// In the ledger, but the file changed since it ran.
    Edited {
        /// The checksum recorded when it ran.
        recorded: String,
    },
    /// A `query`-transport run started it and did not record it as applied: some of its
    /// statements may have run.
    Partial,
    /// Not in the ledger, but its content is that of an applied migration whose file is gone:
    /// the file was renamed, and wrangler would run it again.
    Renamed {
        /// The name it was applied under.
        from: String,
    },
    /// In the ledger, but no file has its name (the file was deleted or renamed).
    Missing {
        /// The file that now holds the same content, when one does (a rename).
        renamed_to: Option<String>,
    },
}

impl State {
    /// Whether this state forbids apply.
    pub fn blocks(&self) -> bool {
        !matches!(self, Self::Applied | Self::Pending)
    }
}

/// One migration's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    /// The file name (the ledger's name).
    pub name: String,
    /// Its state.
    #[serde(flatten)]
    pub state: State,
    /// The bookmark recorded before it ran, when lmsinfra ran it.
    pub bookmark_before: Option<String>,
    /// Who applied it, when lmsinfra did.
    pub applied_by: Option<String>,
}

/// The status of every file in `set` (in order), then of every ledger row without a file.
pub fn status(set: &MigrationSet, ledger: &Ledger) -> Vec<Status> {
    let highest_applied = set
        .migrations
        .iter()
        .filter(|m| ledger.has(&m.name))
        .filter_map(|m| Some((m.number?, &m.name)))
        .max();
    let mut out = Vec::new();
    for migration in &set.migrations {
        let facts = ledger.facts(&migration.name);
        let state = if ledger.has(&migration.name) {
            match facts {
                Some(f) if f.sha256 != migration.sha256 => State::Edited {
                    recorded: f.sha256.clone(),
                },
                _ => State::Applied,
            }
        } else if facts.is_some_and(|f| f.state == STARTED) {
            State::Partial
        } else if let Some(from) = ledger.applied.iter().find(|row| {
            set.get(&row.name).is_none()
                && ledger
                    .facts(&row.name)
                    .is_some_and(|f| f.sha256 == migration.sha256)
        }) {
            State::Renamed {
                from: from.name.clone(),
            }
        } else {
            match (migration.number, highest_applied) {
                (Some(n), Some((top, after))) if n < top => State::OutOfOrder {
                    after: after.clone(),
                },
                _ => State::Pending,
            }
        };
        out.push(Status {
            name: migration.name.clone(),
            state,
            bookmark_before: facts.and_then(|f| f.bookmark_before.clone()),
            applied_by: facts.and_then(|f| f.applied_by.clone()),
        });
    }
    for row in &ledger.applied {
        if set.get(&row.name).is_some() {
            continue;
        }
        let facts = ledger.facts(&row.name);
        let renamed_to = facts.and_then(|f| {
            set.migrations
                .iter()
                .find(|m| m.sha256 == f.sha256 && !ledger.has(&m.name))
                .map(|m| m.name.clone())
        });
        out.push(Status {
            name: row.name.clone(),
            state: State::Missing { renamed_to },
            bookmark_before: facts.and_then(|f| f.bookmark_before.clone()),
            applied_by: facts.and_then(|f| f.applied_by.clone()),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrations::files::Migration;
    use crate::migrations::ledger::{APPLIED, Applied, Facts};

    fn file(name: &str, sha: &str) -> Migration {
        Migration {
            name: name.to_owned(),
            number: crate::migrations::files::number_of(name),
            bytes: Vec::new(),
            sha256: sha.to_owned(),
        }
    }

    fn applied(id: i64, name: &str, sha: &str) -> (Applied, Facts) {
        (
            Applied {
                id,
                name: name.to_owned(),
                applied_at: "2026-01-01 00:00:00".to_owned(),
            },
            Facts {
                name: name.to_owned(),
                sha256: sha.to_owned(),
                bookmark_before: Some(format!("b{id}")),
                applied_by: None,
                state: APPLIED.to_owned(),
            },
        )
    }

    #[test]
    fn edits_renames_late_files_and_partial_runs_block() {
        let set = MigrationSet {
            migrations: vec![
                file("0001_a.sql", "s1"),
                file("0002_b.sql", "edited"),
                file("0003_late.sql", "s3"),
                file("0004_c2.sql", "s4"),
                file("0005_d.sql", "s5"),
                file("0006_e.sql", "s6"),
            ],
            ..MigrationSet::default()
        };
        let rows = [
            applied(1, "0001_a.sql", "s1"),
            applied(2, "0002_b.sql", "s2"),
            applied(3, "0004_c.sql", "s4"),
            applied(4, "0005_d.sql", "s5"),
        ];
        let mut ledger = Ledger {
            applied: rows.iter().map(|r| r.0.clone()).collect(),
            facts: rows.iter().map(|r| r.1.clone()).collect(),
        };
        ledger.facts.push(Facts {
            name: "0006_e.sql".to_owned(),
            sha256: "s6".to_owned(),
            bookmark_before: None,
            applied_by: None,
            state: STARTED.to_owned(),
        });
        let states: Vec<(String, State)> = status(&set, &ledger)
            .into_iter()
            .map(|s| (s.name, s.state))
            .collect();
        assert_eq!(
            states,
            [
                ("0001_a.sql".to_owned(), State::Applied),
                (
                    "0002_b.sql".to_owned(),
                    State::Edited {
                        recorded: "s2".to_owned()
                    }
                ),
                (
                    "0003_late.sql".to_owned(),
                    State::OutOfOrder {
                        after: "0005_d.sql".to_owned()
                    }
                ),
                (
                    "0004_c2.sql".to_owned(),
                    State::Renamed {
                        from: "0004_c.sql".to_owned()
                    }
                ),
                ("0005_d.sql".to_owned(), State::Applied),
                ("0006_e.sql".to_owned(), State::Partial),
                (
                    "0004_c.sql".to_owned(),
                    State::Missing {
                        renamed_to: Some("0004_c2.sql".to_owned())
                    }
                ),
            ]
        );
    }
}
