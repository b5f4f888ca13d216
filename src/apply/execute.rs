//! Carry out apply's steps against the API, reporting each.
//!
//! A step starts once the steps it depends on are done (a binding needs its database's id, a
//! Worker its migrations: see [`dependencies`](super::steps::dependencies)), and independent
//! steps run at the same time, up to `--concurrency`: an apply takes as many round trips as its
//! graph is deep, not as it has steps. A failure must leave a clear line between what was done
//! and what was not, so after one no step starts, those under way finish and report, and the
//! rest are not started; every step is derived from a fresh plan, so running apply again
//! finishes the job.
//!
//! A Worker is written once per apply ([`write_worker`]): its bindings, compatibility settings
//! and new secret values in one settings `PATCH`, so one version and one deployment, and a
//! signing key's id and its PEM never serve apart. The secrets travel in that `PATCH` as
//! `secret_text` bindings with their `text`, beside the kept ones as `{name, type}`, rather
//! than through `PATCH …/secrets-bulk` first: every write to a version's bindings or secrets
//! makes a version and deploys it (`cloudflare-api/DAY2.md` §3, FIDELITY.md §1 and §3), so
//! `secrets-bulk` followed by the settings would still be two versions, the first of them a
//! half-applied state a rollback could pick. The settings `PATCH` with `text` is what wrangler's
//! `secret bulk` sent for three years (FIDELITY.md §1), and it carries the version's
//! annotations too.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;

use super::migrate::{Migrating, migrate};
use super::{Inputs, SettingsBinding, Step};
use crate::cloudflare::{
    self, Annotations, Client, Phase, Rule, Ruleset, ScriptSettings, SettingsPatch,
};
use crate::edge;
use crate::live::{Live, LiveDatabase};
use crate::plan::{self, Address, WorkerSettings};
use crate::secret::Secret;

/// How one step ended.
#[derive(Debug)]
pub enum StepOutcome {
    /// Done, in this long.
    Done(Duration),
    /// Failed after this long.
    Failed(Duration, StepError),
    /// Not started because an earlier step failed, or an interrupt arrived.
    NotStarted,
}

/// Why a step failed.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum StepError {
    /// The API call failed (after its retries).
    #[error(transparent)]
    #[diagnostic(transparent)]
    Api(#[from] cloudflare::Error),
    /// The secret to put was not given a value with `--secret`.
    #[error("no value was given for secret {name}")]
    NoSecretValue {
        /// The secret's name.
        name: String,
    },
    /// A d1 binding names a database that has no id: it was neither found nor created.
    #[error("binding {binding} needs the id of database {database}, which was not created")]
    NoDatabaseId {
        /// The binding's name.
        binding: String,
        /// The database's key in the manifest.
        database: String,
    },
    /// A migration's database has no id: it was neither found nor created.
    #[error("migration {name} needs the id of database {database}, which was not created")]
    MigrationNoDatabase {
        /// The file.
        name: String,
        /// The database's key in the manifest.
        database: String,
    },
    /// A migration file is not UTF-8 text (`validate` says where).
    #[error("{name} is not UTF-8 text")]
    #[diagnostic(help("run `lmsinfra validate` for the file's diagnostics"))]
    MigrationNotText {
        /// The file.
        name: String,
    },
    /// A `query`-transport migration failed part way: statements before the failing one may
    /// have run, and no ledger row says so.
    #[error(
        "{name} failed on {database} over D1's query endpoint, which may have kept the statements before the failure: {source}"
    )]
    #[diagnostic(help(
        "`lmsinfra migrate status` shows it as partial and apply refuses until it is repaired; the bookmark before it ran is {bookmark}: `lmsinfra restore ENV --db KEY --bookmark {bookmark}` undoes it"
    ))]
    MigrationPartial {
        /// The file.
        name: String,
        /// The database.
        database: String,
        /// The bookmark recorded before it ran.
        bookmark: String,
        /// Why it failed.
        source: Box<cloudflare::Error>,
    },
    /// A ruleset kept changing under apply; nothing was written over the other changes.
    #[error(
        "the {phase} ruleset of zone {zone_id} changed {attempts} times while apply was writing it"
    )]
    #[diagnostic(help("someone else is editing the ruleset; run apply again once they are done"))]
    RulesetMoving {
        /// The zone.
        zone_id: String,
        /// The phase.
        phase: &'static str,
        /// How many times it was read.
        attempts: usize,
    },
    /// Someone else wrote a ruleset between apply's last read and its write, so the write
    /// replaced their change.
    #[error(
        "the {phase} ruleset of zone {zone_id} was written by someone else just before apply's write: apply expected to make version {expected}, Cloudflare answered version {written}"
    )]
    #[diagnostic(help(
        "the other change (version {}) may be lost: compare the ruleset's versions in the dashboard and redo it, then run apply again", written - 1
    ))]
    RulesetOverwritten {
        /// The zone.
        zone_id: String,
        /// The phase.
        phase: &'static str,
        /// The version apply's write should have made.
        expected: u64,
        /// The version it made.
        written: u64,
    },
    /// A Worker's bindings changed between the plan and apply's write, in a way the plan did
    /// not account for; nothing was written over the change.
    #[error(
        "the bindings of {script} changed since the plan was read: {}", changed.join(", ")
    )]
    #[diagnostic(help(
        "someone else changed the Worker's bindings; run `lmsinfra plan` to review the account as it is now, then apply again"
    ))]
    SettingsMoved {
        /// The script.
        script: String,
        /// The bindings changed, removed or added under a name the manifest declares.
        changed: Vec<String>,
    },
    /// A settings write answered success, but bindings the Worker had and the write kept are
    /// gone from it.
    #[error("after the settings write, {script} no longer has {}", vanished.join(", "))]
    #[diagnostic(help(
        "Cloudflare dropped them although apply sent them back as they were; the Worker's previous versions still hold them: roll back to one (`wrangler rollback --name {script}`) or put them again, then run apply"
    ))]
    BindingsVanished {
        /// The script.
        script: String,
        /// The names that vanished, secrets and bindings alike.
        vanished: Vec<String>,
    },
}

