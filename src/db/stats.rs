//! Every statement of `stats weekly`: reading a week's intervals page by page of users, writing
//! them as a new *generation* of the week's rows (`wolley_push_weekly_user_gen`,
//! `wolley_push_weekly_stat_gen`, `wolley_push_user_badge_gen`) in one transaction per page, and
//! publishing it by moving the week's row of `wolley_push_weekly_published`, which the views
//! `wolley_push_weekly_user`, `wolley_push_weekly_stat` and `wolley_push_user_badge` (what the
//! backend reads) follow; then, for `--notify`, the week's badge winners with their tokens.
//!
//! Why generations rather than one transaction that deletes and rewrites the week: at a million
//! users that transaction held millions of rows of undo log and became one binlog event the
//! replicas replay for as long (docs/stats.md, "How a week is published").
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

use chrono::{Duration, NaiveDateTime};
use mysql_async::prelude::*;
use mysql_async::{Conn, Params, Transaction, TxOpts, Value};

use super::{
    date_value, datetime_value, has_token, placeholders, values_list, Database, DbError, PLACEHOLDER_TOKEN,
};
use crate::slot::IsoWeek;
use crate::user_week::{RawInterval, UserWeek};
use crate::user_week::{MOVE_CATEGORY, PAST_CATEGORY};

/// Users per page, and per transaction: a page's rows (one per user, one per category, one per
/// badge: about 20,000 at most for people recording all week) are written in one. A page holds
/// their intervals (about 100 each for a user recording all week), so memory stays at a few
/// megabytes whatever the number of users.
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
        dailypath_id BIGINT      NOT NULL PRIMARY KEY, \
        user_id      INT         NOT NULL, \
        day          TINYINT     NOT NULL, \
        past         TINYINT(1)  NOT NULL, \
        last_updated DATETIME(6) NOT NULL, \
        KEY wolley_push_week_day_user (user_id) \
    )";
const FILL_DAYS: &str = "\
    INSERT INTO wolley_push_week_day (dailypath_id, user_id, day, past, last_updated) \
    SELECT dailypath_id, user_id, DATEDIFF(date, :monday), path_type = 'past', last_updated \
    FROM dailypath WHERE date BETWEEN :first_day AND :last_day";
const DROP_DAYS: &str = "DROP TEMPORARY TABLE IF EXISTS wolley_push_week_day";

/// A refresh's users: those whose rows of the week changed since their weekly row was computed.
const CREATE_CHANGED: &str =
    "CREATE TEMPORARY TABLE wolley_push_week_changed (user_id INT NOT NULL PRIMARY KEY)";
const DROP_CHANGED: &str = "DROP TEMPORARY TABLE IF EXISTS wolley_push_week_changed";
/// Users whose day row of the week was updated after their weekly row was computed, and users
/// without a row whose day was updated since the week was last computed (`:since`; a user with
/// days but nothing countable has no row, and is not recomputed by every refresh). Read from the
/// session's table of days: no second pass over the backend's history.
const CHANGED_DAYS: &str = "\
    INSERT IGNORE INTO wolley_push_week_changed (user_id) \
    SELECT w.user_id FROM wolley_push_week_day w \
    LEFT JOIN wolley_push_weekly_user_gen u \
      ON u.week = :week AND u.generation = :generation AND u.user_id = w.user_id \
    WHERE (u.user_id IS NULL AND w.last_updated > :since) \
       OR (u.user_id IS NOT NULL AND (u.computed_at IS NULL OR w.last_updated > u.computed_at))";
