//! What `stats weekly` prints: the week's summary table (users, recorded hours, hours per
//! category, badges awarded) or, with `--user`, one user's week; for people or as one JSON
//! object (`--format json`).
//!
//! The totals are accumulated page by page as users stream past ([`WeekTotals`]), so they take
//! memory per category and per rule, never per user.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use super::badges::{BadgeRule, BadgeRules};
use super::uploads::Uploads;
use crate::output::Format;
use crate::user_week::category_order;
use crate::user_week::UserWeek;

/// Running totals of one week's aggregation.
#[derive(Debug, Clone, Default)]
pub(crate) struct WeekTotals {
    users: u64,
    recorded: u64,
    counted: u64,
    ignored: u64,
    categories: BTreeMap<String, (u64, u64)>,
    winners: Vec<u64>,
    awarded: u64,
    new_badges: u64,
    kept_badges: u64,
}

impl WeekTotals {
    /// Empty totals for a run with `rules`.
    pub(crate) fn new(rules: &BadgeRules) -> Self {
        WeekTotals { winners: vec![0; rules.rules().len()], ..WeekTotals::default() }
    }

    /// Counts intervals: `counted` made it into a week, `ignored` ended at or before their start.
    pub(crate) fn add_intervals(&mut self, counted: u64, ignored: u64) {
        self.counted += counted;
        self.ignored += ignored;
    }

    /// Adds a user's week and the positions (in the rule set) of the badges they earned.
    pub(crate) fn add_user(&mut self, week: &UserWeek, badges: &[usize]) {
        self.users += 1;
        self.recorded += u64::from(week.recorded);
        for time in &week.categories {
            let entry = self.categories.entry(time.category.clone()).or_default();
            entry.0 += u64::from(time.seconds);
            entry.1 += 1;
        }
        for &badge in badges {
            self.winners[badge] += 1;
        }
        self.awarded += badges.len() as u64;
    }

    /// Counts badges earned that the user did not hold before this run, and badges held that the
    /// recomputation no longer earns (and which are kept).
    pub(crate) fn add_badge_changes(&mut self, new: usize, kept: usize) {
        self.new_badges += new as u64;
        self.kept_badges += kept as u64;
    }

    /// The report of the week `week`, with `rules`, that took `elapsed`.
    pub(crate) fn report(&self, week: String, rules: &BadgeRules, elapsed: Duration) -> WeekReport {
        let mut categories: Vec<CategoryLine> = self
            .categories
            .iter()
            .map(|(category, &(seconds, users))| CategoryLine {
                category: category.clone(),
                seconds,
                hours: hours(seconds),
                users,
            })
            .collect();
        categories.sort_by(|a, b| category_order(&a.category, &b.category));
        let badges = rules
            .rules()
            .iter()
            .zip(&self.winners)
            .map(|(rule, &users)| BadgeLine { code: rule.code.clone(), name: rule.name.clone(), users })
            .collect();
        WeekReport {
            job: crate::names::STATS_WEEKLY,
            week,
            users: self.users,
            recorded_hours: hours(self.recorded),
            intervals_counted: self.counted,
            intervals_ignored: self.ignored,
            categories,
            badges,
            badges_awarded: self.awarded,
            badges_new: self.new_badges,
            badges_kept: self.kept_badges,
            scope: "full",
            changed_since: None,
            duration_secs: (elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
            uploads: None,
        }
    }
}

/// The summary of one `stats weekly` run.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct WeekReport {
    /// `stats-weekly`.
    pub job: &'static str,
    pub week: String,
    /// Users with recorded time.
    pub users: u64,
    /// Their recorded time, summed.
    pub recorded_hours: f64,
    /// Intervals that counted towards someone's week.
    pub intervals_counted: u64,
    /// Intervals ignored because they end at or before their start.
    pub intervals_ignored: u64,
    /// Time per category over all users, in the app's order.
    pub categories: Vec<CategoryLine>,
    /// Every rule with the number of users who earned it, in rule order.
    pub badges: Vec<BadgeLine>,
    /// Badges the users computed earned, in all (one user may earn several).
    pub badges_awarded: u64,
    /// Of those, the badges the user did not hold before this run.
    pub badges_new: u64,
    /// Badges the users computed held before and no longer earn: kept, never taken away.
    pub badges_kept: u64,
    /// `full` (every user with data, published whole) or `refresh` (only the users whose rows
    /// of the week changed since the week was last computed; the figures above count them only).
    pub scope: &'static str,
    /// For a refresh: the backend time through which the week had been computed.
    pub changed_since: Option<String>,
    /// Wall time of the aggregation, in seconds.
    pub duration_secs: f64,
    /// The week's uploads after the `path-daily` run that announced it; `None` (JSON `null`)
    /// when the journal has no such run.
    pub uploads: Option<Uploads>,
}

