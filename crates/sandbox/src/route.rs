//! The routes the sandbox serves, matched by hand rather than by axum's router.
//!
//! Matching here keeps three things in one table: the route template (for stats and the request
//! log), the official operation id (the test observer validates each answer against that
//! operation's schema), and whether the operation creates something (the `after_create` fault).
//! A path that matches a template under another method is a 405 in the envelope; a path that
//! matches nothing is 7003.

use axum::http::Method;

/// What a matched route does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    UserTokenVerify,
    AccountTokenVerify,
    User,
    Accounts,
    Memberships,
    ScriptList,
    ScriptUpload,
    ScriptDelete,
    SettingsGet,
    SettingsPatch,
    ScriptSettingsGet,
    ScriptSettingsPatch,
    SecretList,
    SecretPut,
    SecretGet,
    SecretDelete,
    VersionList,
    VersionUpload,
    VersionGet,
    DeploymentList,
    DeploymentCreate,
    DeploymentGet,
    DeploymentDelete,
    ServiceGet,
    ScriptSubdomainGet,
    ScriptSubdomainPost,
    ScriptSubdomainDelete,
    AccountSubdomainGet,
    AccountSubdomainPut,
    D1List,
    D1Create,
    D1Get,
    D1Delete,
    D1Query,
    D1Raw,
    D1Export,
    D1Import,
    D1Bookmark,
    D1Restore,
    R2BucketList,
    R2BucketCreate,
    R2BucketGet,
    R2BucketDelete,
    R2ObjectList,
    R2ObjectPut,
    R2ObjectGet,
    R2ObjectDelete,
    Zones,
    RulesetGet,
    RulesetPut,
    StreamKeyList,
    StreamKeyCreate,
    StreamKeyDelete,
}

/// One row of the route table.
#[derive(Debug)]
pub(crate) struct Route {
    pub(crate) method: Method,
    pub(crate) template: &'static str,
    /// The operation id in the official schema; our own name where the subset has none.
    pub(crate) operation: &'static str,
    pub(crate) op: Op,
    /// Whether a success means something new exists (target of the `after_create` fault).
    pub(crate) creates: bool,
}

const SCRIPT: &str = "/accounts/{account_id}/workers/scripts/{script_name}";
/// An R2 object; the key is the rest of the path, `/` included.
const R2_OBJECT: &str = "/accounts/{account_id}/r2/buckets/{bucket_name}/objects/{object_key}";

macro_rules! routes {
    ($($method:ident $template:expr, $operation:literal, $op:ident, $creates:literal;)*) => {
        /// Every route, in matching order.
        pub(crate) fn table() -> &'static [Route] {
            static TABLE: std::sync::OnceLock<Vec<Route>> = std::sync::OnceLock::new();
            TABLE.get_or_init(|| vec![$(Route {
                method: Method::$method,
                template: $template,
                operation: $operation,
                op: Op::$op,
                creates: $creates,
            }),*])
        }
    };
}