/// Users with an interval of the week updated after their weekly row was computed (or, without a
/// row, since the week was). The join order is chosen, not left to MariaDB's estimates, which
/// measured wrong at 100,000 users (BENCHMARKS.md, "Issue 17"): `$first` is
/// `FROM_UPDATED` when the table has an index starting with `last_updated` (a range of the rows
/// written since the week was last computed, each looked up among the week's days by primary key),
/// else `FROM_WEEK` (every interval of the week's days through `daily_path_id`, never the older
/// history, which a scan of the interval table would read).
macro_rules! changed_intervals {
    ($table:literal, $first:ident) => {
        concat!(
            "INSERT IGNORE INTO wolley_push_week_changed (user_id) SELECT DISTINCT STRAIGHT_JOIN w.user_id ",
            changed_intervals!(@ $first, $table),
            " LEFT JOIN wolley_push_weekly_user_gen u \
               ON u.week = :week AND u.generation = :generation AND u.user_id = w.user_id \
             WHERE i.last_updated > :since \
               AND (u.user_id IS NULL OR u.computed_at IS NULL OR i.last_updated > u.computed_at)"
        )
    };
    (@ FROM_UPDATED, $table:literal) => {
        concat!("FROM ", $table, " i JOIN wolley_push_week_day w ON w.dailypath_id = i.daily_path_id")
    };
    (@ FROM_WEEK, $table:literal) => {
        concat!("FROM wolley_push_week_day w JOIN ", $table, " i ON i.daily_path_id = w.dailypath_id")
    };
}
/// [`changed_intervals!`]'s statements: by table, from the updated rows and from the week.
const CHANGED_INTERVAL_ROWS: [(&str, [&str; 2]); 2] = [
    (
        "intervalstay",
        [changed_intervals!("intervalstay", FROM_UPDATED), changed_intervals!("intervalstay", FROM_WEEK)],
    ),
    (
        "intervalmove",
        [changed_intervals!("intervalmove", FROM_UPDATED), changed_intervals!("intervalmove", FROM_WEEK)],
    ),
];
/// The interval tables with an index whose first column is `last_updated`.
const UPDATED_INDEXES: &str = "SELECT DISTINCT TABLE_NAME FROM information_schema.STATISTICS \
     WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ('intervalstay', 'intervalmove') \
       AND COLUMN_NAME = 'last_updated' AND SEQ_IN_INDEX = 1";
/// `--user` is always recomputed, so that it can be shown.
const CHANGED_SHOWN: &str = "INSERT IGNORE INTO wolley_push_week_changed (user_id) VALUES (?)";
const COUNT_CHANGED: &str = "SELECT COUNT(*) FROM wolley_push_week_changed";

/// The last user id of the next page of users with a day in the week.
const PAGE_END: &str = "\
    SELECT user_id FROM wolley_push_week_day WHERE user_id > ? \
    GROUP BY user_id ORDER BY user_id LIMIT 1 OFFSET ?";
/// The last user id of the next page of a refresh's users.
const CHANGED_PAGE_END: &str =
    "SELECT user_id FROM wolley_push_week_changed WHERE user_id > ? ORDER BY user_id LIMIT 1 OFFSET ?";

/// The intervals of a page of users that may touch the week: starting before the week ends
/// and either ending after it starts or starting inside it (so reversed and zero-length rows
/// of the week come along, to be counted as ignored). Times are whole seconds since
/// 1970-01-01 of the naive wall clock: TIMESTAMPDIFF truncates the microseconds.
macro_rules! intervals {
    ($days:literal) => {
        concat!(
            "SELECT w.user_id, IF(w.past, :past, i.category), w.day, \
                    TIMESTAMPDIFF(SECOND, '1970-01-01', i.start_time), TIMESTAMPDIFF(SECOND, '1970-01-01', i.end_time) \
             FROM ",
            $days,
            " JOIN intervalstay i ON i.daily_path_id = w.dailypath_id \
             WHERE w.user_id > :after AND w.user_id <= :upto \
               AND i.start_time < :week_end AND (i.end_time > :week_start OR i.start_time >= :week_start) \
             UNION ALL \
             SELECT w.user_id, IF(w.past, :past, :moving), w.day, \
                    TIMESTAMPDIFF(SECOND, '1970-01-01', m.start_time), TIMESTAMPDIFF(SECOND, '1970-01-01', m.end_time) \
             FROM ",
            $days,
            " JOIN intervalmove m ON m.daily_path_id = w.dailypath_id \
             WHERE w.user_id > :after AND w.user_id <= :upto \
               AND m.start_time < :week_end AND (m.end_time > :week_start OR m.start_time >= :week_start) \
             ORDER BY 1"
        )
    };
}
const INTERVALS: &str = intervals!("wolley_push_week_day w");
/// [`INTERVALS`] of a refresh's users only, read from the page's refreshed users (not the range
/// of user ids they span, a hundred times more users when 1% changed).
const CHANGED_INTERVALS: &str = intervals!(
    "wolley_push_week_changed c STRAIGHT_JOIN wolley_push_week_day w \
       ON w.user_id = c.user_id AND c.user_id > :after AND c.user_id <= :upto"
);

/// A new generation number (never reused, so a crashed run's rows can never be taken for a
/// later run's).
const NEXT_GENERATION: &str = "SELECT NEXTVAL(wolley_push_weekly_generation_seq)";
const REGISTER: &str = "INSERT INTO wolley_push_weekly_generation (week, generation, started_at) \
     VALUES (?, ?, UTC_TIMESTAMP(6))";
