//! Worker scripts: the script list, versioned settings (bindings and compatibility), secrets,
//! versions and deployments.
//!
//! lmsinfra changes settings, never code, so its writes are a settings PATCH (which may carry
//! new secret values with the bindings), a secret PUT, and a deployment of versions that exist.
//! A PATCH that carries `bindings` replaces the whole list, so [`Binding::Inherit`] exists for
//! the caller to keep what it does not mean to change.

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Body, Call, Client, Error};
use crate::secret::Secret;

/// A Worker script, as the script list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Script {
    /// The script's name.
    pub id: String,
    /// Changes whenever the script's content changes.
    #[serde(default)]
    pub etag: Option<String>,
    /// When the script was created.
    #[serde(default)]
    pub created_on: Option<String>,
    /// When the script last changed.
    #[serde(default)]
    pub modified_on: Option<String>,
}

/// A script's versioned settings as `GET …/settings` returns them (other fields tolerated).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScriptSettings {
    /// Every binding, secrets included (without values).
    pub bindings: Vec<Binding>,
    /// The compatibility date, when set.
    #[serde(default)]
    pub compatibility_date: Option<String>,
    /// The compatibility flags.
    #[serde(default)]
    pub compatibility_flags: Vec<String>,
}

/// What a version or deployment says about itself. `workers/message` is cut to 1000 bytes by
/// Cloudflare; a `workers/tag` over 100 bytes is refused. `workers/triggered_by` is set by
/// Cloudflare only (`upload`, `secret`, `rollback`, …), so it is read, never sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Annotations {
    /// Free text: who made the version and why.
    #[serde(
        rename = "workers/message",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub message: Option<String>,
    /// A short label, such as a git revision.
    #[serde(
        rename = "workers/tag",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub tag: Option<String>,
    /// What made the version or deployment, as Cloudflare records it.
    #[serde(rename = "workers/triggered_by", default, skip_serializing)]
    pub triggered_by: Option<String>,
}

/// A settings change: only the fields that are `Some` are sent. `bindings`, when sent,
/// replaces the whole list: name every binding and secret to keep as [`Binding::Inherit`].
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SettingsPatch {
    /// The complete new binding list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bindings: Option<Vec<Binding>>,
    /// The new compatibility date.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compatibility_date: Option<String>,
    /// The new compatibility flags.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compatibility_flags: Option<Vec<String>>,
    /// The annotations of the version the change makes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Annotations>,
    /// Secrets to set in the same version, sent as `secret_text` bindings with their text
    /// after `bindings` (a secret kept as it is belongs in `bindings`, without a value).
    #[serde(skip)]
    pub secrets: Vec<(String, Secret)>,
}

impl SettingsPatch {
    /// The `settings` part as sent: the fields, and the new secrets among the bindings.
    fn to_json(&self) -> Result<String, serde_json::Error> {
        let mut value = serde_json::to_value(self)?;
        if !self.secrets.is_empty() {
            let bindings = value
                .as_object_mut()
                .map(|object| object.entry("bindings").or_insert_with(|| json!([])));
            if let Some(serde_json::Value::Array(bindings)) = bindings {
                bindings.extend(self.secrets.iter().map(|(name, value)| {
                    json!({"type": "secret_text", "name": name, "text": value.expose()})
                }));
            }
        }
        serde_json::to_string(&value)
    }
}

