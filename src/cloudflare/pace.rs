//! Keeps a long run under Cloudflare's limit of 1,200 requests per 5 minutes per user.
//!
//! A token bucket: `burst` requests go out at once (so an ordinary plan, a dozen requests, is
//! never slowed), then requests are spaced at the refill rate. Choosing the rate as
//! `(requests - burst) / window` bounds every window of that length to `requests` requests,
//! whatever the pattern. Waiters reserve their slot (the bucket may go negative), so they are
//! served in the order they asked.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// How fast requests may be sent over a long run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacePolicy {
    /// Requests that may go out at once before pacing starts.
    pub burst: u32,
    /// At most this many requests in any `window`.
    pub requests: u32,
    /// The window.
    pub window: Duration,
}

impl Default for PacePolicy {
    /// 1,100 per 5 minutes (Cloudflare allows 1,200, shared with the dashboard and wrangler),
    /// 300 of them at once.
    fn default() -> Self {
        Self {
            burst: 300,
            requests: 1_100,
            window: Duration::from_secs(300),
        }
    }
}

/// The bucket.
#[derive(Debug)]
pub(crate) struct Pacer {
    bucket: Mutex<Bucket>,
}

impl Pacer {
    pub(crate) fn new(policy: PacePolicy) -> Self {
        Self {
            bucket: Mutex::new(Bucket::new(policy, Instant::now())),
        }
    }

    /// Wait for this request's slot.
    pub(crate) async fn slot(&self) {
        let wait = self
            .bucket
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .reserve(Instant::now());
        if !wait.is_zero() {
            tracing::debug!(wait_ms = wait.as_millis() as u64, "pacing requests");
            tokio::time::sleep(wait).await;
        }
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
}
