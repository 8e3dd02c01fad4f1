//! `report week`: did the wake-ups work? Reads the run journal and the week's `gpslog` points,
//! writes the report (text, JSON or a page) and, with `--metrics-file`, the week's figures.
//! It writes nothing to the database.

use std::collections::HashMap;
use std::path::Path;

use chrono::{Duration, NaiveDateTime};

use crate::config::{Config, ReportFormat, ReportWeek};
use crate::db::Database;
use crate::error::{Error, Result};
use crate::exit::ExitCode;
use crate::jobs::RunEnd;
use crate::names;
use crate::output;
use crate::report::wake::{Marks, Tally, Windows};
use crate::report::{Delivery, Gathered, JobRun, WeekReport, WeekSlots};
use crate::slot::IsoWeek;
use crate::stats::uploads::Announcement;

/// Builds the week's report and writes it where it was asked for.
///
/// # Errors
/// [`Error::NoDatabase`], database failures (tables missing: run `migrate`), or the output
/// file cannot be written.
pub(crate) async fn run(config: &Config, job: &ReportWeek) -> Result<RunEnd> {
    let week = job.week.unwrap_or_else(|| IsoWeek::last_finished(config.now, config.timezone));
    let slots = WeekSlots::of(week, config.timezone);
    let gathered =
        super::with_database(config, false, async |db| gather(db, slots, job.wake_window).await).await?;
    let report = WeekReport::build(gathered);
    let text = match job.format {
        ReportFormat::Human => report.human(),
        ReportFormat::Json => report.json(),
        ReportFormat::Html => report.html(),
    };
    match &job.output {
        Some(path) => write_report(path, &text)?,
        None if !config.output.quiet => drop(output::print(&text)?),
        None => {}
    }
    if let Some(path) = &config.monitoring.metrics_file {
        if let Err(error) = crate::metrics::record_week(path, &report.figures()) {
            tracing::warn!("cannot write the week's figures to the metrics file {}: {error}", path.display());
        }
    }
    Ok(RunEnd::exited(ExitCode::Success))
}

/// Reads the journal, then streams the points through the slots' windows.
async fn gather(db: &Database, slots: WeekSlots, window: std::time::Duration) -> Result<Gathered> {
    db.check_schema().await?;
    let tz = slots.timezone;
    let rows = db.journal_rows(names::SAVE_LOCATION, &slots.labels).await?;
    let deliveries: Vec<Delivery> = slots
        .labels
        .iter()
        .map(|label| Delivery::of(&rows.iter().filter(|row| &row.slot == label).collect::<Vec<_>>(), tz))
        .collect();
    let starts: Vec<(i64, usize)> = deliveries
        .iter()
        .enumerate()
        .filter_map(|(k, delivery)| Some((slots.local_micros(delivery.start_utc_micros()?), k)))
        .collect();
    let width = i64::try_from(window.as_micros()).unwrap_or(i64::MAX);
    let windows = Windows::new(starts.clone(), width, slots.week_start_micros());
    let week = slots.week;
    // As `stats weekly` counts them: the uploads since the path-daily run that announced the week.
    let announced = Announcement::of(db, week).await?;
    let since = announced.map(|runs| runs.since(tz).naive_local());
    let (tally, per_minute) = tally_points(db, &slots, &windows, &starts, width, since).await?;
    let uploads = announced.map(|runs| runs.uploads(tz, &per_minute.unwrap_or_default()));
    let path_daily = job_run(db, names::PATH_DAILY, week.next().to_string(), tz).await?;
    let badge_notification = job_run(db, names::STATS_NOTIFY, week.to_string(), tz).await?;
    Ok(Gathered { slots, wake_window: window, deliveries, tally, path_daily, badge_notification, uploads })
}

/// Every point from the start of the first window to the end of the last (the week at least),
/// a page of users at a time: each user's marks, then the page's users counted in id order.
/// With `since`, also the week's first uploads per minute after it, from the same table of days.
async fn tally_points(
    db: &Database,
    slots: &WeekSlots,
    windows: &Windows,
    starts: &[(i64, usize)],
    width: i64,
    since: Option<NaiveDateTime>,
) -> Result<(Tally, Option<Vec<(i64, u64)>>)> {
    let week_start = slots.week_start_micros();
    let week_end = week_start + 7 * crate::report::wake::DAY_MICROS;
    let from = starts.iter().map(|(start, _)| start - width).min().unwrap_or(week_start).min(week_start);
    let to = starts.iter().map(|(start, _)| start + width).max().unwrap_or(week_end).max(week_end);
    let (from, to) = (naive(from), naive(to));
    // A point is filed under its day's dailypath; a day either side covers points near midnight.
    let days = (from.date() - Duration::days(1), to.date() + Duration::days(1));
    let mut pages = db.week_points(days, (from, to)).await?;
    let mut page: HashMap<i64, Marks> = HashMap::new();
    let mut tally = Tally::default();
    let read = loop {
        let more = pages.next_page(&mut |user, at| windows.mark(page.entry(user).or_default(), at)).await;
        match more {
            Ok(true) => {}
            other => break other,
        }
        let mut users: Vec<(i64, Marks)> = page.drain().collect();
        users.sort_unstable_by_key(|(user, _)| *user);
        for (user, marks) in &users {
            tally.add(*user, marks);
        }
    };
    let monday = slots.week.monday();
    let uploads = match (&read, since) {
        (Ok(_), Some(since)) => {
            pages.first_uploads((monday, monday + Duration::days(6)), since).await.map(Some)
        }
        _ => Ok(None),
    };
    pages.close().await;
    read?;
    Ok((tally, uploads?))
}

fn naive(micros: i64) -> NaiveDateTime {
    chrono::DateTime::from_timestamp_micros(micros).unwrap_or_default().naive_utc()
}

async fn job_run(db: &Database, job: &str, slot: String, tz: chrono_tz::Tz) -> Result<JobRun> {
    let rows = db.journal_rows(job, std::slice::from_ref(&slot)).await?;
    let delivery = Delivery::of(&rows.iter().collect::<Vec<_>>(), tz);
    Ok(JobRun { job: job.to_owned(), slot, delivery })
}

/// Writes beside the file and renames over it: a reader (a web server) never sees half a page.
fn write_report(path: &Path, text: &str) -> Result<()> {
    let fail = |source: std::io::Error| Error::ReportFile { path: path.to_owned(), source };
    let directory = path.parent().filter(|dir| !dir.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut file =
        tempfile::Builder::new().prefix(".wolley-push-report").tempfile_in(directory).map_err(fail)?;
    std::io::Write::write_all(&mut file, text.as_bytes()).map_err(fail)?;
    file.persist(path).map(drop).map_err(|error| fail(error.error))
}
