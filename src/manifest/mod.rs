//! Desired state: the manifest model, loading YAML with spans, validation and parity.
//!
//! [`load_valid`] and [`parse_valid`] are what the other commands use: a [`Manifest`] with no
//! errors, or an [`Error`] whose rendering shows every diagnostic. `validate` uses [`check_all`],
//! which also compares environments with each other.

mod diagnostic;
mod error;
mod files;
mod limits;
mod load;
pub mod model;
pub(crate) mod naming;
mod nesting;
mod ownership;
mod parity;
mod revision;
mod rotation;
pub(crate) mod smoke;
mod span;
mod validate;

use std::path::{Path, PathBuf};

pub use diagnostic::{Diagnostic, Severity};
pub use error::Error;
pub(crate) use files::{Accept, Limit, SAVED_PLAN, read_text};
pub use model::Manifest;
pub(crate) use naming::{credential_suffix, environment_name};
pub use revision::load_at_revision;

use load::Checked;

/// The environments in `dir/environments/*.yaml`, as (name, path) sorted by name.
pub fn environment_files(dir: &Path) -> Result<Vec<(String, PathBuf)>, Error> {
    let folder = dir.join("environments");
    let entries = std::fs::read_dir(&folder).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => Error::EnvironmentsMissing {
            dir: folder.clone(),
            hint: missing_hint(dir, false),
        },
        _ => Error::FileRead {
            path: folder.clone(),
            source,
        },
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|source| Error::FileRead {
                path: folder.clone(),
                source,
            })?
            .path();
        if path.extension().is_some_and(|ext| ext == "yml") {
            return Err(Error::YmlExtension {
                renamed: path.with_extension("yaml"),
                path,
            });
        }
        let is_yaml = path.extension().is_some_and(|ext| ext == "yaml");
        if let (true, Some(name)) = (is_yaml, path.file_stem().and_then(|s| s.to_str())) {
            files.push((name.to_owned(), path.clone()));
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(Error::EnvironmentsMissing {
            dir: folder,
            hint: missing_hint(dir, true),
        });
    }
    Ok(files)
}

/// What to do when `dir` has no manifests: in a project root (it has `environments/` or a
/// wrangler configuration), write them; elsewhere, run from the project root.
fn missing_hint(dir: &Path, has_folder: bool) -> String {
    // wrangler's file names (the wrangler module, above this one, reads them).
    let wrangler = ["wrangler.json", "wrangler.jsonc", "wrangler.toml"]
        .into_iter()
        .find(|name| dir.join(name).is_file());
    if let Some(name) = wrangler {
        return format!(
            "`lmsinfra import {name}` writes them from the wrangler configuration here"
        );
    }
    if has_folder {
        return "add environments/<env>.yaml (`lmsinfra schema manifest` prints the format), or import them with `lmsinfra import wrangler.toml`".to_owned();
    }
    "run lmsinfra from the project root, or pass `--dir` with the folder that holds `environments/`"
        .to_owned()
}

/// Load `dir/environments/<env>.yaml` and validate it, with the Worker and database names no
/// other environment may share (parity with other environments is not checked). On failure the
/// error shows every diagnostic.
pub fn load_valid(dir: &Path, env: &str) -> Result<Manifest, Error> {
    load_valid_with_others(dir, env).map(|(manifest, _)| manifest)
}

/// [`load_valid`], with the project's other environments that are valid, from the same read:
/// each file is parsed once.
pub fn load_valid_with_others(dir: &Path, env: &str) -> Result<(Manifest, Vec<Manifest>), Error> {
    let files = environment_files(dir)?;
    find(&files, dir, env)?;
    let mut checked = Vec::new();
    for (name, path) in &files {
        match check_file(dir, name, path) {
            Ok(file) => checked.push((name.as_str(), file)),
            // Another environment that cannot be read is `validate`'s to report.
            Err(_) if name != env => {}
            Err(err) => return Err(err),
        }
    }
    claim_resources(&mut checked);
    let mut mine = None;
    let mut others = Vec::new();
    for (name, file) in checked {
        if name == env {
            mine = Some(file);
        } else if let Ok(other) = into_valid(file) {
            others.push(other);
        }
    }
    let mine = mine.expect("the environment was found and read above");
    Ok((into_valid(mine)?, others))
}

