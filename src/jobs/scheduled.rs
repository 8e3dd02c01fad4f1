//! The guard around cron's sending jobs: one run per (job, shard) at a time (a MariaDB lock),
//! each slot once and completely (the run journal: skip a done slot, resume an unfinished one),
//! and a deadline so a run never collides with the next slot.
//!
//! Runs from `--tokens-file`, `--dry-run` and `--print` are not scheduled deliveries: they take
//! no lock and write no journal.

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};

use crate::config::{Batch, Config, Mode};
use crate::db::journal::RunKey;
use crate::db::Database;
use crate::error::{Error, Result};
use crate::exit::ExitCode;
use crate::fcm::message::Message;
use crate::journal::{Begin, Checkpoint, Journal, RunStatus};
use crate::report::{self, Summary};
use crate::shard::Shard;
use crate::slot::IsoWeek;
use crate::stats::notify::BadgeWinners;
use crate::tokens::TokenSource;

use super::pipeline::{self, Guard, Plan};
use super::{Outcome, Skip};

/// A scheduled job's run.
pub struct Scheduled<'a> {
    /// The job's name (also the lock's and the journal's).
    pub job: &'static str,
    /// The slot label.
    pub slot: String,
    /// The message (targets may carry their own).
    pub message: Message,
    /// Targets, mode and run-safety settings.
    pub batch: &'a Batch,
    /// Who the job sends to when the tokens come from the database.
    pub audience: Audience,
}

/// Who a scheduled job sends to.
#[derive(Debug, Clone, Copy)]
pub enum Audience {
    /// Every `app_user` with a token, in the batch's shard.
    AppUsers,
    /// The week's badge winners, each with a notification naming their badges.
    BadgeWinners {
        /// The week whose badges are announced.
        week: IsoWeek,
        /// When the notifications are sent (their expiry counts from it).
        now: DateTime<Utc>,
    },
}

impl Audience {
    /// The token source, reading users after `after_user_id` and reporting to `checkpoint`.
    fn source(
        self,
        db: &Database,
        after_user_id: i64,
        shard: Shard,
        checkpoint: Option<Arc<Checkpoint>>,
    ) -> TokenSource {
        match self {
            Audience::AppUsers => TokenSource::Database { db: db.clone(), after_user_id, shard, checkpoint },
            Audience::BadgeWinners { week, now } => TokenSource::BadgeWinners(
                BadgeWinners::new(db.clone(), week, now)
                    .resume_after(after_user_id)
                    .with_checkpoint(checkpoint),
            ),
        }
    }
}

/// Runs one scheduled job and reports it.
///
/// # Errors
/// Whatever stopped the run.
pub async fn run(config: &Config, job: Scheduled<'_>) -> Result<Outcome> {
    let started = Instant::now();
    let batch = job.batch;
    let printing = batch.mode == Mode::Print;
    let summary = if let Some(path) = &batch.tokens_file {
        let plan = plan(&job, TokenSource::File(path.clone()));
        pipeline::execute_guarded(
            config,
            plan,
            Guard { journal: None, deadline: Some(batch.deadline) },
            started,
        )
        .await?
    } else {
        let db = connect(config).await?;
        let result = from_database(config, &job, &db, started).await;
        db.close().await;
        match result? {
            Ran::Sent(summary) => summary,
            Ran::Skipped(skip) => return Ok(Outcome::skipped(skip)),
        }
    };
    report::emit(&summary, &config.output, printing)?;
    Ok(Outcome::sent(&summary))
}

/// A database run's end: it sent (whatever the counts), or there was nothing to do.
enum Ran {
    Sent(Summary),
    Skipped(Skip),
}

fn plan(job: &Scheduled<'_>, source: TokenSource) -> Plan {
    Plan { job: job.job, slot: job.slot.clone(), message: job.message.clone(), mode: job.batch.mode, source }
}

async fn connect(config: &Config) -> Result<Database> {
    let url = config.database_url.as_ref().ok_or_else(|| {
        Error::Config(
            "no tokens to send: set WOLLEY_DATABASE_URL (or --database-url) to the backend's MariaDB, \
             or give --tokens-file"
                .into(),
        )
    })?;
    Ok(Database::connect(url).await?)
}

async fn from_database(config: &Config, job: &Scheduled<'_>, db: &Database, started: Instant) -> Result<Ran> {
    let batch = job.batch;
    let shard = batch.shard;
    if batch.mode != Mode::Send {
        let source = job.audience.source(db, 0, shard, None);
        let guard = Guard { journal: None, deadline: Some(batch.deadline) };
        return pipeline::execute_guarded(config, plan(job, source), guard, started).await.map(Ran::Sent);
    }
    db.check_schema().await?;
    let lock_name = format!("{}:{shard}", job.job);
    let Some(lock) = db.try_lock(&lock_name).await? else {
        let holder = match db.running_holder(job.job, &shard.to_string()).await? {
            Some((host, pid, since)) => format!("host {host}, pid {pid}, since {since}"),
            None => "a run that is just starting".to_owned(),
        };
        tracing::warn!("another {} run holds the lock for shard {shard} ({holder}); nothing to do", job.job);
        return Ok(Ran::Skipped(Skip::LockHeld));
    };
    let result = journaled(config, job, db, started).await;
    lock.release().await;
    result
}

async fn journaled(config: &Config, job: &Scheduled<'_>, db: &Database, started: Instant) -> Result<Ran> {
    let batch = job.batch;
    let key = RunKey { job: job.job.to_owned(), slot: job.slot.clone(), shard: batch.shard.to_string() };
    let journal = match Journal::begin(db, key, batch.force).await? {
        Begin::AlreadyDone { finished_at } => {
            tracing::info!(
                "{} {} (shard {}) is already done (finished {finished_at}); --force sends it again",
                job.job,
                job.slot,
                batch.shard
            );
            return Ok(Ran::Skipped(Skip::SlotDone));
        }
        Begin::Run(journal) => journal,
    };
    let checkpoint = Some(journal.checkpoint().clone());
    let source = job.audience.source(db, journal.resume_after(), batch.shard, checkpoint);
    let guard = Guard { journal: Some(&journal), deadline: Some(batch.deadline) };
    match pipeline::execute_guarded(config, plan(job, source), guard, started).await {
        Ok(summary) => {
            let status = match summary.exit_code() {
                ExitCode::Success => RunStatus::Done,
                _ => RunStatus::Partial,
            };
            journal.finish(&summary.counts, status, None).await?;
            Ok(Ran::Sent(summary))
        }
        Err(error) => {
            let message = error.to_string();
            if let Err(journal_error) = journal.fail(&message).await {
                tracing::warn!("could not record the failure in the run journal: {journal_error}");
            }
            Err(error)
        }
    }
}
