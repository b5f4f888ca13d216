//! Cloudflare's global API rate limit: 1200 requests per five minutes per user.
//!
//! The limit belongs to the user, not to a token: every token of the user and the dashboard
//! draw on one budget (FIDELITY.md §7). The sandbox has one user, and every token it accepts,
//! account or user token, is that user's, so one log counts the admitted requests of the last
//! `window` for all of them. A [`BusyAccount`] starts that log part spent, as on an account whose
//! dashboard, CI or another tool has been calling.
//!
//! Admitted answers carry `ratelimit` (`"default";r=REMAINING;t=SECONDS`) and
//! `ratelimit-policy` (`"default";q=LIMIT;w=WINDOW`) as Cloudflare documents them; `t` is the
//! time until the oldest counted request leaves the window, rounded up.
//!
//! What happens past the limit depends on the [`RateLimitRegime`] variant:
//!
//! - `block` (the default, as Cloudflare documents it: "all API calls for the next five minutes
//!   will be blocked"): the user is refused for a whole `window` from the refused request on,
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

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::StatusCode;

use super::envelope::ApiError;
use super::variants::{RateLimitHeaders, RateLimitRegime};

/// How many requests one user may make per window.
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

/// Requests another token of the same user made before the sandbox started, all at one moment:
/// the budget starts `used` requests short, and they leave the window `frees_in` after the
/// start (at most a whole window), so a test waits that long rather than five minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusyAccount {
    /// Requests already counted in the window when the sandbox starts.
    pub used: u32,
    /// How long after the start they leave the window.
    pub frees_in: Duration,
}

/// The grammar of [`BusyAccount`]'s `FromStr`, for a command line's help.
pub const BUSY_ACCOUNT_HELP: &str =
    "Start with the rate limit's budget part spent by another token of the same user.

USED/SECONDS, e.g. `600/10`: 600 requests already counted in the window, leaving it 10 s
after the start (at most the window, 300 s).";

/// Why a busy account was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusyAccountError(String);

impl fmt::Display for BusyAccountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BusyAccountError {}

impl FromStr for BusyAccount {
    type Err = BusyAccountError;

    /// `USED/SECONDS`, e.g. `600/10`.
    fn from_str(spec: &str) -> Result<BusyAccount, BusyAccountError> {
        let refused = |why: &str| {
            BusyAccountError(format!(
                "`{spec}`: {why}; write USED/SECONDS, e.g. `600/10`"
            ))
        };
        let (used, frees_in) = spec.split_once('/').ok_or_else(|| refused("no `/`"))?;
        let used = used
            .trim()
            .parse()
            .map_err(|_| refused("USED is not a whole number of requests"))?;
        let frees_in: u64 = frees_in
            .trim()
            .parse()
            .map_err(|_| refused("SECONDS is not a whole number of seconds"))?;
        Ok(BusyAccount {
            used,
            frees_in: Duration::from_secs(frees_in),
        })
    }
}

/// The user's request log.
#[derive(Debug)]
pub(crate) struct Limiter {
    limit: RateLimit,
    regime: RateLimitRegime,
    headers: RateLimitHeaders,
    budget: Mutex<Budget>,
}

#[derive(Debug, Default)]
struct Budget {
    /// When each counted request leaves the window, soonest first.
    leaves: VecDeque<Instant>,
    /// Under `block`, when the user may call again.
    blocked_until: Option<Instant>,
}

impl Limiter {
    pub(crate) fn new(
        limit: RateLimit,
        regime: RateLimitRegime,
        headers: RateLimitHeaders,
        busy: Option<BusyAccount>,
    ) -> Limiter {
        let mut budget = Budget::default();
        if let Some(busy) = busy {
            let leaves = Instant::now() + busy.frees_in.min(limit.window);
            budget.leaves.extend((0..busy.used).map(|_| leaves));
        }
        Limiter {
            limit,
            regime,
            headers,
            budget: Mutex::new(budget),
        }
    }

    /// Admit a request of the user and return the `ratelimit` and `ratelimit-policy` headers
    /// Cloudflare sends (none under `rate-limit-headers=absent`), or the 429 to answer.
    pub(crate) fn admit(&self) -> Result<Vec<(&'static str, String)>, ApiError> {
        self.admit_at(Instant::now())
    }

