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
  LMSINFRA_API_RESERVE     Requests of Cloudflare's reported budget left for the account's other
                           users (default 100, never less than --concurrency)
  NO_COLOR                 No colour with --color auto

Exit codes:
  0  Success; for plan, nothing to change (or changes, without --detailed-exitcode)
  1  Error: invalid manifest or input, API failure, apply refused or did not converge
  2  plan or diff with --detailed-exitcode: there are changes
  3  Blocked: a required secret is missing, a Worker is not deployed, a protected database
     would be deleted, a saved plan is stale, the environment is rolled back, a migration
     contradicts its ledger, a rotation is requested without a value; for check, a check
     failed, a grade is too low or a capacity threshold is crossed; for rollback, migrate,
     rotate and restore-drill, a refusal before any write or a failed drill
  4  A smoke check failed; with on_failure: rollback, the change was rolled back
  130  Interrupted (Ctrl-C, SIGTERM): the write in flight finished, no other started";

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
    /// How many API requests, and apply steps, may be in flight at once.
    #[arg(long, global = true, default_value_t = 16, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
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
    /// Show a Worker's recent deployments and versions: who, when, with what message and tag,
    /// at which percentages, and whether each version can still be deployed.
    Releases(ReleasesArgs),
    /// Deploy an earlier version of a Worker again, after checking it with reads.
    Rollback(RollbackArgs),
    /// Report on an environment's security (graded headers, CORS, credentials, secrets, rate
    /// limits) and capacity (D1 sizes, version window, API budget). Exits 3 when a check fails,
    /// a grade is below --min-grade or a capacity threshold is crossed.
    Check(CheckArgs),
    /// Draw an environment: its Workers, their bindings, databases and edge rules, marked by
    /// what its plan changes.
    Graph(GraphArgs),
    /// Send the Workers' smoke checks (`workers.KEY.smoke`) to what serves now, or to one
    /// version. Exits 4 when a check fails.
    Verify(VerifyArgs),
    /// Rotate a secret without downtime, one phase at a time.
    Rotate(RotateArgs),
    /// Each required secret's rotation: generation, last rotation, age, phase and verdict.
    Secrets(SecretsArgs),
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
    /// D1 migrations on wrangler's ledger: status, a new file, undo, or record a database made by
    /// hand as migrated.
    #[command(subcommand)]
    Migrate(MigrateCommand),
    /// Export a D1 database to a SQL dump: a file named after its Time Travel bookmark, and/or
    /// R2 (the manifest's `backup.r2`).
    Backup(BackupArgs),
    /// Restore a D1 database in place with Time Travel (--timestamp, --bookmark), or a backup
    /// file into a new database (--from FILE --into NAME).
    Restore(RestoreArgs),
    /// Prove a backup restores: export, import into a scratch database, compare schema, row
    /// counts and content, delete the scratch database. Exits 3 when they differ.
    RestoreDrill(RestoreDrillArgs),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
    /// Print the man page, or write one per command into a folder.
    Man(ManArgs),
}

/// `lmsinfra migrate`.
#[derive(Debug, Subcommand)]
pub enum MigrateCommand {
    /// Each migration's state: applied, pending, edited, out of order, partial, missing. Exits 3
    /// when one of them blocks apply.
    Status(MigrateStatusArgs),
    /// Write the next migration file, numbered as wrangler numbers it.
    New(MigrateNewArgs),
    /// Undo applied migrations newest first with their down files, each in one import with the
    /// removal of its ledger rows.
    Down(MigrateDownArgs),
    /// Record a database made from a schema file by hand as migrated: when its live schema
    /// equals the file's, the file becomes the first migration, recorded without running it.
    Baseline(MigrateBaselineArgs),
}

/// `lmsinfra migrate status`.
#[derive(Debug, Args)]
pub struct MigrateStatusArgs {
    /// The environment.
    #[arg(value_name = "ENV")]
    pub environment: String,
    /// Only this database (its key in `d1_databases`).
    #[arg(long, value_name = "KEY")]
    pub db: Option<String>,
    /// How to print the status.
    #[arg(long, value_enum, default_value_t = DiagnosticFormat::Text)]
    pub format: DiagnosticFormat,
}

/// `lmsinfra migrate new`.
#[derive(Debug, Args)]
pub struct MigrateNewArgs {
    /// The environment.
    #[arg(value_name = "ENV")]
    pub environment: String,
    /// The database (its key in `d1_databases`).
    #[arg(long, value_name = "KEY")]
    pub db: String,
    /// What the migration does; spaces become `_`.
    #[arg(value_name = "NAME")]
    pub name: String,
}

