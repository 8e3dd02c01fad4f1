//! Upload coverage: of the users `path-daily` reached, how many uploaded the week since its push,
//! and when their uploads arrived; when `path-daily --remind` followed, how many of those it
//! reminded uploaded after it (docs/stats.md, "Upload coverage").
//!
//! The database layer hands over, per whole minute after the push, how many users' earliest
//! qualifying upload fell in it; this module turns that into the report's figures. It never
//! holds a row per user.

use chrono::DateTime;
use chrono_tz::Tz;
use serde::Serialize;

use crate::db::report::RunStart;
use crate::db::{Database, DbError};
use crate::names;
use crate::slot::{self, IsoWeek};

/// The first two hours are counted per 10 minutes...
const FINE_MINUTES: u64 = 10;
const FINE_UNTIL: u64 = 120;
/// ...then per hour...
const COARSE_MINUTES: u64 = 60;
/// ...up to 7 days after the push; later uploads share one open-ended last bucket.
const COARSE_UNTIL: u64 = 7 * 24 * 60;

/// The week's uploads after the `path-daily` run that announced it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Uploads {
    /// When that run first started sending, RFC 3339 in `--timezone`.
    pub since: String,
    /// Messages FCM accepted for that run (`sent`, summed over its shards).
    pub notified: u64,
    /// Distinct users with a `dailypath` row of the week updated at or after `since`.
    pub uploaded: u64,
    /// `uploaded / notified`, to six decimals; `None` when nobody was notified.
    pub coverage: Option<f64>,
    /// Users by when their earliest such upload arrived, from the push: every bucket up to the
    /// last one with users (empty ones in between included).
    pub arrivals: Vec<Arrival>,
    /// The uploads after `path-daily --remind`, when it was sent for the week; the JSON key is
    /// left out otherwise (the object is then what it was before reminders).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remind: Option<Reminded>,
}

/// The week's uploads after the reminder: of the users it reminded, how many uploaded since.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Reminded {
    /// When the reminder first started sending, RFC 3339 in `--timezone`.
    pub since: String,
    /// Reminders FCM accepted (`sent`, summed over the reminder's shards).
    pub notified: u64,
    /// Users whose first upload since the push came after the reminder started: they had not
    /// uploaded when it was sent, which is whom it is sent to. Counted to the minute of the
    /// push's clock: an upload in the minute the reminder started counts as after it.
    pub uploaded: u64,
    /// `uploaded / notified`, to six decimals; `None` when nobody was reminded.
    pub coverage: Option<f64>,
}

/// The runs that announced a week: `path-daily`'s slot W+1 (sent the Monday after the week), and
/// its reminder (slot `W+1-remind`) when one was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Announcement {
    /// The Monday run.
    pub push: RunStart,
    /// `path-daily --remind` after it.
    pub remind: Option<RunStart>,
}

impl Announcement {
    /// The runs that announced `week`, from the journal; `None` without a `path-daily` run.
    ///
    /// # Errors
    /// When the database fails or the journal is missing (run `migrate`).
    pub(crate) async fn of(db: &Database, week: IsoWeek) -> Result<Option<Self>, DbError> {
        // The Monday run is named after the week it runs in: slot 2026-W49 announced 2026-W48.
        let first = week.next();
        let Some(push) = db.run_start(names::PATH_DAILY, &first.to_string()).await? else { return Ok(None) };
        let remind = db.run_start(names::PATH_DAILY_REMIND, &slot::remind_slot(first)).await?;
        Ok(Some(Announcement { push, remind }))
    }

    /// When the push first started, on the clock of `timezone`.
    pub(crate) fn since(&self, timezone: Tz) -> DateTime<Tz> {
        first_start(self.push, timezone)
    }