/// A Worker binding, in settings answers and in settings changes. Kinds lmsinfra does not
/// manage are kept whole in [`Binding::Other`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Binding {
    /// A D1 database.
    D1 {
        /// The name the code sees.
        name: String,
        /// The database's uuid (`id` is the deprecated spelling).
        #[serde(alias = "id")]
        database_id: String,
    },
    /// A plain-text variable.
    PlainText {
        /// The name the code sees.
        name: String,
        /// The value.
        text: String,
    },
    /// A secret; answers never carry its value, and this form never sends one (a value goes in
    /// [`SettingsPatch::secrets`] or [`Client::put_secret`]).
    SecretText {
        /// The name the code sees.
        name: String,
    },
    /// A Workers KV namespace.
    KvNamespace {
        /// The name the code sees.
        name: String,
        /// The namespace id.
        namespace_id: String,
    },
    /// An R2 bucket.
    R2Bucket {
        /// The name the code sees.
        name: String,
        /// The bucket.
        bucket_name: String,
        /// The bucket's jurisdiction.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        jurisdiction: Option<String>,
    },
    /// Another Worker.
    Service {
        /// The name the code sees.
        name: String,
        /// The Worker's script name.
        service: String,
        /// The Worker's environment (legacy).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        environment: Option<String>,
        /// The named entrypoint.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        entrypoint: Option<String>,
    },
    /// In a change only: keep this binding as the latest version has it.
    Inherit {
        /// The name the code sees.
        name: String,
        /// The name it had before, when it is being renamed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        old_name: Option<String>,
        /// The version to inherit from (`latest` when absent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version_id: Option<String>,
    },
    /// Any other kind, kept as Cloudflare sent it.
    #[serde(untagged)]
    Other(OtherBinding),
}

/// A binding of a kind lmsinfra does not model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OtherBinding {
    /// The name the code sees.
    pub name: String,
    /// Cloudflare's binding type.
    #[serde(rename = "type")]
    pub kind: String,
    /// The remaining fields.
    #[serde(flatten)]
    pub fields: serde_json::Map<String, serde_json::Value>,
}

impl Binding {
    /// Keep the binding or secret called `name` unchanged in a settings change.
    pub fn inherit(name: impl Into<String>) -> Self {
        Self::Inherit {
            name: name.into(),
            old_name: None,
            version_id: None,
        }
    }

    /// The name the code sees.
    pub fn name(&self) -> &str {
        match self {
            Self::D1 { name, .. }
            | Self::PlainText { name, .. }
            | Self::SecretText { name }
            | Self::KvNamespace { name, .. }
            | Self::R2Bucket { name, .. }
            | Self::Service { name, .. }
            | Self::Inherit { name, .. } => name,
            Self::Other(other) => &other.name,
        }
    }

    /// Cloudflare's binding type (`d1`, `plain_text`, `secret_text`, …).
    pub fn kind(&self) -> &str {
        match self {
            Self::D1 { .. } => "d1",
            Self::PlainText { .. } => "plain_text",
            Self::SecretText { .. } => "secret_text",
            Self::KvNamespace { .. } => "kv_namespace",
            Self::R2Bucket { .. } => "r2_bucket",
            Self::Service { .. } => "service",
            Self::Inherit { .. } => "inherit",
            Self::Other(other) => &other.kind,
        }
    }

    /// Whether this binding is a secret (`secret_text`, or a `secret_key`).
    pub fn is_secret(&self) -> bool {
        matches!(self.kind(), "secret_text" | "secret_key")
    }
}

/// A script's script-level settings (`GET …/script-settings`; other fields tolerated). They
/// belong to the script, not to a version: changing them deploys nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScriptLevelSettings {
    /// Workers Logs: `{enabled, head_sampling_rate?, logs?}`.
    #[serde(default)]
    pub observability: Option<serde_json::Value>,
}

/// One deployment of a script: the versions it serves and their shares of traffic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    /// The deployment's id.
    pub id: String,
    /// The versions served, with their percentages (one at 100, or two splitting traffic).
    pub versions: Vec<DeployedVersion>,
    /// When it was made.
    #[serde(default)]
    pub created_on: Option<String>,
    /// What made it (`api`, `wrangler`, `dash`, …).
    #[serde(default)]
    pub source: Option<String>,
    /// Who made it.
    #[serde(default)]
    pub author_email: Option<String>,
    /// Its message and what triggered it.
    #[serde(default)]
    pub annotations: Annotations,
}

/// One version of a script, as the version list shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Version {
    /// The version's id.
    pub id: String,
    /// Its number, counting up from 1 per script.
    #[serde(default)]
    pub number: Option<u64>,
    /// Who made it, when and how.
    #[serde(default)]
    pub metadata: VersionMetadata,
    /// Its message, tag and what triggered it.
    #[serde(default)]
    pub annotations: Annotations,
}

