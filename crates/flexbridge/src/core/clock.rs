//! Time as the bridge keeps it (integer milliseconds since the Unix epoch)
//! and as the protocol shows it (RFC 3339, UTC, milliseconds).
//!
//! A [`Clock`] is handed to whatever schedules or stamps: it reads the wall
//! clock once, then counts with tokio's monotonic clock. So a test that
//! calls `tokio::time::pause()` moves every timestamp and every timer of
//! the code under test together, and no test sleeps to wait for a backoff.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;
use time::macros::format_description;
use tokio::time::Instant;

/// Milliseconds since the Unix epoch, by the clock it was made from.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// The epoch milliseconds at `base`.
    base_ms: i64,
    base: Instant,
}

impl Clock {
    /// The wall clock, now; counted on with tokio's clock.
    pub fn system() -> Self {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Self::starting_at(wall)
    }

    /// A clock that reads `ms` now (tests).
    pub fn starting_at(ms: i64) -> Self {
        Self {
            base_ms: ms,
            base: Instant::now(),
        }
    }

    /// Milliseconds since the Unix epoch, now.
    pub fn now_ms(&self) -> i64 {
        let elapsed = i64::try_from(self.base.elapsed().as_millis()).unwrap_or(i64::MAX);
        self.base_ms.saturating_add(elapsed)
    }

    /// How long until `at` (ms), at least 1 ms.
    pub fn until(&self, at: i64) -> Duration {
        Duration::from_millis(u64::try_from((at - self.now_ms()).max(1)).unwrap_or(1))
    }
}

/// `2026-11-25T17:20:00.123Z` for a millisecond timestamp.
pub fn format_ms(ms: i64) -> String {
    let format =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00.000Z".to_owned())
}

/// `d` in whole milliseconds (saturating).
pub fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_format_as_rfc3339_utc_with_milliseconds() {
        assert_eq!(format_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_ms(1_795_627_200_123), "2026-11-25T17:20:00.123Z");
    }

    #[test]
    fn now_is_after_2024() {
        assert!(Clock::system().now_ms() > 1_704_067_200_000);
    }

    #[tokio::test(start_paused = true)]
    async fn a_clock_moves_with_tokios_time() {
        let clock = Clock::starting_at(1_000);
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(clock.now_ms(), 1_250);
        assert_eq!(clock.until(2_000), Duration::from_millis(750));
        assert_eq!(clock.until(0), Duration::from_millis(1));
    }
}
