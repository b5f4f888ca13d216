//! Secret values for apply: `--secret NAME=env:VAR`, `NAME=file:PATH` or `NAME=stdin`.
//!
//! A value is read once, wrapped in [`Secret`] at once, and only ever leaves it in the body of
//! the request that sets it. Errors name the secret, the variable or the file — never the value.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::str::FromStr;

use crate::manifest::{Accept, Error as ManifestError, Limit, Manifest, read_text};
use crate::secret::Secret;

/// Why a `--secret` argument cannot be used. Names the secret, the variable or the file, never
/// the value.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[diagnostic(help(
    "give each required secret once, as NAME=env:VAR, NAME=file:PATH or NAME=stdin"
))]
pub enum SecretError {
    /// More than one secret was to come from stdin.
    #[error("--secret {name}: only one secret can come from stdin ({names})")]
    StdinTwice {
        /// The second secret from stdin.
        name: String,
        /// Every secret from stdin, comma-separated.
        names: String,
    },
    /// No Worker requires a secret of that name.
    #[error("--secret {name}: no Worker in {environment} requires it (required: {required})")]
    SecretUnknown {
        /// The secret's name.
        name: String,
        /// The environment.
        environment: String,
        /// The secrets that are required, comma-separated, or `none`.
        required: String,
    },
    /// The same secret was given twice.
    #[error("--secret {name}: given twice")]
    SecretRepeated {
        /// The secret's name.
        name: String,
    },
    /// The environment variable to read is not set.
    #[error("--secret {name}: environment variable {var} is not set")]
    VariableUnset {
        /// The secret's name.
        name: String,
        /// The variable.
        var: String,
    },
    /// The file to read could not be read.
    #[error("--secret {name}: could not read {}", path.display())]
    FileRead {
        /// The secret's name.
        name: String,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Stdin could not be read.
    #[error("--secret {name}: could not read stdin")]
    StdinRead {
        /// The secret's name.
        name: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The value is empty.
    #[error("--secret {name}: the value is empty")]
    ValueEmpty {
        /// The secret's name.
        name: String,
    },
}

/// One `--secret` argument: a name and where its value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretArg {
    /// The secret's name.
    pub name: String,
    /// Where its value is.
    pub source: SecretSource,
}

/// Where a secret's value is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// An environment variable.
    Env(String),
    /// A file (one final line break is dropped).
    File(PathBuf),
    /// Standard input, whole (one final line break is dropped).
    Stdin,
}

impl FromStr for SecretArg {
    type Err = String;

    fn from_str(arg: &str) -> Result<Self, Self::Err> {
        const FORMS: &str = "NAME=env:VAR, NAME=file:PATH or NAME=stdin";
        let Some((name, source)) = arg.split_once('=') else {
            return Err(format!("expected {FORMS}"));
        };
        if name.is_empty() {
            return Err(format!("the secret's name is empty; expected {FORMS}"));
        }
        let source = if let Some(var) = source.strip_prefix("env:") {
            if var.is_empty() {
                return Err(format!("no variable named after `env:`; expected {FORMS}"));
            }
            SecretSource::Env(var.to_owned())
        } else if let Some(path) = source.strip_prefix("file:") {
            if path.is_empty() {
                return Err(format!("no path after `file:`; expected {FORMS}"));
            }
            SecretSource::File(PathBuf::from(path))
        } else if source == "stdin" {
            SecretSource::Stdin
        } else {
            // Never echo what follows `=`: it may be a value typed in by mistake.
            return Err(format!(
                "the value of {name} must come from env:, file: or stdin, never the command line; expected {FORMS}"
            ));
        };
        Ok(Self {
            name: name.to_owned(),
            source,
        })
    }
}

/// Parses `--secret` for clap. clap's own message for a value it cannot parse quotes the
/// argument whole, and `NAME=s3cret` typed by mistake would put the value on stderr; this
/// parser's errors name the secret only.
#[derive(Debug, Clone, Copy, Default)]
pub struct SecretArgParser;