/// A version's metadata (other fields tolerated).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VersionMetadata {
    /// Who made it.
    #[serde(default)]
    pub author_email: Option<String>,
    /// When.
    #[serde(default)]
    pub created_on: Option<String>,
    /// With what (`api`, `wrangler`, `dash`, …).
    #[serde(default)]
    pub source: Option<String>,
}

/// A version with what it holds: `GET …/versions/{id}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct VersionDetail {
    /// The version as the list shows it.
    #[serde(flatten)]
    pub version: Version,
    /// Its bindings and settings.
    #[serde(default)]
    pub resources: VersionResources,
}

/// What a version holds (other fields tolerated).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct VersionResources {
    /// Its bindings, secrets by name only.
    #[serde(default)]
    pub bindings: Vec<Binding>,
}

/// A version a deployment serves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeployedVersion {
    /// The version's id.
    pub version_id: String,
    /// Its share of traffic, in percent.
    pub percentage: f64,
}

/// The longest `workers/message` of a deployment, in Cloudflare's schema.
const DEPLOYMENT_MESSAGE_CHARS: usize = 50;

#[derive(Deserialize)]
struct Deployments {
    deployments: Vec<Deployment>,
}

#[derive(Deserialize)]
struct Versions {
    items: Vec<VersionId>,
}

#[derive(Deserialize)]
struct VersionList {
    items: Vec<Version>,
}

#[derive(Deserialize)]
struct VersionId {
    id: String,
}

/// A secret's name and type, as the secrets list shows them (never a value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretInfo {
    /// The secret's name.
    pub name: String,
    /// `secret_text` or `secret_key`.
    #[serde(rename = "type")]
    pub kind: String,
}

impl Client {
    /// Every Worker script on the account (the list is not paged).
    pub async fn list_scripts(&self) -> Result<Vec<Script>, Error> {
        self.call(Call::get(self.account_url(&["workers", "scripts"])))
            .await
    }

