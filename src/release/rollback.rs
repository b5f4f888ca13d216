//! Go back to an earlier version of a Worker: choose the target, check it with reads, then
//! deploy it.
//!
//! A rollback is a deployment of a version that exists, so it reverts the version's code,
//! bindings and secrets, and nothing else (`cloudflare-api/DAY2.md` §3). Every check is a read
//! made before the one write: the target must still be deployable (the newest 100 versions),
//! every D1 database it binds must still exist, and a secret set since the target (or between
//! it and what serves) must not be reverted silently — Cloudflare would refuse that with 10220
//! too, but only after the write was sent. Secret values are never read back, so the secrets a
//! version set are known from lmsinfra's own annotations ([`super::secrets_set`]), from the
//! secret names the two versions bind, and, for a secret write made by other tools, only as
//! "a secret" of that version.

use std::collections::BTreeSet;

use super::history::History;
use crate::cloudflare::{self, Annotations, Client, DeployedVersion, Deployment, VersionDetail};

/// The version to go back to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The `steps`-th earlier deployment that served one version at 100 % (wrangler's default
    /// is the first).
    Previous {
        /// How many such deployments back.
        steps: usize,
    },
    /// A version by id.
    Version(String),
    /// The newest version whose `workers/tag` is this git sha (or starts with it).
    Tag(String),
}

/// Why a rollback did not happen. Refusals of a target (exit 3) are separate from a target
/// that does not exist (exit 1).
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum Error {
    /// `--to-version` names no version of the Worker.
    #[error("{version} is not a version of {script}")]
    #[diagnostic(help("`lmsinfra releases ENV` lists the Worker's versions"))]
    VersionUnknown {
        /// The script.
        script: String,
        /// The id given.
        version: String,
    },
    /// `--to-tag` matches no deployable version.
    #[error("no deployable version of {script} is tagged {tag}")]
    #[diagnostic(help("`lmsinfra releases ENV` lists the Worker's versions with their tags"))]
    TagUnknown {
        /// The script.
        script: String,
        /// The tag given.
        tag: String,
    },
    /// The Worker does not exist on the account.
    #[error("Worker {script} does not exist on the account")]
    WorkerMissing {
        /// The script.
        script: String,
    },
    /// There is no earlier deployment serving one version at 100 %.
    #[error("{script} has no earlier deployment that served one version at 100% ({steps} back)")]
    #[diagnostic(help(
        "name the version with --to-version ID; `lmsinfra releases ENV` lists them"
    ))]
    NoEarlierDeployment {
        /// The script.
        script: String,
        /// How many deployments back were asked for.
        steps: usize,
    },
    /// The target is outside Cloudflare's deployable window.
    #[error(
        "version {version} of {script} can no longer be deployed: Cloudflare deploys only the newest 100 versions"
    )]
    NotDeployable {
        /// The script.
        script: String,
        /// The target.
        version: String,
    },
    /// The target binds a D1 database that no longer exists.
    #[error(
        "version {version} of {script} binds {binding} to D1 database {database_id}, which no longer exists"
    )]
    #[diagnostic(help(
        "a rollback does not bring back deleted databases; choose a later version, or restore the database first"
    ))]
    DatabaseGone {
        /// The script.
        script: String,
        /// The target.
        version: String,
        /// The binding's name.
        binding: String,
        /// The database's id.
        database_id: String,
    },
    /// Secrets changed since the target; rolling back would bring their old values back.
    #[error(
        "rolling {script} back to {version} would revert secrets changed since: {}", names.join(", ")
    )]
    #[diagnostic(help(
        "a rollback re-enables the old secret values; if that is what you want (the old values are still valid), run again with --allow-secret-revert"
    ))]
    SecretsChanged {
        /// The script.
        script: String,
        /// The target.
        version: String,
        /// The secrets, by name (or the version that set an unnamed one).
        names: Vec<String>,
    },
    /// An API call failed.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Api(#[from] cloudflare::Error),
}

impl Error {
    /// 3 for a refusal of a target that exists, 1 for the rest.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Self::NoEarlierDeployment { .. }
                | Self::NotDeployable { .. }
                | Self::DatabaseGone { .. }
                | Self::SecretsChanged { .. }
        )
    }
}

