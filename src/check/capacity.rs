//! Capacity findings: how much of the platform's hard limits an environment uses, read live.
//!
//! The LMS's bottlenecks are limits Cloudflare does not raise: a D1 database holds 10 GB on
//! Workers Paid (500 MB on Free), only the newest 100 versions of a Worker can be deployed (so a
//! rollback target must stay among them), and the API answers 1,200 requests per 5 minutes per
//! user. A document listing them goes stale; the account says most of it live. [`read`] makes
//! the extra reads (each database's details, each Worker's deployable versions); [`assess`] is
//! pure and turns them into findings, each `ok`, `warn` or `fail` by the manifest's thresholds
//! (`capacity.warn_percent`, `capacity.fail_percent`). `docs/scaling.md` says what to do when
//! one trips.

use std::collections::BTreeMap;

use futures::future::try_join_all;
use serde::Serialize;

use crate::apply::Step;
use crate::cloudflare::{self, Client, DatabaseDetails};
use crate::live::Live;
use crate::manifest::model::{AccountPlan, Manifest};
use crate::plan::Address;

/// How many of a Worker's newest versions can be deployed.
pub const DEPLOYABLE_WINDOW: usize = 100;

/// The API's global limit: requests per [`API_WINDOW_SECONDS`] per user.
pub const API_BUDGET: u64 = 1_200;

/// The window of the API's global limit, in seconds.
pub const API_WINDOW_SECONDS: u64 = 300;

/// How much of its limits an environment uses.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Capacity {
    /// The account's Workers plan, from the manifest (the API does not report it).
    pub plan: AccountPlan,
    /// The use, in percent, from which a finding warns.
    pub warn_percent: f64,
    /// The use, in percent, from which a finding fails.
    pub fail_percent: f64,
    /// One per declared database.
    pub databases: Vec<DatabaseUse>,
    /// One per declared Worker.
    pub workers: Vec<WorkerUse>,
    /// What a plan and an apply of this environment cost against the API's limit.
    pub api: ApiUse,
    /// Whether no finding warns or fails; `check` exits 3 when not.
    pub passed: bool,
}

/// Where a use stands against its thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Below the warning threshold.
    Ok,
    /// At or above the warning threshold.
    Warn,
    /// At or above the failing threshold.
    Fail,
}

/// One D1 database's size against its plan's limit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatabaseUse {
    /// `d1.KEY`.
    pub address: Address,
    /// The database's name.
    pub name: String,
    /// Its size in bytes (`None`: it does not exist, or the API did not say).
    pub size_bytes: Option<u64>,
    /// The most one database may hold on the plan, in bytes.
    pub limit_bytes: u64,
    /// `size_bytes` in percent of `limit_bytes`.
    pub percent: f64,
    /// How many tables it holds, when reported.
    pub tables: Option<u64>,
    /// How many days back Time Travel can restore it (`None`: an alpha database, which has
    /// no Time Travel, or one that does not exist).
    pub time_travel_days: Option<u32>,
    /// Where the size stands.
    pub level: Level,
    /// What was found.
    pub message: String,
}

/// One Worker's use of the deployable window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkerUse {
    /// `worker.KEY`.
    pub address: Address,
    /// The script.
    pub script: String,
    /// Its deployable versions (the newest, at most the window).
    pub versions: Option<usize>,
    /// How far from the newest the oldest deployed version is: 1 when the newest is deployed.
    pub oldest_deployed_position: Option<usize>,
    /// How many versions can be deployed (100).
    pub window: usize,
    /// How many new versions can be made before the oldest deployed one leaves the window.
    pub remaining: Option<usize>,
    /// `oldest_deployed_position` in percent of the window.
    pub percent: f64,
    /// Where the use stands.
    pub level: Level,
    /// What was found.
    pub message: String,
}

/// The API requests a plan and an apply of this environment cost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiUse {
    /// Requests a plan sends (counted while this check read the account).
    pub plan_requests: u64,
    /// Requests an apply of the current plan sends at most: its plan, its steps, and the
    /// fresh plan it ends with.
    pub apply_requests: u64,
    /// The limit, per window.
    pub limit: u64,
    /// The window, in seconds.
    pub window_seconds: u64,
    /// `apply_requests` in percent of `limit`.
    pub percent: f64,
    /// Where the use stands.
    pub level: Level,
    /// What was found.
    pub message: String,
}

