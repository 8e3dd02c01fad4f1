//! The jobs, each a short script over the pieces: build the message, pick the tokens, go through
//! the phases of a [`sending::Run`] (all of them, ledger included, for cron's jobs: see
//! [`broadcast`]), report.
//!
//! Every job cron runs goes through one lifecycle ([`run_monitored`]): ping the start, run,
//! update the metrics file, ping the result. `doctor` and `generate` are the operator's tools
//! and skip it.

pub(crate) mod broadcast;
pub(crate) mod delivery;
pub(crate) mod doctor;
pub(crate) mod generate;
pub(crate) mod migrate;
mod remind;
mod report_week;
mod restore;
mod runs;
mod sending;
pub(crate) mod stats_weekly;

use std::time::{Duration, Instant, SystemTime};

use crate::config::{Config, Job, SendKind, Text};
use crate::counts::Counts;
use crate::db::Database;
use crate::error::{Error, Result};
use crate::exit::ExitCode;
use crate::fcm::message::Message;
use crate::metrics::{self, RunRecord};
use crate::ping::{Pinger, Signal};
use crate::slot::{self, IsoWeek};
use crate::summary::{self, Summary};
use crate::tokens::TokenSource;

use broadcast::{Audience, Broadcast};
use delivery::Timing;
use sending::{Run, RunLabel};

/// How a run ended, as the exit status, the metrics file and the health pings report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RunEnd {
    pub exit_code: ExitCode,
    /// The run's message counts, for jobs that send.
    pub counts: Option<Counts>,
    /// Why the run had nothing to do, if it had not.
    pub skipped: Option<Skip>,
}

/// Why a scheduled run did nothing (and exited 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Skip {
    /// The journal says the slot is done already.
    SlotDone,
    /// Another run holds the (job, shard) lock.
    LockHeld,
}

impl RunEnd {
    /// A run that counted its messages.
    pub(crate) fn sent(summary: &Summary) -> Self {
        RunEnd { exit_code: summary.exit_code(), counts: Some(summary.counts), skipped: None }
    }

    /// A run that counts no messages (migrate, stats).
    pub(crate) fn exited(exit_code: ExitCode) -> Self {
        RunEnd { exit_code, counts: None, skipped: None }
    }

    /// A run that had nothing to do: it sent nothing and exits 0.
    pub(crate) fn skipped(skip: Skip) -> Self {
        RunEnd { exit_code: ExitCode::Success, counts: Some(Counts::default()), skipped: Some(skip) }
    }

    /// Whether the run moves the last-success timestamp: it exited 0 and the job is done. A run
    /// that found the lock held says nothing about the job: the holder reports when it ends.
    pub(crate) fn succeeded(&self) -> bool {
        self.exit_code == ExitCode::Success && self.skipped != Some(Skip::LockHeld)
    }
}

/// Runs the configured command; cron's jobs under the monitoring lifecycle: ping `start`
/// (without waiting for it), run, update `--metrics-file`, ping the result. Neither the metrics
/// file nor a ping can change the exit code: their failures are warnings.
///
/// # Errors
/// Whatever stopped the run, unchanged.
pub(crate) async fn run_monitored(config: &Config) -> Result<ExitCode> {
    let monitoring = &config.monitoring;
    if !config.job.is_monitored() || (monitoring.ping_url.is_none() && monitoring.metrics_file.is_none()) {
        return run(config).await.map(|outcome| outcome.exit_code);
    }
    let pinger = monitoring.ping_url.clone().and_then(Pinger::new);
    let start_ping =
        pinger.clone().map(|pinger| tokio::spawn(async move { pinger.ping(Signal::Start, "").await }));
    let started = Instant::now();
    let result = run(config).await;
    let duration = started.elapsed();
    let job = config.job.name();
    let (outcome, ping_body) = match &result {
        Ok(outcome) => (*outcome, describe(job, outcome, duration)),
        Err(error) => {
            let code = error.exit_code();
            (RunEnd::exited(code), format!("{job}: exit {}: {error}", code.code()))
        }
    };
    if let Some(path) = &monitoring.metrics_file {
        let record = RunRecord {
            job,
            shard: config.job.shard(),
            finished_at: SystemTime::now(),
            duration,
            exit_code: outcome.exit_code,
            counts: outcome.counts,
            succeeded: outcome.succeeded(),
        };
        let writing = path.clone();
        let written = tokio::task::spawn_blocking(move || metrics::record(&writing, &record)).await;
        if let Err(error) = written.unwrap_or_else(|e| Err(std::io::Error::other(e))) {
            tracing::warn!(
                "cannot update the metrics file {}: {error}; the job's result is not affected",
                path.display()
            );
        }
    }
    if let Some(pinger) = pinger {
        // Healthchecks must see the start before the end.
        if let Some(start) = start_ping {
            let _ = start.await;
        }
        pinger.ping(Signal::Finished(outcome.exit_code), &ping_body).await;
    }
    result.map(|outcome| outcome.exit_code)
}