/// `lmsinfra migrate down`.
#[derive(Debug, Args)]
pub struct MigrateDownArgs {
    /// The environment.
    #[arg(value_name = "ENV")]
    pub environment: String,
    /// The database (its key in `d1_databases`).
    #[arg(long, value_name = "KEY")]
    pub db: String,
    /// The number of the migration to go back to: every applied migration numbered above it is
    /// undone.
    #[arg(long, value_name = "NNNN")]
    pub to: u64,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub auto_approve: bool,
}

/// `lmsinfra migrate baseline`.
#[derive(Debug, Args)]
pub struct MigrateBaselineArgs {
    /// The environment.
    #[arg(value_name = "ENV")]
    pub environment: String,
    /// The database (its key in `d1_databases`).
    #[arg(long, value_name = "KEY")]
    pub db: String,
    /// The schema file the database was made from.
    #[arg(long, value_name = "FILE")]
    pub schema: PathBuf,
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
    /// Treat warnings as errors (exit 1 when there are any), as CI should.
    #[arg(long)]
    pub strict: bool,
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
    /// Apply the plan `plan --out FILE` saved: refuse unless the manifest and what the plan
    /// writes on the account are as they were then. The account is not read again when the plan
    /// deletes no database and writes no zone rules: the newest version and deployment of each
    /// Worker it writes, the D1 list and the migration ledgers are checked against the plan's
    /// own read, before the first write.
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
    /// Apply although `lmsinfra rollback` deployed an earlier version: serve the newest version
    /// again, then make the account equal to the manifest.
    #[arg(long)]
    pub roll_forward: bool,
    /// Do not run the smoke checks of the Workers apply changed.
    #[arg(long)]
    pub no_verify: bool,
    /// Write every secret given with --secret, also those the Worker already has (by default
    /// only missing ones are written: each write makes a new Worker version).
    #[arg(long)]
    pub force_secrets: bool,
    /// After the steps, read the whole environment again to check it equals the manifest (by
    /// default the check uses what each step read back, or was answered, of its own write).
    #[arg(long)]
    pub full_check: bool,
}

/// `lmsinfra releases`.
#[derive(Debug, Args)]
pub struct ReleasesArgs {
    /// The environment (`environments/ENV.yaml`).
    #[arg(value_name = "ENV")]
    pub environment: String,
    /// Only this Worker (its key in the manifest).
    #[arg(long, value_name = "KEY")]
    pub worker: Option<String>,
    /// How many deployments and versions to show per Worker.
    #[arg(long, default_value_t = 10, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=100))]
    pub limit: u16,
    /// How to print them.
    #[arg(long, value_enum, default_value_t = DiagnosticFormat::Text)]
    pub format: DiagnosticFormat,
}

/// `lmsinfra rollback`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The environment (`environments/ENV.yaml`).
    #[arg(value_name = "ENV")]
    pub environment: String,
    /// The Worker to roll back (its key; needed when the manifest has more than one).
    #[arg(long, value_name = "KEY", conflicts_with = "all")]
    pub worker: Option<String>,
    /// Roll back every Worker of the environment.
    #[arg(long)]
    pub all: bool,
    /// Go back to this version.
    #[arg(long, value_name = "ID", conflicts_with_all = ["to_tag", "steps"])]
    pub to_version: Option<String>,
    /// Go back to the newest version tagged with this git sha.
    #[arg(long, value_name = "SHA", conflicts_with = "steps")]
    pub to_tag: Option<String>,
    /// Go back this many deployments that served one version at 100% (default 1, as wrangler).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=100))]
    pub steps: Option<u16>,
    /// Check and show the target, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Roll back without asking (needed without a terminal).
    #[arg(long)]
    pub auto_approve: bool,
    /// Roll back even when it brings back old secret values.
    #[arg(long)]
    pub allow_secret_revert: bool,
    /// Do not run the smoke checks of the Workers rolled back.
    #[arg(long)]
    pub no_verify: bool,
}

/// `lmsinfra verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The environment (`environments/ENV.yaml`).
    #[arg(value_name = "ENV")]
    pub environment: String,
    /// Only this Worker's checks (its key in the manifest).
    #[arg(long, value_name = "KEY")]
    pub worker: Option<String>,
    /// Check this version of the serving deployment, asked for with Cloudflare's override
    /// header; a check fails when another version answers.
    #[arg(long, value_name = "ID")]
    pub version: Option<String>,
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