/// One category's total.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct CategoryLine {
    pub category: String,
    /// Seconds over all users.
    pub seconds: u64,
    /// The same in hours.
    pub hours: f64,
    /// Users with time in it.
    pub users: u64,
}

/// One badge's winners.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct BadgeLine {
    pub code: String,
    pub name: String,
    /// Users who earned it.
    pub users: u64,
}

impl WeekReport {
    /// The report in `format`, ending with a newline.
    pub(crate) fn render(&self, format: Format) -> String {
        match format {
            Format::Json => serde_json::to_string(self).expect("reports serialise") + "\n",
            Format::Human => self.human(),
        }
    }

    // Names go last on each line: Korean characters are two columns wide on a terminal, so
    // padding them would not line anything up.
    fn human(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "stats weekly {}", self.week);
        match &self.changed_since {
            Some(since) => {
                let _ = writeln!(out, "  refresh: only the users whose week changed since {since}");
            }
            None => {
                let _ = writeln!(out, "  full: every user with data in the week");
            }
        }
        let _ = writeln!(out, "  {:<20}{:>12}", "users", self.users);
        let _ = writeln!(out, "  {:<20}{:>12.1}", "recorded hours", self.recorded_hours);
        let _ = writeln!(out, "  {:<20}{:>12}", "intervals counted", self.intervals_counted);
        let _ = writeln!(out, "  {:<20}{:>12}", "intervals ignored", self.intervals_ignored);
        let _ = writeln!(out, "  {:<20}{:>12}", "badges awarded", self.badges_awarded);
        let _ = writeln!(out, "  {:<20}{:>12}", "badges new", self.badges_new);
        if self.badges_kept > 0 {
            let _ = writeln!(
                out,
                "  {:<20}{:>12}  (held before, no longer earned by the recomputation: kept)",
                "badges kept", self.badges_kept
            );
        }
        let _ = writeln!(out, "  {:<20}{:>12.3}", "duration s", self.duration_secs);
        match &self.uploads {
            Some(uploads) => {
                let _ = writeln!(out, "  {:<20}{}", "uploads", uploads.line());
            }
            None => {
                let _ = writeln!(out, "  uploads: no path-daily run announced this week");
            }
        }
        let _ = writeln!(out, "\n  {:>12} {:>10}  category", "hours", "users");
        for line in &self.categories {
            let _ = writeln!(out, "  {:>12.1} {:>10}  {}", line.hours, line.users, line.category);
        }
        let _ = writeln!(out, "\n  {:>23}  badge", "users");
        for line in &self.badges {
            let _ = writeln!(out, "  {:>23}  {} ({})", line.users, line.code, line.name);
        }
        if let Some(uploads) = self.uploads.as_ref().filter(|u| !u.arrivals.is_empty()) {
            let _ = writeln!(out, "\n  {:>23}  first upload, minutes after the push", "users");
            for arrival in &uploads.arrivals {
                let to = arrival.to_minutes.map_or_else(String::new, |to| to.to_string());
                let _ = writeln!(out, "  {:>23}  {}-{to}", arrival.users, arrival.from_minutes);
            }
        }
        out
    }
}

/// One user's week, for `--user`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct UserReport {
    /// `stats-weekly`.
    pub job: &'static str,
    pub week: String,
    pub user_id: i64,
    /// Seconds covered by at least one interval.
    pub recorded_seconds: u32,
    /// The same in hours.
    pub recorded_hours: f64,
    /// Seconds of the week without data.
    pub untracked_seconds: u32,
    /// Days of the week with a counted interval.
    pub days_with_data: u8,
    /// Time per category, in the app's order.
    pub categories: Vec<UserCategory>,
    /// Badges earned, in rule order.
    pub badges: Vec<UserBadge>,
}

/// One category of a user's week.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct UserCategory {
    pub category: String,
    /// Seconds the user spent in the category during the week.
    pub seconds: u32,
    /// The same in hours.
    pub hours: f64,
    /// Share of the recorded time, to six decimals (as stored).
    pub share: f64,
}

/// A badge a user earned.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct UserBadge {
    pub code: String,
    pub name: String,
}

