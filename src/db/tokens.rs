//! Device tokens in `app_user`: read page by page in `user_id` order, or by user for a retry set;
//! the groups of rows that may share a token, and the counts the progress bar needs.
//! (Dead tokens are cleared through the prune log, `db::prune_log`.)

use chrono::{NaiveDate, NaiveDateTime};
use mysql_async::prelude::*;
use mysql_async::Value;

use super::ledger::{key_params, named, RETRY_COUNT};
use super::{date_value, datetime_value, has_token, placeholders, Database, DbError, PLACEHOLDER_TOKEN};
pub(crate) use crate::shard::Shard;
use crate::slot::RunKey;

/// Rows fetched per query. Keyset pages keep memory flat and, unlike one long streaming
/// result, survive a slow consumer (a stalled stream breaks at `net_write_timeout`). With the
/// next page read ahead (`tokens::users`), 10,000 rows a page keep the run from waiting for
/// the read, for a few MiB more; larger pages were no faster (BENCHMARKS.md, "Why the code
/// looks like this").
pub(crate) const PAGE_SIZE: usize = 10_000;
/// Rows per page of `app_user` when the run sends: a send goes at tens of thousands a second,
/// not the stream's million, so a page of 2,000 lasts far longer than the next takes to read,
/// and holds 3 MiB less than 10,000 (BENCHMARKS.md, issue 21).
pub(crate) const SEND_PAGE_SIZE: usize = 2_000;

/// One `app_user` row with a token, as stored (untrimmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TokenRow {
    /// `app_user.user_id`.
    pub user_id: i64,
    /// `app_user.fcmToken` exactly as stored.
    pub token: String,
}

const PAGE_SQL: &str = concat!(
    "SELECT user_id, fcmToken FROM app_user WHERE user_id > ? AND MOD(user_id, ?) = ? AND ",
    has_token!("fcmToken"),
    " ORDER BY user_id LIMIT ?"
);

const COUNT_SQL: &str = concat!(
    "SELECT COUNT(*) FROM app_user WHERE user_id > ? AND MOD(user_id, ?) = ? AND ",
    has_token!("fcmToken")
);

/// `path-daily --remind`'s audience among the users with a token (`app_user a`): reached by the
/// week's first run and without an upload of the announced week since it started. Two parts,
/// bound in this order (see [`NotArrived`]): `reminded_from!` takes the announced week's Monday
/// and Sunday and the first run's start on the backend's naive clock; `reminded_where!`, after
/// the statement's own conditions, the first run's checkpoint, then its job, slot and shard (its
/// retry set).
///
/// The uploads are an anti-join (`LEFT JOIN … WHERE d.dailypath_id IS NULL`), not `NOT EXISTS`:
/// MariaDB 10.11 rewrites a `NOT EXISTS` on `dailypath` into `NOT IN` and materialises it, a full
/// scan of `dailypath` (whose `date` has no index) for every page. A left join must read `a`
/// first, so `dailypath` is reached through its `dailypath_user_id` index, a user's few rows at a
/// time, and the server stops at a user's first upload ("Not exists" in `EXPLAIN`). The retry
/// set's `NOT EXISTS` is a lookup of the slot's rows by their primary key prefix.
macro_rules! reminded_from {
    () => {
        concat!(
            " FROM app_user a LEFT JOIN dailypath d ON d.user_id = a.user_id",
            " AND d.date BETWEEN ? AND ? AND d.last_updated >= ?"
        )
    };
}
macro_rules! reminded_where {
    () => {
        concat!(
            " AND d.dailypath_id IS NULL AND a.user_id <= ?",
            " AND NOT EXISTS (SELECT 1 FROM wolley_push_retry r",
            " WHERE r.job = ? AND r.slot = ? AND r.shard = ? AND r.user_id = a.user_id)"
        )
    };
}

const REMIND_PAGE_SQL: &str = concat!(
    "SELECT a.user_id, a.fcmToken",
    reminded_from!(),
    " WHERE a.user_id > ? AND MOD(a.user_id, ?) = ? AND ",
    has_token!("a.fcmToken"),
    reminded_where!(),
    " ORDER BY a.user_id LIMIT ?"
);

