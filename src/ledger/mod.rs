//! The delivery ledger: each scheduled slot happens once and completely, under crashes, lost
//! databases, FCM failures and concurrent runs. It owns everything a slot's runs share: the lock,
//! the journal row (status, totals, checkpoint, owner and heartbeat), the retry set and the dead
//! tokens waiting to be pruned.
//!
//! - **Start** ([`Ledger::open`]): one run per job and shard (a MariaDB `GET_LOCK` on a
//!   connection of its own); the slot's rows are read and claimed under a second, short lock, so
//!   two runs of one job never both take a slot. A done slot is skipped, one sent with another
//!   shard layout refused, one whose owner is still alive left to it.
//! - **While sending** ([`Recorder`], [`Ledger::start`]): the sender reports every user taken and
//!   answered; every [`FLUSH_EVERY`] the ledger writes what it learnt through the lock's own
//!   connection (see [`progress`] for what a crash can cost). A write that fails or takes longer
//!   than [`WRITE_TIMEOUT`] stops the run: nothing is sent without a durable record.
//! - **End** ([`Ledger::finish`]): the last journal write, the prune breaker's verdict on the
//!   slot's dead tokens (applied or held back), the status, the lock released.
//!
//! Fencing: a write succeeds only on the connection that holds the lock and only while the row's
//! `owner` is this run's id; a run that lost its lock stops within a write interval. A new run
//! does not take over a `running` row whose owner is alive: on the same host, a live process of
//! the same program with the row's pid; elsewhere, a heartbeat younger than [`LEASE`].

pub(crate) mod progress;
mod takeover;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::breaker::{self, PrunePolicy, Tripped};
use crate::counts::SlotCounts;
use crate::db::ledger::{Claim, Closing, JournalWrite, Locked, Marks, RunRow, RunStatus, Session, Written};
use crate::db::{Database, DbError};
use crate::exit::ExitCode;
use crate::slot::RunKey;
use crate::spread::SlotClock;
use crate::stop::{Hold, RunStop, SendGate, StopReason};
use crate::timeout::within;

use progress::SlotProgress;
pub(crate) use progress::{Ending, Resolution};
use takeover::{Holder, Resolved};

/// How often a running slot writes what it learnt (and with it, its heartbeat).
pub(crate) const FLUSH_EVERY: Duration = Duration::from_millis(40);
/// A write unanswered this long holds new sends until it lands: nothing goes out without a
/// durable record for longer than about this.
const MAX_UNRECORDED: Duration = Duration::from_secs(1);
/// At most this many delivered answers wait for a committed write: past it, new sends are held
/// until the journal catches up. A crash (kill -9, power loss) therefore sends again at most the
/// requests in flight (`--concurrency`) plus this many, however slow the machine or its disk.
pub(crate) const MAX_UNRECORDED_ANSWERS: usize = 1000;
/// From this many unrecorded answers on, the journal is written at once rather than at the next
/// tick, so a fast run reaches [`MAX_UNRECORDED_ANSWERS`] only when its writes are slow.
const WRITE_EARLY_AT: usize = MAX_UNRECORDED_ANSWERS / 4;
/// A write that takes longer means the database is gone: the run stops. (A busy server's
/// commit can take a second; one that takes five is not coming back soon.)
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// A `running` row whose heartbeat is younger belongs to a live run on another host.
pub(crate) const LEASE: Duration = Duration::from_secs(10);
/// How long a run that lost its database keeps trying to record how it ended.
const LAST_RECORD_PATIENCE: Duration = Duration::from_secs(5);
/// Prune-log rows are kept this long, for `tokens restore`.
pub(crate) const PRUNE_LOG_DAYS: u32 = 90;

