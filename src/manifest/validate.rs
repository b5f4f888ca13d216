//! The rules a well-typed manifest must still follow: references, names, dates, URLs.
//!
//! Every rule runs and every problem is reported; nothing stops at the first one.

use std::collections::HashMap;

use jiff::civil::Date;

use super::diagnostic::{Problem, did_you_mean};
use super::model::{
    Binding, BindingEntry, Manifest, RateLimits, SimpleLimit, Strategy, Worker, parse_duration,
};
use super::naming;
use super::parity::Compared;
use super::span::NodePath;

/// What a manifest is checked against besides itself.
pub(crate) struct Context<'a> {
    /// The environment the file's name says this is.
    pub(crate) environment: &'a str,
    /// Today (UTC): compatibility dates after it are rejected.
    pub(crate) today: Date,
    /// Database keys declared in the file whose definition has errors of its own: references
    /// to them are not reported again as undeclared.
    pub(crate) broken_databases: &'a [String],
}

fn path(parts: &[&str]) -> NodePath {
    parts.iter().map(|part| (*part).to_owned()).collect()
}

/// Check `manifest`, returning every problem found.
pub(crate) fn validate(manifest: &Manifest, context: &Context<'_>) -> Vec<Problem> {
    let mut problems = Vec::new();
    if manifest.environment != context.environment {
        problems.push(
            Problem::error(
                "manifest::environment-mismatch",
                path(&["environment"]),
                format!(
                    "`environment` is `{}` but the file is `{}.yaml`",
                    manifest.environment, context.environment
                ),
            )
            .label(format!("expected `{}`", context.environment))
            .help(format!(
                "set `environment: {}`, or rename the file to `{}.yaml`",
                context.environment, manifest.environment
            )),
        );
    }
    let hex = |c: char| c.is_ascii_digit() || ('a'..='f').contains(&c);
    if manifest.account_id.len() != 32 || !manifest.account_id.chars().all(hex) {
        problems.push(
            Problem::error(
                "manifest::account-id",
                path(&["account_id"]),
                "`account_id` is not a Cloudflare account id",
            )
            .label("expected 32 lowercase hexadecimal characters")
            .help("copy the account id from the Cloudflare dashboard (Workers & Pages → Account details)"),
        );
    }
    for (key, database) in &manifest.d1_databases {
        if let Err(reason) = naming::d1_database_name(&database.name) {
            problems.push(
                Problem::error(
                    "manifest::d1-name",
                    path(&["d1_databases", key, "name"]),
                    format!("`{}` is not a valid D1 database name: {reason}", database.name),
                )
                .label("invalid D1 database name")
                .help("D1 names use lowercase letters, digits, `-` and `_`, start with a letter or digit, at most 64 characters"),
            );
        }
        if let Some(migrations) = &database.migrations {
            let table = &migrations.table;
            let plain = table
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && table.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !plain || table == super::model::FACTS_TABLE {
                problems.push(
                    Problem::error(
                        "manifest::migrations-table",
                        path(&["d1_databases", key, "migrations", "table"]),
                        format!("`{table}` cannot be the migrations ledger"),
                    )
                    .label("not a plain SQL name, or lmsinfra's own table")
                    .help("wrangler writes the name into its SQL unquoted: use letters, digits and `_`, starting with a letter (wrangler's default is d1_migrations)"),
                );
            }
            let directory = std::path::Path::new(&migrations.directory);
            let outside = directory.is_absolute()
                || directory
                    .components()
                    .any(|c| matches!(c, std::path::Component::ParentDir));
            if outside || migrations.directory.trim().is_empty() {
                problems.push(
                    Problem::error(
                        "manifest::migrations-directory",
                        path(&["d1_databases", key, "migrations", "directory"]),
                        format!(
                            "`{}` is not a folder inside the project",
                            migrations.directory
                        ),
                    )
                    .label("outside the project")
                    .help("give the folder relative to the project root, e.g. `migrations`"),
                );
            }
        }
        if let Some(backup) = &database.backup {
            check_backup(key, backup, &mut problems);
        }
    }
    for (key, worker) in &manifest.workers {
        check_worker(manifest, key, worker, context, &mut problems);
    }
    unbound_databases(manifest, &mut problems);
    duplicate_physical_names(manifest, &mut problems);
    problems.extend(super::limits::check(manifest));
    for (index, address) in manifest.parity.ignore.iter().enumerate() {
        if let Err(reason) = address.parse::<Compared>() {
            problems.push(
                Problem::error(
                    "manifest::parity-address",
                    path(&["parity", "ignore", &index.to_string()]),
                    format!("`{address}` is not an address: {reason}"),
                )
                .label("not an address")
                .help("addresses look like `d1.KEY`, `worker.KEY`, `worker.KEY.binding.NAME`, `worker.KEY.secret.NAME`, `worker.KEY.headers.NAME`"),
            );
        }
    }
    let capacity = &manifest.capacity;
    let percent = |p: f64| p > 0.0 && p <= 100.0;
    if !percent(capacity.warn_percent)
        || !percent(capacity.fail_percent)
        || capacity.warn_percent > capacity.fail_percent
    {
        problems.push(
            Problem::error(
                "manifest::capacity-thresholds",
                path(&["capacity"]),
                format!(
                    "capacity thresholds warn at {}% and fail at {}%",
                    capacity.warn_percent, capacity.fail_percent
                ),
            )
            .label("thresholds out of order")
            .help("both are percentages above 0 and at most 100, and `warn_percent` is at most `fail_percent`"),
        );
    }
    problems
}