const REMIND_COUNT_SQL: &str = concat!(
    "SELECT COUNT(*)",
    reminded_from!(),
    " WHERE a.user_id > ? AND MOD(a.user_id, ?) = ? AND ",
    has_token!("a.fcmToken"),
    reminded_where!()
);

/// Who `path-daily --remind` sends to, besides having a token now (docs/product.md): the users
/// the first run reached (at or below its row's checkpoint and not left in its retry set) with
/// no `dailypath` row dated in the announced week updated since that run first started (the
/// definition of an upload in the upload coverage).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NotArrived {
    /// The first run's journal row: `path-daily`, its slot, this shard.
    pub first: RunKey,
    /// That row's checkpoint: every user at or below it was finished or is in its retry set.
    pub checkpoint: i64,
    /// The announced week's Monday and Sunday.
    pub week: (NaiveDate, NaiveDate),
    /// When the first run first started, on the backend's naive local clock.
    pub since: NaiveDateTime,
}

impl NotArrived {
    /// The parameters of `reminded_from!`.
    fn join_params(&self) -> [Value; 3] {
        let (monday, sunday) = self.week;
        [date_value(monday), date_value(sunday), datetime_value(self.since)]
    }

    /// The parameters of `reminded_where!`.
    fn filter_params(&self) -> [Value; 4] {
        let [job, slot, shard] = key_params(&self.first);
        [self.checkpoint.into(), job, slot, shard]
    }
}

// Grouped on a 32-bit hash of the trimmed bytes, not on the bytes: the temporary table then
// holds one integer per token instead of a 800-byte VARBINARY row (utf8mb4 VARCHAR(200)), stays
// in memory and costs far less MariaDB CPU. Equal tokens always fall into one group; the
// exact comparison happens afterwards, within a group (`tokens::owners`).
// TRIM on the bytes (BINARY) removes the spaces the app sometimes stores around a token, as
// TRIM on the text would, for less CPU; `tokens::owners::hash` computes the same CRC-32.
// `ORDER BY NULL`: MariaDB would otherwise sort the groups.
// One statement groups the hashes between two bounds: MariaDB runs a statement on one thread,
// so the run asks for the two halves of the hash range at once, on two connections, and the
// pass ends sooner on a second core. A token's hash puts it in one half, so each group is whole
// in one of them. The figures: BENCHMARKS.md, "Why the code looks like this".
const SHARED_GROUPS_SQL: &str = concat!(
    "SELECT CRC32(TRIM(BINARY fcmToken)) AS h, MIN(user_id), MAX(user_id), COUNT(*) FROM app_user WHERE ",
    has_token!("fcmToken"),
    " AND CRC32(TRIM(BINARY fcmToken)) BETWEEN ? AND ?",
    " GROUP BY h HAVING COUNT(*) > 1 ORDER BY NULL"
);

/// The parts of the hash range grouped at once (see `SHARED_GROUPS_SQL`).
const HASH_RANGES: [(u32, u32); 2] = [(0, u32::MAX / 2), (u32::MAX / 2 + 1, u32::MAX)];

/// Room for the grouping to stay in memory on the server (session only): about 50 bytes a
/// group, so 64 MiB holds a million users; on disk the grouping is five times slower.
const GROUPING_TEMP_TABLE_BYTES: u64 = 256 << 20;

/// Hashes asked for in one statement by [`Database::rows_hashed_to`] (each one a bound
/// parameter; the server allows 65,535).
pub(crate) const HASHES_PER_QUERY: usize = 1_000;

/// A hash value held by more than one `app_user` row: one token shared by several users, or
/// (rarely) different tokens with the same CRC-32. 24 bytes: the run keeps one per shared token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SharedGroup {
    /// `CRC32(TRIM(BINARY fcmToken))`.
    pub hash: u32,
    /// Rows in the group (at least 2).
    pub rows: u32,
    /// The lowest and highest user id in the group.
    pub min_user_id: i64,
    pub max_user_id: i64,
}

