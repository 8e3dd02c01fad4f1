//! The tables wolley-push owns (prefix `wolley_push_`), created and upgraded by `migrate`.
//! Never touches the backend's tables. Every statement is idempotent, so a migration that was
//! interrupted (MariaDB commits DDL at once) is finished by running `migrate` again.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use mysql_async::prelude::*;
use mysql_async::Conn;

use super::{qualified_lock_name, Database, DbError};
use crate::advice::Advice;

/// Version 5's move of a weekly table to `<table>_gen` with a `generation` column in its key
/// (`key` = the columns after week and generation). The rename and the rebuild are separate DDL
/// statements, each done only when not done yet.
macro_rules! generations {
    ($table:literal, $key:literal) => {
        concat!(
            "BEGIN NOT ATOMIC \
               IF EXISTS (SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() \
                          AND TABLE_NAME = '",
            $table,
            "' AND TABLE_TYPE = 'BASE TABLE') THEN \
                 RENAME TABLE ",
            $table,
            " TO ",
            $table,
            "_gen; \
               END IF; \
               IF NOT EXISTS (SELECT 1 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() \
                              AND TABLE_NAME = '",
            $table,
            "_gen' AND COLUMN_NAME = 'generation') THEN \
                 ALTER TABLE ",
            $table,
            "_gen \
                   ADD COLUMN generation BIGINT UNSIGNED NOT NULL DEFAULT 0 AFTER week, \
                   DROP PRIMARY KEY, ADD PRIMARY KEY (week, generation, ",
            $key,
            "); \
               END IF; \
             END"
        )
    };
}

/// Version 5's view with a weekly table's old name and columns, showing each week's published
/// generation only. MERGE keeps the readers' `WHERE` on the indexes; INVOKER checks the
/// reader's own grants (a database-wide SELECT covers the `_gen` and `published` tables).
macro_rules! published_view {
    ($table:literal, $columns:literal) => {
        concat!(
            "CREATE OR REPLACE ALGORITHM = MERGE SQL SECURITY INVOKER VIEW ",
            $table,
            " AS \
             SELECT r.week, r.user_id, r.",
            $columns,
            " \
             FROM ",
            $table,
            "_gen r JOIN wolley_push_weekly_published p \
               ON p.week = r.week AND p.generation = r.generation"
        )
    };
}

/// One step of the schema's history.
pub(crate) struct Migration {
    /// The version the schema has once this step ran.
    pub version: u32,
    /// What the step does, for the `migrate` output.
    pub description: &'static str,
    /// Idempotent statements, run in order.
    pub statements: &'static [&'static str],
}

