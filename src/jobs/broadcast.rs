//! The guard around cron's sending jobs: a run from the database in send mode goes through the
//! delivery [`ledger`] (one run per job and shard, each slot once and completely,
//! exact resume, pruning judged on the whole slot), with a deadline so a run never collides
//! with the next slot.
//!
//! Runs from `--tokens-file`, `--dry-run` and `--print` are not scheduled deliveries: they take
//! no lock and write no journal.

use std::panic::AssertUnwindSafe;
use std::time::Instant;

use futures::FutureExt;

use chrono::{DateTime, Utc};

use crate::config::{Config, SlotSettings};
use crate::db::ledger::Marks;
use crate::db::tokens::NotArrived;
use crate::db::Database;
use crate::error::{Error, Result};
use crate::fcm::message::Message;
use crate::ledger::{self, Ledger, Opened};
use crate::mode::Mode;
use crate::shard::Shard;
use crate::slot::{IsoWeek, RunKey};
use crate::spread::{SlotClock, Spread};
use crate::stop::{RunStop, StopReason};
use crate::summary::{self, Summary};
use crate::tokens::{ReadFrom, TokenSource, Winners};

use super::delivery::{self, Plan, Ran as Delivered, Timing};
use super::{RunEnd, Skip};

/// A scheduled job's run.
pub(crate) struct Broadcast<'a> {
    /// The job's name (also the lock's and the journal's).
    pub job: &'static str,
    pub slot: String,
    /// The message (targets may carry their own).
    pub message: Message,
    /// Targets, mode and run-safety settings.
    pub settings: &'a SlotSettings,
    /// Who the job sends to when the tokens come from the database.
    pub audience: Audience,
}

/// Who a scheduled job sends to.
#[derive(Debug, Clone)]
pub(crate) enum Audience {
    /// Every `app_user` with a token, in the slot settings' shard.
    AppUsers,
    /// The week's badge winners not yet told of a badge, each with a notification naming the
    /// badges they were not told of; each badge is marked told as its delivery is journaled.
    BadgeWinners {
        /// The week whose badges are announced.
        week: IsoWeek,
        /// When the notifications are sent (their expiry counts from it).
        now: DateTime<Utc>,
        /// Every winner with every badge, told or not (`--force`).
        again: bool,
    },
    /// `path-daily --remind`: the users with a token, in the slot settings' shard, whom the week's
    /// first run reached and whose week has not arrived since it started.
    NotArrived(NotArrived),
}

impl Audience {
    fn source(&self, db: &Database, shard: Shard, start: ReadFrom) -> TokenSource {
        match self {
            Audience::AppUsers => TokenSource::users(db.clone(), shard, start),
            &Audience::BadgeWinners { week, now, again } => {
                TokenSource::winners(db.clone(), Winners { week, now, again }, start)
            }
            Audience::NotArrived(among) => TokenSource::not_arrived(db.clone(), shard, start, among.clone()),
        }
    }

    /// What the slot records for each user it delivers to.
    fn marks(&self) -> Option<Marks> {
        match *self {
            Audience::AppUsers | Audience::NotArrived(_) => None,
            Audience::BadgeWinners { week, .. } => Some(Marks::BadgeNotices { week }),
        }
    }
}

/// Runs one scheduled job and reports it.
///
/// # Errors
/// Whatever stopped the run.
pub(crate) async fn run(config: &Config, job: Broadcast<'_>) -> Result<RunEnd> {
    let started = Instant::now();
    let settings = job.settings;
    let summary = if let Some(path) = &settings.tokens_file {
        let plan = plan(&job, TokenSource::file(path.clone()));
        delivery::execute(config, plan, timing(settings, SlotClock::default()), started).await?
    } else {
        match super::with_database(config, true, async |db| from_database(config, &job, db, started).await)
            .await?
        {
            Ran::Sent(summary) => summary,
            Ran::Skipped(skip) => return Ok(RunEnd::skipped(skip)),
        }
    };
    summary::emit(&summary, &config.output, settings.mode == Mode::Print)?;
    Ok(RunEnd::sent(&summary))
}

/// A database run's end: it sent (whatever the counts), or there was nothing to do.
enum Ran {
    Sent(Summary),
    Skipped(Skip),
}

