//! The process's tokio runtime, and how its one thread idles under a rate cap.
//!
//! A capped run (`--rate 9000` is the default) is idle most of the time, and FCM's answers
//! come back spread over each pacing tick: the thread used to wake for every few answers, some
//! 3,000 times a second, and each wake-up found its caches cold (other processes had the core
//! meanwhile). While a capped send runs, the thread instead naps whenever it has nothing left
//! to do, until just past the pacing's next tick, and only then waits for I/O: the tick's
//! requests and every answer that came since the last tick are handled in one wake-up a tick.
//! Everything a capped run waits for (an answer, a database row, a signal) is at most a tick
//! later, which its pace does not notice (BENCHMARKS.md, issue 21).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How far past the pacing's next tick the thread naps: tokio's timer counts whole
/// milliseconds, so the tick's timer has expired when the thread wakes.
const PAST_THE_TICK: Duration = Duration::from_millis(1);
/// The longest nap, however far off the next tick (a slow rate ticks up to once a second):
/// a database's answer or a signal waits no longer than this.
const LONGEST_NAP: Duration = Duration::from_millis(25);

/// Capped sends running in this process, and their pacing's next tick.
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
            if let Some(nap) = CAPPED_SENDS.nap(Instant::now) {
                std::thread::sleep(nap);
            }
        })
        .build()
}

/// Marks a rate-capped send as running until the returned guard is dropped.
pub(crate) fn capped_send() -> CappedSend {
    CAPPED_SENDS.start()
}

/// Tells the idle thread when the pacing ticks next (see the module's documentation).
pub(crate) fn next_tick_at(at: Instant) {
    *CAPPED_SENDS.next_tick.lock().expect("next tick lock") = Some(at);
}

/// How many capped sends are running, and when their pacing ticks next.
struct CappedSends {
    running: AtomicUsize,
    next_tick: Mutex<Option<Instant>>,
}

impl CappedSends {
    const fn new() -> Self {
        CappedSends { running: AtomicUsize::new(0), next_tick: Mutex::new(None) }
    }

    fn start(&'static self) -> CappedSend {
        self.running.fetch_add(1, Ordering::Relaxed);
        CappedSend(self)
    }

    /// How long the idle thread naps at `now`: while a capped send runs, until just past the
    /// next tick, at most [`LONGEST_NAP`]; not at all once the tick is due (its requests wait).
    /// The clock is read only while a capped send runs: otherwise the hook is one atomic load.
    fn nap(&self, now: impl FnOnce() -> Instant) -> Option<Duration> {
        if self.running.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let next_tick = (*self.next_tick.lock().expect("next tick lock"))?;
        let nap = (next_tick + PAST_THE_TICK).saturating_duration_since(now()).min(LONGEST_NAP);
        (!nap.is_zero()).then_some(nap)
    }
}

/// While one is alive, the runtime's idle thread naps: held by a rate-capped send.
#[must_use = "the nap ends when the guard is dropped"]
pub(crate) struct CappedSend(&'static CappedSends);

impl Drop for CappedSend {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sends_ticking_in(from_now: Duration) -> (&'static CappedSends, Instant) {
        let sends: &'static CappedSends = Box::leak(Box::new(CappedSends::new()));
        let now = Instant::now();
        *sends.next_tick.lock().unwrap() = Some(now + from_now);
        (sends, now)
    }

    #[test]
    fn the_thread_naps_only_while_a_capped_send_runs() {
        let (sends, now) = sends_ticking_in(Duration::from_millis(10));
        assert_eq!(sends.nap(|| now), None);
        let first = sends.start();
        let second = sends.start();
        assert!(sends.nap(|| now).is_some());
        drop(first);
        assert!(sends.nap(|| now).is_some(), "one capped send is still running");
        drop(second);
        assert_eq!(sends.nap(|| now), None);
    }

    #[test]
    fn the_thread_naps_until_just_past_the_next_tick() {
        let (sends, now) = sends_ticking_in(Duration::from_millis(12));
        let _capped = sends.start();
        assert_eq!(sends.nap(|| now), Some(Duration::from_millis(12) + PAST_THE_TICK));
    }

    #[test]
    fn a_far_tick_does_not_hold_the_thread_longer_than_the_longest_nap() {
        let (sends, now) = sends_ticking_in(Duration::from_secs(1));
        let _capped = sends.start();
        assert_eq!(sends.nap(|| now), Some(LONGEST_NAP));
    }

    #[test]
    fn the_thread_does_not_nap_once_the_tick_is_due() {
        let (sends, now) = sends_ticking_in(Duration::ZERO);
        let _capped = sends.start();
        assert_eq!(sends.nap(|| now + PAST_THE_TICK), None);
        assert_eq!(sends.nap(|| now + Duration::from_millis(5)), None);
    }

    #[test]
    fn before_the_first_tick_is_known_the_thread_does_not_nap() {
        let sends: &'static CappedSends = Box::leak(Box::new(CappedSends::new()));
        let _capped = sends.start();
        assert_eq!(sends.nap(Instant::now), None);
    }
}
