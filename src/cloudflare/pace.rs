//! Keeps a long run under Cloudflare's limit of 1,200 requests per 5 minutes per user.
//!
//! Cloudflare says on every answer how much of that budget is left: `Ratelimit:
//! "default";r=REMAINING;t=SECONDS` and `Ratelimit-Policy: "default";q=LIMIT;w=WINDOW`
//! (FIDELITY.md §7). The budget is shared with the dashboard, wrangler and every other token of
//! the same user, so the pacer trusts the answers over any count of its own: while a report is
//! fresh, requests go out at once until only [`PacePolicy::reserve`] requests are left, then
//! wait for the window to reset, saying so once. The reserve is for the other users of the
//! account and absorbs the requests already in flight when a report arrives (it is never less
//! than the client's concurrency). After a reset one request goes out to learn the new budget
//! while the others wait briefly for its answer.
//!
//! Without reports (an API or proxy that strips the headers), a token bucket paces instead:
//! `burst` requests go out at once (so an ordinary plan, a dozen requests, is never slowed),
//! then requests are spaced at the refill rate. Choosing the rate as `(requests - burst) /
//! window` bounds every window of that length to `requests` requests, whatever the pattern.
//! Waiters reserve their slot (the bucket may go negative), so they are served in the order
//! they asked.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// How fast requests may be sent over a long run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacePolicy {
    /// Without reports: requests that may go out at once before pacing starts.
    pub burst: u32,
    /// Without reports: at most this many requests in any `window`.
    pub requests: u32,
    /// Without reports: the window.
    pub window: Duration,
    /// With reports: requests of the reported budget left for other users of the account.
    pub reserve: u32,
}

impl Default for PacePolicy {
    /// 1,100 per 5 minutes without reports (Cloudflare allows 1,200, shared with the dashboard
    /// and wrangler), 300 of them at once; 100 kept for others with reports.
    fn default() -> Self {
        Self {
            burst: 300,
            requests: 1_100,
            window: Duration::from_secs(300),
            reserve: 100,
        }
    }
}

/// What one answer said of the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Report {
    /// Requests left in the current window.
    pub(crate) remaining: u32,
    /// Seconds until the window resets.
    pub(crate) reset: Duration,
    /// The window's quota, when the policy header came too.
    pub(crate) limit: Option<u32>,
}

impl Report {
    /// Read `Ratelimit` (and `Ratelimit-Policy`, when present) as Cloudflare sends them; only
    /// the first item of each counts. `None` when the header is absent or does not parse.
    pub(crate) fn parse(ratelimit: Option<&str>, policy: Option<&str>) -> Option<Report> {
        let remaining = parameter(ratelimit?, "r")?;
        let reset = parameter(ratelimit?, "t")?;
        Some(Report {
            remaining: u32::try_from(remaining).ok()?,
            reset: Duration::from_secs(reset),
            limit: policy
                .and_then(|p| parameter(p, "q"))
                .and_then(|q| u32::try_from(q).ok()),
        })
    }
}

/// The value of parameter `key` of the first item of a structured header such as
/// `"default";r=50;t=30`.
fn parameter(header: &str, key: &str) -> Option<u64> {
    let item = header.split(',').next()?;
    item.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k.trim() == key).then(|| v.trim().parse().ok())?
    })
}

/// The least time until a reset that a report is taken to mean: a server that rounds down
/// says 0 for a reset still to come.
const LEAST_RESET: Duration = Duration::from_secs(1);

/// How long one request waits for the answer that tells the budget after a window reset.
const PROBE_WAIT: Duration = Duration::from_secs(2);

/// How often a request waiting for that answer looks again.
const PROBE_POLL: Duration = Duration::from_millis(20);

/// The pacer one client shares between all its requests.
#[derive(Debug)]
pub(crate) struct Pacer {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    bucket: Bucket,
    budget: Budget,
    reserve: i64,
}

/// What the pacer knows of Cloudflare's budget.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Budget {
    /// No answer has said: the bucket paces.
    Unknown,
    /// The last report, less the requests sent since, until the window resets.
    Known {
        remaining: i64,
        reset_at: Instant,
        limit: Option<u32>,
        announced: bool,
    },
    /// The window reset and one request went out to learn the new budget.
    Probing { until: Instant },
}

/// What a request does now.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Decision {
    /// Go after this long (the bucket's wait; zero with a known budget).
    Go(Duration),
    /// The budget is spent down to the reserve: wait for the reset; say so when `announce`.
    Exhausted {
        wait: Duration,
        remaining: i64,
        limit: Option<u32>,
        announce: bool,
    },
    /// Another request is learning the budget: look again shortly.
    AwaitReport(Duration),
}

