//! The read-only statements `doctor` runs: the server's version, which of the backend's tables
//! and columns wolley-push reads are missing, and how many users have a token.

use mysql_async::prelude::*;

use super::{has_token, Database, DbError, PLACEHOLDER_TOKEN};

/// The backend's tables and the columns wolley-push reads from them (tokens and statistics).
pub(crate) const BACKEND_COLUMNS: &[(&str, &[&str])] = &[
    ("app_user", &["user_id", "fcmToken"]),
    ("dailypath", &["dailypath_id", "date", "path_type", "user_id"]),
    ("intervalstay", &["start_time", "end_time", "category", "daily_path_id"]),
    ("intervalmove", &["start_time", "end_time", "daily_path_id"]),
];

// COLUMNS_SQL binds one parameter per table.
const _: () = assert!(BACKEND_COLUMNS.len() == 4);

const COLUMNS_SQL: &str = "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS \
     WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN (?, ?, ?, ?)";

/// The indexes `stats weekly` and `report week` read the backend's history through, as (table,
/// first column): the week's days by `date` (without it every run scans every user's history),
/// the intervals written since the last run by `last_updated` (without them a refresh reads
/// every interval of the week). docs/stats.md, "Refresh for late uploads".
pub(crate) const STATS_INDEXES: [(&str, &str); 3] =
    [("dailypath", "date"), ("intervalstay", "last_updated"), ("intervalmove", "last_updated")];

/// The (table, column) pairs of the backend's tables that start an index.
const INDEXED_SQL: &str = "SELECT DISTINCT TABLE_NAME, COLUMN_NAME FROM information_schema.STATISTICS \
     WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ('dailypath', 'intervalstay', 'intervalmove') \
       AND SEQ_IN_INDEX = 1";

// The same filter as the token pages (`db::tokens`). Trimming, duplicates and malformed tokens
// are only known while reading.
const TOKEN_COUNT_SQL: &str = concat!("SELECT COUNT(*) FROM app_user WHERE ", has_token!("fcmToken"));

impl Database {
    /// The server's version string, e.g. `10.5.27-MariaDB`.
    pub(crate) async fn server_version(&self) -> Result<String, DbError> {
        let mut conn = self.conn().await?;
        let version: Option<String> = conn
            .query_first("SELECT VERSION()")
            .await
            .map_err(|e| self.classify(e, "reading the version"))?;
        Ok(version.unwrap_or_default())
    }

    /// The database the URL selects, if it names one.
    pub(crate) async fn current_database(&self) -> Result<Option<String>, DbError> {
        let mut conn = self.conn().await?;
        let name: Option<Option<String>> = conn
            .query_first("SELECT DATABASE()")
            .await
            .map_err(|e| self.classify(e, "reading the database name"))?;
        Ok(name.flatten())
    }

    /// The tables (`table`) and columns (`table.column`) of [`BACKEND_COLUMNS`] that the
    /// database lacks; empty when everything wolley-push reads is there.
    pub(crate) async fn missing_backend_columns(&self) -> Result<Vec<String>, DbError> {
        let mut conn = self.conn().await?;
        let tables: Vec<&str> = BACKEND_COLUMNS.iter().map(|(table, _)| *table).collect();
        let present: Vec<(String, String)> = conn
            .exec(COLUMNS_SQL, (tables[0], tables[1], tables[2], tables[3]))
            .await
            .map_err(|e| self.classify(e, "reading information_schema.COLUMNS"))?;
        let mut missing = Vec::new();
        for (table, columns) in BACKEND_COLUMNS {
            let of_table: Vec<&str> =
                present.iter().filter(|(t, _)| t == table).map(|(_, c)| c.as_str()).collect();
            if of_table.is_empty() {
                missing.push(format!("table {table}"));
                continue;
            }
            // MariaDB compares column names without regard to case.
            for column in *columns {
                if !of_table.iter().any(|c| c.eq_ignore_ascii_case(column)) {
                    missing.push(format!("column {table}.{column}"));
                }
            }
        }
        Ok(missing)
    }

    /// The (table, column) pairs of [`STATS_INDEXES`] that start no index.
    pub(crate) async fn missing_stats_indexes(&self) -> Result<Vec<(&'static str, &'static str)>, DbError> {
        let mut conn = self.conn().await?;
        let indexed: Vec<(String, String)> = conn
            .query(INDEXED_SQL)
            .await
            .map_err(|e| self.classify(e, "reading information_schema.STATISTICS"))?;
        let has = |table: &str, column: &str| {
            indexed.iter().any(|(t, c)| t.eq_ignore_ascii_case(table) && c.eq_ignore_ascii_case(column))
        };
        Ok(STATS_INDEXES.into_iter().filter(|(table, column)| !has(table, column)).collect())
    }

    /// How many users have a token stored.
    pub(crate) async fn stored_token_count(&self) -> Result<u64, DbError> {
        let mut conn = self.conn().await?;
        let count: Option<u64> = conn
            .exec_first(TOKEN_COUNT_SQL, (PLACEHOLDER_TOKEN,))
            .await
            .map_err(|e| self.classify(e, "counting tokens"))?;
        Ok(count.unwrap_or(0))
    }
}
