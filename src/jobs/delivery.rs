//! The plumbing under a [`Run`](super::sending::Run)'s prepare and send phases, shared by every
//! sending job: tokens stream from their source into the engine, and every answer is counted
//! and, for a journaled slot, reported to the ledger's recorder. Signals, the deadline, a lost ledger and FCM refusing the run all stop it through
//! one [`RunStop`]: no new token is taken, requests in flight finish.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::breaker::{self, PrunePolicy};
use crate::config::Config;
use crate::counts::Counts;
use crate::db::ledger::DeadToken;
use crate::engine::{Delivery, Engine, EngineError, FailureCause, Outcome, Policy};
use crate::error::{Error, Result};
use crate::fcm::auth::{AuthError, Authenticator, ServiceAccountKey};
use crate::fcm::message::{Message, RequestTemplate};
use crate::fcm::target::Targets;
use crate::fcm::{ClientSettings, DeadReason, FatalSendError, FcmClient};
use crate::ledger::{Ending, Recorder, Resolution};
use crate::mode::Mode;
use crate::output::{RunProgress, StdoutBodies, Written};
use crate::spread::{self, Spread};
use crate::stop::{RunStop, SendGate, Signal, StopReason};
use crate::tokens::{
    Candidate, PreparedSource, Rejection, Rejections, SourceError, Target, TokenCounts, TokenFilter,
    TokenPages, TokenSource,
};

/// Targets waiting for a sender; bounded so memory does not grow with the user count. 1,024
/// keeps 1,500 senders fed (a page is read ahead) and held 2 MiB less at the peak than 4,096
/// (BENCHMARKS.md, issue 21).
const TARGET_QUEUE: usize = 1024;

/// What must be ready before any token is read: a message that fits FCM's limit, and an FCM
/// client with an access token (a bad key fails here, before the slot is touched).
pub(crate) struct Prepared {
    template: RequestTemplate,
    client: Arc<FcmClient>,
}

/// Checks the message and obtains an access token.
///
/// # Errors
/// A message over FCM's size limit, missing or refused credentials, OAuth unreachable.
pub(crate) async fn prepare(config: &Config, message: &Message, mode: Mode) -> Result<Prepared> {
    let template = RequestTemplate::new(message, mode == Mode::DryRun)?;
    let client = Arc::new(fcm_client(config).await?);
    tracing::debug!(connections = client.connection_count(), "FCM client ready");
    Ok(Prepared { template, client })
}

/// When a run must stop, and how it spreads its messages.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Timing {
    /// Stop sending this long after the start.
    pub deadline: Option<Duration>,
    /// Send the run's messages evenly over what is left of this window.
    pub spread: Option<Spread>,
}

/// The send phase of `--print`: every admitted target's request body on stdout, one a line,
/// nothing sent.
///
/// # Errors
/// A message over FCM's size limit, the source failing, stdout failing.
pub(crate) async fn print_all(source: TokenSource, message: &Message, targets: Targets) -> Result<Counts> {
    let template = RequestTemplate::new(message, false)?;
    let PreparedSource { pages: mut source, mut filter, .. } = source.prepare(false, targets).await?;
    let mut stdout = StdoutBodies::new();
    let mut body = Vec::new();
    let mut printed = 0;
    'pages: while let Some(page) = source.next_page().await? {
        filter.count_unread(page.unusable_lines, 0);
        for mut candidate in page.candidates {
            let_the_next_page_in().await;
            let Ok(target) = filter.admit(&mut candidate) else { continue };
            template.render_for(target.kind, &target.token, candidate.message.as_deref(), &mut body);
            body.push(b'\n');
            // The reader has gone (`| head -1`): the rest would go nowhere.
            if stdout.write(&body)? == Written::ReaderGone {
                break 'pages;
            }
            printed += 1;
        }
    }
    stdout.finish()?;
    let tokens = filter.counts();
    Ok(Counts {
        targeted: tokens.targeted,
        sent: printed,
        skipped: tokens.skipped(),
        targets: tokens.targets(),
        ..Counts::default()
    })
}

/// What the send phase reports: one value, whatever went wrong.
pub(crate) struct SendReport {
    /// This run's counts.
    pub counts: Counts,
    /// What stopped it early, if anything did.
    pub stopped: Option<StopReason>,
    /// Every token of the source was read and answered.
    pub exhausted: bool,
    /// What made the run fail (FCM refusing it, the source failing, a breaker, a bug).
    pub error: Option<Error>,
    /// The pace a spread run set itself, in messages per second.
    pub pace: Option<f64>,
}