/// The statement of `(everyone, reminded)` that reads the users of `shard` after
/// `after_user_id` with a token (`among` the reminder's audience when given), and its
/// parameters (a page's limit is the caller's to add).
fn users_query(
    (everyone, reminded): (&'static str, &'static str),
    after_user_id: i64,
    shard: Shard,
    among: Option<&NotArrived>,
) -> (&'static str, Vec<Value>) {
    let own: [Value; 4] =
        [after_user_id.into(), shard.count.into(), shard.index.into(), PLACEHOLDER_TOKEN.into()];
    match among {
        None => (everyone, own.to_vec()),
        Some(among) => {
            let params = among.join_params().into_iter().chain(own).chain(among.filter_params()).collect();
            (reminded, params)
        }
    }
}

impl Database {
    /// Every hash held by more than one user with a token, sorted by hash. An integer hash
    /// aggregate on the server (two halves of the hash range at once), so the run's memory
    /// follows the shared tokens, not the users, and every shard and resumed run sees the
    /// same groups.
    ///
    /// # Errors
    /// [`DbError::MissingBackendSchema`] when `app_user` is not there; others as classified.
    pub(crate) async fn shared_groups(&self) -> Result<Vec<SharedGroup>, DbError> {
        let [low, high] = HASH_RANGES;
        let (mut groups, upper) =
            tokio::try_join!(self.shared_groups_between(low), self.shared_groups_between(high))?;
        groups.extend(upper);
        groups.sort_unstable_by_key(|group| group.hash);
        Ok(groups)
    }

    /// The groups whose hash is within `(from, to)`, inclusive, on a connection of their own.
    async fn shared_groups_between(&self, (from, to): (u32, u32)) -> Result<Vec<SharedGroup>, DbError> {
        let fail = |e| self.classify(e, "finding tokens shared by several users");
        let mut conn = self.conn().await?;
        conn.exec_drop(
            "SET SESSION max_heap_table_size = ?, tmp_table_size = ?",
            (GROUPING_TEMP_TABLE_BYTES, GROUPING_TEMP_TABLE_BYTES),
        )
        .await
        .map_err(fail)?;
        // Mapped row by row as they arrive: no second copy of the result.
        let to_group = |(hash, min_user_id, max_user_id, rows): (u32, i64, i64, u64)| SharedGroup {
            hash,
            rows: u32::try_from(rows).unwrap_or(u32::MAX),
            min_user_id,
            max_user_id,
        };
        conn.exec_map(SHARED_GROUPS_SQL, (PLACEHOLDER_TOKEN, from, to), to_group).await.map_err(fail)
    }

