//! The command line as clap sees it. Nothing outside this module and `config` touches clap:
//! `config` turns these raw values into a validated [`crate::config::Config`].
//!
//! The doc comments of the flags are clap's `--help` text, written for a terminal: brackets and
//! angle brackets in them are literal, not rustdoc links or HTML.
#![allow(rustdoc::broken_intra_doc_links, rustdoc::invalid_html_tags)]

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

use crate::output::ProgressWhen;

const AFTER_HELP: &str = "\
Exit codes: 0 done (or nothing to do), 2 bad command line (a flag out of range included), 3
partial (some messages failed or expired), 75 temporary (database, OAuth or FCM unreachable or
failing), 78 configuration (credentials, database URL or privileges, missing or newer tables,
payload or APNs setup rejected), 1 a bug.";

/// Sends Wolley's scheduled FCM pushes and weekly statistics, once per run, from cron.
#[derive(Debug, Parser)]
#[command(name = "wolley-push", version, about, after_help = AFTER_HELP)]
#[command(long_about = "\
Sends Wolley's scheduled Firebase Cloud Messaging pushes and weekly statistics.

Host cron (TZ=Asia/Seoul) starts it; it runs one job once, pulls device tokens from the
backend's MariaDB, sends the batch through the FCM HTTP v1 API, records the outcome and exits
with a code cron and scripts can act on.")]
pub struct Cli {
    /// Settings every job shares.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The job to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Flags accepted before or after any subcommand.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// MariaDB URL of the Wolley backend, e.g. mysql://wolley:secret@127.0.0.1:3306/wolley
    #[arg(long, env = "WOLLEY_DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,

    /// Google service-account JSON key used to obtain FCM access tokens
    #[arg(long, env = "GOOGLE_APPLICATION_CREDENTIALS", global = true, value_name = "KEY_FILE")]
    pub credentials: Option<PathBuf>,

    /// Firebase project to send through [default: the key's project_id]
    #[arg(long, env = "WOLLEY_FCM_PROJECT_ID", global = true)]
    pub project_id: Option<String>,

    /// Base URL of the FCM HTTP v1 API
    #[arg(long, env = "WOLLEY_FCM_ENDPOINT", global = true, default_value = "https://fcm.googleapis.com")]
    pub fcm_endpoint: String,

    /// Also trust the certificate authorities in this PEM file for the FCM endpoint (a TLS
    /// proxy, a test server)
    #[arg(long, env = "WOLLEY_FCM_CA_FILE", global = true, value_name = "PEM_FILE")]
    pub fcm_ca_file: Option<PathBuf>,

    /// Requests in flight at once, 1 to 20000 (spread over up to 64 HTTP/2 connections of 100
    /// streams each; 20000 is about what one process can serve, beyond it only memory grows: use
    /// shards for more)
    #[arg(long, env = "WOLLEY_CONCURRENCY", global = true, default_value_t = 1500)]
    pub concurrency: usize,

    /// Messages per second at most, 0 for no cap, up to 100000 (the project quota is 10,000/s
    /// unless Google raised it; one process peaks near 33,000/s)
    #[arg(long, env = "WOLLEY_RATE", global = true, default_value_t = 9000)]
    pub rate: u32,

    /// How stored device values are read: auto sends a value of an installation ID's exact shape
    /// (22 URL-safe base64 characters, the first c-f) as "fid" and any other as "token"; token or
    /// fid reads every value so
    #[arg(long, env = "WOLLEY_TARGETS", global = true, value_enum, default_value_t = crate::fcm::target::Targets::Auto)]
    pub targets: crate::fcm::target::Targets,

    /// Time zone of slots, weeks and the backend's naive datetimes
    #[arg(long, env = "WOLLEY_TIMEZONE", global = true, default_value = "Asia/Seoul")]
    pub timezone: String,

    /// Attempts per message before it counts as failed, 1 to 20
    #[arg(long, env = "WOLLEY_MAX_ATTEMPTS", global = true, default_value_t = 5)]
    pub max_attempts: u32,