impl SendReport {
    /// A run that failed before it sent anything.
    pub(crate) fn failed(error: Error) -> Self {
        SendReport {
            counts: Counts::default(),
            stopped: None,
            exhausted: false,
            error: Some(error),
            pace: None,
        }
    }

    /// How the ledger should record the end.
    pub(crate) fn ending(&self) -> Ending {
        if self.exhausted && self.stopped.is_none() && self.error.is_none() {
            Ending::Complete
        } else {
            Ending::Stopped
        }
    }
}

/// Sends every token of `source`, reporting to `recorder` when the run is journaled, until the
/// source ends or `stop` fires (here on SIGTERM/SIGINT and at the deadline, elsewhere on a lost
/// ledger). Never fails: what went wrong is in [`SendReport::error`], so the caller records it
/// first.
pub(crate) async fn deliver(
    config: &Config,
    prepared: Prepared,
    source: TokenSource,
    recorder: Option<Recorder>,
    stop: RunStop,
    timing: Timing,
    job: &str,
) -> SendReport {
    // A spread needs the count up front, like a drawn progress bar.
    let count_total = config.output.progress.shown() || timing.spread.is_some();
    let PreparedSource { pages, filter, expected } =
        match source.paged_for_sending().prepare(count_total, config.sending.targets).await {
            Ok(prepared) => prepared,
            Err(error) => return SendReport::failed(error.into()),
        };
    let (pace, rate) = pace_and_rate(config, timing, expected.total);
    let signals = tokio::spawn(stop_on_signal(stop.clone()));
    let timer = timing.deadline.map(|after| tokio::spawn(stop_at_deadline(stop.clone(), after)));
    let gate = recorder.as_ref().map_or_else(SendGate::new, Recorder::gate);
    let policy = policy(config, rate, timing.deadline);
    let engine = Engine::new(prepared.client, prepared.template, policy, stop.clone(), gate);
    let (targets_tx, targets_rx) = async_channel::bounded(TARGET_QUEUE);
    let (deliveries_tx, deliveries_rx) = mpsc::channel(TARGET_QUEUE);
    let progress = Arc::new(RunProgress::new(config.output.progress, expected, job));
    let feeding =
        tokio::spawn(feed(pages, filter, targets_tx, recorder.clone(), stop.clone(), progress.clone()));
    let sending = tokio::spawn(engine.run(targets_rx, deliveries_tx));
    let mut tally = Tally::new(recorder, config.prune, stop.clone());
    tally.record(deliveries_rx, &progress).await;
    progress.finish();
    signals.abort();
    if let Some(timer) = timer {
        timer.abort();
    }
    let sent = sending.await.unwrap_or_else(|panic| std::panic::resume_unwind(panic.into_panic()));
    let fed = feeding.await.unwrap_or_else(|panic| std::panic::resume_unwind(panic.into_panic()));
    tally.report(sent, fed, pace.and(rate))
}

/// A spread run's pace (from the users it expects) and the rate the engine holds to: the pace,
/// capped by `--rate`, or `--rate` alone.
fn pace_and_rate(config: &Config, timing: Timing, expected: Option<u64>) -> (Option<f64>, Option<f64>) {
    let pace = timing.spread.and_then(|spread| spread.pace(expected.unwrap_or(0)));
    let rate = spread::capped(pace, config.sending.rate);
    if let Some(pace) = pace {
        tracing::info!(
            expected,
            pace_per_sec = rate.unwrap_or(pace),
            "spreading the slot's messages over its window"
        );
    }
    (pace, rate)
}

/// The engine's bounds: in flight, rate, attempts and back-offs, and the deadline from now.
fn policy(config: &Config, rate: Option<f64>, deadline: Option<Duration>) -> Policy {
    Policy {
        concurrency: config.sending.concurrency,
        rate,
        max_attempts: config.sending.max_attempts,
        backoff: config.sending.backoff,
        quota_backoff: config.sending.quota_backoff,
        deadline: deadline.map(|after| tokio::time::Instant::now() + after),
    }
}

/// What the token reader did.
struct Fed {
    tokens: TokenCounts,
    exhausted: bool,
}

