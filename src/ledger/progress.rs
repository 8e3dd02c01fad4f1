//! What a running slot knows that the database does not yet: which users are in flight, what
//! became of the others, and from that the next [`JournalWrite`] to make durable.
//!
//! The rule that bounds what a crash can cost: every write moves the checkpoint to the highest
//! user that had *finished* (sent, pruned, failed for good) by the previous write. Users are
//! taken in `user_id` order, so everything at or below that user was taken before it finished;
//! anything that finished above the checkpoint finished after the previous write. Each write
//! also records the users at or below the checkpoint that have not finished: those still in
//! flight as a list in the journal row itself (rewritten whole each time: they come and go by the
//! hundred a second, and rows for them would churn the database), those not delivered as rows of
//! the retry set. A rerun after kill -9 takes the list into the retry set and therefore resends
//! the messages in flight plus at most those finished during the last two write intervals, and
//! nothing else.

use std::collections::BTreeMap;

use crate::counts::SlotCounts;
use crate::db::ledger::{DeadToken, JournalWrite, Marks, RetryState, RowChange};

/// What became of one user's message, as far as the slot is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Resolution {
    /// Delivered.
    Sent,
    /// The token is dead: recorded for pruning.
    Dead(DeadToken),
    /// Failed for good: a rerun would not do better.
    Failed,
    /// Not delivered (still failing at the attempt limit, or left unsent by a stop): a rerun sends it.
    Retry {
        /// Why, for the operator.
        reason: String,
    },
    /// Nothing to send: the token cannot be valid, belongs to another user, or is gone.
    Skipped,
}

impl Resolution {
    fn finished(&self) -> bool {
        matches!(self, Resolution::Sent | Resolution::Dead(_) | Resolution::Failed)
    }
}

/// What the database holds for a user whose message is not finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Held {
    /// Nothing: the user is above the checkpoint.
    Nothing,
    /// The journal row's in-flight list (counted in `retrying`).
    Listed,
    /// A retry-set row (counted in `retrying`).
    Row,
}

#[derive(Debug)]
struct Resolved {
    user_id: i64,
    /// What the database held for the user when this was decided.
    held: Held,
    resolution: Resolution,
}

/// How the run whose last journal write this is ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// Every user was read and answered: the checkpoint moves past the last one read.
    Complete,
    /// Stopped early: users after the last finished one are left above the checkpoint, to be
    /// read again, so a deadline that leaves a million users unsent records nothing for them.
    Stopped,
}

/// The in-memory side of the ledger. Memory is bounded by the users in flight plus one write
/// interval's answers, whatever the number of users.
#[derive(Debug)]
pub(crate) struct SlotProgress {
    checkpoint: i64,
    /// The highest finished user at the previous write: the next checkpoint.
    finished_at_last_write: i64,
    highest_finished: i64,
    highest_read: i64,
    /// Taken and not yet answered, with what the database holds for them.
    pending: BTreeMap<i64, Held>,
    /// Answers not yet in a batch (those above the checkpoint wait for it to pass them).
    unwritten: Vec<Resolved>,
    totals: SlotCounts,
    /// Delivered (finished) answers in the batches taken since the last [`SlotProgress::take_written`]:
    /// once their write commits, a crash no longer sends them again.
    writing: usize,
    /// What each batch records for the users it delivered to.
    marks: Option<Marks>,
}

impl SlotProgress {
    /// The state of a slot resumed at `checkpoint` with these totals.
    pub(crate) fn new(checkpoint: i64, totals: SlotCounts) -> Self {
        SlotProgress {
            checkpoint,
            finished_at_last_write: checkpoint,
            highest_finished: checkpoint,
            highest_read: checkpoint,
            pending: BTreeMap::new(),
            unwritten: Vec::new(),
            totals,
            writing: 0,
            marks: None,
        }
    }

    /// Has every batch record `marks` for the users it delivered to.
    pub(crate) fn with_marks(mut self, marks: Option<Marks>) -> Self {
        self.marks = marks;
        self
    }

    /// The batch last taken is committed: how many delivered answers it made durable (the
    /// count the send gate's backlog takes off).
    pub(crate) fn take_written(&mut self) -> usize {
        std::mem::take(&mut self.writing)
    }

    /// `user_id` was handed to the sender; `in_retry_set` when it comes from the retry set.
    pub(crate) fn taken(&mut self, user_id: i64, in_retry_set: bool) {
        self.pending.insert(user_id, if in_retry_set { Held::Row } else { Held::Nothing });
        self.read(user_id, in_retry_set);
    }