routes! {
    GET "/user/tokens/verify", "user-api-tokens-verify-token", UserTokenVerify, false;
    GET "/accounts/{account_id}/tokens/verify", "account-api-tokens-verify-token", AccountTokenVerify, false;
    GET "/user", "user-user-details", User, false;
    GET "/accounts", "accounts-list-accounts", Accounts, false;
    GET "/memberships", "user'-s-account-memberships-list-memberships", Memberships, false;
    GET "/accounts/{account_id}/workers/scripts", "worker-script-list-workers", ScriptList, false;
    PUT SCRIPT, "worker-script-upload-worker-module", ScriptUpload, true;
    DELETE SCRIPT, "worker-script-delete-worker", ScriptDelete, false;
    GET "/accounts/{account_id}/workers/scripts/{script_name}/settings", "worker-script-get-settings", SettingsGet, false;
    PATCH "/accounts/{account_id}/workers/scripts/{script_name}/settings", "worker-script-patch-settings", SettingsPatch, false;
    GET "/accounts/{account_id}/workers/scripts/{script_name}/script-settings", "worker-script-settings-get-settings", ScriptSettingsGet, false;
    PATCH "/accounts/{account_id}/workers/scripts/{script_name}/script-settings", "worker-script-settings-patch-settings", ScriptSettingsPatch, false;
    GET "/accounts/{account_id}/workers/scripts/{script_name}/secrets", "worker-script-list-secrets", SecretList, false;
    PUT "/accounts/{account_id}/workers/scripts/{script_name}/secrets", "worker-script-put-secret", SecretPut, true;
    GET "/accounts/{account_id}/workers/scripts/{script_name}/secrets/{secret_name}", "worker-script-get-secret", SecretGet, false;
    DELETE "/accounts/{account_id}/workers/scripts/{script_name}/secrets/{secret_name}", "worker-script-delete-secret", SecretDelete, false;
    GET "/accounts/{account_id}/workers/scripts/{script_name}/versions", "worker-versions-list-versions", VersionList, false;
    POST "/accounts/{account_id}/workers/scripts/{script_name}/versions", "worker-versions-upload-version", VersionUpload, true;
    GET "/accounts/{account_id}/workers/scripts/{script_name}/versions/{version_id}", "worker-versions-get-version-detail", VersionGet, false;
    GET "/accounts/{account_id}/workers/scripts/{script_name}/deployments", "worker-deployments-list-deployments", DeploymentList, false;
    POST "/accounts/{account_id}/workers/scripts/{script_name}/deployments", "worker-deployments-create-deployment", DeploymentCreate, true;
    GET "/accounts/{account_id}/workers/scripts/{script_name}/deployments/{deployment_id}", "worker-deployments-get-deployment", DeploymentGet, false;
    DELETE "/accounts/{account_id}/workers/scripts/{script_name}/deployments/{deployment_id}", "worker-deployments-delete-deployment", DeploymentDelete, false;
    GET "/accounts/{account_id}/workers/services/{service_name}", "sandbox-worker-service-get", ServiceGet, false;
    GET "/accounts/{account_id}/workers/scripts/{script_name}/subdomain", "worker-script-get-subdomain", ScriptSubdomainGet, false;
    POST "/accounts/{account_id}/workers/scripts/{script_name}/subdomain", "worker-script-post-subdomain", ScriptSubdomainPost, false;
    DELETE "/accounts/{account_id}/workers/scripts/{script_name}/subdomain", "worker-script-delete-subdomain", ScriptSubdomainDelete, false;
    GET "/accounts/{account_id}/workers/subdomain", "worker-subdomain-get-subdomain", AccountSubdomainGet, false;
    PUT "/accounts/{account_id}/workers/subdomain", "worker-subdomain-create-subdomain", AccountSubdomainPut, false;
    GET "/accounts/{account_id}/d1/database", "cloudflare-d1-list-databases", D1List, false;
    POST "/accounts/{account_id}/d1/database", "cloudflare-d1-create-database", D1Create, true;
    GET "/accounts/{account_id}/d1/database/{database_id}", "cloudflare-d1-get-database", D1Get, false;
    DELETE "/accounts/{account_id}/d1/database/{database_id}", "cloudflare-d1-delete-database", D1Delete, false;
    POST "/accounts/{account_id}/d1/database/{database_id}/query", "cloudflare-d1-query-database", D1Query, false;
    POST "/accounts/{account_id}/d1/database/{database_id}/raw", "cloudflare-d1-raw-database-query", D1Raw, false;
    POST "/accounts/{account_id}/d1/database/{database_id}/export", "cloudflare-d1-export-database", D1Export, false;
    POST "/accounts/{account_id}/d1/database/{database_id}/import", "cloudflare-d1-import-database", D1Import, false;
    GET "/accounts/{account_id}/d1/database/{database_id}/time_travel/bookmark", "cloudflare-d1-time-travel-get-bookmark", D1Bookmark, false;
    POST "/accounts/{account_id}/d1/database/{database_id}/time_travel/restore", "cloudflare-d1-time-travel-restore", D1Restore, false;
    GET "/accounts/{account_id}/r2/buckets", "r2-list-buckets", R2BucketList, false;
    POST "/accounts/{account_id}/r2/buckets", "r2-create-bucket", R2BucketCreate, true;
    GET "/accounts/{account_id}/r2/buckets/{bucket_name}", "r2-get-bucket", R2BucketGet, false;
    DELETE "/accounts/{account_id}/r2/buckets/{bucket_name}", "r2-delete-bucket", R2BucketDelete, false;
    GET "/accounts/{account_id}/r2/buckets/{bucket_name}/objects", "r2-list-objects", R2ObjectList, false;
    PUT R2_OBJECT, "r2-put-object", R2ObjectPut, true;
    GET R2_OBJECT, "r2-get-object", R2ObjectGet, false;
    DELETE R2_OBJECT, "r2-delete-object", R2ObjectDelete, false;
    GET "/zones", "zones-get", Zones, false;
    GET "/zones/{zone_id}/rulesets/phases/{ruleset_phase}/entrypoint", "getZoneEntrypointRuleset", RulesetGet, false;
    PUT "/zones/{zone_id}/rulesets/phases/{ruleset_phase}/entrypoint", "updateZoneEntrypointRuleset", RulesetPut, false;
    GET "/accounts/{account_id}/stream/keys", "stream-signing-keys-list-signing-keys", StreamKeyList, false;
    POST "/accounts/{account_id}/stream/keys", "stream-signing-keys-create-signing-keys", StreamKeyCreate, true;
    DELETE "/accounts/{account_id}/stream/keys/{identifier}", "stream-signing-keys-delete-signing-keys", StreamKeyDelete, false;
}

