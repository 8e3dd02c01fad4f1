//! `report week`: did the wake-ups work? The week's slots from the run journal, joined to the
//! `gpslog` points the phones recorded after each push (docs/stats.md, "report week").
//!
//! No I/O here: the job reads the journal and streams the points into [`wake`]; this module
//! turns the counts into a [`WeekReport`], which [`render`] writes as text or JSON and [`html`]
//! as one self-contained page.

pub(crate) mod html;
pub(crate) mod render;
pub(crate) mod wake;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::db::report::JournalRow;
use crate::slot::{self, IsoWeek};
use crate::stats::uploads::Uploads;
use wake::{Tally, SLOTS, SLOTS_PER_DAY};

/// The half-hour slots of a week: their labels as `save-location` writes them in the journal,
/// and their scheduled wall-clock times.
#[derive(Debug, Clone)]
pub(crate) struct WeekSlots {
    pub week: IsoWeek,
    pub timezone: Tz,
    /// RFC 3339 labels, slot 0 = Monday 00:00.
    pub labels: Vec<String>,
}

impl WeekSlots {
    /// The 336 slots of `week` in `timezone`.
    pub(crate) fn of(week: IsoWeek, timezone: Tz) -> Self {
        let (monday, _) = week.bounds();
        let labels = (0..SLOTS)
            .map(|k| slot::local_instant(timezone, monday + Duration::minutes(30 * k as i64)).to_rfc3339())
            .collect();
        WeekSlots { week, timezone, labels }
    }

    /// Monday 00:00, as microseconds of the naive wall clock (the points' clock).
    pub(crate) fn week_start_micros(&self) -> i64 {
        naive_micros(self.week.bounds().0)
    }

    /// A UTC instant (the journal's clock) on the naive local wall clock.
    pub(crate) fn local_micros(&self, utc_micros: i64) -> i64 {
        naive_micros(utc(utc_micros).with_timezone(&self.timezone).naive_local())
    }
}

fn naive_micros(at: NaiveDateTime) -> i64 {
    at.and_utc().timestamp_micros()
}

fn utc(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

/// A delivery as the journal has it, over every shard of its slot.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct Delivery {
    /// `not sent` without a journal row; otherwise the shards' worst status.
    pub status: String,
    /// The earliest shard's start, RFC 3339 in the report's time zone.
    pub start: Option<String>,
    pub shards: usize,
    pub targeted: u64,
    pub sent: u64,
    pub pruned: u64,
    pub failed: u64,
    pub expired: u64,
    #[serde(skip)]
    start_utc_micros: Option<i64>,
}

impl Delivery {
    /// Sums a slot's journal rows (one per shard); `not sent` when there are none.
    pub(crate) fn of(rows: &[&JournalRow], timezone: Tz) -> Self {
        let start_utc_micros = rows.iter().map(|row| row.started_at_utc_micros).min();
        let status = ["running", "failed", "partial", "done"]
            .into_iter()
            .find(|status| rows.iter().any(|row| row.status == *status))
            .map_or_else(
                || rows.first().map_or("not sent", |row| row.status.as_str()).to_owned(),
                str::to_owned,
            );
        Delivery {
            status,
            start: start_utc_micros.map(|micros| utc(micros).with_timezone(&timezone).to_rfc3339()),
            shards: rows.len(),
            targeted: rows.iter().map(|row| row.targeted).sum(),
            sent: rows.iter().map(|row| row.sent).sum(),
            pruned: rows.iter().map(|row| row.pruned).sum(),
            failed: rows.iter().map(|row| row.failed).sum(),
            expired: rows.iter().map(|row| row.expired).sum(),
            start_utc_micros,
        }
    }

    /// When the slot's first shard started, in UTC microseconds.
    pub(crate) fn start_utc_micros(&self) -> Option<i64> {
        self.start_utc_micros
    }
}

/// The week's `save-location` messages, over every slot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Totals {
    pub targeted: u64,
    pub sent: u64,
    pub pruned: u64,
    pub failed: u64,
    pub expired: u64,
}