fn check_backup(key: &str, backup: &super::model::Backup, problems: &mut Vec<Problem>) {
    if let Some(r2) = &backup.r2 {
        let valid = (3..=63).contains(&r2.bucket.len())
            && r2
                .bucket
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !r2.bucket.starts_with('-')
            && !r2.bucket.ends_with('-');
        if !valid {
            problems.push(
                Problem::error(
                    "manifest::backup-bucket",
                    path(&["d1_databases", key, "backup", "r2", "bucket"]),
                    format!("`{}` is not an R2 bucket name", r2.bucket),
                )
                .label("invalid R2 bucket name")
                .help("R2 bucket names are 3 to 63 lowercase letters, digits and `-`, not starting or ending with `-`"),
            );
        }
    }
    match backup.max_age_hours {
        Some(0) => problems.push(
            Problem::error(
                "manifest::backup-max-age",
                path(&["d1_databases", key, "backup", "max_age_hours"]),
                "`max_age_hours` is 0: no backup is ever that fresh",
            )
            .label("expected 1 or more")
            .help("a nightly backup fits `max_age_hours: 26` (a day, plus slack for a slow run)"),
        ),
        Some(_) if backup.r2.is_none() => problems.push(
            Problem::error(
                "manifest::backup-max-age",
                path(&["d1_databases", key, "backup", "max_age_hours"]),
                "`max_age_hours` needs `backup.r2`: `check` reads the newest backup's age from R2",
            )
            .label("no `r2` to read backups from")
            .help("add `r2: {bucket: NAME}` beside it"),
        ),
        _ => {}
    }
}