/// Every migration, oldest first. Append only: never edit one that has shipped.
pub(crate) const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    description: "run journal (wolley_push_run)",
    statements: &["CREATE TABLE IF NOT EXISTS wolley_push_run (
        job                VARCHAR(32)     NOT NULL,
        slot               VARCHAR(40)     NOT NULL,
        shard              VARCHAR(16)     NOT NULL,
        status             VARCHAR(16)     NOT NULL,
        checkpoint_user_id BIGINT          NOT NULL DEFAULT 0,
        targeted           BIGINT UNSIGNED NOT NULL DEFAULT 0,
        sent               BIGINT UNSIGNED NOT NULL DEFAULT 0,
        pruned             BIGINT UNSIGNED NOT NULL DEFAULT 0,
        failed             BIGINT UNSIGNED NOT NULL DEFAULT 0,
        skipped            BIGINT UNSIGNED NOT NULL DEFAULT 0,
        expired            BIGINT UNSIGNED NOT NULL DEFAULT 0,
        attempts           INT UNSIGNED    NOT NULL DEFAULT 1,
        host               VARCHAR(255)    NOT NULL,
        pid                INT UNSIGNED    NOT NULL,
        started_at         DATETIME(6)     NOT NULL,
        updated_at         DATETIME(6)     NOT NULL,
        finished_at        DATETIME(6)     NULL,
        error              TEXT            NULL,
        PRIMARY KEY (job, slot, shard)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"],
}, Migration {
    version: 2,
    description: "weekly statistics and badges (wolley_push_weekly_user, wolley_push_weekly_stat, wolley_push_user_badge)",
    statements: &[
        "CREATE TABLE IF NOT EXISTS wolley_push_weekly_user (
            week              CHAR(8) CHARACTER SET ascii NOT NULL,
            user_id           INT               NOT NULL,
            recorded_seconds  INT UNSIGNED      NOT NULL,
            untracked_seconds INT UNSIGNED      NOT NULL,
            days_with_data    TINYINT UNSIGNED  NOT NULL,
            PRIMARY KEY (week, user_id),
            KEY wolley_push_weekly_user_user (user_id, week)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        "CREATE TABLE IF NOT EXISTS wolley_push_weekly_stat (
            week     CHAR(8) CHARACTER SET ascii                             NOT NULL,
            user_id  INT                                                     NOT NULL,
            category VARCHAR(70) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
            seconds  INT UNSIGNED                                            NOT NULL,
            share    DECIMAL(7,6)                                            NOT NULL,
            PRIMARY KEY (week, user_id, category),
            KEY wolley_push_weekly_stat_user (user_id, week)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        "CREATE TABLE IF NOT EXISTS wolley_push_user_badge (
            week    CHAR(8) CHARACTER SET ascii     NOT NULL,
            user_id INT                             NOT NULL,
            badge   VARCHAR(32) CHARACTER SET ascii NOT NULL,
            name    VARCHAR(100)                    NOT NULL,
            PRIMARY KEY (week, user_id, badge),
            KEY wolley_push_user_badge_user (user_id, week)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    ],
}, Migration {
    version: 3,
    description: "delivery ledger: lease and retry set (wolley_push_run, wolley_push_retry), prune log (wolley_push_prune_log)",
    statements: &[
        // owner: the run that holds the slot (a random id per process); heartbeat_at: when it
        // last wrote, in the server's clock; retrying: the size of the slot's retry set (its
        // rows and the in-flight list); in_flight: users at or below the checkpoint whose
        // message was in flight at the last write, delta-encoded (`db::ledger`).
        "ALTER TABLE wolley_push_run \
            ADD COLUMN IF NOT EXISTS owner        CHAR(32)        NULL, \
            ADD COLUMN IF NOT EXISTS heartbeat_at DATETIME(6)     NULL, \
            ADD COLUMN IF NOT EXISTS retrying     BIGINT UNSIGNED NOT NULL DEFAULT 0, \
            ADD COLUMN IF NOT EXISTS in_flight    MEDIUMTEXT      NULL",
        "CREATE TABLE IF NOT EXISTS wolley_push_retry (
            job        VARCHAR(32)  NOT NULL,
            slot       VARCHAR(40)  NOT NULL,
            shard      VARCHAR(16)  NOT NULL,
            user_id    BIGINT       NOT NULL,
            state      VARCHAR(16)  NOT NULL,
            reason     VARCHAR(255) NOT NULL,
            updated_at DATETIME(6)  NOT NULL,
            PRIMARY KEY (job, slot, shard, user_id)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        "CREATE TABLE IF NOT EXISTS wolley_push_prune_log (
            id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
            job         VARCHAR(32)     NOT NULL,
            slot        VARCHAR(40)     NOT NULL,
            shard       VARCHAR(16)     NOT NULL,
            user_id     BIGINT          NOT NULL,
            token       VARBINARY(4096) NOT NULL,
            reason      VARCHAR(32)     NOT NULL,
            state       VARCHAR(16)     NOT NULL,
            recorded_at DATETIME(6)     NOT NULL,
            applied_at  DATETIME(6)     NULL,
            restored_at DATETIME(6)     NULL,
            UNIQUE KEY wolley_push_prune_log_run_user (job, slot, shard, user_id),
            KEY wolley_push_prune_log_recorded (recorded_at)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    ],
}, Migration {
    version: 4,
    description: "run lock takeover: the server connection that holds each running slot's lock (wolley_push_run.lock_conn)",
    statements: &[
        // lock_conn: CONNECTION_ID() of the session holding the run's GET_LOCK, so a run that
        // finds the lock held can tell whose it is (IS_USED_LOCK) and end it if that run is dead.
        "ALTER TABLE wolley_push_run ADD COLUMN IF NOT EXISTS lock_conn BIGINT UNSIGNED NULL",
    ],
}, Migration {
    version: 5,
    description: "weeks published whole (wolley_push_weekly_*_gen tables, wolley_push_weekly_generation, \
                  wolley_push_weekly_published; the three weekly tables become views of the published \
                  generation), prune log index for pending pages",
    statements: V5_STATEMENTS,
}, Migration {
    version: 6,
    description: "the start of each slot's first run (wolley_push_run.first_started_at): the window \
                  path-daily --spread counts from, and the push stats weekly's upload coverage counts from",
    statements: &[
        // started_at is each attempt's start; a resumed slot needs its first run's.
        "ALTER TABLE wolley_push_run ADD COLUMN IF NOT EXISTS first_started_at DATETIME(6) NULL AFTER started_at",
        "UPDATE wolley_push_run SET first_started_at = started_at WHERE first_started_at IS NULL",
    ],
}, Migration {
    version: 7,
    description: "refresh for late uploads and badges notified once: when each user's weekly row was \
                  computed (wolley_push_weekly_user.computed_at, wolley_push_weekly_published.computed_at), \
                  when each badge was notified (wolley_push_badge_notice, wolley_push_user_badge.notified_at)",
    statements: V7_STATEMENTS,
}];

