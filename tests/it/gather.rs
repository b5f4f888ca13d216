//! `gather` against the seeded sandbox: what it reads, how many requests it takes, and that
//! faults, paging and missing Workers do not change the answer.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use lmsinfra::live::{GatherOptions, Live, Probe, gather};
use lmsinfra::manifest::model::Manifest;
use serde_json::json;

use crate::client::{block_on, client_for, faults};
use crate::support::{ACCOUNT_ID, TestSandbox};

const NO_PROBES: GatherOptions = GatherOptions {
    probes: false,
    probe_timeout: Duration::from_secs(1),
    worker_traffic: None,
};

/// The LMS staging manifest (environments/staging.yaml), with `probe_url` for header checks.
fn staging(probe_url: &str) -> Manifest {
    serde_json::from_value(json!({
        "environment": "staging",
        "account_id": ACCOUNT_ID,
        "d1_databases": {"main": {"name": "lms-db-staging", "location_hint": "weur"}},
        "workers": {
            "api": {
                "name": "lms-api-staging",
                "compatibility_date": "2024-12-01",
                "compatibility_flags": ["nodejs_compat"],
                "bindings": {
                    "DB": {"type": "d1", "database": "main"},
                    "ALLOWED_ORIGINS": {"type": "plain_text", "text": "https://lms-viewer-staging.example.workers.dev"}
                },
                "secrets": ["TALLY_WEBHOOK_SECRET", "TALLY_SIGNING_SECRET",
                            "CLOUDFLARE_STREAM_SIGNING_KEY_ID", "CLOUDFLARE_STREAM_SIGNING_KEY_PEM"],
                "headers": {"url": probe_url, "require": {"X-Frame-Options": "DENY"}}
            },
            "viewer": {
                "name": "lms-viewer-staging",
                "compatibility_date": "2024-12-01",
                "bindings": {"API_ORIGIN": {"type": "plain_text", "text": "https://lms-api-staging.example.workers.dev"}}
            }
        }
    }))
    .expect("staging manifest")
}

/// The LMS production manifest, trimmed to what gather reads.
fn production() -> Manifest {
    serde_json::from_value(json!({
        "environment": "production",
        "account_id": ACCOUNT_ID,
        "d1_databases": {"main": {"name": "lms-db"}},
        "workers": {
            "api": {"name": "lms-api", "compatibility_date": "2024-12-01"},
            "viewer": {"name": "lms-viewer", "compatibility_date": "2024-12-01"}
        }
    }))
    .expect("production manifest")
}

fn gather_with(sandbox: &TestSandbox, manifest: &Manifest, options: GatherOptions) -> Live {
    let client = client_for(sandbox, |_| {});
    block_on(gather(manifest, &client, options)).expect("gather")
}

#[test]
fn gather_reads_the_seeded_account_as_it_is() {
    let sandbox = TestSandbox::new();
    let live = gather_with(&sandbox, &staging("https://unused.invalid/"), NO_PROBES);
    assert_eq!(live.account_id, ACCOUNT_ID);
    for script in [
        "lms-api",
        "lms-viewer",
        "lms-api-staging",
        "lms-viewer-staging",
    ] {
        assert!(
            live.scripts.contains(script),
            "{script} missing from {:?}",
            live.scripts
        );
    }
    let api = &live.workers["lms-api-staging"];
    assert_eq!(api.compatibility_date.as_deref(), Some("2024-12-01"));
    assert_eq!(api.compatibility_flags, ["nodejs_compat"]);
    assert!(
        api.bindings.is_empty(),
        "the audited staging API lacks its bindings"
    );
    assert_eq!(live.workers.len(), 2);
    let names: Vec<_> = live.d1_databases.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["lms-db"], "staging has no database yet");
    assert!(live.probes.is_empty());
    // No route names example.com, but it is the account's zone: it is read, with no rulesets.
    let zones: Vec<_> = live
        .zones
        .iter()
        .map(|(n, z)| (n.as_str(), z.rulesets.len()))
        .collect();
    assert_eq!(zones, [("example.com", 0)]);
    assert!(live.unread_zones.is_empty());

    let live = gather_with(&sandbox, &production(), NO_PROBES);
    let api = &live.workers["lms-api"];
    let db = api.binding("DB").expect("DB binding");
    let lmsinfra::cloudflare::Binding::D1 { database_id, .. } = db else {
        panic!("DB is not a d1 binding: {db:?}")
    };
    assert_eq!(database_id, &live.d1_databases[0].uuid);
    let mut secrets: Vec<_> = api.secret_names().collect();
    secrets.sort_unstable();
    assert_eq!(
        secrets,
        [
            "CLOUDFLARE_STREAM_SIGNING_KEY_ID",
            "CLOUDFLARE_STREAM_SIGNING_KEY_PEM",
            "TALLY_SIGNING_SECRET",
            "TALLY_WEBHOOK_SECRET"
        ]
    );
}

