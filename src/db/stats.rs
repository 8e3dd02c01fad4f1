//! Every statement of `stats weekly`: reading a week's intervals page by page of users, and
//! replacing the week's rows in `wolley_push_weekly_user`, `wolley_push_weekly_stat` and
//! `wolley_push_user_badge` in one transaction; then, for `--notify`, the week's badge winners
//! with their tokens.
//!
//! The week's days are found with one scan of `dailypath` (its `date` has no index, and the
//! backend's tables are not ours to index) into a session table of our own indexed by user;
//! each page of users then joins it to the intervals through their `daily_path_id` index.
//!
//! Why pages of users rather than one big `INSERT ... SELECT` with window functions: measured
//! on a 2-core machine over one million intervals, merging per (user, category) with
//! `MAX(end) OVER (...)` and grouping took about 16 s in MariaDB, against about 4 s for this
//! whole run, streaming the rows and merging each user's hundred intervals in Rust (see
//! docs/stats.md). The SQL still does the joins and the selection, and only one page of users
//! is ever in memory.
//!
//! Reading the backend under READ COMMITTED takes no locks on its rows (InnoDB reads them as a
//! consistent snapshot), so the Django app keeps writing while a week is aggregated.

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, Timelike};
use mysql_async::prelude::*;
use mysql_async::{IsolationLevel, Params, Transaction, TxOpts, Value};

use super::{has_token, Database, DbError, CONNECT_TIMEOUT, PLACEHOLDER_TOKEN};
use crate::slot::IsoWeek;
use crate::stats::week::{RawInterval, UserWeek};
use crate::stats::{MOVE_CATEGORY, PAST_CATEGORY};

/// Users per page. A page holds their intervals (about 100 each for a user recording all
/// week), so memory stays at a few megabytes whatever the number of users.
pub(crate) const USERS_PER_PAGE: u64 = 1_000;
/// Rows per multi-row `INSERT`.
const INSERT_ROWS: usize = 1_000;
/// Winners (with tokens) per page for `--notify`.
pub(crate) const WINNERS_PER_PAGE: u64 = 5_000;
/// Joins the badge names of one winner in [`WINNERS_SELECT`] (names cannot contain control
/// characters, so it cannot occur in one).
const NAME_SEPARATOR: char = '\u{1f}';

/// The days that may hold the week's intervals: dated from the Sunday before the week (a stay
/// may run past midnight into Monday) to the week's Sunday. `dailypath.date` has no index and
/// the backend's tables are not ours to change, so one scan copies the week's days into a
/// session table of our own, indexed by user, that every page then joins.
const CREATE_DAYS: &str = "\
    CREATE TEMPORARY TABLE wolley_push_week_day ( \
        dailypath_id BIGINT     NOT NULL PRIMARY KEY, \
        user_id      INT        NOT NULL, \
        day          TINYINT    NOT NULL, \
        past         TINYINT(1) NOT NULL, \
        KEY wolley_push_week_day_user (user_id) \
    )";
const FILL_DAYS: &str = "\
    INSERT INTO wolley_push_week_day (dailypath_id, user_id, day, past) \
    SELECT dailypath_id, user_id, DATEDIFF(date, :monday), path_type = 'past' \
    FROM dailypath WHERE date BETWEEN :first_day AND :last_day";
const DROP_DAYS: &str = "DROP TEMPORARY TABLE IF EXISTS wolley_push_week_day";

/// The last user id of the next page of users with a day in the week.
const PAGE_END: &str = "\
    SELECT user_id FROM wolley_push_week_day WHERE user_id > ? \
    GROUP BY user_id ORDER BY user_id LIMIT 1 OFFSET ?";

