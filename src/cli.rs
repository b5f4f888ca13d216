//! The command line: clap types, and one function per subcommand that wires the stages together.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::error::{Error, Outcome};

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
    #[arg(long, value_name = "SPEC", long_help = crate::sandbox::faults::HELP)]
    pub faults: Option<crate::sandbox::FaultSpec>,
    /// Accept only this API token (any non-empty token otherwise).
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
}

/// Run one parsed command line.
pub fn run(cli: Cli) -> Result<Outcome, Error> {
    match cli.command {
        Command::Validate(args) => validate(&cli.global, args),
        Command::Schema(args) => schema(args),
        Command::Sandbox(args) => sandbox(&cli.global, args),
    }
}

fn validate(_global: &Global, _args: ValidateArgs) -> Result<Outcome, Error> {
    Err(Error::Unfinished("validate"))
}

fn schema(_args: SchemaArgs) -> Result<Outcome, Error> {
    Err(Error::Unfinished("schema"))
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