/// Why the ledger stopped or refused a run.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The slot is being (or was) sent with another shard layout.
    #[error(
        "{key} was started with {layout} ({rows}); a slot keeps the shard layout it started with: \
         run its shards with --shard K/{count}, or send another --slot"
    )]
    LayoutInUse {
        /// This run's slot.
        key: RunKey,
        /// `2 shards`, `no shards`.
        layout: String,
        /// Each existing shard's status.
        rows: String,
        /// N of the layout in use.
        count: u32,
    },
    /// The slot's row belongs to a run that is still alive (it lost its lock, and stops by itself).
    #[error(
        "{key} belongs to a run that is still alive (host {host}, pid {pid}, last heartbeat {heartbeat}) \
         but no longer holds the lock; it stops within a second of noticing: run again in a minute"
    )]
    OwnerAlive {
        key: RunKey,
        /// The owner's host.
        host: String,
        /// The owner's pid.
        pid: u32,
        /// How long ago it wrote.
        heartbeat: String,
    },
    /// The lock is held by a session that is not provably a live run, and it could not be
    /// taken over within the takeover's bounds.
    #[error(
        "the lock of {key} is held by database session {session}, which could not be taken over ({reason}); \
         the slot is not done: run again in a minute, and if this repeats, check `wolley-push runs` and \
         end that session as a database administrator (KILL CONNECTION {session}) if no wolley-push run is going"
    )]
    LockStuck {
        key: RunKey,
        /// The holder's server connection id.
        session: u64,
        /// Why it could not be taken over.
        reason: String,
    },
    /// Another run took the slot over while this one was running.
    #[error("{key} was taken over by another run while this one was sending; this run stopped without recording its end")]
    Superseded { key: RunKey },
    /// The journal could not be written: the run stopped.
    #[error(
        "lost the database while sending {key} ({source}); the run stopped taking tokens at once; \
         a rerun resends only what was in flight or answered in the last moment"
    )]
    Lost { key: RunKey, source: Box<DbError> },
    /// The prune breaker held the slot's dead tokens back.
    #[error("pruning held back for {key}: {tripped}")]
    PruneBreaker {
        key: RunKey,
        /// The breaker's verdict.
        tripped: Tripped,
    },
    /// A statement before sending failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl LedgerError {
    /// Temporary for losses and live owners; configuration for layouts and the breaker.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            LedgerError::LayoutInUse { .. } | LedgerError::PruneBreaker { .. } => ExitCode::Config,
            LedgerError::OwnerAlive { .. }
            | LedgerError::LockStuck { .. }
            | LedgerError::Superseded { .. }
            | LedgerError::Lost { .. } => ExitCode::TempFail,
            LedgerError::Db(error) => error.exit_code(),
        }
    }
}

/// How a run treats its slot.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Settings {
    /// Send a done slot again.
    pub force: bool,
    /// How careful pruning is.
    pub prune: PrunePolicy,
    /// What the slot records for each user it delivers to, beside the journal.
    pub marks: Option<Marks>,
}

/// What opening the ledger found.
pub(crate) enum Opened {
    /// Go ahead.
    Run(Box<Ledger>),
    /// The slot is done (in this layout or, completely, in another).
    Done {
        /// When it finished, or which layout did it.
        detail: String,
    },
    /// Another run holds the job's lock for this shard, and it is alive.
    LockHeld {
        /// Who, as far as the journal knows.
        holder: String,
    },
}

/// Where the run starts: the retry set, then the users above the checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resume {
    pub key: RunKey,
    /// Every user at or below this id is finished or in the retry set.
    pub checkpoint: i64,
    /// How many users the retry set holds.
    pub retry_set: u64,
    /// How far the slot is into its delivery window (`path-daily --spread`).
    pub clock: SlotClock,
}

/// The sender's handle on the ledger: cheap to clone, reports go to memory only.
#[derive(Clone)]
pub(crate) struct Recorder {
    progress: Arc<Mutex<SlotProgress>>,
    gate: SendGate,
}

impl Recorder {
    fn progress(&self) -> MutexGuard<'_, SlotProgress> {
        self.progress.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The gate the engine passes before each request (closed while a write is overdue).
    pub(crate) fn gate(&self) -> SendGate {
        self.gate.clone()
    }

    /// `user_id` was handed to the sender.
    pub(crate) fn taken(&self, user_id: i64, in_retry_set: bool) {
        self.progress().taken(user_id, in_retry_set);
    }

    /// `user_id` was read and is not sent.
    pub(crate) fn skipped(&self, user_id: i64, in_retry_set: bool) {
        self.progress().skipped(user_id, in_retry_set);
    }

    /// `user_id`'s message is answered.
    pub(crate) fn resolved(&self, user_id: i64, resolution: Resolution) {
        self.progress().resolved(user_id, resolution);
    }
}

