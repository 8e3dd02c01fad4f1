//! SQL of the delivery ledger: the run journal (`wolley_push_run`, one row per job, slot and
//! shard), the retry set (`wolley_push_retry`) and the lock that keeps one run per job and shard.
//!
//! A running slot is written only through its [`Session`], the connection that holds the run's
//! `GET_LOCK`: a named lock lives exactly as long as its session, so a write that succeeds on
//! that connection proves the lock is still held. Each write also compares the row's `owner`
//! with the run's own id, so a run that lost its slot to another can never overwrite it.

use std::collections::BTreeMap;

use mysql_async::prelude::*;
use mysql_async::{Conn, Params, TxOpts, Value};

use super::{placeholders, qualified_lock_name, values_list, Database, DbError, NamedRow};
use crate::counts::SlotCounts;
use crate::shard::Shard;
use crate::slot::{IsoWeek, RunKey};

/// Rows bound per multi-row statement.
const ROWS_PER_STATEMENT: usize = 500;
/// The longest reason the retry set keeps (its column's width).
const MAX_REASON_CHARS: usize = 255;

/// Where a slot stands, as its journal row says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RunStatus {
    /// A run holds it (or died holding it).
    Running,
    /// Every user reached and the retry set empty.
    Done,
    /// Stopped early or with a retry set: a rerun goes on.
    Partial,
    /// Stopped by an error (or a breaker): a rerun goes on once it is fixed.
    Failed,
}

impl RunStatus {
    /// The status as stored.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Done => "done",
            RunStatus::Partial => "partial",
            RunStatus::Failed => "failed",
        }
    }

    /// A stored status; an unknown word (a newer build's) reads as failed, which is resumed,
    /// never skipped.
    fn parse(stored: &str) -> Self {
        match stored {
            "running" => RunStatus::Running,
            "done" => RunStatus::Done,
            "partial" => RunStatus::Partial,
            _ => RunStatus::Failed,
        }
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A journal row as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RunRow {
    pub job: String,
    pub slot: String,
    /// The shard whose users the row covers.
    pub shard: Shard,
    /// Where the slot stands.
    pub status: RunStatus,
    /// Every user at or below this id is finished or in the retry set.
    pub checkpoint: i64,
    /// The slot's totals over all its runs.
    pub totals: SlotCounts,
    /// The run that holds (or last held) the slot.
    pub owner: Option<String>,
    /// The host of that run.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// How long ago, in the server's clock, it last wrote; `None` before the first write.
    pub heartbeat_age_ms: Option<i64>,
    /// When the last attempt started.
    pub started_at: JournalTime,
    /// When the row last changed.
    pub updated_at: JournalTime,
    /// The error that stopped the last attempt, if any.
    pub error: Option<String>,
}

/// A journal timestamp to the second, in UTC; shown as `2026-11-30T00:10:00Z`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct JournalTime(chrono::NaiveDateTime);

impl JournalTime {
    /// How the journal's reads format it (`DATE_FORMAT`) and how it is shown.
    const FORMAT: &'static str = "%Y-%m-%dT%H:%M:%SZ";
}

impl std::str::FromStr for JournalTime {
    type Err = chrono::ParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        chrono::NaiveDateTime::parse_from_str(text, Self::FORMAT).map(JournalTime)
    }
}

impl std::fmt::Display for JournalTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0.format(Self::FORMAT))
    }
}

impl serde::Serialize for JournalTime {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// The in-flight list as stored: ascending user ids, each written as its distance from the
/// previous one (the first from 0), comma-separated: a few bytes per user.
fn encode_users(users: &[i64]) -> Option<String> {
    let mut text = String::with_capacity(users.len() * 4);
    let mut previous = 0i64;
    for &user in users {
        if !text.is_empty() {
            text.push(',');
        }
        text.push_str(&(user - previous).to_string());
        previous = user;
    }
    (!text.is_empty()).then_some(text)
}

fn decode_users(text: &str) -> Vec<i64> {
    let mut previous = 0i64;
    text.split(',')
        .filter_map(|delta| delta.trim().parse::<i64>().ok())
        .map(|delta| {
            previous += delta;
            previous
        })
        .collect()
}

/// What a retry-set row says about its user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RetryState {
    /// A message was in flight when the row was written; whether it arrived is unknown.
    InFlight,
    /// Not delivered: a rerun must send it.
    Retry,
}

impl RetryState {
    fn as_str(self) -> &'static str {
        match self {
            RetryState::InFlight => "in_flight",
            RetryState::Retry => "retry",
        }
    }
}

/// A change to one user's retry-set row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RowChange {
    /// Create or replace the row.
    Keep {
        state: RetryState,
        /// Why, for the operator.
        reason: String,
    },
    /// The user needs nothing more in this slot.
    Delete,
}

