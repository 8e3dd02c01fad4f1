//! The jobs, each a short script over the pieces: build the message, pick the tokens, run the
//! [`pipeline`] (under the [`scheduled`] run guard for cron's jobs), report.

pub mod migrate;
pub mod pipeline;
pub mod scheduled;
pub mod stats_weekly;

use std::time::{Duration, Instant};

use crate::config::{Config, Job, SendKind};
use crate::error::Result;
use crate::exit::ExitCode;
use crate::fcm::message::Message;
use crate::report;
use crate::slot::{self, IsoWeek};
use crate::tokens::TokenSource;

use pipeline::Plan;
use scheduled::Scheduled;

/// Runs the configured job once, reports it, and returns the exit code it deserves.
///
/// # Errors
/// Whatever stopped the run; see [`crate::error::Error`].
pub async fn run(config: &Config) -> Result<ExitCode> {
    match &config.job {
        Job::Migrate => migrate::run(config).await,
        Job::StatsWeekly(job) => stats_weekly::run(config, job).await,
        Job::SaveLocation { batch, slot, ttl } => {
            let job = Scheduled {
                job: "save-location",
                slot: slot.to_rfc3339(),
                message: Message::save_location(slot, *ttl),
                batch,
            };
            scheduled::run(config, job).await
        }
        Job::PathDaily { batch, week, text } => {
            let now = config.now.with_timezone(&config.timezone);
            let job = Scheduled {
                job: "path-daily",
                slot: week.to_string(),
                message: Message::path_daily(week.to_string(), &now, text.title.clone(), text.body.clone()),
                batch,
            };
            scheduled::run(config, job).await
        }
        Job::Send { token, kind, mode } => {
            let plan = Plan {
                job: "send",
                slot: "-".into(),
                message: one_off_message(config, kind),
                mode: *mode,
                source: TokenSource::Single(token.clone()),
            };
            let summary = pipeline::execute(config, plan, Instant::now()).await?;
            report::emit(&summary, &config.output, *mode == crate::config::Mode::Print)?;
            Ok(summary.exit_code())
        }
    }
}

fn one_off_message(config: &Config, kind: &SendKind) -> Message {
    match kind {
        SendKind::SaveLocation => {
            let slot = slot::half_hour(config.now, config.timezone);
            Message::save_location(&slot, Duration::from_secs(1800))
        }
        SendKind::PathDaily(text) => {
            let week = IsoWeek::containing(config.now, config.timezone);
            let now = config.now.with_timezone(&config.timezone);
            Message::path_daily(week.to_string(), &now, text.title.clone(), text.body.clone())
        }
    }
}