#[test]
fn gather_of_staging_takes_three_requests_per_worker_three_lists_and_two_per_zone() {
    let sandbox = TestSandbox::new();
    let manifest = staging("https://unused.invalid/");
    gather_with(&sandbox, &manifest, NO_PROBES);
    let stats = sandbox.sandbox().stats();
    let workers = manifest.workers.len() as u64;
    // Counters are per route template: one script list, one D1 page, one zone list, one
    // settings, deployments and versions read per declared worker, and both entrypoint
    // rulesets of the account's one zone (no route names it: owned rules may still be there),
    // and nothing else, so no request was sent twice.
    let per_route = |route: &str| stats.routes.get(route).copied().unwrap_or(0);
    assert_eq!(per_route("GET /accounts/{account_id}/workers/scripts"), 1);
    assert_eq!(per_route("GET /accounts/{account_id}/d1/database"), 1);
    assert_eq!(
        per_route("GET /accounts/{account_id}/workers/scripts/{script_name}/settings"),
        workers
    );
    assert_eq!(
        per_route("GET /accounts/{account_id}/workers/scripts/{script_name}/deployments"),
        workers
    );
    assert_eq!(
        per_route("GET /accounts/{account_id}/workers/scripts/{script_name}/versions"),
        workers
    );
    assert_eq!(per_route("GET /zones"), 1);
    assert_eq!(
        per_route("GET /zones/{zone_id}/rulesets/phases/{ruleset_phase}/entrypoint"),
        2
    );
    assert_eq!(stats.total, 3 * workers + 3 + 2, "{stats:?}");
}

#[test]
fn gather_under_throttling_and_server_errors_returns_the_same_state() {
    let manifest = staging("https://unused.invalid/");
    let calm = gather_with(&TestSandbox::new(), &manifest, NO_PROBES);
    let stormy = TestSandbox::with(faults("seed=11,429=0.2,500=0.1"));
    let live = gather_with(&stormy, &manifest, NO_PROBES);
    // Version ids are random per sandbox: compare each rollout's shape, then the rest.
    let settled = |live: &lmsinfra::live::Live| {
        let mut live = live.clone();
        for worker in live.workers.values_mut() {
            let rollout = worker.rollout.take().expect("the rollout was read");
            assert!(rollout.is_settled(), "{rollout:?}");
        }
        live.fingerprint.clear();
        live
    };
    assert_eq!(settled(&live), settled(&calm));
    let stats = stormy.sandbox().stats();
    let count = |status| stats.statuses.get(&status).copied().unwrap_or(0);
    assert!(
        count(429) + count(500) > 0,
        "no fault was injected: {stats:?}"
    );
    // The seeded zone has no entrypoint rulesets: those two reads answer 404 (10003).
    assert_eq!(
        count(200),
        3 * manifest.workers.len() as u64 + 3,
        "{stats:?}"
    );
}

#[test]
fn every_database_is_found_across_small_pages() {
    let sandbox = TestSandbox::new();
    let client = client_for(&sandbox, |_| {});
    let client = &client;
    block_on(futures::future::try_join_all((0..60).map(|i| async move {
        client.create_d1(&format!("lms-scratch-{i:02}"), None).await
    })))
    .expect("60 databases");
    let paged = client_for(&sandbox, |config| config.d1_page_size = 10);
    let before = sandbox.sandbox().stats();
    let live = block_on(gather(&production(), &paged, NO_PROBES)).unwrap();
    assert_eq!(live.d1_databases.len(), 61);
    for i in 0..60 {
        let name = format!("lms-scratch-{i:02}");
        assert!(
            live.d1_databases.iter().any(|d| d.name == name),
            "{name} not found"
        );
    }
    let after = sandbox.sandbox().stats();
    let list = "GET /accounts/{account_id}/d1/database";
    assert_eq!(
        after.routes[list] - before.routes.get(list).copied().unwrap_or(0),
        7
    );
}

