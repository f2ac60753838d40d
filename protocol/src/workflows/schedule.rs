//! Schedules: a five-field cron expression read in an IANA time zone (croner, chrono-tz), so
//! "09:00 in Europe/London" stays 09:00 there across a change of summer time. Every time is
//! passed in: on wasm32 there is no clock here, only the runtime's.

use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds};
use croner::Cron;

pub const MINUTE_MS: u64 = 60_000;
/// Occurrences compared when checking the minimum interval: enough to meet every gap of a
/// pattern whose fields repeat within a day, hour or minute list.
const INTERVAL_SAMPLE: usize = 400;

#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
    tz: Tz,
}

impl Schedule {
    /// A schedule, or why the expression or the time zone is refused. Cheap: what the
    /// scheduler and the trigger lists read a saved schedule with.
    pub fn parse(expression: &str, timezone: &str) -> Result<Schedule, String> {
        if !(9..=200).contains(&expression.len()) {
            return Err(format!(
                "`{expression}` is not a five-field cron expression"
            ));
        }
        let tz = Tz::from_str(timezone).map_err(|_| {
            format!("`{timezone}` is not an IANA time zone (such as Europe/London)")
        })?;
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .build()
            .parse(expression)
            .map_err(|e| format!("`{expression}` is not a five-field cron expression: {e:?}"))?;
        Ok(Schedule { cron, tz })
    }

    /// A schedule as it may be saved: it parses, it runs, and no two of its runs in the sample
    /// from `now_ms` are closer together than `min_interval_minutes`.
    pub fn checked(
        expression: &str,
        timezone: &str,
        min_interval_minutes: u64,
        now_ms: u64,
    ) -> Result<Schedule, String> {
        let schedule = Schedule::parse(expression, timezone)?;
        let runs = schedule.next_runs(now_ms, INTERVAL_SAMPLE);
        if runs.is_empty() {
            return Err(format!("`{expression}` never runs"));
        }
        if let Some(gap) = runs.windows(2).map(|w| w[1] - w[0]).min() {
            if gap < min_interval_minutes * MINUTE_MS {
                return Err(format!(
                    "`{expression}` runs {} minute(s) apart; the shortest interval allowed here is {min_interval_minutes} minutes",
                    gap / MINUTE_MS
                ));
            }
        }
        Ok(schedule)
    }

    /// The first run strictly after `after_ms`.
    pub fn next_after(&self, after_ms: u64) -> Option<u64> {
        self.next_runs(after_ms, 1).first().copied()
    }

    /// The next `n` runs strictly after `after_ms`, in ms since the epoch.
    pub fn next_runs(&self, after_ms: u64, n: usize) -> Vec<u64> {
        let Some(start) = DateTime::<Utc>::from_timestamp_millis(after_ms as i64) else {
            return Vec::new();
        };
        let local = self.tz.from_utc_datetime(&start.naive_utc());
        self.cron
            .iter_after(local)
            .take(n)
            .map(|t| t.timestamp_millis().max(0) as u64)
            .collect()
    }
}

/// What a tick at `tick_ms` does about a trigger due at `due_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tick {
    /// Not yet due.
    NotDue,
    /// Due in this tick's minute.
    OnTime,
    /// Due in an earlier minute that no tick ran (the platform was down): it runs once now,
    /// however many were missed.
    CatchUp,
}

pub fn tick(due_ms: u64, tick_ms: u64) -> Tick {
    let minute = tick_ms - tick_ms % MINUTE_MS;
    if due_ms >= minute + MINUTE_MS {
        Tick::NotDue
    } else if due_ms >= minute {
        Tick::OnTime
    } else {
        Tick::CatchUp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(tz: Tz, y: i32, mo: u32, d: u32, h: u32, mi: u32) -> u64 {
        tz.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .single()
            .unwrap()
            .timestamp_millis() as u64
    }

    const NOW: u64 = 1_800_000_000_000;

    #[test]
    fn refuses_what_it_cannot_run() {
        for bad in [
            "* * * *",
            "0 0 * * * *",
            "61 * * * *",
            "0 25 * * *",
            "not cron",
            "",
        ] {
            assert!(Schedule::checked(bad, "UTC", 1, NOW).is_err(), "{bad}");
        }
        assert!(Schedule::checked("0 9 * * *", "Mars/Olympus", 1, NOW).is_err());
        // Closer together than the minimum, even once a day.
        let err = Schedule::checked("*/5 * * * *", "UTC", 15, NOW).unwrap_err();
        assert!(err.contains("15 minutes"), "{err}");
        assert!(Schedule::checked("0,5 9 * * *", "UTC", 15, NOW).is_err());
        assert!(Schedule::checked("*/15 * * * *", "UTC", 15, NOW).is_ok());
        assert!(Schedule::checked("0 9 * * 1-5", "Europe/London", 15, NOW).is_ok());
    }

    #[test]
    fn keeps_local_time_across_summer_time() {
        let london: Tz = "Europe/London".parse().unwrap();
        let s = Schedule::checked("0 9 * * *", "Europe/London", 15, NOW).unwrap();
        // The clocks go forward on 28 March 2027: 09:00 there is 09:00 UTC before, 08:00 after.
        let before = at(london, 2027, 3, 27, 12, 0);
        let runs = s.next_runs(before, 2);
        assert_eq!(runs[0], at(Tz::UTC, 2027, 3, 28, 8, 0));
        assert_eq!(runs[1], at(Tz::UTC, 2027, 3, 29, 8, 0));
        assert_eq!(
            s.next_after(at(Tz::UTC, 2027, 3, 26, 10, 0)),
            Some(at(Tz::UTC, 2027, 3, 27, 9, 0))
        );
        // A time the clocks skip runs once, at the first minute after the gap; a repeated
        // hour runs once.
        let ny: Tz = "America/New_York".parse().unwrap();
        let gap = Schedule::checked("30 2 * * *", "America/New_York", 15, NOW).unwrap();
        let runs = gap.next_runs(at(ny, 2027, 3, 13, 12, 0), 2);
        assert_eq!(runs[0], at(Tz::UTC, 2027, 3, 14, 7, 0));
        assert_eq!(runs[1], at(Tz::UTC, 2027, 3, 15, 6, 30));
        let twice = Schedule::checked("30 1 * * *", "America/New_York", 15, NOW).unwrap();
        let runs = twice.next_runs(at(ny, 2027, 11, 6, 12, 0), 2);
        assert_eq!(runs[1] - runs[0], 25 * 60 * MINUTE_MS);
    }

    #[test]
    fn ticks() {
        let m = 1_800_000_000_000 - 1_800_000_000_000 % MINUTE_MS;
        assert_eq!(tick(m, m + 5_000), Tick::OnTime);
        assert_eq!(tick(m + MINUTE_MS, m + 5_000), Tick::NotDue);
        assert_eq!(tick(m - MINUTE_MS, m + 5_000), Tick::CatchUp);
        assert_eq!(tick(m - 100 * MINUTE_MS, m), Tick::CatchUp);
    }
}
