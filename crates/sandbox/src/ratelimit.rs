//! Cloudflare's global API rate limit: 1200 requests per five minutes per token.
//!
//! Admitted answers carry `ratelimit` (`"default";r=REMAINING;t=SECONDS`) and
//! `ratelimit-policy` (`"default";q=LIMIT;w=WINDOW`) as Cloudflare documents them.
//!
//! A log per token counts the admitted requests of the last `window`. What happens past the
//! limit depends on the [`RateLimitRegime`] variant:
//!
//! - `block` (the default, as Cloudflare documents it: "all API calls for the next five minutes
//!   will be blocked"): the token is refused for a whole `window` from the refused request on,
//!   every 429 carrying `retry-after` set to the seconds left in the block (300 on the first)
//!   and code 10100 with Cloudflare's "More than 1200 requests per 300 seconds reached" message.
//!   The code of the real answer varies by source (971, 10100, 10500 are all seen), so clients
//!   must key on the 429 status; 971 is not used because the schema subset wants codes ≥ 1000.
//! - `sliding`: a request is admitted while fewer than `requests` admitted requests fall inside
//!   the last `window`; otherwise it gets 429 with `retry-after` set to the whole seconds
//!   (rounded up) until the oldest admitted request leaves the window, and code 1015 ("You are
//!   being rate limited").
//!
//! Refused requests are not counted, so a client that honours `retry-after` gets through.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::StatusCode;

use super::envelope::ApiError;
use super::variants::{RateLimitHeaders, RateLimitRegime};

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
    regime: RateLimitRegime,
    headers: RateLimitHeaders,
    log: Mutex<HashMap<String, VecDeque<Instant>>>,
    /// Under `block`, when each blocked token may call again.
    blocked: Mutex<HashMap<String, Instant>>,
}

impl Limiter {
    pub(crate) fn new(
        limit: RateLimit,
        regime: RateLimitRegime,
        headers: RateLimitHeaders,
    ) -> Limiter {
        Limiter {
            limit,
            regime,
            headers,
            log: Mutex::new(HashMap::new()),
            blocked: Mutex::new(HashMap::new()),
        }
    }

    /// Admit a request for `token` and return the `ratelimit` and `ratelimit-policy` headers
    /// Cloudflare sends (none under `rate-limit-headers=absent`), or the 429 to answer.
    pub(crate) fn admit(&self, token: &str) -> Result<Vec<(&'static str, String)>, ApiError> {
        let now = Instant::now();
        if self.regime == RateLimitRegime::Block {
            let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
            match blocked.get(token) {
                Some(until) if *until > now => return Err(self.blocked_for(*until - now)),
                Some(_) => {
                    blocked.remove(token);
                }
                None => {}
            }
        }
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
            if self.headers == RateLimitHeaders::Absent {
                return Ok(Vec::new());
            }
            return Ok(vec![
                (
                    "ratelimit",
                    format!(
                        "\"default\";r={remaining};t={}",
                        reset.as_secs_f64().ceil() as u64
                    ),
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
        if self.regime == RateLimitRegime::Block {
            times.clear();
            self.blocked
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(token.to_owned(), now + self.limit.window);
            return Err(self.blocked_for(self.limit.window));
        }
        let oldest = times.front().copied().unwrap_or(now);
        let wait = self.limit.window.saturating_sub(now.duration_since(oldest));
        Err(too_many(
            1015,
            "You are being rate limited: please wait and consider throttling your request speed"
                .to_owned(),
            wait,
        ))
    }

    fn blocked_for(&self, left: Duration) -> ApiError {
        too_many(
            10100,
            format!(
                "More than {} requests per {} seconds reached. Please wait and consider throttling your request speed",
                self.limit.requests,
                self.limit.window.as_secs()
            ),
            left,
        )
    }
}

/// A 429 whose `retry-after` is `wait` in whole seconds, rounded up.
fn too_many(code: u32, message: String, wait: Duration) -> ApiError {
    let mut error = ApiError::new(StatusCode::TOO_MANY_REQUESTS, code, message);
    let seconds = wait.as_millis().div_ceil(1000).max(1);
    error.headers.push(("retry-after", seconds.to_string()));
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retry_after(error: &ApiError) -> u64 {
        error.headers[0].1.parse().unwrap()
    }

    #[test]
    fn refuses_past_the_limit_and_counts_per_token() {
        let limiter = Limiter::new(
            RateLimit {
                requests: 2,
                window: Duration::from_secs(60),
            },
            RateLimitRegime::Sliding,
            RateLimitHeaders::Sent,
        );
        assert!(limiter.admit("a").is_ok());
        let headers = limiter.admit("a").unwrap();
        // Rounded up, as Cloudflare rounds `Retry-After`: a client never comes back early.
        assert_eq!(headers[0].1, "\"default\";r=0;t=60");
        assert_eq!(headers[1].1, "\"default\";q=2;w=60");
        let refused = limiter.admit("a").unwrap_err();
        assert_eq!(refused.code, 1015);
        assert!((59..=60).contains(&retry_after(&refused)), "{refused:?}");
        assert!(limiter.admit("b").is_ok());
    }

    #[test]
    fn a_block_lasts_the_whole_window() {
        let limiter = Limiter::new(
            RateLimit {
                requests: 1,
                window: Duration::from_secs(300),
            },
            RateLimitRegime::Block,
            RateLimitHeaders::Sent,
        );
        assert!(limiter.admit("a").is_ok());
        let refused = limiter.admit("a").unwrap_err();
        assert_eq!((refused.code, retry_after(&refused)), (10100, 300));
        let again = limiter.admit("a").unwrap_err();
        assert!((299..=300).contains(&retry_after(&again)), "{again:?}");
        assert!(limiter.admit("b").is_ok());
    }

    #[test]
    fn without_headers_the_limit_still_holds() {
        let limiter = Limiter::new(
            RateLimit {
                requests: 1,
                window: Duration::from_secs(60),
            },
            RateLimitRegime::Block,
            RateLimitHeaders::Absent,
        );
        assert_eq!(limiter.admit("a").unwrap(), Vec::new());
        assert_eq!(limiter.admit("a").unwrap_err().code, 10100);
    }
}
