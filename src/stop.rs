//! Why a run stops early, shared by everything that can stop it (signals, the deadline, the
//! ledger losing its database, FCM refusing the run) and everything that must react (the token
//! reader, the sender, the summary). The first reason given wins.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

/// The signals that stop a run gracefully.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    /// systemd, Kubernetes and `kill` stopping the run.
    Term,
    /// Ctrl-C at a terminal.
    Int,
}

impl Signal {
    /// The signal's name, as logs and the retry set give it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Signal::Term => "SIGTERM",
            Signal::Int => "SIGINT",
        }
    }
}

/// What stopped a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopReason {
    /// SIGTERM or SIGINT.
    Signal(Signal),
    /// `--deadline` passed.
    Deadline,
    /// The ledger could not write (or lost its lock): nothing may be sent without a record.
    LedgerLost,
    /// Reading the tokens failed.
    SourceFailed,
    /// FCM refused something every message shares, or a breaker judged the answers wrong.
    Refused,
}

impl StopReason {
    /// The reason as a retry-set row gives it for a message left unsent.
    pub(crate) fn unsent(self) -> &'static str {
        match self {
            StopReason::Signal(Signal::Int) => "left unsent: the run was interrupted (SIGINT)",
            StopReason::Signal(Signal::Term) => "left unsent: the run was stopped (SIGTERM)",
            StopReason::Deadline => "left unsent at the deadline",
            StopReason::LedgerLost => "left unsent: the run lost its database",
            StopReason::SourceFailed => "left unsent: reading the tokens failed",
            StopReason::Refused => "left unsent: the run was refused",
        }
    }
}

/// A run's stop switch: cheap to clone, fired once.
#[derive(Debug, Clone, Default)]
pub(crate) struct RunStop {
    token: CancellationToken,
    reason: Arc<OnceLock<StopReason>>,
}

impl RunStop {
    /// A switch that has not fired.
    pub(crate) fn new() -> Self {
        RunStop::default()
    }

    /// Stops the run for `reason`, unless it was stopped already.
    pub(crate) fn stop(&self, reason: StopReason) {
        let _ = self.reason.set(reason);
        self.token.cancel();
    }

    /// Why the run was stopped, if it was.
    pub(crate) fn reason(&self) -> Option<StopReason> {
        self.reason.get().copied()
    }

    /// Whether the run was stopped. Read from the reason, which [`RunStop::stop`] sets first:
    /// one atomic load, where the token's own check takes its lock, and every request asks
    /// (that lock was 1.6% of a message's CPU: BENCHMARKS.md, issue 21).
    pub(crate) fn is_stopped(&self) -> bool {
        self.reason.get().is_some()
    }

    /// Resolves once the run is stopped.
    pub(crate) async fn stopped(&self) {
        self.token.cancelled().await;
    }
}

/// Why the ledger holds new requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hold {
    /// The journal's last write is unanswered for too long.
    OverdueWrite = 1,
    /// Too many delivered answers are not yet durable: a crash would send them again.
    Backlog = 2,
}

/// Whether new requests may start: the ledger holds sends while its last write is unanswered
/// for too long, or while too many answers wait for a write, so that what a crash can send
/// again stays bounded in time and in count. Open when no hold is on.
#[derive(Debug, Clone)]
pub(crate) struct SendGate {
    holds: Arc<watch::Sender<u8>>,
    backlog: Option<Arc<Backlog>>,
}

/// Delivered answers that a crash now would send again: counted by the engine the moment an
/// answer arrives (not when the run's tally gets to it, which may lag), taken off by the ledger
/// once a committed write holds them.
#[derive(Debug)]
struct Backlog {
    answers: AtomicUsize,
    /// Past this many, new requests wait for the journal.
    limit: usize,
    /// From this many on, the journal is asked to write at once.
    early: usize,
    write_now: Notify,
}

impl Default for SendGate {
    fn default() -> Self {
        SendGate { holds: Arc::new(watch::Sender::new(0)), backlog: None }
    }
}

impl SendGate {
    /// An open gate.
    pub(crate) fn new() -> Self {
        SendGate::default()
    }

