//! The live state of one environment, as read from Cloudflare.
//!
//! `Live` is plain data: `gather` fills it from the API, `plan::diff` compares it with the
//! manifest. It holds only what the manifest could ask about, so a diff never needs a second read.
//!
//! `gather` reads it in two round trips. The first: the script list, the D1 list, the zone
//! list, and the current deployment and newest version of every declared Worker (a Worker that
//! does not exist answers 10007 and comes back absent), with the header probes alongside. The
//! second: each Worker's settings, after its versions were read, and the zones' rulesets. Extra
//! list pages and — only when the manifest marks absent a database that exists — the settings of
//! every other script on the account (so no Worker's database is deleted) add to the second.
//!
//! A Worker's settings are read after its versions so the newest version id vouches for them:
//! every change to a Worker's bindings, secrets or configuration makes a new version, so while
//! the newest version is the one read, the settings read are current. `apply --plan` relies on
//! it ([`changed_since`]): it checks a saved plan's read with two reads per Worker it writes,
//! not a whole gather.
//!
//! Every zone of the account is read, not only those today's routes name: a rule this
//! environment wrote stays in its zone after the route that asked for it leaves the manifest,
//! and lmsinfra keeps no state of its own that would remember the zone. Like `kubectl apply
//! --prune`, it finds what it owns by looking. That costs one zone list and two ruleset reads
//! per zone, in the same two trips as before.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::future::{join_all, try_join_all};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::cloudflare::{
    self, Binding, Client, DeployedVersion, Phase, Ruleset, Script, ScriptSettings,
};
use crate::manifest::model::Manifest;
use crate::migrations::{self, Ledger};
/// The probes `Live` holds; the type lives with the prober that makes them.
pub use crate::probe::Probe;
use crate::probe::Prober;

/// What one environment looks like on Cloudflare right now.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Live {
    /// The account that was read.
    pub account_id: String,
    /// Every Worker script name on the account.
    pub scripts: BTreeSet<String>,
    /// The settings of each Worker the manifest declares and that exists, by script name.
    pub workers: BTreeMap<String, LiveWorker>,
    /// The settings of the account's other Workers (those the manifest does not declare), by
    /// script name: read only when the manifest marks absent a database that exists, so a plan
    /// can refuse to delete a database any Worker still binds.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub other_workers: BTreeMap<String, LiveWorker>,
    /// Every D1 database on the account.
    pub d1_databases: Vec<LiveDatabase>,
    /// The migration ledgers of each declared database that has migrations and exists, by
    /// database name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ledgers: BTreeMap<String, Ledger>,
    /// Header probe results, by worker key (absent when probes were skipped).
    pub probes: BTreeMap<String, Probe>,
    /// Every zone of the account whose rulesets could be read, by zone name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub zones: BTreeMap<String, LiveZone>,
    /// Zones of the account that no route names and whose rulesets the token may not read
    /// (403): rules this environment once wrote there cannot be seen.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub unread_zones: BTreeSet<String>,
    /// The plan (`legacy_id`: free, pro, business, enterprise) of each zone in `zones` that
    /// names one, by zone name: it bounds the rate-limiting rules the zone can hold.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub zone_plans: BTreeMap<String, String>,
    /// A digest of what was read (etags, modification times, version ids), for saved plans.
    pub fingerprint: String,
}

/// A Worker's versioned settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LiveWorker {
    /// The script name.
    pub name: String,
    /// The compatibility date, when one is set.
    pub compatibility_date: Option<String>,
    /// The compatibility flags.
    pub compatibility_flags: Vec<String>,
    /// Every binding as Cloudflare reports it, secrets included (without values: the API does
    /// not return them); kinds lmsinfra does not model keep every field.
    pub bindings: Vec<Binding>,
    /// Which versions the Worker serves, and its newest version (`None` when not read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
    /// The script-level observability (Workers Logs) settings, read only when the manifest
    /// declares them (`None`: not read, or not set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observability: Option<serde_json::Value>,
}

/// Which versions a Worker serves against the newest version it has. A settings write or a
/// secret write builds a new version from one of them, and which one the real API picks when
/// they differ is unknown, so apply writes only to a Worker whose rollout is settled.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    /// The newest version's id (`None`: the Worker has no version).
    pub newest: Option<String>,
    /// The versions the current deployment serves, with their percentages.
    pub deployed: Vec<DeployedVersion>,
    /// The current deployment's `workers/message` (who made it and why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the current deployment was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployed_on: Option<String>,
}

impl Rollout {
    /// Whether the deployment serves one version at 100% and that version is the newest.
    pub fn is_settled(&self) -> bool {
        match (self.deployed.as_slice(), &self.newest) {
            ([only], Some(newest)) => only.version_id == *newest && only.percentage >= 100.0,
            _ => false,
        }
    }
}

