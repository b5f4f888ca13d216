//! The Cloudflare API client against the sandbox: creates that must not double, rate limits,
//! error hints, settings changes that keep what they do not mention, and secrets kept out of logs.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lmsinfra::cloudflare::{
    Binding, Client, ClientConfig, Error, Phase, RetryPolicy, Rule, SettingsPatch,
};
use lmsinfra::secret::Secret;
use lmsinfra_sandbox::{RateLimit, SandboxConfig};

use crate::support::{ACCOUNT_ID, TOKEN, TestSandbox};

/// A client for `sandbox` whose backoff is short, so that retries do not slow the tests.
pub(crate) fn client_for(sandbox: &TestSandbox, tweak: impl FnOnce(&mut ClientConfig)) -> Client {
    let mut config = ClientConfig::new(sandbox.base_url(), Secret::new(TOKEN), ACCOUNT_ID);
    config.retry = RetryPolicy {
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(100),
        ..RetryPolicy::default()
    };
    tweak(&mut config);
    Client::new(config).expect("client for the sandbox")
}

/// Run `future` on a runtime of its own (the sandbox support owns a runtime too, and runtimes
/// cannot be dropped inside one another).
pub(crate) fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}

pub(crate) fn faults(spec: &str) -> impl FnOnce(&mut SandboxConfig) {
    let spec = spec.parse().expect("fault spec");
    move |config: &mut SandboxConfig| config.faults = Some(spec)
}

#[test]
fn http_base_url_to_a_remote_host_is_refused_before_any_request() {
    for url in [
        "http://api.cloudflare.com/client/v4",
        "http://192.168.1.10:8787/client/v4",
        "http://localhost.example.com/client/v4",
    ] {
        let config = ClientConfig::new(url, Secret::new(TOKEN), ACCOUNT_ID);
        let err = Client::new(config).expect_err(url);
        assert!(
            matches!(err, Error::BaseUrlInsecure { .. }),
            "{url}: {err:?}"
        );
        assert!(err.to_string().contains("plain http"), "{err}");
    }
    let sandbox = TestSandbox::new();
    block_on(client_for(&sandbox, |_| {}).list_scripts()).expect("loopback http is allowed");
}

#[test]
fn create_that_took_effect_then_failed_leaves_exactly_one_database() {
    for outcome in ["500", "drop"] {
        let sandbox = TestSandbox::with(faults(&format!("seed=3,after_create@d1=1:{outcome}")));
        let client = client_for(&sandbox, |_| {});
        let created = block_on(client.create_d1("lms-db-staging", Some("weur")))
            .unwrap_or_else(|e| panic!("{outcome}: {e}"));
        assert_eq!(created.name, "lms-db-staging");
        let all = block_on(client.list_d1()).unwrap();
        let named: Vec<_> = all
            .iter()
            .filter(|db| db.name == "lms-db-staging")
            .collect();
        assert_eq!(named.len(), 1, "{outcome}: {all:?}");
        assert_eq!(named[0].uuid, created.uuid);
        let stats = sandbox.sandbox().stats();
        assert_eq!(
            stats.routes["POST /accounts/{account_id}/d1/database"], 1,
            "{outcome}: the create was sent again"
        );
    }
}

#[test]
fn retry_after_is_honoured_and_holds_back_every_request() {
    let sandbox = TestSandbox::with(|config| {
        config.rate_limit = RateLimit {
            requests: 2,
            window: Duration::from_secs(1),
        }
    });
    let client = client_for(&sandbox, |_| {});
    block_on(async {
        client.list_scripts().await.unwrap();
        client.list_d1().await.unwrap();
        // Over the limit: the sandbox answers 429 with retry-after. A retry sent before that
        // time would be refused again, so a single 429 per request shows the wait was kept.
        let (a, b) = tokio::join!(client.list_scripts(), client.get_settings("lms-api"));
        a.unwrap();
        assert!(b.unwrap().is_some());
    });
    let stats = sandbox.sandbox().stats();
    let limited = stats.statuses.get(&429).copied().unwrap_or(0);
    assert!((1..=2).contains(&limited), "{stats:?}");
    assert_eq!(stats.statuses[&200], 4, "{stats:?}");
}