/// Watches steps start and end (progress lines, a spinner per step under way).
pub trait Progress {
    /// A step is about to run.
    fn started(&mut self, index: usize, step: &Step);
    /// A step ended.
    fn ended(&mut self, index: usize, step: &Step, outcome: &StepOutcome);
    /// Something the user must know about a step under way (how to undo it, who else did it).
    fn note(&mut self, _step: &Step, _text: &str) {}
}

/// What a step tells the steps after it, and what it read back of its write.
#[derive(Default)]
struct Effects {
    /// A database it created: its key, and the database as the create answered it.
    created: Option<(String, LiveDatabase)>,
    /// The id of a database it deleted.
    deleted: Option<String>,
    /// The Time Travel bookmark a migration read before its database's first migration.
    bookmark: Option<(String, String)>,
    /// A Worker's settings after its write, read back or as the write answered them (`None`:
    /// the Worker is gone).
    settings: Option<(String, Option<ScriptSettings>)>,
    /// A Worker's observability settings, as the write answered them.
    observability: Option<(String, Option<serde_json::Value>)>,
    /// A zone's ruleset in one phase, as the write answered it or as it already was.
    ruleset: Option<(String, Phase, Option<Ruleset>)>,
}

impl Effects {
    /// Record in `after` what the step read back.
    fn update(self, after: &mut Live) {
        if let Some((_, database)) = self.created {
            after.d1_databases.push(database);
            after
                .d1_databases
                .sort_by(|a, b| (&a.name, &a.uuid).cmp(&(&b.name, &b.uuid)));
        }
        if let Some(uuid) = self.deleted {
            after.d1_databases.retain(|d| d.uuid != uuid);
        }
        if let Some((script, settings)) = self.settings {
            match settings {
                Some(settings) => {
                    let worker = after.workers.entry(script.clone()).or_default();
                    worker.name = script;
                    worker.bindings = settings.bindings;
                    worker.compatibility_date = settings.compatibility_date;
                    worker.compatibility_flags = settings.compatibility_flags;
                }
                None => {
                    after.workers.remove(&script);
                }
            }
        }
        if let Some((script, observability)) = self.observability
            && let Some(worker) = after.workers.get_mut(&script)
        {
            worker.observability = observability;
        }
        if let Some((zone, phase, ruleset)) = self.ruleset
            && let Some(zone) = after.zones.get_mut(&zone)
        {
            match ruleset {
                Some(ruleset) => zone.rulesets.insert(phase.as_str().to_owned(), ruleset),
                None => zone.rulesets.remove(phase.as_str()),
            };
        }
    }
}

