//! wolley-push: the Wolley backend's timed jobs, run once per cron slot.
//!
//! The modules follow the domain: [`cli`] and [`config`] read the command line, [`tokens`]
//! and [`db`] find the devices, [`fcm`] speaks to Firebase, [`send`] paces and retries,
//! [`jobs`] are the scripts cron runs, [`report`] and [`output`] say what happened, [`metrics`]
//! and [`ping`] tell monitoring, [`panic_hook`] turns a bug into one line and exit 1.

pub mod advice;
pub mod breaker;
pub mod causes;
pub mod cli;
pub mod config;
pub mod counts;
pub mod db;
pub mod engine;
pub mod error;
pub mod exit;
mod failpoint;
pub mod fcm;
pub mod jobs;
pub mod ledger;
pub mod metrics;
pub mod names;
pub mod output;
pub mod panic_hook;
pub mod ping;
pub mod shard;
pub mod slot;
pub mod stats;
pub mod stop;
pub mod summary;
pub mod tokens;

use cli::Cli;
use config::Config;
use error::Result;
use exit::ExitCode;

/// Runs one invocation: validate, run the job (pinging and recording metrics when asked),
/// report, return the exit code.
///
/// # Errors
/// Whatever stopped the run; [`error::Error::exit_code`] says which exit code it deserves.
pub async fn run(cli: Cli) -> Result<ExitCode> {
    let config = Config::from_cli(cli)?;
    fcm::install_crypto_provider();
    jobs::run_monitored(&config).await
}