    /// The users with a token whose hash is one of `hashes` (at most [`HASHES_PER_QUERY`]),
    /// with their token as stored. One scan: only for groups of three users or more, which
    /// cannot be settled by looking up their lowest user alone.
    ///
    /// # Errors
    /// [`DbError::MissingBackendSchema`] when `app_user` is not there; others as classified.
    pub(crate) async fn rows_hashed_to(&self, hashes: &[u32]) -> Result<Vec<(i64, String)>, DbError> {
        debug_assert!(hashes.len() <= HASHES_PER_QUERY);
        if hashes.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            concat!(
                "SELECT user_id, fcmToken FROM app_user WHERE ",
                has_token!("fcmToken"),
                " AND CRC32(TRIM(BINARY fcmToken)) IN ({})"
            ),
            placeholders(hashes.len())
        );
        let mut params: Vec<Value> = vec![PLACEHOLDER_TOKEN.into()];
        params.extend(hashes.iter().map(|&hash| Value::from(hash)));
        let mut conn = self.conn().await?;
        conn.exec(sql, params).await.map_err(|e| self.classify(e, "reading tokens shared by several users"))
    }

    /// How many users of `shard` above `after_user_id` have a token, and are `among` the
    /// reminder's audience when given (the progress bar's total; one scan of `app_user`, run
    /// while the shared tokens are being grouped).
    ///
    /// # Errors
    /// [`DbError::MissingBackendSchema`] when `app_user` is not there; others as classified.
    pub(crate) async fn count_with_token(
        &self,
        after_user_id: i64,
        shard: Shard,
        among: Option<&NotArrived>,
    ) -> Result<u64, DbError> {
        let mut conn = self.conn().await?;
        let (sql, params) = users_query((COUNT_SQL, REMIND_COUNT_SQL), after_user_id, shard, among);
        let count: Option<u64> =
            conn.exec_first(sql, params).await.map_err(|e| self.classify(e, "counting app_user tokens"))?;
        Ok(count.unwrap_or(0))
    }

    /// The size of a slot's retry set (the progress bar's total).
    ///
    /// # Errors
    /// As classified.
    pub(crate) async fn retry_set_size(&self, key: &RunKey) -> Result<u64, DbError> {
        let mut conn = self.conn().await?;
        let count: Option<u64> = conn
            .exec_first(RETRY_COUNT, named(key, []))
            .await
            .map_err(|e| self.classify(e, "reading the retry set"))?;
        Ok(count.unwrap_or(0))
    }

    /// The next page of at most `rows` users with a token, after `after_user_id`; only those
    /// `among` the reminder's audience when given.
    ///
    /// # Errors
    /// [`DbError::MissingBackendSchema`] when `app_user` is not there; others as classified.
    pub(crate) async fn token_page(
        &self,
        after_user_id: i64,
        shard: Shard,
        among: Option<&NotArrived>,
        rows: usize,
    ) -> Result<Vec<TokenRow>, DbError> {
        let mut conn = self.conn().await?;
        let (sql, mut params) = users_query((PAGE_SQL, REMIND_PAGE_SQL), after_user_id, shard, among);
        params.push((rows as u64).into());
        let rows: Vec<(i64, String)> =
            conn.exec(sql, params).await.map_err(|e| self.classify(e, "reading app_user tokens"))?;
        Ok(rows.into_iter().map(|(user_id, token)| TokenRow { user_id, token }).collect())
    }

    /// Of these users, those the reminder still reaches, with their token now (a user who
    /// uploaded since, or has no token any more, is left out).
    ///
    /// # Errors
    /// [`DbError::MissingBackendSchema`] when `app_user` or `dailypath` is not there; others as
    /// classified.
    pub(crate) async fn not_arrived_among(
        &self,
        user_ids: &[i64],
        among: &NotArrived,
    ) -> Result<Vec<(i64, Option<String>)>, DbError> {
        if user_ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            concat!(
                "SELECT a.user_id, a.fcmToken",
                reminded_from!(),
                " WHERE a.user_id IN ({}) AND ",
                has_token!("a.fcmToken"),
                reminded_where!(),
                " ORDER BY a.user_id"
            ),
            placeholders(user_ids.len())
        );
        let mut params: Vec<Value> = among.join_params().to_vec();
        params.extend(user_ids.iter().map(|&id| Value::from(id)));
        params.push(PLACEHOLDER_TOKEN.into());
        params.extend(among.filter_params());
        let mut conn = self.conn().await?;
        conn.exec(sql, params).await.map_err(|e| self.classify(e, "reading the users to remind"))
    }

    /// The tokens of these users now (a user without a row is left out).
    ///
    /// # Errors
    /// [`DbError::MissingBackendSchema`] when `app_user` is not there; others as classified.
    pub(crate) async fn tokens_of(&self, user_ids: &[i64]) -> Result<Vec<(i64, Option<String>)>, DbError> {
        if user_ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT user_id, fcmToken FROM app_user WHERE user_id IN ({}) ORDER BY user_id",
            placeholders(user_ids.len())
        );
        let mut conn = self.conn().await?;
        conn.exec(sql, user_ids.to_vec()).await.map_err(|e| self.classify(e, "reading app_user tokens"))
    }
}
