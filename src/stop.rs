//! Why a run stops early, shared by everything that can stop it (signals, the deadline, the
//! ledger losing its database, FCM refusing the run) and everything that must react (the token
//! reader, the sender, the summary). The first reason given wins.

use std::sync::{Arc, OnceLock};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// What stopped a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopReason {
    /// SIGTERM or SIGINT.
    Signal(&'static str),
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
            StopReason::Signal("SIGINT") => "left unsent: the run was interrupted (SIGINT)",
            StopReason::Signal(_) => "left unsent: the run was stopped (SIGTERM)",
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

    /// Whether the run was stopped.
    pub(crate) fn is_stopped(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves once the run is stopped.
    pub(crate) async fn stopped(&self) {
        self.token.cancelled().await;
    }
}

/// Whether new requests may start: the ledger holds sends while its last write is unanswered
/// for too long, so nothing goes out without a durable record for more than a moment.
#[derive(Debug, Clone)]
pub(crate) struct SendGate {
    open: Arc<watch::Sender<bool>>,
}

impl Default for SendGate {
    fn default() -> Self {
        SendGate { open: Arc::new(watch::Sender::new(true)) }
    }
}

impl SendGate {
    /// An open gate.
    pub(crate) fn new() -> Self {
        SendGate::default()
    }

    /// Holds new requests.
    pub(crate) fn close(&self) {
        self.open.send_replace(false);
    }

    /// Lets requests go again.
    pub(crate) fn open(&self) {
        self.open.send_replace(true);
    }

    /// Waits until the gate is open; false when the run stops first.
    pub(crate) async fn passed(&self, stop: &RunStop) -> bool {
        if *self.open.borrow() {
            return !stop.is_stopped();
        }
        let mut open = self.open.subscribe();
        tokio::select! {
            biased;
            () = stop.stopped() => false,
            opened = open.wait_for(|open| *open) => opened.is_ok(),
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
        stop.stop(StopReason::Signal("SIGTERM"));
        assert_eq!(stop.reason(), Some(StopReason::Deadline));
        assert!(stop.clone().is_stopped());
    }

    #[tokio::test(start_paused = true)]
    async fn a_closed_gate_holds_until_it_opens_or_the_run_stops() {
        let gate = SendGate::new();
        let stop = RunStop::new();
        assert!(gate.passed(&stop).await);
        gate.close();
        let opener = gate.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            opener.open();
        });
        let start = tokio::time::Instant::now();
        assert!(gate.passed(&stop).await);
        assert!(start.elapsed() >= std::time::Duration::from_secs(1));
        gate.close();
        stop.stop(StopReason::Deadline);
        assert!(!gate.passed(&stop).await);
    }
}