impl Pacer {
    pub(crate) fn new(policy: PacePolicy, concurrency: usize) -> Self {
        let reserve = i64::from(policy.reserve).max(concurrency as i64);
        Self {
            state: Mutex::new(State {
                bucket: Bucket::new(policy, Instant::now()),
                budget: Budget::Unknown,
                reserve,
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wait for this request's slot.
    pub(crate) async fn slot(&self) {
        loop {
            let decision = self.state().decide(Instant::now());
            match decision {
                Decision::Go(wait) => {
                    if !wait.is_zero() {
                        tracing::debug!(wait_ms = wait.as_millis() as u64, "pacing requests");
                        tokio::time::sleep(wait).await;
                    }
                    return;
                }
                Decision::Exhausted {
                    wait,
                    remaining,
                    limit,
                    announce,
                } => {
                    if announce {
                        let reserve = self.state().reserve;
                        let of = limit.map(|l| format!(" of {l}")).unwrap_or_default();
                        tracing::warn!(
                            "waiting {}s for Cloudflare's rate limit: {remaining}{of} requests left in this window, {reserve} kept for other users of the account",
                            wait.as_secs_f64().ceil()
                        );
                    }
                    tokio::time::sleep(wait).await;
                }
                Decision::AwaitReport(wait) => tokio::time::sleep(wait).await,
            }
        }
    }

    /// Take what an answer said of the budget.
    pub(crate) fn observe(&self, report: Report) {
        self.state().observe(report, Instant::now());
    }
}

impl State {
    fn decide(&mut self, now: Instant) -> Decision {
        match &mut self.budget {
            Budget::Known {
                remaining,
                reset_at,
                limit,
                announced,
            } if now < *reset_at => {
                if *remaining > self.reserve {
                    *remaining -= 1;
                    Decision::Go(Duration::ZERO)
                } else {
                    let announce = !*announced;
                    *announced = true;
                    Decision::Exhausted {
                        wait: *reset_at - now,
                        remaining: *remaining,
                        limit: *limit,
                        announce,
                    }
                }
            }
            Budget::Known { .. } => {
                self.budget = Budget::Probing {
                    until: now + PROBE_WAIT,
                };
                Decision::Go(self.bucket.reserve(now))
            }
            Budget::Probing { until } if now < *until => {
                Decision::AwaitReport(PROBE_POLL.min(*until - now))
            }
            Budget::Probing { .. } | Budget::Unknown => {
                self.budget = Budget::Unknown;
                Decision::Go(self.bucket.reserve(now))
            }
        }
    }

    /// A report never raises what is known of the current window (answers arrive out of
    /// order, and requests sent since are not in it yet); a report after the reset starts anew.
    fn observe(&mut self, report: Report, now: Instant) {
        let reported = i64::from(report.remaining);
        let reset_at = now + report.reset.max(LEAST_RESET);
        self.budget = match self.budget {
            Budget::Known {
                remaining,
                reset_at: known_until,
                limit,
                announced,
            } if now < known_until => Budget::Known {
                remaining: remaining.min(reported),
                reset_at,
                limit: report.limit.or(limit),
                announced,
            },
            _ => Budget::Known {
                remaining: reported,
                reset_at,
                limit: report.limit,
                announced: false,
            },
        };
    }
}

#[derive(Debug)]
struct Bucket {
    capacity: f64,
    per_second: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new(policy: PacePolicy, now: Instant) -> Self {
        let burst = policy.burst.clamp(1, policy.requests.max(1));
        let refill = f64::from(policy.requests.saturating_sub(burst).max(1));
        Self {
            capacity: f64::from(burst),
            per_second: refill / policy.window.as_secs_f64().max(1.0),
            tokens: f64::from(burst),
            last: now,
        }
    }

    /// Take a token at `now`; how long to wait before using it.
    fn reserve(&mut self, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity) - 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.per_second)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_normal_plan_is_not_slowed() {
        let now = Instant::now();
        let mut bucket = Bucket::new(PacePolicy::default(), now);
        for _ in 0..300 {
            assert_eq!(bucket.reserve(now), Duration::ZERO);
        }
        assert!(bucket.reserve(now) > Duration::ZERO);
    }

    #[test]
    fn no_window_holds_more_than_the_limit() {
        let policy = PacePolicy::default();
        let start = Instant::now();
        let mut bucket = Bucket::new(policy, start);
        // 5,000 requests, each asked for 50 ms after the previous one was sent.
        let mut sent = Vec::new();
        let mut now = start;
        for _ in 0..5_000 {
            now += bucket.reserve(now);
            sent.push(now);
            now += Duration::from_millis(50);
        }
        let mut first = 0;
        for (last, at) in sent.iter().enumerate() {
            while *at - sent[first] >= policy.window {
                first += 1;
            }
            assert!(
                last - first < policy.requests as usize,
                "window at {last} too full"
            );
        }
    }

    #[test]
    fn an_idle_bucket_refills_to_its_burst() {
        let policy = PacePolicy {
            burst: 2,
            requests: 62,
            window: Duration::from_secs(60),
            reserve: 0,
        };
        let start = Instant::now();
        let mut bucket = Bucket::new(policy, start);
        bucket.reserve(start);
        bucket.reserve(start);
        assert_eq!(bucket.reserve(start), Duration::from_secs(1));
        let later = start + Duration::from_secs(60);
        assert_eq!(bucket.reserve(later), Duration::ZERO);
        assert_eq!(bucket.reserve(later), Duration::ZERO);
        assert!(bucket.reserve(later) > Duration::ZERO);
    }

    fn state(reserve: i64) -> State {
        State {
            bucket: Bucket::new(PacePolicy::default(), Instant::now()),
            budget: Budget::Unknown,
            reserve,
        }
    }

    fn report(remaining: u32, reset: u64) -> Report {
        Report {
            remaining,
            reset: Duration::from_secs(reset),
            limit: Some(1200),
        }
    }

    #[test]
    fn cloudflares_headers_parse_and_garbage_does_not() {
        assert_eq!(
            Report::parse(
                Some("\"default\";r=50;t=30"),
                Some("\"default\";q=1200;w=300")
            ),
            Some(Report {
                remaining: 50,
                reset: Duration::from_secs(30),
                limit: Some(1200)
            })
        );
        assert_eq!(
            Report::parse(Some("\"default\";t=7;r=0, \"other\";r=9;t=1"), None),
            Some(Report {
                remaining: 0,
                reset: Duration::from_secs(7),
                limit: None
            })
        );
        for garbage in [
            "",
            "r=5",
            "\"default\";r=-1;t=3",
            "\"default\";r=x;t=3",
            "\"default\";r=5",
        ] {
            assert_eq!(Report::parse(Some(garbage), None), None, "{garbage}");
        }
        assert_eq!(Report::parse(None, Some("\"default\";q=1;w=1")), None);
    }

    #[test]
    fn a_reported_budget_is_spent_at_once_down_to_the_reserve_then_waits_for_the_reset() {
        let now = Instant::now();
        let mut state = state(100);
        state.observe(report(1_000, 240), now);
        // Far beyond the bucket's burst of 300: the account said 1,000 are free.
        for _ in 0..900 {
            assert_eq!(state.decide(now), Decision::Go(Duration::ZERO));
        }
        let first = state.decide(now);
        assert_eq!(
            first,
            Decision::Exhausted {
                wait: Duration::from_secs(240),
                remaining: 100,
                limit: Some(1200),
                announce: true
            }
        );
        let later = state.decide(now + Duration::from_secs(40));
        assert!(
            matches!(later, Decision::Exhausted { wait, announce: false, .. } if wait == Duration::from_secs(200)),
            "{later:?}"
        );
    }

    #[test]
    fn a_busy_account_leaves_less_and_a_stale_report_never_raises_the_count() {
        let now = Instant::now();
        let mut state = state(100);
        // Another user of the account spent most of the window.
        state.observe(report(105, 60), now);
        for _ in 0..5 {
            assert_eq!(state.decide(now), Decision::Go(Duration::ZERO));
        }
        // An answer to a request sent earlier arrives late, saying more was left.
        state.observe(report(400, 59), now + Duration::from_secs(1));
        assert!(matches!(
            state.decide(now + Duration::from_secs(1)),
            Decision::Exhausted { .. }
        ));
    }

    #[test]
    fn after_the_reset_one_request_learns_the_budget_while_the_others_wait() {
        let now = Instant::now();
        let mut state = state(10);
        state.observe(report(10, 5), now);
        let reset = now + Duration::from_secs(5);
        assert_eq!(state.decide(reset), Decision::Go(Duration::ZERO));
        assert!(matches!(state.decide(reset), Decision::AwaitReport(_)));
        state.observe(report(1_199, 300), reset);
        assert_eq!(state.decide(reset), Decision::Go(Duration::ZERO));
    }

    #[test]
    fn without_an_answer_to_the_probe_the_bucket_takes_over() {
        let now = Instant::now();
        let mut state = state(10);
        state.observe(report(0, 1), now);
        let reset = now + Duration::from_secs(1);
        assert_eq!(state.decide(reset), Decision::Go(Duration::ZERO));
        assert!(matches!(state.decide(reset), Decision::AwaitReport(_)));
        let given_up = reset + PROBE_WAIT;
        assert_eq!(state.decide(given_up), Decision::Go(Duration::ZERO));
        assert_eq!(state.budget, Budget::Unknown);
    }

    #[test]
    fn the_reserve_is_never_below_the_concurrency() {
        let policy = PacePolicy {
            reserve: 4,
            ..PacePolicy::default()
        };
        assert_eq!(Pacer::new(policy, 16).state().reserve, 16);
        assert_eq!(Pacer::new(PacePolicy::default(), 16).state().reserve, 100);
    }
}