/// What [`read`] learns beyond the plan's own read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Readings {
    /// Details of each declared database that exists, by name.
    pub databases: BTreeMap<String, DatabaseDetails>,
    /// Deployable version ids, newest first, of each declared Worker that exists, by script.
    pub versions: BTreeMap<String, Vec<String>>,
}

/// Read the details of every declared database that exists and the deployable versions of
/// every declared Worker that exists, all at once.
pub async fn read(
    desired: &Manifest,
    live: &Live,
    client: &Client,
) -> Result<Readings, cloudflare::Error> {
    let databases = desired.d1_databases.values().filter_map(|db| {
        let found = live.d1_databases.iter().find(|d| d.name == db.name)?;
        Some(client.get_d1(&found.uuid))
    });
    let scripts = desired
        .workers
        .values()
        .filter(|w| live.workers.contains_key(&w.name))
        .map(|w| async move {
            let versions = client.deployable_versions(&w.name).await?;
            let ids = versions.map(|v| v.into_iter().map(|v| v.id).collect::<Vec<_>>());
            Ok::<_, cloudflare::Error>(ids.map(|ids| (w.name.clone(), ids)))
        });
    let (databases, versions) = tokio::try_join!(try_join_all(databases), try_join_all(scripts))?;
    Ok(Readings {
        databases: databases
            .into_iter()
            .flatten()
            .map(|d| (d.name.clone(), d))
            .collect(),
        versions: versions.into_iter().flatten().collect(),
    })
}

/// The requests one step of apply sends: a Worker's one write reads its settings first and
/// reads them back after, and its deployments are read around it for the smoke checks and a
/// rollback; a rules write re-reads the ruleset; a migration is an import (its
/// init, upload, ingest and, as imports usually go, one poll) after the bookmark read that
/// comes before a database's first migration; the others are one call.
fn step_requests(step: &Step) -> u64 {
    match step {
        Step::Migrate { .. } => 5,
        Step::WriteWorker { .. } => 6,
        Step::PutRules { .. } => 2,
        Step::CreateDatabase { .. }
        | Step::PatchObservability { .. }
        | Step::DeleteDatabase { .. } => 1,
    }
}

/// The requests an apply sends at most: its plan and `steps` (the check that it converged uses
/// what the steps read back; `--full-check` adds one more plan's read).
pub fn apply_requests(plan_requests: u64, steps: &[Step]) -> u64 {
    plan_requests + steps.iter().map(step_requests).sum::<u64>()
}