/// One line for the ping's body, which Healthchecks shows in the check's event log.
fn describe(job: &str, outcome: &RunEnd, duration: Duration) -> String {
    let mut line = format!("{job}: exit {}", outcome.exit_code.code());
    match (outcome.skipped, outcome.counts) {
        (Some(Skip::SlotDone), _) => line.push_str("; the slot was already done"),
        (Some(Skip::LockHeld), _) => line.push_str("; another run holds the lock"),
        (None, Some(c)) => line.push_str(&format!(
            "; sent {}, pruned {}, failed {}, expired {}, skipped {}",
            c.sent, c.pruned, c.failed, c.expired, c.skipped
        )),
        (None, None) => {}
    }
    line.push_str(&format!(" in {:.3} s", duration.as_secs_f64()));
    line
}

/// Connects to the configured database, runs `work` on it, and closes the pool whatever `work`
/// returned (the server then sees clean disconnects).
///
/// # Errors
/// [`Error::NoDatabase`] when none is configured, connection failures, and `work`'s own.
pub(crate) async fn with_database<T>(
    config: &Config,
    or_tokens_file: bool,
    work: impl AsyncFnOnce(&Database) -> Result<T>,
) -> Result<T> {
    let job = config.job.name();
    let url = config.database_url.as_ref().ok_or(Error::NoDatabase { job, or_tokens_file })?;
    let db = Database::connect(url).await?;
    let result = work(&db).await;
    db.close().await;
    result
}

/// Runs the configured command once, reports it, and says how it ended.
///
/// # Errors
/// Whatever stopped the run; see [`crate::error::Error`].
pub(crate) async fn run(config: &Config) -> Result<RunEnd> {
    match &config.job {
        Job::Migrate => migrate::run(config).await.map(RunEnd::exited),
        Job::StatsWeekly(job) => stats_weekly::run(config, job).await,
        Job::ReportWeek(job) => report_week::run(config, job).await,
        Job::Doctor => doctor::run(config).await.map(RunEnd::exited),
        Job::Runs { job, last } => runs::run(config, job.as_deref(), *last).await.map(RunEnd::exited),
        Job::RestoreTokens(selection) => restore::run(config, selection).await.map(RunEnd::exited),
        Job::Generate { out_dir } => generate::run(out_dir, &config.output).map(RunEnd::exited),
        Job::SaveLocation { settings, slot, ttl } => {
            let job = Broadcast {
                job: config.job.name(),
                slot: slot.to_rfc3339(),
                message: Message::save_location(slot, *ttl),
                settings,
                audience: Audience::AppUsers,
            };
            broadcast::run(config, job).await
        }
        Job::PathDaily { settings, week, text, remind: true } => {
            remind::run(config, settings, *week, text).await
        }
        Job::PathDaily { settings, week, text, remind: false } => {
            let job = Broadcast {
                job: config.job.name(),
                slot: week.to_string(),
                message: path_daily_message(config, *week, text),
                settings,
                audience: Audience::AppUsers,
            };
            broadcast::run(config, job).await
        }
        Job::Send { token, as_kind, kind, mode } => {
            let label = RunLabel { job: config.job.name(), slot: "-".into(), mode: *mode };
            let run = Run::new(config, label, one_off_message(config, kind));
            let source = TokenSource::single(token.clone(), *as_kind);
            let summary = run.unjournaled(source, Timing::default()).await?;
            summary::emit(&summary, &config.output, *mode == crate::mode::Mode::Print)?;
            Ok(RunEnd::sent(&summary))
        }
    }
}

fn one_off_message(config: &Config, kind: &SendKind) -> Message {
    match kind {
        SendKind::SaveLocation => {
            let slot = slot::half_hour(config.now, config.timezone);
            Message::save_location(&slot, slot::HALF_HOUR)
        }
        SendKind::PathDaily(text) => {
            path_daily_message(config, IsoWeek::containing(config.now, config.timezone), text)
        }
    }
}

/// The `path-daily` notification of `week` with `text`, sent now (the reminder's too: the app
/// uploads its week on either).
fn path_daily_message(config: &Config, week: IsoWeek, text: &Text) -> Message {
    let now = config.now.with_timezone(&config.timezone);
    Message::path_daily(week.to_string(), &now, (text.title.clone(), text.body.clone()), text.sound)
}
