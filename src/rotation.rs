//! What lmsinfra knows about secret rotations, read from the versions' annotations.
//!
//! Cloudflare never says when a secret was set, so each rotation phase annotates the version it
//! creates: `workers/tag` = `rot:<NAME>:g<generation>:<phase>` and `workers/message` = `lmsinfra
//! rotate <NAME> generation <n> phase <phase> [old_stream_key <id>] [new_stream_key <id>]`
//! (names and key ids only, never a value). From the newest such record this module derives
//! each secret's generation, last rotation, age, phase in progress and policy verdict, and
//! which finished rotations a rollback to an older version would undo.

use jiff::Timestamp;
use serde::Serialize;

use crate::cloudflare::rotation::{AnnotatedVersion, StreamKey};
use crate::manifest::model::{DEFAULT_STUCK_AFTER, Rotation, Strategy, UnknownAge, parse_duration};

/// Why `rotate` cannot start. Names secrets, files and key ids, never a value.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum RotateError {
    /// No Worker of the environment requires the secret with a rotation policy.
    #[error("no Worker in {environment} requires {secret} with a `rotation` policy")]
    #[diagnostic(help(
        "give the secret a policy in the manifest: {{name: {secret}, rotation: {{strategy: dual}}}}"
    ))]
    NotRotated {
        /// The secret.
        secret: String,
        /// The environment.
        environment: String,
    },
    /// The phase does not belong to the secret's strategy.
    #[error("{secret} rotates with `{strategy}`, which has no phase `{phase}`")]
    #[diagnostic(help("`dual` has stage and promote; `stream_signing_key` has stage and finish"))]
    WrongPhase {
        /// The secret.
        secret: String,
        /// Its strategy.
        strategy: &'static str,
        /// The phase asked for.
        phase: &'static str,
    },
    /// The phase needs a value and none was given.
    #[error("rotating {secret} needs the new value")]
    #[diagnostic(help(
        "give it as --secret {secret}=env:VAR, file:PATH or stdin, or let lmsinfra make one with --generate BYTES"
    ))]
    ValueNeeded {
        /// The secret.
        secret: String,
    },
    /// `--generate` at promote, which must write the value staged, not a new one.
    #[error("promote writes the value {secret}_NEXT holds, so it cannot be generated")]
    #[diagnostic(help(
        "give the staged value: --secret {secret}=file:FILE with the file --reveal-to wrote"
    ))]
    GenerateAtPromote {
        /// The secret.
        secret: String,
    },
    /// `--generate` for a `dual` secret without a file to give the operator the value.
    #[error("a generated value for {secret} must reach the provider: give --reveal-to FILE")]
    #[diagnostic(help(
        "lmsinfra never prints a secret; --reveal-to writes it to a new file with mode 0600"
    ))]
    RevealNeeded {
        /// The secret.
        secret: String,
    },
    /// The file for `--reveal-to` could not be created.
    #[error("could not create {} for the new value of {secret}", path.display())]
    #[diagnostic(help("give a path that does not exist yet; the file is created with mode 0600"))]
    Reveal {
        /// The secret.
        secret: String,
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The Worker write failed after a Stream key was created, and revoking it failed too.
    #[error(
        "the Worker write for {secret} failed ({reason}) and Stream key {key} could not be revoked: revoke it by hand"
    )]
    #[diagnostic(help("DELETE /accounts/ACCOUNT/stream/keys/{key} once the cause is fixed"))]
    OrphanKey {
        /// The secret.
        secret: String,
        /// The key left behind.
        key: String,
        /// Why the write failed.
        reason: String,
    },
    /// The Worker write of a rotation phase was refused, or lost a binding.
    #[error("the Worker write for {secret} failed: {reason}")]
    WriteFailed {
        /// The secret.
        secret: String,
        /// Why.
        reason: String,
    },
}

