//! Weekly statistics: each user's week by category ([`week`]), the badge rules evaluated over
//! it ([`badges`]), what a run reports ([`report`]) and who is told about their badges
//! ([`notify`]).
//!
//! Everything here is plain computation over figures the database layer hands over page by
//! page (`crate::db::stats` owns the SQL), so the rules of the week are unit-tested without a
//! server and memory follows one page of users, never all of them.

pub(crate) mod badges;
pub(crate) mod notify;
pub(crate) mod report;
pub(crate) mod week;

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