/// Run `steps` along their [`dependencies`](super::steps::dependencies), at most `concurrency`
/// steps and re-reads at once, and say how each ended. A step starts once every step it waits for is done,
/// lowest index first, so with `concurrency` 1 they run in order. After a failure or an
/// interrupt no step starts; those under way finish and report; the rest are `NotStarted`.
///
/// A Worker write reads the Worker's settings again before it writes over them (a binding
/// someone added since the plan is kept; one changed stops it). That read is sent as soon as
/// every step the write waits for has started, so it runs beside the last of them (a database's
/// creation, say) rather than after it: the read is as close to the write as one step, and
/// costs no round trip of its own. With `reread_first` off (a saved plan's read, checked just
/// before the first write), the writes take the settings from `live`.
/// Every Worker version the steps make carries `annotations`.
pub async fn execute(
    steps: &[Step],
    inputs: Inputs<'_>,
    concurrency: usize,
    reread_first: bool,
    progress: &mut dyn Progress,
) -> Executed {
    let Inputs {
        desired,
        live,
        client,
        secrets,
        annotations,
    } = inputs;
    let waits_for = super::steps::dependencies(steps, desired);
    let mut database_ids: BTreeMap<String, String> = desired
        .d1_databases
        .iter()
        .filter_map(|(key, db)| {
            let found = live.d1_databases.iter().find(|d| d.name == db.name)?;
            Some((key.clone(), found.uuid.clone()))
        })
        .collect();
    let mut bookmarks: BTreeMap<String, String> = BTreeMap::new();
    let mut after = live.clone();
    let mut outcomes: Vec<Option<StepOutcome>> = steps.iter().map(|_| None).collect();
    let mut started = vec![false; steps.len()];
    let mut stopped = false;
    let notes = RefCell::new(progress);
    let mut running = FuturesUnordered::new();
    let mut reading = FuturesUnordered::new();
    // Without a re-read, a write takes the settings it writes over from `live`.
    let mut reread: Vec<Reread> = steps
        .iter()
        .map(|step| match step {
            Step::WriteWorker { script, .. } if !reread_first => Reread::Read(Some(
                live.workers
                    .get(script)
                    .map(|w| w.bindings.clone())
                    .unwrap_or_default(),
            )),
            _ => Reread::NotAsked,
        })
        .collect();
    loop {
        stopped = stopped || crate::interrupt::requested();
        if !stopped {
            for (index, step) in steps.iter().enumerate() {
                if running.len() + reading.len() >= concurrency.max(1) {
                    break;
                }
                let ready = waits_for[index]
                    .iter()
                    .all(|&before| matches!(outcomes[before], Some(StepOutcome::Done(_))));
                let reread_done = !matches!(step, Step::WriteWorker { .. })
                    || matches!(reread[index], Reread::Read(_));
                if started[index] || !ready || !reread_done {
                    continue;
                }
                started[index] = true;
                notes.borrow_mut().started(index, step);
                let current = match std::mem::replace(&mut reread[index], Reread::Asked) {
                    Reread::Read(current) => current,
                    _ => None,
                };
                let context = StepContext {
                    environment: &desired.environment,
                    live,
                    client,
                    secrets,
                    annotations,
                    database_ids: database_ids.clone(),
                    bookmarks: bookmarks.clone(),
                    current,
                    notes: &notes,
                };
                running.push(async move {
                    let start = Instant::now();
                    let result = run(step, context).await;
                    (index, start.elapsed(), result)
                });
            }
            // After the steps: a write's re-read goes out as soon as the last step it waits for
            // has started, beside it.
            for (index, step) in steps.iter().enumerate() {
                if running.len() + reading.len() >= concurrency.max(1) {
                    break;
                }
                let Step::WriteWorker { script, .. } = step else {
                    continue;
                };
                let near = waits_for[index].iter().all(|&before| started[before]);
                if near && matches!(reread[index], Reread::NotAsked) {
                    reread[index] = Reread::Asked;
                    reading.push(async move { (index, client.get_settings(script).await) });
                }
            }
        }
        let ended = tokio::select! {
            Some(ended) = running.next(), if !running.is_empty() => ended,
            Some((index, read)) = reading.next(), if !reading.is_empty() => {
                // A failed read is made again by the write itself, which reports its error.
                let current = read.ok().map(|s| s.map(|s| s.bindings).unwrap_or_default());
                reread[index] = Reread::Read(current);
                continue;
            }
            else => break,
        };
        let (index, took, result) = ended;
        let outcome = match result {
            Ok(mut effects) => {
                if let Some((key, database)) = &effects.created {
                    database_ids.insert(key.clone(), database.uuid.clone());
                }
                bookmarks.extend(effects.bookmark.take());
                effects.update(&mut after);
                StepOutcome::Done(took)
            }
            Err(err) => {
                stopped = true;
                StepOutcome::Failed(took, err)
            }
        };
        notes.borrow_mut().ended(index, &steps[index], &outcome);
        outcomes[index] = Some(outcome);
    }
    let outcomes: Vec<StepOutcome> = outcomes
        .into_iter()
        .map(|o| o.unwrap_or(StepOutcome::NotStarted))
        .collect();
    drop((running, reading));
    let progress = notes.into_inner();
    for (index, outcome) in outcomes.iter().enumerate() {
        if matches!(outcome, StepOutcome::NotStarted) {
            progress.ended(index, &steps[index], outcome);
        }
    }
    Executed { outcomes, after }
}

