//! One owner per physical resource: a Worker or D1 database name belongs to one environment.
//!
//! Two manifests naming the same Cloudflare resource would both reconcile it: a staging manifest
//! that declares production's database `absent` deletes it, one that names production's Worker
//! patches it. Parity compares keys and only warns; this compares physical names on one account
//! and is an error in every environment involved, so `validate`, `plan` and `apply` all refuse
//! such a manifest. Environments on different accounts may share names, unless
//! `CLOUDFLARE_ACCOUNT_ID` points every environment at one account.

use super::diagnostic::{Diagnostic, Problem, Source};
use super::model::Manifest;
use super::span::{NodePath, SpanIndex};

/// One environment as the ownership check sees it.
pub(crate) struct Claimant<'a> {
    pub(crate) name: &'a str,
    pub(crate) manifest: &'a Manifest,
    pub(crate) spans: &'a SpanIndex,
    pub(crate) source: &'a Source,
}

/// A physical resource one manifest declares.
struct Claim<'a> {
    kind: &'static str,
    section: &'static str,
    key: &'a str,
    name: &'a str,
}

impl Claim<'_> {
    fn path(&self) -> NodePath {
        vec![
            self.section.to_owned(),
            self.key.to_owned(),
            "name".to_owned(),
        ]
    }
}

fn claims(manifest: &Manifest) -> Vec<Claim<'_>> {
    let workers = manifest.workers.iter().map(|(key, worker)| Claim {
        kind: "Worker",
        section: "workers",
        key,
        name: &worker.name,
    });
    let databases = manifest.d1_databases.iter().map(|(key, database)| Claim {
        kind: "D1 database",
        section: "d1_databases",
        key,
        name: &database.name,
    });
    workers.chain(databases).collect()
}

/// Which account each environment's resources live on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Accounts {
    /// Each manifest's `account_id`.
    AsDeclared,
    /// One account for every environment (`CLOUDFLARE_ACCOUNT_ID` overrides every manifest).
    Overridden,
}

/// The errors of environment `env` (an index into `all`): one per resource it declares that
/// another environment on the same account declares too, pointing at both declarations.
pub(crate) fn conflicts(all: &[Claimant<'_>], env: usize, accounts: Accounts) -> Vec<Diagnostic> {
    let mine = &all[env];
    let mut errors = Vec::new();
    for claim in claims(mine.manifest) {
        for (index, other) in all.iter().enumerate() {
            let same_account = accounts == Accounts::Overridden
                || other
                    .manifest
                    .account_id
                    .eq_ignore_ascii_case(&mine.manifest.account_id);
            if index == env || !same_account {
                continue;
            }
            let theirs = claims(other.manifest)
                .into_iter()
                .find(|c| c.section == claim.section && c.name.eq_ignore_ascii_case(claim.name));
            let Some(theirs) = theirs else {
                continue;
            };
            let primary = Problem::error(
                "manifest::shared-resource",
                claim.path(),
                format!(
                    "{} `{}` is also declared by {} ({}.{}): one resource, two environments",
                    claim.kind, claim.name, other.name, theirs.section, theirs.key
                ),
            )
            .label(format!("also {}'s", other.name))
            .help(format!(
                "each environment owns its own Workers and databases; give {}.{} a name of its own in {} (apply would otherwise change or delete {}'s {})",
                claim.section, claim.key, mine.source.label, other.name, claim.kind
            ));
            let related = Problem::error(
                "manifest::shared-resource",
                theirs.path(),
                format!(
                    "{} declares {} `{}` here",
                    other.name, theirs.kind, theirs.name
                ),
            )
            .label(format!("declared by {}", other.name));
            errors.push(
                primary
                    .place(mine.source, mine.spans)
                    .with_related(related.place(other.source, other.spans)),
            );
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::load;

    fn claimant<'a>(name: &'a str, checked: &'a load::Checked) -> Claimant<'a> {
        Claimant {
            name,
            manifest: checked.manifest.as_ref().expect("the manifest loads"),
            spans: &checked.spans,
            source: &checked.source,
        }
    }

    #[test]
    fn a_name_two_environments_declare_is_an_error_in_each() {
        let production = load::check(
            "production.yaml",
            "production",
            b"environment: production\naccount_id: 0123456789abcdef0123456789abcdef\nd1_databases:\n  main: { name: lms-db }\n",
        );
        let staging = load::check(
            "staging.yaml",
            "staging",
            b"environment: staging\naccount_id: 0123456789abcdef0123456789abcdef\nd1_databases:\n  main: { name: lms-db-staging }\n  legacy: { name: LMS-DB, absent: true, protect: false }\n",
        );
        let all = [
            claimant("production", &production),
            claimant("staging", &staging),
        ];
        let in_staging = conflicts(&all, 1, Accounts::AsDeclared);
        assert_eq!(in_staging.len(), 1, "{in_staging:?}");
        assert_eq!(
            (in_staging[0].file.as_str(), in_staging[0].line),
            ("staging.yaml", 5)
        );
        assert!(in_staging[0].message.contains("production"));
        assert_eq!(
            (
                in_staging[0].related[0].file.as_str(),
                in_staging[0].related[0].line
            ),
            ("production.yaml", 4)
        );
        assert_eq!(conflicts(&all, 0, Accounts::AsDeclared).len(), 1);
    }

    #[test]
    fn environments_on_different_accounts_may_share_names_unless_one_account_overrides() {
        let on = |account: &str, env: &str| {
            let text = format!(
                "environment: {env}\naccount_id: {account}\nd1_databases:\n  main: {{ name: lms-db }}\n"
            );
            load::check(&format!("{env}.yaml"), env, text.as_bytes())
        };
        let production = on("0123456789abcdef0123456789abcdef", "production");
        let staging = on("fedcba9876543210fedcba9876543210", "staging");
        let all = [
            claimant("production", &production),
            claimant("staging", &staging),
        ];
        assert_eq!(conflicts(&all, 1, Accounts::AsDeclared).len(), 0);
        assert_eq!(conflicts(&all, 1, Accounts::Overridden).len(), 1);
    }
}
