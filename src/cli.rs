//! The command line: clap types, and one function per subcommand that wires the stages together.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::apply;
use crate::cloudflare::{Client, ClientConfig};
use crate::error::{Error, Outcome};
use crate::live::{self, GatherOptions, Live};
use crate::manifest;
use crate::manifest::Manifest;
use crate::plan;
use crate::render::{self, Format};
use crate::sandbox::{Sandbox, SandboxConfig};
use crate::secret::Secret;

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
    #[arg(long, value_enum, default_value_t = DiagnosticFormat::Text)]
    pub format: DiagnosticFormat,
    /// Fail (exit 3) when a probed URL grades below this (A+, A, A-, B+ … F).
    #[arg(long, value_name = "GRADE")]
    pub min_grade: Option<crate::check::Grade>,
    /// Do not fetch the Workers' probe URLs (no grades, no header comparison).
    #[arg(long)]
    pub no_probe: bool,
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
    #[arg(long, value_name = "SPEC", long_help = crate::sandbox::faults::HELP)]
    pub faults: Option<crate::sandbox::FaultSpec>,
    /// Accept only this API token (any non-empty token otherwise).
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
    /// D1 `/query` commits statement by statement, so the statements before a failing one stay
    /// (the worse case real D1 may have); by default one request is one transaction.
    #[arg(long)]
    pub d1_query_non_atomic: bool,
    /// D1 imports silently drop every other `INSERT` yet report success (to show that a restore
    /// drill catches a bad backup).
    #[arg(long)]
    pub corrupt_imports: bool,
}

