//! `lmsinfra rotate`: one phase of a secret's rotation, each a single Worker write.
//!
//! `dual` stages `NAME_NEXT` (the Worker accepts either value), waits for the operator to switch
//! the provider, then promotes: `NAME` = new and `NAME_NEXT` removed in one deployment.
//! `stream_signing_key` creates a Stream key and sets its id and PEM in one deployment (the PEM
//! lives only in memory), and `finish` revokes the old key once `overlap` has passed. Each write
//! is annotated with the rotation's record (`crate::rotation`), never a value.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use crate::account::Account;
use crate::apply;
use crate::cli::{RotateArgs, RotatePhase};
use crate::error::{Error, Outcome};
use crate::manifest::model::{Rotation, Strategy, Worker, parse_duration};
use crate::manifest::{self, Manifest};
use crate::printer::Printer;
use crate::rotation::{Phase, Record, RotateError, records};
use crate::secret::{self, Secret};
use crate::settings::Settings;

fn phase_name(phase: RotatePhase) -> &'static str {
    match phase {
        RotatePhase::Stage => "stage",
        RotatePhase::Promote => "promote",
        RotatePhase::Finish => "finish",
    }
}

pub(super) fn rotate(
    settings: &Settings,
    printer: Printer,
    args: RotateArgs,
) -> Result<Outcome, Error> {
    let desired = manifest::load_valid(&settings.dir, &args.environment)?;
    let Some((worker, rotation)) = desired.workers.values().find_map(|w| {
        w.secrets
            .rotation(&args.secret)
            .map(|rotation| (w.clone(), rotation.clone()))
    }) else {
        return Err(RotateError::NotRotated {
            secret: args.secret.clone(),
            environment: desired.environment.clone(),
        }
        .into());
    };
    let fits = matches!(
        (rotation.strategy, args.phase),
        (_, RotatePhase::Stage)
            | (Strategy::Dual, RotatePhase::Promote)
            | (Strategy::StreamSigningKey, RotatePhase::Finish)
    );
    if !fits {
        return Err(RotateError::WrongPhase {
            secret: args.secret.clone(),
            strategy: rotation.strategy.as_str(),
            phase: phase_name(args.phase),
        }
        .into());
    }
    let account = Account::connect(settings, &desired)?;
    let versions = account
        .runtime
        .block_on(account.client.annotated_versions(&worker.name))?;
    let history: Vec<Record> = records(&versions, &args.secret).collect();
    let rotation_run = Rotate {
        printer,
        account: &account,
        desired: &desired,
        worker: &worker,
        rotation: &rotation,
        args: &args,
        history: &history,
    };
    match (rotation.strategy, args.phase) {
        (Strategy::Dual, RotatePhase::Stage) => rotation_run.dual_stage(),
        (Strategy::Dual, _) => rotation_run.dual_promote(),
        (Strategy::StreamSigningKey, RotatePhase::Stage) => rotation_run.stream_stage(),
        (Strategy::StreamSigningKey, _) => rotation_run.stream_finish(),
    }
}

struct Rotate<'a> {
    printer: Printer,
    account: &'a Account,
    desired: &'a Manifest,
    worker: &'a Worker,
    rotation: &'a Rotation,
    args: &'a RotateArgs,
    /// The secret's records, newest first.
    history: &'a [Record],
}