/// How a slot's run ended, as the ledger recorded it.
#[derive(Debug, Clone)]
pub(crate) struct Finished {
    /// The slot's totals.
    pub totals: SlotCounts,
    /// The breaker's verdict, when it held the dead tokens back.
    pub tripped: Option<Tripped>,
}

enum FlushEnd {
    Alive(Session),
    Lost { unwritten: Option<JournalWrite>, error: LedgerError },
}

struct Flusher {
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<FlushEnd>,
}

/// One run's hold on its slot.
pub(crate) struct Ledger {
    key: RunKey,
    owner: String,
    db: Database,
    session: Option<Session>,
    flusher: Option<Flusher>,
    progress: Arc<Mutex<SlotProgress>>,
    gate: SendGate,
    resume: Resume,
    prune: PrunePolicy,
}

/// This process, as the journal names it.
struct Me {
    host: String,
    pid: u32,
}

impl Me {
    fn now() -> Self {
        Me { host: hostname(), pid: std::process::id() }
    }
}

/// This machine's name, for the journal and the lock's "held by" line.
pub(crate) fn hostname() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// What the rows of a slot say about starting it.
#[derive(Debug, PartialEq)]
enum SlotState {
    Fresh,
    Resume(Box<RunRow>),
    Reset,
    Done(String),
}

impl Ledger {
    /// Takes the lock of the key's job and shard (from a dead holder too, see [`takeover`]),
    /// then the slot.
    ///
    /// # Errors
    /// [`LedgerError::LayoutInUse`], [`LedgerError::OwnerAlive`], [`LedgerError::LockStuck`],
    /// database errors.
    pub(crate) async fn open(db: &Database, key: RunKey, settings: Settings) -> Result<Opened, LedgerError> {
        let me = Me::now();
        let mut session = match db.lock_session(&key.job, &key.shard.to_string()).await? {
            Locked::Got(session) => session,
            Locked::Held(waiting) => match takeover::resolve(waiting, &key, &me).await? {
                Resolved::Taken(session) => session,
                Resolved::Alive(holder) => return Ok(Opened::LockHeld { holder }),
            },
        };
        let owner = format!("{:032x}", rand::random::<u128>());
        let (checkpoint, totals) = match claim(&mut session, &key, &owner, &me, settings.force).await {
            Ok(state) => state,
            Err(claimed) => {
                session.release().await;
                return match claimed {
                    Claimed::Done(detail) => Ok(Opened::Done { detail }),
                    Claimed::Refused(error) => Err(error),
                };
            }
        };
        let retry_set = session.retry_count(&key).await?;
        let totals = SlotCounts { retrying: retry_set, ..totals };
        let elapsed = session.slot_age(&key).await?;
        // The retry set is sent again, so it counts as left to send, not finished.
        let clock = SlotClock { elapsed, finished: totals.targeted.saturating_sub(retry_set) };
        let resume = Resume { key: key.clone(), checkpoint, retry_set, clock };
        let progress = Arc::new(Mutex::new(SlotProgress::new(checkpoint, totals).with_marks(settings.marks)));
        Ok(Opened::Run(Box::new(Ledger {
            key,
            owner,
            db: db.clone(),
            session: Some(session),
            flusher: None,
            progress,
            gate: SendGate::with_backlog(MAX_UNRECORDED_ANSWERS, WRITE_EARLY_AT),
            resume,
            prune: settings.prune,
        })))
    }

    /// Where the run starts.
    pub(crate) fn resume(&self) -> &Resume {
        &self.resume
    }

    /// The handle the sender reports to.
    pub(crate) fn recorder(&self) -> Recorder {
        Recorder { progress: self.progress.clone(), gate: self.gate.clone() }
    }

    /// Starts writing progress every [`FLUSH_EVERY`]; a failed write stops the run through `stop`.
    pub(crate) fn start(&mut self, stop: RunStop) {
        let Some(session) = self.session.take() else { return };
        let (shutdown, stopping) = oneshot::channel();
        let task = tokio::spawn(flush_loop(
            session,
            self.key.clone(),
            self.owner.clone(),
            self.recorder(),
            stop,
            stopping,
        ));
        self.flusher = Some(Flusher { shutdown, task });
    }

