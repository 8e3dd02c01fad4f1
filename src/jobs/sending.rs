//! One sending job's [`Run`], phase by phase:
//!
//! 1. **prepare** ([`Run::prepare`]): the message checked against FCM's size limit and an FCM
//!    client holding an access token, so a bad key fails before the slot is touched;
//! 2. **open** ([`Run::open`]): the slot's ledger (lock, journal row, where to resume), or why
//!    there is nothing to do; only cron's database runs in send mode open one;
//! 3. **send** ([`Run::send`]): the engine over the token source, ending in one [`SendReport`];
//! 4. **finish** ([`finish`]): a pure function of the report and of how the journal ended that
//!    picks the run's error or its summary (whose counts give the exit code).
//!
//! `send`, `--tokens-file`, `--dry-run` and `--print` skip the open ([`Run::unjournaled`]);
//! [`super::broadcast`] goes through every phase.

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use futures::FutureExt;

use crate::breaker::Tripped;
use crate::config::Config;
use crate::db::Database;
use crate::error::{Error, Result};
use crate::fcm::message::Message;
use crate::ledger::{self, Finished, Ledger, LedgerError, Opened};
use crate::mode::Mode;
use crate::slot::RunKey;
use crate::spread::SlotClock;
use crate::stop::{RunStop, StopReason};
use crate::summary::Summary;
use crate::tokens::{ReadFrom, TokenSource};

use super::delivery::{self, Prepared, SendReport, Timing};
use super::Skip;

/// What a run's summary names it by.
#[derive(Debug, Clone)]
pub(crate) struct RunLabel {
    /// The job's name (also the lock's and the journal's).
    pub job: &'static str,
    /// The slot: half-hour, ISO week, badge pass, or `-` for `send`.
    pub slot: String,
    /// Deliver, validate or print.
    pub mode: Mode,
}

/// One run of a sending job: what it sends, under which label, since when.
pub(crate) struct Run<'c> {
    config: &'c Config,
    label: RunLabel,
    /// The message (targets may carry their own).
    message: Message,
    /// The summary's duration counts from here, connecting to the database included.
    started: Instant,
}

/// The open phase's answer: a slot to send, or why there is nothing to do.
pub(crate) enum Open {
    /// The slot is this run's.
    Slot(Box<OpenSlot>),
    /// The slot is done, or another live run holds it.
    Skip(Skip),
}

/// A slot this run holds, and where its sending resumes.
pub(crate) struct OpenSlot {
    /// The slot's ledger.
    pub ledger: Ledger,
    /// Where the token source starts: the retry set first, then after the checkpoint.
    pub read_from: ReadFrom,
    /// How far the slot is into its delivery window, for a spread.
    pub clock: SlotClock,
}

/// How the journal ended, the finish phase's second input.
#[derive(Debug)]
pub(crate) enum JournalEnd {
    /// The run keeps no journal (`send`, `--tokens-file`, `--dry-run`, `--print`).
    Unjournaled,
    /// The ledger recorded the end of slot `key`.
    Recorded { key: RunKey, finished: Finished },
    /// The ledger could not record the end.
    Lost(LedgerError),
}

impl<'c> Run<'c> {
    /// A run starting now.
    pub(crate) fn new(config: &'c Config, label: RunLabel, message: Message) -> Self {
        Run { config, label, message, started: Instant::now() }
    }

