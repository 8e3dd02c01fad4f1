//! The validated configuration of one run: the command line and environment (flag, then
//! environment, then default) turned into typed values. Nothing past this point sees clap.

use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Timelike, Utc};
use chrono_tz::Tz;

use crate::breaker::PrunePolicy;
use crate::cli::{self, Cli, Command};
use crate::db::DatabaseUrl;
use crate::error::{Error, Result};
use crate::fcm::message::{PATH_DAILY_BODY, PATH_DAILY_REMIND_BODY};
use crate::fcm::target::Targets;
use crate::fcm::ClientSettings;
use crate::mode::Mode;
use crate::names;
use crate::output::{Format, Output};
use crate::shard::Shard;
use crate::slot::{self, IsoWeek};

/// Everything a run needs, checked.
#[derive(Debug)]
pub(crate) struct Config {
    /// The backend database, when configured.
    pub database_url: Option<DatabaseUrl>,
    /// The service-account key file, when configured.
    pub credentials: Option<PathBuf>,
    /// The Firebase project, when given explicitly.
    pub project_id: Option<String>,
    /// Base URL of the FCM API.
    pub fcm_endpoint: url::Url,
    /// HTTP client settings.
    pub client: ClientSettings,
    /// Retry and pacing settings.
    pub sending: Sending,
    /// How careful pruning is.
    pub prune: PrunePolicy,
    /// Time zone of slots, weeks and the backend's datetimes.
    pub timezone: Tz,
    /// The current time (overridable for tests and replays).
    pub now: DateTime<Utc>,
    /// Where and how to report.
    pub output: Output,
    /// Metrics file and health pings.
    pub monitoring: Monitoring,
    /// The job to run.
    pub job: Job,
}

/// Where cron's jobs report to monitoring (see [`crate::metrics`] and [`crate::ping`]).
#[derive(Debug, Clone, Default)]
pub(crate) struct Monitoring {
    /// The Prometheus text file to update after each run.
    pub metrics_file: Option<PathBuf>,
    /// The Healthchecks-style URL to ping at the start and end of each run.
    pub ping_url: Option<crate::ping::PingUrl>,
}

/// Pacing and retry settings of the sender.
#[derive(Debug, Clone)]
pub(crate) struct Sending {
    /// Requests in flight at most.
    pub concurrency: usize,
    /// Messages per second at most.
    pub rate: Option<u32>,
    /// Attempts per message.
    pub max_attempts: u32,
    /// First back-off after 5xx or a transport error.
    pub backoff: Duration,
    /// First back-off after 429.
    pub quota_backoff: Duration,
    /// How stored device values are read: registration token or installation ID.
    pub targets: Targets,
}

/// How a scheduled job runs its slot: where the tokens come from, the mode, the shard and the
/// run-safety settings.
#[derive(Debug, Clone)]
pub(crate) struct SlotSettings {
    /// Read tokens from this file (`-` = stdin) instead of the database.
    pub tokens_file: Option<PathBuf>,
    /// Deliver, validate or print.
    pub mode: Mode,
    /// Send a slot again even when it is done.
    pub force: bool,
    /// Stop sending this long after the start.
    pub deadline: Duration,
    pub shard: Shard,
    /// Send the slot's messages evenly over this window (`path-daily --spread`); `None`: as
    /// fast as `--rate` allows.
    pub spread: Option<Duration>,
}

/// The visible notification's text.
#[derive(Debug, Clone)]
pub(crate) struct Text {
    /// Title.
    pub title: String,
    /// Body.
    pub body: String,
    /// Whether the notification plays a sound.
    pub sound: bool,
}

/// The message kind of `send`.
#[derive(Debug, Clone)]
pub(crate) enum SendKind {
    /// Silent wake-up.
    SaveLocation,
    /// Visible reminder with this text.
    PathDaily(Text),
}

/// `stats weekly` settings.
#[derive(Debug, Clone)]
pub(crate) struct StatsWeekly {
    /// The week to aggregate; `None` = the last finished week.
    pub week: Option<crate::slot::IsoWeek>,
    /// Badge rules replacing the built-in set.
    pub badges: Option<PathBuf>,
    /// Notify each user who earned a badge.
    pub notify: bool,
    /// Show only this user's week.
    pub user: Option<i64>,
    /// Deliver or only validate the notifications.
    pub mode: Mode,
    /// Notify again even if the week's notifications are done.
    pub force: bool,
    /// Recompute every user, not only those whose week changed.
    pub full: bool,
}