/// The intervals of a page of users that may touch the week: starting before the week ends
/// and either ending after it starts or starting inside it (so reversed and zero-length rows
/// of the week come along, to be counted as ignored). Times are whole seconds since
/// 1970-01-01 of the naive wall clock: TIMESTAMPDIFF truncates the microseconds.
const INTERVALS: &str = "\
    SELECT w.user_id, IF(w.past, :past, i.category), w.day, \
           TIMESTAMPDIFF(SECOND, '1970-01-01', i.start_time), TIMESTAMPDIFF(SECOND, '1970-01-01', i.end_time) \
    FROM wolley_push_week_day w JOIN intervalstay i ON i.daily_path_id = w.dailypath_id \
    WHERE w.user_id > :after AND w.user_id <= :upto \
      AND i.start_time < :week_end AND (i.end_time > :week_start OR i.start_time >= :week_start) \
    UNION ALL \
    SELECT w.user_id, IF(w.past, :past, :moving), w.day, \
           TIMESTAMPDIFF(SECOND, '1970-01-01', m.start_time), TIMESTAMPDIFF(SECOND, '1970-01-01', m.end_time) \
    FROM wolley_push_week_day w JOIN intervalmove m ON m.daily_path_id = w.dailypath_id \
    WHERE w.user_id > :after AND w.user_id <= :upto \
      AND m.start_time < :week_end AND (m.end_time > :week_start OR m.start_time >= :week_start) \
    ORDER BY 1";

const DELETE_WEEK: [&str; 3] = [
    "DELETE FROM wolley_push_weekly_user WHERE week = ?",
    "DELETE FROM wolley_push_weekly_stat WHERE week = ?",
    "DELETE FROM wolley_push_user_badge WHERE week = ?",
];
const INSERT_USERS: Insert = Insert {
    head: "INSERT INTO wolley_push_weekly_user (week, user_id, recorded_seconds, untracked_seconds, days_with_data) VALUES ",
    width: 5,
};
const INSERT_STATS: Insert = Insert {
    head: "INSERT INTO wolley_push_weekly_stat (week, user_id, category, seconds, share) VALUES ",
    width: 5,
};
const INSERT_BADGES: Insert =
    Insert { head: "INSERT INTO wolley_push_user_badge (week, user_id, badge, name) VALUES ", width: 4 };

/// One user of a page with every interval that may touch the week.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UserIntervals {
    pub user_id: i64,
    /// Their intervals, unordered.
    pub intervals: Vec<RawInterval>,
}

/// A badge a user earned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Award<'a> {
    pub user_id: i64,
    pub code: &'a str,
    pub name: &'a str,
}

/// A multi-row `INSERT` of `width` columns.
struct Insert {
    head: &'static str,
    width: usize,
}

/// Rows waiting for a multi-row `INSERT`, flattened.
struct Pending {
    insert: Insert,
    values: Vec<Value>,
}

impl Pending {
    fn new(insert: Insert) -> Self {
        Pending { values: Vec::with_capacity(insert.width * INSERT_ROWS), insert }
    }

    fn is_full(&self) -> bool {
        self.values.len() >= self.insert.width * INSERT_ROWS
    }

    /// Writes every pending row, as few statements as possible.
    async fn flush(&mut self, tx: &mut Transaction<'static>) -> Result<(), mysql_async::Error> {
        for chunk in self.values.chunks(self.insert.width * INSERT_ROWS) {
            let row = format!("({})", vec!["?"; self.insert.width].join(", "));
            let sql =
                format!("{}{}", self.insert.head, vec![row; chunk.len() / self.insert.width].join(", "));
            tx.exec_drop(sql, Params::Positional(chunk.to_vec())).await?;
        }
        self.values.clear();
        Ok(())
    }
}

/// The week's rows being replaced: one transaction, read and written page by page. Dropping it
/// without [`WeekWriter::commit`] rolls everything back: the week keeps its previous rows.
pub(crate) struct WeekWriter {
    db: Database,
    tx: Transaction<'static>,
    label: String,
    bounds: Bounds,
    week_epoch: i64,
    after: i64,
    done: bool,
    users: Pending,
    stats: Pending,
    badges: Pending,
}

