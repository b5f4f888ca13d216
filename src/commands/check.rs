//! `lmsinfra check`: the security report of an environment.

use super::probe_options;
use crate::account::Account;
use crate::address::Address;
use crate::backup;
use crate::check::Finding;
use crate::check::capacity::{self, Capacity};
use crate::cli::{CheckArgs, ReportFormat};
use crate::cloudflare::Client;
use crate::error::{Error, Outcome};
use crate::live::Live;
use crate::manifest::{self, Manifest};
use crate::printer::Printer;
use crate::settings::Settings;

pub(super) fn check(
    settings: &Settings,
    printer: Printer,
    args: CheckArgs,
) -> Result<Outcome, Error> {
    let desired = manifest::load_valid(&settings.dir, &args.environment)?;
    let account = Account::connect(settings, &desired)?;
    let options = probe_options(args.no_probe);
    let live = account.gather(&desired, options)?;
    let plan_requests = account.client.requests_sent();
    let mut report = crate::check::report(&desired, &live, args.min_grade);
    crate::check::require_a_grade(&mut report, args.no_probe);
    let rotations = rotation_policy(&account, &desired)?;
    let rotation_passed = rotations
        .iter()
        .all(|s| s.verdict != crate::rotation::Verdict::Fail);
    let ages = account
        .runtime
        .block_on(backup_ages(&account.client, &desired))?;
    report.passed &= ages.iter().all(|finding| finding.passed);
    report.checks.extend(ages);
    let migrations = crate::migrations::read_all(&settings.dir, &desired)?;
    let report = report.with_capacity(capacity(
        &account,
        &desired,
        &live,
        plan_requests,
        migrations,
    )?);
    let text = match args.format {
        ReportFormat::Text if rotations.is_empty() => crate::check::text(&report),
        ReportFormat::Text => format!(
            "{}\nSecret rotation\n{}",
            crate::check::text(&report),
            super::secrets::text(&rotations)
        ),
        ReportFormat::Json => {
            let mut document = serde_json::to_value(&report).expect("a report serialises to JSON");
            if !rotations.is_empty() {
                document["rotations"] =
                    serde_json::to_value(&rotations).expect("rotation statuses serialise");
            }
            serde_json::to_string_pretty(&document).expect("a report serialises to JSON")
        }
    };
    printer.data(&text)?;
    Ok(if report.passed && rotation_passed {
        Outcome::Success
    } else {
        Outcome::Blocked
    })
}

/// For each database whose manifest sets `backup.max_age_hours`: how old its newest backup in R2
/// is, failing when older than that or when there is none.
async fn backup_ages(client: &Client, desired: &Manifest) -> Result<Vec<Finding>, Error> {
    let mut findings = Vec::new();
    for (key, database) in &desired.d1_databases {
        let Some(policy) = &database.backup else {
            continue;
        };
        let (Some(r2), Some(max_age_hours)) = (&policy.r2, policy.max_age_hours) else {
            continue;
        };
        let prefix = backup::r2_prefix(r2, &database.name);
        let objects = client.r2_list(&r2.bucket, &prefix).await?;
        let limit = jiff::SignedDuration::from_hours(i64::from(max_age_hours));
        let (passed, message) = match backup::newest(&objects, jiff::Timestamp::now()) {
            Some(newest) => (
                newest.age <= limit,
                format!(
                    "newest backup {}/{} is {} old (at most {max_age_hours} h)",
                    r2.bucket,
                    newest.key,
                    backup::hours(newest.age)
                ),
            ),
            None => (
                false,
                format!(
                    "no backup under {}/{prefix}; run `lmsinfra backup {} --db {key}`",
                    r2.bucket, desired.environment
                ),
            ),
        };
        findings.push(Finding {
            check: "backup-age",
            address: Address::D1 { key: key.clone() },
            passed,
            message,
        });
    }
    Ok(findings)
}

/// The capacity findings: the reads they need beyond the plan's, and the cost of the apply
/// the live account calls for now, with every required secret given and the pending
/// `migrations` run.
fn capacity(
    account: &Account,
    desired: &Manifest,
    live: &Live,
    plan_requests: u64,
    migrations: std::collections::BTreeMap<String, crate::migrations::MigrationSet>,
) -> Result<Capacity, Error> {
    let readings = account
        .runtime
        .block_on(capacity::read(desired, live, &account.client))?;
    let options = crate::plan::DiffOptions {
        supplied_secrets: desired
            .workers
            .values()
            .flat_map(|w| w.secrets.iter().cloned())
            .collect(),
        migrations,
        ..crate::plan::DiffOptions::default()
    };
    let steps = crate::apply::steps(&crate::plan::diff(desired, live, &options));
    let apply_requests = capacity::apply_requests(plan_requests, &steps);
    Ok(capacity::assess(
        desired,
        live,
        &readings,
        plan_requests,
        apply_requests,
    ))
}

/// The rotation state of the secrets that have a rotation policy (none when no secret has one).
fn rotation_policy(
    account: &Account,
    desired: &manifest::Manifest,
) -> Result<Vec<crate::rotation::SecretStatus>, Error> {
    if desired
        .workers
        .values()
        .all(|w| w.secrets.rotated().next().is_none())
    {
        return Ok(Vec::new());
    }
    let statuses = super::secrets::rotation_statuses(account, desired)?;
    Ok(statuses
        .into_iter()
        .filter(|s| s.strategy.is_some())
        .collect())
}