#[test]
fn a_retry_after_longer_than_the_client_accepts_is_reported_with_a_hint() {
    let sandbox = TestSandbox::with(faults("seed=1,429=1:5s"));
    let client = client_for(&sandbox, |config| {
        config.retry.max_retry_after = Duration::from_secs(1);
    });
    let err = block_on(client.list_scripts()).expect_err("rate limited");
    assert_eq!(err.status(), Some(429));
    let help = miette::Diagnostic::help(&err).expect("a hint").to_string();
    assert!(help.contains("1,200 requests per 5 minutes"), "{help}");
    assert_eq!(sandbox.sandbox().stats().total, 1);
}

#[test]
fn api_errors_carry_code_method_path_and_a_hint() {
    let sandbox = TestSandbox::new();
    let client = client_for(&sandbox, |_| {});
    let err = block_on(client.put_secret("lms-nonexistent", "X", &Secret::new("v")))
        .expect_err("missing worker");
    let text = err.to_string();
    assert!(
        text.contains("PUT /accounts/")
            && text.contains("/workers/scripts/lms-nonexistent/secrets")
            && text.contains("10007"),
        "{text}"
    );
    let help = miette::Diagnostic::help(&err).unwrap().to_string();
    assert!(help.contains("does not exist"), "{help}");

    let guarded = TestSandbox::with(|config| config.token = Some("the-right-token".into()));
    let err = block_on(client_for(&guarded, |_| {}).list_d1()).expect_err("wrong token");
    let help = miette::Diagnostic::help(&err).unwrap().to_string();
    assert!(help.contains("D1 Read"), "{err}: {help}");
}

#[test]
fn settings_patch_keeps_inherited_bindings_and_secrets() {
    let sandbox = TestSandbox::new();
    let client = client_for(&sandbox, |_| {});
    let before = block_on(client.get_settings("lms-api")).unwrap().unwrap();
    let bindings = before
        .bindings
        .iter()
        .map(|b| match b {
            Binding::PlainText { name, .. } if name == "ALLOWED_ORIGINS" => Binding::PlainText {
                name: name.clone(),
                text: "https://lms.example.com".into(),
            },
            other => Binding::inherit(other.name()),
        })
        .collect();
    let patch = SettingsPatch {
        bindings: Some(bindings),
        compatibility_date: Some("2025-01-15".into()),
        compatibility_flags: None,
        ..SettingsPatch::default()
    };
    let after = block_on(client.patch_settings("lms-api", &patch))
        .unwrap()
        .expect("the answer carries the bindings");
    assert_eq!(after.compatibility_date.as_deref(), Some("2025-01-15"));
    assert_eq!(after.compatibility_flags, before.compatibility_flags);
    assert_eq!(after.bindings.len(), before.bindings.len());
    assert!(after.bindings.contains(&Binding::PlainText {
        name: "ALLOWED_ORIGINS".into(),
        text: "https://lms.example.com".into()
    }));
    for secret in ["TALLY_WEBHOOK_SECRET", "CLOUDFLARE_STREAM_SIGNING_KEY_PEM"] {
        assert!(after.bindings.contains(&Binding::SecretText {
            name: secret.into()
        }));
    }
    assert_eq!(
        block_on(client.get_settings("lms-api")).unwrap().unwrap(),
        after
    );
}

#[test]
fn secrets_put_are_listed_by_name() {
    let sandbox = TestSandbox::new();
    let client = client_for(&sandbox, |_| {});
    block_on(client.put_secret(
        "lms-api-staging",
        "TALLY_WEBHOOK_SECRET",
        &Secret::new("v1"),
    ))
    .unwrap();
    let listed = sandbox.get("/accounts/{account}/workers/scripts/lms-api-staging/secrets");
    assert_eq!(
        listed,
        serde_json::json!([{ "name": "TALLY_WEBHOOK_SECRET", "type": "secret_text" }])
    );
    let settings = block_on(client.get_settings("lms-api-staging"))
        .unwrap()
        .unwrap();
    assert!(settings.bindings.contains(&Binding::SecretText {
        name: "TALLY_WEBHOOK_SECRET".into()
    }));
}