impl LiveWorker {
    /// The binding with this name.
    pub fn binding(&self, name: &str) -> Option<&Binding> {
        self.bindings.iter().find(|b| b.name() == name)
    }

    /// The names of the secrets this Worker has.
    pub fn secret_names(&self) -> impl Iterator<Item = &str> {
        self.bindings
            .iter()
            .filter(|b| b.is_secret())
            .map(Binding::name)
    }
}

/// A zone of the account, with its entrypoint rulesets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveZone {
    /// The zone's id.
    pub id: String,
    /// The entrypoint ruleset of each phase lmsinfra manages that has one, by phase name.
    pub rulesets: BTreeMap<String, Ruleset>,
}

/// A D1 database on the account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveDatabase {
    /// The database's id.
    pub uuid: String,
    /// The database's name.
    pub name: String,
}

impl From<cloudflare::Database> for LiveDatabase {
    fn from(db: cloudflare::Database) -> Self {
        Self {
            uuid: db.uuid,
            name: db.name,
        }
    }
}

/// What `gather` reads besides the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatherOptions {
    /// Whether to probe the URLs of Workers that have a `headers` block.
    pub probes: bool,
    /// How long one probe may take.
    pub probe_timeout: Duration,
    /// The in-process sandbox whose Worker traffic answers for the Workers' URLs (`--sandbox`).
    pub worker_traffic: Option<std::net::SocketAddr>,
}

impl Default for GatherOptions {
    fn default() -> Self {
        Self {
            probes: true,
            probe_timeout: Duration::from_secs(5),
            worker_traffic: None,
        }
    }
}

/// The ruleset phases read for each zone.
const ZONE_PHASES: [Phase; 2] = [Phase::HttpResponseHeadersTransform, Phase::HttpRatelimit];

/// Read the live state of the environment `desired` describes, on the client's account.
pub async fn gather(
    desired: &Manifest,
    client: &Client,
    options: GatherOptions,
) -> Result<Live, cloudflare::Error> {
    let script_names: BTreeSet<&str> = desired.workers.values().map(|w| w.name.as_str()).collect();
    let zone_names: BTreeSet<&str> = desired
        .workers
        .values()
        .flat_map(|w| w.routes.iter().map(|r| r.zone.as_str()))
        .collect();

    // Every read goes out at once and all are awaited: when several fail (a refused token fails
    // them all), the error reported is the first in this order, not whichever failed first.
    let api = async {
        let (scripts, databases, workers, zones) = tokio::join!(
            client.list_scripts(),
            read_databases(desired, client),
            try_join_all(script_names.iter().map(|name| {
                let observed = desired
                    .workers
                    .values()
                    .any(|w| w.name == *name && w.observability.is_some());
                read_worker(client, name, observed)
            })),
            // A zone's rulesets as soon as the zone list is in, beside the Workers' settings.
            async {
                let zones = client.list_zones(None).await?;
                try_join_all(zones.into_iter().map(|zone| {
                    let routed = zone_names.contains(zone.name.as_str());
                    read_zone(client, zone, routed)
                }))
                .await
            },
        );
        Ok::<_, cloudflare::Error>((scripts?, databases?, workers?, zones?))
    };
    let probes = async {
        if !options.probes {
            return BTreeMap::new();
        }
        let mut prober = Prober::new(options.probe_timeout);
        if let Some(addr) = options.worker_traffic {
            prober = prober.onto_sandbox(addr);
        }
        let prober = &prober;
        let probes = desired.workers.iter().filter_map(|(key, worker)| {
            let url = &worker.headers.as_ref()?.url;
            Some(async move { (key.clone(), prober.probe_worker(url, &worker.name).await) })
        });
        join_all(probes).await.into_iter().collect()
    };
    let (api, probes) = tokio::join!(api, probes);
    let (scripts, (databases, ledgers), settings, zones) = api?;

    let d1_databases = live_databases(databases);
    let workers: BTreeMap<String, LiveWorker> = settings
        .into_iter()
        .filter_map(|(name, settings, rollout, observability)| {
            let mut worker = live_worker(name, settings?);
            worker.rollout = rollout;
            worker.observability = observability;
            Some((name.to_owned(), worker))
        })
        .collect();
    let mut zone_plans = BTreeMap::new();
    let mut unread_zones = BTreeSet::new();
    let mut live_zones = BTreeMap::new();
    for (name, zone, plan) in zones {
        if let Some(plan) = plan {
            zone_plans.insert(name.clone(), plan);
        }
        match zone {
            Some(zone) => {
                live_zones.insert(name, zone);
            }
            None => {
                unread_zones.insert(name);
            }
        }
    }
    let zones = live_zones;
    let other_workers = read_other_workers(desired, client, &scripts, &d1_databases).await?;
    let fingerprint = fingerprint(
        client.account_id(),
        &scripts,
        &script_names,
        &workers,
        &d1_databases,
        &zones,
    );
    Ok(Live {
        account_id: client.account_id().to_owned(),
        scripts: scripts.into_iter().map(|s| s.id).collect(),
        workers,
        other_workers,
        d1_databases,
        ledgers,
        probes,
        zones,
        unread_zones,
        zone_plans,
        fingerprint,
    })
}