fn check_worker(
    manifest: &Manifest,
    key: &str,
    worker: &Worker,
    context: &Context<'_>,
    problems: &mut Vec<Problem>,
) {
    if let Err(reason) = naming::script_name(&worker.name) {
        problems.push(
            Problem::error(
                "manifest::script-name",
                path(&["workers", key, "name"]),
                format!("`{}` is not a valid Worker script name: {reason}", worker.name),
            )
            .label("invalid script name")
            .help("script names use lowercase letters, digits and dashes, at most 63 characters, no dash at either end"),
        );
    }
    if let Some(problem) = compatibility_date(&worker.compatibility_date, context.today) {
        problems.push(
            Problem::error(
                "manifest::compatibility-date",
                path(&["workers", key, "compatibility_date"]),
                format!(
                    "`{}` is not a valid compatibility date: {problem}",
                    worker.compatibility_date
                ),
            )
            .label("expected a date up to today, YYYY-MM-DD")
            .help("use the date the Worker's code was last tested against, e.g. \"2024-12-01\"; Cloudflare rejects dates after today"),
        );
    }
    // Names the code sees on `env`: first use by path, for duplicate detection.
    let mut seen: HashMap<&str, NodePath> = HashMap::new();
    for (name, entry) in worker.bindings.entries() {
        let at = path(&["workers", key, "bindings", name]);
        check_identifier(name, NameOf::Binding, at.clone(), problems);
        seen.entry(name.as_str()).or_insert_with(|| at.clone());
        let binding = match entry {
            BindingEntry::Declared(binding) => binding,
            BindingEntry::Absent(absent) => {
                if !absent.absent {
                    problems.push(absent_false(path(&[
                        "workers", key, "bindings", name, "absent",
                    ])));
                }
                continue;
            }
        };
        match binding {
            Binding::D1 { database } => {
                let declared = manifest.d1_databases.contains_key(database)
                    || context.broken_databases.contains(database);
                if !declared {
                    let mut problem = Problem::error(
                        "manifest::undeclared-database",
                        path(&["workers", key, "bindings", name, "database"]),
                        format!("binding `{name}` names database `{database}`, which `d1_databases` does not declare"),
                    )
                    .label("undeclared database");
                    let keys = manifest.d1_databases.keys().map(String::as_str);
                    problem = match did_you_mean(database, keys) {
                        Some(close) => problem.help(format!("did you mean `{close}`?")),
                        None => problem.help(format!(
                            "declare `{database}` under `d1_databases`, or use one of its keys"
                        )),
                    };
                    problems.push(problem);
                } else if manifest
                    .d1_databases
                    .get(database)
                    .is_some_and(|db| db.absent)
                {
                    problems.push(
                        Problem::error(
                            "manifest::binding-to-absent-database",
                            path(&["workers", key, "bindings", name, "database"]),
                            format!("binding `{name}` names database `{database}`, which is marked `absent: true`"),
                        )
                        .label("database marked absent")
                        .help("bind another database, or remove `absent: true` to keep this one"),
                    );
                }
            }
            Binding::PlainText { .. } => {
                if let Some(suffix) = naming::credential_suffix(name) {
                    problems.push(
                        Problem::error(
                            "manifest::credential-in-plain-text",
                            at.clone(),
                            format!("plain-text binding `{name}` looks like a credential (its name ends in {suffix})"),
                        )
                        .on_key()
                        .label("credential in plain text")
                        .help(format!("remove the binding and list `{name}` under `secrets`; set its value with `lmsinfra apply --secret {name}=env:VAR`")),
                    );
                }
            }
            Binding::Ratelimit {
                namespace_id,
                simple,
            } => check_ratelimit_binding(&at, namespace_id, simple, problems),
            Binding::KvNamespace { .. } | Binding::R2Bucket { .. } | Binding::Service { .. } => {}
        }
    }
    for (index, entry) in worker.secrets.entries().enumerate() {
        let at = path(&["workers", key, "secrets", &index.to_string()]);
        let name = entry.name();
        check_identifier(name, NameOf::Secret, at.clone(), problems);
        match seen.get(name.as_str()) {
            Some(first) => {
                let message = if first.contains(&"bindings".to_owned()) {
                    format!("`{name}` is both a binding and a secret of worker `{key}`")
                } else {
                    format!("secret `{name}` is listed twice in worker `{key}`")
                };
                problems.push(
                    Problem::error("manifest::duplicate-name", at, message)
                    .label("second use")
                    .help("each binding and secret of a Worker needs its own name; rename or remove one"),
                );
            }
            None => {
                seen.insert(name, at);
            }
        }
    }
    check_rotations(key, worker, problems);
    if let Some(headers) = &worker.headers {
        check_probe_url(
            &headers.url,
            path(&["workers", key, "headers", "url"]),
            problems,
        );
        for name in headers.require.keys() {
            if let Err(reason) = naming::header_name(name) {
                problems.push(
                    Problem::error(
                        "manifest::header-name",
                        path(&["workers", key, "headers", "require", name]),
                        format!("`{name}` is not a valid HTTP header name: {reason}"),
                    )
                    .on_key()
                    .label("invalid header name")
                    .help("header names are RFC 9110 tokens: letters, digits and !#$%&'*+-.^_`|~, no spaces or colons"),
                );
            }
        }
    }
    for (index, route) in worker.routes.iter().enumerate() {
        if let Err(reason) = naming::route_pattern(&route.zone, &route.pattern) {
            problems.push(
                Problem::error(
                    "manifest::route-pattern",
                    path(&["workers", key, "routes", &index.to_string(), "pattern"]),
                    format!(
                        "`{}` is not a route pattern on zone `{}`: {reason}",
                        route.pattern, route.zone
                    ),
                )
                .label("invalid route pattern")
                .help("a route pattern is a host on the zone and a path, e.g. `api.example.com/*`"),
            );
        }
    }
    if let Some(limits) = &worker.rate_limits {
        check_rate_limits(key, worker, limits, problems);
    }
    if let Some(smoke) = &worker.smoke {
        super::smoke::check(key, smoke, problems);
    }
    let rate = worker
        .observability
        .as_ref()
        .and_then(|o| o.head_sampling_rate);
    if let Some(rate) = rate.filter(|rate| !(0.0..=1.0).contains(rate)) {
        problems.push(
            Problem::error(
                "manifest::head-sampling-rate",
                path(&["workers", key, "observability", "head_sampling_rate"]),
                format!("`{rate}` is not a share of requests"),
            )
            .label("expected a number from 0 to 1")
            .help("1 logs every request, 0.1 one in ten"),
        );
    }
}