    /// The figures from `per_minute`, pairs of (whole minutes after the push, users whose first
    /// upload since it fell in that minute).
    pub(crate) fn uploads(&self, timezone: Tz, per_minute: &[(i64, u64)]) -> Uploads {
        let mut uploads = Uploads::new(self.since(timezone).to_rfc3339(), self.push.sent, per_minute);
        uploads.remind = self.remind.map(|remind| {
            let after_push = remind.first_started_utc_micros - self.push.first_started_utc_micros;
            let minute = after_push.div_euclid(60_000_000);
            let uploaded = per_minute.iter().filter(|&&(m, _)| m >= minute).map(|&(_, users)| users).sum();
            Reminded {
                since: first_start(remind, timezone).to_rfc3339(),
                notified: remind.sent,
                uploaded,
                coverage: ratio(uploaded, remind.sent),
            }
        });
        uploads
    }
}

/// When `run` first started sending, on the clock of `timezone` (the backend's naive datetimes
/// are that clock's wall time).
pub(crate) fn first_start(run: RunStart, timezone: Tz) -> DateTime<Tz> {
    DateTime::from_timestamp_micros(run.first_started_utc_micros).unwrap_or_default().with_timezone(&timezone)
}

/// `part / whole` to six decimals; `None` when `whole` is zero.
fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| (part as f64 / whole as f64 * 1e6).round() / 1e6)
}

/// One bucket of arrivals: `[from_minutes, to_minutes)` after the push.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct Arrival {
    pub from_minutes: u64,
    /// `None` for the last bucket, everything from 7 days on.
    pub to_minutes: Option<u64>,
    pub users: u64,
}

impl Uploads {
    /// The figures from `per_minute`, pairs of (whole minutes after the push, users whose first
    /// upload fell in that minute), for a run that reached `notified` and started at `since`.
    /// Negative minutes (none come from the query) are counted in the first bucket.
    pub(crate) fn new(since: String, notified: u64, per_minute: &[(i64, u64)]) -> Self {
        let mut arrivals = buckets();
        for &(minute, users) in per_minute {
            let minute = u64::try_from(minute).unwrap_or(0);
            arrivals[bucket_of(minute)].users += users;
        }
        let used = arrivals.iter().rposition(|a| a.users > 0).map_or(0, |last| last + 1);
        arrivals.truncate(used);
        let uploaded: u64 = arrivals.iter().map(|a| a.users).sum();
        let coverage = ratio(uploaded, notified);
        Uploads { since, notified, uploaded, coverage, arrivals, remind: None }
    }

    /// The summary line, e.g. `3 of 5 notified (60.0%) since 2026-11-30T00:10:00+09:00`, and
    /// after a reminder `; reminded: 1 of 2 (50.0%) since 2026-11-30T09:00:00+09:00`.
    pub(crate) fn line(&self) -> String {
        let mut line = format!(
            "{} of {} notified ({}) since {}",
            self.uploaded,
            self.notified,
            share(self.coverage),
            self.since
        );
        if let Some(remind) = &self.remind {
            line.push_str(&format!(
                "; reminded: {} of {} ({}) since {}",
                remind.uploaded,
                remind.notified,
                share(remind.coverage),
                remind.since
            ));
        }
        line
    }
}

/// A coverage as the summary lines show it.
fn share(coverage: Option<f64>) -> String {
    coverage.map_or_else(|| "no coverage".to_owned(), |c| format!("{:.1}%", c * 100.0))
}

/// Every bucket, empty: 10-minute ones for 2 hours, hourly ones to 7 days, then the rest.
fn buckets() -> Vec<Arrival> {
    let fine = (0..FINE_UNTIL).step_by(FINE_MINUTES as usize).map(|from| (from, FINE_MINUTES));
    let coarse =
        (FINE_UNTIL..COARSE_UNTIL).step_by(COARSE_MINUTES as usize).map(|from| (from, COARSE_MINUTES));
    let mut all: Vec<Arrival> = fine
        .chain(coarse)
        .map(|(from, width)| Arrival { from_minutes: from, to_minutes: Some(from + width), users: 0 })
        .collect();
    all.push(Arrival { from_minutes: COARSE_UNTIL, to_minutes: None, users: 0 });
    all
}

