//! wolley-push: the Wolley backend's timed jobs, run once per cron slot.
//!
//! The modules follow the domain, in layers that import downwards only (docs/architecture.md):
//! exit codes, counts and names at the bottom; `db` (all SQL) and `fcm` (Firebase) for the
//! outside systems, with `metrics` and `ping` for monitoring; `tokens`, `engine`, `ledger`,
//! `breaker` and `stats` for the work; `summary` and `output` to say what happened; `config`
//! for the validated command line (`cli`); `jobs` on top, the scripts cron runs. Only what the
//! binary needs is public.

#![warn(unreachable_pub)]
// The documentation is the maintainers' (`cargo doc --document-private-items`): links from the
// few public modules to the private items they use are wanted.
#![allow(rustdoc::private_intra_doc_links)]
// stdout is written through `output`, which ends quietly when the reader has gone; print! and
// println! panic on a closed pipe.
#![deny(clippy::print_stdout)]

mod advice;
mod breaker;
mod causes;
pub mod cli;
mod config;
mod counts;
mod db;
mod engine;
pub mod error;
pub mod exit;
mod failpoint;
mod fcm;
mod jobs;
mod ledger;
mod metrics;
mod mode;
mod names;
pub mod output;
pub mod panic_hook;
mod ping;
mod report;
pub mod runtime;
mod shard;
mod slot;
mod spread;
mod stats;
mod stop;
mod summary;
mod timeout;
mod tokens;
mod user_week;

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
