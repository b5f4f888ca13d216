//! When to try a request again, and how long to wait first.
//!
//! Cloudflare answers 429 to everything a user sends for a while once they go over the limit,
//! so a 429 is not one request's problem: the wait it asks for (`retry-after`) goes into a
//! [`Gate`] that every request of the client passes before it is sent. Other transient failures
//! (5xx, timeouts, dropped connections) back off exponentially with jitter, per request.
//!
//! A request that creates something is never repeated blindly: if it may have reached the
//! server, the caller is told so (see [`Replay`]) and looks the resource up before trying again.

use std::sync::Mutex;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

/// How many times, and how patiently, failed requests are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (so `max_retries + 1` attempts at most).
    pub max_retries: u32,
    /// The backoff before the first retry; it doubles with each further retry.
    pub base_delay: Duration,
    /// The longest backoff between two attempts.
    pub max_delay: Duration,
    /// The longest `retry-after` honoured; a longer one fails the request with a rate-limit hint.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    /// Six retries from 500 ms doubling to 30 s (about a minute in all), matching the
    /// official SDKs' retry triggers with more patience, since a plan that gives up on one
    /// blip is worse than a slow one. `retry-after` up to two minutes is waited out.
    fn default() -> Self {
        Self {
            max_retries: 6,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (0 for the first): exponential, capped, with
    /// "equal jitter" (half fixed, half random) so that concurrent requests that failed
    /// together do not come back together.
    pub(crate) fn backoff(&self, retry: u32, rng: &mut impl Rng) -> Duration {
        let exponential = self
            .base_delay
            .saturating_mul(1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX))
            .min(self.max_delay);
        let half = exponential / 2;
        half + half.mul_f64(rng.random::<f64>())
    }
}

/// Whether a request may be sent again after an attempt whose outcome is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Replay {
    /// Sending it twice has the effect of sending it once (GET, PUT, PATCH, DELETE).
    Safe,
    /// It creates something: retried only when it surely did not reach the server (a 429, a
    /// refused connection). Anything else goes back to the caller, who checks first.
    CheckFirst,
}

/// What an attempt's outcome means for the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Done (success, or a failure that another attempt would not change).
    Final,
    /// Try again after the usual backoff.
    Retry,
    /// Rate limited: every request waits this long (or the backoff, when no `retry-after`).
    RateLimited(Option<Duration>),
}

/// The verdict for an HTTP status.
pub(crate) fn judge_status(status: u16, retry_after: Option<Duration>, replay: Replay) -> Verdict {
    match status {
        429 => Verdict::RateLimited(retry_after),
        408 | 500..=599 if replay == Replay::Safe => Verdict::Retry,
        _ => Verdict::Final,
    }
}

/// Retries of a request that could not connect: enough to ride out a dropped connection, few
/// enough that an unreachable API is reported within seconds.
pub(crate) const CONNECT_RETRIES: u32 = 2;

/// The verdict for a request that got no answer. A host name that does not resolve will not
/// resolve a second later.
pub(crate) fn judge_transport(err: &reqwest::Error, replay: Replay) -> Verdict {
    if is_dns_failure(err) {
        Verdict::Final
    } else if err.is_connect() || replay == Replay::Safe {
        Verdict::Retry
    } else {
        Verdict::Final
    }
}

/// Whether the request failed because the host name did not resolve.
fn is_dns_failure(err: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(cause) = source {
        if cause.to_string().starts_with("dns error") {
            return true;
        }
        source = cause.source();
    }
    false
}

/// The verdict for a request that got no complete answer in time: the server may have acted on
/// it, so only a request that is safe to replay is sent again.
pub(crate) fn judge_timeout(replay: Replay) -> Verdict {
    match replay {
        Replay::Safe => Verdict::Retry,
        Replay::CheckFirst => Verdict::Final,
    }
}

/// `retry-after` as Cloudflare sends it: whole seconds.
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The shared "not before" instant: while it lies in the future, no request of this client is
/// sent.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    not_before: Mutex<Option<Instant>>,
}

impl Gate {
    /// Keep every request back until at least `until`.
    pub(crate) fn close_until(&self, until: Instant) {
        let mut not_before = self.not_before.lock().unwrap_or_else(|e| e.into_inner());
        if not_before.is_none_or(|current| current < until) {
            *not_before = Some(until);
        }
    }

    /// How long a request must still wait at `now`.
    pub(crate) fn delay_at(&self, now: Instant) -> Duration {
        let not_before = self.not_before.lock().unwrap_or_else(|e| e.into_inner());
        not_before.map_or(Duration::ZERO, |t| t.saturating_duration_since(now))
    }

    /// Wait until the gate is open (it may be closed further while waiting).
    pub(crate) async fn pass(&self) {
        loop {
            let delay = self.delay_at(Instant::now());
            if delay.is_zero() {
                return;
            }
            tokio::time::sleep(delay).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let policy = RetryPolicy::default();
        let mut rng = SmallRng::seed_from_u64(7);
        for retry in 0..12 {
            let exponential = (policy.base_delay * 2u32.pow(retry)).min(policy.max_delay);
            for _ in 0..50 {
                let wait = policy.backoff(retry, &mut rng);
                assert!(
                    wait >= exponential / 2 && wait <= exponential,
                    "{retry}: {wait:?}"
                );
            }
        }
        assert!(policy.backoff(40, &mut rng) <= policy.max_delay);
    }

    #[test]
    fn backoff_spreads_concurrent_retries() {
        let policy = RetryPolicy::default();
        let mut rng = SmallRng::seed_from_u64(1);
        let waits: std::collections::BTreeSet<_> =
            (0..20).map(|_| policy.backoff(3, &mut rng)).collect();
        assert!(waits.len() > 10);
    }

    #[test]
    fn creates_are_not_retried_after_an_ambiguous_failure() {
        assert_eq!(judge_status(500, None, Replay::Safe), Verdict::Retry);
        assert_eq!(judge_status(503, None, Replay::CheckFirst), Verdict::Final);
        assert_eq!(
            judge_status(429, Some(Duration::from_secs(2)), Replay::CheckFirst),
            Verdict::RateLimited(Some(Duration::from_secs(2)))
        );
        assert_eq!(judge_status(404, None, Replay::Safe), Verdict::Final);
        assert_eq!(judge_status(200, None, Replay::Safe), Verdict::Final);
        assert_eq!(judge_timeout(Replay::Safe), Verdict::Retry);
        assert_eq!(judge_timeout(Replay::CheckFirst), Verdict::Final);
    }

    #[test]
    fn retry_after_is_whole_seconds() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }

    #[test]
    fn gate_holds_every_request_until_the_latest_instant() {
        let gate = Gate::default();
        let now = Instant::now();
        assert_eq!(gate.delay_at(now), Duration::ZERO);
        gate.close_until(now + Duration::from_secs(5));
        gate.close_until(now + Duration::from_secs(2));
        assert_eq!(gate.delay_at(now), Duration::from_secs(5));
        assert_eq!(gate.delay_at(now + Duration::from_secs(6)), Duration::ZERO);
    }
}