impl Database {
    /// Starts replacing `week`'s rows: opens the transaction and deletes what an earlier run
    /// wrote for the week.
    pub(crate) async fn begin_week(&self, week: IsoWeek) -> Result<WeekWriter, DbError> {
        let mut options = TxOpts::default();
        options.with_isolation_level(IsolationLevel::ReadCommitted);
        let mut tx = match tokio::time::timeout(CONNECT_TIMEOUT, self.pool.start_transaction(options)).await {
            Ok(tx) => tx.map_err(|e| self.classify(e, "connecting"))?,
            Err(_) => {
                return Err(DbError::Unreachable {
                    url: self.url.to_string(),
                    reason: format!("no connection within {}s", CONNECT_TIMEOUT.as_secs()),
                })
            }
        };
        let label = week.to_string();
        for statement in DELETE_WEEK {
            tx.exec_drop(statement, (&label,))
                .await
                .map_err(|e| self.classify(e, "clearing the week's statistics"))?;
        }
        let bounds = Bounds::of(week);
        let fail = |e| self.classify(e, "finding the week's days");
        tx.query_drop(DROP_DAYS).await.map_err(fail)?;
        tx.query_drop(CREATE_DAYS).await.map_err(fail)?;
        tx.exec_drop(FILL_DAYS, bounds.days()).await.map_err(fail)?;
        let (start, _) = week.bounds();
        Ok(WeekWriter {
            db: self.clone(),
            tx,
            label,
            bounds,
            week_epoch: start.and_utc().timestamp(),
            after: i64::MIN,
            done: false,
            users: Pending::new(INSERT_USERS),
            stats: Pending::new(INSERT_STATS),
            badges: Pending::new(INSERT_BADGES),
        })
    }
}

impl WeekWriter {
    /// The next page of users (in `user_id` order) with their intervals; `None` after the last.
    /// Users without any interval near the week are not listed; a page may be empty.
    pub(crate) async fn next_page(&mut self) -> Result<Option<Vec<UserIntervals>>, DbError> {
        if self.done {
            return Ok(None);
        }
        let fail = |db: &Database, e| db.classify(e, "reading the week's intervals");
        let end: Option<i64> = self
            .tx
            .exec_first(PAGE_END, (self.after, USERS_PER_PAGE - 1))
            .await
            .map_err(|e| fail(&self.db, e))?;
        // Fewer than a page of users left: the last page is open-ended.
        let upto = end.unwrap_or(i64::MAX);
        self.done = end.is_none();
        let rows: Vec<(i64, String, i64, i64, i64)> = self
            .tx
            .exec(INTERVALS, self.bounds.page(self.after, upto))
            .await
            .map_err(|e| fail(&self.db, e))?;
        self.after = upto;
        Ok(Some(group_by_user(rows, self.week_epoch)))
    }