/// Version 7. `computed_at` is the backend's naive wall clock (`--timezone`, like its
/// `last_updated`), so a refresh compares the two directly: a user is recomputed when a row of
/// their week was updated after their row was computed. Rows written before this version have
/// none, and their week is recomputed whole by its next run. The notices live in a table of their
/// own, keyed by (week, user, badge) and not by generation, so no recomputation can forget them.
const V7_STATEMENTS: &[&str] = &[
    "ALTER TABLE wolley_push_weekly_user_gen ADD COLUMN IF NOT EXISTS computed_at DATETIME(6) NULL",
    // The instant through which the published week reflects the backend's rows (the start of the
    // last run that completed, less the commit grace): the next refresh looks at rows updated after it.
    "ALTER TABLE wolley_push_weekly_published ADD COLUMN IF NOT EXISTS computed_at DATETIME(6) NULL",
    "CREATE TABLE IF NOT EXISTS wolley_push_badge_notice (
        week        CHAR(8) CHARACTER SET ascii     NOT NULL,
        user_id     INT                             NOT NULL,
        badge       VARCHAR(32) CHARACTER SET ascii NOT NULL,
        notified_at DATETIME(6)                     NOT NULL,
        slot        VARCHAR(40)                     NOT NULL,
        PRIMARY KEY (week, user_id, badge)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    "CREATE OR REPLACE ALGORITHM = MERGE SQL SECURITY INVOKER VIEW wolley_push_weekly_user AS \
     SELECT r.week, r.user_id, r.recorded_seconds, r.untracked_seconds, r.days_with_data, r.computed_at \
     FROM wolley_push_weekly_user_gen r JOIN wolley_push_weekly_published p \
       ON p.week = r.week AND p.generation = r.generation",
    "CREATE OR REPLACE ALGORITHM = MERGE SQL SECURITY INVOKER VIEW wolley_push_user_badge AS \
     SELECT r.week, r.user_id, r.badge, r.name, n.notified_at \
     FROM wolley_push_user_badge_gen r JOIN wolley_push_weekly_published p \
       ON p.week = r.week AND p.generation = r.generation \
     LEFT JOIN wolley_push_badge_notice n \
       ON n.week = r.week AND n.user_id = r.user_id AND n.badge = r.badge",
    // Weeks whose notification run finished before this version told all their winners then.
    "INSERT IGNORE INTO wolley_push_badge_notice (week, user_id, badge, notified_at, slot) \
     SELECT b.week, b.user_id, b.badge, COALESCE(j.finished_at, j.updated_at), j.slot \
     FROM wolley_push_user_badge_gen b \
     JOIN wolley_push_weekly_published p ON p.week = b.week AND p.generation = b.generation \
     JOIN wolley_push_run j ON j.job = 'stats-notify' AND j.slot = b.week AND j.status = 'done'",
];