    /// The settings the whole run was configured with.
    pub(crate) fn config(&self) -> &'c Config {
        self.config
    }

    /// Every phase but the open, for runs that keep no journal: `send`, `--tokens-file`,
    /// `--dry-run`, `--print`.
    ///
    /// # Errors
    /// As [`Run::prepare`], and whatever stopped the run.
    pub(crate) async fn unjournaled(&self, source: TokenSource, timing: Timing) -> Result<Summary> {
        let report = if self.label.mode == Mode::Print {
            let counts = delivery::print_all(source, &self.message, self.config.sending.targets).await?;
            SendReport { counts, stopped: None, exhausted: true, error: None, pace: None }
        } else {
            let prepared = self.prepare().await?;
            self.send(prepared, source, None, timing).await
        };
        finish(&self.label, report, JournalEnd::Unjournaled, self.started.elapsed())
    }

    /// The prepare phase: see [`delivery::prepare`].
    ///
    /// # Errors
    /// A message over FCM's size limit, missing or refused credentials, OAuth unreachable.
    pub(crate) async fn prepare(&self) -> Result<Prepared> {
        delivery::prepare(self.config, &self.message, self.label.mode).await
    }

    /// The open phase: takes slot `key` in the ledger, or says why there is nothing to do.
    ///
    /// # Errors
    /// As [`Ledger::open`].
    pub(crate) async fn open(&self, db: &Database, key: RunKey, settings: ledger::Settings) -> Result<Open> {
        let ledger = match Ledger::open(db, key.clone(), settings).await? {
            Opened::Run(ledger) => *ledger,
            Opened::Done { detail } => {
                tracing::info!("{key} is already done ({detail}); --force sends it again");
                return Ok(Open::Skip(Skip::SlotDone));
            }
            Opened::LockHeld { holder } => {
                tracing::warn!(
                    "another {} run holds the lock for shard {} and is alive ({holder}); nothing to do",
                    key.job,
                    key.shard
                );
                return Ok(Open::Skip(Skip::LockHeld));
            }
        };
        let resume = ledger.resume();
        if resume.retry_set > 0 {
            tracing::info!(
                retry_set = resume.retry_set,
                checkpoint = resume.checkpoint,
                "sending the retry set first"
            );
        }
        let read_from = ReadFrom {
            retry_set: (resume.retry_set > 0).then(|| resume.key.clone()),
            after_user_id: resume.checkpoint,
        };
        let clock = resume.clock;
        Ok(Open::Slot(Box::new(OpenSlot { ledger, read_from, clock })))
    }

    /// The send phase: every token of `source` through the engine, reported to `ledger` when
    /// the slot is journaled. Never fails: what went wrong is in [`SendReport::error`], so that
    /// the ledger records it first.
    pub(crate) async fn send(
        &self,
        prepared: Prepared,
        source: TokenSource,
        ledger: Option<&mut Ledger>,
        timing: Timing,
    ) -> SendReport {
        let (config, job) = (self.config, self.label.job);
        let stop = RunStop::new();
        let Some(ledger) = ledger else {
            return delivery::deliver(config, prepared, source, None, stop, timing, job).await;
        };
        ledger.start(stop.clone());
        let recorder = Some(ledger.recorder());
        let delivering = delivery::deliver(config, prepared, source, recorder, stop.clone(), timing, job);
        // A bug must not leave the slot `running` with nobody to finish it: stop the run, record
        // it failed, then report the bug (the panic hook has already said where it happened).
        match AssertUnwindSafe(delivering).catch_unwind().await {
            Ok(report) => report,
            Err(panic) => {
                stop.stop(StopReason::Refused);
                let message = crate::panic_hook::message(&*panic);
                let error = Error::Other(anyhow::anyhow!("internal error while sending: {message}"));
                SendReport { stopped: stop.reason(), ..SendReport::failed(error) }
            }
        }
    }

    /// Records the end in the slot's ledger, then finishes the run.
    ///
    /// # Errors
    /// As [`finish`].
    pub(crate) async fn close(&self, ledger: Ledger, report: SendReport) -> Result<Summary> {
        let key = ledger.resume().key.clone();
        let failure = report.error.as_ref().map(ToString::to_string);
        let journal = match ledger.finish(report.ending(), failure.as_deref()).await {
            Ok(finished) => JournalEnd::Recorded { key, finished },
            Err(lost) => JournalEnd::Lost(lost),
        };
        finish(&self.label, report, journal, self.started.elapsed())
    }
}

/// The summary of a run that sent, as `report` says.
fn summary(report: &SendReport, label: &RunLabel, elapsed: Duration) -> Summary {
    let summary = Summary::new(label.job, label.slot.clone(), label.mode, report.counts, elapsed)
        .with_pace(report.pace);
    match report.stopped {
        Some(StopReason::Signal(_)) => summary.interrupted(),
        _ => summary,
    }
}