/// A dead token to record in the prune log (applied to `app_user` later, see `db::prune_log`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeadToken {
    pub user_id: i64,
    /// The token exactly as stored in `app_user`.
    pub token: String,
    /// FCM's reason.
    pub reason: &'static str,
}

/// What a delivery records beside the journal for each user it reached, in the same transaction
/// as the checkpoint that covers them: a crash can then resend only what the journal would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Marks {
    /// `stats weekly --notify`: every badge of the week the user holds and was not told of is
    /// now told (`wolley_push_badge_notice`). The notification named exactly those: the week's
    /// runs hold its lock, so no badge appears between the message and its mark.
    BadgeNotices { week: IsoWeek },
}

/// Everything one ledger write makes durable, in one transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct JournalWrite {
    /// The new checkpoint.
    pub checkpoint: i64,
    /// The slot's totals after this write.
    pub totals: SlotCounts,
    /// Retry-set changes by user; the last change of a user wins.
    pub rows: BTreeMap<i64, RowChange>,
    /// Every user at or below the checkpoint whose message is in flight (the whole list).
    pub in_flight: Vec<i64>,
    /// Dead tokens answered since the last write.
    pub dead: Vec<DeadToken>,
    /// What to record for the users delivered to, if anything.
    pub marks: Option<Marks>,
    /// Users delivered to since the last write (collected only with `marks`).
    pub delivered: Vec<i64>,
}

impl JournalWrite {
    /// Folds a later write into this one (used when a write failed and is tried again).
    pub(crate) fn absorb(&mut self, later: JournalWrite) {
        self.checkpoint = later.checkpoint;
        self.totals = later.totals;
        self.rows.extend(later.rows);
        self.in_flight = later.in_flight;
        self.dead.extend(later.dead);
        self.marks = later.marks.or(self.marks);
        self.delivered.extend(later.delivered);
    }
}

/// The end of a run, written with its last journal write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Closing<'a> {
    /// How the run leaves the slot.
    pub status: RunStatus,
    /// The error that stopped the run.
    pub error: Option<&'a str>,
    /// Hold the slot's pending dead tokens back instead of leaving them to be applied: none is
    /// removed, and their users go into the retry set so that a rerun (with the configuration
    /// fixed) sends to them.
    pub hold_dead: bool,
}

/// Whether a write landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Written {
    /// The row is this run's and now holds the batch.
    Done {
        /// Dead tokens held back by [`Closing::hold_dead`].
        held: u64,
    },
    /// Another run owns the row now: nothing was written.
    NotOwner,
}

/// How a run claims its row.
#[derive(Debug, Clone)]
pub(crate) struct Claim<'a> {
    /// The run's id.
    pub owner: &'a str,
    /// This host's name.
    pub host: &'a str,
    /// This process's id on `host`.
    pub pid: u32,
    /// Start the slot over (a forced rerun): totals, checkpoint and retry set cleared.
    pub reset: bool,
}

// Computed columns are aliased for `run_row`; the times under names of their own, so that an
// `ORDER BY started_at` still sorts by the column, not by its text.
const SELECT_ROW: &str =
    "SELECT job, slot, shard, status, checkpoint_user_id, targeted, sent, pruned, failed, \
       retrying, skipped, owner, host, pid, \
       TIMESTAMPDIFF(MICROSECOND, heartbeat_at, UTC_TIMESTAMP(6)) DIV 1000 AS heartbeat_age_ms, \
       DATE_FORMAT(started_at, '%Y-%m-%dT%H:%i:%sZ') AS started_at_text, \
       DATE_FORMAT(updated_at, '%Y-%m-%dT%H:%i:%sZ') AS updated_at_text, error \
     FROM wolley_push_run";

/// Decodes a [`SELECT_ROW`] row by column name.
///
/// # Errors
/// [`DbError::MalformedRow`] when a stored value cannot be what its column holds: a shard that
/// is not `K/N`, a time that is not one.
fn run_row(row: mysql_async::Row) -> Result<RunRow, DbError> {
    let mut row = NamedRow::new(row, "wolley_push_run");
    Ok(RunRow {
        job: row.get("job")?,
        slot: row.get("slot")?,
        shard: row.parse("shard", "shard", "a shard, K/N")?,
        status: RunStatus::parse(&row.get::<String>("status")?),
        checkpoint: row.get("checkpoint_user_id")?,
        totals: SlotCounts {
            targeted: row.get("targeted")?,
            sent: row.get("sent")?,
            pruned: row.get("pruned")?,
            failed: row.get("failed")?,
            retrying: row.get("retrying")?,
            skipped: row.get("skipped")?,
        },
        owner: row.get("owner")?,
        host: row.get("host")?,
        pid: row.get("pid")?,
        heartbeat_age_ms: row.get("heartbeat_age_ms")?,
        started_at: row.parse("started_at_text", "started_at", "a time")?,
        updated_at: row.parse("updated_at_text", "updated_at", "a time")?,
        error: row.get("error")?,
    })
}

