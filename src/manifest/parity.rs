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

/// One thing parity compares, named as plans name it (`worker.api.binding.DB`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Address {
    D1(String),
    Worker(String),
    Binding(String, String),
    Secret(String, String),
    Header(String, String),
}

impl FromStr for Address {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.splitn(4, '.').collect();
        if parts.iter().any(|part| part.is_empty()) {
            return Err("it has an empty part".to_owned());
        }
        let owned = |at: usize| parts[at].to_owned();
        match parts.as_slice() {
            ["d1", _] => Ok(Self::D1(owned(1))),
            ["worker", _] => Ok(Self::Worker(owned(1))),
            ["worker", _, "binding", _] => Ok(Self::Binding(owned(1), owned(3))),
            ["worker", _, "secret", _] => Ok(Self::Secret(owned(1), owned(3))),
            ["worker", _, "header", _] => Ok(Self::Header(owned(1), owned(3))),
            ["worker", _, kind, _] => Err(format!(
                "`{kind}` is not one of `binding`, `secret`, `header`"
            )),
            [kind, ..] if *kind != "d1" && *kind != "worker" => {
                Err(format!("it starts with `{kind}`, not `d1` or `worker`"))
            }
            _ => Err("it has the wrong number of parts".to_owned()),
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::D1(key) => write!(f, "d1.{key}"),
            Self::Worker(key) => write!(f, "worker.{key}"),
            Self::Binding(key, name) => write!(f, "worker.{key}.binding.{name}"),
            Self::Secret(key, name) => write!(f, "worker.{key}.secret.{name}"),
            Self::Header(key, name) => write!(f, "worker.{key}.header.{name}"),
        }
    }
}

impl Address {
    /// What compares equal: the address, with header names in lowercase (HTTP field names are
    /// case-insensitive).
    fn identity(&self) -> String {
        match self {
            Self::Header(key, name) => format!("worker.{key}.header.{}", name.to_ascii_lowercase()),
            _ => self.to_string(),
        }
    }

    /// Whether ignoring `self` covers `other` (itself, or something inside it).
    fn covers(&self, other: &Address) -> bool {
        let (mine, theirs) = (self.identity(), other.identity());
        theirs == mine || theirs.starts_with(&format!("{mine}."))
    }

    fn describe(&self) -> String {
        match self {
            Self::D1(key) => format!("database `{key}`"),
            Self::Worker(key) => format!("worker `{key}`"),
            Self::Binding(key, name) => format!("binding `{name}` of worker `{key}`"),
            Self::Secret(key, name) => format!("secret `{name}` of worker `{key}`"),
            Self::Header(key, name) => format!("required header `{name}` of worker `{key}`"),
        }
    }

    /// Where the thing sits in `manifest`; for something absent, where it would go.
    fn path(&self, manifest: &Manifest) -> NodePath {
        let owned = |parts: &[&str]| parts.iter().map(|part| (*part).to_owned()).collect();
        match self {
            Self::D1(key) => owned(&["d1_databases", key]),
            Self::Worker(key) => owned(&["workers", key]),
            Self::Binding(key, name) => owned(&["workers", key, "bindings", name]),
            Self::Secret(key, name) => {
                let index = manifest
                    .workers
                    .get(key)
                    .and_then(|worker| worker.secrets.iter().position(|secret| secret == name));
                match index {
                    Some(index) => owned(&["workers", key, "secrets", &index.to_string()]),
                    None => owned(&["workers", key, "secrets"]),
                }
            }
            Self::Header(key, name) => owned(&["workers", key, "headers", "require", name]),
        }
    }
}

/// Everything parity compares in one manifest, in manifest order.
fn addresses(manifest: &Manifest) -> Vec<Address> {
    let mut all: Vec<Address> = manifest
        .d1_databases
        .keys()
        .cloned()
        .map(Address::D1)
        .collect();
    for (key, worker) in &manifest.workers {
        all.push(Address::Worker(key.clone()));
        let with_key = |name: &String| (key.clone(), name.clone());
        all.extend(
            worker
                .bindings
                .keys()
                .map(with_key)
                .map(|(k, n)| Address::Binding(k, n)),
        );
        all.extend(
            worker
                .secrets
                .iter()
                .map(with_key)
                .map(|(k, n)| Address::Secret(k, n)),
        );
        if let Some(headers) = &worker.headers {
            all.extend(
                headers
                    .require
                    .keys()
                    .map(with_key)
                    .map(|(k, n)| Address::Header(k, n)),
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
    fn ignores(&self, address: &Address) -> bool {
        self.manifest
            .parity
            .ignore
            .iter()
            .filter_map(|text| text.parse::<Address>().ok())
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
                .map(Address::identity)
                .collect()
        })
        .collect();
    let mut reported: HashSet<(String, usize)> = HashSet::new();
    let mut warnings = Vec::new();
    for env in environments {
        for address in addresses(env.manifest) {
            let identity = address.identity();
            for (there, other) in environments.iter().enumerate() {
                let absent = !inventories[there].contains(&identity);
                let parent_absent = match &address {
                    Address::D1(_) | Address::Worker(_) => false,
                    Address::Binding(key, _)
                    | Address::Secret(key, _)
                    | Address::Header(key, _) => !other.manifest.workers.contains_key(key),
                };
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

fn warning(address: &Address, env: &Environment<'_>, other: &Environment<'_>) -> Diagnostic {
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

    #[test]
    fn addresses_parse_and_print_back() {
        for text in [
            "d1.analytics",
            "worker.api",
            "worker.api.binding.DEBUG",
            "worker.api.secret.X",
            "worker.api.header.X-Robots-Tag",
        ] {
            assert_eq!(text.parse::<Address>().unwrap().to_string(), text);
        }
        assert!("worker.api.bindings.DB".parse::<Address>().is_err());
        assert!("kv.cache".parse::<Address>().is_err());
        assert!("worker".parse::<Address>().is_err());
    }

    #[test]
    fn ignoring_a_worker_covers_its_bindings() {
        let worker = Address::Worker("api".to_owned());
        assert!(worker.covers(&Address::Binding("api".to_owned(), "DB".to_owned())));
        assert!(!worker.covers(&Address::Worker("api2".to_owned())));
    }

    #[test]
    fn header_names_compare_case_insensitively() {
        let a = Address::Header("api".to_owned(), "X-Frame-Options".to_owned());
        let b = Address::Header("api".to_owned(), "x-frame-options".to_owned());
        assert!(a.covers(&b));
    }
}
