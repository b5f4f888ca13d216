//! Parity between environments: the same Workers, databases, bindings, secrets and headers
//! everywhere, by key, unless a manifest lists the difference under `parity.ignore`.
//!
//! A difference is a warning, never an error: staging may lag production on purpose. It is the
//! check that would have caught a staging Worker without its database binding.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use super::diagnostic::{Diagnostic, Problem, Source};
use super::model::Manifest;
use super::span::{NodePath, SpanIndex};
use crate::address::{Address, AddressError};

/// One thing parity compares, named as plans name it (`worker.api.binding.DB`): a database, a
/// Worker, or a Worker's binding, secret or required header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Compared(Address);

impl FromStr for Compared {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let address = text.parse::<Address>().map_err(|err| match err {
            AddressError::WorkerPart(kind) => {
                format!("`{kind}` is not one of `binding`, `secret`, `headers`")
            }
            AddressError::Root(kind) => format!("it starts with `{kind}`, not `d1` or `worker`"),
            other => other.to_string(),
        })?;
        match address {
            Address::D1 { .. }
            | Address::Worker { .. }
            | Address::Binding { .. }
            | Address::Secret { .. }
            | Address::Header { .. } => Ok(Self(address)),
            Address::Setting { .. }
            | Address::Migration { .. }
            | Address::Headers { .. }
            | Address::HeaderRule { .. }
            | Address::RateLimit { .. }
            | Address::Ruleset { .. }
            | Address::Unmanaged { .. }
            | Address::Wrangler => Err(format!(
                "parity compares databases, Workers, bindings, secrets and required headers, not `{address}`"
            )),
        }
    }
}

impl fmt::Display for Compared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Compared {
    /// What compares equal: the address, with header names in lowercase (HTTP field names are
    /// case-insensitive).
    fn identity(&self) -> Address {
        match &self.0 {
            Address::Header { worker, name } => Address::Header {
                worker: worker.clone(),
                name: name.to_ascii_lowercase(),
            },
            other => other.clone(),
        }
    }

    /// Whether ignoring `self` covers `other` (itself, or something inside it).
    fn covers(&self, other: &Compared) -> bool {
        let (mine, theirs) = (self.identity(), other.identity());
        theirs == mine || (theirs.resource().as_ref() == &mine)
    }

    fn describe(&self) -> String {
        match &self.0 {
            Address::D1 { key } => format!("database `{key}`"),
            Address::Worker { key } => format!("worker `{key}`"),
            Address::Binding { worker, name } => format!("binding `{name}` of worker `{worker}`"),
            Address::Secret { worker, name } => format!("secret `{name}` of worker `{worker}`"),
            Address::Header { worker, name } => {
                format!("required header `{name}` of worker `{worker}`")
            }
            other => format!("`{other}`"),
        }
    }

    /// The Worker a binding, secret or header belongs to.
    fn parent(&self) -> Option<&str> {
        match &self.0 {
            Address::D1 { .. } | Address::Worker { .. } => None,
            other => other.worker(),
        }
    }

    /// Where the thing sits in `manifest`; for something absent, where it would go.
    fn path(&self, manifest: &Manifest) -> NodePath {
        let owned = |parts: &[&str]| parts.iter().map(|part| (*part).to_owned()).collect();
        match &self.0 {
            Address::D1 { key } => owned(&["d1_databases", key]),
            Address::Binding { worker, name } => owned(&["workers", worker, "bindings", name]),
            Address::Secret { worker, name } => {
                let index = manifest
                    .workers
                    .get(worker)
                    .and_then(|w| w.secrets.entries().position(|secret| secret.name() == name));
                match index {
                    Some(index) => owned(&["workers", worker, "secrets", &index.to_string()]),
                    None => owned(&["workers", worker, "secrets"]),
                }
            }
            Address::Header { worker, name } => {
                owned(&["workers", worker, "headers", "require", name])
            }
            other => owned(&["workers", other.worker().unwrap_or_default()]),
        }
    }
}

