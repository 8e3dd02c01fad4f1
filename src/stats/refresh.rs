//! When a week's rows were computed, on the clock the refresh compares them with.
//!
//! A refresh recomputes a user when one of their rows of the week has `last_updated` after their
//! weekly row's `computed_at`. The backend writes `last_updated` as naive wall-clock time in its
//! own zone (`--timezone`), so `computed_at` is written on that clock too, from the database
//! server's clock (the one every host shares).

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use chrono_tz::Tz;

/// How far before a run's start its rows' `computed_at` is set. The backend stamps
/// `last_updated` when it saves a row and commits a moment later; a row stamped just before a
/// run started but committed after the run read it would otherwise look older than the
/// computation that missed it. Two minutes covers a slow request and clock skew between the
/// Django host and the database; the price is that users who uploaded in the two minutes before
/// a run are recomputed once more by the next one.
pub(crate) const COMMIT_GRACE: Duration = Duration::minutes(2);

/// The `computed_at` of rows computed by a run starting at `server_now`, as the backend's
/// naive wall time in `timezone`.
pub(crate) fn computed_at(server_now: DateTime<Utc>, timezone: Tz) -> NaiveDateTime {
    (server_now - COMMIT_GRACE).with_timezone(&timezone).naive_local()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn computed_at_is_seoul_wall_time_less_the_commit_grace() {
        let now = DateTime::parse_from_rfc3339("2026-11-29T15:30:00Z").unwrap().with_timezone(&Utc);
        let at = computed_at(now, chrono_tz::Asia::Seoul);
        assert_eq!(at.to_string(), "2026-11-30 00:28:00");
    }
}