/// Run one parsed command line.
pub fn run(cli: Cli) -> Result<Outcome, Error> {
    match cli.command {
        Command::Validate(args) => validate(&cli.global, args),
        Command::Plan(args) => plan(&cli.global, args),
        Command::Apply(args) => apply(&cli.global, args),
        Command::Check(args) => check(&cli.global, args),
        Command::Diff(args) => diff(&cli.global, args),
        Command::Schema(args) => schema(args),
        Command::Sandbox(args) => sandbox(&cli.global, args),
        Command::Import(args) => import(&cli.global, args),
        Command::WranglerConfig(args) => wrangler_config(&cli.global, args),
        Command::Completions(args) => completions(args),
        Command::Man(args) => man(args),
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

/// Whether to probe: not with `--no-probe`, and not with `--sandbox`, whose Workers serve no
/// traffic (their URLs are the real account's).
fn probe_options(global: &Global, desired: &Manifest, no_probe: bool) -> GatherOptions {
    if global.sandbox && !no_probe && !global.quiet {
        let probed = desired.workers.values().any(|w| w.headers.is_some());
        if probed {
            anstream::eprintln!(
                "note: header probes are skipped with --sandbox, whose Workers serve no traffic"
            );
        }
    }
    GatherOptions {
        probes: !no_probe && !global.sandbox,
        ..GatherOptions::default()
    }
}

fn plan(global: &Global, args: PlanArgs) -> Result<Outcome, Error> {
    let desired = manifest::load_valid(&global.dir, &args.environment)?;
    let account = Account::connect(global, &desired)?;
    let options = probe_options(global, &desired, args.no_probe);
    let live = account.gather(&desired, options)?;
    let diff_options = plan::DiffOptions {
        declared_elsewhere: declared_elsewhere(global, &args.environment),
        ..plan::DiffOptions::default()
    };
    let mut plan = plan::diff(&desired, &live, &diff_options);
    plan.warnings
        .extend(crate::wrangler::check_project(&global.dir, &desired));
    if let Some(path) = &args.out {
        write_atomically(path, render::json(&plan).as_bytes())?;
    }
    print_stdout(render::render(&plan, args.format, stdout_color()).trim_end())?;
    Ok(if plan.is_blocked() {
        Outcome::Blocked
    } else if args.detailed_exitcode && !plan.is_empty() {
        Outcome::Changes
    } else {
        Outcome::Success
    })
}

fn apply(global: &Global, args: ApplyArgs) -> Result<Outcome, Error> {
    use std::io::IsTerminal;
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if !args.auto_approve && !interactive {
        return Err(Error::ApprovalNeeded);
    }
    let desired = manifest::load_valid(&global.dir, &args.environment)?;
    let secrets = apply::read_secrets(
        &args.secrets,
        &desired,
        |var| std::env::var(var).ok(),
        &mut std::io::stdin(),
    )?;
    let account = Account::connect(global, &desired)?;
    let no_probes = GatherOptions {
        probes: false,
        ..GatherOptions::default()
    };
    let live = account.gather(&desired, no_probes)?;
    let options = plan::DiffOptions {
        supplied_secrets: secrets.keys().cloned().collect(),
        allow_destroy: args.allow_destroy,
        declared_elsewhere: declared_elsewhere(global, &args.environment),
        intent: false,
    };
    let mut plan = plan::diff(&desired, &live, &options);
    plan.warnings
        .extend(crate::wrangler::check_project(&global.dir, &desired));
    if let Some(path) = &args.plan {
        let saved = plan::read_saved(path)?;
        let moved = if saved.environment != plan.environment {
            Some(format!("it is a plan of {}", saved.environment))
        } else if saved.manifest_sha256 != plan.manifest_sha256 {
            Some("the manifest changed since".to_owned())
        } else if saved.live_fingerprint != plan.live_fingerprint {
            Some("the live account changed since".to_owned())
        } else {
            None
        };
        if let Some(why) = moved {
            report_refusal(&format!(
                "the plan in {} is stale: {why}; run `lmsinfra plan {} --out FILE` again and review it",
                path.display(),
                args.environment
            ));
            return Ok(Outcome::Blocked);
        }
    }
    print_stdout(render::text(&plan, stdout_color()).trim_end())?;
    if plan.is_blocked() {
        report_refusal(&format!(
            "apply refused before any change: {} blocker{} above",
            plan.blockers.len(),
            if plan.blockers.len() == 1 { "" } else { "s" }
        ));
        return Ok(Outcome::Blocked);
    }
    let steps = apply::steps(&plan, &desired, &live);
    if steps.is_empty() {
        return Ok(Outcome::Success);
    }
    if !args.auto_approve && !confirm(&args.environment)? {
        return Err(Error::ApplyCancelled);
    }
    let mut progress = apply::Lines::new(steps.len(), global.quiet);
    let outcomes = account.runtime.block_on(apply::execute(
        &steps,
        &desired,
        &live,
        &account.client,
        &secrets,
        &mut progress,
    ));
    let failure = outcomes
        .into_iter()
        .enumerate()
        .find_map(|(index, outcome)| match outcome {
            apply::StepOutcome::Failed(_, source) => Some((index, source)),
            _ => None,
        });
    if let Some((index, source)) = failure {
        return Err(Error::ApplyFailed(Box::new(crate::error::ApplyFailure {
            done: steps[..index]
                .iter()
                .map(|s| s.address().to_owned())
                .collect(),
            failed: steps[index].address().to_owned(),
            not_started: steps[index + 1..]
                .iter()
                .map(|s| s.address().to_owned())
                .collect(),
            source,
        })));
    }
    let after = account.gather(&desired, no_probes)?;
    let check = plan::diff(&desired, &after, &plan::DiffOptions::default());
    let left: Vec<String> = check
        .effective_changes()
        .map(|c| c.address.clone())
        .chain(check.blockers.iter().map(|b| b.address.clone()))
        .collect();
    if !left.is_empty() {
        return Err(Error::NotConverged { addresses: left });
    }
    if !global.quiet {
        anstream::eprintln!(
            "Apply complete: {} step{} done. A fresh plan of {} is empty.",
            steps.len(),
            if steps.len() == 1 { "" } else { "s" },
            args.environment
        );
    }
    Ok(Outcome::Success)
}

fn check(global: &Global, args: CheckArgs) -> Result<Outcome, Error> {
    let desired = manifest::load_valid(&global.dir, &args.environment)?;
    let account = Account::connect(global, &desired)?;
    let options = probe_options(global, &desired, args.no_probe);
    let live = account.gather(&desired, options)?;
    let report = crate::check::report(&desired, &live, args.min_grade);
    let text = match args.format {
        DiagnosticFormat::Text => crate::check::text(&report),
        DiagnosticFormat::Json => {
            serde_json::to_string_pretty(&report).expect("a report serialises to JSON")
        }
    };
    print_stdout(&text)?;
    Ok(if report.passed {
        Outcome::Success
    } else {
        Outcome::Blocked
    })
}

/// Ask on the terminal; only `yes` goes ahead.
fn confirm(environment: &str) -> Result<bool, Error> {
    anstream::eprint!("\nApply these changes to {environment}? Only 'yes' will be accepted: ");
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|source| Error::FileRead {
            path: "<stdin>".into(),
            source,
        })?;
    Ok(answer.trim() == "yes")
}

/// A refusal (exit 3) on stderr, in red on a terminal.
fn report_refusal(message: &str) {
    let red = anstyle::Style::new()
        .fg_color(Some(anstyle::AnsiColor::Red.into()))
        .bold();
    anstream::eprintln!("{red}error:{red:#} {message}");
}

/// The live account a command talks to: the real API, or the sandbox with `--sandbox`.
struct Account {
    client: Client,
    runtime: tokio::runtime::Runtime,
    _sandbox: Option<Sandbox>,
}

impl Account {
    fn connect(global: &Global, desired: &Manifest) -> Result<Self, Error> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|source| Error::Runtime { source })?;
        if !global.sandbox {
            let client = Client::from_env(global, &desired.account_id)?;
            return Ok(Self {
                client,
                runtime,
                _sandbox: None,
            });
        }
        let sandbox = Sandbox::start(SandboxConfig::for_project(&global.dir))?;
        tracing::info!(url = %sandbox.base_url(), "sandbox started");
        let token = std::env::var("CLOUDFLARE_API_TOKEN").unwrap_or_else(|_| "sandbox".to_owned());
        let account_id =
            std::env::var("CLOUDFLARE_ACCOUNT_ID").unwrap_or_else(|_| desired.account_id.clone());
        let mut config = ClientConfig::new(sandbox.base_url(), Secret::new(token), account_id);
        config.concurrency = usize::from(global.concurrency);
        Ok(Self {
            client: Client::new(config)?,
            runtime,
            _sandbox: Some(sandbox),
        })
    }

    fn gather(&self, desired: &Manifest, options: GatherOptions) -> Result<Live, Error> {
        Ok(self
            .runtime
            .block_on(live::gather(desired, &self.client, options))?)
    }
}