/// The outcome of matching a path.
#[derive(Debug)]
pub(crate) enum Match {
    /// A route, with its path parameters percent-decoded, in template order.
    Found(&'static Route, Vec<String>),
    /// The path exists under other methods.
    WrongMethod,
    NotFound,
}

/// Match `method` and `path` (relative to `/client/v4`) against the table.
pub(crate) fn resolve(method: &Method, path: &str) -> Match {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let mut wrong_method = false;
    for route in table() {
        let Some(params) = matches(route.template, &segments) else {
            continue;
        };
        if route.method == *method {
            return Match::Found(route, params);
        }
        wrong_method = true;
    }
    if wrong_method {
        Match::WrongMethod
    } else {
        Match::NotFound
    }
}

fn matches(template: &str, segments: &[&str]) -> Option<Vec<String>> {
    let parts: Vec<&str> = template.split('/').skip(1).collect();
    let joined;
    let segments = match parts.last() {
        Some(&"{object_key}") if segments.len() > parts.len() => {
            joined = segments[parts.len() - 1..].join("/");
            let mut head = segments[..parts.len() - 1].to_vec();
            head.push(&joined);
            head
        }
        _ => segments.to_vec(),
    };
    if parts.len() != segments.len() {
        return None;
    }
    let mut params = Vec::new();
    for (part, segment) in parts.iter().zip(&segments) {
        if part.starts_with('{') {
            if segment.is_empty() {
                return None;
            }
            params.push(percent_decode(segment)?);
        } else if part != segment {
            return None;
        }
    }
    Some(params)
}

/// Decode `%XX` escapes; `None` when an escape is broken or the result is not UTF-8.
fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_are_percent_decoded() {
        let Match::Found(route, params) = resolve(
            &Method::DELETE,
            "/accounts/a/workers/scripts/s/secrets/MY%20KEY",
        ) else {
            panic!("no match");
        };
        assert_eq!(route.op, Op::SecretDelete);
        assert_eq!(params, ["a", "s", "MY KEY"]);
    }

    #[test]
    fn known_path_under_another_method_is_wrong_method() {
        assert!(matches!(
            resolve(&Method::POST, "/user/tokens/verify"),
            Match::WrongMethod
        ));
        assert!(matches!(resolve(&Method::GET, "/nope"), Match::NotFound));
    }
}