#[test]
fn d1_databases_are_created_and_deleted() {
    let sandbox = TestSandbox::new();
    let client = client_for(&sandbox, |_| {});
    let created = block_on(client.create_d1("lms-scratch", None)).unwrap();
    assert!(block_on(client.find_d1("lms-scratch")).unwrap().is_some());
    block_on(client.delete_d1(&created.uuid)).unwrap();
    assert!(block_on(client.find_d1("lms-scratch")).unwrap().is_none());
    let err = block_on(client.delete_d1(&created.uuid)).expect_err("already gone");
    assert!(err.is_not_found());
}

#[test]
fn zone_rulesets_are_read_and_replaced() {
    let sandbox = TestSandbox::new();
    let client = client_for(&sandbox, |_| {});
    let zones = block_on(client.list_zones(Some("example.com"))).unwrap();
    assert_eq!(zones.len(), 1);
    let zone = &zones[0];
    let phase = Phase::HttpResponseHeadersTransform;
    let before = block_on(client.get_ruleset(&zone.id, phase)).unwrap();
    let rule = Rule {
        id: None,
        action: "rewrite".into(),
        expression: "(http.host eq \"lms.example.com\")".into(),
        description: Some("lmsinfra: security headers".into()),
        enabled: Some(true),
        action_parameters: Some(serde_json::json!({
            "headers": {"X-Frame-Options": {"operation": "set", "value": "DENY"}}
        })),
        ratelimit: None,
        reference: None,
        version: None,
        last_updated: None,
        extra: serde_json::Map::new(),
    };
    let put = block_on(client.put_ruleset(&zone.id, phase, std::slice::from_ref(&rule))).unwrap();
    assert_eq!(put.rules.len(), 1);
    assert!(put.rules[0].id.is_some());
    assert_eq!(put.rules[0].expression, rule.expression);
    let read = block_on(client.get_ruleset(&zone.id, phase))
        .unwrap()
        .unwrap();
    assert_eq!(read, put);
    assert_ne!(before.as_ref(), Some(&read));
    assert!(
        block_on(client.list_zones(Some("absent.example")))
            .unwrap()
            .is_empty()
    );
}

/// Captured log output, shared with the subscriber.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn token_and_secret_values_never_reach_the_logs() {
    const TOKEN_CANARY: &str = "canary-token-5b1f0e";
    const SECRET_CANARY: &str = "canary-secret-a9c3d7";
    let sandbox = TestSandbox::new();
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut config = ClientConfig::new(sandbox.base_url(), Secret::new(TOKEN_CANARY), ACCOUNT_ID);
    config.retry.base_delay = Duration::from_millis(10);
    let client = Client::new(config).unwrap();
    let mut errors = Vec::new();
    block_on(async {
        client
            .put_secret(
                "lms-api",
                "TALLY_WEBHOOK_SECRET",
                &Secret::new(SECRET_CANARY),
            )
            .await
            .unwrap();
        let err = client
            .put_secret("lms-nonexistent", "X", &Secret::new(SECRET_CANARY))
            .await
            .expect_err("missing worker");
        errors.push(format!("{err} {err:?}"));
        client.get_settings("lms-api").await.unwrap();
    });
    errors.push(format!("{client:?}"));

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("cloudflare_request"),
        "nothing was logged: {logs}"
    );
    assert!(logs.contains("/workers/scripts/lms-api/secrets"), "{logs}");
    for text in errors.iter().chain([&logs]) {
        assert!(!text.contains(TOKEN_CANARY), "the token leaked: {text}");
        assert!(!text.contains(SECRET_CANARY), "a secret leaked: {text}");
    }
}