/// The named lock a generation's run holds while it writes: a generation whose lock is free and
/// that is not published belongs to a run that died (named locks end with their session, also on
/// `kill -9`). Qualified by the database, as the ledger's are: the server's locks are global.
macro_rules! generation_lock {
    ($generation:literal) => {
        concat!(
            "CONCAT('wolley_push:weekly-generation:', ",
            $generation,
            ", ':', LEFT(SHA1(IFNULL(DATABASE(), '')), 12))"
        )
    };
}
const LOCK_GENERATION: &str = concat!("SELECT GET_LOCK(", generation_lock!("?"), ", 0)");
const UNLOCK_GENERATION: &str = concat!("DO RELEASE_LOCK(", generation_lock!("?"), ")");
/// Counted in each batch's transaction: what a reader of the journal (and the crash test) sees
/// of a run that has not published yet.
const PROGRESS: &str =
    "UPDATE wolley_push_weekly_generation SET batches = batches + 1, users = users + :users \
     WHERE week = :week AND generation = :generation";
/// The publication: readers' views follow `wolley_push_weekly_published`, so this one-row
/// change switches the whole week at once.
const PUBLISH: [&str; 2] = [
    "INSERT INTO wolley_push_weekly_published (week, generation, published_at, computed_at) \
     VALUES (:week, :generation, UTC_TIMESTAMP(6), :computed_at) \
     ON DUPLICATE KEY UPDATE generation = VALUES(generation), published_at = VALUES(published_at), \
       computed_at = VALUES(computed_at)",
    "UPDATE wolley_push_weekly_generation SET published_at = UTC_TIMESTAMP(6) WHERE week = ? AND generation = ?",
];
/// The end of a refresh: the published week now reflects the backend's rows through its start.
const REFRESHED: &str = "UPDATE wolley_push_weekly_published SET computed_at = :computed_at \
     WHERE week = :week AND generation = :generation";
/// The week's published generation and through when it reflects the backend's rows.
const PUBLISHED: &str = "SELECT generation, TIMESTAMPDIFF(MICROSECOND, '1970-01-01', computed_at) \
     FROM wolley_push_weekly_published WHERE week = ?";
/// A refresh rewrites its users' rows in place, a page at a time: their old rows go first.
/// Their badges stay (a recomputation never takes one away), and new ones are added.
/// Driven by the page's refreshed users (`STRAIGHT_JOIN`), each found by primary key: a page's
/// range of user ids spans a hundred times more users than it refreshes when 1% changed.
const DELETE_REFRESHED: [&str; 2] = [
    "DELETE r FROM wolley_push_week_changed c STRAIGHT_JOIN wolley_push_weekly_user_gen r \
       ON r.week = :week AND r.generation = :generation AND r.user_id = c.user_id \
     WHERE c.user_id > :after AND c.user_id <= :upto",
    "DELETE r FROM wolley_push_week_changed c STRAIGHT_JOIN wolley_push_weekly_stat_gen r \
       ON r.week = :week AND r.generation = :generation AND r.user_id = c.user_id \
     WHERE c.user_id > :after AND c.user_id <= :upto",
];
/// The badges a page's users held before this run (in the published generation): a
/// recomputation that no longer earns one keeps it.
const HELD_BADGES: &str = "SELECT user_id, badge, name FROM wolley_push_user_badge_gen \
     WHERE week = :week AND generation = :generation AND user_id > :after AND user_id <= :upto \
     ORDER BY user_id, badge";
const HELD_BADGES_CHANGED: &str = "SELECT b.user_id, b.badge, b.name \
     FROM wolley_push_week_changed c STRAIGHT_JOIN wolley_push_user_badge_gen b \
       ON b.week = :week AND b.generation = :generation AND b.user_id = c.user_id \
     WHERE c.user_id > :after AND c.user_id <= :upto ORDER BY b.user_id, b.badge";
/// Named lock of one week's `stats weekly` runs (aggregation and notification): a refresh
/// rewrites the published rows in place, and the notification marks what it told, so two runs
/// of one week must not interleave. Waits a few seconds: the session of a run just killed can
/// take a moment to end on the server, and its lock with it.
const LOCK_WEEK: &str =
    "SELECT GET_LOCK(CONCAT('wolley_push:stats-week:', ?, ':', LEFT(SHA1(IFNULL(DATABASE(), '')), 12)), 5)";
const UNLOCK_WEEK: &str =
    "DO RELEASE_LOCK(CONCAT('wolley_push:stats-week:', ?, ':', LEFT(SHA1(IFNULL(DATABASE(), '')), 12)))";