// lock_conn is the claiming session's own id: the session that holds the run's lock.
// first_started_at is the slot's first run's start: it stays when a later run resumes the slot.
const CLAIM: &str = "INSERT INTO wolley_push_run \
       (job, slot, shard, status, checkpoint_user_id, owner, host, pid, lock_conn, started_at, \
        first_started_at, updated_at, heartbeat_at) \
     VALUES (:job, :slot, :shard, 'running', 0, :owner, :host, :pid, CONNECTION_ID(), UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), \
       UTC_TIMESTAMP(6), UTC_TIMESTAMP(6)) \
     ON DUPLICATE KEY UPDATE status = 'running', attempts = attempts + 1, owner = VALUES(owner), \
       host = VALUES(host), pid = VALUES(pid), lock_conn = VALUES(lock_conn), started_at = VALUES(started_at), \
       first_started_at = COALESCE(first_started_at, VALUES(started_at)), \
       updated_at = VALUES(updated_at), heartbeat_at = VALUES(heartbeat_at), finished_at = NULL, error = NULL, \
       in_flight = NULL";

// The running row of a job's shard whose lock the session `lock_conn` holds (any slot: the lock
// is the job's and shard's).
const HOLDER_ROW: &str =
    "WHERE job = :job AND shard = :shard AND status = 'running' AND lock_conn = :conn_id \
     ORDER BY started_at DESC LIMIT 1";

const RESET: &str = "UPDATE wolley_push_run SET checkpoint_user_id = 0, targeted = 0, sent = 0, pruned = 0, \
       failed = 0, skipped = 0, expired = 0, retrying = 0, first_started_at = started_at \
     WHERE job = :job AND slot = :slot AND shard = :shard";

// In the server's clock, like the heartbeat: the hosts' clocks do not matter.
const SLOT_AGE: &str = "SELECT TIMESTAMPDIFF(MICROSECOND, first_started_at, UTC_TIMESTAMP(6)) \
     FROM wolley_push_run WHERE job = :job AND slot = :slot AND shard = :shard";

const IN_FLIGHT: &str =
    "SELECT in_flight FROM wolley_push_run WHERE job = :job AND slot = :slot AND shard = :shard FOR UPDATE";

const PROGRESS: &str = "UPDATE wolley_push_run SET checkpoint_user_id = :checkpoint, targeted = :targeted, \
       sent = :sent, pruned = :pruned, failed = :failed, retrying = :retrying, skipped = :skipped, \
       in_flight = :in_flight, heartbeat_at = UTC_TIMESTAMP(6), updated_at = UTC_TIMESTAMP(6) \
     WHERE job = :job AND slot = :slot AND shard = :shard AND owner = :owner";

// A held dead token moves from `pruned` to `retrying`: its user is in the retry set now.
const CLOSE: &str = "UPDATE wolley_push_run SET status = :status, error = :error, pruned = pruned - :held, \
       retrying = retrying + :held, finished_at = UTC_TIMESTAMP(6) \
     WHERE job = :job AND slot = :slot AND shard = :shard AND owner = :owner";

// Held dead tokens (see `Closing::hold_dead`): their users go into the retry set, their log rows
// are marked `held` and stay out of `app_user`'s way.
const HOLD_AS_RETRY: &str =
    "INSERT INTO wolley_push_retry (job, slot, shard, user_id, state, reason, updated_at) \
     SELECT job, slot, shard, user_id, 'retry', CONCAT('held back by the prune breaker (', reason, ')'), \
       UTC_TIMESTAMP(6) \
     FROM wolley_push_prune_log WHERE job = :job AND slot = :slot AND shard = :shard AND state = 'pending' \
     ON DUPLICATE KEY UPDATE state = VALUES(state), reason = VALUES(reason), updated_at = VALUES(updated_at)";

const MARK_HELD: &str = "UPDATE wolley_push_prune_log SET state = 'held' \
     WHERE job = :job AND slot = :slot AND shard = :shard AND state = 'pending'";

const RETRY_PAGE: &str = "SELECT user_id FROM wolley_push_retry \
     WHERE job = :job AND slot = :slot AND shard = :shard AND user_id > :after ORDER BY user_id LIMIT :limit";

pub(super) const RETRY_COUNT: &str =
    "SELECT COUNT(*) FROM wolley_push_retry WHERE job = :job AND slot = :slot AND shard = :shard";