/// The finish phase: the run's error, or its summary (whose counts give the exit code), from
/// what the send reported and how the journal ended.
///
/// # Errors
/// The error that tells the operator most; see [`when_lost`] and [`when_recorded`].
pub(crate) fn finish(
    label: &RunLabel,
    mut report: SendReport,
    journal: JournalEnd,
    elapsed: Duration,
) -> Result<Summary> {
    let error = report.error.take();
    let retry_set = match journal {
        JournalEnd::Unjournaled => match error {
            Some(error) => return Err(error),
            None => None,
        },
        JournalEnd::Lost(lost) => return Err(when_lost(error, lost)),
        JournalEnd::Recorded { key, finished } => match when_recorded(error, key, finished.tripped) {
            Some(error) => return Err(error),
            None => Some(finished.totals.retrying),
        },
    };
    let summary = summary(&report, label, elapsed);
    Ok(match retry_set {
        Some(users) => summary.with_retry_set(users),
        None => summary,
    })
}

/// The error of a run whose journal could not record its end. A lost database is better told by
/// the ledger, which knows what it could record; a refused payload or a wrong key by the run.
fn when_lost(error: Option<Error>, lost: LedgerError) -> Error {
    match error {
        Some(error) if !matches!(error, Error::Db(_) | Error::WrongProject { .. }) => error,
        _ => lost.into(),
    }
}