/// Version 5. `stats weekly` writes a week into a new *generation* of rows in bounded
/// transactions and then publishes it by moving one pointer row (docs/stats.md, "How a week is
/// published"). The three tables the backend reads keep their names and columns: they become
/// views that show each week's published generation only. The tables' rows stay where they are
/// (renamed to `*_gen`, given `generation = 0`) and are published as generation 0, so nothing is
/// copied. Each compound statement checks the state it changes, so a rerun after an interrupted
/// `migrate` finishes the job without repeating a step.
const V5_STATEMENTS: &[&str] = &[
    "CREATE SEQUENCE IF NOT EXISTS wolley_push_weekly_generation_seq START WITH 1",
    // One row per generation that may have rows: the run that writes it, or a published week.
    "CREATE TABLE IF NOT EXISTS wolley_push_weekly_generation (
        week         CHAR(8) CHARACTER SET ascii NOT NULL,
        generation   BIGINT UNSIGNED NOT NULL,
        started_at   DATETIME(6)     NOT NULL,
        batches      INT UNSIGNED    NOT NULL DEFAULT 0,
        users        BIGINT UNSIGNED NOT NULL DEFAULT 0,
        published_at DATETIME(6)     NULL,
        PRIMARY KEY (week, generation)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    // The generation readers see, per week: the only row a publication changes.
    "CREATE TABLE IF NOT EXISTS wolley_push_weekly_published (
        week         CHAR(8) CHARACTER SET ascii NOT NULL PRIMARY KEY,
        generation   BIGINT UNSIGNED NOT NULL,
        published_at DATETIME(6)     NOT NULL
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    generations!("wolley_push_weekly_user", "user_id"),
    generations!("wolley_push_weekly_stat", "user_id, category"),
    generations!("wolley_push_user_badge", "user_id, badge"),
    published_view!("wolley_push_weekly_user", "recorded_seconds, r.untracked_seconds, r.days_with_data"),
    published_view!("wolley_push_weekly_stat", "category, r.seconds, r.share"),
    published_view!("wolley_push_user_badge", "badge, r.name"),
    // What earlier versions wrote is generation 0 of its week, published as it was.
    "INSERT IGNORE INTO wolley_push_weekly_generation (week, generation, started_at, published_at) \
     SELECT week, 0, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6) FROM ( \
        SELECT week FROM wolley_push_weekly_user_gen WHERE generation = 0 \
        UNION SELECT week FROM wolley_push_weekly_stat_gen WHERE generation = 0 \
        UNION SELECT week FROM wolley_push_user_badge_gen WHERE generation = 0) legacy",
    "INSERT IGNORE INTO wolley_push_weekly_published (week, generation, published_at) \
     SELECT week, 0, UTC_TIMESTAMP(6) FROM wolley_push_weekly_generation WHERE generation = 0",
    // The pending pages (`db::prune_log`) read one slot's pending rows in id order: a range of
    // this index, where the primary key alone walked every other slot's newer rows too.
    "ALTER TABLE wolley_push_prune_log \
        ADD KEY IF NOT EXISTS wolley_push_prune_log_pending (job, slot, shard, state, id)",
];

/// The version this build of wolley-push needs.
pub(crate) fn required_version() -> u32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

const CREATE_VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS wolley_push_schema (
    id         TINYINT     NOT NULL PRIMARY KEY,
    version    INT         NOT NULL,
    updated_at DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";
const READ_VERSION: &str = "SELECT version FROM wolley_push_schema WHERE id = 1";
/// Records `version`, never a lower one than recorded: a migrate that does not hold this
/// build's lock (an older build named its lock for the whole server) cannot move it back.
const WRITE_VERSION: &str = "INSERT INTO wolley_push_schema (id, version, updated_at) VALUES (1, ?, NOW(6)) \
     ON DUPLICATE KEY UPDATE updated_at = IF(VALUES(version) > version, VALUES(updated_at), updated_at), \
     version = GREATEST(version, VALUES(version))";
/// Serialises `migrate` runs on one database (qualified by the database's name).
const MIGRATE_LOCK: &str = "migrate";
/// How long `migrate` waits for another one on the same database: a migration takes seconds,
/// so a lock held longer belongs to a migrate that is stuck itself.
const MIGRATE_LOCK_WAIT: Duration = Duration::from_secs(10);
/// How long one of `migrate`'s statements waits for a metadata or row lock. MariaDB's default
/// `lock_wait_timeout` is a day, and while a DDL waits for its metadata lock every later
/// statement on the table (the jobs' journal writes) queues behind it, without a word.
const STATEMENT_LOCK_WAIT: Duration = Duration::from_secs(10);
/// The sessions that may hold the lock a migration waited for: those with an open transaction
/// (in this database or none) or running a statement in this database. Only the first word of
/// a statement is read: its text can carry data (a device token, a password).
const BLOCKERS: &str = "SELECT p.ID, p.USER, IFNULL(p.HOST, ''), p.COMMAND, p.TIME, \
        LEFT(SUBSTRING_INDEX(TRIM(IFNULL(p.INFO, '')), ' ', 1), 20), \
        TIMESTAMPDIFF(SECOND, t.trx_started, NOW()) \
     FROM information_schema.PROCESSLIST p \
     LEFT JOIN information_schema.INNODB_TRX t ON t.trx_mysql_thread_id = p.ID \
     WHERE p.ID <> CONNECTION_ID() \
       AND ((t.trx_mysql_thread_id IS NOT NULL AND (p.DB = DATABASE() OR p.DB IS NULL)) \
         OR (p.DB = DATABASE() AND p.COMMAND <> 'Sleep')) \
     ORDER BY t.trx_started IS NULL, t.trx_started, p.TIME DESC \
     LIMIT 5";

/// The schema is older than this build.
#[derive(Debug, thiserror::Error)]
#[error("{}; {}", self.what(), self.fix())]
pub struct SchemaBehind {
    /// The masked database URL.
    pub url: String,
    /// The version found (0 = none).
    pub found: u32,
    /// The version needed.
    pub required: u32,
}

impl Advice for SchemaBehind {
    fn what(&self) -> String {
        format!(
            "wolley-push's tables in {} are at schema version {}, this build needs {}",
            self.url, self.found, self.required
        )
    }

    fn fix(&self) -> Cow<'static, str> {
        "run `wolley-push migrate` first (it creates or upgrades only the wolley_push_* tables)".into()
    }
}

