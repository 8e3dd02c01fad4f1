//! The concurrency engine: a bounded number of requests in flight, an optional rate cap, retries
//! with exponential back-off and jitter, and a run-wide pause on 429. It knows nothing of
//! databases: targets come in on a channel and deliveries go out on another. It stops taking
//! targets when the run's [`RunStop`] fires (a signal, the deadline, a lost ledger): requests in
//! flight finish, and every target it held or left queued is reported [`Outcome::Expired`].

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;
use tokio::sync::{mpsc, Notify, Semaphore};
use tokio::task::JoinHandle;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::fcm::auth::AuthError;
use crate::fcm::message::RequestTemplate;
use crate::fcm::{DeadReason, FatalSendError, FcmClient, Verdict};
use crate::stop::{RunStop, SendGate, StopReason};
use crate::timeout::RequestTimer;
use crate::tokens::Target;

/// One back-off never exceeds this, whatever the attempt number.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// A server's `Retry-After` is honoured up to this (a larger one, or a garbled one, would
/// otherwise overflow the clock); the deadline usually ends the wait long before.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// How the engine paces and retries.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    /// Requests in flight at most.
    pub concurrency: usize,
    /// Messages per second at most (fractional: a spread slot of few users goes slower than 1/s).
    pub rate: Option<f64>,
    /// Attempts per message, the first included.
    pub max_attempts: u32,
    /// First back-off after a 5xx or a transport error without `Retry-After`.
    pub backoff: Duration,
    /// First back-off after a 429 without `Retry-After`.
    pub quota_backoff: Duration,
    /// The run stops at this instant: a retry that would wait past it gives up instead.
    pub deadline: Option<Instant>,
}

/// What became of one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// FCM accepted it.
    Sent,
    /// The token is dead.
    Dead(DeadReason),
    /// Failed for good, or still failing at the attempt limit or the deadline.
    Failed {
        /// What kind of failure the last answer was.
        cause: FailureCause,
        /// The last error, for the operator.
        reason: String,
    },
    /// Not sent: the deadline passed or the run was asked to stop first.
    Expired,
}

impl Outcome {
    /// FCM has the message for good (accepted, dead, or refused for good): a crash before the
    /// journal records it would send it again.
    pub(crate) fn delivered(&self) -> bool {
        match self {
            Outcome::Sent | Outcome::Dead(_) => true,
            Outcome::Failed { cause, .. } => !cause.retryable(),
            Outcome::Expired => false,
        }
    }
}

/// Why a message failed, as the tally, the breakers and the retry set need to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureCause {
    /// FCM refused the message itself: a rerun would not do better.
    Rejected,
    /// APNs refused this device's message (`THIRD_PARTY_AUTH_ERROR`): per token and
    /// intermittent, so a rerun may get through; many at once mean a broken APNs key.
    ThirdPartyAuth,
    /// Still failing (429, 5xx) at the attempt limit or the deadline.
    Transient,
    /// FCM never answered (connection or timeout).
    Unreachable,
}

impl FailureCause {
    /// Whether a later run may succeed: a rerun of the slot retries it.
    pub(crate) fn retryable(self) -> bool {
        self != FailureCause::Rejected
    }
}

/// A target and its outcome.
#[derive(Debug)]
pub(crate) struct Delivery {
    /// The device.
    pub target: Target,
    /// What happened.
    pub outcome: Outcome,
}