/// A rollback checked and ready to deploy.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The Worker's key.
    pub key: String,
    /// The script.
    pub script: String,
    /// What serves now.
    pub serving: Vec<DeployedVersion>,
    /// The version to deploy.
    pub target: VersionDetail,
    /// What the checks found, for `--dry-run` and the log.
    pub checks: Vec<String>,
}

/// The secrets whose finished rotation a rollback to `target` would undo while their old value
/// is revoked (see [`crate::rotation::revoked_since`]).
async fn revoked_rotations(
    client: &Client,
    script: &str,
    target: &str,
) -> Result<Vec<String>, Error> {
    let versions = client.annotated_versions(script).await?;
    let keyed = versions
        .iter()
        .filter_map(crate::rotation::Record::read)
        .any(|r| r.old_stream_key.is_some());
    let keys = if keyed {
        client.stream_keys().await?
    } else {
        Vec::new()
    };
    Ok(crate::rotation::revoked_since(&versions, target, &keys))
}

/// Choose the target of a rollback of `history`'s Worker and check it with reads; with
/// `allow_secret_revert`, a secret change is reported among the checks instead of refused.
pub async fn prepare(
    client: &Client,
    history: &History,
    target: &Target,
    allow_secret_revert: bool,
) -> Result<Prepared, Error> {
    let script = history.script.clone();
    let serving = history
        .serving()
        .map(|d| d.versions.clone())
        .unwrap_or_default();
    let target_id = match target {
        Target::Version(id) => id.clone(),
        Target::Tag(tag) => {
            let tagged = |matches: &dyn Fn(&str) -> bool| {
                history
                    .deployable
                    .iter()
                    .find(|v| v.annotations.tag.as_deref().is_some_and(matches))
            };
            // The version made from exactly that commit, before one made from a tree that
            // differed from it (`SHA-dirty`) or a longer sha it abbreviates.
            tagged(&|t| t == tag.as_str())
                .or_else(|| tagged(&|t| t.starts_with(tag.as_str())))
                .map(|v| v.id.clone())
                .ok_or_else(|| Error::TagUnknown {
                    script: script.clone(),
                    tag: tag.clone(),
                })?
        }
        Target::Previous { steps } => {
            previous_full(&history.deployments, *steps).ok_or_else(|| {
                Error::NoEarlierDeployment {
                    script: script.clone(),
                    steps: *steps,
                }
            })?
        }
    };
    let Some(detail) = client.get_version(&script, &target_id).await? else {
        return Err(Error::VersionUnknown {
            script,
            version: target_id,
        });
    };
    let mut checks = Vec::new();
    let Some(target_at) = history.position(&target_id) else {
        return Err(Error::NotDeployable {
            script,
            version: target_id,
        });
    };
    checks.push(format!(
        "version {target_id} is deployable (#{} of the newest {})",
        target_at + 1,
        history.deployable.len()
    ));
    let databases = client.list_d1().await?;
    for binding in &detail.resources.bindings {
        if let cloudflare::Binding::D1 { name, database_id } = binding {
            if !databases.iter().any(|db| db.uuid == *database_id) {
                return Err(Error::DatabaseGone {
                    script,
                    version: target_id,
                    binding: name.clone(),
                    database_id: database_id.clone(),
                });
            }
            checks.push(format!("D1 binding {name}: database {database_id} exists"));
        }
    }
    let mut changed = changed_secrets(client, history, &detail, &serving).await?;
    for name in revoked_rotations(client, &script, &target_id).await? {
        if !changed.contains(&name) {
            changed.push(name);
        }
    }
    if changed.is_empty() {
        checks.push("no secret changed since the target".to_owned());
    } else if allow_secret_revert {
        checks.push(format!(
            "secrets changed since the target, reverted with --allow-secret-revert: {}",
            changed.join(", ")
        ));
    } else {
        return Err(Error::SecretsChanged {
            script,
            version: target_id,
            names: changed,
        });
    }
    Ok(Prepared {
        key: history.key.clone(),
        script,
        serving,
        target: detail,
        checks,
    })
}

