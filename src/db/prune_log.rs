//! SQL of the prune log, `wolley_push_prune_log`: every dead token a run meets is recorded
//! here first (as `pending`, by the ledger's writes), removed from `app_user` only once the run's
//! share of dead tokens is judged healthy (`applied`, or `stale` when the user had a new token
//! by then), or held back (`held`) when it is not. `tokens restore` puts applied tokens back
//! (`restored`, or `kept` when the user registered a new token meanwhile).

use mysql_async::prelude::*;
use mysql_async::{TxOpts, Value};

use super::ledger::{named, Session};
use super::{has_token, placeholders, Database, DbError, PLACEHOLDER_TOKEN};
use crate::slot::RunKey;

/// Rows handled per transaction.
const PAGE: u64 = 500;

const PENDING_BY_REASON: &str = "SELECT reason, COUNT(*) FROM wolley_push_prune_log \
     WHERE job = :job AND slot = :slot AND shard = :shard AND state = 'pending' \
     GROUP BY reason ORDER BY COUNT(*) DESC";

// A range of the (job, slot, shard, state, id) index: the page's rows and no other. Forced
// because, left to itself, MariaDB takes the primary key for `ORDER BY id LIMIT` once the slot
// holds a few thousand rows, and walks every other slot's newer rows to fill a page (100,500
// rows read for 500 with 100,000 rows of older slots, by `SHOW SESSION STATUS LIKE
// 'Handler_read_next'`; 500 on this index).
const PENDING_PAGE: &str = "SELECT id, user_id, token FROM wolley_push_prune_log \
     FORCE INDEX (wolley_push_prune_log_pending) \
     WHERE job = :job AND slot = :slot AND shard = :shard AND state = 'pending' AND id > :after \
     ORDER BY id LIMIT :limit";

// `= BINARY ?`: the column's collation ignores case and trailing spaces, and a token is only
// ours to clear if it is byte for byte the one FCM rejected.
const CLEAR_TOKEN: &str = "UPDATE app_user SET fcmToken = NULL WHERE user_id = ? AND fcmToken = BINARY ?";

// Only where the user has no token: not what the token pages read.
const RESTORE_TOKEN: &str = concat!(
    "UPDATE app_user SET fcmToken = ? WHERE user_id = ? AND NOT (",
    has_token!("IFNULL(fcmToken, '')"),
    ")"
);

const PURGE: &str =
    "DELETE FROM wolley_push_prune_log WHERE recorded_at < UTC_TIMESTAMP(6) - INTERVAL ? DAY LIMIT 10000";

/// Which applied prunes `tokens restore` puts back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Selection {
    /// One job's slot, every shard or one.
    Slot {
        job: String,
        slot: String,
        /// `K/N`, or every shard.
        shard: Option<String>,
    },
    /// Everything pruned since this UTC time (`YYYY-MM-DD HH:MM:SS`), optionally by one job.
    Since {
        /// The earliest time.
        utc: String,
        /// Only this job's prunes.
        job: Option<String>,
    },
}

/// What applying or restoring did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Applied {
    /// Rows changed in `app_user`.
    pub changed: u64,
    /// Rows left alone because the user's token had changed.
    pub left: u64,
}

impl Session {
    /// The slot's pending dead tokens, counted by FCM's reason, most frequent first.
    pub(crate) async fn pending_dead(&mut self, key: &RunKey) -> Result<Vec<(String, u64)>, DbError> {
        self.conn
            .exec(PENDING_BY_REASON, named(key, []))
            .await
            .map_err(|e| self.db.classify(e, "reading the prune log"))
    }

