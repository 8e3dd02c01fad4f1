//! `stats weekly`: each user's week by category, badges, and the badge notification.
//!
//! The script: load the badge rules (a bad file stops the run before the database is
//! touched), take the week's lock, compute the week — the first run (or `--full`) every user
//! into a new generation published at once, a later run only the users whose rows of the week
//! changed since ([`Scope`]) — counting the uploads since the `path-daily` push that announced
//! the week, print the report, then with `--notify` tell each winner of the badges they were not
//! told of yet, as a notification pass of its own ([`broadcast`]: lock, journal, retry set,
//! pruning; each badge marked told with the journal write that records its delivery).

use std::time::Instant;

use crate::config::{Config, SlotSettings, StatsWeekly, PATH_DAILY_DEADLINE};
use crate::db::stats::{Award, HeldBadge, Scope, WeekPlan, WeekWriter};
use crate::db::Database;
use crate::error::{Error, Result};
use crate::exit::ExitCode;
use crate::fcm::auth::AuthError;
use crate::fcm::message::{Message, MAX_MESSAGE_BYTES};
use crate::fcm::target::TargetKind;
use crate::jobs::broadcast::{self, Audience, Broadcast};
use crate::jobs::{RunEnd, Skip};
use crate::names;
use crate::shard::Shard;
use crate::slot::IsoWeek;
use crate::stats::badges::BadgeRules;
use crate::stats::notify::{largest_notification, next_pass, Pass};
use crate::stats::refresh;
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
        let run = WeekRun { config, job, db, week, rules: &rules, started };
        aggregate_and_notify(run, notification).await
    })
    .await
}

/// One run's inputs, once the week and the rules are known.
#[derive(Clone, Copy)]
struct WeekRun<'a> {
    config: &'a Config,
    job: &'a StatsWeekly,
    db: &'a Database,
    week: IsoWeek,
    rules: &'a BadgeRules,
    started: Instant,
}

async fn aggregate_and_notify(run: WeekRun<'_>, notification: Option<Message>) -> Result<RunEnd> {
    run.db.check_schema().await?;
    let Some(lock) = run.db.lock_week(run.week).await? else {
        tracing::warn!(
            "another stats weekly run of {} is computing or notifying it; this run did nothing",
            run.week
        );
        return Ok(RunEnd::skipped(Skip::LockHeld));
    };
    let ended = locked(&run, notification).await;
    lock.release().await;
    ended
}

/// [`aggregate_and_notify`] under the week's lock.
async fn locked(run: &WeekRun<'_>, notification: Option<Message>) -> Result<RunEnd> {
    let WeekRun { config, job, db, week, rules, started } = *run;
    // The Monday run is named after the week it runs in: path-daily's slot 2026-W49 announced 2026-W48.
    let announced = Announcement::of(db, week).await?;
    let push = announced.map(|runs| Push { runs, timezone: config.timezone });
    let plan = WeekPlan {
        full: job.full,
        computed_at: refresh::computed_at(db.utc_now().await?, config.timezone),
        shown: job.user,
    };
    let aggregated = aggregate(db, week, plan, rules, push).await?;
    let mut report = aggregated.totals.report(week.to_string(), rules, started.elapsed());
    report.uploads = aggregated.uploads;
    if let Scope::Refresh { since, .. } = aggregated.scope {
        report.scope = "refresh";
        report.changed_since = Some(since.format("%Y-%m-%dT%H:%M:%S%.6f").to_string());
    }
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
    notify(config, job, db, week, message).await
}

/// Tells the week's winners of the badges they were not told of, as the week's next
/// notification pass (or the unfinished one, resumed): each pass is a scheduled delivery of
/// its own, and each badge is told once across all of them.
async fn notify(
    config: &Config,
    job: &StatsWeekly,
    db: &Database,
    week: IsoWeek,
    message: Message,
) -> Result<RunEnd> {
    let slot = match next_pass(week, &db.notify_passes(names::STATS_NOTIFY, week).await?) {
        Pass::Resume(slot) | Pass::First(slot) => slot,
        Pass::Next(slot)
            if job.force || job.mode != crate::mode::Mode::Send || db.has_untold_badges(week).await? =>
        {
            slot
        }
        Pass::Next(_) => {
            tracing::info!("every badge of {week} was told to its winner already; --force tells them again");
            return Ok(RunEnd::skipped(Skip::SlotDone));
        }
    };
    let settings = SlotSettings {
        tokens_file: None,
        mode: job.mode,
        // A pass is never sent again: --force opens a new one that tells every badge again.
        force: false,
        deadline: PATH_DAILY_DEADLINE,
        shard: Shard::ALL,
        spread: None,
    };
    let notify = Broadcast {
        job: names::STATS_NOTIFY,
        slot,
        message,
        settings: &settings,
        audience: Audience::BadgeWinners { week, now: config.now, again: job.force },
    };
    broadcast::run(config, notify).await
}

