//! Badges are rules, not code: a built-in set (`badges/default.toml`, compiled in) or the
//! operator's own TOML file (`--badges FILE`), each rule a code, a display name and conditions
//! over a user's week that must all hold.
//!
//! ```toml
//! [[badge]]
//! code = "homebody"          # a-z, 0-9, '-' and '_'; sent to the app
//! name = "집콕 마스터"        # shown in the notification
//! [badge.when]
//! category = "집"             # the category the category_* conditions look at
//! category_share_at_least = 0.5
//! recorded_hours_at_least = 48
//! ```
//!
//! Conditions: `category_hours_at_least`, `category_share_at_least` (both need `category`),
//! `recorded_hours_at_least`, `days_with_data_at_least`, and
//! `categories_with_hours_at_least = { count = 5, hours = 1 }`. Thresholds are compared with
//! whole seconds (hours × 3600, rounded) and exact ratios, so "at least" means exactly that.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::user_week::UserWeek;

/// The built-in rules.
pub(crate) const DEFAULT_RULES: &str = include_str!("../../badges/default.toml");
/// Longest badge code: codes travel comma-joined in the notification's data.
const MAX_CODE_CHARS: usize = 32;
/// Longest display name: the notification names every badge a user won.
const MAX_NAME_CHARS: usize = 40;
/// Share thresholds are kept in parts per million, to compare them exactly.
const PPM: u64 = 1_000_000;

/// A badge rule file that cannot be used. A configuration error (exit 78): the run stops
/// before touching the database.
#[derive(Debug, thiserror::Error)]
pub enum BadgeRulesError {
    /// The file cannot be read.
    #[error("cannot read the badge rules {}: {source}; give --badges a readable TOML file", path.display())]
    Unreadable {
        /// The `--badges` file.
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not valid TOML or breaks a rule of the format.
    #[error("invalid badge rules in {file}{}: {message} (the format is in docs/stats.md)", at_line(*.line))]
    Invalid {
        /// The file, or `the built-in set`.
        file: String,
        /// The 1-based line of the offending text, when known.
        line: Option<usize>,
        message: String,
    },
}

fn at_line(line: Option<usize>) -> String {
    line.map(|line| format!(", line {line}")).unwrap_or_default()
}

/// One condition of a rule, with thresholds in the units the week is measured in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Condition {
    /// At least `seconds` in `category`.
    CategorySeconds { category: String, seconds: u32 },
    /// `category` at least `ppm` millionths of the recorded time.
    CategoryShare {
        category: String,
        /// The threshold, in parts per million.
        ppm: u64,
    },
    /// At least this many seconds recorded.
    RecordedSeconds(u32),
    /// At least this many days with data.
    DaysWithData(u8),
    /// At least `count` categories with `seconds` each.
    CategoriesWith {
        /// How many categories.
        count: usize,
        /// Time each of them needs.
        seconds: u32,
    },
}

impl Condition {
    /// Whether `week` meets the condition.
    pub(crate) fn holds(&self, week: &UserWeek) -> bool {
        match self {
            Condition::CategorySeconds { category, seconds } => week.seconds_in(category) >= *seconds,
            Condition::CategoryShare { category, ppm } => {
                week.recorded > 0
                    && u64::from(week.seconds_in(category)) * PPM >= ppm * u64::from(week.recorded)
            }
            Condition::RecordedSeconds(seconds) => week.recorded >= *seconds,
            Condition::DaysWithData(days) => week.days_with_data >= *days,
            Condition::CategoriesWith { count, seconds } => {
                week.categories.iter().filter(|c| c.seconds >= *seconds).count() >= *count
            }
        }
    }
}

/// One badge and when it is awarded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadgeRule {
    /// Stable identifier, stored and sent to the app.
    pub code: String,
    /// Display name (Korean, shown to the user).
    pub name: String,
    /// All must hold.
    pub conditions: Vec<Condition>,
}

impl BadgeRule {
    /// Whether `week` earns this badge.
    pub(crate) fn awarded(&self, week: &UserWeek) -> bool {
        self.conditions.iter().all(|condition| condition.holds(week))
    }
}

/// The rules of one run, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadgeRules {
    rules: Vec<BadgeRule>,
}

impl BadgeRules {
    /// The built-in set.
    pub(crate) fn builtin() -> Self {
        Self::parse(DEFAULT_RULES, "the built-in set").expect("the built-in badge rules are valid (tested)")
    }