/// The position in [`buckets`] of minute `minute` after the push.
fn bucket_of(minute: u64) -> usize {
    let fine = FINE_UNTIL / FINE_MINUTES;
    let index = if minute < FINE_UNTIL {
        minute / FINE_MINUTES
    } else if minute < COARSE_UNTIL {
        fine + (minute - FINE_UNTIL) / COARSE_MINUTES
    } else {
        fine + (COARSE_UNTIL - FINE_UNTIL) / COARSE_MINUTES
    };
    usize::try_from(index).expect("a few hundred buckets")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrivals_are_per_ten_minutes_then_hourly_and_stop_at_the_last_user() {
        let uploads = Uploads::new("t".into(), 5, &[(5, 1), (25, 1), (180, 1)]);
        assert_eq!((uploads.uploaded, uploads.coverage), (3, Some(0.6)));
        let counted: Vec<_> = uploads
            .arrivals
            .iter()
            .filter(|a| a.users > 0)
            .map(|a| (a.from_minutes, a.to_minutes, a.users))
            .collect();
        assert_eq!(counted, [(0, Some(10), 1), (20, Some(30), 1), (180, Some(240), 1)]);
        // 12 buckets of 10 minutes, then 120-180 and 180-240.
        assert_eq!(uploads.arrivals.len(), 14);
    }

    #[test]
    fn uploads_after_a_week_share_the_last_bucket() {
        let uploads = Uploads::new("t".into(), 2, &[(119, 1), (120, 1), (10_079, 1), (20_000, 2)]);
        let last = uploads.arrivals.last().unwrap();
        assert_eq!((last.from_minutes, last.to_minutes, last.users), (10_080, None, 2));
        assert_eq!(uploads.arrivals[11].users, 1);
        assert_eq!(uploads.arrivals[12].users, 1);
        assert_eq!(uploads.arrivals[uploads.arrivals.len() - 2].users, 1);
        assert_eq!(uploads.coverage, Some(2.5));
    }

    fn run(first_started_utc_micros: i64, sent: u64) -> RunStart {
        RunStart { first_started_utc_micros, sent }
    }

    #[test]
    fn the_reminder_counts_the_users_whose_first_upload_came_after_it() {
        const MINUTE: i64 = 60_000_000;
        // The push at 00:10, the reminder at 09:00:30 (530 minutes and a half later).
        let push = run(1_795_965_000_000_000, 5);
        let announcement = Announcement {
            push,
            remind: Some(run(push.first_started_utc_micros + 530 * MINUTE + MINUTE / 2, 2)),
        };
        let uploads = announcement.uploads(chrono_tz::Asia::Seoul, &[(5, 1), (529, 1), (530, 1), (600, 1)]);
        let remind = uploads.remind.as_ref().unwrap();
        assert_eq!((remind.notified, remind.uploaded, remind.coverage), (2, 2, Some(1.0)));
        assert_eq!(uploads.uploaded, 4);
        assert!(
            uploads.line().ends_with("; reminded: 2 of 2 (100.0%) since 2026-11-30T09:00:30+09:00"),
            "{}",
            uploads.line()
        );
    }

    #[test]
    fn without_a_reminder_the_line_and_the_figures_say_nothing_of_one() {
        let uploads = Announcement { push: run(1_795_965_000_000_000, 5), remind: None }
            .uploads(chrono_tz::Asia::Seoul, &[(5, 1)]);
        assert_eq!(uploads.remind, None);
        assert_eq!(uploads.line(), "1 of 5 notified (20.0%) since 2026-11-30T00:10:00+09:00");
    }

    #[test]
    fn nobody_notified_has_no_coverage_and_nobody_uploading_no_arrivals() {
        let uploads = Uploads::new("t".into(), 0, &[]);
        assert_eq!((uploads.uploaded, uploads.coverage, uploads.arrivals.len()), (0, None, 0));
        assert!(uploads.line().contains("0 of 0 notified (no coverage)"));
    }
}
