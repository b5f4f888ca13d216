//! Apply: carry out a plan with real API calls, along its dependency graph.
//!
//! [`steps`] decides the calls and [`steps::dependencies`] their order (both pure), [`execute`] makes
//! them, independent ones at the same time, and reports each (one [`execute::write_worker`] per
//! changed Worker), [`read_secrets`] reads `--secret` values, and [`run`] executes the steps,
//! says where a failure stopped them, then reads back what they wrote and requires an empty
//! plan.

pub(crate) mod execute;
mod migrate;
mod progress;
mod secrets;
mod steps;

pub use crate::plan::SettingsBinding;
pub use execute::{Progress, StepError, StepOutcome};
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
    /// A step failed; those done and those not started are listed.
    #[error(transparent)]
    #[diagnostic(transparent)]
    ApplyFailed(Box<ApplyFailure>),
    /// A Ctrl-C or SIGTERM stopped apply from starting steps; those in flight finished.
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

/// Where an apply stopped: the steps done, the first that failed and why, any other that failed
/// while it ran, and the ones not started.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("apply stopped at {failed}: {} step{} done, {} not started", done.len(), if done.len() == 1 { "" } else { "s" }, not_started.len())]
#[diagnostic(help(
    "done: {}; {}not started: {}. Fix the cause and run apply again: it picks up where this stopped",
    if done.is_empty() { "none".to_owned() } else { done.join(", ") },
    if also_failed.is_empty() { String::new() } else { format!("also failed: {}; ", also_failed.join("; ")) },
    if not_started.is_empty() { "none".to_owned() } else { not_started.join(", ") }
))]
pub struct ApplyFailure {
    /// Addresses of the steps done.
    pub done: Vec<String>,
    /// The address of the first step (in plan order) that failed.
    pub failed: String,
    /// The other steps that failed while it ran, as `ADDRESS: why`.
    pub also_failed: Vec<String>,
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

/// What apply's steps work on and with.
#[derive(Clone, Copy)]
pub struct Inputs<'a> {
    /// The manifest.
    pub desired: &'a Manifest,
    /// The live state the plan was made from.
    pub live: &'a Live,
    /// The API client.
    pub client: &'a Client,
    /// The `--secret` values, by name.
    pub secrets: &'a BTreeMap<String, Secret>,
    /// The annotations of every Worker version the steps make.
    pub annotations: &'a Annotations,
}

/// How apply runs its steps and checks their result.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// How many steps may run at once.
    pub concurrency: usize,
    /// Read the whole environment again afterwards, rather than rely on what each step read
    /// back of its own write.
    pub full_check: bool,
    /// Read each Worker's settings again before writing over them. Off only when the settings
    /// apply plans from were checked current just before the first write (a saved plan's read,
    /// vouched for by each Worker's newest version).
    pub reread: bool,
}

/// Carry out `steps`, then require that a fresh plan of the account as they left it has nothing
/// left to do: apply's promise is the account equal to the manifest, not the calls made.
///
/// The account as the steps left it is the plan's read with what each step read back of its own
/// write: a Worker's settings read after a write that kept bindings by reference (which shows
/// one Cloudflare dropped) or as the write's answer gave them, and what Cloudflare answered to a
/// database created or deleted, to the Workers Logs settings and to a ruleset written. No step touched the rest,
/// so the plan's read stands for it, and checking costs no round trip of its own.
/// `full_check` reads the whole environment again instead, as a plan would.
pub async fn run(
    steps: &[Step],
    inputs: Inputs<'_>,
    options: RunOptions,
    progress: &mut dyn Progress,
) -> Result<Applied, Error> {
    let Inputs {
        desired, client, ..
    } = inputs;
    let executed =
        execute::execute(steps, inputs, options.concurrency, options.reread, progress).await;
    let addresses = |wanted: fn(&StepOutcome) -> bool| -> Vec<String> {
        steps
            .iter()
            .zip(&executed.outcomes)
            .filter(|(_, outcome)| wanted(outcome))
            .map(|(step, _)| step.address().to_string())
            .collect()
    };
    let done = addresses(|o| matches!(o, StepOutcome::Done(_)));
    let not_started = addresses(|o| matches!(o, StepOutcome::NotStarted));
    let mut failures = steps
        .iter()
        .zip(executed.outcomes)
        .filter_map(|(step, outcome)| match outcome {
            StepOutcome::Failed(_, source) => Some((step.address().to_string(), source)),
            _ => None,
        });
    if let Some((failed, source)) = failures.next() {
        return Err(Error::ApplyFailed(Box::new(ApplyFailure {
            done,
            failed,
            also_failed: failures.map(|(a, why)| format!("{a}: {why}")).collect(),
            not_started,
            source,
        })));
    }
    if !not_started.is_empty() {
        return Err(Error::Interrupted {
            done,
            total: steps.len(),
        });
    }
    let after = if options.full_check {
        let no_probes = GatherOptions {
            probes: false,
            ..GatherOptions::default()
        };
        live::gather(desired, client, no_probes).await?
    } else {
        executed.after
    };
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