/// The Worker and database names other environments declare, so a plan does not report them
/// as unmanaged. An environment that does not load is skipped: it is `validate`'s to report.
fn declared_elsewhere(global: &Global, environment: &str) -> std::collections::BTreeSet<String> {
    let Ok(files) = manifest::environment_files(&global.dir) else {
        return Default::default();
    };
    files
        .iter()
        .filter(|(name, _)| name != environment)
        .filter_map(|(name, _)| manifest::load_valid(&global.dir, name).ok())
        .flat_map(|m| {
            let workers = m.workers.into_values().map(|w| w.name);
            let databases = m.d1_databases.into_values().map(|d| d.name);
            workers.chain(databases).collect::<Vec<_>>()
        })
        .collect()
}

/// Write a file whole or not at all: a temporary file beside it, then a rename.
fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> Result<(), Error> {
    let fail = |source| Error::FileWrite {
        path: path.to_owned(),
        source,
    };
    let file_name = path.file_name().unwrap_or_default().to_string_lossy();
    let temporary = path.with_file_name(format!(".{file_name}.tmp"));
    std::fs::write(&temporary, bytes).map_err(fail)?;
    std::fs::rename(&temporary, path).map_err(fail)
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
        d1_query_non_atomic: args.d1_query_non_atomic,
        corrupt_imports: args.corrupt_imports,
        ..Default::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| Error::Runtime { source })?;
    runtime.block_on(crate::sandbox::run(config, async {
        let _ = tokio::signal::ctrl_c().await;
    }))?;
    Ok(Outcome::Success)
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
    /// The account id (default: the configuration's `account_id`).
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
    #[arg(value_name = "ENV")]
    pub environment: String,
    /// The Worker's key (needed when the manifest has more than one).
    #[arg(long, value_name = "KEY")]
    pub worker: Option<String>,
    /// Write the configuration to PATH instead of stdout.
    #[arg(long, value_name = "PATH")]
    pub write: Option<PathBuf>,
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