/// Cloudflare's allowed rate-limit counting periods, in seconds (`cloudflare-api/FIDELITY.md`
/// §5; 86400 is a mitigation timeout only, a period stops at 65535). Which of them a zone can
/// use depends on its plan, which `plan` checks.
pub(crate) const RATE_LIMIT_PERIODS: [u32; 20] = [
    10, 15, 20, 30, 40, 45, 60, 90, 120, 180, 240, 300, 480, 600, 900, 1200, 1800, 2400, 3600,
    65535,
];

/// Cloudflare's allowed mitigation timeouts, in seconds.
pub(crate) const RATE_LIMIT_TIMEOUTS: [u32; 21] = [
    10, 15, 20, 30, 40, 45, 60, 90, 120, 180, 240, 300, 480, 600, 900, 1200, 1800, 2400, 3600,
    65535, 86400,
];

fn check_rate_limits(key: &str, worker: &Worker, limits: &RateLimits, problems: &mut Vec<Problem>) {
    let at = |field: &str| path(&["workers", key, "rate_limits", field]);
    if worker.routes.is_empty() {
        problems.push(
            Problem::error(
                "manifest::rate-limits-without-routes",
                path(&["workers", key, "rate_limits"]),
                format!("worker `{key}` has `rate_limits` but no `routes`"),
            )
            .on_key()
            .label("nothing to limit")
            .help("rate limits are enforced on a zone's routes: add `routes: [{zone: …, pattern: …}]`"),
        );
    }
    for (field, value) in [
        ("requests", limits.requests),
        ("mitigation_timeout", limits.mitigation_timeout),
    ] {
        if value == 0 {
            problems.push(
                Problem::error(
                    "manifest::rate-limit-value",
                    at(field),
                    format!("`{field}` must be positive"),
                )
                .label("expected a number above 0")
                .help("e.g. `requests: 100`, `mitigation_timeout: 60`"),
            );
        }
    }
    if !RATE_LIMIT_PERIODS.contains(&limits.period) {
        problems.push(
            Problem::error(
                "manifest::rate-limit-period",
                at("period"),
                format!("`{}` is not a period Cloudflare allows", limits.period),
            )
            .label("not an allowed period")
            .help(format!("use one of {}", seconds_list(&RATE_LIMIT_PERIODS))),
        );
    }
    if limits.mitigation_timeout != 0 && !RATE_LIMIT_TIMEOUTS.contains(&limits.mitigation_timeout) {
        problems.push(
            Problem::error(
                "manifest::rate-limit-timeout",
                at("mitigation_timeout"),
                format!(
                    "`{}` is not a mitigation timeout Cloudflare allows",
                    limits.mitigation_timeout
                ),
            )
            .label("not an allowed timeout")
            .help(format!("use one of {}", seconds_list(&RATE_LIMIT_TIMEOUTS))),
        );
    }
    for (index, prefix) in limits.paths.iter().enumerate() {
        if !prefix.starts_with('/') {
            problems.push(
                Problem::error(
                    "manifest::rate-limit-path",
                    path(&["workers", key, "rate_limits", "paths", &index.to_string()]),
                    format!("`{prefix}` is not a path prefix"),
                )
                .label("expected a path starting with `/`")
                .help(format!("write it as `/{}`", prefix.trim_start_matches('/'))),
            );
        }
    }
}

/// The periods a Workers rate-limiting binding may count over, in seconds.
const RATELIMIT_BINDING_PERIODS: [u32; 2] = [10, 60];

fn check_ratelimit_binding(
    at: &[String],
    namespace_id: &str,
    simple: &SimpleLimit,
    problems: &mut Vec<Problem>,
) {
    let field = |names: &[&str]| {
        let mut path = at.to_vec();
        path.extend(names.iter().map(|n| (*n).to_owned()));
        path
    };
    let positive = namespace_id.parse::<u64>().is_ok_and(|id| id > 0);
    if !positive {
        problems.push(
            Problem::error(
                "manifest::ratelimit-namespace",
                field(&["namespace_id"]),
                format!("`{namespace_id}` is not a rate-limiting namespace id"),
            )
            .label("expected a positive integer")
            .help("pick a positive integer, as a string, that no other rate limit on the account uses, e.g. `namespace_id: \"1001\"`"),
        );
    }
    if simple.limit == 0 {
        problems.push(
            Problem::error(
                "manifest::ratelimit-limit",
                field(&["simple", "limit"]),
                "`limit` must be positive".to_owned(),
            )
            .label("expected a number above 0")
            .help("e.g. `simple: { limit: 100, period: 60 }`"),
        );
    }
    if !RATELIMIT_BINDING_PERIODS.contains(&simple.period) {
        problems.push(
            Problem::error(
                "manifest::ratelimit-period",
                field(&["simple", "period"]),
                format!(
                    "`{}` is not a period a rate-limiting binding allows",
                    simple.period
                ),
            )
            .label("not 10 or 60")
            .help("a rate-limiting binding counts over 10 or 60 seconds"),
        );
    }
}

