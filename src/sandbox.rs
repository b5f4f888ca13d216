//! The local Cloudflare API emulator behind `--sandbox` and `lmsinfra sandbox`: the
//! `lmsinfra-sandbox` crate when the `sandbox` cargo feature is on (the default), else a stand-in
//! of the same shape whose every use says that this build has no sandbox, so the command line
//! stays the same in both builds.

#[cfg(feature = "sandbox")]
pub(crate) use lmsinfra_sandbox::{
    BUSY_ACCOUNT_HELP, BusyAccount, Error, FaultSpec, Sandbox, SandboxConfig, Variant, faults, run,
    variants,
};

#[cfg(not(feature = "sandbox"))]
pub(crate) use missing::{
    BUSY_ACCOUNT_HELP, BusyAccount, Error, FaultSpec, Sandbox, SandboxConfig, Variant, faults, run,
    variants,
};

#[cfg(not(feature = "sandbox"))]
mod missing {
    use std::net::SocketAddr;
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    /// `--faults` is still accepted, so a command line means the same in both builds.
    pub type FaultSpec = String;

    /// The fault grammar lives in the sandbox crate.
    pub mod faults {
        /// The long help of `--faults`.
        pub const HELP: &str = "Faults to inject (this build has no sandbox)";
    }

    /// `--variant` is still accepted, so a command line means the same in both builds.
    pub type Variant = String;

    /// `--busy-account` is still accepted, so a command line means the same in both builds.
    pub type BusyAccount = String;

    /// The long help of `--busy-account`.
    pub const BUSY_ACCOUNT_HELP: &str =
        "Start with the budget part spent (this build has no sandbox)";

    /// The variant grammar lives in the sandbox crate.
    pub mod variants {
        /// The long help of `--variant`.
        pub const HELP: &str = "Variants to play (this build has no sandbox)";
    }

    /// This build has no sandbox.
    #[derive(Debug, thiserror::Error, miette::Diagnostic)]
    #[error("this lmsinfra was built without the sandbox (cargo feature `sandbox`)")]
    #[diagnostic(help(
        "build lmsinfra with its default features, e.g. `cargo install --path .`, to use --sandbox and `lmsinfra sandbox`"
    ))]
    pub struct Error;

    /// What the sandbox crate's configuration holds, so the command line fills it the same way.
    #[derive(Default)]
    #[expect(
        dead_code,
        reason = "filled by the command line, read by no sandbox in this build"
    )]
    pub struct SandboxConfig {
        pub listen: Option<SocketAddr>,
        pub state: Option<PathBuf>,
        pub seed: Option<PathBuf>,
        pub latency: Duration,
        pub faults: Option<FaultSpec>,
        pub token: Option<String>,
        pub variants: Vec<Variant>,
        pub d1_query_non_atomic: bool,
        pub corrupt_imports: bool,
        pub busy_account: Option<BusyAccount>,
    }

    impl SandboxConfig {
        pub fn for_project(_dir: &Path) -> SandboxConfig {
            SandboxConfig::default()
        }
    }

    /// A sandbox that never starts.
    pub enum Sandbox {}

    impl Sandbox {
        pub fn start(_config: SandboxConfig) -> Result<Sandbox, Error> {
            Err(Error)
        }

        pub fn base_url(&self) -> String {
            match *self {}
        }
    }

    pub async fn run(
        _config: SandboxConfig,
        _shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), Error> {
        Err(Error)
    }
}