/// The D1 list, then the migration ledgers of the declared databases with migrations that
/// exist (one `/query` each), while the other reads of the round trip are under way.
async fn read_databases(
    desired: &Manifest,
    client: &Client,
) -> Result<(Vec<cloudflare::Database>, BTreeMap<String, Ledger>), cloudflare::Error> {
    let databases = client.list_d1().await?;
    let reads = desired.d1_databases.values().filter_map(|db| {
        let table = &db.migrations.as_ref()?.table;
        let found = databases.iter().find(|d| d.name == db.name)?;
        Some(async move {
            let ledger = migrations::ledger::read(client, &found.uuid, table).await?;
            Ok::<_, cloudflare::Error>((db.name.clone(), ledger))
        })
    });
    let ledgers = try_join_all(reads).await?.into_iter().collect();
    Ok((databases, ledgers))
}

/// The D1 list as `Live` holds it: sorted by name, then id.
fn live_databases(databases: Vec<cloudflare::Database>) -> Vec<LiveDatabase> {
    let mut live: Vec<LiveDatabase> = databases.into_iter().map(Into::into).collect();
    live.sort_by(|a, b| (&a.name, &a.uuid).cmp(&(&b.name, &b.uuid)));
    live
}

/// What moved on the account since `read` was gathered, among what a plan made from it writes:
/// the newest version and the serving deployment of each Worker in `scripts`, the D1 list and
/// the migration ledgers (one round trip, and a second for the ledgers, read after the list).
/// `None` when nothing did: the read still stands for those writes, settings included, since
/// any change to a Worker's settings makes a version.
pub async fn changed_since(
    read: &Live,
    desired: &Manifest,
    client: &Client,
    scripts: &BTreeSet<&str>,
) -> Result<Option<String>, cloudflare::Error> {
    if read.account_id != client.account_id() {
        return Ok(Some(format!(
            "it read account {}, not {}",
            read.account_id,
            client.account_id()
        )));
    }
    let workers = try_join_all(scripts.iter().map(|&name| async move {
        let (deployment, newest) =
            tokio::try_join!(client.current_deployment(name), client.newest_version(name))?;
        Ok::<_, cloudflare::Error>((name, deployment, newest))
    }));
    let (workers, databases) = tokio::join!(workers, read_databases(desired, client));
    for (name, deployment, newest) in workers? {
        let was = read.workers.get(name).and_then(|w| w.rollout.as_ref());
        let was_newest = was.and_then(|r| r.newest.as_deref());
        let now_newest = newest.as_ref().and_then(|n| n.as_deref());
        if was_newest != now_newest {
            let version = |v: Option<&str>| v.unwrap_or("none").to_owned();
            return Ok(Some(format!(
                "the newest version of {name} is {}, not {} as the plan read it",
                version(now_newest),
                version(was_newest)
            )));
        }
        let was_deployed = was.map(|r| r.deployed.as_slice()).unwrap_or_default();
        let now_deployed = deployment.flatten().map(|d| d.versions).unwrap_or_default();
        if was_deployed != now_deployed.as_slice() {
            return Ok(Some(format!(
                "{name} serves another deployment than the plan read"
            )));
        }
    }
    let (databases, ledgers) = databases?;
    let d1_databases = live_databases(databases);
    if d1_databases != read.d1_databases {
        return Ok(Some(
            "the account's D1 databases differ from the ones the plan read".to_owned(),
        ));
    }
    if let Some((name, _)) = ledgers
        .iter()
        .find(|(name, ledger)| read.ledgers.get(*name) != Some(ledger))
        .or_else(|| {
            read.ledgers
                .iter()
                .find(|(name, _)| !ledgers.contains_key(*name))
        })
    {
        return Ok(Some(format!(
            "the migrations recorded in {name} differ from the ones the plan read"
        )));
    }
    Ok(None)
}

/// The settings of every script the manifest does not declare, when the manifest marks absent
/// a database that exists (a deletion is coming); nothing otherwise. One read per script is
/// costly on a large account, so it is paid only when a database may be deleted.
async fn read_other_workers(
    desired: &Manifest,
    client: &Client,
    scripts: &[Script],
    databases: &[LiveDatabase],
) -> Result<BTreeMap<String, LiveWorker>, cloudflare::Error> {
    let deleting = desired
        .d1_databases
        .values()
        .any(|db| db.absent && databases.iter().any(|d| d.name == db.name));
    if !deleting {
        return Ok(BTreeMap::new());
    }
    let others = scripts
        .iter()
        .map(|s| s.id.as_str())
        .filter(|name| !desired.workers.values().any(|w| w.name == *name));
    let read = try_join_all(others.map(|name| async move {
        Ok::<_, cloudflare::Error>((name, client.get_settings(name).await?))
    }))
    .await?;
    Ok(read
        .into_iter()
        .filter_map(|(name, settings)| Some((name.to_owned(), live_worker(name, settings?))))
        .collect())
}