    /// `user_id` was read and is not sent (see [`Resolution::Skipped`]).
    pub(crate) fn skipped(&mut self, user_id: i64, in_retry_set: bool) {
        self.read(user_id, in_retry_set);
        let held = if in_retry_set { Held::Row } else { Held::Nothing };
        self.unwritten.push(Resolved { user_id, held, resolution: Resolution::Skipped });
    }

    fn read(&mut self, user_id: i64, in_retry_set: bool) {
        if !in_retry_set {
            self.highest_read = self.highest_read.max(user_id);
        }
    }

    /// `user_id`'s message is answered.
    pub(crate) fn resolved(&mut self, user_id: i64, resolution: Resolution) {
        let held = self.pending.remove(&user_id).unwrap_or(Held::Nothing);
        if resolution.finished() {
            self.highest_finished = self.highest_finished.max(user_id);
        }
        self.unwritten.push(Resolved { user_id, held, resolution });
    }

    /// The next journal write; with `ending`, the run's last.
    pub(crate) fn take_write(&mut self, ending: Option<Ending>) -> JournalWrite {
        let checkpoint = self.checkpoint.max(match ending {
            None => self.finished_at_last_write,
            Some(Ending::Stopped) => self.highest_finished,
            Some(Ending::Complete) => self.highest_read.max(self.highest_finished),
        });
        self.finished_at_last_write = self.highest_finished;
        let mut batch = JournalWrite { checkpoint, marks: self.marks, ..JournalWrite::default() };
        for (_, held) in self.pending.range_mut(..=checkpoint) {
            if *held == Held::Nothing {
                *held = Held::Listed;
                self.totals.targeted += 1;
                self.totals.retrying += 1;
            }
        }
        batch.in_flight =
            self.pending.iter().filter(|(_, held)| **held == Held::Listed).map(|(&user, _)| user).collect();
        let mut waiting = Vec::new();
        for resolved in std::mem::take(&mut self.unwritten) {
            let settles = match resolved.held {
                Held::Row | Held::Listed => true,
                Held::Nothing => resolved.user_id <= checkpoint,
            };
            if settles && resolved.resolution.finished() {
                self.writing += 1;
            }
            if settles && self.marks.is_some() && resolved.resolution == Resolution::Sent {
                batch.delivered.push(resolved.user_id);
            }
            match resolved.held {
                Held::Row | Held::Listed => self.settle_held(resolved, &mut batch),
                Held::Nothing if resolved.user_id <= checkpoint => self.settle_fresh(resolved, &mut batch),
                Held::Nothing if ending.is_none() => waiting.push(resolved),
                // At the end, what is left above the checkpoint did not finish: it is read again.
                Held::Nothing => {}
            }
        }
        self.unwritten = waiting;
        self.checkpoint = checkpoint;
        batch.totals = self.totals;
        batch
    }

    /// A user counted for the first time.
    fn settle_fresh(&mut self, Resolved { user_id, resolution, .. }: Resolved, batch: &mut JournalWrite) {
        let t = &mut self.totals;
        if resolution != Resolution::Skipped {
            t.targeted += 1;
        }
        match resolution {
            Resolution::Sent => t.sent += 1,
            Resolution::Dead(dead) => {
                t.pruned += 1;
                batch.dead.push(dead);
            }
            Resolution::Failed => t.failed += 1,
            Resolution::Retry { reason } => {
                t.retrying += 1;
                batch.rows.insert(user_id, RowChange::Keep { state: RetryState::Retry, reason });
            }
            Resolution::Skipped => t.skipped += 1,
        }
    }