/// Reads pages, admits each candidate, tells the recorder before queueing it (so the ledger
/// never believes a queued user finished), and stops when the run does.
async fn feed(
    mut source: TokenPages,
    mut filter: TokenFilter,
    out: async_channel::Sender<Target>,
    recorder: Option<Recorder>,
    stop: RunStop,
    progress: Arc<RunProgress>,
) -> Result<Fed, SourceError> {
    loop {
        let page = tokio::select! {
            biased;
            () = stop.stopped() => return Ok(Fed { tokens: filter.counts(), exhausted: false }),
            page = source.next_page() => page,
        };
        let page = match page {
            Ok(Some(page)) => page,
            Ok(None) => return Ok(Fed { tokens: filter.counts(), exhausted: true }),
            Err(error) => {
                stop.stop(StopReason::SourceFailed);
                return Err(error);
            }
        };
        let mut rejected = Rejections::of(&page);
        for mut candidate in page.candidates {
            let_the_next_page_in().await;
            match filter.admit(&mut candidate) {
                Ok(mut target) => {
                    report(recorder.as_ref(), &candidate, false);
                    target.message = candidate.message;
                    if !forward(&out, target, &stop).await {
                        return Ok(Fed { tokens: filter.counts(), exhausted: false });
                    }
                }
                // The database does not return users without a token, except from a retry set.
                Err(Rejection::NoToken) if !candidate.in_retry_set => rejected.no_token += 1,
                Err(rejection) => {
                    rejected.add(rejection, &candidate);
                    report(recorder.as_ref(), &candidate, true);
                }
            }
        }
        filter.count_unread(rejected.unusable_lines, rejected.gone);
        progress.rejected(&rejected);
    }
}

/// Tells the recorder, if the slot is journaled, that the candidate's user was taken or skipped.
fn report(recorder: Option<&Recorder>, candidate: &Candidate, skipped: bool) {
    if let (Some(recorder), Some(user_id)) = (recorder, candidate.user_id) {
        match skipped {
            true => recorder.skipped(user_id, candidate.in_retry_set),
            false => recorder.taken(user_id, candidate.in_retry_set),
        }
    }
}

/// Yields now and then while a page is worked through: the next page is being read on the
/// run's one thread, and its rows are taken off the socket only when this task yields (the
/// database stops sending once the socket's buffer is full).
async fn let_the_next_page_in() {
    tokio::task::consume_budget().await;
}

/// Queues `target` for the engine; false when the run has stopped. A send that waits for room
/// does not also wait for the stop: the queue closes when the engine is done, which ends the
/// wait. (Registering with the stop and leaving it again, for nearly every target
/// while the queue was full, was a cost of every message: BENCHMARKS.md, issue 21.)
async fn forward(out: &async_channel::Sender<Target>, target: Target, stop: &RunStop) -> bool {
    !stop.is_stopped() && out.send(target).await.is_ok()
}

/// Counts every answer, tells the ledger, and watches the breakers.
struct Tally {
    recorder: Option<Recorder>,
    prune: PrunePolicy,
    stop: RunStop,
    counts: Counts,
    mismatches: u64,
    apns_failures: u64,
    refusal: Option<Error>,
}

impl Tally {
    fn new(recorder: Option<Recorder>, prune: PrunePolicy, stop: RunStop) -> Self {
        Tally {
            recorder,
            prune,
            stop,
            counts: Counts::default(),
            mismatches: 0,
            apns_failures: 0,
            refusal: None,
        }
    }

    async fn record(&mut self, mut deliveries: mpsc::Receiver<Delivery>, progress: &RunProgress) {
        while let Some(delivery) = deliveries.recv().await {
            self.count(delivery);
            progress.answered(&self.counts);
            if self.refusal.is_none() {
                self.watch_breakers();
            }
        }
    }

    fn count(&mut self, Delivery { target, outcome }: Delivery) {
        if crate::failpoint::on("panic-while-counting") && self.counts.sent >= 10 {
            panic!("failpoint panic-while-counting after {} messages", self.counts.sent);
        }
        let c = &mut self.counts;
        let resolution = match outcome {
            Outcome::Sent => {
                c.sent += 1;
                Resolution::Sent
            }
            Outcome::Dead(reason) => {
                c.pruned += 1;
                self.mismatches += u64::from(reason == DeadReason::SenderIdMismatch);
                tracing::debug!(token = target.short(), reason = reason.as_str(), "dead token");
                let token = target.stored_token().to_owned();
                Resolution::Dead(DeadToken {
                    user_id: target.user_id.unwrap_or_default(),
                    token,
                    reason: reason.as_str(),
                })
            }
            Outcome::Failed { cause, reason } => {
                c.failed += 1;
                c.unreachable += u64::from(cause == FailureCause::Unreachable);
                self.apns_failures += u64::from(cause == FailureCause::ThirdPartyAuth);
                if cause.retryable() {
                    Resolution::Retry { reason }
                } else {
                    Resolution::Failed
                }
            }
            Outcome::Expired => {
                c.expired += 1;
                let reason = self.stop.reason().map_or("left unsent", StopReason::unsent);
                Resolution::Retry { reason: reason.to_owned() }
            }
        };
        if let (Some(recorder), Some(user_id)) = (&self.recorder, target.user_id) {
            recorder.resolved(user_id, resolution);
        }
    }