fn live_worker(name: &str, settings: ScriptSettings) -> LiveWorker {
    LiveWorker {
        name: name.to_owned(),
        compatibility_date: settings.compatibility_date,
        compatibility_flags: settings.compatibility_flags,
        bindings: settings.bindings,
        rollout: None,
        observability: None,
    }
}

/// A declared Worker's settings, rollout and, when `observed`, its observability settings: the
/// rollout and observability at once, then the settings (see the module's notes). The rollout
/// is `None` when the Worker vanished between the reads.
async fn read_worker<'a>(
    client: &Client,
    name: &'a str,
    observed: bool,
) -> Result<ReadWorker<'a>, cloudflare::Error> {
    let script_settings = async {
        if observed {
            client.get_script_settings(name).await
        } else {
            Ok(None)
        }
    };
    let (deployment, newest, script_settings) = tokio::try_join!(
        client.current_deployment(name),
        client.newest_version(name),
        script_settings,
    )?;
    // After the versions: a change made between the two reads shows as a newer version.
    let settings = client.get_settings(name).await?;
    let observability = script_settings.and_then(|s| s.observability);
    let rollout = match (deployment, newest) {
        (Some(deployment), Some(newest)) => Some(match deployment {
            Some(d) => Rollout {
                newest,
                deployed: d.versions,
                message: d.annotations.message,
                deployed_on: d.created_on,
            },
            None => Rollout {
                newest,
                ..Rollout::default()
            },
        }),
        _ => None,
    };
    Ok((name, settings, rollout, observability))
}

/// A Worker's name, settings, rollout and observability, as [`read_worker`] reads them.
type ReadWorker<'a> = (
    &'a str,
    Option<ScriptSettings>,
    Option<Rollout>,
    Option<serde_json::Value>,
);

/// A zone's name, its rulesets (`None` when the token may not read them and no route names
/// the zone) and its plan's `legacy_id`.
async fn read_zone(
    client: &Client,
    zone: cloudflare::Zone,
    routed: bool,
) -> Result<(String, Option<LiveZone>, Option<String>), cloudflare::Error> {
    let zone_id = zone.id.as_str();
    let rulesets = try_join_all(ZONE_PHASES.map(|phase| async move {
        Ok::<_, cloudflare::Error>((phase, client.get_ruleset(zone_id, phase).await?))
    }))
    .await;
    let plan = zone.plan.and_then(|plan| plan.legacy_id);
    let rulesets = match rulesets {
        Ok(rulesets) => rulesets,
        Err(err) if !routed && err.status() == Some(403) => return Ok((zone.name, None, plan)),
        Err(err) => return Err(err),
    };
    let rulesets = rulesets
        .into_iter()
        .filter_map(|(phase, ruleset)| Some((phase.as_str().to_owned(), ruleset?)))
        .collect();
    Ok((
        zone.name,
        Some(LiveZone {
            id: zone.id,
            rulesets,
        }),
        plan,
    ))
}

/// A digest of everything a plan depends on: which scripts exist, the declared scripts'
/// etags and modification times, their settings, the D1 list and the zones' rulesets. Probes
/// are left out (they are not state a plan changes), and so are the etags of scripts the
/// manifest does not declare, so unrelated deploys do not make a saved plan stale.
fn fingerprint(
    account_id: &str,
    scripts: &[Script],
    declared: &BTreeSet<&str>,
    workers: &BTreeMap<String, LiveWorker>,
    d1_databases: &[LiveDatabase],
    zones: &BTreeMap<String, LiveZone>,
) -> String {
    let mut names: Vec<&str> = scripts.iter().map(|s| s.id.as_str()).collect();
    names.sort_unstable();
    let mut versions: Vec<(&str, Option<&str>, Option<&str>)> = scripts
        .iter()
        .filter(|s| declared.contains(s.id.as_str()))
        .map(|s| (s.id.as_str(), s.etag.as_deref(), s.modified_on.as_deref()))
        .collect();
    versions.sort_unstable();
    let read = serde_json::json!({
        "account_id": account_id,
        "scripts": names,
        "script_versions": versions,
        "workers": workers,
        "d1_databases": d1_databases,
        "zones": zones,
    });
    let digest = Sha256::digest(read.to_string().as_bytes());
    format!("sha256:{}", hex::encode(digest))
}
