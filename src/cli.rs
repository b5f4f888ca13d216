//! The command line: clap types, and one function per subcommand that wires the stages together.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::error::{Error, Outcome};
use crate::manifest;
use crate::plan;
use crate::render::{self, Format};

/// Keeps a Cloudflare Workers + D1 application's infrastructure equal to its manifests.
#[derive(Debug, Parser)]
#[command(name = "lmsinfra", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand takes.
#[derive(Debug, Args)]
pub struct Global {
    /// The project root, which holds `environments/`.
    #[arg(long, global = true, default_value = ".", value_name = "DIR")]
    pub dir: PathBuf,
    /// Start the local Cloudflare API emulator in-process and point the client at it (state in
    /// `.lmsinfra/sandbox.json`, seeded from `examples/sandbox/` on first use).
    #[arg(long, global = true)]
    pub sandbox: bool,
    /// More output on stderr: -v for info, -vv for debug, -vvv for trace.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// When to use colour; `NO_COLOR` is honoured in `auto`.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,
    /// How many API requests may be in flight at once.
    #[arg(long, global = true, default_value_t = 16, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
}

/// When to colour output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Colour on a terminal, unless `NO_COLOR` is set.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check manifests offline: syntax, types, references, naming rules, parity between environments.
    Validate(ValidateArgs),
    /// Show what a manifest change means: the manifests at a git revision against the work tree.
    /// No network, no credentials.
    Diff(DiffArgs),
    /// Print a JSON Schema.
    Schema(SchemaArgs),
    /// Run the local emulator of the Cloudflare API subset lmsinfra uses.
    Sandbox(SandboxArgs),
}

/// `lmsinfra validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Environments to validate (all in `environments/` when none are named).
    #[arg(value_name = "ENV")]
    pub environments: Vec<String>,
    /// How to print diagnostics.
    #[arg(long, value_enum, default_value_t = DiagnosticFormat::Text)]
    pub format: DiagnosticFormat,
}

/// How diagnostics are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiagnosticFormat {
    /// For people: source excerpts with labels.
    Text,
    /// For machines: one JSON document on stdout.
    Json,
}

/// `lmsinfra diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The git revision to compare with (`origin/main`, `HEAD~1`, a commit).
    #[arg(long, value_name = "REV")]
    pub base: String,
    /// Environments to compare (all in `environments/` when none are named).
    #[arg(value_name = "ENV")]
    pub environments: Vec<String>,
    /// How to print the plans; `json` prints an array with one plan per environment.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Exit 2 when any environment changes.
    #[arg(long)]
    pub detailed_exitcode: bool,
}

/// `lmsinfra schema`.
#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Which schema.
    #[arg(value_enum, default_value_t = SchemaKind::Manifest)]
    pub kind: SchemaKind,
}

/// The JSON Schemas lmsinfra publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemaKind {
    /// An environment manifest (`environments/<env>.yaml`).
    Manifest,
    /// A plan, as `plan --format json` and `plan --out` write it.
    Plan,
}

/// `lmsinfra sandbox`.
#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// The loopback address to listen on.
    #[arg(long, default_value = "127.0.0.1:8787", value_name = "ADDR")]
    pub listen: std::net::SocketAddr,
    /// Where the account's state is kept (created from `--seed` when missing).
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// The account to start from when the state file does not exist yet.
    #[arg(long, value_name = "FILE")]
    pub seed: Option<PathBuf>,
    /// Delay every answer by this many milliseconds.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub latency_ms: u64,
    /// Faults to inject, e.g. `seed=7,429=0.2,500=0.1`.
    ///
    /// SPEC is a comma-separated list of items:
    ///   seed=N                   seed for the deterministic fault generator (default 0);
    ///   KIND[@SCOPE]=RATE[:ARG]  hit that share (0 to 1) of matching requests.
    /// KIND is 429 (ARG: retry-after, default 1s), 500, 503, drop (close the connection),
    /// slow (ARG: extra delay, required) or after_create (the create succeeds, then the client
    /// gets ARG: 500 (default), drop, or a stall of the given duration).
    /// Durations are like 250ms or 2s. SCOPE limits an item to routes whose template or
    /// operation id contains it, e.g. after_create@d1=1:drop.
    /// Example: seed=7,429=0.2,500=0.1,drop=0.05,slow=0.1:2000ms,after_create@d1=1
    #[arg(long, value_name = "SPEC", verbatim_doc_comment)]
    pub faults: Option<crate::sandbox::FaultSpec>,
    /// Accept only this API token (any non-empty token otherwise).
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
}

