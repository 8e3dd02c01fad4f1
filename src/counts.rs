//! What happened to messages, counted: one run's [`Counts`] and one slot's [`SlotCounts`]
//! (the ledger's totals over every run of the slot). Plain numbers, at the bottom of the module
//! graph: the database layer stores them and the summary prints them.

use serde::Serialize;

/// What happened to one run's messages.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct Counts {
    /// Distinct valid tokens the run set out to reach.
    pub targeted: u64,
    /// Accepted by FCM (validated, in a dry run; printed, with `--print`).
    pub sent: u64,
    /// Dead tokens (cleared from `app_user` when they came from it).
    pub pruned: u64,
    /// Failed for good or at the attempt limit.
    pub failed: u64,
    /// Not sent on purpose: duplicates and tokens that cannot be valid.
    pub skipped: u64,
    /// Left unsent at the deadline or when the run was stopped.
    pub expired: u64,
    /// Of `failed`, those where FCM never answered.
    #[serde(skip)]
    pub unreachable: u64,
    /// `targeted` by how the device is addressed.
    pub targets: TargetCounts,
}

/// Devices by how they are addressed: the migration from registration tokens to Firebase
/// installation IDs, as one run saw it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct TargetCounts {
    /// Sent as `"token"`.
    pub token: u64,
    /// Sent as `"fid"`.
    pub fid: u64,
}

/// One slot's totals over all its runs, as the ledger keeps them. Every user the slot reached
/// is counted once, so `targeted == sent + pruned + failed + retrying` always holds.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct SlotCounts {
    /// Distinct users the slot's runs took a message for.
    pub targeted: u64,
    /// Users FCM accepted the message for.
    pub sent: u64,
    /// Users whose token FCM answered as dead (recorded in the prune log).
    pub pruned: u64,
    /// Failed for good: FCM refused the message itself, a rerun would not change that.
    pub failed: u64,
    /// Users in the retry set: a rerun of the slot sends them.
    pub retrying: u64,
    /// Tokens not sent on purpose (duplicates, impossible tokens, gone since).
    pub skipped: u64,
}

#[cfg(test)]
impl SlotCounts {
    /// Whether the totals are consistent with each other.
    pub(crate) fn adds_up(&self) -> bool {
        self.targeted == self.sent + self.pruned + self.failed + self.retrying
    }
}