    /// Records the run's end: the last journal write, the breaker's verdict on the dead tokens
    /// (applied to `app_user` or held back), and the status; then releases the lock.
    ///
    /// # Errors
    /// [`LedgerError::Lost`] when the end could not be recorded, [`LedgerError::Superseded`].
    pub(crate) async fn finish(
        mut self,
        ending: Ending,
        failure: Option<&str>,
    ) -> Result<Finished, LedgerError> {
        let flushed = match self.flusher.take() {
            Some(Flusher { shutdown, task }) => {
                let _ = shutdown.send(());
                task.await.unwrap_or_else(|e| FlushEnd::Lost {
                    unwritten: None,
                    error: LedgerError::Lost {
                        key: self.key.clone(),
                        source: Box::new(internal(&self.db, e.to_string())),
                    },
                })
            }
            None => match self.session.take() {
                Some(session) => FlushEnd::Alive(session),
                None => unreachable!("a ledger has a session or a flusher"),
            },
        };
        let last = self.lock_progress().take_write(Some(ending));
        match flushed {
            FlushEnd::Alive(session) => self.close(session, last, ending, failure).await,
            FlushEnd::Lost { unwritten, error } => {
                let batch = match unwritten {
                    Some(mut earlier) => {
                        earlier.absorb(last);
                        earlier
                    }
                    None => last,
                };
                if !matches!(error, LedgerError::Superseded { .. }) {
                    self.record_after_loss(&batch, &error).await;
                }
                Err(error)
            }
        }
    }

    fn lock_progress(&self) -> MutexGuard<'_, SlotProgress> {
        self.progress.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn close(
        &self,
        mut session: Session,
        last: JournalWrite,
        ending: Ending,
        failure: Option<&str>,
    ) -> Result<Finished, LedgerError> {
        let result = self.close_on(&mut session, last.clone(), ending, failure).await;
        match result {
            Ok(finished) => {
                session.release().await;
                self.trim_old_rows().await;
                Ok(finished)
            }
            Err(LedgerError::Db(source)) => {
                drop(session);
                let error = LedgerError::Lost { key: self.key.clone(), source: Box::new(source) };
                self.record_after_loss(&last, &error).await;
                Err(error)
            }
            Err(error) => {
                session.release().await;
                Err(error)
            }
        }
    }

    async fn close_on(
        &self,
        session: &mut Session,
        last: JournalWrite,
        ending: Ending,
        failure: Option<&str>,
    ) -> Result<Finished, LedgerError> {
        let written = timed(session.write(&self.key, &self.owner, &last, None), &self.db).await?;
        if written == Written::NotOwner {
            return Err(LedgerError::Superseded { key: self.key.clone() });
        }
        let pending = timed(session.pending_dead(&self.key), &self.db).await?;
        let tripped = breaker::judge(&self.prune, &last.totals, &pending);
        if tripped.is_none() && !pending.is_empty() {
            // Not timed: it may have many rows to clear, each a statement of its own.
            match session.apply_pending_prunes(&self.key).await {
                Ok(applied) => {
                    tracing::info!(cleared = applied.changed, left = applied.left, "pruned dead tokens")
                }
                // The tokens stay pending; the slot's next run applies them.
                Err(error) => tracing::warn!("could not prune the dead tokens yet: {error}"),
            }
        }
        let status = match (failure, &tripped, ending) {
            (Some(_), _, _) | (_, Some(_), _) => RunStatus::Failed,
            (None, None, Ending::Complete) if last.totals.retrying == 0 => RunStatus::Done,
            _ => RunStatus::Partial,
        };
        let error = failure
            .map(str::to_owned)
            .or_else(|| tripped.as_ref().map(|t| format!("pruning held back: {t}")));
        let closing = Closing { status, error: error.as_deref(), hold_dead: tripped.is_some() };
        let end =
            JournalWrite { checkpoint: last.checkpoint, totals: last.totals, ..JournalWrite::default() };
        let held = match timed(session.write(&self.key, &self.owner, &end, Some(&closing)), &self.db).await? {
            Written::Done { held } => held,
            Written::NotOwner => return Err(LedgerError::Superseded { key: self.key.clone() }),
        };
        let totals = SlotCounts {
            pruned: last.totals.pruned - held,
            retrying: last.totals.retrying + held,
            ..last.totals
        };
        tracing::debug!(%status, "recorded the end of the run");
        Ok(Finished { totals, tripped })
    }

