//! `lmsinfra secrets`: each required secret's rotation state, read from the account.

use crate::account::Account;
use crate::cli::{DiagnosticFormat, SecretsArgs};
use crate::error::{Error, Outcome};
use crate::manifest::model::Strategy;
use crate::manifest::{self, Manifest};
use crate::printer::Printer;
use crate::rotation::{self, SecretStatus, Verdict};
use crate::settings::Settings;

pub(super) fn secrets(
    settings: &Settings,
    printer: Printer,
    args: SecretsArgs,
) -> Result<Outcome, Error> {
    let desired = manifest::load_valid(&settings.dir, &args.environment)?;
    let account = Account::connect(settings, &desired)?;
    let statuses = rotation_statuses(&account, &desired)?;
    let text = match args.format {
        DiagnosticFormat::Text => text(&statuses),
        DiagnosticFormat::Json => {
            serde_json::to_string_pretty(&statuses).expect("statuses serialise to JSON")
        }
    };
    printer.data(&text)?;
    Ok(Outcome::Success)
}

/// The rotation state of every required secret of `desired`, from the live account, now.
pub(super) fn rotation_statuses(
    account: &Account,
    desired: &Manifest,
) -> Result<Vec<SecretStatus>, Error> {
    let client = &account.client;
    account.runtime.block_on(async {
        let streams = desired.workers.values().any(|w| {
            w.secrets
                .rotated()
                .any(|(_, _, r)| r.strategy == Strategy::StreamSigningKey)
        });
        let keys = if streams {
            client.stream_keys().await?
        } else {
            Vec::new()
        };
        let now = jiff::Timestamp::now();
        let mut statuses = Vec::new();
        for (key, worker) in &desired.workers {
            if worker.secrets.is_empty() {
                continue;
            }
            let present: Vec<String> = client
                .get_settings(&worker.name)
                .await?
                .map(|s| {
                    s.bindings
                        .iter()
                        .filter(|b| b.is_secret())
                        .map(|b| b.name().to_owned())
                        .collect()
                })
                .unwrap_or_default();
            let versions = if worker.secrets.rotated().next().is_some() {
                client.annotated_versions(&worker.name).await?
            } else {
                Vec::new()
            };
            for name in &worker.secrets {
                statuses.push(rotation::status(
                    key,
                    name,
                    worker.secrets.rotation(name),
                    present.contains(name),
                    &versions,
                    &keys,
                    now,
                ));
            }
        }
        Ok(statuses)
    })
}

fn or_dash(text: Option<String>) -> String {
    text.unwrap_or_else(|| "-".to_owned())
}

/// One line per secret, then the reasons behind every verdict that is not ok.
pub(super) fn text(statuses: &[SecretStatus]) -> String {
    let header = [
        "WORKER", "SECRET", "SET", "STRATEGY", "GEN", "ROTATED", "AGE", "VERDICT",
    ]
    .map(str::to_owned);
    let rows: Vec<[String; 8]> = statuses
        .iter()
        .map(|s| {
            [
                s.worker.clone(),
                s.secret.clone(),
                if s.present { "yes" } else { "no" }.to_owned(),
                s.strategy.unwrap_or("-").to_owned(),
                or_dash(s.generation.map(|g| g.to_string())),
                or_dash(s.rotated_at.clone()),
                match (s.strategy, s.age_days) {
                    (_, Some(days)) => format!("{days}d"),
                    (Some(_), None) => "unknown".to_owned(),
                    (None, None) => "-".to_owned(),
                },
                match s.verdict {
                    Verdict::Ok => "ok",
                    Verdict::Warn => "warn",
                    Verdict::Fail => "FAIL",
                }
                .to_owned(),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..8)
        .map(|i| {
            rows.iter()
                .map(|r| r[i].len())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String; 8]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:width$}"))
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    let mut out = vec![line(&header)];
    out.extend(rows.iter().map(line));
    for status in statuses {
        if let Some(phase) = &status.in_progress {
            out.push(format!("{}: in progress: {phase}", status.secret));
        }
        for reason in &status.reasons {
            out.push(format!("{}: {reason}", status.secret));
        }
    }
    out.join("\n") + "\n"
}