/// Everything parity compares in one manifest, in manifest order.
fn addresses(manifest: &Manifest) -> Vec<Compared> {
    let mut all: Vec<Compared> = manifest
        .d1_databases
        .keys()
        .map(|key| Compared(Address::D1 { key: key.clone() }))
        .collect();
    for (key, worker) in &manifest.workers {
        all.push(Compared(Address::Worker { key: key.clone() }));
        let named = |name: &String| (key.clone(), name.clone());
        all.extend(
            worker
                .bindings
                .keys()
                .map(named)
                .map(|(worker, name)| Compared(Address::Binding { worker, name })),
        );
        all.extend(
            worker
                .secrets
                .iter()
                .map(named)
                .map(|(worker, name)| Compared(Address::Secret { worker, name })),
        );
        if let Some(headers) = &worker.headers {
            all.extend(
                headers
                    .require
                    .keys()
                    .map(named)
                    .map(|(worker, name)| Compared(Address::Header { worker, name })),
            );
        }
    }
    all
}

/// One environment as parity sees it.
pub(crate) struct Environment<'a> {
    pub(crate) name: &'a str,
    pub(crate) manifest: &'a Manifest,
    pub(crate) spans: &'a SpanIndex,
    pub(crate) source: &'a Source,
    /// Whether differences involving this environment are reported.
    pub(crate) selected: bool,
}

impl Environment<'_> {
    fn ignores(&self, address: &Compared) -> bool {
        self.manifest
            .parity
            .ignore
            .iter()
            .filter_map(|text| text.parse::<Compared>().ok())
            .any(|ignored| ignored.covers(address))
    }
}

/// Compare every environment with every other; one warning per thing and environment lacking it.
pub(crate) fn compare(environments: &[Environment<'_>]) -> Vec<Diagnostic> {
    let inventories: Vec<HashSet<String>> = environments
        .iter()
        .map(|env| {
            addresses(env.manifest)
                .iter()
                .map(|address| address.identity().to_string())
                .collect()
        })
        .collect();
    let mut reported: HashSet<(String, usize)> = HashSet::new();
    let mut warnings = Vec::new();
    for env in environments {
        for address in addresses(env.manifest) {
            let identity = address.identity().to_string();
            for (there, other) in environments.iter().enumerate() {
                let absent = !inventories[there].contains(&identity);
                let parent_absent = address
                    .parent()
                    .is_some_and(|key| !other.manifest.workers.contains_key(key));
                if !absent
                    || parent_absent
                    || !(env.selected || other.selected)
                    || env.ignores(&address)
                    || other.ignores(&address)
                    || !reported.insert((identity.clone(), there))
                {
                    continue;
                }
                warnings.push(warning(&address, env, other));
            }
        }
    }
    warnings
}

fn warning(address: &Compared, env: &Environment<'_>, other: &Environment<'_>) -> Diagnostic {
    let what = address.describe();
    let primary = Problem::error(
        "manifest::parity",
        address.path(env.manifest),
        format!("{what} is in {} but not in {}", env.name, other.name),
    )
    .on_key()
    .warning()
    .label(format!("only in {}", env.name))
    .help(format!(
        "add it to {}, or list `{address}` under `parity.ignore` if the difference is intended",
        other.source.label
    ));
    let missing = Problem::error(
        "manifest::parity",
        address.path(other.manifest),
        format!("{} has no {what}", other.name),
    )
    .on_key()
    .warning()
    .label(format!("{what} missing here"));
    primary
        .place(env.source, env.spans)
        .with_related(missing.place(other.source, other.spans))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compared(text: &str) -> Compared {
        text.parse().unwrap()
    }

    #[test]
    fn addresses_parse_and_print_back() {
        for text in [
            "d1.analytics",
            "worker.api",
            "worker.api.binding.DEBUG",
            "worker.api.secret.X",
            "worker.api.headers.X-Robots-Tag",
        ] {
            assert_eq!(compared(text).to_string(), text);
        }
        assert!("worker.api.bindings.DB".parse::<Compared>().is_err());
        assert!(
            "worker.api.header.X-Robots-Tag"
                .parse::<Compared>()
                .is_err()
        );
        assert!(
            "worker.api.rate_limit.example.com"
                .parse::<Compared>()
                .is_err()
        );
        assert!("kv.cache".parse::<Compared>().is_err());
        assert!("worker".parse::<Compared>().is_err());
    }

    #[test]
    fn ignoring_a_worker_covers_its_bindings() {
        let worker = compared("worker.api");
        assert!(worker.covers(&compared("worker.api.binding.DB")));
        assert!(!worker.covers(&compared("worker.api2")));
    }

    #[test]
    fn header_names_compare_case_insensitively() {
        let a = compared("worker.api.headers.X-Frame-Options");
        let b = compared("worker.api.headers.x-frame-options");
        assert!(a.covers(&b));
    }
}
