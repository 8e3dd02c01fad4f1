//! The jobs, each a short script over the pieces: build the message, pick the tokens, run the
//! [`pipeline`], report.

pub mod pipeline;

use std::time::Instant;

use crate::config::{Config, Job, SendKind};
use crate::error::Result;
use crate::fcm::message::Message;
use crate::report::Summary;
use crate::slot::{self, IsoWeek};
use crate::tokens::TokenSource;

use pipeline::Plan;

/// Runs the configured job once and returns its summary.
///
/// # Errors
/// Whatever stopped the run; see [`crate::error::Error`].
pub async fn run(config: &Config) -> Result<Summary> {
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
