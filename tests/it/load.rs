//! Many plans at once against one account stay within Cloudflare's rate limit.
//!
//! CI runs plans for every environment of every pull request, and people run them by hand, all
//! with the same token. Twenty concurrent `plan` processes against a sandbox that enforces
//! Cloudflare's real limit (1200 requests per five minutes per user) must all succeed with the
//! same answer, and none of their requests may be throttled. The budget is the user's, shared
//! with the dashboard and every other token, so a run that starts with most of it spent must
//! wait for it rather than be refused.

use std::time::Duration;

use lmsinfra_sandbox::BusyAccount;

use crate::apply::with_secrets;
use crate::support::{Lmsinfra, TestSandbox};

const PLANS: usize = 20;

#[test]
fn twenty_concurrent_plans_all_succeed_without_a_single_429() {
    let sandbox = TestSandbox::new();
    let children: Vec<_> = (0..PLANS)
        .map(|i| {
            let env = if i % 2 == 0 { "production" } else { "staging" };
            let child = Lmsinfra::new(&sandbox)
                .args(["plan", env, "--detailed-exitcode", "--no-probe"])
                .spawn();
            (env, child)
        })
        .collect();
    for (env, child) in children {
        let output = child.wait_with_output().expect("plan ends");
        // Production matches the manifest; staging is blocked on its four missing secrets.
        let expected = if env == "production" { 0 } else { 3 };
        assert_eq!(
            output.status.code(),
            Some(expected),
            "plan {env}:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let stats = sandbox.sandbox().stats();
    assert_eq!(stats.statuses.get(&429), None, "throttled: {stats:?}");
    // The only answers that are not successes are the documented "this zone has no
    // entrypoint ruleset in this phase" (404), two per plan for the seed's one zone.
    let failed: u64 = stats
        .statuses
        .iter()
        .filter(|(status, _)| **status >= 400)
        .map(|(_, count)| count)
        .sum();
    let entrypoint = "GET /zones/{zone_id}/rulesets/phases/{ruleset_phase}/entrypoint";
    assert_eq!(failed, 2 * PLANS as u64, "failed requests: {stats:?}");
    assert_eq!(
        stats.routes.get(entrypoint).copied(),
        Some(failed),
        "{stats:?}"
    );
    assert!(
        stats.total >= PLANS as u64 && stats.total < 1200,
        "requests: {}",
        stats.total
    );
}

#[test]
fn a_plan_past_the_reported_budget_waits_for_the_reset_and_says_so() {
    // Cloudflare's budget, shrunk: 12 requests per 2 s. A plan of production takes more than
    // the eight left above the reserve of four, so it must wait once for the window.
    let sandbox = TestSandbox::with(|config| {
        config.rate_limit = lmsinfra_sandbox::RateLimit {
            requests: 12,
            window: std::time::Duration::from_secs(2),
        };
    });
    let planned = Lmsinfra::new(&sandbox)
        .env("LMSINFRA_API_RESERVE", "4")
        .args(["--concurrency", "4", "plan", "production", "--no-probe"])
        .run();
    assert_eq!(planned.code, 0, "{planned}");
    assert!(
        planned.stderr.contains("for Cloudflare's rate limit")
            && planned
                .stderr
                .contains("4 kept for other users of the account"),
        "{planned}"
    );
    let stats = sandbox.sandbox().stats();
    assert_eq!(stats.statuses.get(&429), None, "throttled: {stats:?}");
}

#[test]
fn an_apply_on_an_account_whose_budget_another_token_spent_waits_for_it_without_a_429() {
    // Cloudflare's real limit, with all but 14 of its 1200 requests made by another token of
    // the same user, leaving the window 2 s after the start. Staging's first apply needs more
    // than the 10 left above the reserve of four, so it must wait for them.
    let sandbox = TestSandbox::with(|config| {
        config.busy_account = Some(BusyAccount {
            used: 1186,
            frees_in: Duration::from_secs(2),
        });
    });
    let applied = with_secrets(
        Lmsinfra::new(&sandbox)
            .env("LMSINFRA_API_RESERVE", "4")
            .args(["--concurrency", "4", "apply", "staging", "--auto-approve"]),
    )
    .run();
    assert_eq!(applied.code, 0, "{applied}");
    assert!(
        applied.stderr.contains("for Cloudflare's rate limit")
            && applied
                .stderr
                .contains("4 kept for other users of the account"),
        "{applied}"
    );
    let stats = sandbox.sandbox().stats();
    assert_eq!(stats.statuses.get(&429), None, "throttled: {stats:?}");
    assert!(stats.total > 14, "requests: {}", stats.total);
}