/// Generations nobody reads or writes: superseded by a later publication, or left by a run
/// that died before publishing.
const STALE: &str = concat!(
    "SELECT g.week, g.generation FROM wolley_push_weekly_generation g \
     LEFT JOIN wolley_push_weekly_published p ON p.week = g.week AND p.generation = g.generation \
     WHERE p.week IS NULL AND IS_FREE_LOCK(",
    generation_lock!("g.generation"),
    ") = 1"
);
const DELETE_STALE: [&str; 3] = [
    "DELETE FROM wolley_push_weekly_user_gen WHERE week = ? AND generation = ? LIMIT 5000",
    "DELETE FROM wolley_push_weekly_stat_gen WHERE week = ? AND generation = ? LIMIT 5000",
    "DELETE FROM wolley_push_user_badge_gen WHERE week = ? AND generation = ? LIMIT 5000",
];
/// Rows per `DELETE` of a stale generation (see [`DELETE_STALE`]): a bounded transaction each.
const DELETE_ROWS: u64 = 5_000;
const FORGET: &str = "DELETE FROM wolley_push_weekly_generation WHERE week = ? AND generation = ?";

const INSERT_USERS: Insert = Insert {
    head: "INSERT INTO wolley_push_weekly_user_gen \
           (week, generation, user_id, recorded_seconds, untracked_seconds, days_with_data, computed_at) VALUES ",
    width: 7,
};
const INSERT_STATS: Insert = Insert {
    head: "INSERT INTO wolley_push_weekly_stat_gen (week, generation, user_id, category, seconds, share) VALUES ",
    width: 6,
};
/// `IGNORE`: a refresh adds its users' badges beside the ones they already hold.
const INSERT_BADGES: Insert = Insert {
    head: "INSERT IGNORE INTO wolley_push_user_badge_gen (week, generation, user_id, badge, name) VALUES ",
    width: 5,
};

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

/// A badge a user held in the published week before this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeldBadge {
    pub user_id: i64,
    pub code: String,
    pub name: String,
}

/// What a run of `stats weekly` computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Every user with a day in the week, into a new generation published whole at the end.
    Full,
    /// Only the users whose rows of the week were updated after their weekly row was computed
    /// (and those with a day but no row), rewritten in place in the published generation, a
    /// page of users per transaction.
    Refresh {
        /// Through when the published week reflected the backend's rows.
        since: NaiveDateTime,
        /// How many users are recomputed.
        users: u64,
    },
}

/// How to start a week's run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WeekPlan {
    /// Recompute everyone even if the week could be refreshed (`--full`).
    pub full: bool,
    /// What the run's rows record as `computed_at`: the backend's naive clock at the run's start,
    /// less the commit grace (`stats::refresh`).
    pub computed_at: NaiveDateTime,
    /// A user to recompute in a refresh whether or not their rows changed (`--user`).
    pub shown: Option<i64>,
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

    /// Writes every pending row, as few statements as possible.
    async fn flush(&mut self, tx: &mut Transaction<'_>) -> Result<(), mysql_async::Error> {
        let row = format!("({})", placeholders(self.insert.width));
        for chunk in self.values.chunks(self.insert.width * INSERT_ROWS) {
            let sql = format!("{}{}", self.insert.head, values_list(&row, chunk.len() / self.insert.width));
            tx.exec_drop(sql, Params::Positional(chunk.to_vec())).await?;
        }
        self.values.clear();
        Ok(())
    }
}

/// A new generation of the week's rows being written, one transaction per page of users, on a
/// connection of its own that holds the generation's lock. Readers see none of it until
/// [`WeekWriter::publish`]; dropped without it (or killed), the week keeps its published rows
/// and the next run deletes this generation's.
pub(crate) struct WeekWriter {
    db: Database,
    conn: Conn,
    label: String,
    /// The generation written: a new one (full), or the published one (refresh).
    generation: u64,
    /// The published generation before this run, whose badges are kept.
    held_from: Option<u64>,
    scope: Scope,
    computed_at: Value,
    bounds: Bounds,
    week_epoch: i64,
    after: i64,
    /// The last page's users, `(after, upto]`.
    range: (i64, i64),
    done: bool,
    users: Pending,
    stats: Pending,
    badges: Pending,
}

/// The lock of one week's `stats weekly` runs, held on a connection of its own until released
/// (or the process dies: named locks end with their session).
pub(crate) struct WeekLock {
    conn: Conn,
    week: String,
}

impl WeekLock {
    /// Releases the lock (closing the session would too; this says so at once).
    pub(crate) async fn release(mut self) {
        if let Err(error) = self.conn.exec_drop(UNLOCK_WEEK, (&self.week,)).await {
            tracing::debug!("releasing the lock of {}: {error}", self.week);
        }
    }
}

