//! The jobs' names, as cron's command lines, the run journal, the metrics file, the pings and the
//! summaries know them: written once.

/// The silent wake-up every 30 minutes.
pub(crate) const SAVE_LOCATION: &str = "save-location";
/// The weekly visible reminder.
pub(crate) const PATH_DAILY: &str = "path-daily";
/// `path-daily --remind`, the week's second notification, to those whose week has not arrived.
/// A job of its own (not `path-daily` with another slot): its own lock, so the reminder never
/// waits for, nor holds up, a `path-daily` run; its own series in the metrics file, so a
/// reminder's success does not hide a failed Monday run; its own rows in `runs`.
pub(crate) const PATH_DAILY_REMIND: &str = "path-daily-remind";
/// The weekly statistics.
pub(crate) const STATS_WEEKLY: &str = "stats-weekly";
/// `stats weekly --notify`'s notifications, a journaled delivery of their own (slot = week).
pub(crate) const STATS_NOTIFY: &str = "stats-notify";
/// One message to one device.
pub(crate) const SEND: &str = "send";
/// Schema migrations.
pub(crate) const MIGRATE: &str = "migrate";
/// The installation check.
pub(crate) const DOCTOR: &str = "doctor";
/// The run journal's view.
pub(crate) const RUNS: &str = "runs";
/// The week's report.
pub(crate) const REPORT_WEEK: &str = "report-week";
/// Putting pruned tokens back.
pub(crate) const TOKENS_RESTORE: &str = "tokens-restore";
/// Writing completions and man pages.
pub(crate) const GENERATE: &str = "generate";