impl clap::builder::TypedValueParser for SecretArgParser {
    type Value = SecretArg;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<SecretArg, clap::Error> {
        let fail = |reason: String| {
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("invalid --secret: {reason}\n"),
            )
            .with_cmd(cmd)
        };
        let text = value
            .to_str()
            .ok_or_else(|| fail("it is not valid UTF-8".to_owned()))?;
        text.parse().map_err(fail)
    }
}

/// Read every `--secret` value. Each name must be a secret some Worker of `desired` requires,
/// named once; at most one value comes from stdin.
pub fn read_secrets(
    args: &[SecretArg],
    desired: &Manifest,
    env: impl Fn(&str) -> Option<String>,
    stdin: &mut dyn Read,
) -> Result<BTreeMap<String, Secret>, SecretError> {
    let required: Vec<&str> = desired
        .workers
        .values()
        .flat_map(|w| w.secrets.iter().map(String::as_str))
        .collect();
    if args
        .iter()
        .filter(|a| a.source == SecretSource::Stdin)
        .count()
        > 1
    {
        let names: Vec<_> = args
            .iter()
            .filter(|a| a.source == SecretSource::Stdin)
            .map(|a| a.name.as_str())
            .collect();
        return Err(SecretError::StdinTwice {
            name: names[1].to_owned(),
            names: names.join(", "),
        });
    }
    let mut secrets = BTreeMap::new();
    for arg in args {
        if !required.contains(&arg.name.as_str()) {
            return Err(SecretError::SecretUnknown {
                name: arg.name.clone(),
                environment: desired.environment.clone(),
                required: if required.is_empty() {
                    "none".to_owned()
                } else {
                    required.join(", ")
                },
            });
        }
        if secrets.contains_key(&arg.name) {
            return Err(SecretError::SecretRepeated {
                name: arg.name.clone(),
            });
        }
        let value = match &arg.source {
            SecretSource::Env(var) => env(var).ok_or_else(|| SecretError::VariableUnset {
                name: arg.name.clone(),
                var: var.clone(),
            })?,
            SecretSource::File(path) => {
                read_file(path).map_err(|source| SecretError::FileRead {
                    name: arg.name.clone(),
                    path: path.clone(),
                    source,
                })?
            }
            SecretSource::Stdin => read_stdin(stdin).map_err(|source| SecretError::StdinRead {
                name: arg.name.clone(),
                source,
            })?,
        };
        let value = without_line_break(&value);
        if value.is_empty() {
            return Err(SecretError::ValueEmpty {
                name: arg.name.clone(),
            });
        }
        secrets.insert(arg.name.clone(), Secret::new(value));
    }
    Ok(secrets)
}

/// A secret value read from a file or stdin is refused beyond this. Cloudflare accepts 5 KiB;
/// the margin lets its own error say so, and nothing like `/dev/zero` fills memory.
const SECRET_LIMIT: Limit = Limit {
    bytes: 64 * 1024,
    describe: "64 KiB, the limit for a secret value (Cloudflare accepts 5 KiB)",
};

/// The text of a secret file. Regular files and pipes (`file:<(pass show …)`) are read, up to
/// [`SECRET_LIMIT`]; a device or a directory is refused before reading.
fn read_file(path: &std::path::Path) -> Result<String, std::io::Error> {
    read_text(path, &SECRET_LIMIT, Accept::RegularOrPipe)
}

fn read_stdin(stdin: &mut dyn Read) -> Result<String, std::io::Error> {
    let mut bytes = Vec::new();
    stdin.take(SECRET_LIMIT.bytes + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > SECRET_LIMIT.bytes {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("it is larger than {}", SECRET_LIMIT.describe),
        ));
    }
    String::from_utf8(bytes)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "it is not valid UTF-8"))
}

/// A value without one final line break.
fn without_line_break(value: &str) -> &str {
    value
        .strip_suffix("\r\n")
        .or_else(|| value.strip_suffix('\n'))
        .unwrap_or(value)
}