fn import(global: &Global, args: ImportArgs) -> Result<Outcome, Error> {
    use crate::wrangler::{Import, ImportOptions};
    let config = crate::wrangler::read(&args.path)?;
    let options = ImportOptions {
        environments: args.environments,
        account_id: args.account_id,
        worker_key: args.worker_key,
    };
    let imported = crate::wrangler::import(&config, &options)?;
    let folder = global.dir.join("environments");
    let path = |environment: &str| folder.join(format!("{environment}.yaml"));
    let existing: Vec<String> = imported
        .manifests
        .iter()
        .map(|m| path(&m.environment))
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if !existing.is_empty() && !args.force {
        return Err(crate::wrangler::Error::WouldOverwrite { paths: existing }.into());
    }
    let mut rendered = Vec::new();
    for manifest in &imported.manifests {
        let file = path(&manifest.environment);
        let text = Import::render(manifest);
        manifest::parse_valid(&file.display().to_string(), &manifest.environment, &text)?;
        rendered.push((file, text));
    }
    std::fs::create_dir_all(&folder).map_err(|source| Error::FileWrite {
        path: folder.clone(),
        source,
    })?;
    for (file, text) in rendered {
        write_atomically(&file, text.as_bytes())?;
        if !global.quiet {
            anstream::eprintln!("wrote {}", file.display());
        }
    }
    if !imported.unmapped.is_empty() {
        anstream::eprintln!(
            "not imported (manifests do not describe these; wrangler still deploys them):"
        );
        for (environment, what) in &imported.unmapped {
            anstream::eprintln!("  {environment}: {what}");
        }
    }
    if !global.quiet {
        anstream::eprintln!(
            "next: `lmsinfra validate` shows where the environments differ; add each Worker's required secrets by name"
        );
    }
    Ok(Outcome::Success)
}

fn wrangler_config(global: &Global, args: WranglerConfigArgs) -> Result<Outcome, Error> {
    let desired = manifest::load_valid(&global.dir, &args.environment)?;
    let keys: Vec<&String> = desired.workers.keys().collect();
    let list = || {
        keys.iter()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let key = match (&args.worker, keys.as_slice()) {
        (Some(key), _) if desired.workers.contains_key(key) => key.clone(),
        (Some(key), _) => {
            return Err(crate::wrangler::Error::WorkerChoice {
                reason: format!("the manifest of {} has no worker `{key}`", args.environment),
                available: list(),
            }
            .into());
        }
        (None, [only]) => (*only).clone(),
        (None, _) => {
            return Err(crate::wrangler::Error::WorkerChoice {
                reason: format!(
                    "the manifest of {} has {} workers and a wrangler configuration describes one",
                    args.environment,
                    keys.len()
                ),
                available: list(),
            }
            .into());
        }
    };
    let account = Account::connect(global, &desired)?;
    let databases = account
        .runtime
        .block_on(account.client.list_d1())?
        .into_iter()
        .map(Into::into)
        .collect::<Vec<live::LiveDatabase>>();
    let config = crate::wrangler::export(&desired, &key, &databases, args.main.as_deref())?;
    let text = serde_json::to_string_pretty(&config).expect("a configuration serialises to JSON");
    match &args.write {
        Some(path) => {
            write_atomically(path, format!("{text}\n").as_bytes())?;
            if !global.quiet {
                anstream::eprintln!("wrote {}", path.display());
            }
        }
        None => print_stdout(&text)?,
    }
    Ok(Outcome::Success)
}

fn completions(args: CompletionsArgs) -> Result<Outcome, Error> {
    use clap::CommandFactory;
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "lmsinfra", &mut script);
    print_stdout(String::from_utf8_lossy(&script).trim_end())?;
    Ok(Outcome::Success)
}

fn man(args: ManArgs) -> Result<Outcome, Error> {
    use clap::CommandFactory;
    let command = Cli::command();
    let Some(dir) = args.write else {
        let mut page = Vec::new();
        clap_mangen::Man::new(command)
            .render(&mut page)
            .expect("a man page renders into memory");
        print_stdout(String::from_utf8_lossy(&page).trim_end())?;
        return Ok(Outcome::Success);
    };
    std::fs::create_dir_all(&dir).map_err(|source| Error::FileWrite {
        path: dir.clone(),
        source,
    })?;
    clap_mangen::generate_to(command, &dir).map_err(|source| Error::FileWrite {
        path: dir.clone(),
        source,
    })?;
    Ok(Outcome::Success)
}