    /// Queues the page's weeks and badges, writing whenever enough rows are waiting.
    pub(crate) async fn write(&mut self, weeks: &[UserWeek], awards: &[Award<'_>]) -> Result<(), DbError> {
        for week in weeks {
            self.queue_week(week);
            if self.users.is_full() || self.stats.is_full() {
                self.flush().await?;
            }
        }
        for award in awards {
            self.badges.values.extend([
                self.label.as_str().into(),
                award.user_id.into(),
                award.code.into(),
                award.name.into(),
            ]);
            if self.badges.is_full() {
                self.flush().await?;
            }
        }
        Ok(())
    }

    fn queue_week(&mut self, week: &UserWeek) {
        let label = || Value::from(self.label.as_str());
        self.users.values.extend([
            label(),
            week.user_id.into(),
            week.recorded.into(),
            week.untracked().into(),
            week.days_with_data.into(),
        ]);
        for time in &week.categories {
            // Bound as text: DECIMAL(7,6) takes it exactly, where a double could round either way.
            let share = format!("{:.6}", week.share_of(time.seconds));
            self.stats.values.extend([
                label(),
                week.user_id.into(),
                time.category.as_str().into(),
                time.seconds.into(),
                share.into(),
            ]);
        }
    }

    async fn flush(&mut self) -> Result<(), DbError> {
        for pending in [&mut self.users, &mut self.stats, &mut self.badges] {
            pending
                .flush(&mut self.tx)
                .await
                .map_err(|e| self.db.classify(e, "writing the week's statistics"))?;
        }
        Ok(())
    }

    /// Writes what is still queued and commits: the week's rows are replaced at once.
    ///
    /// # Errors
    /// As classified; nothing is changed then.
    pub(crate) async fn commit(mut self) -> Result<(), DbError> {
        self.flush().await?;
        let fail = |e| self.db.classify(e, "committing the week's statistics");
        self.tx.query_drop(DROP_DAYS).await.map_err(fail)?;
        self.tx.commit().await.map_err(fail)
    }
}

/// The week's bounds as the backend's naive datetimes and dates.
#[derive(Debug, Clone)]
struct Bounds {
    monday: Value,
    first_day: Value,
    last_day: Value,
    week_start: Value,
    week_end: Value,
}

impl Bounds {
    fn of(week: IsoWeek) -> Self {
        let (start, end) = week.bounds();
        let monday = week.monday();
        Bounds {
            monday: date_value(monday),
            first_day: date_value(monday - Duration::days(1)),
            last_day: date_value(monday + Duration::days(6)),
            week_start: datetime_value(start),
            week_end: datetime_value(end),
        }
    }

    /// The parameters of [`FILL_DAYS`].
    fn days(&self) -> Params {
        params! {
            "monday" => self.monday.clone(),
            "first_day" => self.first_day.clone(),
            "last_day" => self.last_day.clone(),
        }
    }

    /// The parameters of [`INTERVALS`] for the users in `(after, upto]`.
    fn page(&self, after: i64, upto: i64) -> Params {
        params! {
            "past" => PAST_CATEGORY,
            "moving" => MOVE_CATEGORY,
            "week_start" => self.week_start.clone(),
            "week_end" => self.week_end.clone(),
            "after" => after,
            "upto" => upto,
        }
    }
}

fn date_value(date: NaiveDate) -> Value {
    datetime_value(date.and_time(chrono::NaiveTime::MIN))
}

fn datetime_value(at: NaiveDateTime) -> Value {
    Value::Date(
        u16::try_from(at.year()).expect("weeks are in years 0 to 9999"),
        at.month() as u8,
        at.day() as u8,
        at.hour() as u8,
        at.minute() as u8,
        at.second() as u8,
        at.nanosecond() / 1_000,
    )
}

/// Rows ordered by user into one entry per user, with times relative to the week's start.
fn group_by_user(rows: Vec<(i64, String, i64, i64, i64)>, week_epoch: i64) -> Vec<UserIntervals> {
    let mut users: Vec<UserIntervals> = Vec::new();
    for (user_id, category, day, start, end) in rows {
        let interval = RawInterval {
            category,
            day: i32::try_from(day).unwrap_or(i32::MIN),
            start: start - week_epoch,
            end: end - week_epoch,
        };
        match users.last_mut() {
            Some(last) if last.user_id == user_id => last.intervals.push(interval),
            _ => users.push(UserIntervals { user_id, intervals: vec![interval] }),
        }
    }
    users
}

/// One badge winner with a usable-looking token, for `--notify`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WinnerRow {
    pub user_id: i64,
    /// Their badges' codes, comma-joined in code order.
    pub codes: String,
    /// The badges' display names, in the same order.
    pub names: Vec<String>,
    /// `app_user.fcmToken` as stored.
    pub token: String,
}

