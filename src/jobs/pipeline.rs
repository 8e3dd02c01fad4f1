//! One run's plumbing, shared by every sending job: tokens stream from their source into the
//! sender while the recorder counts outcomes, prunes dead tokens and keeps the journal's
//! checkpoint, all three overlapped. SIGTERM/SIGINT stop it cleanly.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Mode};
use crate::db::tokens::TokenRow;
use crate::db::Database;
use crate::error::{Error, Result};
use crate::fcm::auth::{AuthError, Authenticator, ServiceAccountKey};
use crate::fcm::message::{Message, RequestTemplate};
use crate::fcm::FcmClient;
use crate::journal::Journal;
use crate::output;
use crate::report::{Counts, Summary};
use crate::send::{Delivery, Engine, EngineError, Outcome, Policy};
use crate::tokens::{SourceError, TokenCounts, TokenSource};

/// Targets waiting for a sender; bounded so memory does not grow with the user count.
const TARGET_QUEUE: usize = 4096;
/// Dead tokens cleared per transaction.
const PRUNE_BATCH: usize = 500;
/// The journal's checkpoint is written at least this often…
const SAVE_EVERY: Duration = Duration::from_secs(1);
/// …and at least every this many messages.
const SAVE_EVERY_MESSAGES: u64 = 1000;

/// What one run sends, to whom and how.
pub struct Plan {
    /// The job's name.
    pub job: &'static str,
    /// The slot label.
    pub slot: String,
    /// The message (targets may carry their own).
    pub message: Message,
    /// Deliver, validate or print.
    pub mode: Mode,
    /// Where the tokens come from.
    pub source: TokenSource,
}

/// Run-safety options of a scheduled run.
#[derive(Default)]
pub struct Guard<'a> {
    /// The journal row this run writes its checkpoint and counts to.
    pub journal: Option<&'a Journal>,
    /// No message starts after this long.
    pub deadline: Option<Duration>,
}

/// Runs `plan` to the end, unjournaled.
///
/// # Errors
/// As [`execute_guarded`].
pub async fn execute(config: &Config, plan: Plan, started: Instant) -> Result<Summary> {
    execute_guarded(config, plan, Guard::default(), started).await
}

/// Runs `plan` to the end under `guard`.
///
/// # Errors
/// A message over FCM's size limit, missing credentials, an unreachable database, or FCM
/// refusing the run.
pub async fn execute_guarded(
    config: &Config,
    plan: Plan,
    guard: Guard<'_>,
    started: Instant,
) -> Result<Summary> {
    let template = RequestTemplate::new(&plan.message, plan.mode == Mode::DryRun)?;
    let (counts, interrupted) = match plan.mode {
        Mode::Print => (print_all(plan.source, &template).await?, false),
        Mode::Send | Mode::DryRun => {
            let prune = match (&plan.source, plan.mode) {
                (TokenSource::Database { db, .. }, Mode::Send) => Some(db.clone()),
                (TokenSource::BadgeWinners(winners), Mode::Send) => Some(winners.database().clone()),
                _ => None,
            };
            send_all(
                config,
                plan.source,
                template,
                Recorder { prune, journal: guard.journal },
                guard.deadline,
                plan.job,
            )
            .await?
        }
    };
    let summary = Summary::new(plan.job, plan.slot, plan.mode.as_str(), counts, started.elapsed());
    Ok(if interrupted { summary.interrupted() } else { summary })
}

async fn print_all(source: TokenSource, template: &RequestTemplate) -> Result<Counts> {
    let (tx, rx) = async_channel::bounded(TARGET_QUEUE);
    let feeding = tokio::spawn(source.feed(tx, CancellationToken::new()));
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    let mut body = Vec::new();
    let mut printed = 0;
    while let Ok(target) = rx.recv().await {
        template.render_for(&target.token, target.message.as_deref(), &mut body);
        body.push(b'\n');
        stdout.write_all(&body)?;
        printed += 1;
    }
    stdout.flush()?;
    let tokens = feeding.await.expect("the token reader does not panic").map_err(source_error)?;
    Ok(Counts { targeted: tokens.targeted, sent: printed, skipped: tokens.skipped(), ..Counts::default() })
}

/// Returns the counts and whether a signal stopped the run.
async fn send_all(
    config: &Config,
    source: TokenSource,
    template: RequestTemplate,
    recorder: Recorder<'_>,
    deadline: Option<Duration>,
    job: &str,
) -> Result<(Counts, bool)> {
    let client = Arc::new(fcm_client(config).await?);
    tracing::debug!(connections = client.connection_count(), "FCM client ready");
    let stop = CancellationToken::new();
    let signals = tokio::spawn(stop_on_signal(stop.clone()));
    let policy = Policy {
        concurrency: config.sending.concurrency,
        rate: config.sending.rate,
        max_attempts: config.sending.max_attempts,
        backoff: config.sending.backoff,
        quota_backoff: config.sending.quota_backoff,
        deadline: deadline.map(|d| tokio::time::Instant::now() + d),
    };
    let engine = Engine::new(client, template, policy, stop.clone());
    let (targets_tx, targets_rx) = async_channel::bounded(TARGET_QUEUE);
    let (deliveries_tx, deliveries_rx) = mpsc::channel(TARGET_QUEUE);
    let feeding = tokio::spawn(source.feed(targets_tx, stop.clone()));
    let sending = tokio::spawn(engine.run(targets_rx, deliveries_tx));
    let bar = output::progress_bar(config.output.progress, 0, job);
    let mut counts = recorder.record(deliveries_rx, &bar).await;
    bar.finish_and_clear();
    signals.abort();
    let sent = sending.await.expect("the sender does not panic");
    let fed = feeding.await.expect("the token reader does not panic");
    let interrupted = stop.is_cancelled() && sent.is_ok();
    sent.map_err(engine_error)?;
    let tokens: TokenCounts = fed.map_err(source_error)?;
    counts.targeted = tokens.targeted;
    counts.skipped = tokens.skipped();
    Ok((counts, interrupted))
}

