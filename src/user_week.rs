//! One user's week in plain figures: the intervals the database layer reads, the time per
//! category that `stats` computes from them and the statistics tables store, and the app's
//! categories. Plain values at the bottom of the module graph, like `counts`: `db` reads and
//! writes them, `stats` does the arithmetic (see `stats::week`).

use std::cmp::Ordering;

/// The app's categories in the order the app shows them; reports follow it.
pub(crate) const APP_CATEGORIES: [&str; 12] =
    ["집", "회사", "학교", "식사", "카페", "쇼핑", "병원", "운동", "모임", "이동", "기타", "?"];

/// The category of every interval of a `past` day (reconstructed from old data).
pub(crate) const PAST_CATEGORY: &str = "과거";

/// The category of `intervalmove` rows.
pub(crate) const MOVE_CATEGORY: &str = "이동";

/// The category of a stay the user has not labelled (also given to blank labels).
pub(crate) const UNLABELLED_CATEGORY: &str = "?";

/// Orders categories as the app does: its own categories first in [`APP_CATEGORIES`] order,
/// then any others (such as [`PAST_CATEGORY`] or labels the app does not know) by code point.
pub(crate) fn category_order(a: &str, b: &str) -> Ordering {
    let rank = |c: &str| APP_CATEGORIES.iter().position(|known| *known == c).unwrap_or(APP_CATEGORIES.len());
    rank(a).cmp(&rank(b)).then_with(|| a.cmp(b))
}

/// Seconds in a week of wall-clock time (the backend's naive datetimes have no DST jumps to
/// account for: a week is seven 24-hour days).
pub(crate) const WEEK_SECONDS: i64 = 7 * 86_400;

/// One `intervalstay` or `intervalmove` row, as the database layer hands it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawInterval {
    /// Its category: the stay's label, `이동` for a move, `과거` for any interval of a past day.
    pub category: String,
    /// The date of its day (`dailypath.date`) in days from the week's Monday: -1 is the
    /// Sunday before, 0 to 6 are the week's days.
    pub day: i32,
    /// Its start, in seconds from the week's Monday 00:00 (negative before the week).
    pub start: i64,
    /// Its end, likewise.
    pub end: i64,
}

/// The time a user spent in one category during the week.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CategoryTime {
    pub category: String,
    /// Seconds, overlapping rows counted once.
    pub seconds: u32,
}

/// One user's week: the figures badges are awarded on and the statistics tables hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UserWeek {
    pub user_id: i64,
    /// Seconds covered by at least one counted interval.
    pub recorded: u32,
    /// Distinct dates of the week with a counted interval, 0 to 7.
    pub days_with_data: u8,
    /// Time per category, in the app's order; only categories with time.
    pub categories: Vec<CategoryTime>,
}

impl UserWeek {
    /// A week without any data.
    pub(crate) fn empty(user_id: i64) -> Self {
        UserWeek { user_id, recorded: 0, days_with_data: 0, categories: Vec::new() }
    }

    /// Seconds of the week not covered by any interval.
    pub(crate) fn untracked(&self) -> u32 {
        WEEK_SECONDS as u32 - self.recorded
    }

    /// Seconds spent in `category` (0 when none).
    pub(crate) fn seconds_in(&self, category: &str) -> u32 {
        self.categories.iter().find(|c| c.category == category).map_or(0, |c| c.seconds)
    }

    /// `seconds` as a share of the recorded time (0 when nothing was recorded).
    pub(crate) fn share_of(&self, seconds: u32) -> f64 {
        if self.recorded == 0 {
            0.0
        } else {
            f64::from(seconds) / f64::from(self.recorded)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_follow_the_app_then_the_rest_by_code_point() {
        let mut categories = vec!["헬스장", "?", "과거", "이동", "집", "기타", "회사"];
        categories.sort_by(|a, b| category_order(a, b));
        assert_eq!(categories, ["집", "회사", "이동", "기타", "?", "과거", "헬스장"]);
    }
}