const WINNERS_SELECT: &str = concat!(
    "\
    SELECT b.user_id, GROUP_CONCAT(b.badge ORDER BY b.badge SEPARATOR ','), \
           GROUP_CONCAT(b.name ORDER BY b.badge SEPARATOR '\u{1f}'), a.fcmToken \
    FROM wolley_push_user_badge b JOIN app_user a ON a.user_id = b.user_id \
    WHERE b.week = ? AND ",
    has_token!("a.fcmToken")
);
const WINNERS_GROUP: &str = "GROUP BY b.user_id, a.fcmToken ORDER BY b.user_id";

impl Database {
    /// The next page of `week`'s badge winners that have a token, after `after_user_id`.
    pub(crate) async fn badge_winner_page(
        &self,
        week: IsoWeek,
        after_user_id: i64,
    ) -> Result<Vec<WinnerRow>, DbError> {
        let sql = format!("{WINNERS_SELECT} AND b.user_id > ? {WINNERS_GROUP} LIMIT ?");
        let params: Vec<Value> = vec![
            week.to_string().into(),
            PLACEHOLDER_TOKEN.into(),
            after_user_id.into(),
            WINNERS_PER_PAGE.into(),
        ];
        self.winners(&sql, params).await
    }

    /// Those of these users who won a badge in `week` and have a token.
    pub(crate) async fn badge_winners_among(
        &self,
        week: IsoWeek,
        user_ids: &[i64],
    ) -> Result<Vec<WinnerRow>, DbError> {
        if user_ids.is_empty() {
            return Ok(Vec::new());
        }
        let marks = vec!["?"; user_ids.len()].join(", ");
        let sql = format!("{WINNERS_SELECT} AND b.user_id IN ({marks}) {WINNERS_GROUP}");
        let mut params: Vec<Value> = vec![week.to_string().into(), PLACEHOLDER_TOKEN.into()];
        params.extend(user_ids.iter().map(|&id| Value::from(id)));
        self.winners(&sql, params).await
    }

    async fn winners(&self, sql: &str, params: Vec<Value>) -> Result<Vec<WinnerRow>, DbError> {
        let mut conn = self.conn().await?;
        let rows: Vec<(i64, String, String, String)> =
            conn.exec(sql, params).await.map_err(|e| self.classify(e, "reading the week's badge winners"))?;
        Ok(rows
            .into_iter()
            .map(|(user_id, codes, names, token)| WinnerRow {
                user_id,
                codes,
                names: names.split(NAME_SEPARATOR).map(str::to_owned).collect(),
                token,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_grouped_per_user_relative_to_the_week() {
        let rows = vec![
            (1, "집".to_owned(), -1, 1000, 1100),
            (1, "이동".to_owned(), 0, 1200, 1300),
            (3, "?".to_owned(), 6, 900, 2000),
        ];
        let users = group_by_user(rows, 1000);
        assert_eq!(users.len(), 2);
        assert_eq!(
            users[0].intervals[1],
            RawInterval { category: "이동".into(), day: 0, start: 200, end: 300 }
        );
        assert_eq!((users[1].user_id, users[1].intervals[0].start), (3, -100));
    }

    #[test]
    fn week_bounds_are_bound_as_naive_datetimes() {
        let bounds = Bounds::of("2026-W48".parse().unwrap());
        let Params::Named(days) = bounds.days() else { unreachable!() };
        assert_eq!(days[b"first_day".as_slice()], Value::Date(2026, 11, 22, 0, 0, 0, 0));
        assert_eq!(days[b"last_day".as_slice()], Value::Date(2026, 11, 29, 0, 0, 0, 0));
        let Params::Named(page) = bounds.page(0, 1) else { unreachable!() };
        assert_eq!(page[b"week_start".as_slice()], Value::Date(2026, 11, 23, 0, 0, 0, 0));
        assert_eq!(page[b"week_end".as_slice()], Value::Date(2026, 11, 30, 0, 0, 0, 0));
    }
}
