//! A run that finds its job's lock held: whose it is, and whether that run can still be sending.
//!
//! "Another run holds the lock, nothing to do" is only true while the holder is alive. After a
//! kill -9 the server keeps the dead session's lock for a moment (milliseconds; over a hundred
//! while the disk is busy), and a host that vanished without closing its connection leaves an
//! orphaned session that keeps it for hours. So a refused run reads the holder's session id
//! (`IS_USED_LOCK`), finds the journal row that session claimed (`lock_conn`), and judges it:
//!
//! - **alive** (a live process of this program on this host, or a heartbeat elsewhere that is
//!   still advancing): the run leaves the slot to it and exits 0;
//! - **dead** (no such process here, or a heartbeat older than [`LEASE`]): the run waits
//!   [`DEAD_HOLDER_GRACE`] for the server to free the lock, then ends the orphaned session
//!   (`KILL CONNECTION`) and takes over, resuming the slot;
//! - **unnamed** (no running row names the session): a run between taking the lock and
//!   claiming its slot; the run looks again for up to [`UNNAMED_HOLDER_GRACE`].
//!
//! Whatever cannot be settled in those bounds is [`LedgerError::LockStuck`]: exit 75, "not done".

use std::time::Duration;

use tokio::time::Instant;

use super::{heartbeat_fresh, same_program_running, LedgerError, Me, LEASE};
use crate::db::ledger::{LockWait, Locked, RunRow, Session};
use crate::slot::RunKey;

/// How long a run waits for the lock of a dead holder before ending its session: the server
/// frees a dead client's locks within milliseconds (127 ms measured under disk writeback); a
/// session still there after this is an orphan whose client will never close it.
pub(crate) const DEAD_HOLDER_GRACE: Duration = Duration::from_secs(3);
/// How long a run waits for a lock whose holder no journal row names yet: a run claims its slot
/// right after taking the lock, waiting at most 10 s for the start lock.
const UNNAMED_HOLDER_GRACE: Duration = Duration::from_secs(12);
/// How long the lock is waited for once the dead holder's session was ended.
const AFTER_KILL_WAIT: Duration = Duration::from_secs(5);
/// How often a remote holder's heartbeat (or an unnamed holder's claim) is read while deciding
/// whether it still writes (a live run writes every 40 ms).
const HEARTBEAT_POLL: Duration = Duration::from_millis(100);

/// What a run that found the lock held ends up with.
pub(crate) enum Resolved {
    /// The lock, taken over from a dead holder (or freed meanwhile).
    Taken(Session),
    /// The holder is alive: who, for the "nothing to do" line.
    Alive(String),
}

/// What the journal says about the session holding the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Holder {
    /// Provably running: a live process here, or a heartbeat seen advancing.
    Alive,
    /// Provably gone: no such process here, or silent for longer than [`LEASE`].
    Dead,
    /// Elsewhere, with a heartbeat younger than [`LEASE`]: alive if it writes again.
    Unsure,
}

/// Judges the run recorded in a `running` row.
pub(super) fn judge(row: &RunRow, me: &Me) -> Holder {
    if row.host == me.host {
        match same_program_running(row.pid) {
            Some(true) if row.pid != me.pid => return Holder::Alive,
            Some(_) => return Holder::Dead,
            None => {}
        }
    }
    if heartbeat_fresh(row) {
        Holder::Unsure
    } else {
        Holder::Dead
    }
}

/// Settles a lock that `waiting` did not get (see the module's rules).
///
/// # Errors
/// [`LedgerError::LockStuck`] when the lock could not be had in the bounds above; database
/// errors.
pub(super) async fn resolve(mut waiting: LockWait, key: &RunKey, me: &Me) -> Result<Resolved, LedgerError> {
    let shard = key.shard.to_string();
    let unnamed_until = Instant::now() + UNNAMED_HOLDER_GRACE;
    loop {
        let Some(session) = waiting.holder().await? else {
            // Freed since we asked.
            waiting = match waiting.wait(Duration::ZERO).await? {
                Locked::Got(session) => return Ok(Resolved::Taken(session)),
                Locked::Held(again) => again,
            };
            continue;
        };
        let Some(row) = waiting.holder_row(&key.job, &shard, session).await? else {
            // A run that has just taken the lock claims its slot within moments: look again.
            if Instant::now() >= unnamed_until {
                waiting.give_up().await;
                return Err(stuck(key, session, "no running journal row names it".into()));
            }
            tokio::time::sleep(HEARTBEAT_POLL).await;
            waiting = match waiting.wait(Duration::ZERO).await? {
                Locked::Got(session) => return Ok(Resolved::Taken(session)),
                Locked::Held(again) => again,
            };
            continue;
        };
        let verdict = match judge(&row, me) {
            Holder::Unsure => watch_heartbeat(&mut waiting, key, session, &row).await?,
            settled => settled,
        };
        return match verdict {
            Holder::Alive => {
                waiting.give_up().await;
                Ok(Resolved::Alive(describe(&row)))
            }
            Holder::Dead | Holder::Unsure => take_from_dead(waiting, key, session, &row).await,
        };
    }
}

