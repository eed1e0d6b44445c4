//! Conversation timers (`Timers.Inactive`, `Timers.Closed`): ISO-8601
//! durations counted from the conversation's last activity (creation, a
//! timer change, a new message or participant, a reactivation). When one
//! elapses the conversation moves to `inactive` / `closed` (`lifecycle.rs`
//! applies it when the alarm clock rings).
//!
//! Deviation from Twilio, on purpose: Twilio refuses an inactive timer
//! under 1 minute and a closed timer under 10 minutes; the emulator takes
//! any positive duration (`PT1S`) so tests run in seconds. Calendar units
//! (years, months) are refused: their length depends on the date.

use std::time::Duration;

use serde_json::{Value, json};

use super::state::ConversationState;
use crate::clock::Instant;

/// A positive ISO-8601 duration such as `PT5M`, `PT10S`, `P1D`, `P1W`,
/// `P1DT12H`, `PT0.5S`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimerDuration(Duration);

impl TimerDuration {
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("{text:?} is not an ISO-8601 duration such as PT5M ({why})");
        let rest = text
            .strip_prefix('P')
            .ok_or_else(|| bad("it must start with P"))?;
        let (date, time) = match rest.split_once('T') {
            Some((_, "")) => return Err(bad("nothing follows T")),
            Some((date, time)) => (date, time),
            None => (rest, ""),
        };
        if date.is_empty() && time.is_empty() {
            return Err(bad("it has no value"));
        }
        let mut total = Duration::ZERO;
        for (is_date, part, units) in [
            (true, date, &[('W', 604_800.0), ('D', 86_400.0)][..]),
            (false, time, &[('H', 3_600.0), ('M', 60.0), ('S', 1.0)][..]),
        ] {
            let mut remaining = part;
            let mut last_unit = 0;
            while !remaining.is_empty() {
                let end = remaining
                    .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                    .ok_or_else(|| bad("a number has no unit"))?;
                let (number, after) = remaining.split_at(end);
                let mut chars = after.chars();
                let unit = chars.next().unwrap_or_default();
                remaining = chars.as_str();
                if is_date && ['Y', 'M'].contains(&unit) {
                    return Err(bad("years and months have no fixed length; use days"));
                }
                let at = units
                    .iter()
                    .position(|(u, _)| *u == unit)
                    .filter(|at| *at + 1 > last_unit)
                    .ok_or_else(|| bad(&format!("unexpected {unit:?}")))?;
                last_unit = at + 1;
                if number.contains('.') && unit != 'S' {
                    return Err(bad("only seconds may have a fraction"));
                }
                let value: f64 = number
                    .parse()
                    .map_err(|_| bad(&format!("{number:?} is not a number")))?;
                let seconds = value * units[at].1;
                total = Duration::try_from_secs_f64(seconds)
                    .ok()
                    .and_then(|step| total.checked_add(step))
                    .ok_or_else(|| bad("it is too long"))?;
            }
        }
        if total.is_zero() {
            return Err(bad("it must be longer than zero"));
        }
        Ok(Self(total))
    }

    pub fn get(self) -> Duration {
        self.0
    }
}

/// A conversation's timers and the instants they fall due.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Timers {
    pub inactive: Option<TimerDuration>,
    pub closed: Option<TimerDuration>,
    /// When the conversation goes (or went) inactive; kept after it passed.
    pub date_inactive: Option<Instant>,
    /// When the conversation closes (or closed); kept after it passed.
    pub date_closed: Option<Instant>,
}

impl Timers {
    /// Counts both timers again from `now` (activity), as far as the state
    /// lets them still fire: only an active conversation goes inactive, and
    /// a closed one never moves again.
    pub fn restart(&mut self, state: ConversationState, now: Instant) {
        if state == ConversationState::Active {
            self.date_inactive = self.inactive.map(|d| now.after(d.get()));
        }
        if state != ConversationState::Closed {
            self.date_closed = self.closed.map(|d| now.after(d.get()));
        }
    }