    /// A script's settings; `None` when the Worker does not exist (code 10007).
    pub async fn get_settings(&self, script: &str) -> Result<Option<ScriptSettings>, Error> {
        let url = self.account_url(&["workers", "scripts", script, "settings"]);
        match self.call(Call::get(url)).await {
            Ok(settings) => Ok(Some(settings)),
            Err(err) if err.is_not_found() => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// The deployment serving a script now (the newest in the list); `Ok(None)` when the script
    /// does not exist, `Ok(Some(None))` when it has no deployment.
    pub async fn current_deployment(
        &self,
        script: &str,
    ) -> Result<Option<Option<Deployment>>, Error> {
        let url = self.account_url(&["workers", "scripts", script, "deployments"]);
        match self.call::<Deployments>(Call::get(url)).await {
            Ok(list) => Ok(Some(list.deployments.into_iter().next())),
            Err(err) if err.is_not_found() => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// A script's deployments, newest (the serving one) first; `None` when the script does not
    /// exist.
    pub async fn list_deployments(&self, script: &str) -> Result<Option<Vec<Deployment>>, Error> {
        let url = self.account_url(&["workers", "scripts", script, "deployments"]);
        match self.call::<Deployments>(Call::get(url)).await {
            Ok(list) => Ok(Some(list.deployments)),
            Err(err) if err.is_not_found() => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// A script's versions that can still be deployed (the newest 100), newest first; `None`
    /// when the script does not exist.
    pub async fn deployable_versions(&self, script: &str) -> Result<Option<Vec<Version>>, Error> {
        let mut url = self.account_url(&["workers", "scripts", script, "versions"]);
        url.query_pairs_mut().append_pair("deployable", "true");
        match self.call::<VersionList>(Call::get(url)).await {
            Ok(list) => Ok(Some(list.items)),
            Err(err) if err.is_not_found() => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// One version with its bindings; `None` when the script or the version does not exist.
    pub async fn get_version(
        &self,
        script: &str,
        version: &str,
    ) -> Result<Option<VersionDetail>, Error> {
        let url = self.account_url(&["workers", "scripts", script, "versions", version]);
        match self.call(Call::get(url)).await {
            Ok(detail) => Ok(Some(detail)),
            Err(err) if err.is_not_found() => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Serve `versions` at their percentages (one at 100, or two adding up to 100) in a new
    /// deployment carrying `annotations`' message, cut to the 50 characters Cloudflare's schema
    /// allows a deployment's message. Cloudflare refuses (10220) when the versions'
    /// secrets differ from the ones serving, unless `force`: a deployment of an older version
    /// brings its secret values back.
    pub async fn create_deployment(
        &self,
        script: &str,
        versions: &[DeployedVersion],
        annotations: &Annotations,
        force: bool,
    ) -> Result<Deployment, Error> {
        let mut url = self.account_url(&["workers", "scripts", script, "deployments"]);
        if force {
            url.query_pairs_mut().append_pair("force", "true");
        }
        let mut annotations = annotations.clone();
        // Only a version carries a tag; a deployment has a message.
        annotations.tag = None;
        annotations.message = annotations
            .message
            .map(|m| m.chars().take(DEPLOYMENT_MESSAGE_CHARS).collect());
        let body = serde_json::json!({
            "strategy": "percentage",
            "versions": versions,
            "annotations": annotations,
        });
        self.call(Call::with(Method::POST, url, Body::Json(body)))
            .await
    }

    /// The id of a script's newest version, deployed or not (the list is newest first);
    /// `Ok(None)` when the script does not exist, `Ok(Some(None))` when it has no version.
    pub async fn newest_version(&self, script: &str) -> Result<Option<Option<String>>, Error> {
        let mut url = self.account_url(&["workers", "scripts", script, "versions"]);
        url.query_pairs_mut().append_pair("per_page", "10");
        match self.call::<Versions>(Call::get(url)).await {
            Ok(list) => Ok(Some(list.items.into_iter().next().map(|v| v.id))),
            Err(err) if err.is_not_found() => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// A script's script-level settings; `None` when the Worker does not exist (code 10007).
    pub async fn get_script_settings(
        &self,
        script: &str,
    ) -> Result<Option<ScriptLevelSettings>, Error> {
        let url = self.account_url(&["workers", "scripts", script, "script-settings"]);
        match self.call(Call::get(url)).await {
            Ok(settings) => Ok(Some(settings)),
            Err(err) if err.is_not_found() => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Change a script's script-level settings (JSON): only the fields `changes` holds.
    pub async fn patch_script_settings(
        &self,
        script: &str,
        changes: &serde_json::Value,
    ) -> Result<ScriptLevelSettings, Error> {
        let url = self.account_url(&["workers", "scripts", script, "script-settings"]);
        self.call(Call::with(Method::PATCH, url, Body::Json(changes.clone())))
            .await
    }

    /// Change a script's settings (multipart, one `settings` part); returns them as changed, or
    /// `None` when the answer leaves the bindings out (the SDKs type them as optional there).
    pub async fn patch_settings(
        &self,
        script: &str,
        settings: &SettingsPatch,
    ) -> Result<Option<ScriptSettings>, Error> {
        let url = self.account_url(&["workers", "scripts", script, "settings"]);
        let path = self.display_path(&url);
        let json = settings.to_json().map_err(|err| Error::Decode {
            method: Method::PATCH,
            path: path.clone(),
            detail: err.to_string(),
        })?;
        let answer: serde_json::Value = self
            .call(Call::with(Method::PATCH, url, Body::SettingsForm(json)))
            .await?;
        if answer.get("bindings").is_none() {
            return Ok(None);
        }
        serde_json::from_value(answer)
            .map(Some)
            .map_err(|err| Error::Decode {
                method: Method::PATCH,
                path,
                detail: err.to_string(),
            })
    }

    /// Create or replace a secret (this makes a new version and deploys it).
    pub async fn put_secret(&self, script: &str, name: &str, value: &Secret) -> Result<(), Error> {
        let url = self.account_url(&["workers", "scripts", script, "secrets"]);
        let body = serde_json::json!({"name": name, "text": value.expose(), "type": "secret_text"});
        let _: SecretInfo = self
            .call(Call::with(Method::PUT, url, Body::Json(body)))
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_read_known_and_unknown_bindings() {
        let settings: ScriptSettings = serde_json::from_value(json!({
            "bindings": [
                {"type": "d1", "name": "DB", "id": "uuid-1"},
                {"type": "secret_text", "name": "TOKEN"},
                {"type": "queue", "name": "Q", "queue_name": "jobs"},
                {"type": "plain_text", "name": "MODE", "text": "prod"}
            ],
            "compatibility_date": "2024-12-01",
            "usage_model": "standard",
            "placement": {}
        }))
        .unwrap();
        assert_eq!(
            settings.bindings[0],
            Binding::D1 {
                name: "DB".into(),
                database_id: "uuid-1".into()
            }
        );
        let Binding::Other(queue) = &settings.bindings[2] else {
            panic!("queue is not modelled")
        };
        assert_eq!(queue.kind, "queue");
        assert_eq!(queue.fields["queue_name"], "jobs");
        assert!(settings.compatibility_flags.is_empty());
        assert_eq!(
            (settings.bindings[2].name(), settings.bindings[2].kind()),
            ("Q", "queue")
        );
        assert!(settings.bindings[1].is_secret());
        assert!(!settings.bindings[3].is_secret());
    }

    #[test]
    fn settings_without_bindings_are_refused() {
        assert!(
            serde_json::from_value::<ScriptSettings>(json!({"compatibility_date": "x"})).is_err()
        );
    }

    #[test]
    fn a_patch_can_keep_bindings_it_does_not_change() {
        let patch = SettingsPatch {
            bindings: Some(vec![
                Binding::inherit("TALLY_WEBHOOK_SECRET"),
                Binding::PlainText {
                    name: "MODE".into(),
                    text: "prod".into(),
                },
                Binding::Other(OtherBinding {
                    name: "Q".into(),
                    kind: "queue".into(),
                    fields: json!({"queue_name": "jobs"}).as_object().unwrap().clone(),
                }),
            ]),
            compatibility_date: None,
            compatibility_flags: Some(vec!["nodejs_compat".into()]),
            ..SettingsPatch::default()
        };
        assert_eq!(
            serde_json::to_value(&patch).unwrap(),
            json!({
                "bindings": [
                    {"type": "inherit", "name": "TALLY_WEBHOOK_SECRET"},
                    {"type": "plain_text", "name": "MODE", "text": "prod"},
                    {"name": "Q", "type": "queue", "queue_name": "jobs"}
                ],
                "compatibility_flags": ["nodejs_compat"]
            })
        );
    }

    #[test]
    fn new_secrets_go_with_the_bindings_and_annotations_in_one_part() {
        let patch = SettingsPatch {
            bindings: Some(vec![Binding::Other(OtherBinding {
                name: "KEPT".into(),
                kind: "secret_text".into(),
                fields: serde_json::Map::new(),
            })]),
            annotations: Some(Annotations {
                message: Some("lmsinfra apply staging".into()),
                tag: Some("abc1234".into()),
                triggered_by: Some("upload".into()),
            }),
            secrets: vec![("NEW".into(), Secret::new("v"))],
            ..SettingsPatch::default()
        };
        let sent: serde_json::Value = serde_json::from_str(&patch.to_json().unwrap()).unwrap();
        assert_eq!(
            sent,
            json!({
                "bindings": [
                    {"name": "KEPT", "type": "secret_text"},
                    {"type": "secret_text", "name": "NEW", "text": "v"}
                ],
                "annotations": {"workers/message": "lmsinfra apply staging", "workers/tag": "abc1234"}
            })
        );
        assert!(!format!("{patch:?}").contains("\"v\""));
    }
}