    /// A user already counted in `retrying`, through the in-flight list or a retry-set row.
    fn settle_held(&mut self, Resolved { user_id, held, resolution }: Resolved, batch: &mut JournalWrite) {
        let t = &mut self.totals;
        let change = match resolution {
            Resolution::Retry { reason } => {
                batch.rows.insert(user_id, RowChange::Keep { state: RetryState::Retry, reason });
                return;
            }
            Resolution::Sent => &mut t.sent,
            Resolution::Dead(dead) => {
                batch.dead.push(dead);
                &mut t.pruned
            }
            Resolution::Failed => &mut t.failed,
            Resolution::Skipped => {
                t.targeted = t.targeted.saturating_sub(1);
                &mut t.skipped
            }
        };
        *change += 1;
        t.retrying = t.retrying.saturating_sub(1);
        // A listed user leaves the list by not being in the next one.
        if held == Held::Row {
            batch.rows.insert(user_id, RowChange::Delete);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retry(reason: &str) -> Resolution {
        Resolution::Retry { reason: reason.into() }
    }

    fn dead(user_id: i64) -> Resolution {
        Resolution::Dead(DeadToken { user_id, token: format!("t{user_id}"), reason: "UNREGISTERED" })
    }

    fn take_all(progress: &mut SlotProgress, users: std::ops::RangeInclusive<i64>) {
        for user in users {
            progress.taken(user, false);
        }
    }

    #[test]
    fn the_checkpoint_follows_what_had_finished_by_the_previous_write() {
        let mut progress = SlotProgress::new(0, SlotCounts::default());
        take_all(&mut progress, 1..=10);
        for user in 1..=4 {
            progress.resolved(user, Resolution::Sent);
        }
        assert_eq!(progress.take_write(None).checkpoint, 0, "answers since the previous write wait");
        for user in 5..=6 {
            progress.resolved(user, Resolution::Sent);
        }
        let batch = progress.take_write(None);
        assert_eq!(batch.checkpoint, 4);
        assert_eq!(batch.totals, SlotCounts { targeted: 4, sent: 4, ..SlotCounts::default() });
        assert!(batch.rows.is_empty(), "nothing slow, nothing to write but the row");
    }

    #[test]
    fn a_user_in_flight_below_the_checkpoint_is_listed_in_flight() {
        let mut progress = SlotProgress::new(0, SlotCounts::default());
        take_all(&mut progress, 1..=5);
        for user in 2..=5 {
            progress.resolved(user, Resolution::Sent);
        }
        progress.take_write(None);
        let batch = progress.take_write(None);
        assert_eq!(batch.checkpoint, 5);
        assert_eq!(batch.in_flight, vec![1]);
        assert!(batch.rows.is_empty(), "in flight is not a retry-set row");
        assert_eq!(batch.totals, SlotCounts { targeted: 5, sent: 4, retrying: 1, ..SlotCounts::default() });
        assert!(batch.totals.adds_up());
    }

    #[test]
    fn a_listed_user_that_is_then_delivered_leaves_the_list() {
        let mut progress = SlotProgress::new(0, SlotCounts::default());
        take_all(&mut progress, 1..=3);
        progress.resolved(2, Resolution::Sent);
        progress.resolved(3, Resolution::Sent);
        progress.take_write(None);
        assert_eq!(progress.take_write(None).in_flight, vec![1]);
        progress.resolved(1, Resolution::Sent);
        let batch = progress.take_write(None);
        assert!(batch.in_flight.is_empty() && batch.rows.is_empty());
        assert_eq!(batch.totals, SlotCounts { targeted: 3, sent: 3, ..SlotCounts::default() });
    }

    #[test]
    fn a_listed_user_that_fails_moves_to_the_retry_set() {
        let mut progress = SlotProgress::new(0, SlotCounts::default());
        take_all(&mut progress, 1..=2);
        progress.resolved(2, Resolution::Sent);
        progress.take_write(None);
        progress.take_write(None);
        progress.resolved(1, retry("503"));
        let batch = progress.take_write(None);
        assert!(batch.in_flight.is_empty());
        assert!(matches!(batch.rows[&1], RowChange::Keep { state: RetryState::Retry, .. }));
        assert_eq!(batch.totals, SlotCounts { targeted: 2, sent: 1, retrying: 1, ..SlotCounts::default() });
    }

    #[test]
    fn an_undelivered_user_below_the_checkpoint_goes_into_the_retry_set_with_its_reason() {
        let mut progress = SlotProgress::new(0, SlotCounts::default());
        take_all(&mut progress, 1..=3);
        progress.resolved(1, retry("503 UNAVAILABLE"));
        progress.resolved(2, Resolution::Sent);
        progress.resolved(3, Resolution::Sent);
        let batch = progress.take_write(Some(Ending::Complete));
        assert_eq!(batch.checkpoint, 3);
        assert_eq!(
            batch.rows[&1],
            RowChange::Keep { state: RetryState::Retry, reason: "503 UNAVAILABLE".into() }
        );
        assert_eq!(batch.totals, SlotCounts { targeted: 3, sent: 2, retrying: 1, ..SlotCounts::default() });
    }

    #[test]
    fn a_stopped_run_leaves_its_unsent_tail_above_the_checkpoint_without_rows() {
        let mut progress = SlotProgress::new(0, SlotCounts::default());
        take_all(&mut progress, 1..=1000);
        for user in 1..=10 {
            progress.resolved(user, Resolution::Sent);
        }
        for user in 11..=1000 {
            progress.resolved(user, retry("left unsent at the deadline"));
        }
        let batch = progress.take_write(Some(Ending::Stopped));
        assert_eq!(batch.checkpoint, 10);
        assert!(batch.rows.is_empty());
        assert_eq!(batch.totals, SlotCounts { targeted: 10, sent: 10, ..SlotCounts::default() });
    }

    #[test]
    fn a_retry_set_user_that_is_delivered_leaves_the_set() {
        let before = SlotCounts { targeted: 10, sent: 9, retrying: 1, ..SlotCounts::default() };
        let mut progress = SlotProgress::new(10, before);
        progress.taken(4, true);
        progress.resolved(4, Resolution::Sent);
        let batch = progress.take_write(Some(Ending::Complete));
        assert_eq!(batch.rows[&4], RowChange::Delete);
        assert_eq!(batch.totals, SlotCounts { targeted: 10, sent: 10, ..SlotCounts::default() });
    }

    #[test]
    fn a_retry_set_user_without_a_token_any_more_leaves_the_set_as_skipped() {
        let before = SlotCounts { targeted: 10, sent: 9, retrying: 1, ..SlotCounts::default() };
        let mut progress = SlotProgress::new(10, before);
        progress.skipped(4, true);
        let batch = progress.take_write(Some(Ending::Complete));
        assert_eq!(batch.rows[&4], RowChange::Delete);
        assert_eq!(batch.totals, SlotCounts { targeted: 9, sent: 9, skipped: 1, ..SlotCounts::default() });
        assert!(batch.totals.adds_up());
    }

    #[test]
    fn dead_tokens_are_counted_pruned_and_handed_to_the_prune_log() {
        let mut progress = SlotProgress::new(0, SlotCounts::default());
        take_all(&mut progress, 1..=2);
        progress.resolved(1, dead(1));
        progress.resolved(2, Resolution::Sent);
        let batch = progress.take_write(Some(Ending::Complete));
        assert_eq!(batch.dead.len(), 1);
        assert_eq!(batch.totals.pruned, 1);
    }

    #[test]
    fn skipped_users_above_the_checkpoint_are_counted_once_it_passes_them() {
        let mut progress = SlotProgress::new(0, SlotCounts::default());
        progress.taken(1, false);
        progress.skipped(2, false);
        progress.taken(3, false);
        progress.resolved(1, Resolution::Sent);
        progress.resolved(3, Resolution::Sent);
        assert_eq!(progress.take_write(None).totals.skipped, 0);
        assert_eq!(
            progress.take_write(None).totals,
            SlotCounts { targeted: 2, sent: 2, skipped: 1, ..SlotCounts::default() }
        );
    }

    #[test]
    fn a_complete_run_moves_the_checkpoint_past_the_last_user_read() {
        let mut progress = SlotProgress::new(0, SlotCounts::default());
        progress.taken(1, false);
        progress.resolved(1, Resolution::Sent);
        progress.skipped(7, false);
        assert_eq!(progress.take_write(Some(Ending::Complete)).checkpoint, 7);
    }

    #[test]
    fn a_delivered_answer_is_written_once_the_checkpoint_passes_it() {
        let mut progress = SlotProgress::new(0, SlotCounts::default());
        take_all(&mut progress, 1..=4);
        for user in 1..=3 {
            progress.resolved(user, Resolution::Sent);
        }
        progress.resolved(4, retry("503"));
        progress.take_write(None);
        assert_eq!(progress.take_written(), 0, "above the checkpoint, they wait for the next write");
        progress.take_write(None);
        assert_eq!(progress.take_written(), 3, "an undelivered answer costs nothing to send again");
        assert_eq!(progress.take_written(), 0);
    }

    #[test]
    fn memory_holds_only_what_waits_for_the_checkpoint() {
        let mut progress = SlotProgress::new(0, SlotCounts::default());
        for round in 0..100i64 {
            let first = round * 100 + 1;
            take_all(&mut progress, first..=first + 99);
            for user in first..=first + 99 {
                progress.resolved(user, Resolution::Sent);
            }
            progress.take_write(None);
            assert!(progress.unwritten.len() <= 100 && progress.pending.is_empty());
        }
    }
}