/// Judge `desired`'s use of its limits from `live`, the extra `readings`, and what a plan and
/// an apply cost.
pub fn assess(
    desired: &Manifest,
    live: &Live,
    readings: &Readings,
    plan_requests: u64,
    apply_requests: u64,
) -> Capacity {
    let thresholds = &desired.capacity;
    let level = |percent: f64| {
        if percent >= thresholds.fail_percent {
            Level::Fail
        } else if percent >= thresholds.warn_percent {
            Level::Warn
        } else {
            Level::Ok
        }
    };
    let (limit_bytes, days) = match thresholds.plan {
        AccountPlan::Paid => (10_000_000_000, 30),
        AccountPlan::Free => (500_000_000, 7),
    };
    let databases: Vec<DatabaseUse> = desired
        .d1_databases
        .iter()
        .filter(|(_, db)| !db.absent)
        .map(|(key, db)| {
            let details = readings.databases.get(&db.name);
            let size_bytes = details.and_then(|d| d.file_size);
            let percent = size_bytes.map_or(0.0, |s| percent_of(s, limit_bytes));
            let time_travel_days = details
                .filter(|d| d.version.as_deref() != Some("alpha"))
                .map(|_| days);
            let tables = details.and_then(|d| d.num_tables);
            let message = match (details, size_bytes) {
                (None, _) => format!("{} does not exist yet", db.name),
                (Some(_), None) => format!("{}: the API did not report its size", db.name),
                (Some(_), Some(size)) => format!(
                    "{} holds {} of {} ({percent:.1} %), {} tables; Time Travel: {}",
                    db.name,
                    bytes(size),
                    bytes(limit_bytes),
                    tables.map_or("?".to_owned(), |t| t.to_string()),
                    time_travel_days
                        .map_or("none (alpha database)".to_owned(), |d| format!("{d} days")),
                ),
            };
            DatabaseUse {
                address: Address::D1 { key: key.clone() },
                name: db.name.clone(),
                size_bytes,
                limit_bytes,
                percent,
                tables,
                time_travel_days,
                level: level(percent),
                message,
            }
        })
        .collect();
    let workers: Vec<WorkerUse> = desired
        .workers
        .iter()
        .map(|(key, worker)| {
            let versions = readings.versions.get(&worker.name);
            let deployed = live
                .workers
                .get(&worker.name)
                .and_then(|w| w.rollout.as_ref())
                .map(|r| r.deployed.as_slice())
                .unwrap_or_default();
            // 1-based position of each deployed version in the newest-first list; one that is
            // not in the list has already left the window.
            let positions: Option<Vec<usize>> = versions.map(|ids| {
                deployed
                    .iter()
                    .map(|d| {
                        ids.iter()
                            .position(|id| *id == d.version_id)
                            .map_or(DEPLOYABLE_WINDOW + 1, |p| p + 1)
                    })
                    .collect()
            });
            let oldest = positions.as_ref().and_then(|p| p.iter().copied().max());
            let percent = oldest.map_or(0.0, |p| percent_of(p as u64, DEPLOYABLE_WINDOW as u64));
            let remaining = oldest.map(|p| DEPLOYABLE_WINDOW.saturating_sub(p));
            let message = match (versions, oldest) {
                (None, _) => format!("{} does not exist yet", worker.name),
                (Some(ids), None) => format!(
                    "{} has {} deployable versions and no deployment",
                    worker.name,
                    ids.len()
                ),
                (Some(_), Some(p)) if p > DEPLOYABLE_WINDOW => format!(
                    "{} serves a version older than its newest {DEPLOYABLE_WINDOW}: it can no longer be deployed again",
                    worker.name
                ),
                (Some(ids), Some(p)) => format!(
                    "{} has {} deployable versions; the oldest deployed is number {p} of {DEPLOYABLE_WINDOW}: {} more before it leaves the window",
                    worker.name,
                    ids.len(),
                    DEPLOYABLE_WINDOW - p
                ),
            };
            WorkerUse {
                address: Address::Worker { key: key.clone() },
                script: worker.name.clone(),
                versions: versions.map(Vec::len),
                oldest_deployed_position: oldest,
                window: DEPLOYABLE_WINDOW,
                remaining,
                percent,
                level: level(percent),
                message,
            }
        })
        .collect();
    let percent = percent_of(apply_requests, API_BUDGET);
    let api = ApiUse {
        plan_requests,
        apply_requests,
        limit: API_BUDGET,
        window_seconds: API_WINDOW_SECONDS,
        percent,
        level: level(percent),
        message: format!(
            "a plan costs {plan_requests} requests and an apply at most {apply_requests}, of {API_BUDGET} per {} minutes ({percent:.1} %)",
            API_WINDOW_SECONDS / 60
        ),
    };
    let passed = databases.iter().all(|d| d.level == Level::Ok)
        && workers.iter().all(|w| w.level == Level::Ok)
        && api.level == Level::Ok;
    Capacity {
        plan: thresholds.plan,
        warn_percent: thresholds.warn_percent,
        fail_percent: thresholds.fail_percent,
        databases,
        workers,
        api,
        passed,
    }
}

fn percent_of(used: u64, limit: u64) -> f64 {
    used as f64 * 100.0 / limit as f64
}

