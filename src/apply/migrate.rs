//! Running one pending migration.
//!
//! Before a database's first migration of an apply, its Time Travel bookmark is read and
//! printed with the restore command that undoes everything the apply's migrations do.
//!
//! Transport `import`: the migration, wrangler's ledger row and lmsinfra's row are one import, so
//! a failure leaves nothing. When the import fails or its outcome is unknown, the ledger is read
//! again: a row for the migration means another run applied it (two applies started together),
//! which is reported and is not a failure.
//!
//! Transport `query`: lmsinfra's row is first written as `started`, then the migration, the
//! ledger row and the row's `applied` go in one `/query`. D1 may keep the statements before a
//! failing one, so a failure leaves the row `started`: `migrate status` shows the migration as
//! partial and plans refuse until someone repairs it.

use std::cell::RefCell;
use std::collections::BTreeMap;

use super::Step;
use super::execute::{Progress, StepError};
use crate::cloudflare::{self, Client};
use crate::manifest::model::Transport;
use crate::migrations::ledger;
use crate::plan::MigrationRun;

/// How many times an import whose outcome is unknown is sent again.
const UNKNOWN_RETRIES: usize = 3;

/// What a migration step needs from the apply around it.
pub(super) struct Migrating<'a> {
    /// The environment, for the restore command.
    pub(super) environment: &'a str,
    /// Database ids by key (found, or created by an earlier step).
    pub(super) database_ids: &'a BTreeMap<String, String>,
    /// The bookmark read before this database's first migration of the apply, if one ran.
    pub(super) bookmark: Option<String>,
}

/// Run `run`, the migration of `step`; when it is its database's first of the apply, the
/// bookmark read before it, by database key, for the migrations after it.
pub(super) async fn migrate(
    step: &Step,
    run: &MigrationRun,
    client: &Client,
    migrating: Migrating<'_>,
    progress: &RefCell<&mut dyn Progress>,
) -> Result<Option<(String, String)>, StepError> {
    let name = &run.migration.name;
    let uuid =
        migrating
            .database_ids
            .get(&run.key)
            .ok_or_else(|| StepError::MigrationNoDatabase {
                name: name.clone(),
                database: run.key.clone(),
            })?;
    let text = run
        .migration
        .text()
        .ok_or_else(|| StepError::MigrationNotText { name: name.clone() })?;
    let (bookmark, read) = match migrating.bookmark {
        Some(bookmark) => (bookmark, None),
        None => {
            let bookmark = client.d1_bookmark(uuid).await?;
            progress.borrow_mut().note(
                step,
                &format!(
                    "{} was at bookmark {bookmark} before this apply's migrations; to undo them with their data: lmsinfra restore {} --db {} --bookmark {bookmark}",
                    run.database, migrating.environment, run.key
                ),
            );
            (bookmark.clone(), Some((run.key.clone(), bookmark)))
        }
    };
    let outcome = match run.transport {
        Transport::Import => {
            let file = ledger::apply_file(&run.table, &run.migration, text, &bookmark);
            let mut outcome = client.import_d1(uuid, file.as_bytes()).await.map(drop);
            // An import that may not have run is sent again while the ledger says it did not:
            // it is atomic, and the ledger's unique name stops a second application.
            for _ in 0..UNKNOWN_RETRIES {
                if !matches!(outcome, Err(cloudflare::Error::ImportUnknown { .. }))
                    || ledger::read(client, uuid, &run.table).await?.has(name)
                {
                    break;
                }
                outcome = client.import_d1(uuid, file.as_bytes()).await.map(drop);
            }
            outcome
        }
        Transport::Query => {
            let start = ledger::query_start(&run.table, &run.migration, &bookmark);
            client.write_d1(uuid, &start).await?;
            let file = ledger::query_file(&run.table, &run.migration, text);
            client.write_d1(uuid, &file).await.map(drop)
        }
    };
    let Err(err) = outcome else {
        return Ok(read);
    };
    let rolled_back = matches!(
        err,
        cloudflare::Error::ImportRolledBack { .. } | cloudflare::Error::ImportUnknown { .. }
    );
    if rolled_back || run.transport == Transport::Query {
        let now = ledger::read(client, uuid, &run.table).await?;
        if now.has(name) {
            progress.borrow_mut().note(
                step,
                &format!(
                    "already applied: {name} is in {}'s ledger, written by another run",
                    run.database
                ),
            );
            return Ok(read);
        }
    }
    match run.transport {
        Transport::Import => Err(err.into()),
        Transport::Query => Err(StepError::MigrationPartial {
            name: name.clone(),
            database: run.database.clone(),
            bookmark,
            source: Box::new(err),
        }),
    }
}
