//! `path-daily --remind`: the week's second notification, at a humane hour, to the users the
//! slot's `path-daily` run reached whose week has not arrived since that run started.
//!
//! The script: read the first run's journal row (refusing, with nothing sent, when there is
//! none or it is still running), turn it into the audience ([`NotArrived`]: at or below its
//! checkpoint, not in its retry set, no upload of the announced week since its first start),
//! then send as any scheduled delivery: a [`Broadcast`] of its own job and slot, so the ledger's
//! lock, journal, retry set, crash bounds and pruning make each user reminded at most once.

use chrono::Duration;

use crate::config::{Config, SlotSettings, Text};
use crate::db::ledger::RunStatus;
use crate::db::tokens::NotArrived;
use crate::db::Database;
use crate::error::{Error, Result};
use crate::names;
use crate::shard::Shard;
use crate::slot::{self, IsoWeek, RunKey};
use crate::stats::uploads;

use super::broadcast::{self, Audience, Broadcast};
use super::RunEnd;

/// Reminds, after path-daily's slot `first`, the users of the settings' shard it reached whose
/// week has not arrived.
///
/// # Errors
/// [`Error::NoFirstRun`] (exit 78) and [`Error::FirstRunUnfinished`] (exit 75) before anything
/// is sent; otherwise as any scheduled delivery.
pub(crate) async fn run(
    config: &Config,
    settings: &SlotSettings,
    first: IsoWeek,
    text: &Text,
) -> Result<RunEnd> {
    let among =
        super::with_database(config, false, async |db| audience(config, db, first, settings.shard).await)
            .await?;
    let job = Broadcast {
        job: names::PATH_DAILY_REMIND,
        slot: slot::remind_slot(first),
        // The same data as the first run's message (`pathDaily`, its week).
        message: super::path_daily_message(config, first, text),
        settings,
        audience: Audience::NotArrived(among),
    };
    broadcast::run(config, job).await
}

/// Who the reminder is for, from path-daily's row of slot `first` on `shard`.
async fn audience(config: &Config, db: &Database, first: IsoWeek, shard: Shard) -> Result<NotArrived> {
    db.check_schema().await?;
    let key = RunKey { job: names::PATH_DAILY.to_owned(), slot: first.to_string(), shard };
    let missing = || Error::NoFirstRun { slot: key.slot.clone(), shard };
    let (status, checkpoint) = db.slot_standing(&key).await?.ok_or_else(missing)?;
    if status == RunStatus::Running {
        return Err(Error::FirstRunUnfinished { slot: key.slot.clone(), shard });
    }
    // Counted from the slot's first start over all its shards, as the upload coverage counts.
    let run = db.run_start(names::PATH_DAILY, &key.slot).await?.ok_or_else(missing)?;
    let since = uploads::first_start(run, config.timezone).naive_local();
    let monday = first.previous().monday();
    Ok(NotArrived { first: key, checkpoint, week: (monday, monday + Duration::days(6)), since })
}