impl Database {
    /// Takes the lock of `week`'s `stats weekly` runs; `None` when another run holds it.
    pub(crate) async fn lock_week(&self, week: IsoWeek) -> Result<Option<WeekLock>, DbError> {
        let mut conn = self.conn().await?;
        let week = week.to_string();
        let got: Option<Option<i64>> = conn
            .exec_first(LOCK_WEEK, (&week,))
            .await
            .map_err(|e| self.classify(e, "taking the lock of the week's stats weekly runs"))?;
        Ok((got.flatten() == Some(1)).then_some(WeekLock { conn, week }))
    }

    /// Starts computing `week`: deletes what dead runs left, copies the week's days into the
    /// session table the pages join, and either registers and locks a new generation (a full
    /// run) or lists the users whose rows changed since the published week was computed (a
    /// refresh). Call under the week's lock ([`Database::lock_week`]).
    pub(crate) async fn begin_week(&self, week: IsoWeek, plan: WeekPlan) -> Result<WeekWriter, DbError> {
        let mut conn = self.conn().await?;
        let label = week.to_string();
        // Every statement reads the backend's rows without locking them, batches included.
        conn.query_drop("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
            .await
            .map_err(|e| self.classify_connecting(e))?;
        self.delete_stale_generations(&mut conn).await?;
        let published = self.published(&mut conn, &label).await?;
        let refresh_since = match published {
            Some((_, Some(since))) if !plan.full => Some(since),
            _ => None,
        };
        let generation = match (refresh_since, published) {
            (Some(_), Some((published, _))) => published,
            _ => self.new_generation(&mut conn, &label).await?,
        };
        let bounds = Bounds::of(week);
        self.copy_days(&mut conn, &bounds).await?;
        let scope = match refresh_since {
            Some(since) => {
                let users = self.find_changed(&mut conn, &label, generation, since, plan.shown).await?;
                Scope::Refresh { since, users }
            }
            None => Scope::Full,
        };
        let (start, _) = week.bounds();
        Ok(WeekWriter {
            db: self.clone(),
            conn,
            label,
            generation,
            held_from: published.map(|(generation, _)| generation),
            scope,
            computed_at: datetime_value(plan.computed_at),
            bounds,
            week_epoch: start.and_utc().timestamp(),
            after: i64::MIN,
            range: (i64::MIN, i64::MIN),
            done: false,
            users: Pending::new(INSERT_USERS),
            stats: Pending::new(INSERT_STATS),
            badges: Pending::new(INSERT_BADGES),
        })
    }

    /// The week's published generation, and through when it reflects the backend's rows (`None`
    /// when no run recorded it).
    async fn published(
        &self,
        conn: &mut Conn,
        label: &str,
    ) -> Result<Option<(u64, Option<NaiveDateTime>)>, DbError> {
        let published: Option<(u64, Option<i64>)> = conn
            .exec_first(PUBLISHED, (label,))
            .await
            .map_err(|e| self.classify(e, "reading the week's published generation"))?;
        Ok(published.map(|(generation, micros)| (generation, micros.and_then(naive_micros))))
    }

    /// Copies the days that may hold the week's intervals into the session's table the pages
    /// join ([`CREATE_DAYS`]).
    async fn copy_days(&self, conn: &mut Conn, bounds: &Bounds) -> Result<(), DbError> {
        let fail = |e| self.classify(e, "finding the week's days");
        conn.query_drop(DROP_DAYS).await.map_err(fail)?;
        conn.query_drop(CREATE_DAYS).await.map_err(fail)?;
        conn.exec_drop(FILL_DAYS, bounds.days()).await.map_err(fail)
    }

    /// Lists a refresh's users in the session table `wolley_push_week_changed`: those with a day
    /// of the week and no row, or with a row of the week (day or interval) updated after their
    /// row was computed; returns how many.
    async fn find_changed(
        &self,
        conn: &mut Conn,
        label: &str,
        generation: u64,
        since: NaiveDateTime,
        shown: Option<i64>,
    ) -> Result<u64, DbError> {
        let fail = |e| self.classify(e, "finding the users whose week changed");
        conn.query_drop(DROP_CHANGED).await.map_err(fail)?;
        conn.query_drop(CREATE_CHANGED).await.map_err(fail)?;
        let params = || {
            params! { "week" => label, "generation" => generation, "since" => datetime_value(since) }
        };
        conn.exec_drop(CHANGED_DAYS, params()).await.map_err(fail)?;
        let indexed: Vec<String> = conn.query(UPDATED_INDEXES).await.map_err(fail)?;
        for (table, [from_updated, from_week]) in CHANGED_INTERVAL_ROWS {
            let indexed = indexed.iter().any(|t| t.eq_ignore_ascii_case(table));
            let statement = if indexed { from_updated } else { from_week };
            conn.exec_drop(statement, params()).await.map_err(fail)?;
        }
        if let Some(user) = shown {
            conn.exec_drop(CHANGED_SHOWN, (user,)).await.map_err(fail)?;
        }
        let count: Option<u64> = conn.query_first(COUNT_CHANGED).await.map_err(fail)?;
        Ok(count.unwrap_or_default())
    }

    /// Registers a generation of `label` and takes its lock, in one transaction: another run's
    /// cleanup sees the row only once the lock is held, so it never takes a live run's rows for
    /// a dead one's.
    async fn new_generation(&self, conn: &mut Conn, label: &str) -> Result<u64, DbError> {
        let fail = |e| self.classify(e, "starting the week's new generation");
        let mut tx = conn.start_transaction(TxOpts::default()).await.map_err(fail)?;
        let generation: Option<u64> = tx.query_first(NEXT_GENERATION).await.map_err(fail)?;
        let generation = generation.unwrap_or_default();
        tx.exec_drop(REGISTER, (label, generation)).await.map_err(fail)?;
        let locked: Option<Option<i64>> =
            tx.exec_first(LOCK_GENERATION, (generation,)).await.map_err(fail)?;
        if locked.flatten() != Some(1) {
            return Err(DbError::Query {
                doing: "starting the week's new generation",
                url: self.url.to_string(),
                reason: format!("GET_LOCK on generation {generation} did not succeed; run again"),
            });
        }
        tx.commit().await.map_err(fail)?;
        Ok(generation)
    }

    /// Deletes the rows of every generation nobody reads or writes, [`DELETE_ROWS`] at a time,
    /// then the generation's entry (last, so that an interrupted cleanup is found again).
    async fn delete_stale_generations(&self, conn: &mut Conn) -> Result<(), DbError> {
        let fail = |e| self.classify(e, "deleting superseded or abandoned generations of weekly rows");
        let stale: Vec<(String, u64)> = conn.query(STALE).await.map_err(fail)?;
        for (week, generation) in stale {
            tracing::debug!(%week, generation, "deleting a stale generation of weekly rows");
            for statement in DELETE_STALE {
                loop {
                    conn.exec_drop(statement, (&week, generation)).await.map_err(fail)?;
                    if conn.affected_rows() < DELETE_ROWS {
                        break;
                    }
                }
            }
            conn.exec_drop(FORGET, (&week, generation)).await.map_err(fail)?;
        }
        Ok(())
    }
}

/// Per minute after `since`, how many users' earliest row of the week (Monday to Sunday, not
/// the Sunday before) has `last_updated` at or after `since`, which is a naive datetime of the
/// backend's clock. Reads the week's days through the session's table (already filled from the
/// one scan of the week) and `dailypath`'s primary key: no other pass over the backend's
/// history, and at most one row per minute comes back, whatever the number of users.
const FIRST_UPLOADS: &str = "\
    SELECT TIMESTAMPDIFF(MINUTE, :since, u.first), COUNT(*) \
    FROM (SELECT MIN(d.last_updated) AS first \
          FROM wolley_push_week_day w JOIN dailypath d ON d.dailypath_id = w.dailypath_id \
          WHERE w.day >= 0 AND d.last_updated >= :since GROUP BY w.user_id) u \
    GROUP BY 1 ORDER BY 1";

/// One page of users: their intervals, and the badges they held before this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WeekPage {
    /// The users of the page with an interval near the week, in `user_id` order.
    pub users: Vec<UserIntervals>,
    /// The badges the page's users (all of its range in a full run, its recomputed users in a
    /// refresh) held in the published week, in `user_id` order.
    pub held: Vec<HeldBadge>,
}