/// `10, 15, … or 86400 seconds`.
fn seconds_list(values: &[u32]) -> String {
    let (last, rest) = values.split_last().unwrap_or((&0, &[]));
    let rest: Vec<String> = rest.iter().map(u32::to_string).collect();
    format!("{} or {last} seconds", rest.join(", "))
}

/// Whether a name belongs to a binding (a mapping key) or a secret (a list item).
#[derive(Clone, Copy)]
enum NameOf {
    Binding,
    Secret,
}

/// A rotation's fields must fit its strategy: a Stream key names its key-id secret (another
/// required secret of the Worker) and an overlap; durations read as `N` and `m`, `h` or `d`.
fn check_rotations(key: &str, worker: &Worker, problems: &mut Vec<Problem>) {
    for (index, name, rotation) in worker.secrets.rotated() {
        let index = index.to_string();
        let at = |field: &str| path(&["workers", key, "secrets", &index, "rotation", field]);
        let stream = rotation.strategy == Strategy::StreamSigningKey;
        for (field, text) in [
            ("overlap", &rotation.overlap),
            ("stuck_after", &rotation.stuck_after),
        ] {
            if let Some(Err(reason)) = text.as_deref().map(parse_duration) {
                problems.push(
                    Problem::error("manifest::rotation-duration", at(field), reason)
                        .label("not a duration")
                        .help("write a whole number and a unit: 90m, 24h or 7d"),
                );
            }
        }
        if rotation.max_age_days == Some(0) {
            problems.push(
                Problem::error(
                    "manifest::rotation-max-age",
                    at("max_age_days"),
                    format!("secret `{name}` may not be 0 days old"),
                )
                .label("zero days")
                .help("give the number of days after which `check` fails, 1 or more"),
            );
        }
        if stream {
            match &rotation.key_id_secret {
                None => problems.push(
                    Problem::error(
                        "manifest::rotation-field",
                        at("strategy"),
                        format!("secret `{name}` rotates a Stream signing key but names no `key_id_secret`"),
                    )
                    .label("key id secret missing")
                    .help("add `key_id_secret: CLOUDFLARE_STREAM_SIGNING_KEY_ID` (the secret holding the key's id)"),
                ),
                Some(id) if id == name || !worker.secrets.contains(id) => problems.push(
                    Problem::error(
                        "manifest::rotation-field",
                        at("key_id_secret"),
                        format!("`key_id_secret` `{id}` is not another required secret of worker `{key}`"),
                    )
                    .label("not a required secret")
                    .help(format!("list `{id}` under `secrets` too; it is rotated in the same write as `{name}`")),
                ),
                Some(_) => {}
            }
            if rotation.overlap.is_none() {
                problems.push(
                    Problem::error(
                        "manifest::rotation-field",
                        at("strategy"),
                        format!("secret `{name}` rotates a Stream signing key but gives no `overlap`"),
                    )
                    .label("overlap missing")
                    .help("add `overlap: 24h`, at least the longest lifetime of a token the Worker signs"),
                );
            }
        } else {
            for (field, given) in [
                ("key_id_secret", rotation.key_id_secret.is_some()),
                ("overlap", rotation.overlap.is_some()),
            ] {
                if given {
                    problems.push(
                        Problem::error(
                            "manifest::rotation-field",
                            at(field),
                            format!(
                                "`{field}` belongs to `strategy: stream_signing_key`, not `{}`",
                                rotation.strategy.as_str()
                            ),
                        )
                        .on_key()
                        .label("not used by this strategy")
                        .help(format!("remove `{field}`")),
                    );
                }
            }
        }
    }
}