fn plan(job: &Broadcast<'_>, source: TokenSource) -> Plan {
    Plan {
        job: job.job,
        slot: job.slot.clone(),
        message: job.message.clone(),
        mode: job.settings.mode,
        source,
    }
}

async fn from_database(config: &Config, job: &Broadcast<'_>, db: &Database, started: Instant) -> Result<Ran> {
    let settings = job.settings;
    if settings.mode != Mode::Send {
        let source = job.audience.source(db, settings.shard, ReadFrom::beginning());
        let timing = Timing { deadline: Some(settings.deadline), spread: None };
        return delivery::execute(config, plan(job, source), timing, started).await.map(Ran::Sent);
    }
    db.check_schema().await?;
    let prepared = delivery::prepare(config, &job.message, Mode::Send).await?;
    let key = RunKey { job: job.job.to_owned(), slot: job.slot.clone(), shard: settings.shard };
    let journal =
        ledger::Settings { force: settings.force, prune: config.prune, marks: job.audience.marks() };
    let mut ledger = match Ledger::open(db, key.clone(), journal).await? {
        Opened::Run(ledger) => ledger,
        Opened::Done { detail } => {
            tracing::info!("{key} is already done ({detail}); --force sends it again");
            return Ok(Ran::Skipped(Skip::SlotDone));
        }
        Opened::LockHeld { holder } => {
            tracing::warn!(
                "another {} run holds the lock for shard {} and is alive ({holder}); nothing to do",
                key.job,
                key.shard
            );
            return Ok(Ran::Skipped(Skip::LockHeld));
        }
    };
    let resume = ledger.resume();
    let clock = resume.clock;
    if resume.retry_set > 0 {
        tracing::info!(
            retry_set = resume.retry_set,
            checkpoint = resume.checkpoint,
            "sending the retry set first"
        );
    }
    let start = ReadFrom {
        retry_set: (resume.retry_set > 0).then(|| resume.key.clone()),
        after_user_id: resume.checkpoint,
    };
    let source = job.audience.source(db, settings.shard, start);
    let stop = RunStop::new();
    ledger.start(stop.clone());
    let delivering = delivery::deliver(
        config,
        prepared,
        source,
        Some(ledger.recorder()),
        stop.clone(),
        timing(settings, clock),
        job.job,
    );
    // A bug must not leave the slot `running` with nobody to finish it: stop the run, record it
    // failed, then report the bug (the panic hook has already said where it happened).
    let mut ran = match AssertUnwindSafe(delivering).catch_unwind().await {
        Ok(ran) => ran,
        Err(panic) => {
            stop.stop(StopReason::Refused);
            let error = Error::Other(anyhow::anyhow!(
                "internal error while sending: {}",
                crate::panic_hook::message(&*panic)
            ));
            Delivered {
                counts: Default::default(),
                stopped: stop.reason(),
                exhausted: false,
                error: Some(error),
                pace: None,
            }
        }
    };
    let failure = ran.error.as_ref().map(ToString::to_string);
    let finished = ledger.finish(ran.ending(), failure.as_deref()).await;
    let error = ran.error.take();
    let finished = match finished {
        Ok(finished) => finished,
        // A lost database is better told by the ledger, which knows what it could record; a
        // refused payload or a wrong key by the run.
        Err(lost) => {
            return Err(match error {
                Some(error) if !matches!(error, Error::Db(_) | Error::WrongProject { .. }) => error,
                _ => lost.into(),
            })
        }
    };
    match (error, finished.tripped) {
        (Some(error), _) if !matches!(error, Error::WrongProject { .. }) => return Err(error),
        (_, Some(tripped)) => return Err(ledger::LedgerError::PruneBreaker { key, tripped }.into()),
        (Some(error), None) => return Err(error),
        (None, None) => {}
    }
    let summary = ran.summary((job.job, job.slot.clone(), settings.mode), started.elapsed());
    Ok(Ran::Sent(summary.with_retry_set(finished.totals.retrying)))
}

/// The run's deadline and, when it delivers with a window (`path-daily --spread`), its spread
/// from where the slot stands. Validating (`--dry-run`) is never spread: nothing uploads after it.
fn timing(settings: &SlotSettings, clock: SlotClock) -> Timing {
    let spread =
        settings.spread.filter(|_| settings.mode == Mode::Send).map(|window| Spread { window, clock });
    Timing { deadline: Some(settings.deadline), spread }
}
