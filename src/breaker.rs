//! Breakers: answers that, taken together, say the configuration is wrong rather than the
//! devices. They decide; the ledger and the sender act.
//!
//! Pruning deletes the backend's data, so it is judged on the whole slot: dead tokens are not
//! spread evenly (old accounts, read first, hold most of them), and a window of recent answers
//! would trip on a healthy run. Healthy churn is small because every run prunes what it meets:
//! `save-location` runs every 30 minutes, so a run sees only the tokens that died since the last
//! one, well under 1%; a weekly job after that, about the same. Tokens die of uninstalls and of
//! Android's 270-day inactivity expiry, not by the tens of percent a week. A share above
//! [`DEFAULT_MAX_DEAD_SHARE`] means a cause shared by many tokens: a key of another Firebase
//! project (every answer `SENDER_ID_MISMATCH`), a wrong APNs environment, an app rebuilt with
//! another project; or the first run after a long time without pruning, which `--force-prune`
//! lets through once.

use crate::counts::SlotCounts;
use crate::fcm::DeadReason;

/// Dead tokens may be at most this share of the slot's answers before pruning is held back.
pub(crate) const DEFAULT_MAX_DEAD_SHARE: f64 = 0.10;
/// Fewer dead tokens than this are pruned whatever their share: too few answers to judge, and
/// the prune log keeps them restorable.
pub(crate) const MIN_DEAD_TO_JUDGE: u64 = 10;
/// Answers a run waits for before `SENDER_ID_MISMATCH` alone can stop it early.
const MIN_ANSWERS_FOR_EARLY_STOP: u64 = 100;
/// `THIRD_PARTY_AUTH_ERROR` comes back for single tokens now and then; at this share of at
/// least [`MIN_APNS_FAILURES`] answers it is the APNs key that is broken.
const APNS_FAILURE_SHARE: f64 = 0.10;
const MIN_APNS_FAILURES: u64 = 20;

/// How careful pruning is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct PrunePolicy {
    /// The largest share of dead tokens among the slot's answers that is pruned.
    pub max_dead_share: f64,
    /// Prune whatever the share (`--force-prune`).
    pub force: bool,
}

impl Default for PrunePolicy {
    fn default() -> Self {
        PrunePolicy { max_dead_share: DEFAULT_MAX_DEAD_SHARE, force: false }
    }
}

/// Why the slot's dead tokens are held back.
#[derive(Debug, Clone, PartialEq)]
pub struct Tripped {
    /// Dead-token answers.
    pub dead: u64,
    /// All answers (delivered or dead).
    pub answered: u64,
    /// The most frequent reason among the held tokens.
    pub main_reason: String,
    /// The allowed share.
    pub max_dead_share: f64,
}

impl Tripped {
    /// What is likely wrong, in one sentence.
    pub fn likely_cause(&self) -> &'static str {
        match DeadReason::parse(&self.main_reason) {
            Some(DeadReason::SenderIdMismatch) => {
                "the service-account key belongs to another Firebase project than the one the apps \
                 registered with (a staging key against the production database?): check the key's \
                 project_id and --project-id"
            }
            Some(DeadReason::Unregistered) => {
                "tokens unregistered en masse mean a wrong APNs environment (sandbox against \
                 production) or an app rebuilt with another Firebase project; if they really are \
                 dead (the first run after a long time without pruning), rerun with --force-prune"
            }
            _ => {
                "tokens refused en masse mean they were not issued for this project: check \
                 --project-id and the key; if they really are dead, rerun with --force-prune"
            }
        }
    }
}

