//! The run journal: each scheduled slot happens once and completely. A row per (job, slot,
//! shard) records status, counts and a checkpoint — the highest `user_id` below which every
//! token is finished — so a run killed halfway is resumed, not repeated, and a finished slot
//! is not sent twice.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use crate::db::journal::RunKey;
use crate::db::{Database, DbError};
use crate::report::Counts;

/// Tracks which users are finished while targets complete out of order.
///
/// Targets are dispatched in `user_id` order; a user is pending from dispatch until its
/// message is finished (sent, pruned, or failed for good) or stuck (expired, or still failing
/// transiently: a rerun must send it). The checkpoint is just below the lowest pending or stuck
/// user, or the last dispatched user when there is none. Only the lowest stuck user is kept, so
/// the memory is bounded by the messages in flight even when a deadline expires millions.
#[derive(Debug)]
pub struct Checkpoint {
    state: Mutex<CheckpointState>,
}

#[derive(Debug)]
struct CheckpointState {
    pending: BTreeSet<i64>,
    highest_dispatched: i64,
    lowest_stuck: Option<i64>,
}

impl Checkpoint {
    /// A tracker resuming after `start` (every user at or below it is finished).
    pub fn new(start: i64) -> Self {
        let state =
            CheckpointState { pending: BTreeSet::new(), highest_dispatched: start, lowest_stuck: None };
        Checkpoint { state: Mutex::new(state) }
    }

    /// `user_id` was handed to the sender.
    pub fn dispatched(&self, user_id: i64) {
        let mut state = self.state.lock().expect("checkpoint lock");
        state.pending.insert(user_id);
        state.highest_dispatched = state.highest_dispatched.max(user_id);
    }

    /// `user_id`'s message needs nothing more in this slot.
    pub fn finished(&self, user_id: i64) {
        self.state.lock().expect("checkpoint lock").pending.remove(&user_id);
    }

    /// `user_id`'s message was not delivered and a rerun of the slot must send it.
    pub fn stuck(&self, user_id: i64) {
        let mut state = self.state.lock().expect("checkpoint lock");
        state.pending.remove(&user_id);
        state.lowest_stuck = Some(state.lowest_stuck.map_or(user_id, |lowest| lowest.min(user_id)));
    }

    /// Every user at or below this id is finished.
    pub fn value(&self) -> i64 {
        let state = self.state.lock().expect("checkpoint lock");
        let below_pending = state.pending.first().map_or(state.highest_dispatched, |lowest| lowest - 1);
        state.lowest_stuck.map_or(below_pending, |stuck| below_pending.min(stuck - 1))
    }
}

/// How a run ended, as the journal records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// Everything sent.
    Done,
    /// Some messages failed, expired, or the run was stopped: a rerun resumes.
    Partial,
    /// The run stopped on an error.
    Failed,
}

impl RunStatus {
    /// The status as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Done => "done",
            RunStatus::Partial => "partial",
            RunStatus::Failed => "failed",
        }
    }
}

/// What the journal says about starting a slot.
pub enum Begin {
    /// The slot finished already; nothing to do without `--force`.
    AlreadyDone {
        /// When it finished (UTC).
        finished_at: String,
    },
    /// Go ahead, writing to this journal row.
    Run(Journal),
}

/// This process's journal row for one (job, slot, shard).
pub struct Journal {
    db: Database,
    key: RunKey,
    before: Counts,
    resumed_after: i64,
    checkpoint: Arc<Checkpoint>,
}

impl Journal {
    /// Opens the row for `key`: a fresh run, a resumed one, or none when the slot is done.
    ///
    /// # Errors
    /// Database errors.
    pub async fn begin(db: &Database, key: RunKey, force: bool) -> Result<Begin, DbError> {
        let row = db.run_row(&key).await?;
        let (before, resumed_after, reset) = match row {
            Some(row) if row.status == RunStatus::Done.as_str() && !force => {
                return Ok(Begin::AlreadyDone { finished_at: row.updated_at });
            }
            Some(row) if row.status == RunStatus::Done.as_str() => (Counts::default(), 0, true),
            Some(row) => {
                tracing::info!(
                    checkpoint = row.checkpoint_user_id,
                    previous = %row.status,
                    host = %row.host,
                    pid = row.pid,
                    "resuming an unfinished run of this slot"
                );
                (row.counts, row.checkpoint_user_id, false)
            }
            None => (Counts::default(), 0, false),
        };
        db.start_run(&key, &hostname(), std::process::id(), reset).await?;
        let checkpoint = Arc::new(Checkpoint::new(resumed_after));
        Ok(Begin::Run(Journal { db: db.clone(), key, before, resumed_after, checkpoint }))
    }

    /// Users at or below this id were finished by an earlier attempt.
    pub fn resume_after(&self) -> i64 {
        self.resumed_after
    }

    /// The tracker the sender reports to.
    pub fn checkpoint(&self) -> &Arc<Checkpoint> {
        &self.checkpoint
    }

    /// Records progress; a failed write is logged, the run goes on (the next write catches up).
    pub async fn save(&self, run: &Counts) {
        let total = self.before.plus(run);
        if let Err(error) = self.db.save_progress(&self.key, self.checkpoint.value(), &total).await {
            tracing::warn!("could not record progress in the run journal: {error}");
        }
    }

    /// Records the final counts and status.
    ///
    /// # Errors
    /// Database errors.
    pub async fn finish(self, run: &Counts, status: RunStatus, error: Option<&str>) -> Result<(), DbError> {
        let total = self.before.plus(run);
        self.db.save_progress(&self.key, self.checkpoint.value(), &total).await?;
        self.db.finish_run(&self.key, status.as_str(), error).await
    }
}

impl Journal {
    /// Records that the run stopped on `error`; the checkpoint and counts keep their last
    /// saved values, so a rerun resumes from there.
    ///
    /// # Errors
    /// Database errors.
    pub async fn fail(self, error: &str) -> Result<(), DbError> {
        self.db.finish_run(&self.key, RunStatus::Failed.as_str(), Some(error)).await
    }
}

/// This machine's name, for the journal and the lock's "held by" line.
pub fn hostname() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checkpoint_stays_below_the_lowest_unfinished_user() {
        let checkpoint = Checkpoint::new(0);
        for user in [3, 5, 9] {
            checkpoint.dispatched(user);
        }
        checkpoint.finished(5);
        checkpoint.finished(9);
        assert_eq!(checkpoint.value(), 2);
        checkpoint.finished(3);
        assert_eq!(checkpoint.value(), 9);
    }

    #[test]
    fn a_stuck_user_holds_the_checkpoint_below_it_without_being_kept_pending() {
        let checkpoint = Checkpoint::new(0);
        for user in 1..=5 {
            checkpoint.dispatched(user);
        }
        checkpoint.stuck(2);
        for user in [1, 3, 4, 5] {
            checkpoint.finished(user);
        }
        assert_eq!(checkpoint.value(), 1);
        assert!(checkpoint.state.lock().unwrap().pending.is_empty());
    }

    #[test]
    fn a_resumed_checkpoint_starts_where_the_last_one_stopped() {
        assert_eq!(Checkpoint::new(41).value(), 41);
    }
}