    /// [`Limiter::admit`] at `now`.
    fn admit_at(&self, now: Instant) -> Result<Vec<(&'static str, String)>, ApiError> {
        let mut budget = self.budget.lock().unwrap_or_else(|p| p.into_inner());
        match budget.blocked_until {
            Some(until) if until > now => return Err(self.blocked_for(until - now)),
            Some(_) => budget.blocked_until = None,
            None => {}
        }
        while budget.leaves.front().is_some_and(|t| *t <= now) {
            budget.leaves.pop_front();
        }
        if budget.leaves.len() < self.limit.requests as usize {
            budget.leaves.push_back(now + self.limit.window);
            let remaining = self.limit.requests as usize - budget.leaves.len();
            let soonest = budget.leaves.front().copied().unwrap_or(now);
            let reset = soonest.saturating_duration_since(now);
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
            budget.leaves.clear();
            budget.blocked_until = Some(now + self.limit.window);
            return Err(self.blocked_for(self.limit.window));
        }
        let soonest = budget.leaves.front().copied().unwrap_or(now);
        Err(too_many(
            1015,
            "You are being rate limited: please wait and consider throttling your request speed"
                .to_owned(),
            soonest.saturating_duration_since(now),
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

    fn limiter(requests: u32, window: u64, regime: RateLimitRegime) -> Limiter {
        Limiter::new(
            RateLimit {
                requests,
                window: Duration::from_secs(window),
            },
            regime,
            RateLimitHeaders::Sent,
            None,
        )
    }

    #[test]
    fn refuses_past_the_limit() {
        let limiter = limiter(2, 60, RateLimitRegime::Sliding);
        assert!(limiter.admit().is_ok());
        let headers = limiter.admit().unwrap();
        // Rounded up, as Cloudflare rounds `Retry-After`: a client never comes back early.
        assert_eq!(headers[0].1, "\"default\";r=0;t=60");
        assert_eq!(headers[1].1, "\"default\";q=2;w=60");
        let refused = limiter.admit().unwrap_err();
        assert_eq!(refused.code, 1015);
        assert!((59..=60).contains(&retry_after(&refused)), "{refused:?}");
    }

    #[test]
    fn a_block_lasts_the_whole_window() {
        let limiter = limiter(1, 300, RateLimitRegime::Block);
        assert!(limiter.admit().is_ok());
        let refused = limiter.admit().unwrap_err();
        assert_eq!((refused.code, retry_after(&refused)), (10100, 300));
        let again = limiter.admit().unwrap_err();
        assert!((299..=300).contains(&retry_after(&again)), "{again:?}");
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
            None,
        );
        assert_eq!(limiter.admit().unwrap(), Vec::new());
        assert_eq!(limiter.admit().unwrap_err().code, 10100);
    }

    #[test]
    fn a_busy_account_starts_short_and_frees_when_its_requests_leave_the_window() {
        let limiter = Limiter::new(
            RateLimit {
                requests: 5,
                window: Duration::from_secs(300),
            },
            RateLimitRegime::Sliding,
            RateLimitHeaders::Sent,
            Some(BusyAccount {
                used: 3,
                frees_in: Duration::from_secs(10),
            }),
        );
        let start = Instant::now();
        // The answer counts its own request: 5 - 3 used - 1.
        let first = limiter.admit_at(start).unwrap();
        assert_eq!(first[0].1, "\"default\";r=1;t=10");
        assert_eq!(
            limiter.admit_at(start).unwrap()[0].1,
            "\"default\";r=0;t=10"
        );
        let refused = limiter.admit_at(start).unwrap_err();
        assert_eq!((refused.code, retry_after(&refused)), (1015, 10));
        let almost = start + Duration::from_millis(9_900);
        assert_eq!(limiter.admit_at(almost).unwrap_err().code, 1015);
        // Ten seconds on, the other token's three requests have left; our two have not.
        let freed = limiter.admit_at(start + Duration::from_secs(10)).unwrap();
        assert_eq!(freed[0].1, "\"default\";r=2;t=290");
    }

    #[test]
    fn a_busy_account_frees_within_one_window() {
        let limiter = Limiter::new(
            RateLimit {
                requests: 2,
                window: Duration::from_secs(60),
            },
            RateLimitRegime::Sliding,
            RateLimitHeaders::Sent,
            Some(BusyAccount {
                used: 2,
                frees_in: Duration::from_secs(3_600),
            }),
        );
        let refused = limiter.admit().unwrap_err();
        assert!((59..=60).contains(&retry_after(&refused)), "{refused:?}");
    }

    #[test]
    fn a_busy_account_reads_used_slash_seconds() {
        assert_eq!(
            "600/10".parse::<BusyAccount>(),
            Ok(BusyAccount {
                used: 600,
                frees_in: Duration::from_secs(10),
            })
        );
        for (spec, needle) in [
            ("600", "no `/`"),
            ("many/10", "USED is not"),
            ("600/soon", "SECONDS is not"),
        ] {
            let error = spec.parse::<BusyAccount>().unwrap_err().to_string();
            assert!(
                error.contains(needle) && error.contains("USED/SECONDS"),
                "{spec}: {error}"
            );
        }
    }
}
