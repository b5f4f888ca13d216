//! `lmsinfra graph`: draw an environment, marked by its plan.

use super::{Planned, Read, plan_environment};
use crate::cli::GraphArgs;
use crate::error::{Error, Outcome};
use crate::live::GatherOptions;
use crate::manifest;
use crate::plan;
use crate::printer::Printer;
use crate::render::graph::Graph;
use crate::settings::Settings;

pub(super) fn graph(
    settings: &Settings,
    printer: Printer,
    args: GraphArgs,
) -> Result<Outcome, Error> {
    let (desired, others) = manifest::load_valid_with_others(&settings.dir, &args.environment)?;
    let (desired, plan) = match &args.plan {
        Some(path) => {
            let saved = plan::read_saved(path)?;
            if saved.environment != desired.environment {
                return Err(Error::GraphPlanEnvironment {
                    path: path.clone(),
                    planned: saved.environment,
                    environment: desired.environment,
                });
            }
            (desired, saved)
        }
        None => {
            let no_probes = GatherOptions {
                probes: false,
                ..GatherOptions::default()
            };
            let Planned { desired, plan, .. } = plan_environment(
                settings,
                desired,
                &others,
                Read::Gather(no_probes),
                plan::DiffOptions::default(),
            )?;
            (desired, plan)
        }
    };
    printer.data(
        Graph::new(&desired, Some(&plan))
            .render(args.format)
            .trim_end(),
    )?;
    Ok(Outcome::Success)
}