/// What `report week` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReportFormat {
    /// Summary lines and a table.
    Human,
    /// One JSON object.
    Json,
    /// One self-contained page.
    Html,
}

/// `report week` settings.
#[derive(Debug, Clone)]
pub(crate) struct ReportWeek {
    /// The week; `None` = the last finished week.
    pub week: Option<IsoWeek>,
    /// The file to write instead of stdout.
    pub output: Option<PathBuf>,
    /// How long after (and before) a push a point counts.
    pub wake_window: Duration,
    pub format: ReportFormat,
}

/// The job to run, with its own settings.
#[derive(Debug, Clone)]
pub(crate) enum Job {
    /// Silent wake-up to every device.
    SaveLocation {
        /// Targets, mode and run safety.
        settings: SlotSettings,
        /// The half-hour slot.
        slot: DateTime<Tz>,
        /// How long an undelivered wake-up is kept.
        ttl: Duration,
    },
    /// Weekly visible reminder to every device; with `remind`, the week's second notification,
    /// to the users the first reached whose week has not arrived.
    PathDaily {
        /// Targets, mode and run safety.
        settings: SlotSettings,
        /// The ISO week slot (the first run's, for the reminder too).
        week: IsoWeek,
        /// Notification text.
        text: Text,
        /// `--remind`: the reminder after the slot's run, not the run itself.
        remind: bool,
    },
    /// Weekly statistics and badges.
    StatsWeekly(StatsWeekly),
    /// Create or upgrade wolley-push's tables.
    Migrate,
    /// One message to one device.
    Send {
        /// The device's registration token or installation ID.
        token: String,
        /// Which of the two, as the flag named it.
        as_kind: Targets,
        kind: SendKind,
        /// Deliver, validate or print.
        mode: Mode,
    },
    /// Check the installation.
    Doctor,
    /// Show the run journal.
    Runs {
        /// Only this job.
        job: Option<String>,
        /// Slots per job.
        last: u32,
    },
    /// The week's report.
    ReportWeek(ReportWeek),
    /// Put pruned tokens back.
    RestoreTokens(crate::db::prune_log::Selection),
    /// Write completions and man pages.
    Generate {
        /// The directory that receives `completions/` and `man/`.
        out_dir: PathBuf,
    },
}

impl Job {
    /// The job's name in metrics, pings and summaries.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Job::SaveLocation { .. } => names::SAVE_LOCATION,
            Job::PathDaily { remind: false, .. } => names::PATH_DAILY,
            Job::PathDaily { remind: true, .. } => names::PATH_DAILY_REMIND,
            Job::StatsWeekly(_) => names::STATS_WEEKLY,
            Job::Migrate => names::MIGRATE,
            Job::Send { .. } => names::SEND,
            Job::Doctor => names::DOCTOR,
            Job::Runs { .. } => names::RUNS,
            Job::ReportWeek(_) => names::REPORT_WEEK,
            Job::RestoreTokens(_) => names::TOKENS_RESTORE,
            Job::Generate { .. } => names::GENERATE,
        }
    }

    /// The shard a scheduled job runs, when it is one of several.
    pub(crate) fn shard(&self) -> Option<Shard> {
        match self {
            Job::SaveLocation { settings, .. } | Job::PathDaily { settings, .. } => {
                Some(settings.shard).filter(|shard| shard.count > 1)
            }
            _ => None,
        }
    }

    /// Whether runs go through the monitoring lifecycle (metrics file, pings): every job
    /// except the operator's tools `doctor`, `generate`, `runs` and `tokens restore`.
    pub(crate) fn is_monitored(&self) -> bool {
        !matches!(self, Job::Doctor | Job::Generate { .. } | Job::Runs { .. } | Job::RestoreTokens(_))
    }
}