    /// First back-off after a 500/503 without Retry-After, more than 0 (doubles each attempt up
    /// to 5m; 10s is Google's minimum)
    #[arg(long, env = "WOLLEY_BACKOFF", global = true, default_value = "10s", value_name = "DURATION")]
    pub backoff: String,

    /// First back-off after a 429 without Retry-After, more than 0 (doubles each attempt up to 5m;
    /// 60s is Google's minimum)
    #[arg(long, env = "WOLLEY_QUOTA_BACKOFF", global = true, default_value = "60s", value_name = "DURATION")]
    pub quota_backoff: String,

    /// Hold pruning back when dead tokens are more than this percentage of a slot's answers
    /// (a wrong key or APNs setup looks like mass death; healthy runs see well under 1%)
    #[arg(long, env = "WOLLEY_MAX_DEAD_SHARE", global = true, default_value = "10", value_name = "PERCENT")]
    pub max_dead_share: String,

    /// Prune every dead token whatever their share (after checking the breaker's reason, e.g. the
    /// first run after a long time without pruning)
    #[arg(long, global = true)]
    pub force_prune: bool,

    /// Time limit of one FCM request, more than 0 and at most 10m
    #[arg(
        long,
        env = "WOLLEY_REQUEST_TIMEOUT",
        global = true,
        default_value = "30s",
        value_name = "DURATION"
    )]
    pub request_timeout: String,

    /// Format of the summary on stdout (html: `report week` only)
    #[arg(long, global = true, value_enum, default_value_t = FormatChoice::Human)]
    pub format: FormatChoice,

    /// Progress bar on stderr; auto = only when stderr is a terminal
    #[arg(long, global = true, value_enum, default_value_t = ProgressWhen::Auto)]
    pub progress: ProgressWhen,

    /// Print nothing on success (cron mails any output); errors still go to stderr
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// More log detail on stderr (-v debug, -vv trace); RUST_LOG overrides
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,

    /// Write the job's last-run metrics to this Prometheus text file (node_exporter's textfile
    /// collector), e.g. /var/lib/node_exporter/textfile_collector/wolley-push.prom; every job
    /// may share one file
    #[arg(long, env = "WOLLEY_METRICS_FILE", global = true, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,

    /// Healthchecks-style ping URL of this job: URL/start when the run starts, URL on success,
    /// URL/<exit code> otherwise; a failed ping is only a warning
    #[arg(long, env = "WOLLEY_PING_URL", global = true, value_name = "URL", hide_env_values = true)]
    pub ping_url: Option<String>,

    /// Pretend the current time is this RFC 3339 instant (for tests and replays)
    #[arg(long, env = "WOLLEY_NOW", global = true, hide = true)]
    pub now: Option<String>,
}

/// The jobs and operational commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Silent wake-up push to every device with a token (cron: every 30 minutes)
    #[command(after_help = "Example:\n  wolley-push save-location -q\n  \
        wolley-push save-location --tokens-file tokens.txt --print")]
    SaveLocation(SaveLocationArgs),

    /// Visible weekly reminder that makes the app upload its GPS logs (cron: Mondays 00:10; --remind, to those whose week has not arrived, Mondays 09:00)
    #[command(after_help = "Example:\n  wolley-push path-daily -q\n  \
        wolley-push path-daily --dry-run\n  \
        wolley-push path-daily --remind -q")]
    PathDaily(PathDailyArgs),

    /// One message to one device, to check a phone or the credentials by hand
    #[command(
        after_help = "Examples:\n  wolley-push send --token dGhpcyBpcyBhIHRva2Vu... --kind path-daily\n  wolley-push send --fid cR_8eKx2Q-2mP0aBcDeF9z --kind save-location"
    )]
    Send(SendArgs),

    /// Weekly statistics per user and category, and badges (cron: Mondays 00:30)
    #[command(subcommand, after_help = "Example:\n  wolley-push stats weekly -q --notify")]
    Stats(StatsCommand),

    /// Create or upgrade the tables wolley-push owns (never touches the backend's tables)
    #[command(
        after_help = "Example:\n  WOLLEY_DATABASE_URL=mysql://wolley:secret@db:3306/wolley wolley-push migrate"
    )]
    Migrate,

    /// Check configuration, key, OAuth, FCM, database and schema; one line per check
    #[command(long_about = "\