#[test]
fn a_missing_worker_comes_back_absent() {
    let sandbox = TestSandbox::new();
    let mut manifest = production();
    let mut ghost = manifest.workers["api"].clone();
    ghost.name = "lms-ghost".into();
    manifest.workers.insert("ghost".into(), ghost);
    let live = gather_with(&sandbox, &manifest, NO_PROBES);
    assert!(!live.workers.contains_key("lms-ghost"));
    assert!(!live.scripts.contains("lms-ghost"));
    assert!(live.workers.contains_key("lms-api"));
}

#[test]
fn fingerprint_is_stable_until_something_the_plan_reads_changes() {
    let sandbox = TestSandbox::new();
    let manifest = staging("https://unused.invalid/");
    let client = client_for(&sandbox, |_| {});
    let first = block_on(gather(&manifest, &client, NO_PROBES)).unwrap();
    let second = block_on(gather(&manifest, &client, NO_PROBES)).unwrap();
    assert_eq!(first.fingerprint, second.fingerprint);

    block_on(client.create_d1("lms-db-staging", None)).unwrap();
    let with_db = block_on(gather(&manifest, &client, NO_PROBES)).unwrap();
    assert_ne!(with_db.fingerprint, second.fingerprint);

    let secret = lmsinfra::secret::Secret::new("s3cret");
    block_on(client.put_secret("lms-api-staging", "TALLY_SIGNING_SECRET", &secret)).unwrap();
    let with_secret = block_on(gather(&manifest, &client, NO_PROBES)).unwrap();
    assert_ne!(with_secret.fingerprint, with_db.fingerprint);
}

#[test]
fn probes_run_alongside_and_stay_out_of_the_fingerprint() {
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    std::thread::spawn(move || {
        block_on(async move {
            server.set_nonblocking(true).unwrap();
            let listener = tokio::net::TcpListener::from_std(server).unwrap();
            let app = Router::new().route(
                "/health",
                get(|| async { ([("X-Frame-Options", "DENY")], "ok") }),
            );
            axum::serve(listener, app).await
        })
    });
    let sandbox = TestSandbox::new();
    let manifest = staging(&format!("http://{addr}/health"));
    let probed = gather_with(
        &sandbox,
        &manifest,
        GatherOptions {
            probes: true,
            probe_timeout: Duration::from_secs(5),
            worker_traffic: None,
        },
    );
    let Probe::Answered {
        status, headers, ..
    } = &probed.probes["api"]
    else {
        panic!("probe failed: {:?}", probed.probes)
    };
    assert_eq!(*status, 200);
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(
        probed.probes.len(),
        1,
        "only workers with headers are probed"
    );
    let unprobed = gather_with(&sandbox, &manifest, NO_PROBES);
    assert_eq!(unprobed.fingerprint, probed.fingerprint);
}

#[test]
fn routes_bring_their_zones_and_header_rulesets() {
    let sandbox = TestSandbox::new();
    let client = client_for(&sandbox, |_| {});
    let zone = block_on(client.list_zones(Some("example.com")))
        .unwrap()
        .remove(0);
    let rule: lmsinfra::cloudflare::Rule = serde_json::from_value(json!({
        "action": "rewrite",
        "expression": "(http.host eq \"lms.example.com\")",
        "action_parameters": {"headers": {"X-Frame-Options": {"operation": "set", "value": "DENY"}}}
    }))
    .unwrap();
    let phase = lmsinfra::cloudflare::Phase::HttpResponseHeadersTransform;
    block_on(client.put_ruleset(&zone.id, phase, &[rule])).unwrap();

    let mut manifest = production();
    let api = &mut manifest.workers["api"];
    api.routes = serde_json::from_value(json!([
        {"zone": "example.com", "pattern": "lms.example.com/api/*"},
        {"zone": "missing.example", "pattern": "lms.missing.example/*"}
    ]))
    .unwrap();
    let live = block_on(gather(&manifest, &client, NO_PROBES)).unwrap();
    assert_eq!(live.zones.len(), 1, "{:?}", live.zones);
    let read = &live.zones["example.com"];
    assert_eq!(read.id, zone.id);
    let ruleset = &read.rulesets["http_response_headers_transform"];
    assert_eq!(ruleset.rules.len(), 1);
}