impl Config {
    /// Validates the command line.
    ///
    /// # Errors
    /// [`Error::Usage`] for values that cannot be parsed, [`Error::Db`] for a malformed
    /// database URL.
    pub(crate) fn from_cli(cli: Cli) -> Result<Self> {
        let global = cli.global;
        let timezone = timezone(&global.timezone)?;
        let fcm_endpoint = fcm_endpoint(&global.fcm_endpoint)?;
        let concurrency = within("--concurrency", global.concurrency, CONCURRENCY, CONCURRENCY_WHY)?;
        let rate = within("--rate", global.rate, RATE, RATE_WHY)?;
        let max_attempts = within("--max-attempts", global.max_attempts, MAX_ATTEMPTS, MAX_ATTEMPTS_WHY)?;
        let now = now(global.now.as_deref())?;
        let database_url = global.database_url.as_deref().map(DatabaseUrl::parse).transpose()?;
        let ping_url =
            global.ping_url.as_deref().map(crate::ping::PingUrl::parse).transpose().map_err(usage)?;
        Ok(Config {
            database_url,
            credentials: global.credentials,
            project_id: global.project_id,
            fcm_endpoint,
            client: ClientSettings {
                concurrency,
                request_timeout: positive_duration(
                    "--request-timeout",
                    &global.request_timeout,
                    Some(MAX_REQUEST_TIMEOUT),
                )?,
                extra_ca_file: global.fcm_ca_file,
            },
            sending: Sending {
                concurrency,
                rate: (rate > 0).then_some(rate),
                max_attempts,
                backoff: positive_duration("--backoff", &global.backoff, None)?,
                quota_backoff: positive_duration("--quota-backoff", &global.quota_backoff, None)?,
                targets: global.targets,
            },
            prune: PrunePolicy {
                max_dead_share: percent("--max-dead-share", &global.max_dead_share)?,
                force: global.force_prune,
            },
            timezone,
            now,
            output: Output {
                format: summary_format(global.format, &cli.command)?,
                progress: global.progress,
                quiet: global.quiet,
            },
            monitoring: Monitoring { metrics_file: global.metrics_file, ping_url },
            job: job(cli.command, now, timezone, global.format)?,
        })
    }
}

/// `--timezone`, an IANA name.
fn timezone(text: &str) -> Result<Tz> {
    text.parse::<Tz>()
        .map_err(|_| usage(format!("--timezone: \"{text}\" is not an IANA time zone such as Asia/Seoul")))
}

/// `--fcm-endpoint`, an http(s) URL.
fn fcm_endpoint(text: &str) -> Result<url::Url> {
    url::Url::parse(text)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| usage(format!("--fcm-endpoint: \"{text}\" is not an http(s) URL")))
}

/// `--now` / `WOLLEY_NOW`, an RFC 3339 time; the clock's without it.
fn now(text: Option<&str>) -> Result<DateTime<Utc>> {
    match text {
        Some(text) => Ok(DateTime::parse_from_rfc3339(text)
            .map_err(|e| usage(format!("--now / WOLLEY_NOW: \"{text}\" is not an RFC 3339 time ({e})")))?
            .with_timezone(&Utc)),
        None => Ok(Utc::now()),
    }
}

/// `save-location` stops sending in time for the next half-hour; `path-daily` has the night.
const SAVE_LOCATION_DEADLINE: Duration = Duration::from_secs(25 * 60);
pub(crate) const PATH_DAILY_DEADLINE: Duration = Duration::from_secs(6 * 3600);

// The ranges of the numeric flags, checked before anything is contacted. Each bound is one a
// run can honour; past it a value is a typo (or an environment variable gone wrong), and some
// would crash or exhaust the host rather than fail.

/// `--concurrency`: one worker task per request in flight, over at most 64 HTTP/2 connections
/// of ~100 streams each. 20,000 is about what one process can serve; more only costs memory and
/// start-up time, and absurd values exhaust the host (BENCHMARKS.md, "Why the code looks like this").
pub(crate) const CONCURRENCY: RangeInclusive<usize> = 1..=20_000;
const CONCURRENCY_WHY: &str = "about what one process can serve; for more throughput use shards";
/// `--rate`: 0 is no cap. The project quota is 600,000/min (10,000/s) unless Google raised it,
/// and one process peaks far below 100,000/s (BENCHMARKS.md): 100,000 leaves room for a raised quota
/// and refuses a slipped digit.
pub(crate) const RATE: RangeInclusive<u32> = 0..=100_000;
const RATE_WHY: &str = "0 for no cap; the project quota is 10,000/s unless Google raised it";
/// `--max-attempts`: with back-offs doubling to their 5-minute cap, 20 attempts already span
/// more than an hour, longer than any slot.
pub(crate) const MAX_ATTEMPTS: RangeInclusive<u32> = 1..=20;
const MAX_ATTEMPTS_WHY: &str = "20 attempts with doubling back-offs outlast any slot";
/// `--request-timeout`: Google advises 10 s or more; past 10 minutes a request is lost, not slow,
/// and a stopping run waits that long for each request in flight.
pub(crate) const MAX_REQUEST_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// `--deadline`: a week is the period of the weekly jobs; a longer run would meet its next slot.
pub(crate) const MAX_DEADLINE: Duration = Duration::from_secs(7 * 86_400);
/// `--ttl`: FCM refuses an Android `ttl` over 28 days (2,419,200 s); APNs' expiration is in
/// whole seconds, so less than one second would expire at once.
pub(crate) const MAX_TTL: Duration = Duration::from_secs(2_419_200);
const MIN_TTL: Duration = Duration::from_secs(1);

