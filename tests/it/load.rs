//! Many plans at once against one account stay within Cloudflare's rate limit.
//!
//! CI runs plans for every environment of every pull request, and people run them by hand, all
//! with the same token. Twenty concurrent `plan` processes against a sandbox that enforces
//! Cloudflare's real limit (1200 requests per five minutes per token) must all succeed with the
//! same answer, and none of their requests may be throttled.

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
