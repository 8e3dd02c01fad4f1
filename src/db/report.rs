//! Every statement of `report week`, all reads: the journal rows of the week's slots, and the
//! week's `gpslog` points, streamed page by page of users.
//!
//! The points are reached through `dailypath` (the point's user): its `date` has no index and
//! the backend's tables are not ours to index, so one scan copies the days near the week into a
//! session temporary table of our own, indexed by user (as `stats weekly` does); each page of
//! users then joins it to `gpslog` through the `daily_path_id` index. Nothing is written to
//! the database: a temporary table belongs to the session and vanishes with it (it also works on
//! a read-only replica).
//!
//! Why pages of users and not one stream `ORDER BY timestamp`: the report keeps a few hundred
//! bits per user of a page and counts the page's users into per-slot totals, so memory follows
//! one page whatever the week holds, and the server never sorts ten million rows (`gpslog` has
//! no index on `timestamp`: ordering by it is a filesort of the whole week).

use chrono::{NaiveDate, NaiveDateTime};
use mysql_async::prelude::*;
use mysql_async::{Conn, Value};

use super::{date_value, datetime_value, placeholders, Database, DbError, NamedRow};
use crate::shard::Shard;

/// Users per page: their points (about 100 each for a user recording all week) stream through
/// the report's per-user marks, which are cleared at the end of each page.
const USERS_PER_PAGE: u64 = 1_000;

const CREATE_DAYS: &str = "\
    CREATE TEMPORARY TABLE wolley_push_report_day ( \
        dailypath_id BIGINT NOT NULL PRIMARY KEY, \
        user_id      INT    NOT NULL, \
        KEY wolley_push_report_day_user (user_id) \
    )";
const FILL_DAYS: &str = "\
    INSERT INTO wolley_push_report_day (dailypath_id, user_id) \
    SELECT dailypath_id, user_id FROM dailypath WHERE date BETWEEN ? AND ?";
const DROP_DAYS: &str = "DROP TEMPORARY TABLE IF EXISTS wolley_push_report_day";

/// The last user id of the next page of users with a day near the week.
const PAGE_END: &str = "\
    SELECT user_id FROM wolley_push_report_day WHERE user_id > ? \
    GROUP BY user_id ORDER BY user_id LIMIT 1 OFFSET ?";

/// A page's points in `[from, to)`, as microseconds since 1970-01-01 of the naive wall clock
/// (the backend's datetimes are naive local times).
const POINTS: &str = "\
    SELECT d.user_id, TIMESTAMPDIFF(MICROSECOND, '1970-01-01', g.timestamp) \
    FROM wolley_push_report_day d JOIN gpslog g ON g.daily_path_id = d.dailypath_id \
    WHERE d.user_id > :after AND d.user_id <= :upto AND g.timestamp >= :from AND g.timestamp < :to";

/// As `stats weekly`'s: per minute after `since`, how many users' earliest row dated in the week
/// (`monday` to `sunday`) has `last_updated` at or after `since`; the days near the week are
/// already in the session's table, and `dailypath` is reached by its primary key.
const FIRST_UPLOADS: &str = "\
    SELECT TIMESTAMPDIFF(MINUTE, :since, u.first), COUNT(*) \
    FROM (SELECT MIN(d.last_updated) AS first \
          FROM wolley_push_report_day r JOIN dailypath d ON d.dailypath_id = r.dailypath_id \
          WHERE d.date BETWEEN :monday AND :sunday AND d.last_updated >= :since GROUP BY r.user_id) u \
    GROUP BY 1 ORDER BY 1";

/// One journal row of a slot the report looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JournalRow {
    /// The slot's label as the job wrote it.
    pub slot: String,
    /// The shard of the slot's run this row is.
    pub shard: Shard,
    /// `running`, `done`, `partial` or `failed`.
    pub status: String,
    pub targeted: u64,
    pub sent: u64,
    pub pruned: u64,
    pub failed: u64,
    pub expired: u64,
    /// When the row's last attempt started: microseconds since 1970 in UTC.
    pub started_at_utc_micros: i64,
}

const JOURNAL: &str = "\
    SELECT slot, shard, status, targeted, sent, pruned, failed, expired, \
           TIMESTAMPDIFF(MICROSECOND, '1970-01-01', started_at) AS started_at_utc_micros \
    FROM wolley_push_run WHERE job = ? AND slot IN ";

/// A slot's run as the journal sums it over its shards: when its sending first started and how
/// many messages FCM accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RunStart {
    /// The earliest shard's first start (`first_started_at`, else `started_at`): microseconds
    /// since 1970 in UTC.
    pub first_started_utc_micros: i64,
    /// `sent` summed over the shards.
    pub sent: u64,
}

/// One row whatever the journal holds: `COUNT(*)` is 0 when the slot never ran.
const RUN_START: &str = "\
    SELECT COUNT(*), \
           MIN(TIMESTAMPDIFF(MICROSECOND, '1970-01-01', COALESCE(first_started_at, started_at))), \
           CAST(COALESCE(SUM(sent), 0) AS UNSIGNED) \
    FROM wolley_push_run WHERE job = ? AND slot = ?";

impl Database {
    /// The journal rows of `job` for these slot labels (every shard's).
    ///
    /// # Errors
    /// When the database fails or the journal is missing (run `migrate`).
    pub(crate) async fn journal_rows(&self, job: &str, slots: &[String]) -> Result<Vec<JournalRow>, DbError> {
        if slots.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!("{JOURNAL}({}) ORDER BY slot, shard", placeholders(slots.len()));
        let mut params: Vec<Value> = vec![job.into()];
        params.extend(slots.iter().map(|slot| Value::from(slot.as_str())));
        let mut conn = self.conn().await?;
        let rows: Vec<mysql_async::Row> =
            conn.exec(sql, params).await.map_err(|e| self.classify(e, "reading the run journal"))?;
        rows.into_iter().map(journal_row).collect()
    }