/// The schema is newer than this build: a newer wolley-push migrated it, and this one does not
/// know what its tables now mean (a job could write rows the newer build misreads).
#[derive(Debug, thiserror::Error)]
#[error("{}; {}", self.what(), self.fix())]
pub struct SchemaAhead {
    /// The masked database URL.
    pub url: String,
    /// The version found.
    pub found: u32,
    /// The newest version this build knows.
    pub known: u32,
}

impl Advice for SchemaAhead {
    fn what(&self) -> String {
        format!(
            "wolley-push's tables in {} were migrated by a newer wolley-push: version {}; this build knows {}",
            self.url, self.found, self.known
        )
    }

    fn fix(&self) -> Cow<'static, str> {
        "install the newer build (or restore the matching one)".into()
    }
}

impl Database {
    /// The schema version recorded in the database (0 when never migrated).
    pub(crate) async fn schema_version(&self) -> Result<u32, DbError> {
        let mut conn = self.conn().await?;
        match conn.query_first::<u32, _>(READ_VERSION).await {
            Ok(version) => Ok(version.unwrap_or(0)),
            Err(mysql_async::Error::Server(e)) if e.code == super::code::NO_SUCH_TABLE => Ok(0),
            Err(e) => Err(self.classify(e, "reading the schema version")),
        }
    }

    /// Fails with [`SchemaBehind`] unless `migrate` has brought the schema up to date, and with
    /// [`SchemaAhead`] when a newer wolley-push has migrated it further.
    ///
    /// # Errors
    /// [`DbError::SchemaBehind`], [`DbError::SchemaAhead`] or database errors.
    pub(crate) async fn check_schema(&self) -> Result<(), DbError> {
        let found = self.schema_version().await?;
        let required = required_version();
        if found < required {
            return Err(DbError::SchemaBehind(SchemaBehind { url: self.url.to_string(), found, required }));
        }
        self.refuse_newer(found)
    }

    /// [`SchemaAhead`] when `found` is newer than this build knows.
    fn refuse_newer(&self, found: u32) -> Result<(), DbError> {
        let known = required_version();
        if found > known {
            return Err(DbError::SchemaAhead(SchemaAhead { url: self.url.to_string(), found, known }));
        }
        Ok(())
    }