/// Warn about a database that no Worker of the manifest binds: the code cannot reach it, which
/// is how a Worker left without its `DB` binding shows in the manifest.
fn unbound_databases(manifest: &Manifest, problems: &mut Vec<Problem>) {
    let d1_bindings = || {
        manifest
            .workers
            .values()
            .flat_map(|worker| worker.bindings.iter())
            .filter_map(|(_, binding)| match binding {
                Binding::D1 { database } => Some(database),
                _ => None,
            })
    };
    // A binding to an undeclared database is already an error, most likely a misspelt key.
    if d1_bindings().any(|database| !manifest.d1_databases.contains_key(database)) {
        return;
    }
    for (key, database) in manifest.d1_databases.iter().filter(|(_, d)| !d.absent) {
        if !d1_bindings().any(|database| database == key) {
            problems.push(
                Problem::error(
                    "manifest::unbound-database",
                    path(&["d1_databases", key]),
                    format!("no Worker binds database `{key}` ({})", database.name),
                )
                .on_key()
                .warning()
                .label("bound by no Worker")
                .help(format!("bind it where the code uses it (`DB: {{ type: d1, database: {key} }}` under a Worker's bindings), or mark it `absent: true` if it is no longer needed")),
            );
        }
    }
}

/// A binding's `absent: false`, which says nothing: a binding is kept by writing it.
fn absent_false(at: NodePath) -> Problem {
    Problem::error(
        "manifest::absent-false",
        at,
        "`absent: false` keeps nothing: a binding is kept by writing it, and removed with `absent: true`",
    )
    .label("only `true` is allowed")
    .help("to keep the binding, write it (`type: …` and its fields); to remove it, write `absent: true`")
}

fn check_identifier(name: &str, of: NameOf, at: NodePath, problems: &mut Vec<Problem>) {
    let Err(reason) = naming::js_identifier(name) else {
        return;
    };
    let (code, what) = match of {
        NameOf::Binding => ("manifest::binding-name", "binding"),
        NameOf::Secret => ("manifest::secret-name", "secret"),
    };
    let problem = Problem::error(
        code,
        at,
        format!("`{name}` is not a valid {what} name: {reason}"),
    )
    .label(format!("invalid {what} name"))
    .help("binding and secret names are JavaScript identifiers, e.g. `API_TOKEN`");
    problems.push(match of {
        NameOf::Binding => problem.on_key(),
        NameOf::Secret => problem,
    });
}

/// Why `text` is not a usable compatibility date, if it is not.
fn compatibility_date(text: &str, today: Date) -> Option<String> {
    let shaped = text.len() == 10
        && text.char_indices().all(|(at, c)| {
            if at == 4 || at == 7 {
                c == '-'
            } else {
                c.is_ascii_digit()
            }
        });
    if !shaped {
        return Some("expected YYYY-MM-DD".to_owned());
    }
    match text.parse::<Date>() {
        Err(_) => Some("no such day".to_owned()),
        Ok(date) if date > today => Some("it is after today (UTC)".to_owned()),
        Ok(_) => None,
    }
}

fn check_probe_url(text: &str, at: NodePath, problems: &mut Vec<Problem>) {
    let reason = match url::Url::parse(text) {
        Err(err) => Some(format!("{err}")),
        Ok(url) => match (url.scheme(), url.host_str()) {
            ("https", Some(_)) => None,
            ("http", Some("localhost" | "127.0.0.1")) => None,
            ("http", _) => {
                Some("plain http is only allowed for localhost and 127.0.0.1".to_owned())
            }
            (scheme, _) => Some(format!("the scheme is `{scheme}`, not https")),
        },
    };
    if let Some(reason) = reason {
        problems.push(
            Problem::error(
                "manifest::probe-url",
                at,
                format!("`{text}` is not a URL lmsinfra can probe: {reason}"),
            )
            .label("expected an https URL")
            .help("probe the deployed Worker over https, e.g. `https://lms-api.example.workers.dev/health`"),
        );
    }
}