/// Add to each environment an error for every Worker or database name another one on the same
/// account declares too.
fn claim_resources(checked: &mut [(&str, Checked)]) {
    let (indices, claimants): (Vec<usize>, Vec<ownership::Claimant<'_>>) = checked
        .iter()
        .enumerate()
        .filter_map(|(index, (name, env))| {
            let claimant = ownership::Claimant {
                name,
                manifest: env.manifest.as_ref()?,
                spans: &env.spans,
                source: &env.source,
            };
            Some((index, claimant))
        })
        .unzip();
    // The override applies to every environment alike, so they all share its account.
    let accounts = match std::env::var_os("CLOUDFLARE_ACCOUNT_ID") {
        Some(id) if !id.is_empty() => ownership::Accounts::Overridden,
        _ => ownership::Accounts::AsDeclared,
    };
    let errors: Vec<(usize, Vec<Diagnostic>)> = indices
        .iter()
        .enumerate()
        .map(|(at, index)| (*index, ownership::conflicts(&claimants, at, accounts)))
        .collect();
    for (index, errors) in errors {
        checked[index].1.diagnostics.extend(errors);
    }
}

/// Parse and validate a manifest from text, e.g. one read from a git revision. `label` is the
/// file name diagnostics show (`HEAD~1:environments/staging.yaml`); `env` the environment it
/// must declare.
pub fn parse_valid(label: &str, env: &str, text: &str) -> Result<Manifest, Error> {
    into_valid(load::check(label, env, text.as_bytes()))
}

fn into_valid(checked: Checked) -> Result<Manifest, Error> {
    match checked.manifest {
        Some(manifest) if checked.is_valid() => Ok(manifest),
        _ => {
            let errors = checked.diagnostics.iter().filter(|d| d.is_error()).count();
            let mut diagnostics = checked.diagnostics;
            withhold_token(&mut diagnostics);
            Err(Error::ManifestInvalid {
                file: checked.source.label,
                summary: plural(errors, "error"),
                diagnostics,
            })
        }
    }
}

/// The API token never appears in a diagnostic, even when a manifest holds it.
fn withhold_token(diagnostics: &mut [Diagnostic]) {
    if let Ok(token) = std::env::var("CLOUDFLARE_API_TOKEN") {
        for diagnostic in diagnostics {
            diagnostic.withhold(&[&token]);
        }
    }
}

/// The path of environment `env`, or an error naming the environments that exist.
fn find<'a>(files: &'a [(String, PathBuf)], dir: &Path, env: &str) -> Result<&'a Path, Error> {
    files
        .iter()
        .find(|(name, _)| name == env)
        .map(|(_, path)| path.as_path())
        .ok_or_else(|| Error::EnvironmentUnknown {
            name: env.to_owned(),
            path: dir.join("environments").join(format!("{env}.yaml")),
            available: files
                .iter()
                .map(|(name, _)| format!("`{name}`"))
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Read and check the environment file `path` of the project in `dir`. A file that is not a
/// regular file inside the project is not read: its only diagnostic says why.
fn check_file(dir: &Path, env: &str, path: &Path) -> Result<Checked, Error> {
    let label = path.strip_prefix(".").unwrap_or(path).display().to_string();
    match files::read_environment(dir, path, &label, load::MAX_MANIFEST_BYTES) {
        Ok(bytes) => Ok(load::check(&label, env, &bytes)),
        Err(files::Unreadable::Refused(checked)) => Ok(*checked),
        Err(files::Unreadable::Io(source)) => Err(Error::FileRead {
            path: path.to_owned(),
            source,
        }),
    }
}

/// One validated environment, as `validate --format json` lists it.
#[derive(Debug, serde::Serialize)]
pub(crate) struct CheckedEnvironment {
    pub(crate) name: String,
    /// The file, as diagnostics name it.
    pub(crate) file: String,
    pub(crate) valid: bool,
}

/// The outcome of validating some environments.
#[derive(Debug)]
pub(crate) struct Validation {
    /// The environments validated.
    pub(crate) environments: Vec<CheckedEnvironment>,
    /// Every diagnostic, file by file, then the parity warnings.
    pub(crate) diagnostics: Vec<Diagnostic>,
}

impl Validation {
    /// A one-line summary, e.g. "2 environments valid, 1 warning".
    pub(crate) fn summary(&self) -> String {
        let total = self.environments.len();
        let invalid = self.environments.iter().filter(|env| !env.valid).count();
        let errors = self.diagnostics.iter().filter(|d| d.is_error()).count();
        let warnings = self.diagnostics.len() - errors;
        let mut summary = if invalid == 0 {
            format!("{} valid", plural(total, "environment"))
        } else {
            let names: Vec<&str> = self
                .environments
                .iter()
                .filter(|env| !env.valid)
                .map(|env| env.name.as_str())
                .collect();
            format!(
                "{invalid} of {} invalid ({}): {}",
                plural(total, "environment"),
                names.join(", "),
                plural(errors, "error")
            )
        };
        if warnings > 0 {
            summary.push_str(&format!(", {}", plural(warnings, "warning")));
        }
        summary
    }

    /// Whether every environment is valid.
    pub(crate) fn is_valid(&self) -> bool {
        self.environments.iter().all(|env| env.valid)
    }
}

fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

/// Validate the `selected` environments of `dir` (all when empty), and compare each with all the
/// others for parity.
pub(crate) fn check_all(dir: &Path, selected: &[String]) -> Result<Validation, Error> {
    let files = environment_files(dir)?;
    for env in selected {
        find(&files, dir, env)?;
    }
    let is_selected = |name: &str| selected.is_empty() || selected.iter().any(|s| s == name);
    let mut checked = Vec::new();
    for (name, path) in &files {
        checked.push((name.as_str(), check_file(dir, name, path)?));
    }
    claim_resources(&mut checked);
    let mut validation = Validation {
        environments: Vec::new(),
        diagnostics: Vec::new(),
    };
    for (name, env) in checked.iter().filter(|(name, _)| is_selected(name)) {
        validation.environments.push(CheckedEnvironment {
            name: (*name).to_owned(),
            file: env.source.label.clone(),
            valid: env.is_valid(),
        });
        validation
            .diagnostics
            .extend(env.diagnostics.iter().cloned());
    }
    let comparable: Vec<parity::Environment<'_>> = checked
        .iter()
        .filter_map(|(name, env)| {
            Some(parity::Environment {
                name,
                manifest: env.manifest.as_ref()?,
                spans: &env.spans,
                source: &env.source,
                selected: is_selected(name),
            })
        })
        .collect();
    validation.diagnostics.extend(parity::compare(&comparable));
    withhold_token(&mut validation.diagnostics);
    Ok(validation)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lms() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    fn render(err: &Error) -> String {
        let mut out = String::new();
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
            .render_report(&mut out, err)
            .expect("a report renders");
        out
    }

    #[test]
    fn environment_files_lists_the_lms_environments_sorted() {
        let names: Vec<String> = environment_files(&lms())
            .unwrap()
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        assert_eq!(names, ["production", "staging"]);
    }

    #[test]
    fn load_valid_reads_the_lms_staging_manifest() {
        let manifest = load_valid(&lms(), "staging").unwrap();
        assert_eq!(manifest.workers["api"].name, "lms-api-staging");
        assert_eq!(
            manifest.workers["viewer"]
                .headers
                .as_ref()
                .unwrap()
                .require
                .len(),
            5
        );
    }

    #[test]
    fn load_valid_names_the_environments_that_exist() {
        let err = load_valid(&lms(), "prod").unwrap_err();
        let text = render(&err);
        assert!(text.contains("there is no environment `prod`"), "{text}");
        assert!(text.contains("`production`, `staging`"), "{text}");
    }

    #[test]
    fn parse_valid_shows_every_diagnostic_under_the_label() {
        let text = std::fs::read_to_string(lms().join("environments/staging.yaml"))
            .unwrap()
            .replacen("database: main", "databse: main", 1)
            .replacen("name: lms-api-staging", "name: LMS", 1);
        let err = parse_valid("HEAD~1:environments/staging.yaml", "staging", &text).unwrap_err();
        let Error::ManifestInvalid { diagnostics, .. } = &err else {
            panic!("expected ManifestInvalid, got {err:?}");
        };
        assert_eq!(diagnostics.len(), 2);
        let rendered = render(&err);
        assert!(
            rendered
                .contains("HEAD~1:environments/staging.yaml is not a valid manifest (2 errors)"),
            "{rendered}"
        );
        assert!(
            rendered.contains("[HEAD~1:environments/staging.yaml:26:23]"),
            "{rendered}"
        );
        assert!(rendered.contains("did you mean `database`?"), "{rendered}");
    }

    #[test]
    fn a_missing_environments_folder_says_where_it_looked() {
        let err = environment_files(Path::new("/nonexistent")).unwrap_err();
        assert!(matches!(err, Error::EnvironmentsMissing { .. }), "{err:?}");
        assert!(render(&err).contains("run lmsinfra from the project root"));
    }

    #[test]
    fn a_project_root_is_not_told_to_run_from_the_project_root() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("wrangler.toml"), "name = \"lms-api\"\n").unwrap();
        let text = render(&environment_files(dir.path()).unwrap_err());
        assert!(text.contains("`lmsinfra import wrangler.toml`"), "{text}");
        assert!(!text.contains("project root"), "{text}");
        std::fs::remove_file(dir.path().join("wrangler.toml")).unwrap();
        std::fs::create_dir(dir.path().join("environments")).unwrap();
        let text = render(&environment_files(dir.path()).unwrap_err());
        assert!(text.contains("add environments/<env>.yaml"), "{text}");
        assert!(!text.contains("project root"), "{text}");
    }

    #[test]
    fn a_yml_manifest_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let environments = dir.path().join("environments");
        std::fs::create_dir(&environments).unwrap();
        std::fs::write(environments.join("staging.yml"), "environment: staging\n").unwrap();
        let text = render(&load_valid(dir.path(), "staging").unwrap_err());
        assert!(text.contains("staging.yml is not read"), "{text}");
        assert!(text.contains("rename it to"), "{text}");
        assert!(text.contains("staging.yaml"), "{text}");
    }
}