Check a wolley-push install before cron depends on it: configuration present, service-account
key usable and private, OAuth access token obtained, FCM reachable and the key allowed to send
(a validate_only request: nothing is delivered), database reachable, the backend's tables and
columns present, wolley-push's schema migrated, and how many devices have a token.

Prints one line per check (OK, WARN, FAIL with the fix, or SKIP when an earlier check failed)
and exits 0 only when nothing failed; otherwise with the exit code of the first failure.")]
    #[command(after_help = "Example:\n  wolley-push doctor\n  wolley-push doctor --format json")]
    Doctor,

    /// The run journal: each job's recent slots with status, counts, retry set, owner and heartbeat
    #[command(long_about = "\
The run journal as an operator reads it: for each job, its most recent slots (newest first),
with the slot's status (running, done, partial, failed), its totals over all its runs (targeted,
sent, pruned, failed, and the retry set a rerun would send), and the run that holds or last held
it (host, pid, and how long ago it last wrote its heartbeat).

A `running` slot whose heartbeat is older than 10 s has lost its run (killed, or the host is
gone): the next run of that slot resumes it.")]
    #[command(
        after_help = "Example:\n  wolley-push runs\n  wolley-push runs --job path-daily --last 3 --format json"
    )]
    Runs(RunsArgs),

    /// Reports on the jobs' effect: did the wake-ups work?
    #[command(
        subcommand,
        after_help = "Example:\n  wolley-push report week --format html --output week.html"
    )]
    Report(ReportCommand),

    /// Device tokens: put back tokens that pruning removed
    #[command(
        subcommand,
        after_help = "Example:\n  wolley-push tokens restore --job path-daily --slot 2026-W49"
    )]
    Tokens(TokensCommand),

    /// Write the shell completions and man pages generated from these definitions
    #[command(hide = true, after_help = "Example:\n  wolley-push generate --out-dir .")]
    Generate(GenerateArgs),
}

/// `generate` flags.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Directory that receives completions/ and man/ (the repository's root to refresh them)
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub out_dir: PathBuf,
}

/// `runs` flags.
#[derive(Debug, Args)]
pub struct RunsArgs {
    /// Only this job (save-location, path-daily, stats-notify)
    #[arg(long)]
    pub job: Option<String>,

    /// Slots shown per job
    #[arg(long, default_value_t = 10, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub last: u32,
}

/// `--format`: how a command writes what it reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatChoice {
    /// A few aligned lines for people.
    Human,
    /// One JSON object.
    Json,
    /// One self-contained page with charts (`report week` only).
    Html,
}

/// `report` subcommands.
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// The week's wake-ups: wake rate per slot, deliveries and never-woke users (reads only)
    #[command(long_about = "\
Did the week's silent wake-ups work? Joins the run journal (when each save-location slot started
sending, and what FCM accepted) with the gpslog points the phones uploaded: per half-hour slot,
of the users with a GPS point that day, the share with a point within --wake-window after the
push (wake rate), the same share in the window before it (baseline), and their difference
(lift). Also the users who never woke, every slot's deliveries, and the week's path-daily and
badge notification. Reads only: writes nothing to the database.

With --metrics-file, also records the week's median wake rate and lift and the never-woke users
(docs/stats.md has the definitions).")]
    #[command(after_help = "Example:\n  wolley-push report week\n  \
        wolley-push report week --week 2026-W48 --format json\n  \
        wolley-push report week --format html --output /var/www/wolley/week.html")]
    Week(ReportWeekArgs),
}

/// `report week` flags.
#[derive(Debug, Args)]
pub struct ReportWeekArgs {
    /// ISO week to report [default: the last finished week in --timezone]
    #[arg(long, value_parser = clap::value_parser!(crate::slot::IsoWeek), value_name = "YYYY-Www")]
    pub week: Option<crate::slot::IsoWeek>,

