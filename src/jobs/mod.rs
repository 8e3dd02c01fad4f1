//! The jobs, each a short script over the pieces: build the message, pick the tokens, run the
//! [`pipeline`], report.

pub mod migrate;
pub mod pipeline;
pub mod stats_weekly;

use std::time::Instant;

use crate::config::{Config, Job, Mode, SendKind};
use crate::error::Result;
use crate::exit::ExitCode;
use crate::fcm::message::Message;
use crate::report::{self, Summary};
use crate::slot::{self, IsoWeek};
use crate::tokens::TokenSource;

use pipeline::Plan;

/// Runs the configured job once, reports it, and returns the exit code it deserves.
///
/// # Errors
/// Whatever stopped the run; see [`crate::error::Error`].
pub async fn run(config: &Config) -> Result<ExitCode> {
    match &config.job {
        Job::Migrate => migrate::run(config).await,
        Job::StatsWeekly(job) => stats_weekly::run(config, job).await,
        Job::SaveLocation { .. } | Job::PathDaily { .. } | Job::Send { .. } => {
            let summary = send_job(config).await?;
            report::emit(&summary, &config.output, printing(config))?;
            Ok(summary.exit_code())
        }
    }
}

/// With `--print`, stdout carries the request bodies.
fn printing(config: &Config) -> bool {
    match &config.job {
        Job::SaveLocation { batch, .. } | Job::PathDaily { batch, .. } => batch.mode == Mode::Print,
        Job::Send { mode, .. } => *mode == Mode::Print,
        Job::StatsWeekly(_) | Job::Migrate => false,
    }
}

async fn send_job(config: &Config) -> Result<Summary> {
    let started = Instant::now();
    let plan = match &config.job {
        Job::SaveLocation { batch, ttl } => {
            let slot = slot::half_hour(config.now, config.timezone);
            Plan {
                job: "save-location",
                slot: slot.to_rfc3339(),
                message: Message::save_location(&slot, *ttl),
                mode: batch.mode,
                source: pipeline::batch_source(config, batch).await?,
            }
        }
        Job::PathDaily { batch, text } => {
            let week = IsoWeek::containing(config.now, config.timezone);
            let now = config.now.with_timezone(&config.timezone);
            Plan {
                job: "path-daily",
                slot: week.to_string(),
                message: Message::path_daily(week.to_string(), &now, text.title.clone(), text.body.clone()),
                mode: batch.mode,
                source: pipeline::batch_source(config, batch).await?,
            }
        }
        Job::Send { token, kind, mode } => Plan {
            job: "send",
            slot: "-".into(),
            message: one_off_message(config, kind),
            mode: *mode,
            source: TokenSource::Single(token.clone()),
        },
        Job::StatsWeekly(_) | Job::Migrate => unreachable!("not a sending job"),
    };
    pipeline::execute(config, plan, started).await
}

fn one_off_message(config: &Config, kind: &SendKind) -> Message {
    match kind {
        SendKind::SaveLocation => {
            let slot = slot::half_hour(config.now, config.timezone);
            Message::save_location(&slot, std::time::Duration::from_secs(1800))
        }
        SendKind::PathDaily(text) => {
            let week = IsoWeek::containing(config.now, config.timezone);
            let now = config.now.with_timezone(&config.timezone);
            Message::path_daily(week.to_string(), &now, text.title.clone(), text.body.clone())
        }
    }
}
