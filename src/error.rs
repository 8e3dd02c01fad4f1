//! The library's top-level error: every failure a user can see, each knowing its exit code.

use crate::db::DbError;
use crate::engine::EngineError;
use crate::exit::ExitCode;
use crate::fcm::auth::AuthError;
use crate::fcm::message::MessageError;
use crate::fcm::FatalSendError;
use crate::ledger::LedgerError;
use crate::tokens::{SourceError, TokenFileError};

/// A run that could not complete, classified by what the operator has to do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag or argument is invalid.
    #[error("{0}")]
    Usage(String),
    /// The FCM endpoint or its TLS setup (`--fcm-endpoint`, `--fcm-ca-file`) is unusable.
    #[error(transparent)]
    FcmClient(#[from] crate::fcm::ClientError),
    /// Neither the flags nor the service-account key say which Firebase project to send for.
    #[error("the key {} names no project_id: set WOLLEY_FCM_PROJECT_ID or --project-id", .key.display())]
    NoProjectId {
        /// The service-account key file.
        key: std::path::PathBuf,
    },
    /// The job reads the backend's database and none is configured.
    #[error(
        "{job} needs the backend's database: set WOLLEY_DATABASE_URL (or --database-url) to its MariaDB{}",
        if *.or_tokens_file { ", or give --tokens-file" } else { "" }
    )]
    NoDatabase {
        /// The job that needs it.
        job: &'static str,
        /// The job could read a tokens file instead.
        or_tokens_file: bool,
    },
    /// The badge rules file is wrong.
    #[error(transparent)]
    Badges(#[from] crate::stats::badges::BadgeRulesError),
    /// A notification naming every badge would not fit FCM's limit.
    #[error(
        "a badge notification naming every badge would be {bytes} bytes, over FCM's {limit}-byte \
         limit: shorten the badge names in {file}"
    )]
    BadgeNotificationTooLarge {
        /// The notification's size in bytes.
        bytes: usize,
        /// FCM's limit.
        limit: usize,
        /// The rules file, or "the built-in set".
        file: String,
    },
    /// Database failure.
    #[error(transparent)]
    Db(#[from] DbError),
    /// OAuth failure.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The message cannot be built or is too large.
    #[error(transparent)]
    Message(#[from] MessageError),
    /// FCM refused the whole run (payload or APNs configuration).
    #[error(transparent)]
    FatalSend(#[from] FatalSendError),
    /// The ledger stopped or refused the run (boxed: it carries the slot and the cause).
    #[error(transparent)]
    Ledger(Box<LedgerError>),
    /// Most answers said the tokens belong to another Firebase project: the run stopped early.
    #[error(
        "{mismatches} of the first {answered} answers were SENDER_ID_MISMATCH: the service-account key \
         belongs to another Firebase project than the one the apps registered with (a staging key \
         against the production database?); the run stopped and removed no token: check the key's \
         project_id and --project-id (--force-prune if these tokens really are dead)"
    )]
    WrongProject {
        /// `SENDER_ID_MISMATCH` answers.
        mismatches: u64,
        /// All answers so far.
        answered: u64,
    },
    /// `path-daily --remind` has no first run to remind after: the journal has no `path-daily`
    /// row of the slot for this shard (path-daily never ran for the week, or with another
    /// `--shard` layout). Configuration: the schedule or `--slot` is wrong, waiting changes nothing.
    #[error(
        "path-daily --remind: the journal has no path-daily run of slot {slot} (shard {shard}) to \
         remind after, so nothing was sent; run `wolley-push path-daily --slot {slot}` (with the \
         same --shard) first, or give --remind the --slot of a week path-daily ran (`wolley-push \
         runs --job path-daily` lists them)"
    )]
    NoFirstRun {
        /// The first run's slot, e.g. `2026-W49`.
        slot: String,
        /// The shard asked for.
        shard: crate::shard::Shard,
    },
    /// `path-daily --remind` before its first run has finished: who it reached is not known yet.
    #[error(
        "path-daily --remind: path-daily's slot {slot} (shard {shard}) is still running, so who it \
         reached is not known yet and nothing was sent; run --remind again once it is finished \
         (`wolley-push runs --job path-daily`; a run that died is finished by running \
         `wolley-push path-daily --slot {slot}` again)"
    )]
    FirstRunUnfinished {
        /// The first run's slot.
        slot: String,
        /// The shard asked for.
        shard: crate::shard::Shard,
    },
    /// The tokens file could not be read.
    #[error(transparent)]
    TokenFile(#[from] TokenFileError),
    /// `report week --output FILE` could not be written.
    #[error(
        "cannot write the report to {}: {source}; check that the directory exists and this user may write there",
        .path.display()
    )]
    ReportFile {
        /// The file asked for.
        path: std::path::PathBuf,
        /// What the write failed with.
        source: std::io::Error,
    },
    /// Writing output failed (a full disk behind a redirection; a closed pipe is no failure:
    /// the output ends quietly).
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
    /// A bug or an unexpected condition.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl Error {
    /// The exit code docs/product.md assigns to this failure.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Usage(_) => ExitCode::Usage,
            Error::FcmClient(_)
            | Error::NoProjectId { .. }
            | Error::NoDatabase { .. }
            | Error::Badges(_)
            | Error::BadgeNotificationTooLarge { .. } => ExitCode::Config,
            Error::Db(e) => e.exit_code(),
            Error::Auth(e) => e.exit_code(),
            Error::Message(e) => e.exit_code(),
            Error::FatalSend(_) | Error::WrongProject { .. } | Error::NoFirstRun { .. } => ExitCode::Config,
            Error::FirstRunUnfinished { .. } => ExitCode::TempFail,
            Error::Ledger(e) => e.exit_code(),
            Error::TokenFile(_) | Error::ReportFile { .. } => ExitCode::Config,
            Error::Output(_) | Error::Other(_) => ExitCode::Software,
        }
    }
}

impl From<LedgerError> for Error {
    fn from(error: LedgerError) -> Self {
        Error::Ledger(Box::new(error))
    }
}

impl From<EngineError> for Error {
    fn from(error: EngineError) -> Self {
        match error {
            EngineError::Fatal(e) => Error::FatalSend(e),
            EngineError::Auth(e) => Error::Auth(e),
        }
    }
}

impl From<SourceError> for Error {
    fn from(error: SourceError) -> Self {
        match error {
            SourceError::Db(e) => Error::Db(e),
            SourceError::File(e) => Error::TokenFile(e),
        }
    }
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
