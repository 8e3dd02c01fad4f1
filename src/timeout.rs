//! Timeouts that count only the time the process ran. A deadline that passed while the process
//! was stopped (SIGSTOP, a paused VM, a starved machine) does not end the work at once: its
//! answer may be waiting in a socket that no task has read yet, and giving up on it would send
//! a delivered message again or call a healthy database lost.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

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

#[cfg(test)]
mod tests {
    use super::*;
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