    /// Write the report to this file instead of stdout (replaced whole, never half-written)
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// How long after a push a GPS point counts as woken by it (and before it, as the
    /// baseline); more than 0, at most 30m (one slot)
    #[arg(long, default_value = "10m", value_name = "DURATION")]
    pub wake_window: String,
}

/// `tokens` subcommands.
#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Put back the tokens a run pruned, where the user still has no token
    #[command(long_about = "\
Put back device tokens that pruning removed from app_user.fcmToken, from the prune log
(wolley_push_prune_log, kept 90 days). A token goes back only to a user who still has no token
(NULL, empty or the app's placeholder): a user whose phone registered a new token meanwhile keeps
it. Prints how many tokens were restored and how many were left because the user has a new one.

Choose the prunes with --job and --slot (optionally --shard), or with --since (optionally --job).")]
    #[command(after_help = "Example:\n  wolley-push tokens restore --job path-daily --slot 2026-W49\n  \
        wolley-push tokens restore --since 2026-11-30T00:00")]
    Restore(RestoreArgs),
}

/// `tokens restore` flags.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The job whose prunes are put back
    #[arg(long)]
    pub job: Option<String>,

    /// The slot whose prunes are put back (needs --job), e.g. 2026-W49 or 2026-11-30T14:30
    #[arg(long, requires = "job", conflicts_with = "since")]
    pub slot: Option<String>,

    /// Only this shard of the slot
    #[arg(long, value_name = "K/N", requires = "slot", value_parser = clap::value_parser!(crate::shard::Shard))]
    pub shard: Option<crate::shard::Shard>,

    /// Every prune since this time: RFC 3339, or YYYY-MM-DD[THH:MM] in --timezone
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
}

/// `stats` subcommands.
#[derive(Debug, Subcommand)]
pub enum StatsCommand {
    /// Aggregate one finished ISO week per user and category and award badges
    #[command(after_help = "Example:\n  wolley-push stats weekly -q --notify\n  \
        wolley-push stats weekly --week 2026-W48 --user 1042")]
    Weekly(WeeklyArgs),
}

/// `stats weekly` flags.
#[derive(Debug, Args)]
pub struct WeeklyArgs {
    /// ISO week to aggregate [default: the last finished week in --timezone]
    #[arg(long, value_parser = clap::value_parser!(crate::slot::IsoWeek), value_name = "YYYY-Www")]
    pub week: Option<crate::slot::IsoWeek>,

    /// Badge rules (TOML) replacing the built-in set
    #[arg(long, value_name = "FILE")]
    pub badges: Option<PathBuf>,

    /// After awarding, send each user who earned a badge one notification
    #[arg(long)]
    pub notify: bool,

    /// Print this one user's week instead of the summary table
    #[arg(long, value_name = "USER_ID")]
    pub user: Option<i64>,

    /// With --notify: ask FCM to validate the notifications without delivering them
    #[arg(long, requires = "notify")]
    pub dry_run: bool,

    /// With --notify: notify every winner of every badge of the week again, even those already told
    #[arg(long, requires = "notify")]
    pub force: bool,

    /// Recompute every user of the week (a new version of the week, published whole), not only
    /// the users whose rows of the week changed since it was last computed. Use it after changing
    /// the badge rules. The first run of a week is always full
    #[arg(long)]
    pub full: bool,
}

/// What a broadcast job sends to and how.
#[derive(Debug, Args)]
pub struct BatchArgs {
    /// Read `token` or `user_id<TAB>token` lines from this file (`-` = stdin) instead of the database
    #[arg(long, value_name = "PATH|-")]
    pub tokens_file: Option<PathBuf>,

    /// Ask FCM to validate each message without delivering it; prune and record nothing
    #[arg(long, conflicts_with = "print")]
    pub dry_run: bool,

    /// Write each request body as one JSON line to stdout; no network, no credentials
    #[arg(long)]
    pub print: bool,

    /// The slot to run [default: now's half-hour (save-location) or ISO week (path-daily)],
    /// e.g. 2026-11-30T14:30 or 2026-W49
    #[arg(long)]
    pub slot: Option<String>,

