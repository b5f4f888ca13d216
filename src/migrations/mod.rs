//! D1 migrations: the files of a migrations directory, wrangler's ledger beside lmsinfra's own,
//! and what one says about the other.
//!
//! The ledger is wrangler's own table, created with wrangler's exact statement and written with
//! its `name` format (the file name), so `wrangler d1 migrations list --remote` and lmsinfra
//! agree and mixed use is safe. What wrangler does not record (the file's checksum, the Time
//! Travel bookmark taken before it ran, who ran it) goes in a separate table,
//! [`FACTS_TABLE`], whose row travels in the same import as the ledger row.
//!
//! Up files are `DIR/NNNN_name.sql`, ordered as wrangler orders them: by name, then by the
//! number before the first `_` (a stable sort, so `1_`, `9_`, `10_` run in that order). Down
//! files are `DIR/down/NNNN_name.down.sql`: wrangler reads every `.sql` file at the top of the
//! directory as a migration, so a down file beside the up files would look pending to it.

pub(crate) mod check;
pub(crate) mod files;
pub(crate) mod ledger;
pub(crate) mod status;

pub use files::{DownFile, Migration, MigrationSet, ReadError, read_set};
pub use ledger::{Applied, Facts, Ledger};
pub use status::{State, Status, status};

pub use crate::manifest::model::FACTS_TABLE;

/// The migration files of every database in `manifest` that declares migrations, by key.
pub fn read_all(
    root: &std::path::Path,
    manifest: &crate::manifest::Manifest,
) -> Result<std::collections::BTreeMap<String, MigrationSet>, ReadError> {
    manifest
        .d1_databases
        .iter()
        .filter(|(_, db)| !db.absent)
        .filter_map(|(key, db)| Some((key, db.migrations.as_ref()?)))
        .map(|(key, config)| Ok((key.clone(), read_set(root, &config.directory)?)))
        .collect()
}