/// Where a Worker write's read of the settings it writes over stands.
enum Reread {
    /// Not sent: the steps the write waits for have not all started.
    NotAsked,
    /// Sent, or taken by the write.
    Asked,
    /// Answered (`None`: the read failed, and the write reads again itself).
    Read(Option<Vec<cloudflare::Binding>>),
}

/// How the steps ended, and the account as they left it.
pub struct Executed {
    /// How each step ended, by index.
    pub outcomes: Vec<StepOutcome>,
    /// The live state read before apply, with what each step done read back of its write or
    /// was answered for it: the account as apply left it, read without a second gather.
    pub after: Live,
}

/// What one step runs with.
struct StepContext<'a, 'p> {
    environment: &'a str,
    live: &'a Live,
    client: &'a Client,
    secrets: &'a BTreeMap<String, Secret>,
    annotations: &'a Annotations,
    /// Database ids by key, as the steps done so far left them.
    database_ids: BTreeMap<String, String>,
    /// The bookmarks migrations done so far read, by database key.
    bookmarks: BTreeMap<String, String>,
    /// A Worker write's read of the settings it writes over.
    current: Option<Vec<cloudflare::Binding>>,
    notes: &'a RefCell<&'p mut (dyn Progress + 'p)>,
}

async fn run(step: &Step, context: StepContext<'_, '_>) -> Result<Effects, StepError> {
    let StepContext {
        environment,
        live,
        client,
        secrets,
        annotations,
        database_ids,
        bookmarks,
        current,
        notes,
    } = context;
    let mut effects = Effects::default();
    match step {
        Step::CreateDatabase {
            key,
            name,
            location_hint,
            ..
        } => {
            let created = client
                .create_d1(name, location_hint.map(|hint| hint.as_str()))
                .await?;
            effects.created = Some((key.clone(), created.into()));
        }
        Step::WriteWorker {
            script,
            settings,
            secrets: names,
            ..
        } => {
            let secrets = names
                .iter()
                .map(|name| match secrets.get(name) {
                    Some(value) => Ok((name.clone(), value.clone())),
                    None => Err(StepError::NoSecretValue { name: name.clone() }),
                })
                .collect::<Result<_, _>>()?;
            let worker = live.workers.get(script);
            let write = WorkerWrite {
                script: script.clone(),
                settings: settings.as_deref().cloned(),
                basis: worker.map(|w| w.bindings.clone()).unwrap_or_default(),
                current,
                secrets,
                remove_secrets: Vec::new(),
                annotations: crate::release::naming_secrets(annotations, names),
            };
            let written = write_worker(client, &write, &database_ids).await?;
            effects.settings = Some((script.clone(), settings_after(client, written).await?));
        }
        Step::DeleteDatabase { uuid, .. } => {
            client.delete_d1(uuid).await?;
            effects.deleted = Some(uuid.clone());
        }
        Step::Migrate { run, .. } => {
            let migrating = Migrating {
                environment,
                database_ids: &database_ids,
                bookmark: bookmarks.get(&run.key).cloned(),
            };
            effects.bookmark = migrate(step, run, client, migrating, notes).await?;
        }
        Step::PatchObservability {
            script,
            observability,
            ..
        } => {
            let changes = serde_json::json!({ "observability": observability });
            let answered = client.patch_script_settings(script, &changes).await?;
            effects.observability = Some((script.clone(), answered.observability));
        }
        Step::PutRules {
            address,
            zone_id,
            phase,
            owner,
            rules,
            basis,
        } => {
            let ruleset = put_rules(client, zone_id, *phase, owner, rules, basis.clone()).await?;
            if let Address::Ruleset { zone, .. } = address {
                effects.ruleset = Some((zone.clone(), *phase, ruleset));
            }
        }
    }
    Ok(effects)
}

/// The type of each binding (secrets included) a Worker has, by name.
type BindingKinds = BTreeMap<String, String>;

fn kinds_of(bindings: &[cloudflare::Binding]) -> BindingKinds {
    bindings
        .iter()
        .map(|b| (b.name().to_owned(), b.kind().to_owned()))
        .collect()
}

/// One write to a Worker: everything a command changes on it, made as one settings `PATCH`, so
/// one new version, deployed, carrying `annotations`.
#[derive(Debug, Clone, Default)]
pub struct WorkerWrite {
    /// The script.
    pub script: String,
    /// The binding list and compatibility settings to write, as a plan computed them from
    /// `basis`; `None` keeps every binding the Worker has when the write is made, and its
    /// compatibility settings.
    pub settings: Option<WorkerSettings>,
    /// The bindings as the plan read them (only looked at with `settings`): a binding changed
    /// since stops the write, one added since is kept.
    pub basis: Vec<cloudflare::Binding>,
    /// The Worker's bindings read again for this write while the steps it waits for ran
    /// (`None`: they are read just before it).
    pub current: Option<Vec<cloudflare::Binding>>,
    /// Secrets to set, with their values.
    pub secrets: BTreeMap<String, Secret>,
    /// Secrets to remove.
    pub remove_secrets: Vec<String>,
    /// The new version's `workers/message` and `workers/tag`.
    pub annotations: Annotations,
}

/// What a Worker write kept and set: what must be on the Worker after it.
#[derive(Debug, Clone)]
pub struct Written {
    /// The script.
    pub script: String,
    /// The bindings the Worker had and the write sent back as they were.
    pub kept: BTreeSet<String>,
    /// The secrets the write set.
    pub set: Vec<String>,
    /// Whether the write sent some binding by reference (`{name, type}`, no content): how
    /// Cloudflare treats that form is not known for certain (`cloudflare-api/FIDELITY.md` §1),
    /// so only a read after the write shows whether it kept them.
    pub by_reference: bool,
    /// The settings as the write's answer gave them, when it gave the bindings.
    pub answered: Option<ScriptSettings>,
}

/// Make `write` as one settings `PATCH`. The settings are read again before it, unless the
/// caller has ([`WorkerWrite::current`]; see [`settings_to_write`]); every binding kept is sent as
/// `{name, type}`; new secrets go with their values. `database_ids` resolves the manifest's d1
/// bindings (by database key) to ids. Whether Cloudflare kept what the write sent back is
/// [`check_written`]'s to say, from a read after it: apply makes that read its convergence read.
pub async fn write_worker(
    client: &Client,
    write: &WorkerWrite,
    database_ids: &BTreeMap<String, String>,
) -> Result<Written, StepError> {
    let script = write.script.as_str();
    let current = match &write.current {
        Some(current) => current.clone(),
        None => client
            .get_settings(script)
            .await?
            .map(|s| s.bindings)
            .unwrap_or_default(),
    };
    // The types of what is there now, so every binding kept is sent in its `{name, type}` form.
    let kinds = kinds_of(&current);
    let planned = match &write.settings {
        Some(settings) => settings_to_write(script, &settings.bindings, &write.basis, &current)?,
        None => current
            .iter()
            .map(|b| SettingsBinding::Inherit {
                name: b.name().to_owned(),
            })
            .collect(),
    };
    let replaced = |name: &str| {
        write.secrets.contains_key(name) || write.remove_secrets.iter().any(|r| r == name)
    };
    let sent: Vec<&SettingsBinding> = planned
        .iter()
        .filter(|b| !matches!(b, SettingsBinding::Inherit { name } if replaced(name)))
        .collect();
    let by_reference = sent
        .iter()
        .any(|b| matches!(b, SettingsBinding::Inherit { .. }));
    let bindings = sent
        .into_iter()
        .map(|b| wire_binding(b, database_ids, Some(&kinds)))
        .collect::<Result<Vec<_>, _>>()?;
    let patch = SettingsPatch {
        bindings: Some(bindings),
        compatibility_date: write
            .settings
            .as_ref()
            .map(|s| s.compatibility_date.clone()),
        compatibility_flags: write
            .settings
            .as_ref()
            .map(|s| s.compatibility_flags.clone()),
        annotations: Some(write.annotations.clone()),
        secrets: write
            .secrets
            .iter()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect(),
    };
    let answered = client.patch_settings(script, &patch).await?;
    let kept = patch
        .bindings
        .iter()
        .flatten()
        .map(cloudflare::Binding::name)
        .filter(|name| kinds.contains_key(*name))
        .map(str::to_owned)
        .collect();
    Ok(Written {
        script: script.to_owned(),
        kept,
        set: write.secrets.keys().cloned().collect(),
        by_reference,
        answered,
    })
}

/// Fail, naming them, if any binding or secret the Worker had before `written` and the write
/// kept is missing from `now` (its settings read after the write), or a secret it set is not a
/// secret. The write answered success, so only a read after it shows such a loss.
pub fn check_written(
    written: &Written,
    now: Option<&[cloudflare::Binding]>,
) -> Result<(), StepError> {
    let now = now.map(kinds_of).unwrap_or_default();
    let mut vanished: Vec<String> = written
        .kept
        .iter()
        .filter(|name| !now.contains_key(*name))
        .cloned()
        .collect();
    vanished.extend(
        written
            .set
            .iter()
            .filter(|name| now.get(*name).map(String::as_str) != Some("secret_text"))
            .cloned(),
    );
    if vanished.is_empty() {
        Ok(())
    } else {
        Err(StepError::BindingsVanished {
            script: written.script.clone(),
            vanished,
        })
    }
}

/// The Worker's settings after `written`, [`check_written`]: as the write's answer gave them
/// when it sent every binding with its content, read again otherwise.
async fn settings_after(
    client: &Client,
    written: Written,
) -> Result<Option<ScriptSettings>, StepError> {
    match &written.answered {
        Some(answered) if !written.by_reference => {
            check_written(&written, Some(&answered.bindings))?;
            Ok(written.answered)
        }
        _ => read_back(client, &written).await,
    }
}

/// Read the Worker's settings again after `written`, [`check_written`] them, and return them.
pub async fn read_back(
    client: &Client,
    written: &Written,
) -> Result<Option<ScriptSettings>, StepError> {
    let now = client.get_settings(&written.script).await?;
    check_written(written, now.as_ref().map(|s| s.bindings.as_slice()))?;
    Ok(now)
}

/// How many times a ruleset is read before apply gives up on a ruleset that keeps moving.
const RULESET_ATTEMPTS: usize = 3;

/// Read-modify-write of one entrypoint ruleset. The rule list to send is computed from
/// `basis`; just before the `PUT` the ruleset is read again, and if its version moved (someone
/// else wrote it) the list is recomputed from what is there now and read once more, up to
/// [`RULESET_ATTEMPTS`] reads. The API has no conditional `PUT`, so the re-read narrows the
/// window for a lost update to the time between one read and the write that follows it; a
/// write that lands in that window shows as a version jump in the `PUT`'s answer (versions
/// count up by one per write), and is reported rather than passed over.
async fn put_rules(
    client: &Client,
    zone_id: &str,
    phase: Phase,
    owner: &str,
    wanted: &[Rule],
    mut basis: Option<Ruleset>,
) -> Result<Option<Ruleset>, StepError> {
    let version = |r: &Option<Ruleset>| r.as_ref().map(|r| r.version.clone());
    for _ in 0..RULESET_ATTEMPTS {
        let current = client.get_ruleset(zone_id, phase).await?;
        if version(&current) != version(&basis) {
            tracing::warn!(
                zone_id,
                phase = phase.as_str(),
                "the ruleset changed since it was read; recomputing from its new rules"
            );
            basis = current;
            continue;
        }
        let live = basis.as_ref().map_or(&[][..], |r| r.rules.as_slice());
        let rules = edge::merged(live, owner, wanted);
        if edge::same_rules(&rules, live) {
            return Ok(basis);
        }
        let answered = client.put_ruleset(zone_id, phase, &rules).await?;
        let read = basis.as_ref().map_or(Some(0), |r| {
            r.version.as_deref().and_then(|v| v.parse::<u64>().ok())
        });
        let written = answered
            .version
            .as_deref()
            .and_then(|v| v.parse::<u64>().ok());
        return match (read, written) {
            (Some(read), Some(written)) if written != read + 1 => {
                Err(StepError::RulesetOverwritten {
                    zone_id: zone_id.to_owned(),
                    phase: phase.as_str(),
                    expected: read + 1,
                    written,
                })
            }
            _ => Ok(Some(answered)),
        };
    }
    Err(StepError::RulesetMoving {
        zone_id: zone_id.to_owned(),
        phase: phase.as_str(),
        attempts: RULESET_ATTEMPTS,
    })
}

/// The binding list to write to `script`, from its settings read again just before the write
/// (`current`).
///
/// A settings `PATCH` replaces the whole binding list, and the list was computed from the
/// settings the plan read (`planned`), possibly minutes earlier, while the plan was reviewed.
/// A binding added since (a colleague's `wrangler secret put`, another apply) is not in it and
/// would be deleted by the write. So the settings are read again: a binding added under a name
/// the plan does not write is inherited; a binding changed or removed since the plan, or added
/// under a name the manifest declares, means the reviewed plan no longer describes the write,
/// and the step stops. The API has no conditional `PATCH`, so a write landing between this read
/// and the `PATCH` can still be lost; the re-read narrows that window from the review to one
/// round trip.
fn settings_to_write(
    script: &str,
    planned: &[SettingsBinding],
    basis: &[cloudflare::Binding],
    current: &[cloudflare::Binding],
) -> Result<Vec<SettingsBinding>, StepError> {
    let declared = |name: &str| {
        planned
            .iter()
            .any(|b| matches!(b, SettingsBinding::Declared { name: n, .. } if n == name))
    };
    let mut changed: Vec<String> = basis
        .iter()
        .filter(|was| !current.contains(was))
        .map(|was| was.name().to_owned())
        .collect();
    let added: Vec<&cloudflare::Binding> = current
        .iter()
        .filter(|now| !basis.iter().any(|was| was.name() == now.name()))
        .collect();
    changed.extend(
        added
            .iter()
            .filter(|now| declared(now.name()))
            .map(|now| now.name().to_owned()),
    );
    if !changed.is_empty() {
        changed.sort();
        changed.dedup();
        return Err(StepError::SettingsMoved {
            script: script.to_owned(),
            changed,
        });
    }
    let mut bindings = planned.to_vec();
    for now in added {
        tracing::warn!(
            script,
            binding = now.name(),
            "a binding was added since the plan was read; the write keeps it"
        );
        bindings.push(SettingsBinding::Inherit {
            name: now.name().to_owned(),
        });
    }
    Ok(bindings)
}

/// A binding a settings write keeps as it is, sent as `{name, type}` with no value: the form
/// wrangler sends and Cloudflare is seen to honour (`cloudflare-api/FIDELITY.md` §1).
/// `{"type": "inherit"}` is in the schema but has not been seen on this endpoint, and plausible
/// answers to it include refusing the whole write or dropping a secret it names, so it is sent
/// only for a binding whose type was not read.
fn kept_binding(name: &str, kinds: Option<&BindingKinds>) -> cloudflare::Binding {
    match kinds.and_then(|kinds| kinds.get(name)) {
        Some(kind) => cloudflare::Binding::Other(cloudflare::OtherBinding {
            name: name.to_owned(),
            kind: kind.clone(),
            fields: serde_json::Map::new(),
        }),
        None => cloudflare::Binding::inherit(name),
    }
}

/// A settings binding as the API takes it, with a d1 database's key resolved to its id.
fn wire_binding(
    binding: &SettingsBinding,
    database_ids: &BTreeMap<String, String>,
    kinds: Option<&BindingKinds>,
) -> Result<cloudflare::Binding, StepError> {
    let (name, binding) = match binding {
        SettingsBinding::Inherit { name } => return Ok(kept_binding(name, kinds)),
        SettingsBinding::Declared { name, binding } => (name, binding),
    };
    plan::wire_binding(name, binding, |database| {
        database_ids
            .get(database)
            .cloned()
            .ok_or_else(|| StepError::NoDatabaseId {
                binding: name.clone(),
                database: database.to_owned(),
            })
    })
}