    /// The session is gone: record the end on a new connection, owner-checked, while the
    /// database lets us (a rerun then resumes exactly); give up after a few seconds.
    async fn record_after_loss(&self, batch: &JournalWrite, error: &LedgerError) {
        let message = error.to_string();
        let closing = Closing { status: RunStatus::Failed, error: Some(&message), hold_dead: false };
        let give_up = tokio::time::Instant::now() + LAST_RECORD_PATIENCE;
        let mut pause = Duration::from_millis(100);
        loop {
            let attempt = self.db.write_fenced(&self.key, &self.owner, batch, Some(&closing));
            match tokio::time::timeout(WRITE_TIMEOUT, attempt).await {
                Ok(Ok(Written::Done { .. })) => {
                    tracing::info!("recorded where the run stopped; a rerun resumes from there");
                    return;
                }
                Ok(Ok(Written::NotOwner)) => {
                    tracing::warn!("another run has taken the slot over: not recording this run's end");
                    return;
                }
                Ok(Err(_)) | Err(_) if tokio::time::Instant::now() + pause < give_up => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                Ok(Err(_)) | Err(_) => {
                    tracing::warn!(
                        "could not record where the run stopped; a rerun resumes from the last progress written"
                    );
                    return;
                }
            }
        }
    }

    /// Keeps wolley-push's own tables from growing without end; failures only warn.
    async fn trim_old_rows(&self) {
        if let Err(error) = self.db.purge_prune_log(PRUNE_LOG_DAYS).await {
            tracing::warn!("could not trim the prune log: {error}");
        }
    }
}

enum Claimed {
    Done(String),
    Refused(LedgerError),
}

impl From<DbError> for Claimed {
    fn from(error: DbError) -> Self {
        Claimed::Refused(LedgerError::Db(error))
    }
}

/// Reads the slot's rows and claims this run's, under the start lock: where to start.
async fn claim(
    session: &mut Session,
    key: &RunKey,
    owner: &str,
    me: &Me,
    force: bool,
) -> Result<(i64, SlotCounts), Claimed> {
    session.begin_start(&key.job).await?;
    let claimed = async {
        let rows = session.slot_rows(&key.job, &key.slot).await?;
        let start = decide(key, &rows, force, me).map_err(Claimed::Refused)?;
        let state = match &start {
            SlotState::Done(detail) => return Err(Claimed::Done(detail.clone())),
            SlotState::Fresh | SlotState::Reset => (0, SlotCounts::default()),
            SlotState::Resume(row) => {
                tracing::info!(
                    checkpoint = row.checkpoint,
                    previous = %row.status,
                    host = %row.host,
                    pid = row.pid,
                    "resuming an unfinished run of this slot"
                );
                (row.checkpoint, row.totals)
            }
        };
        let claim = Claim { owner, host: &me.host, pid: me.pid, reset: start == SlotState::Reset };
        session.claim(key, &claim).await?;
        Ok(state)
    }
    .await;
    let released = session.end_start().await;
    let state = claimed?;
    released?;
    Ok(state)
}

/// The start rules, on the slot's rows of every shard.
fn decide(key: &RunKey, rows: &[RunRow], force: bool, me: &Me) -> Result<SlotState, LedgerError> {
    let others: Vec<&RunRow> = rows.iter().filter(|row| row.shard.count != key.shard.count).collect();
    if let Some(first) = others.first() {
        let count = first.shard.count;
        let done = others.iter().filter(|row| row.status == RunStatus::Done).count();
        let in_layout = others.iter().filter(|row| row.shard.count == count).count();
        if !force && done == others.len() && in_layout as u32 == count && others.len() as u32 == count {
            return Ok(SlotState::Done(format!("it was sent completely with {}", layout_name(count))));
        }
        let rows =
            others.iter().map(|row| format!("{} {}", row.shard, row.status)).collect::<Vec<_>>().join(", ");
        return Err(LedgerError::LayoutInUse { key: key.clone(), layout: layout_name(count), rows, count });
    }
    let mine = rows.iter().find(|row| row.shard == key.shard);
    Ok(match mine {
        None => SlotState::Fresh,
        Some(row) if row.status == RunStatus::Done && !force => {
            SlotState::Done(format!("finished {}", row.updated_at))
        }
        Some(row) if row.status == RunStatus::Done => SlotState::Reset,
        Some(row) if row.status == RunStatus::Running && owner_alive(row, me) => {
            let heartbeat =
                row.heartbeat_age_ms.map_or("never".into(), |ms| format!("{:.1} s ago", ms as f64 / 1000.0));
            return Err(LedgerError::OwnerAlive {
                key: key.clone(),
                host: row.host.clone(),
                pid: row.pid,
                heartbeat,
            });
        }
        Some(row) => SlotState::Resume(Box::new(row.clone())),
    })
}