/// The longest `--wake-window`: one slot; longer windows would overlap the next push's.
pub(crate) const MAX_WAKE_WINDOW: Duration = Duration::from_secs(30 * 60);

/// The summary format: `html` only for `report week`, whose page is its own output.
fn summary_format(choice: cli::FormatChoice, command: &Command) -> Result<Format> {
    match (choice, command) {
        (cli::FormatChoice::Json, _) => Ok(Format::Json),
        (cli::FormatChoice::Human, _) | (cli::FormatChoice::Html, Command::Report(_)) => Ok(Format::Human),
        (cli::FormatChoice::Html, _) => Err(usage(
            "--format html: only `report week` writes a page; use --format human or --format json".into(),
        )),
    }
}

fn report_week(args: cli::ReportWeekArgs, format: cli::FormatChoice) -> Result<ReportWeek> {
    let wake_window = positive_duration("--wake-window", &args.wake_window, Some(MAX_WAKE_WINDOW))?;
    let format = match format {
        cli::FormatChoice::Human => ReportFormat::Human,
        cli::FormatChoice::Json => ReportFormat::Json,
        cli::FormatChoice::Html => ReportFormat::Html,
    };
    Ok(ReportWeek { week: args.week, output: args.output, wake_window, format })
}

fn job(command: Command, now: DateTime<Utc>, timezone: Tz, format: cli::FormatChoice) -> Result<Job> {
    Ok(match command {
        Command::SaveLocation(args) => save_location(args, now, timezone)?,
        Command::PathDaily(args) => path_daily(args, now, timezone)?,
        Command::Stats(cli::StatsCommand::Weekly(args)) => Job::StatsWeekly(StatsWeekly {
            week: args.week,
            badges: args.badges,
            notify: args.notify,
            user: args.user,
            mode: Mode::from_flags(args.dry_run, false),
            force: args.force,
            full: args.full,
        }),
        Command::Report(cli::ReportCommand::Week(args)) => Job::ReportWeek(report_week(args, format)?),
        Command::Migrate => Job::Migrate,
        Command::Doctor => Job::Doctor,
        Command::Runs(args) => Job::Runs { job: args.job, last: args.last },
        Command::Tokens(cli::TokensCommand::Restore(args)) => {
            Job::RestoreTokens(restore_selection(args, timezone)?)
        }
        Command::Generate(args) => Job::Generate { out_dir: args.out_dir },
        Command::Send(args) => send(args),
    })
}

/// `save-location`: the half-hour of `--slot`, or the one `now` is in.
fn save_location(args: cli::SaveLocationArgs, now: DateTime<Utc>, timezone: Tz) -> Result<Job> {
    let slot = match &args.batch.slot {
        Some(text) => half_hour_slot(text, timezone)?,
        None => slot::half_hour(now, timezone),
    };
    Ok(Job::SaveLocation {
        settings: slot_settings(args.batch, save_location_deadline(&slot, now))?,
        slot,
        ttl: ttl(&args.ttl)?,
    })
}

