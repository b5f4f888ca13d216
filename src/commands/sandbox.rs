//! `lmsinfra sandbox`: run the Cloudflare API emulator in the foreground.

use crate::cli::SandboxArgs;
use crate::error::{Error, Outcome};

pub(super) fn sandbox(args: SandboxArgs) -> Result<Outcome, Error> {
    let config = crate::sandbox::SandboxConfig {
        listen: Some(args.listen),
        state: args.state,
        seed: args.seed,
        latency: std::time::Duration::from_millis(args.latency_ms),
        faults: args.faults,
        token: args.token,
        variants: args.variants.into_iter().collect(),
        d1_query_non_atomic: args.d1_query_non_atomic,
        corrupt_imports: args.corrupt_imports,
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
