//! Carry out apply's steps against the API, one at a time, in order, reporting each.
//!
//! Steps run one after another: each may depend on the ones before (a binding needs its
//! database's id), and a failure must leave a clear line between what was done and what was
//! not. The executor stops at the first failure; every step is derived from a fresh plan, so
//! running apply again finishes the job.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::{SettingsBinding, Step};
use crate::cloudflare::{self, Client, SettingsPatch};
use crate::live::Live;
use crate::manifest::model::{Binding, Manifest};
use crate::secret::Secret;

/// How one step ended.
#[derive(Debug)]
pub enum StepOutcome {
    /// Done, in this long.
    Done(Duration),
    /// Failed after this long.
    Failed(Duration, StepError),
    /// Not started because an earlier step failed.
    NotStarted,
}

/// Why a step failed.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum StepError {
    /// The API call failed (after its retries).
    #[error(transparent)]
    #[diagnostic(transparent)]
    Api(#[from] cloudflare::Error),
    /// Something the step needs is not there (a database id, a secret value).
    #[error("{0}")]
    Missing(String),
}

/// Watches steps start and end (progress lines, a spinner).
pub trait Progress {
    /// A step is about to run.
    fn started(&mut self, index: usize, step: &Step);
    /// A step ended.
    fn ended(&mut self, index: usize, step: &Step, outcome: &StepOutcome);
}

/// Run `steps` in order and say how each ended; the steps after a failure are `NotStarted`.
pub async fn execute(
    steps: &[Step],
    desired: &Manifest,
    live: &Live,
    client: &Client,
    secrets: &BTreeMap<String, Secret>,
    progress: &mut dyn Progress,
) -> Vec<StepOutcome> {
    let mut database_ids: BTreeMap<String, String> = desired
        .d1_databases
        .iter()
        .filter_map(|(key, db)| {
            let found = live.d1_databases.iter().find(|d| d.name == db.name)?;
            Some((key.clone(), found.uuid.clone()))
        })
        .collect();
    let mut outcomes = Vec::with_capacity(steps.len());
    for (index, step) in steps.iter().enumerate() {
        if matches!(
            outcomes.last(),
            Some(StepOutcome::Failed(..) | StepOutcome::NotStarted)
        ) {
            outcomes.push(StepOutcome::NotStarted);
            continue;
        }
        progress.started(index, step);
        let start = Instant::now();
        let outcome = match run(step, client, secrets, &mut database_ids).await {
            Ok(()) => StepOutcome::Done(start.elapsed()),
            Err(err) => StepOutcome::Failed(start.elapsed(), err),
        };
        progress.ended(index, step, &outcome);
        outcomes.push(outcome);
    }
    outcomes
}

async fn run(
    step: &Step,
    client: &Client,
    secrets: &BTreeMap<String, Secret>,
    database_ids: &mut BTreeMap<String, String>,
) -> Result<(), StepError> {
    match step {
        Step::CreateDatabase {
            key,
            name,
            location_hint,
            ..
        } => {
            let created = client.create_d1(name, *location_hint).await?;
            database_ids.insert(key.clone(), created.uuid);
        }
        Step::PatchSettings {
            script,
            bindings,
            compatibility_date,
            compatibility_flags,
            ..
        } => {
            let bindings = bindings
                .iter()
                .map(|b| wire_binding(b, database_ids))
                .collect::<Result<Vec<_>, _>>()?;
            let patch = SettingsPatch {
                bindings: Some(bindings),
                compatibility_date: Some(compatibility_date.clone()),
                compatibility_flags: Some(compatibility_flags.clone()),
            };
            client.patch_settings(script, &patch).await?;
        }
        Step::PutSecret { script, name, .. } => {
            let value = secrets.get(name).ok_or_else(|| {
                StepError::Missing(format!("no value was given for secret {name}"))
            })?;
            client.put_secret(script, name, value).await?;
        }
        Step::DeleteDatabase { uuid, .. } => client.delete_d1(uuid).await?,
    }
    Ok(())
}

/// A settings binding as the API takes it, with a d1 database's key resolved to its id.
fn wire_binding(
    binding: &SettingsBinding,
    database_ids: &BTreeMap<String, String>,
) -> Result<cloudflare::Binding, StepError> {
    let (name, binding) = match binding {
        SettingsBinding::Inherit { name } => return Ok(cloudflare::Binding::inherit(name.clone())),
        SettingsBinding::Declared { name, binding } => (name, binding),
    };
    let database_id = match binding {
        Binding::D1 { database } => database_ids.get(database).ok_or_else(|| {
            StepError::Missing(format!("database {database} has no id: it was not created"))
        })?,
        _ => "",
    };
    let mut wire = binding.wire_fields(database_id);
    wire.insert("name".to_owned(), name.as_str().into());
    wire.insert("type".to_owned(), binding.kind().into());
    serde_json::from_value(wire.into())
        .map_err(|e| StepError::Missing(format!("binding {name} has no Cloudflare form: {e}")))
}