    /// The run's report once the engine and the reader are done: the engine's fatal error first,
    /// then the reader's, then a breaker's refusal.
    fn report(
        self,
        sent: Result<(), EngineError>,
        fed: Result<Fed, SourceError>,
        pace: Option<f64>,
    ) -> SendReport {
        let mut counts = self.counts;
        let (exhausted, fed_error) = match fed {
            Ok(Fed { tokens, exhausted }) => {
                counts.targeted = tokens.targeted;
                counts.targets = tokens.targets();
                counts.skipped = tokens.skipped();
                (exhausted, None)
            }
            Err(error) => (false, Some(error.into())),
        };
        let error = sent.err().map(Error::from).or(fed_error).or(self.refusal);
        SendReport { counts, stopped: self.stop.reason(), exhausted, error, pace }
    }

    fn watch_breakers(&mut self) {
        let answered = self.counts.sent + self.counts.pruned + self.counts.failed;
        let refusal = if breaker::apns_key_broken(answered, self.apns_failures) {
            Some(Error::FatalSend(FatalSendError::ThirdPartyAuth(format!(
                "{} of {answered} answers so far",
                self.apns_failures
            ))))
        } else if self.recorder.is_some() && breaker::wrong_project(&self.prune, answered, self.mismatches) {
            Some(Error::WrongProject { mismatches: self.mismatches, answered })
        } else {
            None
        };
        if let Some(refusal) = refusal {
            tracing::error!("{refusal}");
            self.stop.stop(StopReason::Refused);
            self.refusal = Some(refusal);
        }
    }
}

/// SIGTERM (cron's or Kubernetes' stop) or SIGINT (Ctrl-C): take no new tokens, let requests
/// in flight finish (each is bounded by the request timeout), then record and exit 3.
async fn stop_on_signal(stop: RunStop) {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(error) => {
            tracing::warn!(
                "cannot listen for SIGTERM ({error}); it will kill the run without a journal entry"
            );
            return;
        }
    };
    let signal = tokio::select! {
        _ = term.recv() => Signal::Term,
        _ = tokio::signal::ctrl_c() => Signal::Int,
    };
    tracing::warn!(
        "{}: finishing the requests in flight, then stopping; a rerun resumes this slot",
        signal.name()
    );
    stop.stop(StopReason::Signal(signal));
}

/// The deadline holds whatever is slowing the run (the rate cap, a 429 pause, back-offs): it
/// stops the run like a signal, not by being checked between messages.
async fn stop_at_deadline(stop: RunStop, after: Duration) {
    tokio::time::sleep(after).await;
    tracing::warn!(
        "the deadline ({}) passed: stopping; a rerun sends the rest",
        humantime::format_duration(after)
    );
    stop.stop(StopReason::Deadline);
}

/// The FCM client, with an access token obtained up front so a bad key fails before any
/// token is read.
async fn fcm_client(config: &Config) -> Result<FcmClient> {
    let path = config.credentials.as_deref().ok_or(AuthError::Missing)?;
    let key = ServiceAccountKey::load(path)?;
    let project_id = config
        .project_id
        .clone()
        .or_else(|| key.project_id.clone())
        .ok_or_else(|| Error::NoProjectId { key: path.to_owned() })?;
    let auth = Arc::new(Authenticator::new(key)?);
    auth.bearer().await?;
    build_fcm_client(config, &project_id, auth, config.client.concurrency)
}

/// The FCM client of every job that sends and of doctor, for `concurrency` requests in flight.
///
/// # Errors
/// An unusable `--fcm-ca-file` or endpoint (the TLS and URL setup is all that can fail here).
pub(crate) fn build_fcm_client(
    config: &Config,
    project_id: &str,
    auth: Arc<Authenticator>,
    concurrency: usize,
) -> Result<FcmClient> {
    let settings = ClientSettings { concurrency, ..config.client.clone() };
    Ok(FcmClient::new(&config.fcm_endpoint, project_id, auth, &settings)?)
}