    /// The state an elapsed timer moves the conversation to at `now`.
    pub fn due(&self, state: ConversationState, now: Instant) -> Option<ConversationState> {
        let elapsed = |date: Option<Instant>| date.is_some_and(|at| at <= now);
        if state != ConversationState::Closed && self.closed.is_some() && elapsed(self.date_closed)
        {
            Some(ConversationState::Closed)
        } else if state == ConversationState::Active
            && self.inactive.is_some()
            && elapsed(self.date_inactive)
        {
            Some(ConversationState::Inactive)
        } else {
            None
        }
    }

    /// The next instant a timer can move the conversation.
    pub fn next(&self, state: ConversationState) -> Option<Instant> {
        let inactive = self
            .date_inactive
            .filter(|_| state == ConversationState::Active && self.inactive.is_some());
        let closed = self
            .date_closed
            .filter(|_| state != ConversationState::Closed && self.closed.is_some());
        inactive.into_iter().chain(closed).min()
    }

    /// `timers` in the conversation JSON: `{date_inactive?, date_closed?}`.
    pub fn to_json(&self) -> Value {
        let mut map = serde_json::Map::new();
        if let Some(at) = self.date_inactive {
            map.insert("date_inactive".into(), json!(at.rest()));
        }
        if let Some(at) = self.date_closed {
            map.insert("date_closed".into(), json!(at.rest()));
        }
        Value::Object(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ConversationState::{Active, Closed, Inactive};

    fn seconds(text: &str) -> f64 {
        TimerDuration::parse(text).unwrap().get().as_secs_f64()
    }

    #[test]
    fn iso_durations_of_days_weeks_and_clock_units_are_read() {
        assert_eq!(seconds("PT5M"), 300.0);
        assert_eq!(seconds("PT10S"), 10.0);
        assert_eq!(seconds("P1D"), 86_400.0);
        assert_eq!(seconds("P1W"), 604_800.0);
        assert_eq!(seconds("P1DT1H1M1S"), 90_061.0);
        assert_eq!(seconds("PT0.5S"), 0.5);
    }

    #[test]
    fn malformed_calendar_zero_and_huge_durations_are_refused() {
        for bad in [
            "",
            "5M",
            "P",
            "PT",
            "P1",
            "PT1X",
            "P1M",
            "P1Y",
            "PT1H1H",
            "PT1S1M",
            "PT0S",
            "P0D",
            "PT1.5M",
            "PT-1S",
            "P1.2.3D",
            "PT99999999999999999999999S",
        ] {
            let error = TimerDuration::parse(bad).expect_err(bad);
            assert!(error.contains("ISO-8601 duration"), "{bad}: {error}");
        }
    }

    #[test]
    fn timers_count_from_activity_and_fall_due_in_order() {
        let start = Instant::parse("2024-01-01T00:00:00Z").unwrap();
        let mut timers = Timers {
            inactive: Some(TimerDuration::parse("PT1M").unwrap()),
            closed: Some(TimerDuration::parse("PT10M").unwrap()),
            ..Timers::default()
        };
        timers.restart(Active, start);
        assert_eq!(
            timers.next(Active),
            Some(start.after(Duration::from_secs(60)))
        );
        assert_eq!(timers.due(Active, start), None);
        let later = start.after(Duration::from_secs(61));
        assert_eq!(timers.due(Active, later), Some(Inactive));
        assert_eq!(timers.due(Inactive, later), None);
        assert_eq!(
            timers.next(Inactive),
            Some(start.after(Duration::from_secs(600)))
        );
        let much_later = start.after(Duration::from_secs(601));
        assert_eq!(timers.due(Inactive, much_later), Some(Closed));
        assert_eq!(timers.due(Closed, much_later), None);
        assert_eq!(timers.next(Closed), None);
        assert_eq!(
            timers.to_json(),
            json!({"date_inactive": "2024-01-01T00:01:00Z", "date_closed": "2024-01-01T00:10:00Z"})
        );
    }

    #[test]
    fn a_closed_timer_shorter_than_the_inactive_one_closes_directly() {
        let start = Instant::parse("2024-01-01T00:00:00Z").unwrap();
        let mut timers = Timers {
            inactive: Some(TimerDuration::parse("PT10M").unwrap()),
            closed: Some(TimerDuration::parse("PT1M").unwrap()),
            ..Timers::default()
        };
        timers.restart(Active, start);
        let later = start.after(Duration::from_secs(61));
        assert_eq!(timers.due(Active, later), Some(Closed));
    }
}