fn layout_name(count: u32) -> String {
    match count {
        1 => "no shards".to_owned(),
        n => format!("{n} shards"),
    }
}

/// Whether the run recorded in a `running` row may still be sending.
fn owner_alive(row: &RunRow, me: &Me) -> bool {
    takeover::judge(row, me) != Holder::Dead
}

fn heartbeat_fresh(row: &RunRow) -> bool {
    row.heartbeat_age_ms.is_some_and(|age| age >= 0 && (age as u128) < LEASE.as_millis())
}

/// Whether `pid` is a live (not zombie) process of the same program as this one; `None` where
/// `/proc` cannot tell.
fn same_program_running(pid: u32) -> Option<bool> {
    let own = std::fs::read_to_string("/proc/self/stat").ok()?;
    let (own_name, _) = program_and_state(&own)?;
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let (name, state) = program_and_state(&stat)?;
            Some(name == own_name && !matches!(state, 'Z' | 'X' | 'x'))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Some(false),
        Err(_) => None,
    }
}

/// `(comm, state)` of a `/proc/PID/stat` line: `pid (comm) S ...`; comm may hold spaces and
/// parentheses, so it ends at the last `)`.
fn program_and_state(stat: &str) -> Option<(&str, char)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let state = stat[close + 1..].trim_start().chars().next()?;
    Some((&stat[open + 1..close], state))
}

async fn flush_loop(
    mut session: Session,
    key: RunKey,
    owner: String,
    recorder: Recorder,
    stop: RunStop,
    mut shutdown: oneshot::Receiver<()>,
) -> FlushEnd {
    let db = session.database().clone();
    let gate = &recorder.gate;
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = &mut shutdown => return FlushEnd::Alive(session),
            _ = tick.tick() => {}
            () = gate.write_requested() => {}
        }
        let batch = recorder.progress().take_write(None);
        let written = {
            let write = timed(session.write(&key, &owner, &batch, None), &db);
            tokio::pin!(write);
            tokio::select! {
                written = &mut write => written,
                () = tokio::time::sleep(MAX_UNRECORDED) => {
                    tracing::warn!(
                        "the run journal has not answered for {} ms: holding new sends until it does",
                        MAX_UNRECORDED.as_millis()
                    );
                    gate.close(Hold::OverdueWrite);
                    write.await
                }
            }
        };
        gate.open(Hold::OverdueWrite);
        let (unwritten, error) = match written {
            Ok(Written::Done { .. }) => {
                caught_up(&recorder);
                continue;
            }
            Ok(Written::NotOwner) => (None, LedgerError::Superseded { key }),
            Err(source) => (Some(batch), LedgerError::Lost { key, source: Box::new(source) }),
        };
        tracing::error!("{error}");
        stop.stop(StopReason::LedgerLost);
        return FlushEnd::Lost { unwritten, error };
    }
}

/// After a committed write: the answers it made durable leave the gate's backlog (which lifts
/// its hold under the bound, and asks for another write at once while answers above the old
/// checkpoint still wait for one).
fn caught_up(recorder: &Recorder) {
    let written = recorder.progress().take_written();
    recorder.gate.recorded(written);
}

/// `write` with [`WRITE_TIMEOUT`]: a database that does not answer in time counts as lost.
async fn timed<T>(
    write: impl std::future::Future<Output = Result<T, DbError>>,
    db: &Database,
) -> Result<T, DbError> {
    // Counted on the time the process ran: a write answered while the process was frozen is
    // not a lost database.
    match within(WRITE_TIMEOUT, write).await {
        Some(result) => result,
        None => Err(db.unreachable(format!("no answer within {} ms", WRITE_TIMEOUT.as_millis()))),
    }
}