/// What aggregating a week produced.
struct Aggregated {
    /// Whom the run computed.
    scope: Scope,
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

/// Computes the week: every page of users is summarised, judged by the rules and written in
/// a transaction of its own. A full run writes a new generation that readers see only once it
/// is published, whole; a refresh rewrites its users in place, each page at once. A badge a
/// user held is never taken away. With the `push` that announced the week, also counts the
/// uploads since it, from the same table of the week's days.
async fn aggregate(
    db: &Database,
    week: IsoWeek,
    plan: WeekPlan,
    rules: &BadgeRules,
    push: Option<Push>,
) -> Result<Aggregated> {
    let mut writer = db.begin_week(week, plan).await?;
    let shown = plan.shown;
    let mut done = Aggregated {
        scope: writer.scope(),
        totals: WeekTotals::new(rules),
        user: shown.map(|id| UserReport::new(week.to_string(), &UserWeek::empty(id), &[])),
        uploads: None,
    };
    while let Some(page) = writer.next_page().await? {
        let mut weeks = Vec::with_capacity(page.users.len());
        let mut won = Vec::new();
        let mut held = HeldBadges::new(&page.held);
        for entry in page.users {
            let summary = week::summarize(entry.user_id, entry.intervals);
            done.totals.add_intervals(summary.counted, summary.ignored);
            let Some(user_week) = summary.week else { continue };
            let earned = rules.awarded_positions(&user_week);
            done.add(week, &user_week, rules, &earned, shown);
            let awards: Vec<Award<'_>> = earned.iter().map(|&i| award(&user_week, rules, i)).collect();
            let new = held.earned(user_week.user_id, &awards);
            done.totals.add_badge_changes(new, 0);
            won.extend(awards);
            weeks.push(user_week);
        }
        let kept = held.kept();
        done.totals.add_badge_changes(0, kept.len());
        won.extend(kept);
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

/// The badges a page's users held before this run, checked off as the run awards them: what is
/// left is kept (a recomputation never takes a badge away).
struct HeldBadges<'a> {
    /// In `user_id` order, with whether this run earned it again.
    held: Vec<(&'a HeldBadge, bool)>,
    /// The first held badge of a user not yet seen: users come in `user_id` order too.
    next: usize,
}

impl<'a> HeldBadges<'a> {
    fn new(held: &'a [HeldBadge]) -> Self {
        HeldBadges { held: held.iter().map(|badge| (badge, false)).collect(), next: 0 }
    }

    /// Checks off what `user_id` held of `awards`; returns how many of `awards` are new to them.
    /// Call in `user_id` order.
    fn earned(&mut self, user_id: i64, awards: &[Award<'_>]) -> usize {
        while self.held.get(self.next).is_some_and(|(badge, _)| badge.user_id < user_id) {
            self.next += 1;
        }
        let theirs = self.held[self.next..].iter().take_while(|(badge, _)| badge.user_id == user_id).count();
        let theirs = &mut self.held[self.next..self.next + theirs];
        let mut new = 0;
        for award in awards {
            match theirs.iter_mut().find(|(badge, _)| badge.code == award.code) {
                Some((_, earned)) => *earned = true,
                None => new += 1,
            }
        }
        new
    }

    /// The badges held and not earned again: kept.
    fn kept(&self) -> Vec<Award<'a>> {
        self.held
            .iter()
            .filter(|(_, earned)| !earned)
            .map(|(badge, _)| Award { user_id: badge.user_id, code: &badge.code, name: &badge.name })
            .collect()
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