impl Totals {
    fn add(&mut self, delivery: &Delivery) {
        self.targeted += delivery.targeted;
        self.sent += delivery.sent;
        self.pruned += delivery.pruned;
        self.failed += delivery.failed;
        self.expired += delivery.expired;
    }
}

/// One slot of the week.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SlotReport {
    /// The slot's label (its scheduled half-hour).
    pub slot: String,
    /// Users active on the slot's day.
    pub active: u64,
    /// Of them, with a point in the window after the push.
    pub woke: u64,
    /// Of them, with a point in the window before the push.
    pub baseline: u64,
    pub wake_rate: Option<f64>,
    pub baseline_rate: Option<f64>,
    pub lift: Option<f64>,
    #[serde(flatten)]
    pub delivery: Delivery,
}

/// A figure and the slot it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct SlotFigure {
    pub slot: String,
    pub value: f64,
}

/// Another job's run of the week, from the journal.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct JobRun {
    pub job: String,
    pub slot: String,
    #[serde(flatten)]
    pub delivery: Delivery,
}

/// The week's report.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct WeekReport {
    pub week: String,
    pub timezone: String,
    pub wake_window_seconds: u64,
    pub slots_total: usize,
    pub slots_sent: usize,
    pub slots_not_sent: Vec<String>,
    pub active_users: u64,
    pub active_per_day: Vec<u64>,
    pub wake_rate_median: Option<f64>,
    pub wake_rate_worst: Option<SlotFigure>,
    pub lift_median: Option<f64>,
    pub lift_worst: Option<SlotFigure>,
    pub never_woke: u64,
    pub never_woke_ids: Vec<i64>,
    pub never_woke_ids_truncated: bool,
    pub deliveries: Totals,
    pub path_daily: JobRun,
    pub badge_notification: JobRun,
    /// Upload coverage and arrivals after the `path-daily` run that announced the week, as
    /// `stats weekly` reports them; `None` (JSON `null`) without such a run.
    pub uploads: Option<Uploads>,
    pub slots: Vec<SlotReport>,
}

/// What the job gathered for the report.
pub(crate) struct Gathered {
    pub slots: WeekSlots,
    pub wake_window: std::time::Duration,
    /// Per slot, its delivery.
    pub deliveries: Vec<Delivery>,
    pub tally: Tally,
    pub path_daily: JobRun,
    pub badge_notification: JobRun,
    pub uploads: Option<Uploads>,
}

impl WeekReport {
    /// Turns the counts into rates, medians and worsts.
    pub(crate) fn build(gathered: Gathered) -> Self {
        let Gathered { slots, wake_window, deliveries, tally, path_daily, badge_notification, uploads } =
            gathered;
        let mut total = Totals::default();
        let rows: Vec<SlotReport> = deliveries
            .into_iter()
            .enumerate()
            .map(|(k, delivery)| {
                total.add(&delivery);
                slot_report(
                    slots.labels[k].clone(),
                    delivery,
                    tally.active_per_day[k / SLOTS_PER_DAY],
                    &tally,
                    k,
                )
            })
            .collect();
        let rates: Vec<(&str, f64)> =
            rows.iter().filter_map(|r| Some((r.slot.as_str(), r.wake_rate?))).collect();
        let lifts: Vec<(&str, f64)> = rows.iter().filter_map(|r| Some((r.slot.as_str(), r.lift?))).collect();
        let not_sent: Vec<String> =
            rows.iter().filter(|r| r.delivery.shards == 0).map(|r| r.slot.clone()).collect();
        WeekReport {
            week: slots.week.to_string(),
            timezone: slots.timezone.name().to_owned(),
            wake_window_seconds: wake_window.as_secs(),
            slots_total: SLOTS,
            slots_sent: SLOTS - not_sent.len(),
            slots_not_sent: not_sent,
            active_users: tally.active_users,
            active_per_day: tally.active_per_day.to_vec(),
            wake_rate_median: median(&rates),
            wake_rate_worst: worst(&rates),
            lift_median: median(&lifts),
            lift_worst: worst(&lifts),
            never_woke: tally.never_woke,
            never_woke_ids_truncated: tally.never_woke > tally.never_woke_ids.len() as u64,
            never_woke_ids: tally.never_woke_ids,
            deliveries: total,
            path_daily,
            badge_notification,
            uploads,
            slots: rows,
        }
    }