    /// Send the slot again even if the journal says it is done
    #[arg(long)]
    pub force: bool,

    /// Stop sending this long after the start (more than 0, at most 7days); the rest counts as
    /// expired and a rerun resumes [default: save-location until its half-hour ends, at most
    /// 25m; 6h for path-daily]
    #[arg(long, value_name = "DURATION")]
    pub deadline: Option<String>,

    /// Only users with user_id % N == K, with a lock and journal row of its own
    #[arg(long, value_name = "K/N", value_parser = clap::value_parser!(crate::shard::Shard), conflicts_with = "shards")]
    pub shard: Option<crate::shard::Shard>,

    /// Split users into N shards, this run taking shard $JOB_COMPLETION_INDEX (Kubernetes Indexed Job)
    #[arg(long, value_name = "N")]
    pub shards: Option<u32>,
}

/// `save-location` flags.
#[derive(Debug, Args)]
pub struct SaveLocationArgs {
    /// Targets and mode.
    #[command(flatten)]
    pub batch: BatchArgs,

    /// How long FCM and APNs keep an undelivered wake-up, 1s to 28days (FCM's limit; the
    /// default is one period: a stale wake-up is useless)
    #[arg(long, default_value = "30m", value_name = "DURATION")]
    pub ttl: String,
}

/// `path-daily` flags.
#[derive(Debug, Args)]
pub struct PathDailyArgs {
    /// Targets and mode.
    #[command(flatten)]
    pub batch: BatchArgs,

    /// Send the slot's messages evenly over this window (0 = as fast as --rate allows). Every
    /// phone notified uploads its week to the backend's single Django host: spread over 10
    /// minutes, 1M users arrive at ~1,700 uploads/s instead of 9,000/s in under two minutes. A
    /// resumed slot sends what is left over what is left of the window
    #[arg(long, env = "WOLLEY_SPREAD", default_value = "10m", value_name = "DURATION")]
    pub spread: String,

    /// Send the week's reminder instead (cron: Mondays 09:00): only to the users the slot's
    /// path-daily run reached whose week has not arrived since it started, each once (its own
    /// slot, <slot>-remind, and job, path-daily-remind, in the journal). Refused and nothing
    /// sent when the slot has no path-daily run (exit 78) or it is still running (exit 75)
    #[arg(long, conflicts_with = "tokens_file")]
    pub remind: bool,

    /// Notification text.
    #[command(flatten)]
    pub text: NotificationText,
}

/// Overrides for the visible notification's text.
#[derive(Debug, Args)]
pub struct NotificationText {
    /// Notification title
    #[arg(long, default_value = crate::fcm::message::PATH_DAILY_TITLE)]
    pub title: String,

    /// Notification body [default: 일주일 동안의 기록을 확인해보세요!; for path-daily --remind:
    /// 지난주 기록이 아직 올라오지 않았어요. 앱을 열어 확인해보세요!]
    #[arg(long, value_name = "BODY")]
    pub body: Option<String>,

    /// Play the phone's notification sound (off by default: path-daily goes out at ten past
    /// midnight, and a chime then wakes people for a reminder that can wait until morning; the
    /// 09:00 --remind stays as quiet unless told)
    #[arg(long)]
    pub sound: bool,
}

/// `send` flags.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("device").required(true).args(["token", "fid"])))]
pub struct SendArgs {
    /// The device's FCM registration token
    #[arg(long)]
    pub token: Option<String>,

    /// The device's Firebase installation ID (sent as "fid")
    #[arg(long)]
    pub fid: Option<String>,

    /// Which message to send
    #[arg(long, value_enum, default_value_t = Kind::PathDaily)]
    pub kind: Kind,

    /// Notification text (path-daily only).
    #[command(flatten)]
    pub text: NotificationText,

    /// Ask FCM to validate the message without delivering it
    #[arg(long, conflicts_with = "print")]
    pub dry_run: bool,

    /// Write the request body to stdout instead of sending it
    #[arg(long)]
    pub print: bool,
}

/// The message kinds `send` can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// The silent wake-up.
    SaveLocation,
    /// The visible weekly reminder.
    PathDaily,
}
