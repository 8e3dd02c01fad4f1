//! The process exit codes of docs/product.md, in one place, so every outcome maps to exactly one.

/// What a run's exit status tells cron and scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ExitCode {
    /// Done; also when there was nothing to do.
    Success = 0,
    /// Anything else: a bug.
    Software = 1,
    /// Bad command line, a flag out of its range or a message too big included.
    Usage = 2,
    /// Some messages failed after retries or were left unsent at the deadline.
    Partial = 3,
    /// Database, OAuth or FCM unreachable, or the token endpoint failing: running again later may work.
    TempFail = 75,
    /// Configuration: credentials, database URL or privileges, missing or newer tables, payload or
    /// APNs setup rejected.
    Config = 78,
}

impl ExitCode {
    /// The numeric status handed to the operating system.
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        std::process::ExitCode::from(code.code())
    }
}