    /// Clears each pending dead token from `app_user` if the user still holds exactly it.
    ///
    /// # Errors
    /// As classified; what was applied before the error stays applied.
    pub(crate) async fn apply_pending_prunes(&mut self, key: &RunKey) -> Result<Applied, DbError> {
        let db = self.db.clone();
        let fail = |e| db.classify(e, "pruning dead tokens");
        let mut applied = Applied::default();
        let mut after = 0u64;
        loop {
            let page: Vec<(u64, i64, Vec<u8>)> = self
                .conn
                .exec(PENDING_PAGE, named(key, [("after", after.into()), ("limit", PAGE.into())]))
                .await
                .map_err(fail)?;
            let Some(&(last, _, _)) = page.last() else { return Ok(applied) };
            after = last;
            let mut tx = self.conn.start_transaction(TxOpts::default()).await.map_err(fail)?;
            let (mut cleared, mut stale) = (Vec::new(), Vec::new());
            for (id, user_id, token) in &page {
                tx.exec_drop(CLEAR_TOKEN, (user_id, token)).await.map_err(fail)?;
                if tx.affected_rows() > 0 {
                    cleared.push(*id)
                } else {
                    stale.push(*id)
                }
            }
            mark(&mut tx, "applied", "applied_at", &cleared).await.map_err(fail)?;
            mark(&mut tx, "stale", "applied_at", &stale).await.map_err(fail)?;
            tx.commit().await.map_err(fail)?;
            applied.changed += cleared.len() as u64;
            applied.left += stale.len() as u64;
        }
    }
}

impl Database {
    /// Puts back every applied prune of `selection` whose user still has no token; the others
    /// are left (and marked `kept`).
    ///
    /// # Errors
    /// As classified; what was restored before the error stays restored.
    pub(crate) async fn restore_tokens(&self, selection: &Selection) -> Result<Applied, DbError> {
        let fail = |e| self.classify(e, "restoring pruned tokens");
        let (filter, params): (&str, Vec<Value>) = match selection {
            Selection::Slot { job, slot, shard: Some(shard) } => {
                ("job = ? AND slot = ? AND shard = ?", vec![job.into(), slot.into(), shard.into()])
            }
            Selection::Slot { job, slot, shard: None } => {
                ("job = ? AND slot = ?", vec![job.into(), slot.into()])
            }
            Selection::Since { utc, job: Some(job) } => {
                ("recorded_at >= ? AND job = ?", vec![utc.into(), job.into()])
            }
            Selection::Since { utc, job: None } => ("recorded_at >= ?", vec![utc.into()]),
        };
        let page_sql = format!(
            "SELECT id, user_id, token FROM wolley_push_prune_log WHERE {filter} AND state = 'applied' \
             AND id > ? ORDER BY id LIMIT ?"
        );
        let mut conn = self.conn().await?;
        let mut restored = Applied::default();
        let mut after = 0u64;
        loop {
            let mut page_params = params.clone();
            page_params.extend([after.into(), PAGE.into()]);
            let page: Vec<(u64, i64, Vec<u8>)> = conn.exec(&page_sql, page_params).await.map_err(fail)?;
            let Some(&(last, _, _)) = page.last() else { break };
            after = last;
            let mut tx = conn.start_transaction(TxOpts::default()).await.map_err(fail)?;
            let (mut put_back, mut kept) = (Vec::new(), Vec::new());
            for (id, user_id, token) in &page {
                tx.exec_drop(RESTORE_TOKEN, (token, user_id, PLACEHOLDER_TOKEN)).await.map_err(fail)?;
                if tx.affected_rows() > 0 {
                    put_back.push(*id)
                } else {
                    kept.push(*id)
                }
            }
            mark(&mut tx, "restored", "restored_at", &put_back).await.map_err(fail)?;
            mark(&mut tx, "kept", "restored_at", &kept).await.map_err(fail)?;
            tx.commit().await.map_err(fail)?;
            restored.changed += put_back.len() as u64;
            restored.left += kept.len() as u64;
        }
        Ok(restored)
    }

    /// Deletes prune-log rows older than `days` (at most 10,000 per call: runs keep it trimmed).
    pub(crate) async fn purge_prune_log(&self, days: u32) -> Result<u64, DbError> {
        let mut conn = self.conn().await?;
        conn.exec_drop(PURGE, (days,)).await.map_err(|e| self.classify(e, "trimming the prune log"))?;
        Ok(conn.affected_rows())
    }
}

async fn mark(
    tx: &mut mysql_async::Transaction<'_>,
    state: &str,
    at_column: &str,
    ids: &[u64],
) -> mysql_async::Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "UPDATE wolley_push_prune_log SET state = ?, {at_column} = UTC_TIMESTAMP(6) WHERE id IN ({})",
        placeholders(ids.len())
    );
    let mut params: Vec<Value> = vec![state.into()];
    params.extend(ids.iter().map(|&id| Value::from(id)));
    tx.exec_drop(sql, params).await
}