/// Deploy `prepared.target` at 100 % with `annotations`. Cloudflare's own secret check
/// (10220) is passed only when the rollback reverts secrets it was allowed to; when it
/// refuses a change the reads did not show, the names it gives are reported.
pub async fn deploy(
    client: &Client,
    prepared: &Prepared,
    annotations: &Annotations,
    allow_secret_revert: bool,
) -> Result<Deployment, Error> {
    let versions = [DeployedVersion {
        version_id: prepared.target.version.id.clone(),
        percentage: 100.0,
    }];
    client
        .create_deployment(
            &prepared.script,
            &versions,
            annotations,
            allow_secret_revert,
        )
        .await
        .map_err(|err| match refused_secrets(&err) {
            Some(names) => Error::SecretsChanged {
                script: prepared.script.clone(),
                version: prepared.target.version.id.clone(),
                names,
            },
            None => Error::Api(err),
        })
}

/// The secrets named by a 10220 refusal ("The following secrets have changed: A, B").
fn refused_secrets(err: &cloudflare::Error) -> Option<Vec<String>> {
    let cloudflare::Error::Api { errors, .. } = err else {
        return None;
    };
    let message = &errors.iter().find(|e| e.code == 10220)?.message;
    let names = message
        .split_once("The following secrets have changed:")
        .map_or("", |(_, names)| names);
    Some(
        names
            .split(',')
            .map(|n| n.trim().trim_end_matches('.').to_owned())
            .filter(|n| !n.is_empty())
            .collect(),
    )
}

/// The version of the `steps`-th deployment before the serving one that served one version
/// at 100 %.
fn previous_full(deployments: &[Deployment], steps: usize) -> Option<String> {
    deployments
        .iter()
        .skip(1)
        .filter_map(|d| match d.versions.as_slice() {
            [only] if only.percentage >= 100.0 => Some(only.version_id.clone()),
            _ => None,
        })
        .nth(steps.max(1) - 1)
}

/// The secrets whose values differ between the target and what serves: those bound by one
/// and not the other, and those the versions between them set.
async fn changed_secrets(
    client: &Client,
    history: &History,
    target: &VersionDetail,
    serving: &[DeployedVersion],
) -> Result<Vec<String>, Error> {
    let secret_names = |bindings: &[cloudflare::Binding]| -> BTreeSet<String> {
        bindings
            .iter()
            .filter(|b| b.is_secret())
            .map(|b| b.name().to_owned())
            .collect()
    };
    let target_secrets = secret_names(&target.resources.bindings);
    let mut changed = BTreeSet::new();
    let target_at = history.position(&target.version.id);
    for served in serving {
        if served.version_id == target.version.id {
            continue;
        }
        if let Some(detail) = client
            .get_version(&history.script, &served.version_id)
            .await?
        {
            let now = secret_names(&detail.resources.bindings);
            changed.extend(now.symmetric_difference(&target_secrets).cloned());
        }
        // The versions from the newer of the two down to, not including, the older one made
        // the difference between them.
        let (Some(a), Some(b)) = (target_at, history.position(&served.version_id)) else {
            continue;
        };
        for version in &history.deployable[a.min(b)..a.max(b)] {
            match super::secrets_set(version.annotations.message.as_deref()) {
                Some(names) => changed.extend(names),
                None if version.annotations.triggered_by.as_deref() == Some("secret") => {
                    let number = version
                        .number
                        .map_or_else(|| version.id.clone(), |n| format!("#{n}"));
                    changed.insert(format!("a secret set by version {number}"));
                }
                None => {}
            }
        }
    }
    Ok(changed.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(versions: &[(&str, f64)]) -> Deployment {
        Deployment {
            id: "d".to_owned(),
            versions: versions
                .iter()
                .map(|(id, percentage)| DeployedVersion {
                    version_id: (*id).to_owned(),
                    percentage: *percentage,
                })
                .collect(),
            created_on: None,
            source: None,
            author_email: None,
            annotations: Annotations::default(),
        }
    }

    #[test]
    fn the_default_target_is_the_previous_deployment_at_100_percent() {
        let deployments = [
            deployment(&[("v4", 100.0)]),
            deployment(&[("v3", 50.0), ("v2", 50.0)]),
            deployment(&[("v2", 100.0)]),
            deployment(&[("v1", 100.0)]),
        ];
        assert_eq!(previous_full(&deployments, 1).as_deref(), Some("v2"));
        assert_eq!(previous_full(&deployments, 2).as_deref(), Some("v1"));
        assert_eq!(previous_full(&deployments, 3), None);
        assert_eq!(previous_full(&deployments[..1], 1), None);
    }
}