/// Why the engine stopped the whole run.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// FCM rejected something all messages share.
    #[error(transparent)]
    Fatal(#[from] FatalSendError),
    /// No access token.
    #[error(transparent)]
    Auth(#[from] AuthError),
}

/// Sends targets through one [`FcmClient`] under a [`Policy`].
pub(crate) struct Engine {
    client: Arc<FcmClient>,
    template: Arc<RequestTemplate>,
    policy: Policy,
    pacing: Pacing,
    crew: Crew,
    stop: RunStop,
    gate: SendGate,
}

impl Engine {
    /// An engine that stops taking targets when `stop` fires (in-flight requests finish), and
    /// starts no request while `gate` is closed.
    pub(crate) fn new(
        client: Arc<FcmClient>,
        template: RequestTemplate,
        policy: Policy,
        stop: RunStop,
        gate: SendGate,
    ) -> Arc<Self> {
        let pacing = Pacing::new(policy.rate, &stop);
        let crew = Crew::default();
        Arc::new(Engine { client, template: Arc::new(template), policy, pacing, crew, stop, gate })
    }

    /// Sends every target from `targets`, reporting each on `deliveries`, until the channel
    /// closes or the run stops. The queue closes when this returns (its last receiver is
    /// dropped), which ends a feed's wait for room.
    ///
    /// # Errors
    /// [`EngineError`] when FCM or OAuth refuse the run; in-flight requests finish first.
    pub(crate) async fn run(
        self: Arc<Self>,
        targets: async_channel::Receiver<Target>,
        deliveries: mpsc::Sender<Delivery>,
    ) -> Result<(), EngineError> {
        let concurrency = self.policy.concurrency.max(1);
        // A capped run has time to spare: its answers are read in batches (crate::runtime).
        let _capped = self.pacing.permits.is_some().then(crate::runtime::capped_send);
        let mut workers = JoinSet::new();
        self.add_worker(&mut workers, &targets, &deliveries);
        let mut started = 1;
        let mut first_error = None;
        loop {
            let can_grow = started < concurrency && first_error.is_none();
            tokio::select! {
                biased;
                joined = workers.join_next() => {
                    let Some(joined) = joined else { break };
                    let result = joined.unwrap_or_else(|panic| std::panic::resume_unwind(panic.into_panic()));
                    if let Err(error) = result {
                        self.stop.stop(StopReason::Refused);
                        first_error.get_or_insert(error);
                    }
                }
                () = self.crew.wanted(), if can_grow => {
                    self.add_worker(&mut workers, &targets, &deliveries);
                    started += 1;
                }
            }
        }
        tracing::debug!(workers = started, concurrency, "the engine is done");
        // Whatever the workers left queued when the run stopped was never sent.
        while let Ok(target) = targets.try_recv() {
            if deliveries.send(Delivery { target, outcome: Outcome::Expired }).await.is_err() {
                break;
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn add_worker(
        self: &Arc<Self>,
        workers: &mut JoinSet<Result<(), EngineError>>,
        targets: &async_channel::Receiver<Target>,
        deliveries: &mpsc::Sender<Delivery>,
    ) {
        let engine = Arc::clone(self);
        let (targets, deliveries) = (targets.clone(), deliveries.clone());
        self.crew.joined();
        workers.spawn(async move { engine.work(targets, deliveries).await });
    }

    async fn work(
        &self,
        targets: async_channel::Receiver<Target>,
        deliveries: mpsc::Sender<Delivery>,
    ) -> Result<(), EngineError> {
        let mut timer = RequestTimer::new();
        loop {
            // Counted as waiting here: by `joined` when new, by `back` after a delivery.
            let Some(target) = self.next_target(&targets).await else { return Ok(()) };
            let admitted = self.admitted().await;
            self.crew.started();
            let outcome = if admitted { self.deliver(&target, &mut timer).await? } else { Outcome::Expired };
            self.crew.back();
            if outcome.delivered() {
                // Counted now, not when the tally gets to it: the ledger's bound on what a crash
                // sends again must not slip by the tally's lag.
                self.gate.delivered();
            }
            if deliveries.send(Delivery { target, outcome }).await.is_err() {
                return Ok(());
            }
        }
    }

    /// The next target, or None when the queue is closed or the run stops. A target already
    /// queued is taken at once: only a worker that has to wait registers to be woken by the
    /// stop (a waiter added to and removed from a locked list).
    async fn next_target(&self, targets: &async_channel::Receiver<Target>) -> Option<Target> {
        if self.stop.is_stopped() {
            return None;
        }
        match targets.try_recv() {
            Ok(target) => return Some(target),
            Err(async_channel::TryRecvError::Closed) => return None,
            Err(async_channel::TryRecvError::Empty) => {}
        }
        tokio::select! {
            biased;
            () = self.stop.stopped() => None,
            next = targets.recv() => next.ok(),
        }
    }

    /// Waits for the rate cap, a pause after a 429 and the ledger's gate; false when the run
    /// stops first.
    async fn admitted(&self) -> bool {
        self.pacing.admit(&self.stop).await && self.gate.passed(&self.stop).await
    }

    async fn deliver(&self, target: &Target, timer: &mut RequestTimer) -> Result<Outcome, EngineError> {
        let render = || {
            let mut body = Vec::new();
            self.template.render_for(target.kind, &target.token, target.message.as_deref(), &mut body);
            Bytes::from(body)
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            // The first attempt was admitted by the worker while it still counted as waiting.
            if attempt > 1 && !self.admitted().await {
                return Ok(Outcome::Expired);
            }
            let (retry_after, quota, reason, cause) = match self.client.send(render, timer).await? {
                Verdict::Accepted => return Ok(Outcome::Sent),
                Verdict::Dead(reason) => return Ok(Outcome::Dead(reason)),
                Verdict::Fatal(error) => return Err(error.into()),
                Verdict::Unauthenticated(message) => {
                    return Err(FatalSendError::Unauthenticated(message).into())
                }
                // Per token and intermittent: no retry within the run, but a rerun of the slot may
                // get through.
                Verdict::ThirdPartyAuth(message) => {
                    tracing::debug!(token = target.short(), %message, "THIRD_PARTY_AUTH_ERROR: APNs refused the message");
                    let reason = format!("THIRD_PARTY_AUTH_ERROR: {message}");
                    return Ok(Outcome::Failed { cause: FailureCause::ThirdPartyAuth, reason });
                }
                Verdict::Rejected(reason) => {
                    return Ok(Outcome::Failed { cause: FailureCause::Rejected, reason })
                }
                Verdict::Transient { retry_after, quota, reason } => {
                    (retry_after, quota, reason, FailureCause::Transient)
                }
                Verdict::Unreachable(reason) => (None, false, reason, FailureCause::Unreachable),
            };
            let base = if quota { self.policy.quota_backoff } else { self.policy.backoff };
            let delay = backoff_delay(base, attempt, retry_after);
            let resume_at = Instant::now() + delay;
            if quota {
                self.pacing.pause_until(resume_at);
            }
            let out_of_time = self.policy.deadline.is_some_and(|deadline| resume_at >= deadline);
            if attempt >= self.policy.max_attempts || out_of_time {
                tracing::warn!(token = target.short(), attempt, %reason, "giving up on a message");
                return Ok(Outcome::Failed { cause, reason });
            }
            tracing::debug!(token = target.short(), attempt, %reason, delay_ms = delay.as_millis() as u64, "retrying");
            tokio::select! {
                () = tokio::time::sleep_until(resume_at) => {}
                () = self.stop.stopped() => return Ok(Outcome::Expired),
            }
        }
    }
}

/// How many workers wait for a target (or, holding one, for the rate cap), so that the engine
/// starts another only when none does: a run starts workers up to `--concurrency` as its load
/// needs them. A capped run (`--rate 9000` at 20 ms keeps a few hundred requests in flight) then
/// keeps a few hundred workers instead of 1,500, whose state no longer crowds the CPU's caches
/// (BENCHMARKS.md, issue 21); a run at full speed starts them all within its first answers.
#[derive(Default)]
struct Crew {
    waiting: AtomicUsize,
    more_wanted: Notify,
}

impl Crew {
    /// Counts a new worker as waiting (it is about to take its first target).
    fn joined(&self) {
        self.waiting.fetch_add(1, Ordering::Relaxed);
    }

    /// A worker starts a request: when it was the last one waiting, another is wanted.
    fn started(&self) {
        if self.waiting.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.more_wanted.notify_one();
        }
    }

    /// A worker is done with its target and waits for the next.
    fn back(&self) {
        self.waiting.fetch_add(1, Ordering::Relaxed);
    }

    /// Resolves when a worker started a request and none was left waiting.
    async fn wanted(&self) {
        self.more_wanted.notified().await;
    }
}

/// Exponential back-off from `base`, or the server's `Retry-After` when it gave one, plus up to
/// 25% random jitter so retries from many requests do not arrive together.
pub(crate) fn backoff_delay(base: Duration, attempt: u32, retry_after: Option<Duration>) -> Duration {
    let exponential = base.saturating_mul(1 << attempt.saturating_sub(1).min(16)).min(MAX_BACKOFF);
    let floor = retry_after.map_or(exponential, |asked| asked.min(MAX_RETRY_AFTER));
    let jitter = floor.mul_f64(rand::rng().random_range(0.0..0.25));
    floor + jitter
}

/// The rate cap lets requests go a tick's worth at a time, all at the tick's start, rather
/// than each at its own instant: at 9,000/s that is 180 requests in a few writes a tick instead
/// of 180 writes, 180 timers and 180 wake-ups, which had made a capped message cost 2.3 times
/// the CPU of an uncapped one. The idle thread sleeps until the next tick (`crate::runtime`),
/// so a tick is one wake-up: 20 ms rather than 10 halved them and took a tenth off a capped
/// message's CPU. 40 ms gained little more and would hold each of the run journal's round
/// trips twice as long (BENCHMARKS.md, issue 21). Over any whole number of ticks the rate
/// holds exactly.
const PACING_TICK: Duration = Duration::from_millis(20);
/// A rate below one message a tick is counted at its own interval, but a tick is never
/// longer than this, so a slow spread still starts on time.
const LONGEST_TICK: Duration = Duration::from_secs(1);

/// The run-wide gate every request passes: a pause after a 429, and the rate cap.
struct Pacing {
    /// Under a rate cap, one permit per message, added by the ticker.
    permits: Option<Arc<Semaphore>>,
    ticker: Option<JoinHandle<()>>,
    paused_until: Mutex<Instant>,
    ever_paused: AtomicBool,
}

impl Pacing {
    /// The gate for `rate` (none when `None`): it lets nothing more through once `stop` fires.
    fn new(rate: Option<f64>, stop: &RunStop) -> Self {
        let rate = rate.filter(|&r| r > 0.0);
        let permits = rate.map(|_| Arc::new(Semaphore::new(0)));
        let ticker = rate.zip(permits.clone()).map(|(rate, permits)| {
            let stop = stop.clone();
            tokio::spawn(async move {
                tokio::select! {
                    () = tick(rate, permits.clone()) => {}
                    () = stop.stopped() => permits.close(),
                }
            })
        });
        Pacing {
            permits,
            ticker,
            paused_until: Mutex::new(Instant::now()),
            ever_paused: AtomicBool::new(false),
        }
    }

    /// Waits for the pause to end and for a permit; false when the run stops meanwhile.
    ///
    /// A request waiting for its permit does not also wait for the stop: the ticker closes the
    /// permits when the run stops. Registering with the stop and leaving it again, for every
    /// request, was a tenth of what a capped message cost beyond an uncapped one
    /// (BENCHMARKS.md, issue 21).
    async fn admit(&self, stop: &RunStop) -> bool {
        // Until the first 429 there is no pause to look up (nor a clock to read).
        while self.ever_paused.load(Ordering::Relaxed) {
            let until = *self.paused_until.lock().expect("pacing lock");
            if until <= Instant::now() {
                break;
            }
            tokio::select! {
                () = tokio::time::sleep_until(until) => {}
                () = stop.stopped() => return false,
            }
        }
        let Some(permits) = &self.permits else {
            return true;
        };
        match permits.acquire().await {
            Ok(permit) => {
                permit.forget();
                true
            }
            // Closed: the run stopped.
            Err(_) => false,
        }
    }

    fn pause_until(&self, until: Instant) {
        let mut paused = self.paused_until.lock().expect("pacing lock");
        if until > *paused {
            tracing::info!(
                pause_ms = (until - Instant::now()).as_millis() as u64,
                "FCM quota exceeded: pausing all sends"
            );
            *paused = until;
            self.ever_paused.store(true, Ordering::Relaxed);
        }
    }
}

impl Drop for Pacing {
    fn drop(&mut self) {
        if let Some(ticker) = &self.ticker {
            ticker.abort();
        }
    }
}

/// Adds the permits `rate` has earned since the start, once a tick. Permits nobody took are
/// kept up to one tick's worth: idle time earns no burst beyond that.
async fn tick(rate: f64, permits: Arc<Semaphore>) {
    let period = Duration::from_secs_f64(1.0 / rate).clamp(PACING_TICK, LONGEST_TICK);
    let most_waiting = (rate * period.as_secs_f64()).ceil().max(1.0) as usize;
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let start = Instant::now();
    let mut granted = 0_u64;
    loop {
        let ticked = ticks.tick().await;
        crate::runtime::next_tick_at((ticked + period).into_std());
        // The first message goes at once; the small epsilon keeps 50/s x 20 ms at one.
        let earned = 1 + (rate * start.elapsed().as_secs_f64() + 1e-9).floor() as u64;
        let due = usize::try_from(earned - granted).unwrap_or(usize::MAX);
        // A late tick's permits all go to the requests waiting for them; only unused ones
        // are capped.
        let room = most_waiting.max(due).saturating_sub(permits.available_permits());
        permits.add_permits(due.min(room));
        granted = earned;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_its_base_with_at_most_a_quarter_of_jitter() {
        let base = Duration::from_secs(10);
        for (attempt, floor) in [(1, 10), (2, 20), (3, 40)] {
            let delay = backoff_delay(base, attempt, None);
            assert!(
                delay >= Duration::from_secs(floor) && delay <= Duration::from_secs(floor) * 5 / 4,
                "{delay:?}"
            );
        }
    }

    #[test]
    fn retry_after_replaces_the_exponential_delay() {
        let delay = backoff_delay(Duration::from_secs(60), 3, Some(Duration::from_secs(2)));
        assert!(delay >= Duration::from_secs(2) && delay <= Duration::from_millis(2500), "{delay:?}");
    }

    #[test]
    fn an_absurd_retry_after_is_capped() {
        let delay = backoff_delay(Duration::from_secs(10), 1, Some(Duration::from_secs(u64::MAX)));
        assert!(delay <= MAX_RETRY_AFTER * 5 / 4, "{delay:?}");
    }

    #[test]
    fn backoff_is_capped() {
        assert!(backoff_delay(Duration::from_secs(60), 30, None) <= MAX_BACKOFF * 5 / 4);
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_cap_spaces_requests_evenly() {
        let stop = RunStop::new();
        let pacing = Pacing::new(Some(100.0), &stop);
        let start = Instant::now();
        for _ in 0..51 {
            assert!(pacing.admit(&stop).await);
        }
        assert_eq!(Instant::now() - start, Duration::from_millis(500));
    }

    #[tokio::test(start_paused = true)]
    async fn requests_held_by_the_rate_cap_are_let_go_together_once_a_tick() {
        let stop = RunStop::new();
        let pacing = Pacing::new(Some(9000.0), &stop);
        let start = Instant::now();
        let mut released = Vec::new();
        for _ in 0..361 {
            assert!(pacing.admit(&stop).await);
            released.push(Instant::now() - start);
        }
        let mut instants = released.clone();
        instants.dedup();
        // 9,000/s is 180 slots a 20 ms tick: the first goes at once, the next 180 at 20 ms, the
        // last 180 at 40 ms.
        assert_eq!(instants, [Duration::ZERO, PACING_TICK, PACING_TICK * 2]);
        assert_eq!(released.iter().filter(|&&at| at == PACING_TICK).count(), 180);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_waiting_for_the_rate_cap_is_let_go_unsent_when_the_run_stops() {
        let stop = RunStop::new();
        let pacing = Pacing::new(Some(1.0), &stop);
        assert!(pacing.admit(&stop).await, "the first message goes at once");
        let start = Instant::now();
        let stopper = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            stopper.stop(StopReason::Deadline);
        });
        let admitted = tokio::time::timeout(Duration::from_secs(10), pacing.admit(&stop)).await;
        assert_eq!(admitted, Ok(false), "let go, not held for good");
        assert_eq!(
            Instant::now() - start,
            Duration::from_millis(100),
            "not a second later, at the next permit"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_every_request_until_it_ends() {
        let stop = RunStop::new();
        let pacing = Pacing::new(None, &stop);
        let start = Instant::now();
        pacing.pause_until(start + Duration::from_secs(60));
        assert!(pacing.admit(&stop).await);
        assert!(Instant::now() - start >= Duration::from_secs(60));
    }
}