/// The error, if any, of a run whose journal recorded its end. The run's own error comes first,
/// except a wrong project: its mismatches are the dead tokens the prune breaker held back, and
/// the breaker's error says that nothing was pruned.
fn when_recorded(error: Option<Error>, key: RunKey, tripped: Option<Tripped>) -> Option<Error> {
    match (error, tripped) {
        (Some(error), _) if !matches!(error, Error::WrongProject { .. }) => Some(error),
        (_, Some(tripped)) => Some(LedgerError::PruneBreaker { key, tripped }.into()),
        (error, None) => error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counts::Counts;
    use crate::counts::SlotCounts;
    use crate::db::DbError;
    use crate::exit::ExitCode;
    use crate::ledger::Ending;
    use crate::shard::Shard;
    use crate::stop::Signal;

    fn label() -> RunLabel {
        RunLabel { job: "save-location", slot: "2025-03-10T08:00:00+01:00".into(), mode: Mode::Send }
    }

    fn key() -> RunKey {
        RunKey { job: "save-location".into(), slot: label().slot, shard: Shard::ALL }
    }

    fn sent(sent: u64) -> SendReport {
        let counts = Counts { targeted: sent, sent, ..Counts::default() };
        SendReport { counts, stopped: None, exhausted: true, error: None, pace: None }
    }

    fn with_error(error: Error) -> SendReport {
        SendReport { error: Some(error), exhausted: false, ..sent(5) }
    }

    fn wrong_project() -> Error {
        Error::WrongProject { mismatches: 2000, answered: 2000 }
    }

    fn refused() -> Error {
        Error::Other(anyhow::anyhow!("FCM refused the payload"))
    }

    fn database_error() -> Error {
        Error::Db(DbError::Unreachable { url: "mysql://db/wolley".into(), reason: "reset".into() })
    }

    fn recorded(retrying: u64, tripped: Option<Tripped>) -> JournalEnd {
        let totals = SlotCounts { retrying, ..SlotCounts::default() };
        JournalEnd::Recorded { key: key(), finished: Finished { totals, tripped } }
    }

    fn tripped() -> Tripped {
        Tripped { dead: 900, answered: 1000, main_reason: "UNREGISTERED".into(), max_dead_share: 0.2 }
    }

    fn lost() -> JournalEnd {
        JournalEnd::Lost(LedgerError::Superseded { key: key() })
    }

    fn finished(report: SendReport, journal: JournalEnd) -> Result<Summary> {
        finish(&label(), report, journal, Duration::from_secs(2))
    }

    fn is_prune_breaker(error: &Error) -> bool {
        matches!(error, Error::Ledger(e) if matches!(**e, LedgerError::PruneBreaker { .. }))
    }

    fn is_lost_ledger(error: &Error) -> bool {
        matches!(error, Error::Ledger(e) if matches!(**e, LedgerError::Superseded { .. }))
    }

    #[test]
    fn an_unjournaled_run_that_sent_everything_exits_0_with_its_counts_and_no_retry_set() {
        let summary = finished(sent(7), JournalEnd::Unjournaled).unwrap();
        assert_eq!((summary.counts.sent, summary.job, summary.retry_set), (7, "save-location", None));
        assert_eq!(summary.exit_code(), ExitCode::Success);
    }

    #[test]
    fn an_unjournaled_run_ends_with_its_own_error() {
        let error = finished(with_error(refused()), JournalEnd::Unjournaled).unwrap_err();
        assert!(matches!(error, Error::Other(_)), "{error:?}");
    }

    #[test]
    fn a_run_stopped_by_a_signal_is_summarised_as_interrupted() {
        let report = SendReport { stopped: Some(StopReason::Signal(Signal::Term)), ..sent(3) };
        let summary = finished(report, JournalEnd::Unjournaled).unwrap();
        assert!(summary.interrupted);
        assert_eq!(summary.exit_code(), ExitCode::Partial);
    }

    #[test]
    fn a_recorded_run_without_error_reports_the_slots_retry_set() {
        let summary = finished(sent(7), recorded(4, None)).unwrap();
        assert_eq!(summary.retry_set, Some(4));
    }

    #[test]
    fn a_recorded_runs_own_error_comes_before_the_prune_breaker() {
        let error = finished(with_error(refused()), recorded(0, Some(tripped()))).unwrap_err();
        assert!(matches!(error, Error::Other(_)), "{error:?}");
    }

    #[test]
    fn a_wrong_project_whose_dead_tokens_the_breaker_held_back_ends_with_the_prune_breaker() {
        let error = finished(with_error(wrong_project()), recorded(0, Some(tripped()))).unwrap_err();
        assert!(is_prune_breaker(&error), "{error:?}");
    }

    #[test]
    fn a_wrong_project_without_a_tripped_breaker_ends_with_the_wrong_project() {
        let error = finished(with_error(wrong_project()), recorded(0, None)).unwrap_err();
        assert!(matches!(error, Error::WrongProject { .. }), "{error:?}");
    }

    #[test]
    fn a_clean_send_whose_breaker_tripped_ends_with_the_prune_breaker() {
        let error = finished(sent(1000), recorded(0, Some(tripped()))).unwrap_err();
        assert!(is_prune_breaker(&error), "{error:?}");
    }

    #[test]
    fn a_lost_journal_ends_with_the_runs_own_error_when_it_is_not_the_databases() {
        let error = finished(with_error(refused()), lost()).unwrap_err();
        assert!(matches!(error, Error::Other(_)), "{error:?}");
    }

    #[test]
    fn a_lost_journal_tells_a_database_failure_itself() {
        let error = finished(with_error(database_error()), lost()).unwrap_err();
        assert!(is_lost_ledger(&error), "{error:?}");
    }

    #[test]
    fn a_lost_journal_comes_before_a_wrong_project() {
        let error = finished(with_error(wrong_project()), lost()).unwrap_err();
        assert!(is_lost_ledger(&error), "{error:?}");
    }

    #[test]
    fn a_lost_journal_fails_a_run_that_sent_without_error() {
        let error = finished(sent(7), lost()).unwrap_err();
        assert!(is_lost_ledger(&error), "{error:?}");
    }

    #[test]
    fn a_clean_report_is_recorded_complete_and_any_stop_or_error_as_stopped() {
        assert_eq!(sent(1).ending(), Ending::Complete);
        assert_eq!(SendReport { stopped: Some(StopReason::Deadline), ..sent(1) }.ending(), Ending::Stopped);
        assert_eq!(with_error(refused()).ending(), Ending::Stopped);
        assert_eq!(SendReport { exhausted: false, ..sent(1) }.ending(), Ending::Stopped);
    }
}