/// A size in decimal units, as Cloudflare states its limits (10 GB, 500 MB).
fn bytes(size: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1_000_000_000, "GB"), (1_000_000, "MB"), (1_000, "kB")];
    UNITS
        .iter()
        .find(|(unit, _)| size >= *unit)
        .map_or(format!("{size} B"), |(unit, name)| {
            let value = size as f64 / *unit as f64;
            if size % unit == 0 {
                format!("{} {name}", size / unit)
            } else {
                format!("{value:.1} {name}")
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloudflare::DeployedVersion;
    use crate::live::{LiveDatabase, Rollout};
    use crate::testing::{STAGING, converged, manifest};

    fn versions(n: usize) -> Vec<String> {
        (0..n).rev().map(|i| format!("v{i}")).collect()
    }

    fn deployed(ids: &[&str]) -> Rollout {
        Rollout {
            newest: None,
            deployed: ids
                .iter()
                .map(|id| DeployedVersion {
                    version_id: (*id).to_owned(),
                    percentage: 100.0 / ids.len() as f64,
                })
                .collect(),
            message: None,
            deployed_on: None,
        }
    }

    fn readings(desired: &Manifest, live: &Live, size: u64, count: usize) -> Readings {
        let mut readings = Readings::default();
        for db in desired.d1_databases.values() {
            let uuid = live
                .d1_databases
                .iter()
                .find(|d| d.name == db.name)
                .map_or_else(String::new, |d: &LiveDatabase| d.uuid.clone());
            readings.databases.insert(
                db.name.clone(),
                DatabaseDetails {
                    uuid,
                    name: db.name.clone(),
                    file_size: Some(size),
                    num_tables: Some(3),
                    version: Some("production".to_owned()),
                },
            );
        }
        for w in desired.workers.values() {
            readings.versions.insert(w.name.clone(), versions(count));
        }
        readings
    }

    #[test]
    fn sizes_and_window_positions_are_judged_by_the_thresholds() {
        let mut desired = manifest(STAGING);
        desired.capacity.plan = AccountPlan::Free;
        let mut live = converged();
        for w in live.workers.values_mut() {
            // v0 is the oldest of 90: number 90 from the newest.
            w.rollout = Some(deployed(&["v0"]));
        }
        let capacity = assess(
            &desired,
            &live,
            &readings(&desired, &live, 450_000_000, 90),
            10,
            24,
        );
        assert_eq!(capacity.databases[0].limit_bytes, 500_000_000);
        assert_eq!(capacity.databases[0].level, Level::Warn);
        assert_eq!(capacity.databases[0].time_travel_days, Some(7));
        assert!(
            capacity.databases[0].message.contains("450 MB of 500 MB"),
            "{capacity:#?}"
        );
        let worker = &capacity.workers[0];
        assert_eq!(worker.oldest_deployed_position, Some(90));
        assert_eq!(worker.remaining, Some(10));
        assert_eq!(worker.level, Level::Warn);
        assert_eq!(capacity.api.level, Level::Ok);
        assert!(!capacity.passed);
    }

    #[test]
    fn a_deployed_version_outside_the_window_fails_and_a_small_account_passes() {
        let desired = manifest(STAGING);
        let mut live = converged();
        for w in live.workers.values_mut() {
            w.rollout = Some(deployed(&["v1", "gone"]));
        }
        let capacity = assess(&desired, &live, &readings(&desired, &live, 8192, 5), 10, 24);
        assert_eq!(capacity.workers[0].level, Level::Fail);
        assert_eq!(capacity.workers[0].remaining, Some(0));
        for w in live.workers.values_mut() {
            w.rollout = Some(deployed(&["v4"]));
        }
        let capacity = assess(&desired, &live, &readings(&desired, &live, 8192, 5), 10, 24);
        assert!(capacity.passed, "{capacity:#?}");
        assert_eq!(capacity.databases[0].message.split(' ').nth(2), Some("8.2"));
    }

    #[test]
    fn sizes_print_in_the_units_cloudflare_states_limits_in() {
        assert_eq!(bytes(10_000_000_000), "10 GB");
        assert_eq!(bytes(500_000_000), "500 MB");
        assert_eq!(bytes(12_288), "12.3 kB");
        assert_eq!(bytes(999), "999 B");
    }
}