/// A rotation phase that creates a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Phase {
    /// `dual`: `NAME_NEXT` set; `stream_signing_key`: the new key id and PEM set.
    Stage,
    /// `dual`: `NAME` set to the new value and `NAME_NEXT` removed.
    Promote,
}

impl Phase {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Stage => "stage",
            Self::Promote => "promote",
        }
    }
}

/// One rotation phase as a version's annotations record it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) secret: String,
    pub(crate) generation: u32,
    pub(crate) phase: Phase,
    pub(crate) old_stream_key: Option<String>,
    pub(crate) new_stream_key: Option<String>,
    pub(crate) version: String,
    pub(crate) at: String,
}

impl Record {
    /// The record of a value written straight to `secret` as `generation` (a promotion).
    pub(crate) fn promoted(secret: &str, generation: u32) -> Record {
        Record {
            secret: secret.to_owned(),
            generation,
            phase: Phase::Promote,
            old_stream_key: None,
            new_stream_key: None,
            version: String::new(),
            at: String::new(),
        }
    }

    /// The `workers/tag` of this phase's version (at most 100 bytes).
    pub(crate) fn tag(&self) -> String {
        let tag = format!(
            "rot:{}:g{}:{}",
            self.secret,
            self.generation,
            self.phase.as_str()
        );
        let mut end = tag.len().min(100);
        while !tag.is_char_boundary(end) {
            end -= 1;
        }
        tag[..end].to_owned()
    }

    /// The `workers/message` of this phase's version.
    pub(crate) fn message(&self) -> String {
        let mut message = format!(
            "lmsinfra rotate {} generation {} phase {}",
            self.secret,
            self.generation,
            self.phase.as_str()
        );
        for (label, id) in [
            ("old_stream_key", &self.old_stream_key),
            ("new_stream_key", &self.new_stream_key),
        ] {
            if let Some(id) = id {
                message.push_str(&format!(" {label} {id}"));
            }
        }
        message
    }

    /// The record a version's `workers/message` holds, if it is one.
    pub(crate) fn read(version: &AnnotatedVersion) -> Option<Record> {
        let words: Vec<&str> = version.message.as_deref()?.split_whitespace().collect();
        let [
            "lmsinfra",
            "rotate",
            secret,
            "generation",
            generation,
            "phase",
            phase,
            rest @ ..,
        ] = words.as_slice()
        else {
            return None;
        };
        let phase = match *phase {
            "stage" => Phase::Stage,
            "promote" => Phase::Promote,
            _ => return None,
        };
        let field = |label: &str| {
            rest.chunks(2)
                .find(|pair| pair.first() == Some(&label))
                .and_then(|pair| pair.get(1))
                .map(|id| (*id).to_owned())
        };
        Some(Record {
            secret: (*secret).to_owned(),
            generation: generation.parse().ok()?,
            phase,
            old_stream_key: field("old_stream_key"),
            new_stream_key: field("new_stream_key"),
            version: version.id.clone(),
            at: version.created_on.clone(),
        })
    }
}

/// The records of `secret`, newest first.
pub(crate) fn records<'a>(
    versions: &'a [AnnotatedVersion],
    secret: &'a str,
) -> impl Iterator<Item = Record> + 'a {
    versions
        .iter()
        .filter_map(Record::read)
        .filter(move |r| r.secret == secret)
}

/// What the policy says of a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Verdict {
    Ok,
    Warn,
    Fail,
}

/// One required secret's rotation state.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SecretStatus {
    pub(crate) worker: String,
    pub(crate) secret: String,
    pub(crate) present: bool,
    pub(crate) strategy: Option<&'static str>,
    /// The generation of the last finished rotation.
    pub(crate) generation: Option<u32>,
    /// The generation the manifest asks for.
    pub(crate) desired_generation: Option<u32>,
    pub(crate) rotated_at: Option<String>,
    pub(crate) age_days: Option<i64>,
    /// The phase a rotation is waiting in, if one is under way.
    pub(crate) in_progress: Option<String>,
    pub(crate) verdict: Verdict,
    pub(crate) reasons: Vec<String>,
}

