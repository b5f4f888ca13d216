//! Request counters, served at `GET /__sandbox/stats` for tests and benchmarks.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Serialize;

/// How many requests the sandbox answered, in total, per route and per status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Every request under `/client/v4`, including refused and faulted ones.
    pub total: u64,
    /// By `"METHOD /route/{template}"`; unmatched paths count as `"METHOD (unmatched)"`.
    pub routes: BTreeMap<String, u64>,
    /// By HTTP status; a dropped connection counts as `0`.
    pub statuses: BTreeMap<u16, u64>,
}

/// The live counters.
#[derive(Debug, Default)]
pub(crate) struct Counters(Mutex<Stats>);

impl Counters {
    pub(crate) fn record(&self, method: &str, route: Option<&str>, status: u16) {
        let mut stats = self.0.lock().unwrap_or_else(|p| p.into_inner());
        stats.total += 1;
        let key = format!("{method} {}", route.unwrap_or("(unmatched)"));
        *stats.routes.entry(key).or_default() += 1;
        *stats.statuses.entry(status).or_default() += 1;
    }

    pub(crate) fn snapshot(&self) -> Stats {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn reset(&self) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Stats::default();
    }
}
