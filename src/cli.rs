//! The command line as clap parses it: the global options, the subcommands and their arguments.
//! What each subcommand does is in `commands/`.

use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

use crate::apply;
use crate::render::Format;

/// The environment variables and exit codes, after `--help` and in the man page.
const AFTER_HELP: &str = "\
Environment:
  CLOUDFLARE_API_TOKEN     The API token (never printed); the name wrangler reads
  CLOUDFLARE_ACCOUNT_ID    The account id, 32 hexadecimal characters; overrides every manifest's
                           `account_id`
  CLOUDFLARE_API_BASE_URL  The API (default https://api.cloudflare.com/client/v4); plain http only
                           to a loopback address
  LMSINFRA_API_TIMEOUT     Seconds one API call may take, retries included (default 60)
  NO_COLOR                 No colour with --color auto

Exit codes:
  0  Success; for plan, nothing to change (or changes, without --detailed-exitcode)
  1  Error: invalid manifest or input, API failure, apply refused or did not converge
  2  plan or diff with --detailed-exitcode: there are changes
  3  Blocked: a required secret is missing, a Worker is not deployed, a protected database
     would be deleted, a saved plan is stale; for check, a check failed or a grade is too low";

/// The global options each subcommand does not use, hidden from its help.
const UNUSED_GLOBALS: [(&str, &[&str]); 7] = [
    ("validate", &["sandbox", "concurrency"]),
    ("diff", &["sandbox", "concurrency"]),
    ("schema", &["dir", "sandbox", "concurrency"]),
    ("sandbox", &["sandbox", "concurrency"]),
    ("import", &["sandbox", "concurrency"]),
    ("completions", &["dir", "sandbox", "concurrency"]),
    ("man", &["dir", "sandbox", "concurrency"]),
];

/// The command line as parsed, and as help, man pages and completions show it: each
/// subcommand's help lists only the global options it uses.
pub(crate) fn command() -> clap::Command {
    let mut command = Cli::command();
    // clap copies a global option into each subcommand that lacks one of the same id when the
    // command is built; a hidden copy placed first is parsed the same and left out of the help.
    for (name, unused) in UNUSED_GLOBALS {
        let hidden: Vec<clap::Arg> = command
            .get_arguments()
            .filter(|a| unused.contains(&a.get_id().as_str()))
            .map(|a| a.clone().hide(true))
            .collect();
        command = command.mut_subcommand(name, |sub| sub.args(hidden));
    }
    command
}

/// Keeps a Cloudflare Workers + D1 application's infrastructure equal to its manifests.
#[derive(Debug, Parser)]
#[command(name = "lmsinfra", version, about, max_term_width = 100, after_long_help = AFTER_HELP)]
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
    /// Read the live account and show what differs from the manifest.
    Plan(PlanArgs),
    /// Make the live account match the manifest.
    Apply(ApplyArgs),
    /// Report on an environment's security: graded headers, CORS, credentials, secrets, rate
    /// limits. Exits 3 when a check fails or a grade is below --min-grade.
    Check(CheckArgs),
    /// Show what a manifest change means: the manifests at a git revision against the work tree.
    /// No network, no credentials.
    Diff(DiffArgs),
    /// Print a JSON Schema.
    Schema(SchemaArgs),
    /// Run the local emulator of the Cloudflare API subset lmsinfra uses.
    Sandbox(SandboxArgs),
    /// Write manifests from a wrangler configuration (wrangler.toml, wrangler.json, wrangler.jsonc).
    Import(ImportArgs),
    /// Print the wrangler configuration of one Worker whose bindings, vars and compatibility
    /// settings are the manifest's, so `wrangler deploy` keeps what apply set.
    WranglerConfig(WranglerConfigArgs),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
    /// Print the man page, or write one per command into a folder.
    Man(ManArgs),
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

/// `lmsinfra plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The environment (`environments/ENV.yaml`).
    #[arg(value_name = "ENV")]
    pub environment: String,
    /// How to print the plan.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Also write the plan as JSON to FILE, for `apply --plan FILE`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Exit 2 when there are changes (0 when none, 3 when blocked).
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Do not fetch the Workers' probe URLs to check their headers.
    #[arg(long)]
    pub no_probe: bool,
}