    /// When `job`'s run of `slot` first started and how many it reached, over all its shards;
    /// `None` when the journal has no row for the slot.
    ///
    /// # Errors
    /// When the database fails or the journal is missing (run `migrate`).
    pub(crate) async fn run_start(&self, job: &str, slot: &str) -> Result<Option<RunStart>, DbError> {
        let mut conn = self.conn().await?;
        let row: Option<(u64, Option<i64>, u64)> = conn
            .exec_first(RUN_START, (job, slot))
            .await
            .map_err(|e| self.classify(e, "reading the run journal"))?;
        Ok(match row {
            Some((shards, Some(first_started_utc_micros), sent)) if shards > 0 => {
                Some(RunStart { first_started_utc_micros, sent })
            }
            _ => None,
        })
    }

    /// Opens the week's points: the days dated `first_day` to `last_day` are copied into the
    /// session's table, and [`PointPages::next_page`] streams the points in `[from, to)`.
    ///
    /// # Errors
    /// When the database fails, or its user may not create temporary tables.
    pub(crate) async fn week_points(
        &self,
        (first_day, last_day): (NaiveDate, NaiveDate),
        (from, to): (NaiveDateTime, NaiveDateTime),
    ) -> Result<PointPages, DbError> {
        let mut conn = self.conn().await?;
        let fail = |e| self.classify(e, "finding the week's days in dailypath");
        // Reads the backend's rows without locking them, as `stats weekly` does.
        conn.query_drop("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED").await.map_err(fail)?;
        conn.query_drop(DROP_DAYS).await.map_err(fail)?;
        conn.query_drop(CREATE_DAYS).await.map_err(fail)?;
        conn.exec_drop(FILL_DAYS, (date_value(first_day), date_value(last_day))).await.map_err(fail)?;
        Ok(PointPages { db: self.clone(), conn, after: i64::MIN, done: false, from, to })
    }
}

/// Decodes a [`JOURNAL`] row by column name.
///
/// # Errors
/// [`DbError::MalformedRow`] when a stored value cannot be what its column holds, e.g. a shard
/// that is not `K/N`.
fn journal_row(row: mysql_async::Row) -> Result<JournalRow, DbError> {
    let mut row = NamedRow::new(row, "wolley_push_run");
    Ok(JournalRow {
        slot: row.get("slot")?,
        shard: row.parse("shard", "shard", "a shard, K/N")?,
        status: row.get("status")?,
        targeted: row.get("targeted")?,
        sent: row.get("sent")?,
        pruned: row.get("pruned")?,
        failed: row.get("failed")?,
        expired: row.get("expired")?,
        started_at_utc_micros: row.get("started_at_utc_micros")?,
    })
}

/// The week's points, a page of users at a time, on the connection that holds the session's
/// table of days.
pub(crate) struct PointPages {
    db: Database,
    conn: Conn,
    after: i64,
    done: bool,
    from: NaiveDateTime,
    to: NaiveDateTime,
}

impl PointPages {
    /// Streams the next page's points into `point(user_id, micros)`, in no particular order;
    /// `false` once every page was read.
    ///
    /// # Errors
    /// When the database fails.
    pub(crate) async fn next_page(&mut self, point: &mut impl FnMut(i64, i64)) -> Result<bool, DbError> {
        if self.done {
            return Ok(false);
        }
        let fail = |db: &Database, e| db.classify(e, "reading the week's gpslog points");
        let end: Option<i64> = self
            .conn
            .exec_first(PAGE_END, (self.after, USERS_PER_PAGE - 1))
            .await
            .map_err(|e| fail(&self.db, e))?;
        // Fewer than a page of users left: the last page is open-ended.
        let upto = end.unwrap_or(i64::from(i32::MAX));
        self.done = end.is_none();
        let params = params! {
            "after" => self.after,
            "upto" => upto,
            "from" => datetime_value(self.from),
            "to" => datetime_value(self.to),
        };
        let mut rows = self.conn.exec_iter(POINTS, params).await.map_err(|e| fail(&self.db, e))?;
        rows.for_each(|row| {
            let (user, micros): (i64, i64) = mysql_async::from_row(row);
            point(user, micros);
        })
        .await
        .map_err(|e| fail(&self.db, e))?;
        self.after = upto;
        Ok(true)
    }

    /// Per whole minute after `since` (the backend's naive clock), the users whose earliest
    /// row dated `monday` to `sunday` was updated then; pairs (minute, users) in minute order.
    /// The session's table must hold those days (the report's days are a superset of the week).
    ///
    /// # Errors
    /// When the database fails.
    pub(crate) async fn first_uploads(
        &mut self,
        (monday, sunday): (NaiveDate, NaiveDate),
        since: NaiveDateTime,
    ) -> Result<Vec<(i64, u64)>, DbError> {
        let params = params! {
            "since" => datetime_value(since),
            "monday" => date_value(monday),
            "sunday" => date_value(sunday),
        };
        self.conn
            .exec(FIRST_UPLOADS, params)
            .await
            .map_err(|e| self.db.classify(e, "reading the week's uploads after path-daily"))
    }

    /// Drops the session's table and returns the connection.
    pub(crate) async fn close(mut self) {
        let _ = self.conn.query_drop(DROP_DAYS).await;
    }
}