    /// Applies every migration newer than the database's version; returns those applied. One
    /// migrate per database at a time (a second waits [`MIGRATE_LOCK_WAIT`]), and no statement
    /// waits longer than [`STATEMENT_LOCK_WAIT`] for another session's lock.
    ///
    /// # Errors
    /// [`DbError::MigrateRunning`] when another migrate holds the lock,
    /// [`DbError::MigrateBlocked`] when another session's lock held a statement up,
    /// [`DbError::SchemaAhead`] when a newer wolley-push migrated the database (nothing is
    /// touched); otherwise as classified.
    pub(crate) async fn migrate(&self) -> Result<Vec<&'static Migration>, DbError> {
        let fail = |e| self.classify(e, "taking migrate's lock");
        let mut conn = self.conn().await?;
        let lock = qualified_lock_name(&mut conn, MIGRATE_LOCK).await.map_err(fail)?;
        // 1: taken; 0: still held by another session after the wait; NULL: an error (killed).
        let taken: Option<Option<i64>> = conn
            .exec_first("SELECT GET_LOCK(?, ?)", (&lock, MIGRATE_LOCK_WAIT.as_secs()))
            .await
            .map_err(fail)?;
        if taken.flatten() != Some(1) {
            return Err(DbError::MigrateRunning(MigrateRunning {
                url: self.url.to_string(),
                waited: MIGRATE_LOCK_WAIT,
            }));
        }
        let result = self.migrate_holding_lock(&mut conn).await;
        // Were this to fail, the server frees the lock when the connection closes.
        let released = conn.exec_drop("DO RELEASE_LOCK(?)", (&lock,)).await;
        let applied = result?;
        released.map_err(|e| self.classify(e, "releasing migrate's lock"))?;
        Ok(applied)
    }

    async fn migrate_holding_lock(&self, conn: &mut Conn) -> Result<Vec<&'static Migration>, DbError> {
        let wait = STATEMENT_LOCK_WAIT.as_secs();
        conn.exec_drop("SET SESSION lock_wait_timeout = ?, innodb_lock_wait_timeout = ?", (wait, wait))
            .await
            .map_err(|e| self.classify(e, "setting migrate's lock wait"))?;
        if let Err(e) = conn.query_drop(CREATE_VERSION_TABLE).await {
            return Err(self.migration_failed(conn, e, "creating wolley_push_schema".into()).await);
        }
        let current = match conn.query_first::<u32, _>(READ_VERSION).await {
            Ok(version) => version.unwrap_or(0),
            Err(e) => return Err(self.migration_failed(conn, e, "reading the schema version".into()).await),
        };
        self.refuse_newer(current)?;
        let mut applied = Vec::new();
        for migration in MIGRATIONS.iter().filter(|m| m.version > current) {
            let step = || format!("applying migration {}", migration.version);
            for statement in migration.statements {
                if let Err(e) = conn.query_drop(*statement).await {
                    return Err(self.migration_failed(conn, e, step()).await);
                }
            }
            if let Err(e) = conn.exec_drop(WRITE_VERSION, (migration.version,)).await {
                let step = format!("recording schema version {}", migration.version);
                return Err(self.migration_failed(conn, e, step).await);
            }
            applied.push(migration);
        }
        Ok(applied)
    }

    /// A migration statement's failure; when it waited out [`STATEMENT_LOCK_WAIT`], with the
    /// sessions that may hold the lock, looked up on the same connection.
    async fn migration_failed(&self, conn: &mut Conn, error: mysql_async::Error, step: String) -> DbError {
        let timed_out =
            matches!(&error, mysql_async::Error::Server(e) if e.code == super::code::LOCK_WAIT_TIMEOUT);
        if !timed_out {
            return self.classify(error, "migrating wolley-push's tables");
        }
        let blockers = conn.query::<BlockerRow, _>(BLOCKERS).await;
        if let Err(e) = &blockers {
            tracing::debug!("cannot list the sessions that may block migrate: {e}");
        }
        DbError::MigrateBlocked(MigrateBlocked {
            url: self.url.to_string(),
            step,
            waited: STATEMENT_LOCK_WAIT,
            blockers: blockers.map(|rows| rows.into_iter().map(Blocker::from).collect()).unwrap_or_default(),
        })
    }
}

/// Another `migrate` of the same database kept its lock past [`MIGRATE_LOCK_WAIT`].
#[derive(Debug, thiserror::Error)]
#[error("{}; {}", self.what(), self.fix())]
pub struct MigrateRunning {
    /// The masked database URL.
    pub url: String,
    /// How long this one waited.
    pub waited: Duration,
}

impl Advice for MigrateRunning {
    fn what(&self) -> String {
        format!(
            "another `wolley-push migrate` is running on {}: its lock was still held after {} s",
            self.url,
            self.waited.as_secs()
        )
    }

    fn fix(&self) -> Cow<'static, str> {
        "let it finish, then run migrate again (running it again is safe); if it is stuck, so is it: \
         see what it says"
            .into()
    }
}

/// A statement of `migrate` waited [`STATEMENT_LOCK_WAIT`] for a lock another session holds
/// (typically a metadata lock held by a transaction that read the table) and gave up.
#[derive(Debug, thiserror::Error)]
#[error("{}; {}", self.what(), self.fix())]
pub struct MigrateBlocked {
    /// The masked database URL.
    pub url: String,
    /// What migrate was doing, e.g. `applying migration 3 (…)`.
    pub step: String,
    /// How long the statement waited.
    pub waited: Duration,
    /// The sessions that may hold the lock (empty when none could be seen).
    pub blockers: Vec<Blocker>,
}

