//! The week's report as text for people (a short summary, then one line per day) and as one
//! JSON object carrying every slot.

use std::fmt::Write as _;

use super::wake::SLOTS_PER_DAY;
use super::{JobRun, SlotFigure, SlotReport, WeekReport};

/// How many not-sent slots the summary names before it only counts the rest.
const NAMED_NOT_SENT: usize = 4;

impl WeekReport {
    /// One JSON object and a newline.
    pub(crate) fn json(&self) -> String {
        serde_json::to_string(self).expect("reports serialise") + "\n"
    }

    /// The summary lines, then the table of days.
    pub(crate) fn human(&self) -> String {
        let mut out = String::new();
        for line in self.summary_lines() {
            out.push_str(&line);
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.day_table());
        out
    }

    /// The summary: week, slots sent and not, wake rate and lift (median and worst), users who
    /// never woke, deliveries, the weekly jobs, uploads.
    pub(crate) fn summary_lines(&self) -> Vec<String> {
        let window = humantime::format_duration(std::time::Duration::from_secs(self.wake_window_seconds));
        let d = &self.deliveries;
        vec![
            format!("week {} ({}), wake window {window}", self.week, self.timezone),
            format!("slots: {} of {} sent{}", self.slots_sent, self.slots_total, self.not_sent_text()),
            format!(
                "wake rate: median {}, worst {}",
                or_dash(self.wake_rate_median.map(percent)),
                figure(self.wake_rate_worst.as_ref(), percent)
            ),
            format!(
                "lift: median {}, worst {}",
                or_dash(self.lift_median.map(points)),
                figure(self.lift_worst.as_ref(), points)
            ),
            format!("never woke: {} of {} active users", self.never_woke, self.active_users),
            format!(
                "deliveries: targeted {}, sent {}, pruned {}, failed {}, expired {}",
                d.targeted, d.sent, d.pruned, d.failed, d.expired
            ),
            job_line(&self.path_daily),
            job_line(&self.badge_notification),
            match &self.uploads {
                Some(uploads) => format!("uploads: {}", uploads.line()),
                None => "uploads: no path-daily run announced this week".to_owned(),
            },
        ]
    }

    fn not_sent_text(&self) -> String {
        match self.slots_not_sent.len() {
            0 => String::new(),
            n if n <= NAMED_NOT_SENT => format!("; not sent: {}", self.slots_not_sent.join(", ")),
            n => format!(
                "; not sent: {} and {} more",
                self.slots_not_sent[..NAMED_NOT_SENT].join(", "),
                n - NAMED_NOT_SENT
            ),
        }
    }

    /// One line per day: its active users, slots sent, wake rate and lift (median and lowest),
    /// and the messages of its slots.
    fn day_table(&self) -> String {
        let mut out = format!(
            "{:<10} {:>7} {:>6} {:>9} {:>9} {:>9} {:>9} {:>8} {:>7} {:>7}\n",
            "DAY",
            "ACTIVE",
            "SLOTS",
            "WAKE MED",
            "WAKE MIN",
            "LIFT MED",
            "LIFT MIN",
            "SENT",
            "PRUNED",
            "FAILED"
        );
        for (day, slots) in self.slots.chunks(SLOTS_PER_DAY).enumerate() {
            let date = slots[0].slot.get(..10).unwrap_or("?");
            let rates: Vec<f64> = slots.iter().filter_map(|s| s.wake_rate).collect();
            let lifts: Vec<f64> = slots.iter().filter_map(|s| s.lift).collect();
            let sum = |field: fn(&SlotReport) -> u64| slots.iter().map(field).sum::<u64>();
            let _ = writeln!(
                out,
                "{:<10} {:>7} {:>6} {:>9} {:>9} {:>9} {:>9} {:>8} {:>7} {:>7}",
                date,
                self.active_per_day[day],
                format!("{}/{}", slots.iter().filter(|s| s.delivery.shards > 0).count(), slots.len()),
                or_dash(middle(&rates).map(percent)),
                or_dash(lowest(&rates).map(percent)),
                or_dash(middle(&lifts).map(points)),
                or_dash(lowest(&lifts).map(points)),
                sum(|s| s.delivery.sent),
                sum(|s| s.delivery.pruned),
                sum(|s| s.delivery.failed),
            );
        }
        out
    }
}

fn job_line(run: &JobRun) -> String {
    let d = &run.delivery;
    match &d.start {
        None => format!("{} {}: not sent", run.job, run.slot),
        Some(start) => format!(
            "{} {}: {} (started {start}), sent {}, pruned {}, failed {}, expired {}",
            run.job, run.slot, d.status, d.sent, d.pruned, d.failed, d.expired
        ),
    }
}

/// `41.2%`.
pub(crate) fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

/// A difference of shares in percentage points: `+30.5 pts`.
pub(crate) fn points(lift: f64) -> String {
    format!("{:+.1} pts", lift * 100.0)
}

fn figure(figure: Option<&SlotFigure>, show: fn(f64) -> String) -> String {
    figure.map_or_else(|| "-".to_owned(), |f| format!("{} at {}", show(f.value), f.slot))
}

fn or_dash(text: Option<String>) -> String {
    text.unwrap_or_else(|| "-".to_owned())
}

fn middle(values: &[f64]) -> Option<f64> {
    let labelled: Vec<(&str, f64)> = values.iter().map(|v| ("", *v)).collect();
    super::median(&labelled)
}

fn lowest(values: &[f64]) -> Option<f64> {
    values.iter().copied().reduce(f64::min)
}
