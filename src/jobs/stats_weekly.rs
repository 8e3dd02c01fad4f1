//! `stats weekly`: each user's week by category, badges, and the badge notification.
//!
//! The script: load the badge rules (a bad file stops the run before the database is
//! touched), write the week as a new generation page by page of users (a transaction each) and
//! publish it at once (counting, before that, the uploads since the `path-daily` push that
//! announced the week), print the report, then with `--notify` send each winner one notification as a scheduled run of its
//! own ([`broadcast`]: lock, journal, pruning).

use std::time::Instant;

use crate::config::{Batch, Config, StatsWeekly, PATH_DAILY_DEADLINE};
use crate::db::stats::{Award, WeekWriter};
use crate::db::Database;
use crate::error::{Error, Result};
use crate::exit::ExitCode;
use crate::fcm::auth::AuthError;
use crate::fcm::message::{Message, MAX_MESSAGE_BYTES};
use crate::fcm::target::TargetKind;
use crate::jobs::broadcast::{self, Audience, Broadcast};
use crate::jobs::RunEnd;
use crate::names;
use crate::shard::Shard;
use crate::slot::IsoWeek;
use crate::stats::badges::BadgeRules;
use crate::stats::notify::largest_notification;
use crate::stats::report::{UserReport, WeekTotals};
use crate::stats::uploads::{Announcement, Uploads};
use crate::stats::week;
use crate::user_week::UserWeek;

/// Aggregates the week, awards badges, optionally notifies, and prints the report.
///
/// # Errors
/// [`Error::Badges`] for a bad badge file, [`Error::NoDatabase`], missing credentials (with
/// `--notify`), database failures, FCM refusing the notification run.
pub(crate) async fn run(config: &Config, job: &StatsWeekly) -> Result<RunEnd> {
    let started = Instant::now();
    let rules = match &job.badges {
        Some(path) => BadgeRules::load(path)?,
        None => BadgeRules::builtin(),
    };
    let week = job.week.unwrap_or_else(|| IsoWeek::last_finished(config.now, config.timezone));
    let notification = job.notify.then(|| largest_notification(&rules, week, config.now));
    if let Some(message) = &notification {
        check_can_notify(config, job, message)?;
    }
    super::with_database(config, false, async |db| {
        aggregate_and_notify(config, job, db, week, &rules, notification, started).await
    })
    .await
}

async fn aggregate_and_notify(
    config: &Config,
    job: &StatsWeekly,
    db: &Database,
    week: IsoWeek,
    rules: &BadgeRules,
    notification: Option<Message>,
    started: Instant,
) -> Result<RunEnd> {
    db.check_schema().await?;
    let announced = Announcement::of(db, week).await?;
    let push = announced.map(|runs| Push { runs, timezone: config.timezone });
    let aggregated = aggregate(db, week, rules, job.user, push).await?;
    let mut report = aggregated.totals.report(week.to_string(), rules, started.elapsed());
    report.uploads = aggregated.uploads;
    tracing::info!(%week, users = report.users, badges = report.badges_awarded, "week aggregated");
    if let Some(path) = &config.monitoring.metrics_file {
        let coverage = report.uploads.as_ref().and_then(|uploads| uploads.coverage);
        if let Err(error) = crate::metrics::record_upload_coverage(path, &report.week, coverage) {
            tracing::warn!(
                "cannot write the upload coverage to the metrics file {}: {error}",
                path.display()
            );
        }
    }
    let text = match &aggregated.user {
        Some(user) => user.render(config.output.format),
        None => report.render(config.output.format),
    };
    if !config.output.quiet {
        crate::output::print(&text)?;
    }
    let Some(message) = notification else { return Ok(RunEnd::exited(ExitCode::Success)) };
    // The notifications are a scheduled delivery of their own: one run per week at a time, and a
    // week's winners notified once (a rerun of the aggregation does not notify them again).
    let batch = Batch {
        tokens_file: None,
        mode: job.mode,
        force: job.force,
        deadline: PATH_DAILY_DEADLINE,
        shard: Shard::ALL,
        spread: None,
    };
    let notify = Broadcast {
        job: names::STATS_NOTIFY,
        slot: week.to_string(),
        message,
        batch: &batch,
        audience: Audience::BadgeWinners { week, now: config.now },
    };
    broadcast::run(config, notify).await
}

