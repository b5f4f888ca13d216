//! `lmsinfra diff --base REV`: what a manifest change means, offline.

use crate::cli::DiffArgs;
use crate::error::{Error, Outcome};
use crate::manifest;
use crate::plan;
use crate::printer::Printer;
use crate::render::{self, Format};
use crate::settings::Settings;

pub(super) fn diff(
    settings: &Settings,
    printer: Printer,
    args: DiffArgs,
) -> Result<Outcome, Error> {
    let names = if args.environments.is_empty() {
        manifest::environment_files(&settings.dir)?
            .into_iter()
            .map(|(name, _)| name)
            .collect()
    } else {
        args.environments
    };
    let mut plans = Vec::new();
    for env in &names {
        let head = manifest::load_valid(&settings.dir, env)?;
        let base = manifest::load_at_revision(&settings.dir, &args.base, env)?;
        plans.push(plan::intent(&args.base, base.as_ref(), &head));
    }
    let text = match args.format {
        Format::Json => serde_json::to_string_pretty(&plans).expect("plans always serialize"),
        format => {
            let color = printer.stdout_color();
            plans
                .iter()
                .map(|p| render::render(p, format, color))
                .collect::<Vec<_>>()
                .join("\n")
                .trim_end()
                .to_owned()
        }
    };
    printer.data(&text)?;
    let changed = plans.iter().any(|p| !p.is_empty());
    Ok(if changed && args.detailed_exitcode {
        Outcome::Changes
    } else {
        Outcome::Success
    })
}