/// `path-daily` (and `--remind`): the ISO week of `--slot`, or the one `now` is in.
fn path_daily(args: cli::PathDailyArgs, now: DateTime<Utc>, timezone: Tz) -> Result<Job> {
    let week = match &args.batch.slot {
        Some(text) => text.parse::<IsoWeek>().map_err(|e| usage(format!("--slot: {e}")))?,
        None => IsoWeek::containing(now, timezone),
    };
    let mut settings = slot_settings(args.batch, PATH_DAILY_DEADLINE)?;
    settings.spread = spread(&args.spread, settings.deadline)?;
    let body = if args.remind { PATH_DAILY_REMIND_BODY } else { PATH_DAILY_BODY };
    Ok(Job::PathDaily { settings, week, text: text(args.text, body), remind: args.remind })
}

/// `send`: one device, read as the flag that named it.
fn send(args: cli::SendArgs) -> Job {
    Job::Send {
        as_kind: if args.fid.is_some() { Targets::Fid } else { Targets::Token },
        token: args.fid.or(args.token).expect("clap requires --token or --fid"),
        kind: match args.kind {
            cli::Kind::SaveLocation => SendKind::SaveLocation,
            cli::Kind::PathDaily => SendKind::PathDaily(text(args.text, PATH_DAILY_BODY)),
        },
        mode: Mode::from_flags(args.dry_run, args.print),
    }
}

fn slot_settings(args: cli::BatchArgs, default_deadline: Duration) -> Result<SlotSettings> {
    let completion_index = std::env::var("JOB_COMPLETION_INDEX").ok();
    let shard = Shard::resolve(args.shard, args.shards, completion_index.as_deref()).map_err(usage)?;
    let deadline = match &args.deadline {
        Some(text) => positive_duration("--deadline", text, Some(MAX_DEADLINE))?,
        None => default_deadline,
    };
    Ok(SlotSettings {
        tokens_file: args.tokens_file,
        mode: Mode::from_flags(args.dry_run, args.print),
        force: args.force,
        deadline,
        shard,
        spread: None,
    })
}

/// `save-location`'s default deadline: the end of its half-hour, at most 25 minutes. The homes
/// start it off FCM's peak minutes (:07, :37), and a wake-up sent after its slot's end has
/// already expired (`apns-expiration` is the slot plus one period), so the run stops there; a
/// slot resent by hand after it ended keeps the 25 minutes.
fn save_location_deadline(slot: &DateTime<Tz>, now: DateTime<Utc>) -> Duration {
    let end = slot.with_timezone(&Utc) + chrono::Duration::minutes(30);
    match (end - now).to_std() {
        Ok(left) if !left.is_zero() => left.min(SAVE_LOCATION_DEADLINE),
        _ => SAVE_LOCATION_DEADLINE,
    }
}

/// `path-daily --spread`: zero sends as fast as `--rate` allows; a window must end before the
/// deadline, which would otherwise stop the run with part of the slot unsent every time.
fn spread(text: &str, deadline: Duration) -> Result<Option<Duration>> {
    let window = duration("--spread", text)?;
    if window >= deadline {
        return Err(usage(format!(
            "--spread: \"{text}\" is not shorter than --deadline ({}): the deadline would stop \
             the run before its window ends; shorten --spread or lengthen --deadline",
            humantime::format_duration(deadline)
        )));
    }
    Ok(Some(window).filter(|window| !window.is_zero()))
}

/// Which prunes `tokens restore` puts back: a job's slot (its label normalised as the jobs write
/// it), or everything since a time.
fn restore_selection(args: cli::RestoreArgs, tz: Tz) -> Result<crate::db::prune_log::Selection> {
    use crate::db::prune_log::Selection;
    match (args.job, args.slot, args.since) {
        (Some(job), Some(slot), None) => {
            let slot = match job.as_str() {
                names::SAVE_LOCATION => half_hour_slot(&slot, tz)?.to_rfc3339(),
                _ => slot.parse::<IsoWeek>().map_err(|e| usage(format!("--slot: {e}")))?.to_string(),
            };
            Ok(Selection::Slot { job, slot, shard: args.shard.map(|s| s.to_string()) })
        }
        (job, None, Some(since)) => Ok(Selection::Since { utc: utc_since(&since, tz)?, job }),
        _ => Err(usage("tokens restore: give --job J --slot S, or --since TIME".into())),
    }
}