    /// The rules of `path`.
    ///
    /// # Errors
    /// [`BadgeRulesError`] naming the file and, for a bad rule, its line.
    pub(crate) fn load(path: &Path) -> Result<Self, BadgeRulesError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| BadgeRulesError::Unreadable { path: path.to_owned(), source })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// The rules in `text`; `file` names it in errors.
    ///
    /// # Errors
    /// [`BadgeRulesError::Invalid`] with the line of the offending text.
    pub(crate) fn parse(text: &str, file: &str) -> Result<Self, BadgeRulesError> {
        let invalid = |span: Option<std::ops::Range<usize>>, message: String| BadgeRulesError::Invalid {
            file: file.to_owned(),
            line: span.map(|span| line_of(text, span.start)),
            message,
        };
        let parsed: RuleFile =
            toml::from_str(text).map_err(|e| invalid(e.span(), e.message().trim().to_owned()))?;
        let mut codes = HashSet::new();
        let mut rules = Vec::with_capacity(parsed.badge.len());
        for raw in parsed.badge {
            let rule = raw
                .into_inner()
                .validate()
                .map_err(|Problem { span, message }| invalid(Some(span), message))?;
            if !codes.insert(rule.code.clone()) {
                return Err(invalid(None, format!("the badge code \"{}\" is used twice", rule.code)));
            }
            rules.push(rule);
        }
        Ok(BadgeRules { rules })
    }

    /// The rules, in file order.
    pub(crate) fn rules(&self) -> &[BadgeRule] {
        &self.rules
    }

    /// The positions in [`BadgeRules::rules`] of the badges `week` earns.
    pub(crate) fn awarded_positions(&self, week: &UserWeek) -> Vec<usize> {
        (0..self.rules.len()).filter(|&i| self.rules[i].awarded(week)).collect()
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

/// The file as written; validated into [`BadgeRules`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    #[serde(default)]
    badge: Vec<Spanned<RawRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    code: Spanned<String>,
    name: Spanned<String>,
    when: Spanned<RawConditions>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConditions {
    category: Option<Spanned<String>>,
    category_hours_at_least: Option<Spanned<f64>>,
    category_share_at_least: Option<Spanned<f64>>,
    recorded_hours_at_least: Option<Spanned<f64>>,
    days_with_data_at_least: Option<Spanned<i64>>,
    categories_with_hours_at_least: Option<Spanned<RawCategoryCount>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCategoryCount {
    count: i64,
    hours: f64,
}

/// What is wrong with a rule, and where.
struct Problem {
    span: std::ops::Range<usize>,
    message: String,
}

fn problem<T>(spanned: &Spanned<T>, message: String) -> Problem {
    Problem { span: spanned.span(), message }
}

impl RawRule {
    fn validate(self) -> Result<BadgeRule, Problem> {
        let code = self.code.get_ref();
        let valid_code = !code.is_empty()
            && code.chars().count() <= MAX_CODE_CHARS
            && code.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !valid_code {
            return Err(problem(
                &self.code,
                format!("code = \"{code}\" must be 1 to {MAX_CODE_CHARS} of a-z, 0-9, '-' and '_'"),
            ));
        }
        let name = self.name.get_ref();
        if name.trim().is_empty()
            || name.chars().count() > MAX_NAME_CHARS
            || name.chars().any(char::is_control)
        {
            return Err(problem(
                &self.name,
                format!(
                    "name = \"{name}\" must be 1 to {MAX_NAME_CHARS} characters without control characters"
                ),
            ));
        }
        let when_span = self.when.span();
        let conditions = self.when.into_inner().conditions()?;
        if conditions.is_empty() {
            return Err(Problem {
                span: when_span,
                message: format!("badge \"{code}\" has no condition under `when`"),
            });
        }
        Ok(BadgeRule { code: self.code.into_inner(), name: self.name.into_inner(), conditions })
    }
}

impl RawConditions {
    /// What a rule's `when` table asks, in a fixed order, each value checked against its bounds.
    fn conditions(&self) -> Result<Vec<Condition>, Problem> {
        let mut conditions = self.category_conditions()?;
        if let Some(hours) = &self.recorded_hours_at_least {
            conditions.push(Condition::RecordedSeconds(seconds_of(hours, "recorded_hours_at_least")?));
        }
        if let Some(days) = &self.days_with_data_at_least {
            let value = *days.get_ref();
            let days = u8::try_from(value)
                .ok()
                .filter(|d| (1..=7).contains(d))
                .ok_or_else(|| problem(days, format!("days_with_data_at_least = {value} must be 1 to 7")))?;
            conditions.push(Condition::DaysWithData(days));
        }
        if let Some(spanned) = &self.categories_with_hours_at_least {
            conditions.push(categories_with(spanned)?);
        }
        Ok(conditions)
    }

    /// The conditions on one category: `category` names it, `category_hours_at_least` and
    /// `category_share_at_least` bound it, and neither side goes without the other.
    fn category_conditions(&self) -> Result<Vec<Condition>, Problem> {
        let mut conditions = Vec::new();
        let category_conditions =
            self.category_hours_at_least.is_some() || self.category_share_at_least.is_some();
        match (&self.category, category_conditions) {
            (Some(category), false) => {
                return Err(problem(
                    category,
                    "category is only used with category_hours_at_least or category_share_at_least".into(),
                ))
            }
            (None, true) => {
                let span = self.category_hours_at_least.as_ref().map_or_else(
                    || self.category_share_at_least.as_ref().expect("one is set").span(),
                    Spanned::span,
                );
                return Err(Problem {
                    span,
                    message: "category_* conditions need `category = \"...\"`".into(),
                });
            }
            _ => {}
        }
        let category = self.category.as_ref().map(|c| c.get_ref().trim().to_owned()).unwrap_or_default();
        if let Some(hours) = &self.category_hours_at_least {
            let seconds = seconds_of(hours, "category_hours_at_least")?;
            conditions.push(Condition::CategorySeconds { category: category.clone(), seconds });
        }
        if let Some(share) = &self.category_share_at_least {
            let value = *share.get_ref();
            if !(value > 0.0 && value <= 1.0) {
                return Err(problem(
                    share,
                    format!("category_share_at_least = {value} must be above 0 and at most 1"),
                ));
            }
            conditions.push(Condition::CategoryShare { category, ppm: (value * PPM as f64).round() as u64 });
        }
        Ok(conditions)
    }
}

/// `categories_with_hours_at_least = { count, hours }`: at least `count` categories (one or
/// more) of `hours` each (within a week).
fn categories_with(spanned: &Spanned<RawCategoryCount>) -> Result<Condition, Problem> {
    let RawCategoryCount { count, hours } = *spanned.get_ref();
    let count = usize::try_from(count).ok().filter(|&c| c >= 1).ok_or_else(|| {
        problem(spanned, format!("categories_with_hours_at_least: count = {count} must be at least 1"))
    })?;
    let seconds = hours_to_seconds(hours).ok_or_else(|| {
        problem(
            spanned,
            format!("categories_with_hours_at_least: hours = {hours} must be above 0 and at most 168"),
        )
    })?;
    Ok(Condition::CategoriesWith { count, seconds })
}

fn seconds_of(hours: &Spanned<f64>, key: &str) -> Result<u32, Problem> {
    let value = *hours.get_ref();
    hours_to_seconds(value)
        .ok_or_else(|| problem(hours, format!("{key} = {value} must be above 0 and at most 168")))
}

/// Whole seconds of a positive number of hours within a week.
fn hours_to_seconds(hours: f64) -> Option<u32> {
    (hours > 0.0 && hours <= 168.0).then(|| (hours * 3600.0).round() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::user_week::CategoryTime;

    const H: u32 = 3600;

    fn week(recorded: u32, days: u8, categories: &[(&str, u32)]) -> UserWeek {
        UserWeek {
            user_id: 1,
            recorded,
            days_with_data: days,
            categories: categories
                .iter()
                .map(|&(c, s)| CategoryTime { category: c.into(), seconds: s })
                .collect(),
        }
    }

    fn codes(rules: &BadgeRules, week: &UserWeek) -> Vec<String> {
        rules.awarded_positions(week).into_iter().map(|i| rules.rules()[i].code.clone()).collect()
    }

    fn error(text: &str) -> String {
        BadgeRules::parse(text, "rules.toml").unwrap_err().to_string()
    }

    #[test]
    fn the_built_in_set_has_the_eight_default_badges() {
        let codes: Vec<_> = BadgeRules::builtin().rules().iter().map(|r| r.code.clone()).collect();
        assert_eq!(
            codes,
            ["homebody", "hard-worker", "scholar", "athlete", "cafe-lover", "social", "everyday", "explorer"]
        );
    }

    #[test]
    fn all_conditions_of_a_rule_must_hold() {
        let rules = BadgeRules::builtin();
        assert_eq!(codes(&rules, &week(48 * H, 3, &[("집", 24 * H)])), ["homebody"]);
        assert!(codes(&rules, &week(48 * H - 1, 3, &[("집", 24 * H)])).is_empty());
        assert!(codes(&rules, &week(48 * H, 3, &[("집", 24 * H - 1)])).is_empty());
    }

    #[test]
    fn hour_thresholds_are_inclusive_to_the_second() {
        let rules = BadgeRules::builtin();
        assert_eq!(codes(&rules, &week(45 * H, 5, &[("회사", 45 * H)])), ["hard-worker"]);
        assert!(codes(&rules, &week(45 * H, 5, &[("회사", 45 * H - 1)])).is_empty());
    }

    #[test]
    fn explorer_counts_categories_with_an_hour_each() {
        let rules = BadgeRules::builtin();
        let five = [("집", H), ("회사", H), ("식사", H), ("이동", H), ("과거", H)];
        assert_eq!(codes(&rules, &week(5 * H, 1, &five)), ["explorer"]);
        let short = [("집", H), ("회사", H), ("식사", H), ("이동", H), ("과거", H - 1)];
        assert!(codes(&rules, &week(5 * H, 1, &short)).is_empty());
    }

    #[test]
    fn a_custom_file_replaces_the_set() {
        let rules = BadgeRules::parse(
            "[[badge]]\ncode = \"night-owl\"\nname = \"올빼미\"\n[badge.when]\nrecorded_hours_at_least = 1.5\n",
            "rules.toml",
        )
        .unwrap();
        assert_eq!(rules.rules().len(), 1);
        assert_eq!(rules.rules()[0].conditions, [Condition::RecordedSeconds(5400)]);
    }

    #[test]
    fn syntax_errors_name_the_file_and_line() {
        let message = error("[[badge]]\ncode = \"a\"\nname = \n");
        assert!(message.contains("rules.toml, line 3"), "{message}");
    }

    #[test]
    fn unknown_conditions_name_their_line() {
        let message = error("[[badge]]\ncode = \"a\"\nname = \"A\"\n[badge.when]\nhours_at_least = 3\n");
        assert!(message.contains("line 5") && message.contains("hours_at_least"), "{message}");
    }

    #[test]
    fn out_of_range_thresholds_name_their_line() {
        let message = error("[[badge]]\ncode = \"a\"\nname = \"A\"\n[badge.when]\ncategory = \"집\"\ncategory_share_at_least = 1.5\n");
        assert!(message.contains("line 6") && message.contains("at most 1"), "{message}");
        let message =
            error("[[badge]]\ncode = \"a\"\nname = \"A\"\n[badge.when]\ndays_with_data_at_least = 8\n");
        assert!(message.contains("line 5"), "{message}");
    }

    #[test]
    fn category_conditions_need_a_category_and_vice_versa() {
        let message =
            error("[[badge]]\ncode = \"a\"\nname = \"A\"\n[badge.when]\ncategory_hours_at_least = 3\n");
        assert!(message.contains("line 5") && message.contains("need `category"), "{message}");
        let message = error("[[badge]]\ncode = \"a\"\nname = \"A\"\n[badge.when]\ncategory = \"집\"\n");
        assert!(message.contains("line 5"), "{message}");
    }

    #[test]
    fn codes_must_be_plain_and_unique() {
        let message = error(
            "[[badge]]\ncode = \"Bad,Code\"\nname = \"A\"\n[badge.when]\ndays_with_data_at_least = 1\n",
        );
        assert!(message.contains("line 2"), "{message}");
        let twice = "[[badge]]\ncode = \"a\"\nname = \"A\"\n[badge.when]\ndays_with_data_at_least = 1\n";
        assert!(error(&format!("{twice}{twice}")).contains("used twice"));
    }

    #[test]
    fn a_rule_needs_a_condition() {
        let message = error("[[badge]]\ncode = \"a\"\nname = \"A\"\n[badge.when]\n");
        assert!(message.contains("no condition"), "{message}");
    }
}
