//! Apply: carry out a plan with real API calls, in dependency order.
//!
//! [`steps`] decides the calls (pure), [`execute`] makes them and reports each (one
//! [`execute::write_worker`] per changed Worker), [`read_secrets`] reads `--secret` values, and [`run`]
//! executes the steps, says where a failure stopped them, then gathers again and requires an
//! empty plan.

pub(crate) mod execute;
mod migrate;
mod progress;
mod secrets;
mod steps;

pub use crate::plan::SettingsBinding;
pub use execute::{Progress, StepError, StepOutcome, execute};
pub use progress::ProgressLines;
pub use secrets::{SecretArg, SecretArgParser, SecretError, read_secrets, withhold_secret_values};
pub use steps::{Step, steps};

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::cloudflare::{self, Annotations, Client};
use crate::live::{self, GatherOptions, Live};
use crate::manifest::Manifest;
use crate::plan;
use crate::secret::Secret;

/// Why an apply did not leave the account equal to the manifest.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum Error {
    /// A step failed; the ones before it were done, the ones after it not started.
    #[error(transparent)]
    #[diagnostic(transparent)]
    ApplyFailed(Box<ApplyFailure>),
    /// A Ctrl-C or SIGTERM stopped apply between two steps; the one in flight finished.
    #[error("interrupted after {} of {total} steps; run apply again to finish", done.len())]
    #[diagnostic(help(
        "done: {}. Every step is planned again from the live account, so the next apply does only what is left",
        if done.is_empty() { "none".to_owned() } else { done.join(", ") }
    ))]
    Interrupted {
        /// Addresses of the steps done.
        done: Vec<String>,
        /// How many steps there were.
        total: usize,
    },
    /// After apply, a fresh plan still had changes.
    #[error("apply did not converge: a fresh plan still changes {}", addresses.join(", "))]
    #[diagnostic(help(
        "something else changed the account while apply ran, or Cloudflare ignored part of a change; run `lmsinfra plan ENV` to see it"
    ))]
    NotConverged {
        /// What a fresh plan still changes or blocks on.
        addresses: Vec<String>,
    },
    /// The account could not be read again after the steps.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Gather(#[from] cloudflare::Error),
}

/// Where an apply stopped: the steps done, the one that failed and why, the ones not started.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("apply stopped at {failed}: {} step{} done, {} not started", done.len(), if done.len() == 1 { "" } else { "s" }, not_started.len())]
#[diagnostic(help(
    "done: {}; not started: {}. Fix the cause and run apply again: it picks up where this stopped",
    if done.is_empty() { "none".to_owned() } else { done.join(", ") },
    if not_started.is_empty() { "none".to_owned() } else { not_started.join(", ") }
))]
pub struct ApplyFailure {
    /// Addresses of the steps done.
    pub done: Vec<String>,
    /// The address of the step that failed.
    pub failed: String,
    /// Addresses of the steps not started.
    pub not_started: Vec<String>,
    /// Why it failed.
    #[source]
    #[diagnostic_source]
    pub source: StepError,
}

/// What an apply did.
#[derive(Debug)]
pub struct Applied {
    /// How many steps were done.
    pub steps: usize,
}

/// A short digest of `plan` (8 hex digits of its SHA-256) as `plan --out` saves it (what the changes are, against which
/// manifest and which live state), for the annotations of the versions an apply makes.
pub fn plan_digest(plan: &plan::Plan) -> String {
    let canonical = serde_json::to_vec(plan).expect("a plan always serializes");
    hex::encode(&Sha256::digest(canonical)[..4])
}

/// Carry out `steps`, then read the account again and require that a fresh plan has nothing
/// left to do: apply's promise is the account equal to the manifest, not the calls made.
pub async fn run(
    steps: &[Step],
    desired: &Manifest,
    live: &Live,
    client: &Client,
    secrets: &BTreeMap<String, Secret>,
    annotations: &Annotations,
    progress: &mut dyn Progress,
) -> Result<Applied, Error> {
    let mut outcomes = execute(steps, desired, live, client, secrets, annotations, progress).await;
    let failure = outcomes
        .iter()
        .position(|o| matches!(o, StepOutcome::Failed(..)));
    let failure = failure.and_then(|index| match outcomes.swap_remove(index) {
        StepOutcome::Failed(_, source) => Some((index, source)),
        _ => None,
    });
    if let Some((index, source)) = failure {
        return Err(Error::ApplyFailed(Box::new(ApplyFailure {
            done: steps[..index]
                .iter()
                .map(|s| s.address().to_string())
                .collect(),
            failed: steps[index].address().to_string(),
            not_started: steps[index + 1..]
                .iter()
                .map(|s| s.address().to_string())
                .collect(),
            source,
        })));
    }
    let done = outcomes
        .iter()
        .take_while(|outcome| matches!(outcome, StepOutcome::Done(_)))
        .count();
    if done < steps.len() {
        return Err(Error::Interrupted {
            done: steps[..done]
                .iter()
                .map(|s| s.address().to_string())
                .collect(),
            total: steps.len(),
        });
    }
    let no_probes = GatherOptions {
        probes: false,
        ..GatherOptions::default()
    };
    let after = live::gather(desired, client, no_probes).await?;
    let fresh = plan::diff(desired, &after, &plan::DiffOptions::default());
    let left: Vec<String> = fresh
        .effective_changes()
        .map(|c| c.address.to_string())
        .chain(fresh.blockers.iter().map(|b| b.address.to_string()))
        .collect();
    if !left.is_empty() {
        return Err(Error::NotConverged { addresses: left });
    }
    Ok(Applied { steps: steps.len() })
}
