//! Timestamps as Twilio writes them: REST JSON uses ISO-8601 UTC with whole
//! seconds (`2016-08-01T22:10:40Z`), webhook parameters carry milliseconds
//! (`2022-01-18T10:33:50.399Z`). The emulator keeps millisecond precision
//! internally and formats at the edge.
//!
//! Beside them, [`unix_micros`] stamps what the benchmark measures (a message
//! committed, a webhook sent or answered) in microseconds, shown only in the
//! control API and the SSE events, never in Twilio's JSON.

use time::OffsetDateTime;
use time::macros::format_description;

/// A point in time, UTC, with millisecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Instant(OffsetDateTime);

impl Instant {
    pub fn now() -> Self {
        let now = OffsetDateTime::now_utc();
        let millis = now.millisecond();
        // Dropping sub-millisecond digits cannot fail: the value stays in range.
        Self(now.replace_millisecond(millis).unwrap_or(now))
    }

    /// `2016-08-01T22:10:40Z`, as in REST JSON.
    pub fn rest(self) -> String {
        let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
        self.0.format(&format).unwrap_or_default()
    }

    /// `2016-08-01T22:10:40.399Z`, as in webhook parameters.
    pub fn webhook(self) -> String {
        let format = format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        self.0.format(&format).unwrap_or_default()
    }

    /// Seconds since the Unix epoch (how Flex Interactions show task dates).
    pub fn unix(self) -> i64 {
        self.0.unix_timestamp()
    }

    /// Whole seconds elapsed since `self` (never negative).
    pub fn seconds_until(self, later: Instant) -> i64 {
        (later.0 - self.0).whole_seconds().max(0)
    }

    /// The instant `duration` later (saturating at the calendar's end).
    pub fn after(self, duration: std::time::Duration) -> Self {
        let far_future = time::PrimitiveDateTime::MAX.assume_utc();
        let step = time::Duration::try_from(duration).unwrap_or(time::Duration::MAX);
        Self(self.0.checked_add(step).unwrap_or(far_future))
    }

    /// How long from `self` until `later` (zero when `later` has passed).
    pub fn until(self, later: Instant) -> std::time::Duration {
        (later.0 - self.0).try_into().unwrap_or_default()
    }

    /// Parses an ISO-8601 / RFC 3339 timestamp as a client may send it
    /// (`DateCreated`), keeping millisecond precision.
    pub fn parse(value: &str) -> Option<Self> {
        let parsed =
            OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339).ok()?;
        let utc = parsed.to_offset(time::UtcOffset::UTC);
        Some(Self(utc.replace_millisecond(utc.millisecond()).ok()?))
    }
}

/// `DateCreated` / `DateUpdated` as a client may send them (Chat and
/// Conversations let an import set both); `None` = not sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SentDates {
    pub created: Option<Instant>,
    pub updated: Option<Instant>,
}

impl SentDates {
    /// A new resource's `(created, updated)` at `now`: as sent, else created
    /// now and updated when created.
    pub fn new_resource(self, now: Instant) -> (Instant, Instant) {
        let created = self.created.unwrap_or(now);
        (created, self.updated.unwrap_or(created))
    }

    /// An update at `now`: `created` moves only when sent; `updated` is as
    /// sent, else now.
    pub fn update(self, created: &mut Instant, updated: &mut Instant, now: Instant) {
        if let Some(sent) = self.created {
            *created = sent;
        }
        *updated = self.updated.unwrap_or(now);
    }
}

/// Microseconds since the Unix epoch, now, on the wall clock (the clock a
/// client on the same machine compares with; a clock step can move it back).
pub fn unix_micros() -> u64 {
    let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
    u64::try_from(nanos / 1_000).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_timestamps_have_whole_seconds_and_webhook_timestamps_milliseconds() {
        let instant = Instant::parse("2022-01-18T10:33:50.399Z").unwrap();
        assert_eq!(instant.rest(), "2022-01-18T10:33:50Z");
        assert_eq!(instant.webhook(), "2022-01-18T10:33:50.399Z");
    }

    #[test]
    fn offsets_are_converted_to_utc() {
        let instant = Instant::parse("2016-08-01T23:10:40+01:00").unwrap();
        assert_eq!(instant.rest(), "2016-08-01T22:10:40Z");
    }

    #[test]
    fn durations_move_instants_and_never_go_negative() {
        let start = Instant::parse("2022-01-18T10:33:50.399Z").unwrap();
        let later = start.after(std::time::Duration::from_millis(1_601));
        assert_eq!(later.webhook(), "2022-01-18T10:33:52.000Z");
        assert_eq!(start.until(later), std::time::Duration::from_millis(1_601));
        assert_eq!(later.until(start), std::time::Duration::ZERO);
        assert!(
            start.after(std::time::Duration::MAX) > later,
            "out of range saturates"
        );
    }

    #[test]
    fn sent_dates_win_and_an_unsent_update_date_follows_the_creation_or_now() {
        let now = Instant::parse("2024-05-01T12:00:00Z").unwrap();
        let sent = Instant::parse("2020-01-01T00:00:00Z").unwrap();
        let nothing = SentDates::default();
        assert_eq!(nothing.new_resource(now), (now, now));
        let created_only = SentDates {
            created: Some(sent),
            updated: None,
        };
        assert_eq!(created_only.new_resource(now), (sent, sent));

        let (mut created, mut updated) = (sent, sent);
        nothing.update(&mut created, &mut updated, now);
        assert_eq!(
            (created, updated),
            (sent, now),
            "creation kept, updated now"
        );
        let both = SentDates {
            created: Some(now),
            updated: Some(sent),
        };
        both.update(&mut created, &mut updated, now);
        assert_eq!((created, updated), (now, sent));
    }

    #[test]
    fn microsecond_stamps_count_from_the_unix_epoch() {
        let before = Instant::now().unix();
        let micros = unix_micros();
        let after = Instant::now().unix();
        let seconds = i64::try_from(micros / 1_000_000).unwrap();
        assert!(
            (before..=after).contains(&seconds),
            "{micros} µs is not now"
        );
    }

    #[test]
    fn garbage_is_not_a_timestamp() {
        assert!(Instant::parse("yesterday").is_none());
    }
}
