//! The guard around cron's sending jobs: a run from the database in send mode goes through the
//! delivery [`ledger`] (one run per job and shard, each slot once and completely,
//! exact resume, pruning judged on the whole slot), with a deadline so a run never collides
//! with the next slot.
//!
//! Runs from `--tokens-file`, `--dry-run` and `--print` are not scheduled deliveries: they take
//! no lock and write no journal.

use chrono::{DateTime, Utc};

use crate::config::{Config, SlotSettings};
use crate::db::ledger::Marks;
use crate::db::tokens::NotArrived;
use crate::db::Database;
use crate::error::Result;
use crate::fcm::message::Message;
use crate::ledger;
use crate::mode::Mode;
use crate::shard::Shard;
use crate::slot::{IsoWeek, RunKey};
use crate::spread::{SlotClock, Spread};
use crate::summary::{self, Summary};
use crate::tokens::{ReadFrom, TokenSource, Winners};

use super::delivery::Timing;
use super::sending::{Open, OpenSlot, Run, RunLabel};
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
    let settings = job.settings;
    let label = RunLabel { job: job.job, slot: job.slot.clone(), mode: settings.mode };
    let run = Run::new(config, label, job.message.clone());
    let summary = if let Some(path) = &settings.tokens_file {
        run.unjournaled(TokenSource::file(path.clone()), timing(settings, SlotClock::default())).await?
    } else {
        match super::with_database(config, true, async |db| from_database(&run, &job, db).await).await? {
            FromDatabase::Sent(summary) => summary,
            FromDatabase::Skipped(skip) => return Ok(RunEnd::skipped(skip)),
        }
    };
    summary::emit(&summary, &config.output, settings.mode == Mode::Print)?;
    Ok(RunEnd::sent(&summary))
}

/// A database run's end: it sent (whatever the counts), or there was nothing to do.
enum FromDatabase {
    Sent(Summary),
    Skipped(Skip),
}

/// A run over the audience's users: validated and printed runs take no lock; a delivery goes
/// through every phase of the [`Run`], the slot's ledger open.
async fn from_database(run: &Run<'_>, job: &Broadcast<'_>, db: &Database) -> Result<FromDatabase> {
    let settings = job.settings;
    if settings.mode != Mode::Send {
        let source = job.audience.source(db, settings.shard, ReadFrom::beginning());
        let timing = Timing { deadline: Some(settings.deadline), spread: None };
        return run.unjournaled(source, timing).await.map(FromDatabase::Sent);
    }
    db.check_schema().await?;
    let prepared = run.prepare().await?;
    let key = RunKey { job: job.job.to_owned(), slot: job.slot.clone(), shard: settings.shard };
    let journal =
        ledger::Settings { force: settings.force, prune: run.config().prune, marks: job.audience.marks() };
    let OpenSlot { mut ledger, read_from, clock } = match run.open(db, key, journal).await? {
        Open::Slot(slot) => *slot,
        Open::Skip(skip) => return Ok(FromDatabase::Skipped(skip)),
    };
    let source = job.audience.source(db, settings.shard, read_from);
    let report = run.send(prepared, source, Some(&mut ledger), timing(settings, clock)).await;
    run.close(ledger, report).await.map(FromDatabase::Sent)
}

/// The run's deadline and, when it delivers with a window (`path-daily --spread`), its spread
/// from where the slot stands. Validating (`--dry-run`) is never spread: nothing uploads after it.
fn timing(settings: &SlotSettings, clock: SlotClock) -> Timing {
    let spread =
        settings.spread.filter(|_| settings.mode == Mode::Send).map(|window| Spread { window, clock });
    Timing { deadline: Some(settings.deadline), spread }
}