fn internal(db: &Database, reason: String) -> DbError {
    db.unreachable(format!("the ledger's writer stopped: {reason}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(shard: &str) -> RunKey {
        RunKey { job: "path-daily".into(), slot: "2026-W49".into(), shard: shard.parse().unwrap() }
    }

    fn row(shard: &str, status: RunStatus) -> RunRow {
        RunRow {
            job: "path-daily".into(),
            slot: "2026-W49".into(),
            shard: shard.parse().unwrap(),
            status,
            checkpoint: 41,
            totals: SlotCounts::default(),
            owner: Some("o".into()),
            host: "elsewhere".into(),
            pid: 7,
            heartbeat_age_ms: Some(60_000),
            started_at: "2026-11-30T00:10:00Z".parse().unwrap(),
            updated_at: "2026-11-30T00:11:00Z".parse().unwrap(),
            error: None,
        }
    }

    fn me() -> Me {
        Me { host: "here".into(), pid: std::process::id() }
    }

    #[test]
    fn a_slot_without_rows_starts_fresh() {
        assert_eq!(decide(&key("0/1"), &[], false, &me()).unwrap(), SlotState::Fresh);
    }

    #[test]
    fn a_done_slot_is_done_unless_forced() {
        let rows = [row("0/1", RunStatus::Done)];
        assert!(matches!(decide(&key("0/1"), &rows, false, &me()).unwrap(), SlotState::Done(_)));
        assert_eq!(decide(&key("0/1"), &rows, true, &me()).unwrap(), SlotState::Reset);
    }

    #[test]
    fn a_partial_slot_resumes_from_its_checkpoint() {
        let rows = [row("0/1", RunStatus::Partial)];
        assert!(
            matches!(decide(&key("0/1"), &rows, false, &me()).unwrap(), SlotState::Resume(r) if r.checkpoint == 41)
        );
    }

    #[test]
    fn a_running_row_with_a_fresh_heartbeat_elsewhere_is_left_to_its_owner() {
        let rows = [RunRow { heartbeat_age_ms: Some(300), ..row("0/1", RunStatus::Running) }];
        let refused = decide(&key("0/1"), &rows, false, &me()).unwrap_err();
        assert_eq!(refused.exit_code(), ExitCode::TempFail);
        assert!(refused.to_string().contains("host elsewhere, pid 7"), "{refused}");
    }

    #[test]
    fn a_running_row_with_a_stale_heartbeat_elsewhere_is_resumed() {
        let rows = [row("0/1", RunStatus::Running)];
        assert!(matches!(decide(&key("0/1"), &rows, false, &me()).unwrap(), SlotState::Resume(_)));
    }

    #[test]
    fn a_running_row_of_a_dead_process_on_this_host_is_resumed_at_once() {
        // pid 0 is never a process of ours.
        let rows = [RunRow {
            host: "here".into(),
            pid: 0,
            heartbeat_age_ms: Some(10),
            ..row("0/1", RunStatus::Running)
        }];
        assert!(matches!(decide(&key("0/1"), &rows, false, &me()).unwrap(), SlotState::Resume(_)));
    }

    #[test]
    fn a_slot_sent_with_another_layout_is_refused_naming_it() {
        let rows = [row("0/2", RunStatus::Done), row("1/2", RunStatus::Running)];
        let refused = decide(&key("0/1"), &rows, false, &me()).unwrap_err();
        assert_eq!(refused.exit_code(), ExitCode::Config);
        assert!(refused.to_string().contains("2 shards (0/2 done, 1/2 running)"), "{refused}");
    }

    #[test]
    fn a_slot_sent_completely_with_another_layout_is_done() {
        let rows = [row("0/1", RunStatus::Done)];
        assert!(
            matches!(decide(&key("1/2"), &rows, false, &me()).unwrap(), SlotState::Done(d) if d.contains("no shards"))
        );
    }

    #[test]
    fn a_stat_line_names_the_program_and_its_state() {
        assert_eq!(program_and_state("42 (wolley-push) S 1 2"), Some(("wolley-push", 'S')));
        assert_eq!(program_and_state("42 (a (b) c) Z 1"), Some(("a (b) c", 'Z')));
    }
}