/// Two workers (or two databases) with the same physical name would fight over one resource.
fn duplicate_physical_names(manifest: &Manifest, problems: &mut Vec<Problem>) {
    let workers = manifest
        .workers
        .iter()
        .map(|(key, worker)| ("workers", key, &worker.name));
    let databases = manifest
        .d1_databases
        .iter()
        .map(|(key, database)| ("d1_databases", key, &database.name));
    let mut first: HashMap<(&str, &str), &str> = HashMap::new();
    for (section, key, name) in workers.chain(databases) {
        if let Some(other) = first.insert((section, name), key) {
            first.insert((section, name), other);
            problems.push(
                Problem::error(
                    "manifest::duplicate-name",
                    path(&[section, key, "name"]),
                    format!("`{key}` and `{other}` both have the name `{name}`"),
                )
                .label("same name as another")
                .help("give each resource its own name on Cloudflare"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::model::{D1Database, Headers, Observability};

    fn context() -> Context<'static> {
        Context {
            environment: "staging",
            today: Date::constant(2025, 6, 1),
            broken_databases: &[],
        }
    }

    fn manifest() -> Manifest {
        let mut manifest = Manifest {
            environment: "staging".to_owned(),
            account_id: "0123456789abcdef0123456789abcdef".to_owned(),
            d1_databases: Default::default(),
            workers: Default::default(),
            parity: Default::default(),
            capacity: Default::default(),
        };
        manifest.d1_databases.insert(
            "main".to_owned(),
            D1Database {
                name: "lms-db".to_owned(),
                location_hint: None,
                protect: true,
                absent: false,
                migrations: None,
                backup: None,
            },
        );
        let mut worker = Worker {
            name: "lms-api".to_owned(),
            compatibility_date: "2024-12-01".to_owned(),
            compatibility_flags: Vec::new(),
            bindings: Default::default(),
            secrets: vec!["TALLY_WEBHOOK_SECRET".to_owned()].into(),
            headers: Some(Headers {
                url: "https://lms-api.example.workers.dev/health".to_owned(),
                require: [("X-Frame-Options".to_owned(), "DENY".to_owned())]
                    .into_iter()
                    .collect(),
            }),
            routes: Vec::new(),
            rate_limits: None,
            smoke: None,
            observability: None,
        };
        worker.bindings.insert(
            "DB".to_owned(),
            Binding::D1 {
                database: "main".to_owned(),
            },
        );
        manifest.workers.insert("api".to_owned(), worker);
        manifest
    }

    fn codes(manifest: &Manifest) -> Vec<&'static str> {
        validate(manifest, &context())
            .into_iter()
            .map(|p| p.code)
            .collect()
    }

    #[test]
    fn a_correct_manifest_has_no_problems() {
        assert_eq!(codes(&manifest()), Vec::<&str>::new());
    }

    #[test]
    fn typo_in_d1_binding_suggests_database_key() {
        let mut manifest = manifest();
        manifest.workers["api"].bindings["DB"] = Binding::D1 {
            database: "mian".to_owned(),
        };
        let problems = validate(&manifest, &context());
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].help.as_deref(), Some("did you mean `main`?"));
    }

    #[test]
    fn a_backup_needs_an_r2_bucket_name_and_an_age_of_an_hour_or_more() {
        use crate::manifest::model::{Backup, R2Backup};
        let with = |bucket: Option<&str>, max_age_hours: Option<u32>| {
            let mut manifest = manifest();
            manifest.d1_databases.get_mut("main").unwrap().backup = Some(Backup {
                r2: bucket.map(|bucket| R2Backup {
                    bucket: bucket.to_owned(),
                    prefix: None,
                }),
                max_age_hours,
            });
            codes(&manifest)
        };
        assert!(with(Some("lms-backups"), Some(26)).is_empty());
        assert!(with(Some("lms-backups"), None).is_empty());
        assert_eq!(with(Some("LMS_Backups"), None), ["manifest::backup-bucket"]);
        assert_eq!(
            with(Some("lms-backups"), Some(0)),
            ["manifest::backup-max-age"]
        );
        assert_eq!(with(None, Some(26)), ["manifest::backup-max-age"]);
    }

    #[test]
    fn a_binding_to_a_database_marked_absent_is_an_error() {
        let mut manifest = manifest();
        manifest.d1_databases.get_mut("main").unwrap().absent = true;
        assert_eq!(codes(&manifest), ["manifest::binding-to-absent-database"]);
    }

    #[test]
    fn a_name_used_as_binding_and_secret_is_an_error() {
        let mut manifest = manifest();
        manifest.workers["api"].secrets.push("DB".to_owned());
        assert_eq!(codes(&manifest), ["manifest::duplicate-name"]);
    }

    #[test]
    fn credential_in_plain_text_is_an_error() {
        let mut manifest = manifest();
        manifest.workers["api"].bindings.insert(
            "STRIPE_API_KEY".to_owned(),
            Binding::PlainText {
                text: "sk_live".to_owned(),
            },
        );
        assert_eq!(codes(&manifest), ["manifest::credential-in-plain-text"]);
    }

    #[test]
    fn compatibility_dates_must_be_real_and_past() {
        let today = Date::constant(2025, 6, 1);
        assert_eq!(compatibility_date("2025-06-01", today), None);
        assert!(compatibility_date("2025-02-30", today).is_some());
        assert!(compatibility_date("2025-6-1", today).is_some());
        assert!(compatibility_date("2025-06-02", today).is_some());
    }

    #[test]
    fn probe_urls_are_https_except_on_localhost() {
        let mut problems = Vec::new();
        check_probe_url(
            "http://localhost:8787/health",
            NodePath::new(),
            &mut problems,
        );
        check_probe_url("http://127.0.0.1/", NodePath::new(), &mut problems);
        assert!(problems.is_empty());
        check_probe_url("http://lms.example.com/", NodePath::new(), &mut problems);
        check_probe_url("ftp://lms.example.com/", NodePath::new(), &mut problems);
        assert_eq!(problems.len(), 2);
    }

    fn rate_limited(limits: RateLimits) -> Manifest {
        let mut manifest = manifest();
        let worker = &mut manifest.workers["api"];
        worker.routes.push(crate::manifest::model::Route {
            zone: "example.com".to_owned(),
            pattern: "api.example.com/*".to_owned(),
        });
        worker.rate_limits = Some(limits);
        manifest
    }

    fn limits() -> RateLimits {
        RateLimits {
            requests: 100,
            period: 60,
            mitigation_timeout: 60,
            paths: vec!["/api/".to_owned()],
        }
    }

    #[test]
    fn a_correct_rate_limit_has_no_problems() {
        assert_eq!(codes(&rate_limited(limits())), Vec::<&str>::new());
    }

    #[test]
    fn rate_limits_need_positive_numbers_an_allowed_period_and_absolute_paths() {
        let manifest = rate_limited(RateLimits {
            requests: 0,
            period: 25,
            mitigation_timeout: 0,
            paths: vec!["api/".to_owned()],
        });
        assert_eq!(
            codes(&manifest),
            [
                "manifest::rate-limit-value",
                "manifest::rate-limit-value",
                "manifest::rate-limit-period",
                "manifest::rate-limit-path",
            ]
        );
    }

    #[test]
    fn every_period_and_timeout_cloudflare_allows_is_accepted() {
        for (period, mitigation_timeout) in [(15, 20), (20, 30), (30, 86400), (65535, 45)] {
            let manifest = rate_limited(RateLimits {
                period,
                mitigation_timeout,
                ..limits()
            });
            assert_eq!(
                codes(&manifest),
                Vec::<&str>::new(),
                "{period}/{mitigation_timeout}"
            );
        }
        let manifest = rate_limited(RateLimits {
            period: 86400,
            mitigation_timeout: 61,
            ..limits()
        });
        assert_eq!(
            codes(&manifest),
            [
                "manifest::rate-limit-period",
                "manifest::rate-limit-timeout"
            ]
        );
    }

    #[test]
    fn a_ratelimit_binding_needs_a_namespace_a_limit_and_a_period_of_10_or_60() {
        let mut manifest = manifest();
        let binding = |namespace_id: &str, limit, period| Binding::Ratelimit {
            namespace_id: namespace_id.to_owned(),
            simple: SimpleLimit { limit, period },
        };
        let bindings = &mut manifest.workers["api"].bindings;
        bindings.insert("RATE_LIMITER".to_owned(), binding("1001", 100, 60));
        bindings.insert("BURST_LIMITER".to_owned(), binding("1002", 10, 10));
        assert_eq!(codes(&manifest), Vec::<&str>::new());
        manifest.workers["api"]
            .bindings
            .insert("RATE_LIMITER".to_owned(), binding("users", 0, 30));
        assert_eq!(
            codes(&manifest),
            [
                "manifest::ratelimit-namespace",
                "manifest::ratelimit-limit",
                "manifest::ratelimit-period",
            ]
        );
    }

    #[test]
    fn a_head_sampling_rate_is_a_share_from_0_to_1() {
        let mut manifest = manifest();
        for (rate, problems) in [(1.0, 0), (0.0, 0), (0.25, 0), (1.5, 1), (-0.1, 1)] {
            manifest.workers["api"].observability = Some(Observability {
                enabled: true,
                head_sampling_rate: Some(rate),
            });
            assert_eq!(codes(&manifest).len(), problems, "{rate}");
        }
        assert_eq!(codes(&manifest), ["manifest::head-sampling-rate"]);
    }

    #[test]
    fn rate_limits_need_routes() {
        let mut manifest = rate_limited(limits());
        manifest.workers["api"].routes.clear();
        assert_eq!(codes(&manifest), ["manifest::rate-limits-without-routes"]);
    }

    #[test]
    fn a_route_must_be_a_host_on_its_zone_and_a_path() {
        let mut manifest = rate_limited(limits());
        manifest.workers["api"].routes[0].pattern = "https://api.example.org/*".to_owned();
        assert_eq!(codes(&manifest), ["manifest::route-pattern"]);
    }

    #[test]
    fn environment_must_match_the_file_name() {
        let mut manifest = manifest();
        manifest.environment = "production".to_owned();
        assert_eq!(codes(&manifest), ["manifest::environment-mismatch"]);
    }
}
