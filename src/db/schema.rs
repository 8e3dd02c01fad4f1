//! The tables wolley-push owns (prefix `wolley_push_`), created and upgraded by `migrate`.
//! Never touches the backend's tables. Every statement is idempotent, so a migration that was
//! interrupted (MariaDB commits DDL at once) is finished by running `migrate` again.

use std::borrow::Cow;

use mysql_async::prelude::*;

use super::{Database, DbError};
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
    version: 5,
    description: "weeks published whole (wolley_push_weekly_*_gen tables, wolley_push_weekly_generation, \
                  wolley_push_weekly_published; the three weekly tables become views of the published \
                  generation), prune log index for pending pages",
    statements: V5_STATEMENTS,
}];

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
const WRITE_VERSION: &str = "INSERT INTO wolley_push_schema (id, version, updated_at) VALUES (1, ?, NOW(6)) \
     ON DUPLICATE KEY UPDATE version = VALUES(version), updated_at = VALUES(updated_at)";
/// Serialises concurrent `migrate` runs.
const MIGRATE_LOCK: &str = "wolley_push_migrate";

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

    /// Applies every migration newer than the database's version; returns those applied.
    ///
    /// # Errors
    /// [`DbError::SchemaAhead`] when a newer wolley-push migrated the database (nothing is
    /// touched); otherwise as classified.
    pub(crate) async fn migrate(&self) -> Result<Vec<&'static Migration>, DbError> {
        let fail = |e| self.classify(e, "migrating wolley-push's tables");
        let mut conn = self.conn().await?;
        conn.exec_drop("SELECT GET_LOCK(?, 60)", (MIGRATE_LOCK,)).await.map_err(fail)?;
        conn.query_drop(CREATE_VERSION_TABLE).await.map_err(fail)?;
        let current = self.schema_version().await?;
        if let Err(newer) = self.refuse_newer(current) {
            conn.exec_drop("DO RELEASE_LOCK(?)", (MIGRATE_LOCK,)).await.map_err(fail)?;
            return Err(newer);
        }
        let mut applied = Vec::new();
        for migration in MIGRATIONS.iter().filter(|m| m.version > current) {
            for statement in migration.statements {
                conn.query_drop(*statement).await.map_err(fail)?;
            }
            conn.exec_drop(WRITE_VERSION, (migration.version,)).await.map_err(fail)?;
            applied.push(migration);
        }
        conn.exec_drop("DO RELEASE_LOCK(?)", (MIGRATE_LOCK,)).await.map_err(fail)?;
        Ok(applied)
    }
}