/// `--since`: RFC 3339, or a wall-clock date or time in `tz`; as the database's UTC text.
fn utc_since(text: &str, tz: Tz) -> Result<String> {
    let instant = match DateTime::parse_from_rfc3339(text) {
        Ok(instant) => instant.with_timezone(&Utc),
        Err(_) => {
            let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M")
                .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M"))
                .or_else(|_| {
                    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").map(|d| d.and_time(chrono::NaiveTime::MIN))
                })
                .map_err(|_| {
                    usage(format!("--since: \"{text}\" is not a time such as 2026-11-30T00:00 or 2026-11-30T00:00:00+09:00"))
                })?;
            slot::local_instant(tz, naive).with_timezone(&Utc)
        }
    };
    Ok(instant.format("%Y-%m-%d %H:%M:%S%.6f").to_string())
}

/// A `save-location` slot: RFC 3339, or a wall-clock time in `tz`, on :00 or :30.
fn half_hour_slot(text: &str, tz: Tz) -> Result<DateTime<Tz>> {
    let invalid = |why: &str| {
        usage(format!(
            "--slot: \"{text}\" {why} (expected a half-hour such as 2026-11-30T14:30 or 2026-11-30T14:30:00+09:00)"
        ))
    };
    let slot = match DateTime::parse_from_rfc3339(text) {
        Ok(instant) => instant.with_timezone(&tz),
        Err(_) => {
            let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M")
                .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S"))
                .map_err(|_| invalid("is not a date and time"))?;
            slot::local_instant(tz, naive)
        }
    };
    if slot.minute() % 30 != 0 || slot.second() != 0 || slot.nanosecond() != 0 {
        return Err(invalid("is not on :00 or :30"));
    }
    Ok(slot)
}

/// The notification's text: `--body`, else the kind's `default_body`.
fn text(args: cli::NotificationText, default_body: &str) -> Text {
    let body = args.body.unwrap_or_else(|| default_body.to_owned());
    Text { title: args.title, body, sound: args.sound }
}

fn usage(message: String) -> Error {
    Error::Usage(message)
}

/// A share given as a percentage, `10` or `10%`, above 0 and at most 100.
fn percent(flag: &str, text: &str) -> Result<f64> {
    let number = text.trim().trim_end_matches('%').trim();
    match number.parse::<f64>() {
        Ok(value) if value > 0.0 && value <= 100.0 => Ok(value / 100.0),
        _ => {
            Err(usage(format!("{flag}: \"{text}\" is not a percentage above 0 and at most 100, such as 10")))
        }
    }
}

/// Parses `30s`, `10m`, `1h 30m`, `250ms`.
fn duration(flag: &str, text: &str) -> Result<Duration> {
    humantime::parse_duration(text)
        .map_err(|e| usage(format!("{flag}: \"{text}\" is not a duration such as 30s, 10m or 250ms ({e})")))
}

/// A duration that must be more than zero and, with `max`, at most that.
fn positive_duration(flag: &str, text: &str, max: Option<Duration>) -> Result<Duration> {
    let value = duration(flag, text)?;
    if value.is_zero() {
        return Err(usage(format!("{flag}: \"{text}\" must be longer than zero")));
    }
    match max {
        Some(max) if value > max => {
            Err(usage(format!("{flag}: \"{text}\" is too long: at most {}", humantime::format_duration(max))))
        }
        _ => Ok(value),
    }
}

/// `--ttl`, from one second to FCM's 28 days.
fn ttl(text: &str) -> Result<Duration> {
    let value = duration("--ttl", text)?;
    if !(MIN_TTL..=MAX_TTL).contains(&value) {
        return Err(usage(format!(
            "--ttl: \"{text}\" is out of range: from 1s to 28days (FCM keeps an Android message at \
             most 28 days; APNs counts whole seconds)"
        )));
    }
    Ok(value)
}