impl WeekWriter {
    /// What this run computes.
    pub(crate) fn scope(&self) -> Scope {
        self.scope
    }

    fn refreshing(&self) -> bool {
        matches!(self.scope, Scope::Refresh { .. })
    }

    /// The next page of users (in `user_id` order) with their intervals; `None` after the last.
    /// Users without any interval near the week are not listed; a page may be empty.
    pub(crate) async fn next_page(&mut self) -> Result<Option<WeekPage>, DbError> {
        if self.done {
            return Ok(None);
        }
        let fail = |db: &Database, e| db.classify(e, "reading the week's intervals");
        let (page_end, intervals, held) = if self.refreshing() {
            (CHANGED_PAGE_END, CHANGED_INTERVALS, HELD_BADGES_CHANGED)
        } else {
            (PAGE_END, INTERVALS, HELD_BADGES)
        };
        let end: Option<i64> = self
            .conn
            .exec_first(page_end, (self.after, USERS_PER_PAGE - 1))
            .await
            .map_err(|e| fail(&self.db, e))?;
        // Fewer than a page of users left: the last page is open-ended.
        let upto = end.unwrap_or(i64::MAX);
        self.done = end.is_none();
        let rows: Vec<(i64, String, i64, i64, i64)> = self
            .conn
            .exec(intervals, self.bounds.page(self.after, upto))
            .await
            .map_err(|e| fail(&self.db, e))?;
        let held = match self.held_from {
            Some(generation) => {
                let rows: Vec<(i64, String, String)> = self
                    .conn
                    .exec(held, self.page_rows(generation, (self.after, upto)))
                    .await
                    .map_err(|e| self.db.classify(e, "reading the badges the week's users held"))?;
                rows.into_iter().map(|(user_id, code, name)| HeldBadge { user_id, code, name }).collect()
            }
            None => Vec::new(),
        };
        let page = WeekPage { users: group_by_user(rows, self.week_epoch), held };
        self.range = (self.after, upto);
        self.after = upto;
        Ok(Some(page))
    }

