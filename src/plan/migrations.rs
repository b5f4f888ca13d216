//! The migration part of a plan: each pending file is a change `d1.KEY.migration.NAME`, and
//! whatever the ledger contradicts (an applied file edited, renamed or deleted, a pending file
//! numbered below an applied one, a run that stopped half way) is a blocker naming the file.

use serde_json::json;

use super::diff::DiffOptions;
use super::{Action, Address, Blocker, BlockerKind, Change, MigrationRun, Operation, Plan};
use crate::live::Live;
use crate::manifest::model::{D1Database, Manifest};
use crate::migrations::{self, State};

/// Add the changes and blockers of database `key`'s migrations to `plan`.
pub(super) fn diff(
    plan: &mut Plan,
    desired: &Manifest,
    key: &str,
    db: &D1Database,
    live: &Live,
    options: &DiffOptions,
) {
    let (Some(config), Some(set), false) = (&db.migrations, options.migrations.get(key), db.absent)
    else {
        return;
    };
    let ledger = live.ledgers.get(&db.name).cloned().unwrap_or_default();
    let address = |name: &str| Address::Migration {
        database: key.to_owned(),
        name: name.strip_suffix(".sql").unwrap_or(name).to_owned(),
    };
    for status in migrations::status(set, &ledger) {
        let at = address(&status.name);
        let blocker = |message: String, hints: Vec<String>| Blocker {
            address: at.clone(),
            kind: BlockerKind::Migration,
            message,
            hints,
        };
        let restore = status.bookmark_before.as_ref().map(|bookmark| {
            format!(
                "to undo it with its data, restore the bookmark taken before it ran: `lmsinfra restore {} --db {key} --bookmark {bookmark}`",
                desired.environment
            )
        });
        let file = set.directory.join(&status.name);
        let file = file.display();
        match status.state {
            // The ledger row it was applied under blocks, naming both files.
            State::Applied | State::Renamed { .. } => {}
            State::Pending => {
                let Some(migration) = set.get(&status.name) else {
                    continue;
                };
                plan.changes.push(Change {
                    address: at,
                    action: Action::Create,
                    before: None,
                    after: Some(json!({ "file": status.name, "sha256": migration.sha256 })),
                    reason: format!("not in {}'s ledger {}", db.name, config.table),
                    operation: Operation::Migrate(Box::new(MigrationRun {
                        key: key.to_owned(),
                        database: db.name.clone(),
                        table: config.table.clone(),
                        transport: config.transport,
                        migration: migration.clone(),
                    })),
                });
            }
            State::Edited { recorded } => plan.blockers.push(blocker(
                format!(
                    "{file} was edited after it was applied to {}: its SHA-256 was {recorded} when it ran",
                    db.name
                ),
                vec![
                    format!("restore {file} as it was applied (see `git log -- {file}`), and put the change in a new migration (`lmsinfra migrate new {} --db {key} NAME`)", desired.environment),
                ],
            )),
            State::OutOfOrder { after } => plan.blockers.push(blocker(
                format!(
                    "{file} is pending but numbered below {after}, which {} has already applied",
                    db.name
                ),
                vec![format!(
                    "renumber it after the last applied migration (`lmsinfra migrate new {} --db {key} NAME` gives the next number)",
                    desired.environment
                )],
            )),
            State::Partial => plan.blockers.push(blocker(
                format!(
                    "{file} was started over D1's query endpoint on {} and not finished: some of its statements may have run",
                    db.name
                ),
                restore.into_iter().chain([format!(
                    "see `lmsinfra migrate status {} --db {key}`, repair the schema by hand, then delete its row from {}",
                    desired.environment,
                    migrations::FACTS_TABLE
                )]).collect(),
            )),
            State::Missing { renamed_to } => {
                let message = match &renamed_to {
                    Some(new) => format!(
                        "{} was applied to {} and is now called {new}: wrangler and lmsinfra would run it again",
                        status.name, db.name
                    ),
                    None => format!(
                        "{} was applied to {} but {} has no such file (deleted or renamed)",
                        status.name,
                        db.name,
                        set.directory.display()
                    ),
                };
                plan.blockers.push(blocker(
                    message,
                    vec![format!(
                        "restore the file under its applied name {}; undo a migration with `lmsinfra migrate down {} --db {key} --to NNNN`",
                        status.name, desired.environment
                    )],
                ));
            }
        }
    }
}