/// A number that must lie in `range`; `why` says where the bounds come from.
fn within<T: PartialOrd + std::fmt::Display>(
    flag: &str,
    value: T,
    range: RangeInclusive<T>,
    why: &str,
) -> Result<T> {
    if range.contains(&value) {
        return Ok(value);
    }
    Err(usage(format!("{flag}: {value} is out of range: from {} to {} ({why})", range.start(), range.end())))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn config(args: &[&str]) -> Result<Config> {
        let cli = Cli::try_parse_from(std::iter::once("wolley-push").chain(args.iter().copied()))
            .expect("clap accepts the arguments");
        Config::from_cli(cli)
    }

    /// The one line a refused command line prints.
    fn refusal(args: &[&str]) -> String {
        match config(args) {
            Err(error @ Error::Usage(_)) => error.to_string(),
            other => panic!("{args:?} was not refused as usage: {other:?}"),
        }
    }

    #[test]
    fn every_flag_accepts_the_ends_of_its_range() {
        let low = ["--concurrency", "1", "--rate", "0", "--max-attempts", "1", "--backoff", "1ms"];
        let low_rest = ["--quota-backoff", "1ms", "--request-timeout", "1ms", "save-location"];
        config(&[&low[..], &low_rest[..], &["--ttl", "1s", "--deadline", "1ms"]].concat()).unwrap();
        let high = ["--concurrency", "20000", "--rate", "100000", "--max-attempts", "20"];
        let high_rest =
            ["--request-timeout", "10m", "save-location", "--ttl", "28days", "--deadline", "7days"];
        config(&[&high[..], &high_rest[..]].concat()).unwrap();
    }

    #[test]
    fn a_number_out_of_range_is_refused_naming_the_flag_and_the_range() {
        for (flag, value, range) in [
            ("--concurrency", "0", "from 1 to 20000"),
            ("--concurrency", "20001", "from 1 to 20000"),
            ("--concurrency", "4294967296", "from 1 to 20000"),
            ("--rate", "100001", "from 0 to 100000"),
            ("--max-attempts", "0", "from 1 to 20"),
            ("--max-attempts", "21", "from 1 to 20"),
        ] {
            let line = refusal(&[flag, value, "doctor"]);
            assert!(line.starts_with(&format!("{flag}: {value} is out of range: {range}")), "{line}");
        }
    }

    #[test]
    fn a_zero_duration_is_refused() {
        for flag in ["--backoff", "--quota-backoff", "--request-timeout"] {
            assert!(refusal(&[flag, "0s", "doctor"]).contains("must be longer than zero"), "{flag}");
        }
        assert!(refusal(&["save-location", "--deadline", "0s"]).contains("must be longer than zero"));
    }

    #[test]
    fn a_request_timeout_over_10_minutes_and_a_deadline_over_a_week_are_refused() {
        assert!(refusal(&["--request-timeout", "601s", "doctor"]).contains("at most 10m"));
        assert!(refusal(&["path-daily", "--deadline", "8days"]).contains("at most 7days"));
    }

    fn spread_of(args: &[&str]) -> Option<Duration> {
        match config(args).unwrap().job {
            Job::PathDaily { settings, .. } => settings.spread,
            other => panic!("not path-daily: {other:?}"),
        }
    }

    #[test]
    fn path_daily_spreads_over_10_minutes_unless_told_otherwise() {
        assert_eq!(spread_of(&["path-daily"]), Some(Duration::from_secs(600)));
        assert_eq!(spread_of(&["path-daily", "--spread", "30s"]), Some(Duration::from_secs(30)));
    }

    #[test]
    fn a_zero_spread_sends_as_fast_as_the_rate_allows() {
        assert_eq!(spread_of(&["path-daily", "--spread", "0"]), None);
    }

    #[test]
    fn a_spread_as_long_as_the_deadline_is_refused() {
        let line = refusal(&["path-daily", "--spread", "1h", "--deadline", "1h"]);
        assert!(line.contains("shorten --spread or lengthen --deadline"), "{line}");
    }

    fn save_location_deadline_at(now: &str) -> Duration {
        let args = ["--now", now, "save-location"];
        match config(&args).unwrap().job {
            Job::SaveLocation { settings, .. } => settings.deadline,
            other => panic!("not save-location: {other:?}"),
        }
    }

    #[test]
    fn save_location_started_off_peak_stops_at_the_end_of_its_slot() {
        assert_eq!(save_location_deadline_at("2026-11-30T14:37:00+09:00"), Duration::from_secs(23 * 60));
    }

    #[test]
    fn save_location_started_on_its_slot_keeps_25_minutes() {
        assert_eq!(save_location_deadline_at("2026-11-30T14:30:00+09:00"), Duration::from_secs(25 * 60));
    }

    #[test]
    fn a_ttl_under_a_second_or_over_28_days_is_refused() {
        for ttl in ["0s", "999ms", "2419201s"] {
            assert!(refusal(&["save-location", "--ttl", ttl]).contains("from 1s to 28days"), "{ttl}");
        }
    }
}