    /// A gate that also holds requests while `limit` delivered answers wait for a durable
    /// record, and asks for a write from `early` on.
    pub(crate) fn with_backlog(limit: usize, early: usize) -> Self {
        let backlog = Backlog { answers: AtomicUsize::new(0), limit, early, write_now: Notify::new() };
        SendGate { backlog: Some(Arc::new(backlog)), ..SendGate::default() }
    }

    /// The engine got a delivered answer (a crash now would send that message again).
    pub(crate) fn delivered(&self) {
        let Some(backlog) = &self.backlog else { return };
        let answers = backlog.answers.fetch_add(1, Ordering::AcqRel) + 1;
        if answers >= backlog.early {
            backlog.write_now.notify_one();
        }
        if answers >= backlog.limit {
            self.close(Hold::Backlog);
        }
    }

    /// A committed write holds `answers` more delivered answers: the hold is lifted once the
    /// backlog is under its limit (a hold set in a race with this is lifted by the next write).
    pub(crate) fn recorded(&self, answers: usize) {
        let Some(backlog) = &self.backlog else { return };
        let left = backlog.answers.fetch_sub(answers, Ordering::AcqRel) - answers;
        if left < backlog.limit {
            self.open(Hold::Backlog);
        }
        if left >= backlog.early {
            backlog.write_now.notify_one();
        }
    }

    /// Resolves when the backlog asks for a write (never, without one).
    pub(crate) async fn write_requested(&self) {
        match &self.backlog {
            Some(backlog) => backlog.write_now.notified().await,
            None => std::future::pending().await,
        }
    }

    /// Holds new requests for `why`.
    pub(crate) fn close(&self, why: Hold) {
        self.change(|holds| holds | why as u8);
    }

    /// Lifts the hold for `why`; requests go again once no hold is left.
    pub(crate) fn open(&self, why: Hold) {
        self.change(|holds| holds & !(why as u8));
    }

    /// Waiters are woken only when the holds change.
    fn change(&self, to: impl FnOnce(u8) -> u8) {
        self.holds.send_if_modified(|holds| {
            let before = *holds;
            *holds = to(before);
            *holds != before
        });
    }

    /// Waits until the gate is open; false when the run stops first.
    pub(crate) async fn passed(&self, stop: &RunStop) -> bool {
        if *self.holds.borrow() == 0 {
            return !stop.is_stopped();
        }
        let mut holds = self.holds.subscribe();
        tokio::select! {
            biased;
            () = stop.stopped() => false,
            opened = holds.wait_for(|holds| *holds == 0) => opened.is_ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_reason_wins() {
        let stop = RunStop::new();
        assert_eq!(stop.reason(), None);
        stop.stop(StopReason::Deadline);
        stop.stop(StopReason::Signal(Signal::Term));
        assert_eq!(stop.reason(), Some(StopReason::Deadline));
        assert!(stop.clone().is_stopped());
    }

    #[test]
    fn the_backlog_holds_requests_from_its_limit_until_a_write_takes_it_under() {
        let gate = SendGate::with_backlog(3, 2);
        gate.delivered();
        gate.delivered();
        assert_eq!(*gate.holds.borrow(), 0);
        gate.delivered();
        assert_eq!(*gate.holds.borrow(), Hold::Backlog as u8);
        gate.recorded(1);
        assert_eq!(*gate.holds.borrow(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_closed_gate_holds_until_it_opens_or_the_run_stops() {
        let gate = SendGate::new();
        let stop = RunStop::new();
        assert!(gate.passed(&stop).await);
        gate.close(Hold::OverdueWrite);
        gate.close(Hold::Backlog);
        let opener = gate.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            opener.open(Hold::Backlog);
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            opener.open(Hold::OverdueWrite);
        });
        let start = tokio::time::Instant::now();
        assert!(gate.passed(&stop).await);
        assert!(start.elapsed() >= std::time::Duration::from_secs(2), "open only once every hold is lifted");
        gate.close(Hold::Backlog);
        stop.stop(StopReason::Deadline);
        assert!(!gate.passed(&stop).await);
    }
}
