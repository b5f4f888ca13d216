//! The live account a command talks to, with the async runtime its calls run on.

use crate::cli::Global;
use crate::cloudflare::{Client, ClientConfig};
use crate::error::Error;
use crate::live::{self, GatherOptions, Live};
use crate::manifest::Manifest;
use crate::sandbox::{Sandbox, SandboxConfig};
use crate::secret::Secret;

/// The live account a command talks to: the real API, or the sandbox with `--sandbox`.
pub(crate) struct Account {
    pub(crate) client: Client,
    pub(crate) runtime: tokio::runtime::Runtime,
    _sandbox: Option<Sandbox>,
}

impl Account {
    pub(crate) fn connect(global: &Global, desired: &Manifest) -> Result<Self, Error> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|source| Error::Runtime { source })?;
        if !global.sandbox {
            let client = Client::from_env(global, &desired.account_id)?;
            return Ok(Self {
                client,
                runtime,
                _sandbox: None,
            });
        }
        let sandbox = Sandbox::start(SandboxConfig::for_project(&global.dir))?;
        tracing::info!(url = %sandbox.base_url(), "sandbox started");
        let token = std::env::var("CLOUDFLARE_API_TOKEN").unwrap_or_else(|_| "sandbox".to_owned());
        let account_id =
            std::env::var("CLOUDFLARE_ACCOUNT_ID").unwrap_or_else(|_| desired.account_id.clone());
        let mut config = ClientConfig::new(sandbox.base_url(), Secret::new(token), account_id);
        config.concurrency = usize::from(global.concurrency);
        Ok(Self {
            client: Client::new(config)?,
            runtime,
            _sandbox: Some(sandbox),
        })
    }

    pub(crate) fn gather(&self, desired: &Manifest, options: GatherOptions) -> Result<Live, Error> {
        Ok(self
            .runtime
            .block_on(live::gather(desired, &self.client, options))?)
    }
}
