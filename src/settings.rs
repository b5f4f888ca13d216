//! The global options resolved once, before any command runs: commands read what they mean (the
//! project, the account to talk to, how much to say), not how clap spelled them.

use std::path::PathBuf;

use crate::cli::{ColorChoice, Global};

/// What every command runs with.
#[derive(Debug)]
pub(crate) struct Settings {
    /// The project root, which holds `environments/`.
    pub(crate) dir: PathBuf,
    /// Which API the commands talk to.
    pub(crate) target: Target,
    /// How many API requests may be in flight at once.
    pub(crate) concurrency: usize,
    /// Only errors on stderr.
    pub(crate) quiet: bool,
    /// How many `-v` were given.
    pub(crate) verbose: u8,
    /// When to colour output, as `--color` asked.
    pub(crate) color: anstream::ColorChoice,
}

/// Which API the commands talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// Cloudflare's, or the one `CLOUDFLARE_API_BASE_URL` names.
    Cloudflare,
    /// The emulator, started in-process (`--sandbox`).
    Sandbox,
}

impl Settings {
    /// Resolve the global options.
    pub(crate) fn new(global: &Global) -> Settings {
        Settings {
            dir: global.dir.clone(),
            target: if global.sandbox {
                Target::Sandbox
            } else {
                Target::Cloudflare
            },
            concurrency: usize::from(global.concurrency),
            quiet: global.quiet,
            verbose: global.verbose,
            color: match global.color {
                ColorChoice::Auto => anstream::ColorChoice::Auto,
                ColorChoice::Always => anstream::ColorChoice::Always,
                ColorChoice::Never => anstream::ColorChoice::Never,
            },
        }
    }

    /// The tracing filter's level: errors only with `-q`, warnings by default, more with `-v`.
    pub(crate) fn log_level(&self) -> tracing::Level {
        match (self.quiet, self.verbose) {
            (true, _) => tracing::Level::ERROR,
            (false, 0) => tracing::Level::WARN,
            (false, 1) => tracing::Level::INFO,
            (false, 2) => tracing::Level::DEBUG,
            (false, _) => tracing::Level::TRACE,
        }
    }
}