impl std::fmt::Display for Tripped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} of {} answers ({:.1}%, mostly {}) said the token is dead, above the {:.1}% a healthy \
             run has: nothing was removed, and those users are in the retry set; {}",
            self.dead,
            self.answered,
            share(self.dead, self.answered) * 100.0,
            self.main_reason,
            self.max_dead_share * 100.0,
            self.likely_cause()
        )
    }
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// Whether the slot's pending dead tokens must be held back: `pending` counts them by reason,
/// most frequent first.
pub(crate) fn judge(policy: &PrunePolicy, totals: &SlotCounts, pending: &[(String, u64)]) -> Option<Tripped> {
    let pending_total: u64 = pending.iter().map(|(_, n)| n).sum();
    let answered = totals.sent + totals.pruned;
    let trips = !policy.force
        && pending_total > 0
        && totals.pruned >= MIN_DEAD_TO_JUDGE
        && share(totals.pruned, answered) > policy.max_dead_share;
    trips.then(|| Tripped {
        dead: totals.pruned,
        answered,
        main_reason: pending.first().map(|(reason, _)| reason.clone()).unwrap_or_default(),
        max_dead_share: policy.max_dead_share,
    })
}

/// Whether `SENDER_ID_MISMATCH` answers already say, mid-run, that the key is another
/// project's: most of at least 100 answers (and more than the policy allows). The run stops
/// early; the slot is judged at its end.
pub(crate) fn wrong_project(policy: &PrunePolicy, answered: u64, mismatches: u64) -> bool {
    !policy.force
        && answered >= MIN_ANSWERS_FOR_EARLY_STOP
        && share(mismatches, answered) > policy.max_dead_share.max(0.5)
}

/// Whether `THIRD_PARTY_AUTH_ERROR` answers say the project's APNs key is broken, not one token.
pub(crate) fn apns_key_broken(answered: u64, apns_failures: u64) -> bool {
    apns_failures >= MIN_APNS_FAILURES && share(apns_failures, answered) > APNS_FAILURE_SHARE
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(sent: u64, pruned: u64) -> SlotCounts {
        SlotCounts { targeted: sent + pruned, sent, pruned, ..SlotCounts::default() }
    }

    fn pending(reason: &str, n: u64) -> Vec<(String, u64)> {
        vec![(reason.to_owned(), n)]
    }

    #[test]
    fn a_few_percent_of_dead_tokens_are_pruned() {
        assert_eq!(judge(&PrunePolicy::default(), &totals(970, 30), &pending("UNREGISTERED", 30)), None);
    }

    #[test]
    fn every_answer_a_sender_id_mismatch_holds_the_prunes_back_and_names_the_key() {
        let tripped =
            judge(&PrunePolicy::default(), &totals(0, 2000), &pending("SENDER_ID_MISMATCH", 2000)).unwrap();
        assert!(tripped.to_string().contains("another Firebase project"), "{tripped}");
        assert!(tripped.to_string().contains("2000 of 2000"), "{tripped}");
    }

    #[test]
    fn force_prune_lets_any_share_through() {
        let policy = PrunePolicy { force: true, ..PrunePolicy::default() };
        assert_eq!(judge(&policy, &totals(0, 2000), &pending("UNREGISTERED", 2000)), None);
    }

    #[test]
    fn too_few_dead_tokens_are_not_judged() {
        assert_eq!(judge(&PrunePolicy::default(), &totals(1, 9), &pending("UNREGISTERED", 9)), None);
    }

    #[test]
    fn the_share_is_the_slots_not_the_pending_ones() {
        // A rerun that sends a retry set of 20, all dead, in a slot of 10,000 healthy answers.
        assert_eq!(judge(&PrunePolicy::default(), &totals(10_000, 20), &pending("UNREGISTERED", 20)), None);
    }

    #[test]
    fn mismatches_stop_a_run_early_only_with_enough_answers() {
        let policy = PrunePolicy::default();
        assert!(!wrong_project(&policy, 99, 99));
        assert!(wrong_project(&policy, 100, 100));
        assert!(!wrong_project(&policy, 1000, 30));
    }

    #[test]
    fn one_apns_failure_in_a_thousand_is_a_token_not_the_key() {
        assert!(!apns_key_broken(1000, 1));
        assert!(apns_key_broken(1000, 300));
        assert!(!apns_key_broken(50, 15));
    }
}