impl Advice for MigrateBlocked {
    fn what(&self) -> String {
        let held_by = match self.blockers.as_slice() {
            [] => {
                "the session holding it is not visible to this database user (information_schema.PROCESSLIST \
                   shows other users' sessions only with the PROCESS privilege)"
                    .to_owned()
            }
            [one] => format!("it may be held by {one}"),
            many => {
                let named: Vec<String> = many.iter().map(Blocker::to_string).collect();
                format!("it may be held by one of: {}", named.join("; "))
            }
        };
        format!(
            "migrate waited {} s for a lock on wolley-push's tables in {} while {}, and gave up; {held_by}",
            self.waited.as_secs(),
            self.url,
            self.step
        )
    }

    fn fix(&self) -> Cow<'static, str> {
        let kill = match self.blockers.first() {
            Some(first) => {
                format!(" (or, if it is abandoned, KILL {} as a database administrator)", first.id)
            }
            None => String::new(),
        };
        format!(
            "end that transaction{kill} or run migrate again later; nothing was left half-done, and the \
             jobs' statements waited at most those seconds"
        )
        .into()
    }
}

/// The columns of [`BLOCKERS`].
type BlockerRow = (u64, String, String, String, i64, String, Option<i64>);

/// A session that may hold the lock a migration waited for, as `SHOW PROCESSLIST` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocker {
    /// The session (connection) id, for `KILL`.
    pub id: u64,
    /// `user@host:port`.
    pub account: String,
    /// `Sleep` (idle) or what it runs, e.g. `Query`.
    pub command: String,
    /// Seconds in its current state.
    pub time: i64,
    /// The first word of its statement (`SELECT`, `ALTER`), never the rest.
    pub verb: String,
    /// How long its InnoDB transaction has been open, if it has one.
    pub transaction_secs: Option<i64>,
}

impl From<BlockerRow> for Blocker {
    fn from((id, user, host, command, time, verb, transaction_secs): BlockerRow) -> Self {
        let verb: String = verb.chars().take_while(char::is_ascii_alphabetic).collect();
        Blocker {
            id,
            account: format!("{user}@{host}"),
            command,
            time,
            verb: verb.to_ascii_uppercase(),
            transaction_secs,
        }
    }
}

impl fmt::Display for Blocker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "session {} ({}), ", self.id, self.account)?;
        match (self.command.as_str(), self.verb.as_str()) {
            ("Sleep", _) => write!(f, "idle for {} s", self.time)?,
            (_, "") => write!(f, "{} for {} s", self.command, self.time)?,
            (_, verb) => write!(f, "running a {verb} for {} s", self.time)?,
        }
        if let Some(secs) = self.transaction_secs {
            write!(f, " in a transaction open for {secs} s")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocker(command: &str, verb: &str, transaction_secs: Option<i64>) -> Blocker {
        Blocker::from((
            11,
            "django".into(),
            "10.0.0.7:51234".into(),
            command.into(),
            42,
            verb.into(),
            transaction_secs,
        ))
    }

    #[test]
    fn an_idle_session_in_a_transaction_is_named_with_its_id_account_and_age() {
        assert_eq!(
            blocker("Sleep", "", Some(340)).to_string(),
            "session 11 (django@10.0.0.7:51234), idle for 42 s in a transaction open for 340 s"
        );
    }

    #[test]
    fn a_running_session_shows_only_the_first_word_of_its_statement() {
        let shown = blocker("Query", "select\n*", None).to_string();
        assert_eq!(shown, "session 11 (django@10.0.0.7:51234), running a SELECT for 42 s");
    }

    #[test]
    fn the_fix_names_the_first_session_to_kill() {
        let blocked = MigrateBlocked {
            url: "mysql://u:***@db/wolley".into(),
            step: "applying migration 3 (x)".into(),
            waited: STATEMENT_LOCK_WAIT,
            blockers: vec![blocker("Sleep", "", Some(5))],
        };
        assert!(blocked.fix().contains("KILL 11"), "{}", blocked.fix());
        assert!(blocked.to_string().contains("it may be held by session 11"), "{blocked}");
    }
}
