//! Which scheduled occurrence a run belongs to: the half-hour of a `save-location` run and the
//! ISO week of `path-daily` and `stats weekly`, in the configured time zone.

use std::fmt;
use std::str::FromStr;

use chrono::{
    DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike, Utc, Weekday,
};
use chrono_tz::Tz;

use crate::shard::Shard;

/// A `save-location` slot's length: also the time to live of the wake-ups sent without
/// `--ttl` (`send`, `doctor`), since a wake-up is useless once its slot is over.
pub(crate) const HALF_HOUR: std::time::Duration = std::time::Duration::from_secs(1800);

/// The half-hour slot containing `now`: floored to :00 or :30 in `tz`.
pub(crate) fn half_hour(now: DateTime<Utc>, tz: Tz) -> DateTime<Tz> {
    let local = now.with_timezone(&tz);
    let minute = if local.minute() < 30 { 0 } else { 30 };
    let floored = local.date_naive().and_hms_opt(local.hour(), minute, 0).expect("valid wall-clock time");
    local_instant(tz, floored)
}

/// The instant of a wall-clock time in `tz`; in a DST gap, the first valid instant after it.
pub(crate) fn local_instant(tz: Tz, naive: NaiveDateTime) -> DateTime<Tz> {
    tz.from_local_datetime(&naive).earliest().unwrap_or_else(|| local_instant(tz, naive + Duration::hours(1)))
}

/// An ISO 8601 week such as `2026-W48`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IsoWeek {
    year: i32,
    week: u32,
}

impl IsoWeek {
    /// The week of `year` numbered `week`, if it exists (52 or 53 weeks a year).
    pub fn new(year: i32, week: u32) -> Option<Self> {
        NaiveDate::from_isoywd_opt(year, week, Weekday::Mon).map(|_| IsoWeek { year, week })
    }

    /// The week containing `now` in `tz`.
    pub fn containing(now: DateTime<Utc>, tz: Tz) -> Self {
        let iso = now.with_timezone(&tz).date_naive().iso_week();
        IsoWeek { year: iso.year(), week: iso.week() }
    }

    /// The last week that has fully ended at `now` in `tz`.
    pub fn last_finished(now: DateTime<Utc>, tz: Tz) -> Self {
        IsoWeek::containing(now, tz).previous()
    }

    /// The week before this one.
    pub fn previous(self) -> Self {
        let monday = self.monday() - Duration::days(7);
        let iso = monday.iso_week();
        IsoWeek { year: iso.year(), week: iso.week() }
    }

    /// The week after this one.
    pub fn next(self) -> Self {
        let iso = (self.monday() + Duration::days(7)).iso_week();
        IsoWeek { year: iso.year(), week: iso.week() }
    }

    /// Its Monday.
    pub fn monday(self) -> NaiveDate {
        NaiveDate::from_isoywd_opt(self.year, self.week, Weekday::Mon).expect("validated week")
    }

    /// Monday 00:00 to the next Monday 00:00, as naive wall-clock times (the backend's form).
    pub fn bounds(self) -> (NaiveDateTime, NaiveDateTime) {
        let start = self.monday().and_time(NaiveTime::MIN);
        (start, start + Duration::days(7))
    }

    /// The ISO year.
    pub fn year(self) -> i32 {
        self.year
    }

    /// The week number, 1 to 53.
    pub fn week(self) -> u32 {
        self.week
    }
}

impl fmt::Display for IsoWeek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-W{:02}", self.year, self.week)
    }
}

/// Why a week label was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("\"{input}\" is not an ISO week: {reason} (expected YYYY-Www, e.g. 2026-W48)")]
pub struct WeekParseError {
    input: String,
    reason: String,
}

impl FromStr for IsoWeek {
    type Err = WeekParseError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let fail = |reason: &str| WeekParseError { input: input.to_owned(), reason: reason.to_owned() };
        if input.is_empty() {
            return Err(fail("it is empty"));
        }
        let (year, week) =
            input.split_once("-W").ok_or_else(|| fail("it lacks the \"-W\" before the week number"))?;
        let year: i32 = year
            .parse()
            .ok()
            .filter(|_| year.len() == 4)
            .ok_or_else(|| fail("the year is not four digits"))?;
        let number: u32 = week
            .parse()
            .ok()
            .filter(|_| week.len() == 2)
            .ok_or_else(|| fail("the week is not two digits"))?;
        IsoWeek::new(year, number).ok_or_else(|| fail(&format!("{year} has no week {number}")))
    }
}

/// The slot of `path-daily --remind` for path-daily's slot `first` (`2026-W49` →
/// `2026-W49-remind`): a slot of its own, so the reminder is journaled, resumed and skipped
/// when done like any delivery, and never mistaken for the first run.
pub(crate) fn remind_slot(first: IsoWeek) -> String {
    format!("{first}-remind")
}

/// One delivery the ledger keeps a row for: a job's slot, for one shard of the users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunKey {
    /// The job's name, e.g. `path-daily`.
    pub job: String,
    /// The slot's label: a half-hour in RFC 3339, or an ISO week.
    pub slot: String,
    pub shard: Shard,
}

impl fmt::Display for RunKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.job, self.slot)?;
        if self.shard.count > 1 {
            write!(f, " (shard {})", self.shard)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_slot_is_the_half_hour_in_seoul() {
        let slot = half_hour(utc("2026-11-30T05:44:59Z"), chrono_tz::Asia::Seoul);
        assert_eq!(slot.to_rfc3339(), "2026-11-30T14:30:00+09:00");
        let slot = half_hour(utc("2026-11-30T06:00:00Z"), chrono_tz::Asia::Seoul);
        assert_eq!(slot.to_rfc3339(), "2026-11-30T15:00:00+09:00");
    }

    #[test]
    fn the_week_follows_the_time_zone_not_utc() {
        // Sunday 23:30 UTC is already Monday in Seoul.
        let now = utc("2026-11-29T15:30:00Z");
        assert_eq!(IsoWeek::containing(now, chrono_tz::Asia::Seoul).to_string(), "2026-W49");
        assert_eq!(IsoWeek::containing(now, chrono_tz::UTC).to_string(), "2026-W48");
    }

    #[test]
    fn the_last_finished_week_crosses_years() {
        let now = utc("2027-01-05T00:00:00Z");
        assert_eq!(IsoWeek::last_finished(now, chrono_tz::UTC).to_string(), "2026-W53");
    }

    #[test]
    fn week_labels_are_parsed_strictly() {
        assert_eq!("2026-W48".parse::<IsoWeek>().unwrap().to_string(), "2026-W48");
        for bad in ["", "2026-48", "2026-W54", "2025-W53", "26-W01", "2026-W4"] {
            assert!(bad.parse::<IsoWeek>().is_err(), "{bad}");
        }
        assert_eq!("2026-W53".parse::<IsoWeek>().unwrap().week(), 53);
    }

    #[test]
    fn the_reminder_s_slot_is_the_first_run_s_with_a_suffix() {
        assert_eq!(remind_slot("2026-W49".parse().unwrap()), "2026-W49-remind");
    }

    #[test]
    fn a_week_runs_from_monday_to_monday() {
        let (start, end) = "2026-W48".parse::<IsoWeek>().unwrap().bounds();
        assert_eq!(start.to_string(), "2026-11-23 00:00:00");
        assert_eq!(end.to_string(), "2026-11-30 00:00:00");
    }
}
