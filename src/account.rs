//! The live account a command talks to, with the async runtime its calls run on.

use crate::cloudflare::{Client, ClientConfig};
use crate::error::Error;
use crate::live::{self, GatherOptions, Live};
use crate::manifest::Manifest;
use crate::sandbox::{Sandbox, SandboxConfig};
use crate::settings::{Settings, Target};

/// The token the client sends to the in-process sandbox.
const SANDBOX_TOKEN: &str = "sandbox";

/// The live account a command talks to: the real API, or the sandbox with `--sandbox`.
pub(crate) struct Account {
    pub(crate) client: Client,
    pub(crate) runtime: tokio::runtime::Runtime,
    sandbox: Option<Sandbox>,
}

impl Account {
    pub(crate) fn connect(settings: &Settings, desired: &Manifest) -> Result<Self, Error> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|source| Error::Runtime { source })?;
        if settings.target == Target::Cloudflare {
            let client = Client::from_env(settings.concurrency, &desired.account_id)?;
            return Ok(Self {
                client,
                runtime,
                sandbox: None,
            });
        }
        let sandbox = Sandbox::start(SandboxConfig::for_project(&settings.dir))?;
        tracing::info!(url = %sandbox.base_url(), "sandbox started");
        // The account id is read as for Cloudflare; the emulator takes any token, so the
        // user's is never sent to it.
        let base_url = sandbox.base_url();
        let var = |name: &str| match name {
            "CLOUDFLARE_API_BASE_URL" => Some(base_url.clone()),
            "CLOUDFLARE_API_TOKEN" => Some(SANDBOX_TOKEN.to_owned()),
            _ => std::env::var(name).ok(),
        };
        let config = ClientConfig::from_vars(var, settings.concurrency, &desired.account_id)?;
        Ok(Self {
            client: Client::new(config)?,
            runtime,
            sandbox: Some(sandbox),
        })
    }

    /// Where the Workers' URLs are answered when they are not on the Internet: the sandbox's
    /// Worker traffic, when the API is a sandbox (in-process with `--sandbox`, or an API base
    /// URL of `http://<loopback>/client/v4`, as `lmsinfra sandbox` serves it).
    pub(crate) fn worker_traffic(&self) -> Option<std::net::SocketAddr> {
        let base = match &self.sandbox {
            Some(sandbox) => sandbox.base_url(),
            None => self.client.base_url().to_owned(),
        };
        let base = url::Url::parse(&base).ok()?;
        let loopback = matches!(base.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        if !loopback || base.scheme() != "http" || base.path().trim_end_matches('/') != "/client/v4"
        {
            return None;
        }
        base.socket_addrs(|| None).ok()?.into_iter().next()
    }

    pub(crate) fn gather(&self, desired: &Manifest, options: GatherOptions) -> Result<Live, Error> {
        let options = GatherOptions {
            worker_traffic: self.worker_traffic(),
            ..options
        };
        Ok(self
            .runtime
            .block_on(live::gather(desired, &self.client, options))?)
    }
}