/// SIGTERM (cron's or Kubernetes' stop) or SIGINT (Ctrl-C): take no new tokens, let requests
/// in flight finish (each is bounded by the request timeout), then record and exit 3.
async fn stop_on_signal(stop: CancellationToken) {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(error) => {
            tracing::warn!(
                "cannot listen for SIGTERM ({error}); it will kill the run without a journal entry"
            );
            return;
        }
    };
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = tokio::signal::ctrl_c() => "SIGINT",
    };
    tracing::warn!("{name}: finishing the requests in flight, then stopping; a rerun resumes this slot");
    stop.cancel();
}

/// The FCM client, with an access token obtained up front so a bad key fails before any
/// token is read.
async fn fcm_client(config: &Config) -> Result<FcmClient> {
    let path = config.credentials.as_deref().ok_or(AuthError::Missing)?;
    let key = ServiceAccountKey::load(path)?;
    let project_id = config.project_id.clone().or_else(|| key.project_id.clone()).ok_or_else(|| {
        Error::Config(format!(
            "the key {} names no project_id: set WOLLEY_FCM_PROJECT_ID or --project-id",
            path.display()
        ))
    })?;
    let auth = Arc::new(Authenticator::new(key)?);
    auth.bearer().await?;
    // Building fails only on the TLS setup, i.e. an unusable --fcm-ca-file.
    FcmClient::new(&config.fcm_endpoint, &project_id, auth, &config.client)
        .map_err(|error| Error::Config(format!("{error:#}")))
}

/// Counts every delivery, clears dead tokens from `app_user` in batches, and keeps the
/// journal's checkpoint current.
struct Recorder<'a> {
    prune: Option<Database>,
    journal: Option<&'a Journal>,
}

impl Recorder<'_> {
    async fn record(&self, mut deliveries: mpsc::Receiver<Delivery>, bar: &ProgressBar) -> Counts {
        let mut counts = Counts::default();
        let mut dead = Vec::new();
        let mut unsaved = 0;
        let mut save_timer = tokio::time::interval(SAVE_EVERY);
        save_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let delivery = tokio::select! {
                next = deliveries.recv() => match next {
                    Some(delivery) => delivery,
                    None => break,
                },
                _ = save_timer.tick(), if self.journal.is_some() && unsaved > 0 => {
                    self.save(&counts, &mut dead).await;
                    unsaved = 0;
                    continue;
                }
            };
            self.count(delivery, &mut counts, &mut dead);
            bar.inc(1);
            unsaved += 1;
            if dead.len() >= PRUNE_BATCH || (self.journal.is_some() && unsaved >= SAVE_EVERY_MESSAGES) {
                self.save(&counts, &mut dead).await;
                unsaved = 0;
            }
        }
        self.flush_pruned(&mut dead).await;
        counts
    }

    fn count(&self, Delivery { target, outcome }: Delivery, counts: &mut Counts, dead: &mut Vec<TokenRow>) {
        let finished = match outcome {
            Outcome::Sent => {
                counts.sent += 1;
                true
            }
            Outcome::Dead(reason) => {
                counts.pruned += 1;
                tracing::debug!(token = target.short(), reason = reason.as_str(), "dead token");
                if let (Some(_), Some(user_id)) = (&self.prune, target.user_id) {
                    dead.push(TokenRow { user_id, token: target.stored_token().to_owned() });
                }
                true
            }
            Outcome::Failed { unreachable, retryable, .. } => {
                counts.failed += 1;
                counts.unreachable += u64::from(unreachable);
                !retryable
            }
            Outcome::Expired => {
                counts.expired += 1;
                false
            }
        };
        if let (Some(journal), Some(user_id)) = (self.journal, target.user_id) {
            match finished {
                true => journal.checkpoint().finished(user_id),
                false => journal.checkpoint().stuck(user_id),
            }
        }
    }

    /// Prunes first, so the journal never records a checkpoint past a dead token still stored.
    async fn save(&self, counts: &Counts, dead: &mut Vec<TokenRow>) {
        self.flush_pruned(dead).await;
        if let Some(journal) = self.journal {
            journal.save(counts).await;
        }
    }

    async fn flush_pruned(&self, dead: &mut Vec<TokenRow>) {
        let Some(db) = &self.prune else { return };
        if dead.is_empty() {
            return;
        }
        match db.prune_tokens(dead).await {
            Ok(cleared) => tracing::debug!(dead = dead.len(), cleared, "pruned dead tokens"),
            // The tokens stay; the next run meets them again and retries the prune.
            Err(error) => tracing::warn!(dead = dead.len(), "could not prune dead tokens: {error}"),
        }
        dead.clear();
    }
}

fn engine_error(error: EngineError) -> Error {
    match error {
        EngineError::Fatal(e) => Error::FatalSend(e),
        EngineError::Auth(e) => Error::Auth(e),
    }
}

fn source_error(error: SourceError) -> Error {
    match error {
        SourceError::Db(e) => Error::Db(e),
        SourceError::File(e) => Error::TokenFile(e),
    }
}