impl SecretStatus {
    /// Whether the manifest's `generation` is above the last rotation's.
    pub(crate) fn rotation_requested(&self) -> bool {
        self.desired_generation
            .is_some_and(|want| want > self.generation.unwrap_or(0))
    }
}

/// Add `reason` to `status`; a failure outweighs a warning.
fn judge(status: &mut SecretStatus, verdict: Verdict, reason: String) {
    if verdict == Verdict::Fail || status.verdict == Verdict::Ok {
        status.verdict = verdict;
    }
    status.reasons.push(reason);
}

fn since(at: &str, now: Timestamp) -> Option<i64> {
    let at: Timestamp = at.parse().ok()?;
    Some(now.as_second() - at.as_second())
}

/// The rotation state of `secret` (required by `worker`), with `rotation` its policy, from the
/// script's versions (newest first) and the account's Stream keys, at `now`.
pub(crate) fn status(
    worker: &str,
    secret: &str,
    rotation: Option<&Rotation>,
    present: bool,
    versions: &[AnnotatedVersion],
    keys: &[StreamKey],
    now: Timestamp,
) -> SecretStatus {
    let records: Vec<Record> = records(versions, secret).collect();
    let strategy = rotation.map(|r| r.strategy);
    let finished = records.iter().find(|r| match strategy {
        Some(Strategy::Dual) => r.phase == Phase::Promote,
        _ => true,
    });
    let waiting = records.first().and_then(|newest| match strategy {
        Some(Strategy::Dual) if newest.phase == Phase::Stage => Some((
            newest,
            format!(
                "staged g{}: switch the provider, then promote",
                newest.generation
            ),
        )),
        Some(Strategy::StreamSigningKey) => newest
            .old_stream_key
            .as_ref()
            .filter(|old| keys.iter().any(|k| &k.id == *old))
            .map(|old| {
                (
                    newest,
                    format!(
                        "staged g{}: finish revokes key {old} after the overlap",
                        newest.generation
                    ),
                )
            }),
        _ => None,
    });
    let mut status = SecretStatus {
        worker: worker.to_owned(),
        secret: secret.to_owned(),
        present,
        strategy: strategy.map(Strategy::as_str),
        generation: finished.map(|r| r.generation),
        desired_generation: rotation.and_then(|r| r.generation),
        rotated_at: finished.map(|r| r.at.clone()),
        age_days: finished.and_then(|r| since(&r.at, now)).map(|s| s / 86_400),
        in_progress: waiting.as_ref().map(|(_, what)| what.clone()),
        verdict: Verdict::Ok,
        reasons: Vec::new(),
    };
    if !present {
        judge(&mut status, Verdict::Fail, format!("{secret} is not set"));
    }
    let Some(rotation) = rotation else {
        return status;
    };
    match (finished, rotation.max_age_days) {
        (None, _) => {
            let verdict = match rotation.unknown_age {
                Some(UnknownAge::Fail) => Verdict::Fail,
                _ => Verdict::Warn,
            };
            judge(
                &mut status,
                verdict,
                format!(
                    "no rotation of {secret} is recorded, so its age is unknown; rotate it once to start the record"
                ),
            );
        }
        (Some(record), Some(max)) => {
            if let Some(age) = since(&record.at, now)
                && age > i64::from(max) * 86_400
            {
                judge(
                    &mut status,
                    Verdict::Fail,
                    format!(
                        "{secret} was last rotated {} days ago; the policy allows {max}",
                        age / 86_400
                    ),
                );
            }
        }
        (Some(_), None) => {}
    }
    if let Some((record, what)) = &waiting {
        let stuck_after = rotation
            .stuck_after
            .as_deref()
            .unwrap_or(DEFAULT_STUCK_AFTER);
        if let (Ok(limit), Some(waited)) = (parse_duration(stuck_after), since(&record.at, now))
            && waited > limit
        {
            judge(
                &mut status,
                Verdict::Fail,
                format!(
                    "{secret} has been {what} for {} hours, longer than {stuck_after}",
                    waited / 3600
                ),
            );
        }
    }
    if status.rotation_requested() {
        let want = status.desired_generation.unwrap_or_default();
        let recorded = status.generation.unwrap_or(0);
        judge(
            &mut status,
            Verdict::Warn,
            format!("rotation requested: generation {want} in the manifest, {recorded} recorded"),
        );
    }
    status
}

