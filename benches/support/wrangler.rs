//! wrangler, the tool the audited scripts drive, run against a benchmark's sandbox: the side of
//! each comparison that lmsinfra replaces.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use lmsinfra_sandbox::Sandbox;

use super::child;

/// What wrangler is told of the account: the same ids the benchmarks' manifests use.
const ACCOUNT_ID: &str = "0123456789abcdef0123456789abcdef";
const TOKEN: &str = "bench-token";

/// `LMSINFRA_WRANGLER` (a wrangler executable; `.ci/run` installs one), with a home folder of
/// its own so no user configuration or login is read.
pub struct Wrangler {
    bin: PathBuf,
    home: tempfile::TempDir,
}

impl Wrangler {
    /// `None` when `LMSINFRA_WRANGLER` is unset or names nothing.
    pub fn locate() -> Option<Wrangler> {
        let bin = PathBuf::from(std::env::var_os("LMSINFRA_WRANGLER")?);
        bin.exists().then(|| Wrangler {
            bin,
            home: tempfile::tempdir().expect("temp dir"),
        })
    }

    /// Run `wrangler ARGS` in its home folder against `sandbox`; it must succeed.
    pub fn run(&self, sandbox: &Sandbox, args: &[&str]) -> Duration {
        self.run_in(sandbox, self.home.path(), args)
    }

    /// Run `wrangler ARGS` in `dir` (where its configuration is) against `sandbox`; it must
    /// succeed. Its wall time, start to exit.
    pub fn run_in(&self, sandbox: &Sandbox, dir: &Path, args: &[&str]) -> Duration {
        let home = self.home.path();
        let log = home.join("last-run.log");
        let (code, took, _) = child::run(
            Stdio::from(std::fs::File::create(&log).expect("wrangler's log")),
            Command::new(&self.bin)
                .args(args)
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .env("HOME", home)
                .env("XDG_CONFIG_HOME", home.join(".config"))
                .env("XDG_CACHE_HOME", home.join(".cache"))
                .env("TMPDIR", home)
                .env("CLOUDFLARE_API_BASE_URL", sandbox.base_url())
                .env("CLOUDFLARE_API_TOKEN", TOKEN)
                .env("CLOUDFLARE_ACCOUNT_ID", ACCOUNT_ID)
                .env("WRANGLER_SEND_METRICS", "false")
                .env("WRANGLER_SEND_ERROR_REPORTS", "false")
                .env("WRANGLER_HIDE_BANNER", "true")
                .env("WRANGLER_LOG_PATH", home.join("logs"))
                .env("npm_config_registry", "http://127.0.0.1:9/")
                .env("NO_COLOR", "1")
                .current_dir(dir),
        );
        assert_eq!(
            code,
            0,
            "wrangler {args:?} failed:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        took
    }
}