/// Reads a remote holder's row until its heartbeat advances (alive) or grows older than
/// [`LEASE`] (dead).
async fn watch_heartbeat(
    waiting: &mut LockWait,
    key: &RunKey,
    session: u64,
    first: &RunRow,
) -> Result<Holder, LedgerError> {
    let age_at_start = first.heartbeat_age_ms.unwrap_or(0).max(0) as u64;
    let give_up = Instant::now() + LEASE.saturating_sub(Duration::from_millis(age_at_start)) + HEARTBEAT_POLL;
    let mut last_age = first.heartbeat_age_ms;
    while Instant::now() < give_up {
        tokio::time::sleep(HEARTBEAT_POLL).await;
        let Some(row) = waiting.holder_row(&key.job, &key.shard.to_string(), session).await? else {
            // It ended its run (or was taken over): the lock is about to be free.
            return Ok(Holder::Dead);
        };
        if row.heartbeat_age_ms < last_age {
            return Ok(Holder::Alive);
        }
        if !heartbeat_fresh(&row) {
            return Ok(Holder::Dead);
        }
        last_age = row.heartbeat_age_ms;
    }
    Ok(Holder::Dead)
}

/// Waits for the server to free a dead holder's lock, then ends its session if it is an orphan.
async fn take_from_dead(
    waiting: LockWait,
    key: &RunKey,
    session: u64,
    row: &RunRow,
) -> Result<Resolved, LedgerError> {
    tracing::info!(
        session,
        host = %row.host,
        pid = row.pid,
        "the run holding the lock is gone: waiting for the server to free it"
    );
    let mut waiting = match waiting.wait(DEAD_HOLDER_GRACE).await? {
        Locked::Got(taken) => return Ok(Resolved::Taken(taken)),
        Locked::Held(again) => again,
    };
    // Only the dead run's own session is ended: if another took the lock meanwhile, judge anew.
    if waiting.holder().await? == Some(session) {
        tracing::warn!(
            session,
            "the dead run's database session still holds the lock after {} s (its client vanished \
             without closing it): ending that session and taking the slot over",
            DEAD_HOLDER_GRACE.as_secs()
        );
        if let Err(error) = waiting.end_session(session).await {
            waiting.give_up().await;
            return Err(stuck(key, session, error.to_string()));
        }
    }
    match waiting.wait(AFTER_KILL_WAIT).await? {
        Locked::Got(taken) => Ok(Resolved::Taken(taken)),
        Locked::Held(waiting) => {
            let holder = waiting_holder(waiting).await;
            Err(stuck(key, holder.unwrap_or(session), "another session took the lock first".into()))
        }
    }
}

async fn waiting_holder(mut waiting: LockWait) -> Option<u64> {
    let holder = waiting.holder().await.ok().flatten();
    waiting.give_up().await;
    holder
}

fn describe(row: &RunRow) -> String {
    format!("host {}, pid {}, slot {}, since {}", row.host, row.pid, row.slot, row.started_at)
}

fn stuck(key: &RunKey, session: u64, reason: String) -> LedgerError {
    LedgerError::LockStuck { key: key.clone(), session, reason }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counts::SlotCounts;
    use crate::db::ledger::RunStatus;

    fn row(host: &str, pid: u32, heartbeat_age_ms: Option<i64>) -> RunRow {
        RunRow {
            job: "save-location".into(),
            slot: "2026-11-30T00:00:00+09:00".into(),
            shard: "0/1".parse().unwrap(),
            status: RunStatus::Running,
            checkpoint: 0,
            totals: SlotCounts::default(),
            owner: Some("o".into()),
            host: host.into(),
            pid,
            heartbeat_age_ms,
            started_at: "2026-11-29T15:00:00Z".parse().unwrap(),
            updated_at: "2026-11-29T15:00:01Z".parse().unwrap(),
            error: None,
        }
    }

    fn me() -> Me {
        Me { host: "here".into(), pid: std::process::id() }
    }

    #[test]
    fn a_holder_on_this_host_without_a_process_is_dead_whatever_its_heartbeat() {
        // pid 0 is never a process of ours.
        assert_eq!(judge(&row("here", 0, Some(5)), &me()), Holder::Dead);
    }

    #[test]
    fn a_holder_elsewhere_with_a_fresh_heartbeat_is_watched_not_believed() {
        assert_eq!(judge(&row("elsewhere", 7, Some(300)), &me()), Holder::Unsure);
    }

    #[test]
    fn a_holder_elsewhere_silent_for_longer_than_the_lease_is_dead() {
        let silent = LEASE.as_millis() as i64 + 1;
        assert_eq!(judge(&row("elsewhere", 7, Some(silent)), &me()), Holder::Dead);
    }

    #[test]
    fn a_holder_that_is_this_very_process_is_not_alive() {
        // A pid recorded by a dead run and reused by this one.
        assert_eq!(judge(&row("here", std::process::id(), Some(5)), &me()), Holder::Dead);
    }
}
