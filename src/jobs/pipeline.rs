//! One run's plumbing, shared by every sending job: tokens stream from their source into the
//! sender while the recorder counts outcomes and prunes dead tokens, all three overlapped.

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use indicatif::ProgressBar;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{Batch, Config, Mode};
use crate::db::tokens::{Shard, TokenRow};
use crate::db::Database;
use crate::error::{Error, Result};
use crate::fcm::auth::{AuthError, Authenticator, ServiceAccountKey};
use crate::fcm::message::{Message, RequestTemplate};
use crate::fcm::FcmClient;
use crate::output;
use crate::report::{Counts, Summary};
use crate::send::{Delivery, Engine, EngineError, Outcome, Policy};
use crate::tokens::{SourceError, TokenCounts, TokenSource};

/// Targets waiting for a sender; bounded so memory does not grow with the user count.
const TARGET_QUEUE: usize = 4096;
/// Dead tokens cleared per transaction.
const PRUNE_BATCH: usize = 500;

/// What one run sends, to whom and how.
pub struct Plan {
    /// The job's name.
    pub job: &'static str,
    /// The slot label.
    pub slot: String,
    /// The message.
    pub message: Message,
    /// Deliver, validate or print.
    pub mode: Mode,
    /// Where the tokens come from.
    pub source: TokenSource,
}

/// The token source of a batch job: the tokens file, else the database.
///
/// # Errors
/// [`Error::Config`] when neither is configured; database errors when it cannot be reached.
pub async fn batch_source(config: &Config, batch: &Batch) -> Result<TokenSource> {
    if let Some(path) = &batch.tokens_file {
        return Ok(TokenSource::File(path.clone()));
    }
    let db = connect(config).await?.ok_or_else(|| {
        Error::Config(
            "no tokens to send: set WOLLEY_DATABASE_URL (or --database-url) to the backend's \
             MariaDB, or give --tokens-file"
                .into(),
        )
    })?;
    Ok(TokenSource::Database { db, after_user_id: 0, shard: Shard::ALL })
}

async fn connect(config: &Config) -> Result<Option<Database>> {
    match &config.database_url {
        Some(url) => Ok(Some(Database::connect(url).await?)),
        None => Ok(None),
    }
}

/// Runs `plan` to the end.
///
/// # Errors
/// A message over FCM's size limit, missing credentials, an unreachable database, or FCM
/// refusing the run.
pub async fn execute(config: &Config, plan: Plan, started: Instant) -> Result<Summary> {
    let template = RequestTemplate::new(&plan.message, plan.mode == Mode::DryRun)?;
    let (counts, db) = match plan.mode {
        Mode::Print => (print_all(plan.source, &template).await?, None),
        Mode::Send | Mode::DryRun => {
            let db = match &plan.source {
                TokenSource::Database { db, .. } => Some(db.clone()),
                _ => None,
            };
            let prune = if plan.mode == Mode::Send { db.clone() } else { None };
            (send_all(config, plan.source, template, prune, plan.job).await?, db)
        }
    };
    if let Some(db) = db {
        db.close().await;
    }
    Ok(Summary::new(plan.job, plan.slot, plan.mode.as_str(), counts, started.elapsed()))
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

async fn send_all(
    config: &Config,
    source: TokenSource,
    template: RequestTemplate,
    prune: Option<Database>,
    job: &str,
) -> Result<Counts> {
    let client = Arc::new(fcm_client(config).await?);
    tracing::debug!(connections = client.connection_count(), "FCM client ready");
    let stop = CancellationToken::new();
    let policy = Policy {
        concurrency: config.sending.concurrency,
        rate: config.sending.rate,
        max_attempts: config.sending.max_attempts,
        backoff: config.sending.backoff,
        quota_backoff: config.sending.quota_backoff,
        deadline: None,
    };
    let engine = Engine::new(client, template, policy, stop.clone());
    let (targets_tx, targets_rx) = async_channel::bounded(TARGET_QUEUE);
    let (deliveries_tx, deliveries_rx) = mpsc::channel(TARGET_QUEUE);
    let feeding = tokio::spawn(source.feed(targets_tx, stop.clone()));
    let sending = tokio::spawn(engine.run(targets_rx, deliveries_tx));
    let bar = output::progress_bar(config.output.progress, 0, job);
    let mut counts = record(deliveries_rx, prune.as_ref(), &bar).await;
    bar.finish_and_clear();
    let sent = sending.await.expect("the sender does not panic");
    let fed = feeding.await.expect("the token reader does not panic");
    sent.map_err(engine_error)?;
    let tokens: TokenCounts = fed.map_err(source_error)?;
    counts.targeted = tokens.targeted;
    counts.skipped = tokens.skipped();
    Ok(counts)
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
    Ok(FcmClient::new(&config.fcm_endpoint, &project_id, auth, &config.client)?)
}

/// Counts every delivery and clears dead tokens from `app_user` in batches.
async fn record(
    mut deliveries: mpsc::Receiver<Delivery>,
    prune: Option<&Database>,
    bar: &ProgressBar,
) -> Counts {
    let mut counts = Counts::default();
    let mut dead = Vec::new();
    while let Some(Delivery { target, outcome }) = deliveries.recv().await {
        match outcome {
            Outcome::Sent => counts.sent += 1,
            Outcome::Dead(reason) => {
                counts.pruned += 1;
                tracing::debug!(token = target.short(), reason = reason.as_str(), "dead token");
                if let (Some(_), Some(user_id)) = (prune, target.user_id) {
                    dead.push(TokenRow { user_id, token: target.stored_token().to_owned() });
                }
            }
            Outcome::Failed { unreachable, .. } => {
                counts.failed += 1;
                counts.unreachable += u64::from(unreachable);
            }
            Outcome::Expired => counts.expired += 1,
        }
        bar.inc(1);
        if dead.len() >= PRUNE_BATCH {
            flush_pruned(prune, &mut dead).await;
        }
    }
    flush_pruned(prune, &mut dead).await;
    counts
}

async fn flush_pruned(db: Option<&Database>, dead: &mut Vec<TokenRow>) {
    let Some(db) = db else { return };
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