const SLOT_STANDING: &str =
    "SELECT status, checkpoint_user_id FROM wolley_push_run WHERE job = :job AND slot = :slot AND shard = :shard";

const DELETE_RETRY_SET: &str =
    "DELETE FROM wolley_push_retry WHERE job = :job AND slot = :slot AND shard = :shard";

pub(super) fn key_params(key: &RunKey) -> [Value; 3] {
    [key.job.as_str().into(), key.slot.as_str().into(), key.shard.to_string().into()]
}

/// The named parameters of a statement on `key`'s rows (`:job`, `:slot`, `:shard`) and `more`.
pub(super) fn named(key: &RunKey, more: impl IntoIterator<Item = (&'static str, Value)>) -> Params {
    let [job, slot, shard] = key_params(key);
    let mut params = vec![("job", job), ("slot", slot), ("shard", shard)];
    params.extend(more);
    Params::from(params)
}

/// The connection that holds one run's lock, and through which the run writes its row.
pub(crate) struct Session {
    pub(super) conn: Conn,
    lock: String,
    start_lock: Option<String>,
    pub(super) db: Database,
}

/// The answer to asking for a run lock.
pub(crate) enum Locked {
    /// This run holds it.
    Got(Session),
    /// Another session holds it: whose, and whether to wait or end it, is the ledger's call.
    Held(LockWait),
}

/// A connection that asked for a run lock and did not get it: it can find the holder, wait for
/// the lock, or end the holder's session.
pub(crate) struct LockWait {
    conn: Conn,
    lock: String,
    db: Database,
}

impl Database {
    /// A connection of its own holding the lock of `job` on `shard`, or one that can wait for
    /// it when another session holds it.
    pub(crate) async fn lock_session(&self, job: &str, shard: &str) -> Result<Locked, DbError> {
        let fail = |e| self.classify(e, "taking the run lock");
        // A pooled connection goes back to the pool with a reset, which releases its locks:
        // this one is taken out of the pool for the whole run.
        let mut conn = self.conn().await?;
        let lock = qualified_lock_name(&mut conn, &format!("{job}:{shard}")).await.map_err(fail)?;
        let waiting = LockWait { conn, lock, db: self.clone() };
        waiting.wait(std::time::Duration::ZERO).await
    }

    /// The journal rows of one job: its `last` most recent slots, newest first.
    pub(crate) async fn recent_runs(&self, job: &str, last: u32) -> Result<Vec<RunRow>, DbError> {
        let mut conn = self.conn().await?;
        let sql = format!("{SELECT_ROW} WHERE job = ? ORDER BY started_at DESC, shard LIMIT ?");
        let rows: Vec<mysql_async::Row> =
            conn.exec(sql, (job, last)).await.map_err(|e| self.classify(e, "reading the run journal"))?;
        rows.into_iter().map(run_row).collect()
    }

    /// Where one shard's row of a slot stands and its checkpoint, `None` without a row: what a
    /// later delivery that builds on the slot (`path-daily --remind`) needs to know who it reached.
    ///
    /// # Errors
    /// When the database fails or the journal is missing (run `migrate`).
    pub(crate) async fn slot_standing(&self, key: &RunKey) -> Result<Option<(RunStatus, i64)>, DbError> {
        let mut conn = self.conn().await?;
        let row: Option<(String, i64)> = conn
            .exec_first(SLOT_STANDING, named(key, []))
            .await
            .map_err(|e| self.classify(e, "reading the run journal"))?;
        Ok(row.map(|(status, checkpoint)| (RunStatus::parse(&status), checkpoint)))
    }

    /// The jobs the journal has rows of, by name.
    pub(crate) async fn journaled_jobs(&self) -> Result<Vec<String>, DbError> {
        let mut conn = self.conn().await?;
        conn.query("SELECT DISTINCT job FROM wolley_push_run ORDER BY job")
            .await
            .map_err(|e| self.classify(e, "reading the run journal"))
    }

    /// The next page of the retry set of `key`, after `after_user_id`.
    pub(crate) async fn retry_page(
        &self,
        key: &RunKey,
        after_user_id: i64,
        limit: usize,
    ) -> Result<Vec<i64>, DbError> {
        let mut conn = self.conn().await?;
        let page = [("after", after_user_id.into()), ("limit", (limit as u64).into())];
        conn.exec(RETRY_PAGE, named(key, page)).await.map_err(|e| self.classify(e, "reading the retry set"))
    }

    /// Makes a journal write on a connection of the pool, for a run whose session was lost: the owner
    /// check keeps it from writing over a run that has taken the slot over since.
    pub(crate) async fn write_fenced(
        &self,
        key: &RunKey,
        owner: &str,
        batch: &JournalWrite,
        closing: Option<&Closing<'_>>,
    ) -> Result<Written, DbError> {
        let mut conn = self.conn().await?;
        write(&mut conn, key, owner, batch, closing)
            .await
            .map_err(|e| self.classify(e, "writing the run journal"))
    }
}

impl LockWait {
    fn fail(&self, doing: &'static str) -> impl Fn(mysql_async::Error) -> DbError + '_ {
        move |e| self.db.classify(e, doing)
    }

    /// The server connection id of the session holding the lock, `None` once it is free.
    pub(crate) async fn holder(&mut self) -> Result<Option<u64>, DbError> {
        let holder: Option<Option<u64>> = self
            .conn
            .exec_first("SELECT IS_USED_LOCK(?)", (&self.lock,))
            .await
            .map_err(self.fail("finding the run lock's holder"))?;
        Ok(holder.flatten())
    }

    /// The running journal row of `job` on `shard` whose lock the session `conn_id` holds.
    pub(crate) async fn holder_row(
        &mut self,
        job: &str,
        shard: &str,
        conn_id: u64,
    ) -> Result<Option<RunRow>, DbError> {
        let sql = format!("{SELECT_ROW} {HOLDER_ROW}");
        let row: Option<mysql_async::Row> = self
            .conn
            .exec_first(sql, params! { "job" => job, "shard" => shard, "conn_id" => conn_id })
            .await
            .map_err(self.fail("reading the run journal"))?;
        row.map(run_row).transpose()
    }

    /// Waits up to `patience` (whole seconds, rounded up) for the lock: the session holding it
    /// on success, this waiter again when the holder kept it.
    pub(crate) async fn wait(mut self, patience: std::time::Duration) -> Result<Locked, DbError> {
        let seconds = patience.as_secs() + u64::from(patience.subsec_nanos() > 0);
        let got: Option<Option<i64>> = self
            .conn
            .exec_first("SELECT GET_LOCK(?, ?)", (&self.lock, seconds))
            .await
            .map_err(self.fail("taking the run lock"))?;
        if got.flatten() != Some(1) {
            return Ok(Locked::Held(self));
        }
        let LockWait { conn, lock, db } = self;
        Ok(Locked::Got(Session { conn, lock, start_lock: None, db }))
    }

    /// Ends the server session `conn_id` (an orphan whose client is gone): the server frees its
    /// locks at once. Allowed on the same account's sessions; another account's need the
    /// CONNECTION ADMIN (or SUPER) privilege.
    pub(crate) async fn end_session(&mut self, conn_id: u64) -> Result<(), DbError> {
        match self.conn.exec_drop("KILL CONNECTION ?", (conn_id,)).await {
            Ok(()) => Ok(()),
            // Gone in the meantime: what the kill was for.
            Err(mysql_async::Error::Server(e)) if e.code == super::code::NO_SUCH_THREAD => Ok(()),
            Err(e) => Err(self.db.classify(e, "ending the dead run's database session")),
        }
    }

    /// Closes the connection without the lock.
    pub(crate) async fn give_up(self) {
        let _ = self.conn.disconnect().await;
    }
}

impl Session {
    fn fail(&self, doing: &'static str) -> impl Fn(mysql_async::Error) -> DbError + '_ {
        move |e| self.db.classify(e, doing)
    }

    /// Takes the lock that serialises the starts of `job`'s runs (of every shard), so two runs
    /// cannot both see a slot as free; [`Session::end_start`] releases it.
    ///
    /// # Errors
    /// As classified; a start that waits more than 10 s for another is reported as a query error.
    pub(crate) async fn begin_start(&mut self, job: &str) -> Result<(), DbError> {
        let name = qualified_lock_name(&mut self.conn, &format!("start:{job}"))
            .await
            .map_err(self.fail("taking the start lock"))?;
        let got: Option<Option<i64>> = self
            .conn
            .exec_first("SELECT GET_LOCK(?, 10)", (&name,))
            .await
            .map_err(self.fail("taking the start lock"))?;
        if got.flatten() != Some(1) {
            return Err(DbError::Query {
                doing: "taking the start lock",
                url: self.db.url.to_string(),
                reason: format!("another {job} run kept it for 10 s"),
            });
        }
        self.start_lock = Some(name);
        Ok(())
    }

    /// Releases the start lock.
    pub(crate) async fn end_start(&mut self) -> Result<(), DbError> {
        let Some(name) = self.start_lock.take() else { return Ok(()) };
        self.conn
            .exec_drop("DO RELEASE_LOCK(?)", (&name,))
            .await
            .map_err(self.fail("releasing the start lock"))
    }

    /// Every shard's row of one job's slot.
    pub(crate) async fn slot_rows(&mut self, job: &str, slot: &str) -> Result<Vec<RunRow>, DbError> {
        let sql = format!("{SELECT_ROW} WHERE job = ? AND slot = ?");
        let rows: Vec<mysql_async::Row> =
            self.conn.exec(sql, (job, slot)).await.map_err(self.fail("reading the run journal"))?;
        rows.into_iter().map(run_row).collect()
    }

    /// Marks the row running for this run, creating it if needed.
    pub(crate) async fn claim(&mut self, key: &RunKey, claim: &Claim<'_>) -> Result<(), DbError> {
        let fail = self.db.clone();
        let fail = |e| fail.classify(e, "writing the run journal");
        let mut tx = self.conn.start_transaction(TxOpts::default()).await.map_err(fail)?;
        // What was in flight when the last run stopped joins the retry set: whether it arrived
        // is unknown, so it is sent again (the bounded resend after a crash).
        let listed: Option<Option<String>> = tx.exec_first(IN_FLIGHT, named(key, [])).await.map_err(fail)?;
        let listed = listed.flatten().map(|text| decode_users(&text)).unwrap_or_default();
        if !listed.is_empty() && !claim.reset {
            let reason = "in flight when its run stopped: it may have been delivered".to_owned();
            let rows: BTreeMap<i64, RowChange> = listed
                .into_iter()
                .map(|user| (user, RowChange::Keep { state: RetryState::InFlight, reason: reason.clone() }))
                .collect();
            let [job, slot, shard] = key_params(key);
            write_row_changes(&mut tx, [&job, &slot, &shard], &rows).await.map_err(fail)?;
        }
        let run = [("owner", claim.owner.into()), ("host", claim.host.into()), ("pid", claim.pid.into())];
        tx.exec_drop(CLAIM, named(key, run)).await.map_err(fail)?;
        if claim.reset {
            tx.exec_drop(RESET, named(key, [])).await.map_err(fail)?;
            tx.exec_drop(DELETE_RETRY_SET, named(key, [])).await.map_err(fail)?;
        }
        tx.commit().await.map_err(fail)
    }

    /// How long ago the slot's first run started (zero if the row says nothing).
    pub(crate) async fn slot_age(&mut self, key: &RunKey) -> Result<std::time::Duration, DbError> {
        let micros: Option<Option<i64>> = self
            .conn
            .exec_first(SLOT_AGE, named(key, []))
            .await
            .map_err(self.fail("reading the run journal"))?;
        let micros = micros.flatten().unwrap_or(0).max(0);
        Ok(std::time::Duration::from_micros(micros.unsigned_abs()))
    }

    /// The size of the retry set of `key`.
    pub(crate) async fn retry_count(&mut self, key: &RunKey) -> Result<u64, DbError> {
        let count: Option<u64> = self
            .conn
            .exec_first(RETRY_COUNT, named(key, []))
            .await
            .map_err(self.fail("reading the retry set"))?;
        Ok(count.unwrap_or(0))
    }

    /// Makes `batch` durable (and with `closing`, ends the run), if the row is still this run's.
    pub(crate) async fn write(
        &mut self,
        key: &RunKey,
        owner: &str,
        batch: &JournalWrite,
        closing: Option<&Closing<'_>>,
    ) -> Result<Written, DbError> {
        let db = self.db.clone();
        write(&mut self.conn, key, owner, batch, closing)
            .await
            .map_err(|e| db.classify(e, "writing the run journal"))
    }

    /// The database this session belongs to.
    pub(crate) fn database(&self) -> &Database {
        &self.db
    }

    /// Releases the lock and closes the connection.
    pub(crate) async fn release(mut self) {
        if let Err(error) = self.conn.exec_drop("DO RELEASE_LOCK(?)", (self.lock.as_str(),)).await {
            tracing::warn!(lock = %self.lock, "could not release the run lock ({error}); the server frees it on disconnect");
        }
        let _ = self.conn.disconnect().await;
    }
}

/// One transaction: the owner-checked update of the run's row first (it also locks the row, so
/// a run taking the slot over waits for this one to commit), then the retry set and prune log.
async fn write(
    conn: &mut Conn,
    key: &RunKey,
    owner: &str,
    batch: &JournalWrite,
    closing: Option<&Closing<'_>>,
) -> mysql_async::Result<Written> {
    let mut tx = conn.start_transaction(TxOpts::default()).await?;
    if !write_progress(&mut tx, key, owner, batch).await? {
        tx.rollback().await?;
        return Ok(Written::NotOwner);
    }
    let [job, slot, shard] = key_params(key);
    write_row_changes(&mut tx, [&job, &slot, &shard], &batch.rows).await?;
    write_dead_tokens(&mut tx, [&job, &slot, &shard], &batch.dead).await?;
    if let Some(marks) = batch.marks {
        write_marks(&mut tx, marks, &slot, &batch.delivered).await?;
    }
    let held = match closing {
        Some(closing) => write_closing(&mut tx, key, owner, closing).await?,
        None => 0,
    };
    tx.commit().await?;
    Ok(Written::Done { held })
}

/// The run's row takes the batch's checkpoint, totals and in-flight list, if `owner` still owns
/// it: whether it did.
async fn write_progress(
    tx: &mut mysql_async::Transaction<'_>,
    key: &RunKey,
    owner: &str,
    batch: &JournalWrite,
) -> mysql_async::Result<bool> {
    let t = &batch.totals;
    let progress = [
        ("checkpoint", batch.checkpoint.into()),
        ("targeted", t.targeted.into()),
        ("sent", t.sent.into()),
        ("pruned", t.pruned.into()),
        ("failed", t.failed.into()),
        ("retrying", t.retrying.into()),
        ("skipped", t.skipped.into()),
        ("in_flight", encode_users(&batch.in_flight).into()),
        ("owner", owner.into()),
    ];
    tx.exec_drop(PROGRESS, named(key, progress)).await?;
    // heartbeat_at changes on every write, so the row counts as affected whenever it matched.
    Ok(tx.affected_rows() > 0)
}

/// Ends the run in its row (after holding the slot's dead tokens back, if asked): how many
/// dead tokens were held.
async fn write_closing(
    tx: &mut mysql_async::Transaction<'_>,
    key: &RunKey,
    owner: &str,
    closing: &Closing<'_>,
) -> mysql_async::Result<u64> {
    let mut held = 0;
    if closing.hold_dead {
        tx.exec_drop(HOLD_AS_RETRY, named(key, [])).await?;
        tx.exec_drop(MARK_HELD, named(key, [])).await?;
        held = tx.affected_rows();
    }
    let end = [
        ("status", closing.status.as_str().into()),
        ("error", closing.error.into()),
        ("held", held.into()),
        ("owner", owner.into()),
    ];
    tx.exec_drop(CLOSE, named(key, end)).await?;
    Ok(held)
}

/// Records [`Marks`] for `delivered`, in the journal write's transaction. `IGNORE`: a badge told
/// before (a resend after a crash) keeps its first notice.
async fn write_marks(
    tx: &mut mysql_async::Transaction<'_>,
    marks: Marks,
    slot: &Value,
    delivered: &[i64],
) -> mysql_async::Result<()> {
    let Marks::BadgeNotices { week } = marks;
    for chunk in delivered.chunks(ROWS_PER_STATEMENT) {
        let users = placeholders(chunk.len());
        let sql = format!(
            "INSERT IGNORE INTO wolley_push_badge_notice (week, user_id, badge, notified_at, slot) \
             SELECT r.week, r.user_id, r.badge, UTC_TIMESTAMP(6), ? FROM wolley_push_user_badge_gen r \
             JOIN wolley_push_weekly_published p ON p.week = r.week AND p.generation = r.generation \
             WHERE r.week = ? AND r.user_id IN ({users})"
        );
        let mut params: Vec<Value> = vec![slot.clone(), week.to_string().into()];
        params.extend(chunk.iter().map(|&user| Value::from(user)));
        tx.exec_drop(sql, params).await?;
    }
    Ok(())
}

async fn write_row_changes(
    tx: &mut mysql_async::Transaction<'_>,
    key: [&Value; 3],
    rows: &BTreeMap<i64, RowChange>,
) -> mysql_async::Result<()> {
    let kept: Vec<(i64, RetryState, &str)> = rows
        .iter()
        .filter_map(|(&user, change)| match change {
            RowChange::Keep { state, reason } => Some((user, *state, reason.as_str())),
            RowChange::Delete => None,
        })
        .collect();
    for chunk in kept.chunks(ROWS_PER_STATEMENT) {
        let (values, params) = run_rows(key, chunk, "UTC_TIMESTAMP(6)", |&(user, state, reason)| {
            [user.into(), state.as_str().into(), truncated(reason, MAX_REASON_CHARS).into()]
        });
        let sql = format!(
            "INSERT INTO wolley_push_retry (job, slot, shard, user_id, state, reason, updated_at) VALUES {values} \
             ON DUPLICATE KEY UPDATE state = VALUES(state), reason = VALUES(reason), updated_at = VALUES(updated_at)"
        );
        tx.exec_drop(sql, params).await?;
    }
    let deleted: Vec<i64> =
        rows.iter().filter(|(_, change)| **change == RowChange::Delete).map(|(&user, _)| user).collect();
    for chunk in deleted.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "DELETE FROM wolley_push_retry WHERE job = ? AND slot = ? AND shard = ? AND user_id IN ({})",
            placeholders(chunk.len())
        );
        let mut params: Vec<Value> = vec![key[0].clone(), key[1].clone(), key[2].clone()];
        params.extend(chunk.iter().map(|&user| Value::from(user)));
        tx.exec_drop(sql, params).await?;
    }
    Ok(())
}

/// Recorded as pending: nothing leaves `app_user` until the run's share of dead tokens is known
/// (`db::prune_log`). A user answered dead again (a resend after a crash) keeps one row.
async fn write_dead_tokens(
    tx: &mut mysql_async::Transaction<'_>,
    key: [&Value; 3],
    dead: &[DeadToken],
) -> mysql_async::Result<()> {
    for chunk in dead.chunks(ROWS_PER_STATEMENT) {
        let (values, params) = run_rows(key, chunk, "'pending', UTC_TIMESTAMP(6)", |token| {
            [token.user_id.into(), Value::Bytes(token.token.as_bytes().to_vec()), token.reason.into()]
        });
        let sql = format!(
            "INSERT INTO wolley_push_prune_log (job, slot, shard, user_id, token, reason, state, recorded_at) \
             VALUES {values} ON DUPLICATE KEY UPDATE token = VALUES(token), reason = VALUES(reason), \
             state = 'pending', recorded_at = VALUES(recorded_at), applied_at = NULL, restored_at = NULL"
        );
        tx.exec_drop(sql, params).await?;
    }
    Ok(())
}

/// The `VALUES` list and the flat parameters of a multi-row insert of one run's rows: each row
/// binds the run's key (`job, slot, shard`) and the three values `row` gives, then has `tail`,
/// the SQL the rows share (e.g. `UTC_TIMESTAMP(6)`). Positional, as [`placeholders`] says: the
/// number of rows varies, and a name cannot stand for the n-th row's value.
fn run_rows<T>(
    key: [&Value; 3],
    rows: &[T],
    tail: &str,
    row: impl Fn(&T) -> [Value; 3],
) -> (String, Vec<Value>) {
    let values = values_list(&format!("(?, ?, ?, ?, ?, ?, {tail})"), rows.len());
    let mut params = Vec::with_capacity(rows.len() * 6);
    for each in rows {
        params.extend(key.map(Value::clone));
        params.extend(row(each));
    }
    (values, params)
}

fn truncated(text: &str, chars: usize) -> &str {
    text.char_indices().nth(chars).map_or(text, |(end, _)| &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_later_batch_wins_for_each_user_and_adds_its_dead_tokens() {
        let mut first = JournalWrite { checkpoint: 10, ..JournalWrite::default() };
        first.rows.insert(3, RowChange::Keep { state: RetryState::InFlight, reason: "in flight".into() });
        first.dead.push(DeadToken { user_id: 4, token: "t4".into(), reason: "UNREGISTERED" });
        let mut later = JournalWrite { checkpoint: 20, ..JournalWrite::default() };
        later.rows.insert(3, RowChange::Delete);
        later.dead.push(DeadToken { user_id: 12, token: "t12".into(), reason: "UNREGISTERED" });
        first.absorb(later);
        assert_eq!(first.checkpoint, 20);
        assert_eq!(first.rows[&3], RowChange::Delete);
        assert_eq!(first.dead.len(), 2);
    }

    #[test]
    fn the_in_flight_list_is_stored_as_distances_and_read_back() {
        let users = vec![1005, 1008, 1009, 1021, 9_000_000_000];
        let text = encode_users(&users).unwrap();
        assert!(text.starts_with("1005,3,1,12,"), "{text}");
        assert_eq!(decode_users(&text), users);
        assert_eq!(encode_users(&[]), None);
    }

    #[test]
    fn a_journal_time_reads_back_as_it_was_stored_and_anything_else_is_refused() {
        let time: JournalTime = "2026-11-30T00:10:00Z".parse().unwrap();
        assert_eq!(time.to_string(), "2026-11-30T00:10:00Z");
        assert_eq!(serde_json::to_string(&time).unwrap(), "\"2026-11-30T00:10:00Z\"");
        assert!("2026-11-30 00:10:00".parse::<JournalTime>().is_err());
        assert!("".parse::<JournalTime>().is_err());
    }

    #[test]
    fn reasons_are_cut_to_the_column_width_on_a_character_boundary() {
        assert_eq!(truncated("일주일", 2), "일주");
        assert_eq!(truncated("short", 255), "short");
    }
}
