//! Why a manifest could not be had: the folder or file is missing or unreadable, the environment
//! does not exist, git could not show it at a revision, or it has errors.

use std::path::PathBuf;

use super::Diagnostic;

const REVISION_HELP: &str = "name a commit, branch or tag of the repository that holds `environments/`, e.g. `--base origin/main`";

/// Everything that can keep a valid manifest from being loaded.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum Error {
    /// A manifest file or the `environments` folder could not be read.
    #[error("could not read {}", path.display())]
    FileRead {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The project has no environment manifests.
    #[error("no environment manifests in {}", dir.display())]
    #[diagnostic(help("{hint}"))]
    EnvironmentsMissing {
        /// The `environments` folder that was searched.
        dir: PathBuf,
        /// What to do, which depends on where lmsinfra ran.
        hint: String,
    },
    /// A manifest is named `.yml`, which lmsinfra does not read.
    #[error("{} is not read: manifests are named environments/<env>.yaml", path.display())]
    #[diagnostic(help("rename it to {}", renamed.display()))]
    YmlExtension {
        /// The `.yml` file.
        path: PathBuf,
        /// The name it should have.
        renamed: PathBuf,
    },
    /// An environment was named that has no manifest.
    #[error("there is no environment `{name}`: {} does not exist", path.display())]
    #[diagnostic(help("the environments are {available}"))]
    EnvironmentUnknown {
        /// The name given.
        name: String,
        /// Where its manifest would be.
        path: PathBuf,
        /// The environments that exist, as a list for the hint.
        available: String,
    },
    /// A manifest has errors; the related diagnostics say which.
    #[error("{file} is not a valid manifest ({summary})")]
    #[diagnostic(help("fix the problems above; `lmsinfra validate` checks every environment"))]
    ManifestInvalid {
        /// The file, as diagnostics name it.
        file: String,
        /// How many errors, e.g. "2 errors".
        summary: String,
        /// Every diagnostic of the file.
        #[related]
        diagnostics: Vec<Diagnostic>,
    },
    /// git could not be run.
    #[error("could not read the manifests at `{revision}`: could not run git")]
    #[diagnostic(help("{REVISION_HELP}"))]
    GitRun {
        /// The revision asked for.
        revision: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The revision is not a commit of the repository.
    #[error("could not read the manifests at `{revision}`: not a commit in this repository")]
    #[diagnostic(help("{REVISION_HELP}"))]
    RevisionUnknown {
        /// The revision asked for.
        revision: String,
    },
    /// `git show` failed.
    #[error("could not read the manifests at `{revision}`: {message}")]
    #[diagnostic(help("{REVISION_HELP}"))]
    GitShowFailed {
        /// The revision asked for.
        revision: String,
        /// What git said on stderr.
        message: String,
    },
    /// The manifest at the revision is not text.
    #[error("could not read the manifests at `{revision}`: {file} is not UTF-8 there")]
    #[diagnostic(help("{REVISION_HELP}"))]
    RevisionNotUtf8 {
        /// The revision asked for.
        revision: String,
        /// The file, relative to the project.
        file: String,
        /// Why.
        #[source]
        source: std::string::FromUtf8Error,
    },
}
