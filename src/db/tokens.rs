//! Device tokens in `app_user`: read page by page in `user_id` order, or by user for a retry set.
//! (Dead tokens are cleared through the prune log, `db::prune_log`.)

use std::collections::HashMap;

use mysql_async::prelude::*;

use super::{Database, DbError};
pub use crate::shard::Shard;

/// Rows fetched per query. Keyset pages keep memory flat and, unlike one long streaming
/// result, survive a slow consumer (a stalled stream breaks at `net_write_timeout`).
pub const PAGE_SIZE: usize = 5_000;

/// One `app_user` row with a token, as stored (untrimmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    /// `app_user.user_id`.
    pub user_id: i64,
    /// `app_user.fcmToken` exactly as stored.
    pub token: String,
}

const PAGE_SQL: &str = "SELECT user_id, fcmToken FROM app_user \
     WHERE user_id > ? AND MOD(user_id, ?) = ? \
       AND fcmToken IS NOT NULL AND fcmToken NOT IN ('', 'abc') \
     ORDER BY user_id LIMIT ?";

// Grouped on the exact bytes: tokens are case-sensitive, the column's collation is not.
// TRIM matches the filter's trimming of the spaces the app sometimes stores around a token.
const DUPLICATES_SQL: &str = "SELECT BINARY TRIM(fcmToken), MIN(user_id) FROM app_user \
     WHERE fcmToken IS NOT NULL AND fcmToken NOT IN ('', 'abc') \
     GROUP BY BINARY TRIM(fcmToken) HAVING COUNT(*) > 1";
/// Room for the grouping to stay in memory on the server (session only): on disk it is
/// several times slower.
const DUPLICATES_TEMP_TABLE_BYTES: u64 = 256 << 20;

impl Database {
    /// Every token held by more than one user, with its owner: the lowest such user id.
    /// The server does the grouping, so the run's memory does not grow with the user count,
    /// and every shard and every resumed run agrees on who owns a token.
    ///
    /// # Errors
    /// [`DbError::MissingBackendSchema`] when `app_user` is not there; others as classified.
    pub async fn duplicate_tokens(&self) -> Result<HashMap<String, i64>, DbError> {
        let fail = |e| self.classify(e, "finding tokens shared by several users");
        let mut conn = self.conn().await?;
        conn.exec_drop(
            "SET SESSION max_heap_table_size = ?, tmp_table_size = ?",
            (DUPLICATES_TEMP_TABLE_BYTES, DUPLICATES_TEMP_TABLE_BYTES),
        )
        .await
        .map_err(fail)?;
        let rows: Vec<(Vec<u8>, i64)> = conn.query(DUPLICATES_SQL).await.map_err(fail)?;
        Ok(rows
            .into_iter()
            .map(|(token, owner)| (String::from_utf8_lossy(&token).into_owned(), owner))
            .collect())
    }

    /// The next page of users with a token, after `after_user_id`.
    ///
    /// # Errors
    /// [`DbError::MissingBackendSchema`] when `app_user` is not there; others as classified.
    pub async fn token_page(&self, after_user_id: i64, shard: Shard) -> Result<Vec<TokenRow>, DbError> {
        let mut conn = self.conn().await?;
        let params = (after_user_id, shard.count, shard.index, PAGE_SIZE as u64);
        let rows: Vec<(i64, String)> =
            conn.exec(PAGE_SQL, params).await.map_err(|e| self.classify(e, "reading app_user tokens"))?;
        Ok(rows.into_iter().map(|(user_id, token)| TokenRow { user_id, token }).collect())
    }

    /// The tokens of these users now (a user without a row is left out).
    ///
    /// # Errors
    /// [`DbError::MissingBackendSchema`] when `app_user` is not there; others as classified.
    pub(crate) async fn tokens_of(&self, user_ids: &[i64]) -> Result<Vec<(i64, Option<String>)>, DbError> {
        if user_ids.is_empty() {
            return Ok(Vec::new());
        }
        let marks = vec!["?"; user_ids.len()].join(", ");
        let sql =
            format!("SELECT user_id, fcmToken FROM app_user WHERE user_id IN ({marks}) ORDER BY user_id");
        let mut conn = self.conn().await?;
        conn.exec(sql, user_ids.to_vec()).await.map_err(|e| self.classify(e, "reading app_user tokens"))
    }
}