/// Run one parsed command line.
pub fn run(cli: Cli) -> Result<Outcome, Error> {
    match cli.command {
        Command::Validate(args) => validate(&cli.global, args),
        Command::Diff(args) => diff(&cli.global, args),
        Command::Schema(args) => schema(args),
        Command::Sandbox(args) => sandbox(&cli.global, args),
    }
}

fn validate(global: &Global, args: ValidateArgs) -> Result<Outcome, Error> {
    let validation = manifest::check_all(&global.dir, &args.environments)?;
    match args.format {
        DiagnosticFormat::Text => {
            for diagnostic in &validation.diagnostics {
                if diagnostic.is_error() || !global.quiet {
                    anstream::eprintln!("{:?}", miette::Report::new(diagnostic.clone()));
                }
            }
        }
        DiagnosticFormat::Json => {
            let document = serde_json::json!({
                "valid": validation.is_valid(),
                "summary": validation.summary(),
                "environments": validation.environments,
                "diagnostics": validation.diagnostics,
            });
            let text =
                serde_json::to_string_pretty(&document).expect("diagnostics serialise to JSON");
            print_stdout(&text)?;
        }
    }
    if !validation.is_valid() {
        return Err(Error::ValidationFailed(validation.summary()));
    }
    if !global.quiet {
        anstream::eprintln!("{}", validation.summary());
    }
    Ok(Outcome::Success)
}

fn diff(global: &Global, args: DiffArgs) -> Result<Outcome, Error> {
    let names = if args.environments.is_empty() {
        manifest::environment_files(&global.dir)?
            .into_iter()
            .map(|(name, _)| name)
            .collect()
    } else {
        args.environments
    };
    let mut plans = Vec::new();
    for env in &names {
        let head = manifest::load_valid(&global.dir, env)?;
        let base = manifest::load_at_revision(&global.dir, &args.base, env)?;
        plans.push(plan::intent(&args.base, base.as_ref(), &head));
    }
    let text = match args.format {
        Format::Json => serde_json::to_string_pretty(&plans).expect("plans always serialize"),
        format => {
            let color = stdout_color();
            plans
                .iter()
                .map(|p| render::render(p, format, color))
                .collect::<Vec<_>>()
                .join("\n")
                .trim_end()
                .to_owned()
        }
    };
    print_stdout(&text)?;
    let changed = plans.iter().any(|p| !p.is_empty());
    Ok(if changed && args.detailed_exitcode {
        Outcome::Changes
    } else {
        Outcome::Success
    })
}

/// Whether stdout gets colour, after `--color`, `NO_COLOR` and whether it is a terminal.
fn stdout_color() -> bool {
    !matches!(
        anstream::AutoStream::choice(&std::io::stdout()),
        anstream::ColorChoice::Never
    )
}

fn schema(args: SchemaArgs) -> Result<Outcome, Error> {
    let schema = match args.kind {
        SchemaKind::Manifest => manifest::Manifest::json_schema(),
        SchemaKind::Plan => plan::schema().into(),
    };
    let text = serde_json::to_string_pretty(&schema).expect("a JSON Schema serialises to JSON");
    print_stdout(&text)?;
    Ok(Outcome::Success)
}

/// Print `text` and a newline on stdout; a closed pipe (`| head`) is not an error.
fn print_stdout(text: &str) -> Result<(), Error> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{text}").and_then(|()| stdout.flush()) {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::FileWrite {
            path: "<stdout>".into(),
            source: err,
        }),
        _ => Ok(()),
    }
}

fn sandbox(_global: &Global, args: SandboxArgs) -> Result<Outcome, Error> {
    let config = crate::sandbox::SandboxConfig {
        listen: Some(args.listen),
        state: args.state,
        seed: args.seed,
        latency: std::time::Duration::from_millis(args.latency_ms),
        faults: args.faults,
        token: args.token,
        ..Default::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::SandboxStart {
            reason: e.to_string(),
        })?;
    runtime.block_on(crate::sandbox::run(config, async {
        let _ = tokio::signal::ctrl_c().await;
    }))?;
    Ok(Outcome::Success)
}
