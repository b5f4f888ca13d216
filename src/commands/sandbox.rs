//! `lmsinfra sandbox`: run the Cloudflare API emulator in the foreground. With neither
//! `--state` nor `--seed` it serves the project's account, the one `--sandbox` uses, so what a
//! user does with wrangler against it is what `lmsinfra --sandbox plan` sees.

use crate::cli::SandboxArgs;
use crate::error::{Error, Outcome};
use crate::settings::Settings;

pub(super) fn sandbox(settings: &Settings, args: SandboxArgs) -> Result<Outcome, Error> {
    let (state, seed) = match (args.state, args.seed) {
        (None, None) => {
            let project = crate::sandbox::SandboxConfig::for_project(&settings.dir);
            (project.state, project.seed)
        }
        given => given,
    };
    let config = crate::sandbox::SandboxConfig {
        listen: Some(args.listen),
        state,
        seed,
        latency: std::time::Duration::from_millis(args.latency_ms),
        faults: args.faults,
        token: args.token,
        variants: args.variants.into_iter().collect(),
        d1_query_non_atomic: args.d1_query_non_atomic,
        corrupt_imports: args.corrupt_imports,
        busy_account: args.busy_account,
        ..Default::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| Error::Runtime { source })?;
    runtime.block_on(crate::sandbox::run(config, async {
        let _ = tokio::signal::ctrl_c().await;
    }))?;
    Ok(Outcome::Success)
}
