//! `lmsinfra plan`: read the live account and show what differs from the manifest.

use super::{Planned, Read, plan_environment, probe_options, write_atomically};
use crate::cli::PlanArgs;
use crate::error::{Error, Outcome};
use crate::manifest;
use crate::plan;
use crate::printer::Printer;
use crate::render;
use crate::settings::Settings;

pub(super) fn plan(
    settings: &Settings,
    printer: Printer,
    args: PlanArgs,
) -> Result<Outcome, Error> {
    let (desired, others) = manifest::load_valid_with_others(&settings.dir, &args.environment)?;
    let gather = probe_options(args.no_probe);
    let Planned {
        plan,
        desired,
        live,
        ..
    } = plan_environment(
        settings,
        desired,
        &others,
        Read::Gather(gather),
        plan::DiffOptions::default(),
    )?;
    if let Some(path) = &args.out {
        write_atomically(
            path,
            render::json(&plan::with_read(&plan, &live)).as_bytes(),
        )?;
    }
    let rendered = match args.format {
        render::Format::Markdown => {
            let diagram = render::graph::Graph::new(&desired, Some(&plan)).mermaid();
            render::markdown_with_diagram(&plan, Some(&diagram))
        }
        format => render::render(&plan, format, printer.stdout_color()),
    };
    printer.data(rendered.trim_end())?;
    Ok(if plan.is_blocked() {
        Outcome::Blocked
    } else if args.detailed_exitcode && !plan.is_empty() {
        Outcome::Changes
    } else {
        Outcome::Success
    })
}
