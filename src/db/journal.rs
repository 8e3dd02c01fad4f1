//! SQL of the run journal, `wolley_push_run`: one row per (job, slot, shard).

use mysql_async::prelude::*;

use super::{Database, DbError};
use crate::report::Counts;

/// Which row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunKey {
    /// The job's name.
    pub job: String,
    /// The slot label.
    pub slot: String,
    /// The shard, `K/N`.
    pub shard: String,
}

/// A journal row as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRow {
    /// running, done, partial or failed.
    pub status: String,
    /// Every user at or below this id has been finished.
    pub checkpoint_user_id: i64,
    /// Counts over all attempts at this slot.
    pub counts: Counts,
    /// The host of the last attempt.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// When the last attempt started (UTC).
    pub started_at: String,
    /// When the row last changed (UTC).
    pub updated_at: String,
}

const SELECT_ROW: &str = "SELECT status, checkpoint_user_id, targeted, sent, pruned, failed, skipped, expired, \
       host, pid, DATE_FORMAT(started_at, '%Y-%m-%dT%H:%i:%sZ'), DATE_FORMAT(updated_at, '%Y-%m-%dT%H:%i:%sZ') \
     FROM wolley_push_run WHERE job = ? AND slot = ? AND shard = ?";

const SELECT_RUNNING: &str = "SELECT host, pid, DATE_FORMAT(started_at, '%Y-%m-%dT%H:%i:%sZ') \
     FROM wolley_push_run WHERE job = ? AND shard = ? AND status = 'running' \
     ORDER BY updated_at DESC LIMIT 1";

const START: &str = "INSERT INTO wolley_push_run \
       (job, slot, shard, status, checkpoint_user_id, host, pid, started_at, updated_at) \
     VALUES (?, ?, ?, 'running', 0, ?, ?, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6)) \
     ON DUPLICATE KEY UPDATE status = 'running', attempts = attempts + 1, host = VALUES(host), \
       pid = VALUES(pid), started_at = VALUES(started_at), updated_at = VALUES(updated_at), \
       finished_at = NULL, error = NULL";

const RESET: &str = "UPDATE wolley_push_run SET checkpoint_user_id = 0, targeted = 0, sent = 0, pruned = 0, \
       failed = 0, skipped = 0, expired = 0 WHERE job = ? AND slot = ? AND shard = ?";

const PROGRESS: &str =
    "UPDATE wolley_push_run SET checkpoint_user_id = ?, targeted = ?, sent = ?, pruned = ?, \
       failed = ?, skipped = ?, expired = ?, updated_at = UTC_TIMESTAMP(6) \
     WHERE job = ? AND slot = ? AND shard = ?";

const FINISH: &str = "UPDATE wolley_push_run SET status = ?, error = ?, finished_at = UTC_TIMESTAMP(6), \
       updated_at = UTC_TIMESTAMP(6) WHERE job = ? AND slot = ? AND shard = ?";

impl Database {
    /// The row of `key`, if any.
    ///
    /// # Errors
    /// As classified.
    pub async fn run_row(&self, key: &RunKey) -> Result<Option<RunRow>, DbError> {
        type Row = (String, i64, u64, u64, u64, u64, u64, u64, String, u32, String, String);
        let mut conn = self.conn().await?;
        let row: Option<Row> = conn
            .exec_first(SELECT_ROW, (&key.job, &key.slot, &key.shard))
            .await
            .map_err(|e| self.classify(e, "reading the run journal"))?;
        Ok(row.map(
            |(
                status,
                checkpoint_user_id,
                targeted,
                sent,
                pruned,
                failed,
                skipped,
                expired,
                host,
                pid,
                started_at,
                updated_at,
            )| {
                RunRow {
                    status,
                    checkpoint_user_id,
                    counts: Counts { targeted, sent, pruned, failed, skipped, expired, ..Counts::default() },
                    host,
                    pid,
                    started_at,
                    updated_at,
                }
            },
        ))
    }

    /// Who is running `job` on `shard` now, as the journal says: (host, pid, started at).
    ///
    /// # Errors
    /// As classified.
    pub async fn running_holder(
        &self,
        job: &str,
        shard: &str,
    ) -> Result<Option<(String, u32, String)>, DbError> {
        let mut conn = self.conn().await?;
        conn.exec_first(SELECT_RUNNING, (job, shard))
            .await
            .map_err(|e| self.classify(e, "reading the run journal"))
    }

    /// Marks the row running for this process, creating it if needed; `reset` zeroes its counts
    /// and checkpoint (a forced rerun of a finished slot).
    ///
    /// # Errors
    /// As classified.
    pub async fn start_run(&self, key: &RunKey, host: &str, pid: u32, reset: bool) -> Result<(), DbError> {
        let fail = |e| self.classify(e, "writing the run journal");
        let mut conn = self.conn().await?;
        conn.exec_drop(START, (&key.job, &key.slot, &key.shard, host, pid)).await.map_err(fail)?;
        if reset {
            conn.exec_drop(RESET, (&key.job, &key.slot, &key.shard)).await.map_err(fail)?;
        }
        Ok(())
    }

    /// Records the checkpoint and the counts so far.
    ///
    /// # Errors
    /// As classified.
    pub async fn save_progress(&self, key: &RunKey, checkpoint: i64, counts: &Counts) -> Result<(), DbError> {
        let mut conn = self.conn().await?;
        let params: Vec<mysql_async::Value> = vec![
            checkpoint.into(),
            counts.targeted.into(),
            counts.sent.into(),
            counts.pruned.into(),
            counts.failed.into(),
            counts.skipped.into(),
            counts.expired.into(),
            key.job.as_str().into(),
            key.slot.as_str().into(),
            key.shard.as_str().into(),
        ];
        conn.exec_drop(PROGRESS, params).await.map_err(|e| self.classify(e, "writing the run journal"))
    }

    /// Closes the row with its final status and, for a failed run, the error.
    ///
    /// # Errors
    /// As classified.
    pub async fn finish_run(&self, key: &RunKey, status: &str, error: Option<&str>) -> Result<(), DbError> {
        let mut conn = self.conn().await?;
        conn.exec_drop(FINISH, (status, error, &key.job, &key.slot, &key.shard))
            .await
            .map_err(|e| self.classify(e, "writing the run journal"))
    }
}
