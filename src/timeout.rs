//! Timeouts that count only the time the process ran. A deadline that passed while the process
//! was stopped (SIGSTOP, a paused VM, a starved machine) does not end the work at once: its
//! answer may be waiting in a socket that no task has read yet, and giving up on it would send
//! a delivered message again or call a healthy database lost.

use std::future::Future;
use std::time::Duration;

use std::pin::Pin;

use tokio::time::{Instant, Sleep};

/// A timer that fires this much after its deadline did not measure the work: the process was
/// not running.
const LATE_TIMER: Duration = Duration::from_millis(200);
/// After a late timer, how long the work gets to finish with what arrived meanwhile.
pub(crate) const AFTER_FREEZE_GRACE: Duration = Duration::from_secs(1);

/// `work`'s output, or `None` when it took longer than `limit` of the time this process ran.
pub(crate) async fn within<T>(limit: Duration, work: impl Future<Output = T>) -> Option<T> {
    tokio::pin!(work);
    let mut deadline = Instant::now() + limit;
    loop {
        tokio::select! {
            biased;
            done = &mut work => return Some(done),
            () = tokio::time::sleep_until(deadline) => {}
        }
        let now = Instant::now();
        if now.duration_since(deadline) < LATE_TIMER {
            return None;
        }
        deadline = now + AFTER_FREEZE_GRACE;
    }
}

/// [`within`] for a stream of requests, one at a time, on a timer the caller keeps: the timer
/// is re-armed only when a request could outlive it, so a request costs no timer of its own
/// (arming and cancelling one per request was 3-4% of a message's CPU: BENCHMARKS.md, issue
/// 21). A request still gets its whole limit; it is given up at most [`RequestTimer::slack`]
/// later.
pub(crate) struct RequestTimer {
    timer: Pin<Box<Sleep>>,
}

impl RequestTimer {
    pub(crate) fn new() -> Self {
        RequestTimer { timer: Box::pin(tokio::time::sleep(Duration::ZERO)) }
    }

    /// How late after its limit a request may be given up: a second, or a quarter of a short
    /// limit.
    fn slack(limit: Duration) -> Duration {
        (limit / 4).min(Duration::from_secs(1))
    }

    /// `work`'s output, or `None` when it took longer than `limit` of the time this process ran.
    ///
    /// `work` comes pinned by the caller: a future taken by value is kept twice in this one's
    /// state (as the argument and as its pinned copy), which had made every request's future
    /// three times the size of the exchange it waits for (BENCHMARKS.md, issue 21).
    pub(crate) async fn within<F: Future>(
        &mut self,
        limit: Duration,
        mut work: Pin<&mut F>,
    ) -> Option<F::Output> {
        // Armed for no earlier than this request's limit: a timer that fires on time has seen
        // the whole limit pass. (The limit is the same for every request of a run; a shorter
        // one after a longer would be given up later than the slack.)
        let limit_at = Instant::now() + limit;
        if self.timer.deadline() < limit_at {
            self.timer.as_mut().reset(limit_at + Self::slack(limit));
        }
        loop {
            tokio::select! {
                biased;
                done = work.as_mut() => return Some(done),
                () = self.timer.as_mut() => {}
            }
            let now = Instant::now();
            if now.duration_since(self.timer.deadline()) < LATE_TIMER {
                return None;
            }
            // The process was not running: what arrived meanwhile gets its chance.
            self.timer.as_mut().reset(now + AFTER_FREEZE_GRACE);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::pin;
    use tokio::sync::oneshot;

    #[tokio::test(start_paused = true)]
    async fn work_unfinished_for_its_limit_times_out_on_time() {
        let (_answer, waiting) = oneshot::channel::<()>();
        let start = Instant::now();
        assert!(within(Duration::from_secs(30), waiting).await.is_none());
        assert_eq!(start.elapsed(), Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_read_after_a_freeze_longer_than_the_limit_is_taken_not_timed_out() {
        let (answer, waiting) = oneshot::channel();
        let request = tokio::spawn(within(Duration::from_secs(30), waiting));
        tokio::task::yield_now().await;
        // The process was stopped for 40 s: the timer is overdue when the task next runs,
        // before anything has read the answer that arrived meanwhile.
        tokio::time::advance(Duration::from_secs(40)).await;
        tokio::task::yield_now().await;
        answer.send(200).unwrap();
        assert_eq!(request.await.unwrap().map(Result::unwrap), Some(200));
    }

    #[tokio::test(start_paused = true)]
    async fn a_kept_timer_gives_a_request_its_whole_limit_and_at_most_the_slack_more() {
        let mut timer = RequestTimer::new();
        // The first request arms the timer for 30 s plus the slack; the next, 10 s later, would
        // outlive neither: it has the armed timer, and is given up after 30 s, not 20.
        assert_eq!(
            timer.within(Duration::from_secs(30), pin!(tokio::time::sleep(Duration::from_secs(10)))).await,
            Some(())
        );
        let start = Instant::now();
        let (_answer, waiting) = oneshot::channel::<()>();
        assert!(timer.within(Duration::from_secs(30), pin!(waiting)).await.is_none());
        let waited = start.elapsed();
        assert!(waited >= Duration::from_secs(30) && waited <= Duration::from_secs(31), "{waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_kept_timer_takes_an_answer_read_after_a_freeze() {
        let (answer, waiting) = oneshot::channel();
        let request =
            tokio::spawn(
                async move { RequestTimer::new().within(Duration::from_secs(30), pin!(waiting)).await },
            );
        tokio::task::yield_now().await;
        tokio::time::advance(Duration::from_secs(40)).await;
        tokio::task::yield_now().await;
        answer.send(200).unwrap();
        assert_eq!(request.await.unwrap().map(Result::unwrap), Some(200));
    }

    #[tokio::test(start_paused = true)]
    async fn after_a_freeze_work_still_unfinished_times_out_after_the_grace() {
        let (_answer, waiting) = oneshot::channel::<()>();
        let request = tokio::spawn(within(Duration::from_secs(30), waiting));
        tokio::task::yield_now().await;
        tokio::time::advance(Duration::from_secs(40)).await;
        let start = Instant::now();
        assert!(request.await.unwrap().is_none());
        assert!(start.elapsed() <= AFTER_FREEZE_GRACE, "{:?}", start.elapsed());
    }
}