    /// Writes a page's weeks and badges into the generation in one transaction of its own: a
    /// page of users bounds its undo log and binlog event. A refresh first deletes the page's
    /// recomputed users' rows (not their badges).
    pub(crate) async fn write(&mut self, weeks: &[UserWeek], awards: &[Award<'_>]) -> Result<(), DbError> {
        for week in weeks {
            self.queue_week(week);
        }
        for award in awards {
            self.badges.values.extend([
                self.label.as_str().into(),
                self.generation.into(),
                award.user_id.into(),
                award.code.into(),
                award.name.into(),
            ]);
        }
        let db = self.db.clone();
        let fail = |e| db.classify(e, "writing the week's statistics");
        let refreshed = self.refreshing().then(|| self.page_rows(self.generation, self.range));
        let mut tx = self.conn.start_transaction(TxOpts::default()).await.map_err(fail)?;
        if let Some(refreshed) = refreshed {
            for statement in DELETE_REFRESHED {
                tx.exec_drop(statement, refreshed.clone()).await.map_err(fail)?;
            }
        }
        for pending in [&mut self.users, &mut self.stats, &mut self.badges] {
            pending.flush(&mut tx).await.map_err(fail)?;
        }
        let progress =
            params! { "users" => weeks.len(), "week" => &self.label, "generation" => self.generation };
        tx.exec_drop(PROGRESS, progress).await.map_err(fail)?;
        tx.commit().await.map_err(fail)
    }

    /// The parameters naming the week's rows of `generation` for the users in `(after, upto]`
    /// ([`HELD_BADGES`], [`DELETE_REFRESHED`]).
    fn page_rows(&self, generation: u64, (after, upto): (i64, i64)) -> Params {
        params! { "week" => self.label.as_str(), "generation" => generation, "after" => after, "upto" => upto }
    }

    /// The parameters of [`PUBLISH`]'s first statement and of [`REFRESHED`]: the generation
    /// written and through when it reflects the backend's rows.
    fn computed(&self) -> Params {
        params! {
            "week" => self.label.as_str(),
            "generation" => self.generation,
            "computed_at" => self.computed_at.clone(),
        }
    }

    fn queue_week(&mut self, week: &UserWeek) {
        let label = || Value::from(self.label.as_str());
        self.users.values.extend([
            label(),
            self.generation.into(),
            week.user_id.into(),
            week.recorded.into(),
            week.untracked().into(),
            week.days_with_data.into(),
            self.computed_at.clone(),
        ]);
        for time in &week.categories {
            // Bound as text: DECIMAL(7,6) takes it exactly, where a double could round either way.
            let share = format!("{:.6}", week.share_of(time.seconds));
            self.stats.values.extend([
                label(),
                self.generation.into(),
                week.user_id.into(),
                time.category.as_str().into(),
                time.seconds.into(),
                share.into(),
            ]);
        }
    }

    /// The users who uploaded the week at or after `since` (the backend's naive local clock),
    /// counted per whole minute after `since` of their earliest such `last_updated`: pairs of
    /// (minute, users) in minute order. Call before [`WeekWriter::publish`], which drops the
    /// session's table of days.
    pub(crate) async fn first_uploads(&mut self, since: NaiveDateTime) -> Result<Vec<(i64, u64)>, DbError> {
        let since = datetime_value(since);
        let db = self.db.clone();
        self.conn
            .exec(FIRST_UPLOADS, params! { "since" => since })
            .await
            .map_err(|e| db.classify(e, "reading the week's uploads after path-daily"))
    }

    /// Publishes the generation (one small transaction: readers switch from the old week to
    /// this one at once), releases its lock and deletes the generation it replaced.
    ///
    /// # Errors
    /// As classified. Before the publication commits, readers keep the old week; after, a failed
    /// cleanup only leaves rows for the next run to delete.
    pub(crate) async fn publish(mut self) -> Result<(), DbError> {
        let db = self.db.clone();
        let fail = |e| db.classify(e, "publishing the week's statistics");
        let computed = self.computed();
        self.conn.query_drop(DROP_DAYS).await.map_err(fail)?;
        self.conn.query_drop(DROP_CHANGED).await.map_err(fail)?;
        if self.refreshing() {
            // The rows are in place already; the week now reflects the backend through this run.
            return self.conn.exec_drop(REFRESHED, computed).await.map_err(fail);
        }
        let mut tx = self.conn.start_transaction(TxOpts::default()).await.map_err(fail)?;
        tx.exec_drop(PUBLISH[0], computed).await.map_err(fail)?;
        tx.exec_drop(PUBLISH[1], (&self.label, self.generation)).await.map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        self.conn.exec_drop(UNLOCK_GENERATION, (self.generation,)).await.map_err(fail)?;
        db.delete_stale_generations(&mut self.conn).await
    }
}

/// A naive datetime from microseconds since 1970-01-01 00:00 of its own clock.
fn naive_micros(micros: i64) -> Option<NaiveDateTime> {
    chrono::DateTime::from_timestamp_micros(micros).map(|at| at.naive_utc())
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
/// Only the badges not told yet.
const NOT_TOLD: &str = "AND b.notified_at IS NULL";
/// Whether any winner with a token has a badge not told yet.
const ANY_NOT_TOLD: &str = concat!(
    "SELECT EXISTS (SELECT 1 FROM wolley_push_user_badge b JOIN app_user a ON a.user_id = b.user_id \
     WHERE b.week = ? AND b.notified_at IS NULL AND ",
    has_token!("a.fcmToken"),
    ")"
);
/// The week's notification passes in the journal: the first is named after the week, the next
/// ones `<week>.<n>`.
const NOTIFY_PASSES: &str = "SELECT slot, status FROM wolley_push_run \
     WHERE job = :job AND (slot = :week OR slot LIKE CONCAT(:week, '.%'))";

impl Database {
    /// The next page of `week`'s badge winners that have a token, after `after_user_id`.
    pub(crate) async fn badge_winner_page(
        &self,
        week: IsoWeek,
        again: bool,
        after_user_id: i64,
    ) -> Result<Vec<WinnerRow>, DbError> {
        let told = if again { "" } else { NOT_TOLD };
        let sql = format!("{WINNERS_SELECT} {told} AND b.user_id > ? {WINNERS_GROUP} LIMIT ?");
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
        again: bool,
        user_ids: &[i64],
    ) -> Result<Vec<WinnerRow>, DbError> {
        if user_ids.is_empty() {
            return Ok(Vec::new());
        }
        let told = if again { "" } else { NOT_TOLD };
        let sql = format!(
            "{WINNERS_SELECT} {told} AND b.user_id IN ({}) {WINNERS_GROUP}",
            placeholders(user_ids.len())
        );
        let mut params: Vec<Value> = vec![week.to_string().into(), PLACEHOLDER_TOKEN.into()];
        params.extend(user_ids.iter().map(|&id| Value::from(id)));
        self.winners(&sql, params).await
    }

    /// Whether a winner with a token has a badge of `week` not told yet.
    pub(crate) async fn has_untold_badges(&self, week: IsoWeek) -> Result<bool, DbError> {
        let mut conn = self.conn().await?;
        let any: Option<bool> = conn
            .exec_first(ANY_NOT_TOLD, (week.to_string(), PLACEHOLDER_TOKEN))
            .await
            .map_err(|e| self.classify(e, "reading the week's badges not told yet"))?;
        Ok(any.unwrap_or(false))
    }

    /// The journal's notification passes of `week` for `job`: (slot, status) pairs.
    pub(crate) async fn notify_passes(
        &self,
        job: &str,
        week: IsoWeek,
    ) -> Result<Vec<(String, String)>, DbError> {
        let mut conn = self.conn().await?;
        conn.exec(NOTIFY_PASSES, params! { "job" => job, "week" => week.to_string() })
            .await
            .map_err(|e| self.classify(e, "reading the week's notification runs"))
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