/// The secrets whose finished rotation a rollback to `target` (a version id) would undo while
/// their old value is revoked: a promoted `dual` rotation (the provider no longer signs with the
/// old value) or a staged Stream key rotation whose old key is gone from `live_keys`. `versions`
/// are the script's, newest first; records in `target` itself and older are not crossed.
pub fn revoked_since(
    versions: &[AnnotatedVersion],
    target: &str,
    live_keys: &[StreamKey],
) -> Vec<String> {
    let mut crossed: Vec<String> = Vec::new();
    for version in versions.iter().take_while(|v| v.id != target) {
        let Some(record) = Record::read(version) else {
            continue;
        };
        let revoked = match (record.phase, &record.old_stream_key) {
            (Phase::Promote, _) => true,
            (Phase::Stage, Some(old)) => !live_keys.iter().any(|k| &k.id == old),
            (Phase::Stage, None) => false,
        };
        if revoked && !crossed.contains(&record.secret) {
            crossed.push(record.secret);
        }
    }
    crossed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(id: &str, at: &str, record: Option<&Record>) -> AnnotatedVersion {
        AnnotatedVersion {
            id: id.to_owned(),
            created_on: at.to_owned(),
            tag: record.map(Record::tag),
            message: record.map(Record::message),
        }
    }

    fn record(secret: &str, generation: u32, phase: Phase, old: Option<&str>) -> Record {
        Record {
            secret: secret.to_owned(),
            generation,
            phase,
            old_stream_key: old.map(str::to_owned),
            new_stream_key: None,
            version: String::new(),
            at: String::new(),
        }
    }

    #[test]
    fn a_record_reads_back_from_its_message() {
        let mut written = record("PEM", 3, Phase::Stage, Some("abc"));
        written.new_stream_key = Some("def".to_owned());
        let read =
            Record::read(&version("v1", "2026-01-01T00:00:00Z", Some(&written))).expect("a record");
        assert_eq!(read.old_stream_key.as_deref(), Some("abc"));
        assert_eq!(read.new_stream_key.as_deref(), Some("def"));
        assert_eq!((read.generation, read.phase), (3, Phase::Stage));
        assert_eq!(written.tag(), "rot:PEM:g3:stage");
        assert_eq!(Record::read(&version("v2", "x", None)), None);
    }

    #[test]
    fn a_rollback_crosses_only_rotations_whose_old_value_is_revoked() {
        let promote = record("TALLY", 2, Phase::Promote, None);
        let stage = record("TALLY", 2, Phase::Stage, None);
        let key_gone = record("PEM", 1, Phase::Stage, Some("old-key"));
        let key_kept = record("OTHER_PEM", 1, Phase::Stage, Some("kept-key"));
        let versions = [
            version("v5", "t", Some(&promote)),
            version("v4", "t", Some(&key_gone)),
            version("v3", "t", Some(&key_kept)),
            version("v2", "t", Some(&stage)),
            version("v1", "t", None),
        ];
        let live = [StreamKey {
            id: "kept-key".to_owned(),
            created: "t".to_owned(),
        }];
        assert_eq!(revoked_since(&versions, "v1", &live), ["TALLY", "PEM"]);
        assert_eq!(revoked_since(&versions, "v4", &live), ["TALLY"]);
        assert!(revoked_since(&versions, "v5", &live).is_empty());
    }
}
