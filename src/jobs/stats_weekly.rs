//! `stats weekly`: each user's week by category, badges, and the badge notification.

use crate::config::{Config, StatsWeekly};
use crate::error::{Error, Result};
use crate::exit::ExitCode;

/// Aggregates the week, awards badges, optionally notifies, and prints the report.
///
/// # Errors
/// Database failures, a malformed badge file.
pub async fn run(_config: &Config, _job: &StatsWeekly) -> Result<ExitCode> {
    Err(Error::Config("stats weekly is not built yet".into()))
}
