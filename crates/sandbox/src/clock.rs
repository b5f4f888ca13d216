//! The sandbox's clock, which tests may set and move forward.
//!
//! Time Travel's 30-day window, the restore rate limit, an export that lapses when nobody polls
//! it and the one-hour life of a signed download URL are all about time passing. Tests must not
//! sleep through them, so every such rule reads this clock instead of the system's: it follows
//! real time by default, and a test (through [`Clock::set`], [`Clock::advance`] or
//! `POST /__sandbox/clock`) can jump it anywhere. A set clock then stands still until moved again,
//! so what a test sees does not depend on how fast the machine runs.
//!
//! The timestamps the API writes (a version's or a deployment's `created_on`) read it too,
//! through [`Reading`]: while the server answers one call, [`stamp_now`] on that thread is the
//! clock's time, so a test can make a Worker version, or a secret rotation, as old as it needs.

use std::cell::RefCell;
use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};

/// A shared, movable clock; clones see the same time.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    frozen: Arc<Mutex<Option<Timestamp>>>,
}

impl Clock {
    /// A clock that follows real time until it is set or advanced.
    pub fn real() -> Clock {
        Clock::default()
    }

    /// A clock standing at `at`.
    pub fn fixed(at: Timestamp) -> Clock {
        let clock = Clock::default();
        clock.set(at);
        clock
    }

    /// The clock's current time.
    pub fn now(&self) -> Timestamp {
        self.frozen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .unwrap_or_else(Timestamp::now)
    }

    /// Stand the clock at `at`.
    pub fn set(&self, at: Timestamp) {
        *self.frozen.lock().unwrap_or_else(|p| p.into_inner()) = Some(at);
    }

    /// Move the clock by `by` (negative goes back); a real clock stops at the new time.
    pub fn advance(&self, by: SignedDuration) {
        let mut frozen = self.frozen.lock().unwrap_or_else(|p| p.into_inner());
        let from = frozen.unwrap_or_else(Timestamp::now);
        *frozen = Some(from.saturating_add(by).unwrap_or(from));
    }
}

thread_local! {
    static READING: RefCell<Option<Clock>> = const { RefCell::new(None) };
}

/// The clock [`stamp_now`] reads on this thread until the guard is dropped.
pub(crate) struct Reading;

impl Reading {
    pub(crate) fn start(clock: &Clock) -> Reading {
        READING.with(|reading| *reading.borrow_mut() = Some(clock.clone()));
        Reading
    }
}

impl Drop for Reading {
    fn drop(&mut self) {
        READING.with(|reading| *reading.borrow_mut() = None);
    }
}

/// Now, by the clock of the call being answered on this thread, else by the system's.
pub(crate) fn stamp_now() -> Timestamp {
    READING
        .with(|reading| reading.borrow().as_ref().map(Clock::now))
        .unwrap_or_else(Timestamp::now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_clock_stands_still_until_advanced() {
        let at: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let clock = Clock::fixed(at);
        let other = clock.clone();
        assert_eq!(clock.now(), at);
        other.advance(SignedDuration::from_hours(2));
        assert_eq!(clock.now().to_string(), "2026-01-01T02:00:00Z");
    }
}
