//! The process's tokio runtime, and how its one thread idles under a rate cap.
//!
//! A capped run (`--rate 9000` is the default) is idle most of the time, and FCM's answers
//! come back spread over each pacing tick: the thread used to wake for every few answers, some
//! 3,000 times a second, and each wake-up found its caches cold. While a capped send runs, the
//! thread instead naps for [`IDLE_NAP`] whenever it has nothing left to do, before it waits
//! for I/O: what arrived meanwhile (answers, the next tick) is then handled in one go.
//! Everything a capped run waits for (an answer, a database row, a signal) is at most that much
//! later, which its pace does not notice (BENCHMARKS.md, issue 21).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// How long the idle thread naps while a capped send runs: half a pacing tick, so a tick's
/// requests still leave within its first half.
pub(crate) const IDLE_NAP: Duration = Duration::from_millis(5);

/// Capped sends running in this process.
static CAPPED_SENDS: CappedSends = CappedSends::new();

/// The runtime the binary runs on: one thread (the work per message is small, and two threads
/// spent most of their CPU handing tasks to each other; BENCHMARKS.md, "Why the code looks like
/// this"), napping when idle while a capped send runs.
///
/// # Errors
/// When the operating system refuses the runtime its I/O driver or timer.
pub fn build() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        // Called each time the thread runs out of work, before it waits for I/O and timers.
        .on_thread_park(|| {
            if let Some(nap) = CAPPED_SENDS.idle_nap() {
                std::thread::sleep(nap);
            }
        })
        .build()
}

/// Marks a rate-capped send as running until the returned guard is dropped.
pub(crate) fn capped_send() -> CappedSend {
    CAPPED_SENDS.start()
}

/// How many capped sends are running.
struct CappedSends(AtomicUsize);

impl CappedSends {
    const fn new() -> Self {
        CappedSends(AtomicUsize::new(0))
    }

    fn start(&'static self) -> CappedSend {
        self.0.fetch_add(1, Ordering::Relaxed);
        CappedSend(self)
    }

    /// How long the idle thread naps now: [`IDLE_NAP`] while a capped send runs.
    fn idle_nap(&self) -> Option<Duration> {
        (self.0.load(Ordering::Relaxed) > 0).then_some(IDLE_NAP)
    }
}

/// While one is alive, the runtime's idle thread naps: held by a rate-capped send.
#[must_use = "the nap ends when the guard is dropped"]
pub(crate) struct CappedSend(&'static CappedSends);

impl Drop for CappedSend {
    fn drop(&mut self) {
        self.0 .0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_thread_naps_only_while_a_capped_send_runs() {
        static SENDS: CappedSends = CappedSends::new();
        assert_eq!(SENDS.idle_nap(), None);
        let first = SENDS.start();
        let second = SENDS.start();
        assert_eq!(SENDS.idle_nap(), Some(IDLE_NAP));
        drop(first);
        assert_eq!(SENDS.idle_nap(), Some(IDLE_NAP), "one capped send is still running");
        drop(second);
        assert_eq!(SENDS.idle_nap(), None);
    }
}