impl UserReport {
    /// The report of `week` (the user's figures, empty without data) and the badges earned.
    pub(crate) fn new(label: String, week: &UserWeek, badges: &[&BadgeRule]) -> Self {
        UserReport {
            job: crate::names::STATS_WEEKLY,
            week: label,
            user_id: week.user_id,
            recorded_seconds: week.recorded,
            recorded_hours: hours(u64::from(week.recorded)),
            untracked_seconds: week.untracked(),
            days_with_data: week.days_with_data,
            categories: week
                .categories
                .iter()
                .map(|c| UserCategory {
                    category: c.category.clone(),
                    seconds: c.seconds,
                    hours: hours(u64::from(c.seconds)),
                    share: rounded_share(week.share_of(c.seconds)),
                })
                .collect(),
            badges: badges.iter().map(|b| UserBadge { code: b.code.clone(), name: b.name.clone() }).collect(),
        }
    }

    /// The report in `format`, ending with a newline.
    pub(crate) fn render(&self, format: Format) -> String {
        match format {
            Format::Json => serde_json::to_string(self).expect("reports serialise") + "\n",
            Format::Human => self.human(),
        }
    }

    fn human(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "stats weekly {} user {}", self.week, self.user_id);
        let _ = writeln!(out, "  {:<20}{:>12.2}", "recorded hours", self.recorded_hours);
        let _ =
            writeln!(out, "  {:<20}{:>12.2}", "untracked hours", hours(u64::from(self.untracked_seconds)));
        let _ = writeln!(out, "  {:<20}{:>12}", "days with data", self.days_with_data);
        let badges: Vec<String> = self.badges.iter().map(|b| format!("{} ({})", b.code, b.name)).collect();
        let badges = if badges.is_empty() { "none".to_owned() } else { badges.join(", ") };
        let _ = writeln!(out, "  {:<20}{}", "badges", badges);
        let _ = writeln!(out, "\n  {:>12} {:>10}  category", "hours", "share %");
        for c in &self.categories {
            let _ = writeln!(out, "  {:>12.2} {:>10.1}  {}", c.hours, c.share * 100.0, c.category);
        }
        out
    }
}

/// Hours to two decimals.
fn hours(seconds: u64) -> f64 {
    (seconds as f64 / 36.0).round() / 100.0
}

/// A share to six decimals, as `wolley_push_weekly_stat.share` holds it.
pub(crate) fn rounded_share(share: f64) -> f64 {
    (share * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::user_week::{CategoryTime, WEEK_SECONDS};

    fn user(id: i64, categories: &[(&str, u32)]) -> UserWeek {
        let recorded = categories.iter().map(|c| c.1).sum();
        UserWeek {
            user_id: id,
            recorded,
            days_with_data: 1,
            categories: categories
                .iter()
                .map(|&(c, s)| CategoryTime { category: c.into(), seconds: s })
                .collect(),
        }
    }

    #[test]
    fn totals_add_up_per_category_in_the_app_s_order() {
        let rules = BadgeRules::builtin();
        let mut totals = WeekTotals::new(&rules);
        totals.add_user(&user(1, &[("카페", 3600), ("집", 7200)]), &[4]);
        totals.add_user(&user(2, &[("집", 3600), ("헬스장", 1800)]), &[4, 7]);
        totals.add_intervals(5, 1);
        let report = totals.report("2026-W48".into(), &rules, Duration::from_millis(1234));
        let categories: Vec<_> =
            report.categories.iter().map(|c| (c.category.as_str(), c.seconds, c.users)).collect();
        assert_eq!(categories, [("집", 10800, 2), ("카페", 3600, 1), ("헬스장", 1800, 1)]);
        assert_eq!((report.users, report.recorded_hours, report.badges_awarded), (2, 4.5, 3));
        assert_eq!(report.badges[4].users, 2);
        assert_eq!((report.intervals_counted, report.intervals_ignored, report.duration_secs), (5, 1, 1.234));
    }

    #[test]
    fn the_json_report_is_one_line_with_every_figure() {
        let rules = BadgeRules::builtin();
        let report = WeekTotals::new(&rules).report("2026-W48".into(), &rules, Duration::ZERO);
        let text = report.render(Format::Json);
        assert_eq!(text.lines().count(), 1);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        for key in [
            "job",
            "week",
            "users",
            "recorded_hours",
            "categories",
            "badges",
            "badges_awarded",
            "intervals_ignored",
        ] {
            assert!(value.get(key).is_some(), "{key}");
        }
    }

    #[test]
    fn a_user_without_data_has_the_whole_week_untracked() {
        let report = UserReport::new("2026-W48".into(), &UserWeek::empty(7), &[]);
        assert_eq!(i64::from(report.untracked_seconds), WEEK_SECONDS);
        assert!(report.render(Format::Human).contains("badges              none"));
    }
}
