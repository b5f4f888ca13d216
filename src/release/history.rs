//! A Worker's release history: its recent deployments and the versions it can still deploy.
//!
//! `releases` prints it, and `rollback` chooses its target from it. Both come from two reads
//! (`GET …/deployments`, `GET …/versions?deployable=true`); a version in a deployment but not
//! in the deployable list has fallen out of Cloudflare's window of the newest 100 and can no
//! longer be deployed.

use serde::Serialize;

use crate::cloudflare::{self, Client, Deployment, Version};

/// One Worker's deployments, newest (the serving one) first, and its deployable versions,
/// newest first.
#[derive(Debug, Clone)]
pub struct History {
    /// The Worker's key in the manifest.
    pub key: String,
    /// The script.
    pub script: String,
    /// Its deployments, newest first.
    pub deployments: Vec<Deployment>,
    /// The versions that can still be deployed, newest first.
    pub deployable: Vec<Version>,
}

impl History {
    /// Read `script`'s history; `None` when the Worker does not exist.
    pub async fn read(
        client: &Client,
        key: &str,
        script: &str,
    ) -> Result<Option<Self>, cloudflare::Error> {
        let (deployments, deployable) = tokio::try_join!(
            client.list_deployments(script),
            client.deployable_versions(script)
        )?;
        Ok(deployments
            .zip(deployable)
            .map(|(deployments, deployable)| Self {
                key: key.to_owned(),
                script: script.to_owned(),
                deployments,
                deployable,
            }))
    }

    /// The deployment serving now.
    pub fn serving(&self) -> Option<&Deployment> {
        self.deployments.first()
    }

    /// Where version `id` is in the deployable list (0: the newest), if it is there.
    pub fn position(&self, id: &str) -> Option<usize> {
        self.deployable.iter().position(|v| v.id == id)
    }

    /// What `releases` shows: the newest `limit` deployments and versions.
    pub fn report(&self, limit: usize) -> WorkerReleases {
        let version_label = |id: &str| {
            self.deployable
                .iter()
                .find(|v| v.id == id)
                .and_then(|v| v.number)
        };
        WorkerReleases {
            worker: self.key.clone(),
            script: self.script.clone(),
            deployments: self
                .deployments
                .iter()
                .take(limit)
                .map(|d| DeploymentRow {
                    id: d.id.clone(),
                    created_on: d.created_on.clone(),
                    author: d.author_email.clone(),
                    source: d.source.clone(),
                    triggered_by: d.annotations.triggered_by.clone(),
                    message: d.annotations.message.clone(),
                    versions: d
                        .versions
                        .iter()
                        .map(|v| ServedVersion {
                            version_id: v.version_id.clone(),
                            number: version_label(&v.version_id),
                            percentage: v.percentage,
                            deployable: self.position(&v.version_id).is_some(),
                        })
                        .collect(),
                })
                .collect(),
            versions: self
                .deployable
                .iter()
                .take(limit)
                .map(|v| VersionRow {
                    id: v.id.clone(),
                    number: v.number,
                    created_on: v.metadata.created_on.clone(),
                    author: v.metadata.author_email.clone(),
                    source: v.metadata.source.clone(),
                    triggered_by: v.annotations.triggered_by.clone(),
                    message: v.annotations.message.clone(),
                    tag: v.annotations.tag.clone(),
                    deployable: true,
                })
                .collect(),
            deployable_versions: self.deployable.len(),
        }
    }
}

/// One Worker's releases as `releases` prints them.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerReleases {
    /// The Worker's key.
    pub worker: String,
    /// The script.
    pub script: String,
    /// The newest deployments, the serving one first.
    pub deployments: Vec<DeploymentRow>,
    /// The newest versions.
    pub versions: Vec<VersionRow>,
    /// How many versions can be deployed (Cloudflare keeps the newest 100 deployable).
    pub deployable_versions: usize,
}

/// A deployment in `releases`.
#[derive(Debug, Clone, Serialize)]
pub struct DeploymentRow {
    /// Its id.
    pub id: String,
    /// When it was made.
    pub created_on: Option<String>,
    /// Who made it.
    pub author: Option<String>,
    /// With what.
    pub source: Option<String>,
    /// What triggered it, as Cloudflare records it.
    pub triggered_by: Option<String>,
    /// Its `workers/message`.
    pub message: Option<String>,
    /// The versions it serves.
    pub versions: Vec<ServedVersion>,
}

/// A version a deployment serves, in `releases`.
#[derive(Debug, Clone, Serialize)]
pub struct ServedVersion {
    /// The version's id.
    pub version_id: String,
    /// Its number, when it is still deployable (older ones are not listed).
    pub number: Option<u64>,
    /// Its share of traffic.
    pub percentage: f64,
    /// Whether it is inside the deployable window.
    pub deployable: bool,
}

/// A version in `releases`.
#[derive(Debug, Clone, Serialize)]
pub struct VersionRow {
    /// Its id.
    pub id: String,
    /// Its number.
    pub number: Option<u64>,
    /// When it was made.
    pub created_on: Option<String>,
    /// Who made it.
    pub author: Option<String>,
    /// With what.
    pub source: Option<String>,
    /// What triggered it.
    pub triggered_by: Option<String>,
    /// Its `workers/message`.
    pub message: Option<String>,
    /// Its `workers/tag`.
    pub tag: Option<String>,
    /// Whether it is inside the deployable window.
    pub deployable: bool,
}

/// `releases` as text.
pub fn text(environment: &str, workers: &[WorkerReleases]) -> String {
    let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_owned());
    let mut out = format!("Releases of {environment}\n");
    for worker in workers {
        out.push_str(&format!(
            "\nworker.{} ({}): {} deployable version{}\n  deployments, the serving one first:\n",
            worker.worker,
            worker.script,
            worker.deployable_versions,
            if worker.deployable_versions == 1 {
                ""
            } else {
                "s"
            }
        ));
        for d in &worker.deployments {
            out.push_str(&format!(
                "    {}  {}  {}  {}  {}\n",
                or_dash(&d.created_on),
                or_dash(&d.author),
                or_dash(&d.source),
                or_dash(&d.triggered_by),
                d.message.as_deref().unwrap_or("(no message)")
            ));
            for v in &d.versions {
                let number = v.number.map_or_else(String::new, |n| format!("#{n} "));
                let window = if v.deployable {
                    "deployable"
                } else {
                    "outside the deployable window"
                };
                out.push_str(&format!(
                    "      {number}{} at {}%, {window}\n",
                    v.version_id, v.percentage
                ));
            }
        }
        out.push_str("  versions, newest first:\n");
        for v in &worker.versions {
            let number = v.number.map_or_else(String::new, |n| format!("#{n} "));
            out.push_str(&format!(
                "    {number}{}  {}  {}  {}  {}  tag {}  {}\n",
                v.id,
                or_dash(&v.created_on),
                or_dash(&v.author),
                or_dash(&v.source),
                or_dash(&v.triggered_by),
                or_dash(&v.tag),
                v.message.as_deref().unwrap_or("(no message)")
            ));
        }
    }
    out
}