/// What aggregating a week produced.
struct Aggregated {
    totals: WeekTotals,
    /// The `--user` report.
    user: Option<UserReport>,
    /// The uploads after the push that announced the week, if one did.
    uploads: Option<Uploads>,
}

/// The runs that announced the week (`path-daily`, and its reminder if sent), and the clock of
/// the backend's datetimes.
#[derive(Debug, Clone, Copy)]
struct Push {
    runs: Announcement,
    timezone: chrono_tz::Tz,
}

impl Push {
    /// Counts the week's uploads since the push, from the writer's table of the week's days.
    async fn uploads(self, writer: &mut WeekWriter) -> Result<Uploads> {
        let since = self.runs.since(self.timezone);
        let per_minute = writer.first_uploads(since.naive_local()).await?;
        Ok(self.runs.uploads(self.timezone, &per_minute))
    }
}

/// Replaces the week's rows: every page of users is summarised, judged by the rules and
/// written in a transaction of its own; readers see none of it until the whole week is
/// published, then all of it (rows and badges) at once. With the `push` that announced the
/// week, also counts the uploads since it, from the same table of the week's days.
async fn aggregate(
    db: &Database,
    week: IsoWeek,
    rules: &BadgeRules,
    shown: Option<i64>,
    push: Option<Push>,
) -> Result<Aggregated> {
    let mut writer = db.begin_week(week).await?;
    let mut done = Aggregated {
        totals: WeekTotals::new(rules),
        user: shown.map(|id| UserReport::new(week.to_string(), &UserWeek::empty(id), &[])),
        uploads: None,
    };
    while let Some(page) = writer.next_page().await? {
        let mut weeks = Vec::with_capacity(page.len());
        let mut won = Vec::new();
        for entry in page {
            let summary = week::summarize(entry.user_id, entry.intervals);
            done.totals.add_intervals(summary.counted, summary.ignored);
            let Some(user_week) = summary.week else { continue };
            let earned = rules.awarded_positions(&user_week);
            done.add(week, &user_week, rules, &earned, shown);
            won.extend(earned.iter().map(|&i| award(&user_week, rules, i)));
            weeks.push(user_week);
        }
        writer.write(&weeks, &won).await?;
    }
    if let Some(push) = push {
        done.uploads = Some(push.uploads(&mut writer).await?);
    }
    writer.publish().await?;
    Ok(done)
}

impl Aggregated {
    /// Counts a user's week and the badges (positions in `rules`) they earned; keeps the
    /// report of the `shown` user.
    fn add(
        &mut self,
        week: IsoWeek,
        user: &UserWeek,
        rules: &BadgeRules,
        earned: &[usize],
        shown: Option<i64>,
    ) {
        self.totals.add_user(user, earned);
        if shown == Some(user.user_id) {
            let badges: Vec<_> = earned.iter().map(|&i| &rules.rules()[i]).collect();
            self.user = Some(UserReport::new(week.to_string(), user, &badges));
        }
    }
}

fn award<'a>(week: &UserWeek, rules: &'a BadgeRules, index: usize) -> Award<'a> {
    let rule = &rules.rules()[index];
    Award { user_id: week.user_id, code: &rule.code, name: &rule.name }
}

/// Before any work: `--notify` needs credentials, and a notification naming every badge must
/// fit FCM's size limit (the rules' names are the only variable part).
fn check_can_notify(config: &Config, job: &StatsWeekly, largest: &Message) -> Result<()> {
    if config.credentials.is_none() {
        return Err(AuthError::Missing.into());
    }
    let bytes =
        serde_json::to_vec(&largest.to_json(TargetKind::Token, "")).expect("JSON values serialise").len();
    if bytes > MAX_MESSAGE_BYTES {
        let file =
            job.badges.as_ref().map_or_else(|| "the built-in set".to_owned(), |p| p.display().to_string());
        return Err(Error::BadgeNotificationTooLarge { bytes, limit: MAX_MESSAGE_BYTES, file });
    }
    Ok(())
}