/// Apply loads its manifest before it reads the `--secret` values, so an invalid manifest's
/// excerpts are printed before those values are known. When loading failed, this reads the
/// values the arguments point at (environment variables and files; stdin is left unread) only
/// to withhold every excerpt line that holds one: a secret pasted into a manifest by mistake is
/// never printed back.
pub fn withhold_secret_values(err: ManifestError, args: &[SecretArg]) -> ManifestError {
    let ManifestError::ManifestInvalid {
        file,
        summary,
        mut diagnostics,
    } = err
    else {
        return err;
    };
    let values: Vec<Secret> = args
        .iter()
        .filter_map(|arg| match &arg.source {
            SecretSource::Env(var) => std::env::var(var).ok(),
            SecretSource::File(path) => read_file(path).ok(),
            SecretSource::Stdin => None,
        })
        .map(|value| Secret::new(without_line_break(&value)))
        .collect();
    let exposed: Vec<&str> = values.iter().map(Secret::expose).collect();
    for diagnostic in &mut diagnostics {
        diagnostic.withhold(&exposed);
    }
    ManifestError::ManifestInvalid {
        file,
        summary,
        diagnostics,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{STAGING, manifest};

    fn parse(arg: &str) -> Result<SecretArg, String> {
        arg.parse()
    }

    fn read(args: &[&str], stdin: &str) -> Result<BTreeMap<String, Secret>, SecretError> {
        let args: Vec<SecretArg> = args.iter().map(|a| parse(a).unwrap()).collect();
        let env = |var: &str| (var == "VALUE_VAR").then(|| "canary-from-env\n".to_owned());
        read_secrets(&args, &manifest(STAGING), env, &mut stdin.as_bytes())
    }

    #[test]
    fn the_three_sources_parse() {
        assert_eq!(
            parse("A=env:B").unwrap().source,
            SecretSource::Env("B".to_owned())
        );
        assert_eq!(
            parse("A=file:/x/y").unwrap().source,
            SecretSource::File("/x/y".into())
        );
        assert_eq!(parse("A=stdin").unwrap().source, SecretSource::Stdin);
    }

    #[test]
    fn a_value_on_the_command_line_is_refused_without_echoing_it() {
        let err = parse("TALLY_SIGNING_SECRET=hunter2-canary").unwrap_err();
        assert!(err.contains("never the command line"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        assert!(parse("=env:X").is_err());
        assert!(parse("A=env:").is_err());
        assert!(parse("A").is_err());
    }

    #[test]
    fn values_come_from_env_and_stdin_without_their_final_line_break() {
        let secrets = read(
            &[
                "TALLY_WEBHOOK_SECRET=env:VALUE_VAR",
                "TALLY_SIGNING_SECRET=stdin",
            ],
            "canary-from-stdin\r\n",
        )
        .unwrap();
        assert_eq!(secrets["TALLY_WEBHOOK_SECRET"].expose(), "canary-from-env");
        assert_eq!(
            secrets["TALLY_SIGNING_SECRET"].expose(),
            "canary-from-stdin"
        );
    }

    #[test]
    fn a_secret_no_worker_requires_is_refused() {
        let err = read(&["TALLY_WEBHOOK_SECRE=env:VALUE_VAR"], "").unwrap_err();
        assert!(err.to_string().contains("TALLY_WEBHOOK_SECRE"));
        assert!(matches!(err, SecretError::SecretUnknown { .. }), "{err:?}");
        assert!(
            err.to_string()
                .contains("required: TALLY_WEBHOOK_SECRET, TALLY_SIGNING_SECRET")
        );
    }

    #[test]
    fn unset_variables_empty_values_repeats_and_two_stdins_are_refused() {
        let reason = |args: &[&str], stdin: &str| match read(args, stdin) {
            Err(err) => err.to_string(),
            other => panic!("{other:?}"),
        };
        assert!(reason(&["TALLY_WEBHOOK_SECRET=env:UNSET"], "").contains("UNSET is not set"));
        assert!(reason(&["TALLY_WEBHOOK_SECRET=stdin"], "\n").contains("empty"));
        assert!(
            reason(
                &[
                    "TALLY_WEBHOOK_SECRET=env:VALUE_VAR",
                    "TALLY_WEBHOOK_SECRET=env:VALUE_VAR"
                ],
                ""
            )
            .contains("twice")
        );
        assert!(
            reason(
                &["TALLY_WEBHOOK_SECRET=stdin", "TALLY_SIGNING_SECRET=stdin"],
                "x"
            )
            .contains("only one")
        );
    }
}