/// `lmsinfra apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The environment (`environments/ENV.yaml`).
    #[arg(value_name = "ENV")]
    pub environment: String,
    /// Refuse unless the manifest and the live account are as they were when `plan --out FILE`
    /// wrote this plan.
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,
    /// Apply without asking (needed without a terminal).
    #[arg(long)]
    pub auto_approve: bool,
    /// A required secret's value: NAME=env:VAR, NAME=file:PATH or NAME=stdin. Repeatable.
    #[arg(long = "secret", value_name = "NAME=SOURCE", value_parser = apply::SecretArgParser)]
    pub secrets: Vec<apply::SecretArg>,
    /// Allow deleting databases marked `absent: true` with `protect: false`.
    #[arg(long)]
    pub allow_destroy: bool,
}

/// `lmsinfra check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The environment (`environments/ENV.yaml`).
    #[arg(value_name = "ENV")]
    pub environment: String,
    /// How to print the report.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
    /// Fail (exit 3) when a probed URL grades below this (A+, A, A-, B+ … F), or when no URL
    /// was graded (unless --no-probe).
    #[arg(long, value_name = "GRADE")]
    pub min_grade: Option<crate::check::Grade>,
    /// Do not fetch the Workers' probe URLs (no grades, no header comparison).
    #[arg(long)]
    pub no_probe: bool,
}

/// How `check` prints its report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// For people: one line per URL and per check, ✓ passed, ✗ failed, - not graded.
    Text,
    /// For machines: the report as one JSON document on stdout.
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
    /// Where the account's state is kept (created from `--seed` when missing). Without
    /// `--state` and `--seed`: the project's `.lmsinfra/sandbox.json`, seeded from
    /// `examples/sandbox/`, the account `--sandbox` uses.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// The account to start from when the state file does not exist yet (with `--seed` alone,
    /// the account lives in memory).
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
    /// Play a variant of a behaviour the real API has not settled, e.g. `inherit=refused`.
    #[arg(long = "variant", value_name = "KEY=VALUE", long_help = crate::sandbox::variants::HELP)]
    pub variants: Vec<crate::sandbox::Variant>,
    /// D1 `/query` commits statement by statement, so the statements before a failing one stay
    /// (the worse case real D1 may have); by default one request is one transaction.
    #[arg(long)]
    pub d1_query_non_atomic: bool,
    /// D1 imports silently drop every other `INSERT` yet report success (to show that a restore
    /// drill catches a bad backup).
    #[arg(long)]
    pub corrupt_imports: bool,
}

/// `lmsinfra import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The wrangler configuration: wrangler.toml, wrangler.json or wrangler.jsonc.
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
    /// Environments to import: `production` is the top level, others are `[env.NAME]`
    /// sections (all when none are named). Repeatable.
    #[arg(long = "env", value_name = "NAME")]
    pub environments: Vec<String>,
    /// The account id (default: `CLOUDFLARE_ACCOUNT_ID`, else the configuration's `account_id`).
    #[arg(long, value_name = "ID")]
    pub account_id: Option<String>,
    /// The Worker's key in the manifests (default: its name without the first dash-separated
    /// part, `lms-api` → `api`).
    #[arg(long, value_name = "KEY")]
    pub worker_key: Option<String>,
    /// Replace manifests that exist.
    #[arg(long)]
    pub force: bool,
}

/// `lmsinfra wrangler-config`.
#[derive(Debug, Args)]
pub struct WranglerConfigArgs {
    /// The environment (`environments/ENV.yaml`); production is written at the top level,
    /// others under `env.ENV`.
    #[arg(value_name = "ENV", required_unless_present = "all")]
    pub environment: Option<String>,
    /// Every environment of `environments/` in one configuration.
    #[arg(long, conflicts_with = "environment")]
    pub all: bool,
    /// The Worker's key (needed when the manifest has more than one).
    #[arg(long, value_name = "KEY")]
    pub worker: Option<String>,
    /// Write the configuration to PATH instead of stdout. A file that exists is merged into:
    /// only this environment's bindings, vars, routes and compatibility settings change; other
    /// environments, other keys and JSONC comments stay.
    #[arg(long, value_name = "PATH")]
    pub write: Option<PathBuf>,
    /// Replace the file given to --write whole, even when it cannot be merged into (unreadable,
    /// another Worker, TOML comments).
    #[arg(long, requires = "write")]
    pub force: bool,
    /// The entry point to name as `main`.
    #[arg(long, value_name = "PATH")]
    pub main: Option<String>,
}

/// `lmsinfra completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `lmsinfra man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write `lmsinfra.1` and one page per command (`lmsinfra-plan.1`, …) into DIR.
    #[arg(long, value_name = "DIR")]
    pub write: Option<PathBuf>,
}