impl Rotate<'_> {
    fn secret(&self) -> &str {
        &self.args.secret
    }

    /// The generation a new stage records: the manifest's when it asks for more, else one up.
    fn next_generation(&self) -> u32 {
        let recorded = self.history.iter().map(|r| r.generation).max().unwrap_or(0);
        (recorded + 1).max(self.rotation.generation.unwrap_or(0))
    }

    fn record(&self, generation: u32, phase: Phase) -> Record {
        Record {
            secret: self.secret().to_owned(),
            generation,
            phase,
            old_stream_key: None,
            new_stream_key: None,
            version: String::new(),
            at: String::new(),
        }
    }

    /// Without `--auto-approve`, say what the phase would do and stop. With it, the phase's
    /// writes begin: from now on a Ctrl-C lets the phase finish (its writes belong together, a
    /// Stream key and the write that uses it) instead of stopping between them.
    fn approved(&self, what: &str) -> Result<bool, Error> {
        if self.args.auto_approve {
            crate::interrupt::watch(&self.account.runtime)
                .map_err(|source| Error::Runtime { source })?;
            return Ok(true);
        }
        self.printer.notice(format_args!(
            "{what}\nnothing was changed; run again with --auto-approve to do it"
        ));
        Ok(false)
    }

    /// The new value: read as apply reads one, or generated (and revealed only to a file).
    fn new_value(&self, reveal_needed: bool) -> Result<Secret, Error> {
        let secret = self.secret();
        if let Some(bytes) = self.args.generate {
            let Some(path) = &self.args.reveal_to else {
                if reveal_needed {
                    return Err(RotateError::RevealNeeded {
                        secret: secret.to_owned(),
                    }
                    .into());
                }
                return Ok(generated(bytes));
            };
            let value = generated(bytes);
            secret::register([&value]);
            let reveal = |source| RotateError::Reveal {
                secret: secret.to_owned(),
                path: path.clone(),
                source,
            };
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(reveal)?;
            file.write_all(value.expose().as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(reveal)?;
            return Ok(value);
        }
        let Some(arg) = &self.args.value else {
            return Err(RotateError::ValueNeeded {
                secret: secret.to_owned(),
            }
            .into());
        };
        let mut values = apply::read_secrets(
            std::slice::from_ref(arg),
            self.desired,
            |var| std::env::var(var).ok(),
            &mut std::io::stdin(),
        )?;
        secret::register(values.values());
        values.remove(secret).ok_or_else(|| {
            RotateError::ValueNeeded {
                secret: secret.to_owned(),
            }
            .into()
        })
    }

    fn write(
        &self,
        set: &[(&str, &Secret)],
        remove: &[&str],
        record: &Record,
    ) -> Result<(), Error> {
        write_record(
            self.account,
            &self.worker.name,
            set.iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).clone()))
                .collect(),
            remove.iter().map(|name| (*name).to_owned()).collect(),
            record,
        )
    }

    fn dual_stage(&self) -> Result<Outcome, Error> {
        let secret = self.secret();
        let next = format!("{secret}_NEXT");
        let value = self.new_value(true)?;
        let generation = self.next_generation();
        if !self.approved(&format!(
            "would set {next} on {} (generation {generation}), so the Worker accepts the old and the new value",
            self.worker.name
        ))? {
            return Ok(Outcome::Blocked);
        }
        self.write(
            &[(&next, &value)],
            &[],
            &self.record(generation, Phase::Stage),
        )?;
        let source = match &self.args.reveal_to {
            Some(path) => format!("file:{}", path.display()),
            None => "env:VAR".to_owned(),
        };
        self.printer.data(&format!(
            "{next} is set on {worker}: the Worker accepts webhooks signed with the old or the new value.\n\
             Now switch the provider to the new value{file}.\n{provider}\
             When the provider signs with the new value, promote it:\n  \
             lmsinfra rotate {env} {secret} --phase promote --secret {secret}={source} --auto-approve\n",
            worker = self.worker.name,
            file = self
                .args
                .reveal_to
                .as_ref()
                .map(|p| format!(" (in {})", p.display()))
                .unwrap_or_default(),
            provider = provider_steps(secret),
            env = self.desired.environment,
        ))?;
        Ok(Outcome::Success)
    }

    fn dual_promote(&self) -> Result<Outcome, Error> {
        let secret = self.secret();
        let next = format!("{secret}_NEXT");
        let Some(staged) = self.history.first().filter(|r| r.phase == Phase::Stage) else {
            self.printer.notice(format_args!(
                "{secret} has no staged rotation to promote; run `lmsinfra rotate {} {secret} --phase stage` first",
                self.desired.environment
            ));
            return Ok(Outcome::Blocked);
        };
        if self.args.generate.is_some() {
            return Err(RotateError::GenerateAtPromote {
                secret: secret.to_owned(),
            }
            .into());
        }
        let value = self.new_value(false)?;
        if !self.approved(&format!(
            "would set {secret} to the staged value and remove {next} on {}, in one deployment",
            self.worker.name
        ))? {
            return Ok(Outcome::Blocked);
        }
        self.write(
            &[(secret, &value)],
            &[&next],
            &self.record(staged.generation, Phase::Promote),
        )?;
        self.printer.data(&format!(
            "{secret} now holds the new value (generation {}) and {next} is removed: the old value is no longer accepted.\n",
            staged.generation
        ))?;
        Ok(Outcome::Success)
    }

    fn stream_stage(&self) -> Result<Outcome, Error> {
        let secret = self.secret();
        let key_id_secret = self.rotation.key_id_secret.as_deref().unwrap_or_default();
        let generation = self.next_generation();
        let old = self.history.iter().find_map(|r| r.new_stream_key.clone());
        if !self.approved(&format!(
            "would create a Stream signing key and set {key_id_secret} and {secret} on {} in one deployment (generation {generation})",
            self.worker.name
        ))? {
            return Ok(Outcome::Blocked);
        }
        let client = &self.account.client;
        let key = self.account.runtime.block_on(client.create_stream_key())?;
        secret::register([&key.pem]);
        let id = Secret::new(key.id.clone());
        let mut record = self.record(generation, Phase::Stage);
        record.old_stream_key = old.clone();
        record.new_stream_key = Some(key.id.clone());
        if let Err(failed) = self.write(&[(key_id_secret, &id), (secret, &key.pem)], &[], &record) {
            let revoked = self
                .account
                .runtime
                .block_on(client.delete_stream_key(&key.id));
            return Err(match (revoked, failed) {
                (Ok(()), failed) => {
                    self.printer.notice(format_args!(
                        "the Worker write failed, so the new Stream key {} was revoked again",
                        key.id
                    ));
                    failed
                }
                (Err(_), failed) => RotateError::OrphanKey {
                    secret: secret.to_owned(),
                    key: key.id.clone(),
                    reason: failed.to_string(),
                }
                .into(),
            });
        }
        let overlap = self.rotation.overlap.as_deref().unwrap_or("the overlap");
        let next = match &old {
            Some(old) => format!(
                "The old key {old} stays valid; after {overlap}, revoke it:\n  lmsinfra rotate {} {secret} --phase finish --auto-approve\n",
                self.desired.environment
            ),
            None => "No earlier key is recorded, so there is none for `finish` to revoke; revoke an old key by hand once tokens it signed have expired.\n".to_owned(),
        };
        self.printer.data(&format!(
            "{key_id_secret} and {secret} now name Stream key {} on {} (generation {generation}), set in one deployment.\n{next}",
            key.id, self.worker.name
        ))?;
        Ok(Outcome::Success)
    }

    fn stream_finish(&self) -> Result<Outcome, Error> {
        let secret = self.secret();
        let Some((staged, old)) = self
            .history
            .first()
            .and_then(|r| r.old_stream_key.clone().map(|old| (r, old)))
        else {
            self.printer.notice(format_args!(
                "{secret} has no staged key rotation with an old key to revoke"
            ));
            return Ok(Outcome::Blocked);
        };
        let overlap = self.rotation.overlap.as_deref().unwrap_or("24h");
        let needed = parse_duration(overlap).unwrap_or(86_400);
        let waited = staged
            .at
            .parse::<jiff::Timestamp>()
            .map(|at| jiff::Timestamp::now().as_second() - at.as_second())
            .unwrap_or(0);
        if waited < needed {
            let left = needed - waited;
            self.printer.notice(format_args!(
                "refusing to revoke Stream key {old}: it was replaced {}h{:02}m ago and tokens it signed may live for the overlap, {overlap}; {}h{:02}m left",
                waited / 3600,
                waited % 3600 / 60,
                left / 3600,
                left % 3600 / 60
            ));
            return Ok(Outcome::Blocked);
        }
        let client = &self.account.client;
        let keys = self.account.runtime.block_on(client.stream_keys())?;
        if !keys.iter().any(|k| k.id == old) {
            self.printer
                .data(&format!("Stream key {old} is already revoked.\n"))?;
            return Ok(Outcome::Success);
        }
        if !self.approved(&format!("would revoke Stream key {old}"))? {
            return Ok(Outcome::Blocked);
        }
        self.account
            .runtime
            .block_on(client.delete_stream_key(&old))?;
        self.printer.data(&format!(
            "Stream key {old} is revoked; tokens it signed no longer play. A rollback to a version before generation {} would now bring back a revoked key.\n",
            staged.generation
        ))?;
        Ok(Outcome::Success)
    }
}

