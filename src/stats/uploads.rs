//! Upload coverage: of the users `path-daily` reached, how many uploaded the week since its push,
//! and when their uploads arrived (docs/stats.md, "Upload coverage").
//!
//! The database layer hands over, per whole minute after the push, how many users' earliest
//! qualifying upload fell in it; this module turns that into the report's figures. It never
//! holds a row per user.

use serde::Serialize;

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
        let coverage = (notified > 0).then(|| (uploaded as f64 / notified as f64 * 1e6).round() / 1e6);
        Uploads { since, notified, uploaded, coverage, arrivals }
    }

    /// The summary line, e.g. `3 of 5 notified (60.0%) since 2026-11-30T00:10:00+09:00`.
    pub(crate) fn line(&self) -> String {
        let share = self.coverage.map_or_else(|| "no coverage".to_owned(), |c| format!("{:.1}%", c * 100.0));
        format!("{} of {} notified ({share}) since {}", self.uploaded, self.notified, self.since)
    }
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

    #[test]
    fn nobody_notified_has_no_coverage_and_nobody_uploading_no_arrivals() {
        let uploads = Uploads::new("t".into(), 0, &[]);
        assert_eq!((uploads.uploaded, uploads.coverage, uploads.arrivals.len()), (0, None, 0));
        assert!(uploads.line().contains("0 of 0 notified (no coverage)"));
    }
}