/// `lmsinfra graph`.
#[derive(Debug, Args)]
pub struct GraphArgs {
    /// The environment (`environments/ENV.yaml`).
    #[arg(value_name = "ENV")]
    pub environment: String,
    /// The diagram language.
    #[arg(long, value_enum, default_value_t = crate::render::graph::GraphFormat::Mermaid)]
    pub format: crate::render::graph::GraphFormat,
    /// Mark changes from this saved plan (`plan --out FILE`) instead of planning against the
    /// live account; nothing is read from the network.
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,
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
pub struct RotateArgs {
    /// The environment, as in `environments/ENV.yaml`.
    #[arg(value_name = "ENV")]
    pub environment: String,
    /// The secret to rotate; the manifest gives its `rotation` policy.
    #[arg(value_name = "SECRET")]
    pub secret: String,
    /// `stage` (both strategies), `promote` (`dual`) or `finish` (`stream_signing_key`).
    #[arg(long, value_enum, default_value_t = RotatePhase::Stage)]
    pub phase: RotatePhase,
    /// The new value, as for apply: NAME=env:VAR, NAME=file:PATH or NAME=stdin.
    #[arg(long = "secret", value_name = "NAME=SOURCE", value_parser = apply::SecretArgParser)]
    pub value: Option<apply::SecretArg>,
    /// Make a new value of BYTES random bytes (hex) instead of reading one.
    #[arg(long, value_name = "BYTES", conflicts_with = "value", value_parser = clap::value_parser!(u16).range(16..=2048))]
    pub generate: Option<u16>,
    /// Write a generated value to this new file (mode 0600) for the provider; never printed.
    #[arg(long, value_name = "FILE", requires = "generate")]
    pub reveal_to: Option<PathBuf>,
    /// Carry the phase out; without it, only say what it would do.
    #[arg(long)]
    pub auto_approve: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RotatePhase {
    Stage,
    Promote,
    Finish,
}

#[derive(Debug, Args)]
pub struct SecretsArgs {
    /// The environment, as in `environments/ENV.yaml`.
    #[arg(value_name = "ENV")]
    pub environment: String,
    /// `text` for people, `json` for machines.
    #[arg(long, value_enum, default_value_t = DiagnosticFormat::Text)]
    pub format: DiagnosticFormat,
}

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
    /// Start with the rate limit's budget part spent by another token of the same user, e.g.
    /// `600/10`.
    #[arg(long, value_name = "USED/SECONDS", long_help = crate::sandbox::BUSY_ACCOUNT_HELP)]
    pub busy_account: Option<crate::sandbox::BusyAccount>,
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

/// `lmsinfra backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The environment (`environments/ENV.yaml`).
    #[arg(value_name = "ENV")]
    pub environment: String,
    /// The database's key (needed when the manifest has more than one).
    #[arg(long, value_name = "KEY")]
    pub db: Option<String>,
    /// Write the dump to FILE (into it, under the default name, when FILE is a folder). Without
    /// it the dump goes to R2 when the manifest says `backup.r2`, else to the current folder.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// `lmsinfra restore`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("point").required(true).args(["timestamp", "bookmark", "from"])))]
pub struct RestoreArgs {
    /// The environment (`environments/ENV.yaml`).
    #[arg(value_name = "ENV")]
    pub environment: String,
    /// The database's key (needed when the manifest has more than one).
    #[arg(long, value_name = "KEY")]
    pub db: Option<String>,
    /// Restore in place to the newest bookmark at or before this time (RFC 3339 or Unix
    /// seconds, within the last 30 days).
    #[arg(long, value_name = "TIME")]
    pub timestamp: Option<String>,
    /// Restore in place to this Time Travel bookmark.
    #[arg(long, value_name = "BOOKMARK")]
    pub bookmark: Option<String>,
    /// A backup file to import into a new database (needs --into).
    #[arg(long, value_name = "FILE", requires = "into")]
    pub from: Option<PathBuf>,
    /// The new database --from fills; it must not exist.
    #[arg(long, value_name = "NAME", requires = "from")]
    pub into: Option<String>,
    /// Restore in place without asking (needed without a terminal).
    #[arg(long)]
    pub auto_approve: bool,
}

/// `lmsinfra restore-drill`.
#[derive(Debug, Args)]
pub struct RestoreDrillArgs {
    /// The environment (`environments/ENV.yaml`).
    #[arg(value_name = "ENV")]
    pub environment: String,
    /// The database's key (needed when the manifest has more than one).
    #[arg(long, value_name = "KEY")]
    pub db: Option<String>,
    /// How to print the report.
    #[arg(long, value_enum, default_value_t = DiagnosticFormat::Text)]
    pub format: DiagnosticFormat,
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