    /// The figures the metrics file carries.
    pub(crate) fn figures(&self) -> crate::metrics::WeekFigures {
        crate::metrics::WeekFigures {
            wake_rate_median: self.wake_rate_median,
            lift_median: self.lift_median,
            never_woke: self.never_woke,
        }
    }
}

fn slot_report(slot: String, delivery: Delivery, active: u64, tally: &Tally, k: usize) -> SlotReport {
    let sent = delivery.shards > 0;
    let (woke, baseline) = if sent { (tally.woke[k], tally.before[k]) } else { (0, 0) };
    let share = |count: u64| (sent && active > 0).then(|| round(count as f64 / active as f64));
    let (wake_rate, baseline_rate) = (share(woke), share(baseline));
    let lift = wake_rate.zip(baseline_rate).map(|(wake, base)| round(wake - base));
    SlotReport { slot, active, woke, baseline, wake_rate, baseline_rate, lift, delivery }
}

/// Rates to four decimals (a hundredth of a percentage point): stable output, exact tests.
fn round(value: f64) -> f64 {
    (value * 10_000.0).round() / 10_000.0
}

/// The median (the mean of the middle two for an even count).
fn median(values: &[(&str, f64)]) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().map(|(_, value)| *value).collect();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    match sorted.len() {
        0 => None,
        n if n % 2 == 1 => Some(sorted[middle]),
        _ => Some(round((sorted[middle - 1] + sorted[middle]) / 2.0)),
    }
}

/// The lowest value, the earliest slot among equals.
fn worst(values: &[(&str, f64)]) -> Option<SlotFigure> {
    values
        .iter()
        .fold(None::<(&str, f64)>, |low, &(slot, value)| match low {
            Some((_, lowest)) if lowest <= value => low,
            _ => Some((slot, value)),
        })
        .map(|(slot, value)| SlotFigure { slot: slot.to_owned(), value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&[("a", 0.1), ("b", 0.4), ("c", 0.2), ("d", 0.3)]), Some(0.25));
        assert_eq!(median(&[("a", 0.5)]), Some(0.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn the_worst_slot_is_the_earliest_of_the_lowest() {
        let worst = worst(&[("a", 0.3), ("b", -0.1), ("c", -0.1)]).unwrap();
        assert_eq!((worst.slot.as_str(), worst.value), ("b", -0.1));
    }

    #[test]
    fn a_sharded_slot_starts_with_its_earliest_shard_and_sums_its_counts() {
        let row = |shard: &str, status: &str, micros| JournalRow {
            slot: "s".into(),
            shard: shard.parse().unwrap(),
            status: status.into(),
            targeted: 3,
            sent: 2,
            pruned: 1,
            failed: 0,
            expired: 0,
            started_at_utc_micros: micros,
        };
        let (a, b) = (row("0/2", "done", 20_000_000), row("1/2", "partial", 3_000_000));
        let delivery = Delivery::of(&[&a, &b], chrono_tz::Asia::Seoul);
        assert_eq!(delivery.start.as_deref(), Some("1970-01-01T09:00:03+09:00"));
        assert_eq!((delivery.shards, delivery.sent, delivery.status.as_str()), (2, 4, "partial"));
    }

    #[test]
    fn a_slot_without_a_journal_row_is_not_sent() {
        let delivery = Delivery::of(&[], chrono_tz::Asia::Seoul);
        assert_eq!((delivery.status.as_str(), delivery.start, delivery.shards), ("not sent", None, 0));
    }
}