/// One Worker write (one version, one deployment) that sets `set`, removes `remove`, keeps every
/// other binding and carries `record` as its annotations: apply's single write, used as it is.
pub(super) fn write_record(
    account: &Account,
    script: &str,
    set: std::collections::BTreeMap<String, Secret>,
    remove: Vec<String>,
    record: &Record,
) -> Result<(), Error> {
    let write = apply::execute::WorkerWrite {
        script: script.to_owned(),
        secrets: set,
        remove_secrets: remove,
        annotations: crate::cloudflare::Annotations {
            message: Some(record.message()),
            tag: Some(record.tag()),
            ..Default::default()
        },
        ..Default::default()
    };
    account
        .runtime
        .block_on(async {
            let written = apply::execute::write_worker(
                &account.client,
                &write,
                &std::collections::BTreeMap::new(),
            )
            .await?;
            apply::execute::read_back(&account.client, &written)
                .await
                .map(drop)
        })
        .map_err(|err| match err {
            apply::StepError::Api(err) => err.into(),
            other => RotateError::WriteFailed {
                secret: record.secret.clone(),
                reason: other.to_string(),
            }
            .into(),
        })
}

/// `BYTES` random bytes as hex.
fn generated(bytes: u16) -> Secret {
    let random: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    Secret::new(hex::encode(random))
}

/// Where the operator switches the secret at the provider.
fn provider_steps(secret: &str) -> String {
    if secret.starts_with("TALLY_") {
        "  In Tally: open the form, Integrations, Webhooks, the endpoint's menu, Edit; paste the new value as the signing secret and save.\n".to_owned()
    } else {
        format!(
            "  At the provider that signs with {secret}: replace the signing secret with the new value.\n"
        )
    }
}
