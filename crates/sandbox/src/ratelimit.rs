//! Cloudflare's global API rate limit: 1200 requests per five minutes per token.
//!
//! Admitted answers carry `ratelimit` (`"default";r=REMAINING;t=SECONDS`) and
//! `ratelimit-policy` (`"default";q=LIMIT;w=WINDOW`) as Cloudflare documents them.
//!
//! A sliding log per token: a request is admitted while fewer than `requests` admitted requests
//! fall inside the last `window`; otherwise it gets 429 with `retry-after` set to the whole
//! seconds (rounded up) until the oldest admitted request leaves the window. Refused requests
//! are not counted, so a client that honours `retry-after` gets through.
//!
//! The error code is 1015 ("You are being rate limited"), Cloudflare's documented rate-limit
//! code, rather than the 971 the API has been seen to send: the schema subset requires every
//! error code to be at least 1000, and clients should key on the 429 status anyway.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many requests one token may make per window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests admitted per window.
    pub requests: u32,
    /// The window length.
    pub window: Duration,
}

impl Default for RateLimit {
    /// Cloudflare's documented global limit.
    fn default() -> Self {
        RateLimit {
            requests: 1200,
            window: Duration::from_secs(300),
        }
    }
}

/// The per-token request logs.
#[derive(Debug)]
pub(crate) struct Limiter {
    limit: RateLimit,
    log: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl Limiter {
    pub(crate) fn new(limit: RateLimit) -> Limiter {
        Limiter {
            limit,
            log: Mutex::new(HashMap::new()),
        }
    }

    /// Admit a request for `token` and return the `ratelimit` and `ratelimit-policy` headers
    /// Cloudflare sends, or say how many seconds to wait.
    pub(crate) fn admit(&self, token: &str) -> Result<[(&'static str, String); 2], u64> {
        let now = Instant::now();
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let times = log.entry(token.to_owned()).or_default();
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.limit.window)
        {
            times.pop_front();
        }
        if times.len() < self.limit.requests as usize {
            times.push_back(now);
            let remaining = self.limit.requests as usize - times.len();
            let oldest = times.front().copied().unwrap_or(now);
            let reset = self.limit.window.saturating_sub(now.duration_since(oldest));
            return Ok([
                (
                    "ratelimit",
                    format!("\"default\";r={remaining};t={}", reset.as_secs()),
                ),
                (
                    "ratelimit-policy",
                    format!(
                        "\"default\";q={};w={}",
                        self.limit.requests,
                        self.limit.window.as_secs()
                    ),
                ),
            ]);
        }
        let oldest = times.front().copied().unwrap_or(now);
        let wait = self.limit.window.saturating_sub(now.duration_since(oldest));
        Err(wait.as_millis().div_ceil(1000).max(1) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_past_the_limit_and_counts_per_token() {
        let limiter = Limiter::new(RateLimit {
            requests: 2,
            window: Duration::from_secs(60),
        });
        assert!(limiter.admit("a").is_ok());
        let headers = limiter.admit("a").unwrap();
        assert_eq!(headers[0].1, "\"default\";r=0;t=59");
        assert_eq!(headers[1].1, "\"default\";q=2;w=60");
        let wait = limiter.admit("a").unwrap_err();
        assert!((59..=60).contains(&wait), "{wait}");
        assert!(limiter.admit("b").is_ok());
    }
}
