//! One user's week, computed from their intervals: clipped to the week, merged per category so
//! no second counts twice, and the union of everything as the recorded time.
//!
//! The definitions (also in docs/stats.md):
//! - times are whole seconds from the week's Monday 00:00 (the database truncates the
//!   backend's microseconds);
//! - an interval that ends at or before its start is *ignored* and counted as such;
//! - any other interval is clipped to `[0, WEEK_SECONDS)`; it is *counted* if something is
//!   left;
//! - a category's time is the length of the union of its counted intervals;
//! - recorded time is the length of the union of all counted intervals, whatever their
//!   category (a person is in one place at a time, so a stay overlapping a move is recorded
//!   once even though both categories count it); untracked time is the week minus that;
//! - days with data are the dates of the week whose day (`dailypath` row) has at least one
//!   counted interval.

use crate::user_week::{
    category_order, CategoryTime, RawInterval, UserWeek, UNLABELLED_CATEGORY, WEEK_SECONDS,
};

/// What one user's intervals amount to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Summarized {
    /// The user's week, `None` when no interval was counted.
    pub week: Option<UserWeek>,
    /// Intervals counted (something left after clipping).
    pub counted: u64,
    /// Intervals ignored because they end at or before their start.
    pub ignored: u64,
}

/// A counted interval, clipped to the week.
struct Span {
    category: String,
    start: i64,
    end: i64,
}

/// Computes `user_id`'s week from all of their intervals that may touch it.
pub(crate) fn summarize(user_id: i64, intervals: Vec<RawInterval>) -> Summarized {
    let mut spans = Vec::with_capacity(intervals.len());
    let mut days = 0u8;
    let mut ignored = 0;
    for interval in intervals {
        if interval.end <= interval.start {
            ignored += 1;
            continue;
        }
        let (start, end) = (interval.start.max(0), interval.end.min(WEEK_SECONDS));
        if end <= start {
            continue;
        }
        if (0..7).contains(&interval.day) {
            days |= 1 << interval.day;
        }
        spans.push(Span { category: normalized(interval.category), start, end });
    }
    let counted = spans.len() as u64;
    if spans.is_empty() {
        return Summarized { week: None, counted, ignored };
    }
    spans.sort_unstable_by_key(|s| (s.start, s.end));
    let recorded = covered(spans.iter().map(|s| (s.start, s.end)));
    let week = UserWeek {
        user_id,
        recorded,
        days_with_data: days.count_ones() as u8,
        categories: by_category(spans),
    };
    Summarized { week: Some(week), counted, ignored }
}

/// Blank labels are unlabelled; surrounding whitespace is not part of a label.
fn normalized(category: String) -> String {
    match category.trim() {
        "" => UNLABELLED_CATEGORY.to_owned(),
        trimmed if trimmed.len() == category.len() => category,
        trimmed => trimmed.to_owned(),
    }
}

/// Each category's covered time, in the app's order. `spans` must be sorted by start.
fn by_category(mut spans: Vec<Span>) -> Vec<CategoryTime> {
    // A stable sort keeps each category's spans in start order.
    spans.sort_by(|a, b| category_order(&a.category, &b.category));
    let mut categories = Vec::new();
    let mut rest = spans.as_slice();
    while let Some(first) = rest.first() {
        let len = rest.iter().take_while(|s| s.category == first.category).count();
        let (same, tail) = rest.split_at(len);
        let seconds = covered(same.iter().map(|s| (s.start, s.end)));
        categories.push(CategoryTime { category: first.category.clone(), seconds });
        rest = tail;
    }
    categories
}

/// The length of the union of `spans`, which must come sorted by start.
///
/// Every earlier span starts at or before the current one, so whatever they cover beyond the
/// current start is one piece reaching up to the furthest end seen: only the part past that
/// reach is new.
fn covered(spans: impl Iterator<Item = (i64, i64)>) -> u32 {
    let mut total = 0i64;
    let mut reach = i64::MIN;
    for (start, end) in spans {
        if end > reach {
            total += end - start.max(reach);
            reach = end;
        }
    }
    u32::try_from(total).expect("a union of spans inside one week fits in u32")
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3600;

    fn iv(category: &str, day: i32, start: i64, end: i64) -> RawInterval {
        RawInterval { category: category.into(), day, start, end }
    }

    fn week(intervals: Vec<RawInterval>) -> UserWeek {
        summarize(1, intervals).week.expect("some interval counted")
    }

    fn times(week: &UserWeek) -> Vec<(&str, u32)> {
        week.categories.iter().map(|c| (c.category.as_str(), c.seconds)).collect()
    }

    #[test]
    fn overlapping_rows_of_one_category_count_once() {
        let week = week(vec![
            iv("회사", 0, 9 * H, 12 * H),
            iv("회사", 0, 11 * H, 13 * H),
            iv("회사", 0, 10 * H, 11 * H),
        ]);
        assert_eq!(times(&week), [("회사", 4 * H as u32)]);
        assert_eq!(week.recorded, 4 * H as u32);
    }

    #[test]
    fn a_stay_overlapping_a_move_counts_in_both_categories_but_is_recorded_once() {
        let week = week(vec![iv("회사", 0, 9 * H, 13 * H), iv("이동", 0, 12 * H, 14 * H)]);
        assert_eq!(times(&week), [("회사", 4 * H as u32), ("이동", 2 * H as u32)]);
        assert_eq!(week.recorded, 5 * H as u32);
        assert_eq!(week.untracked(), (WEEK_SECONDS - 5 * H) as u32);
    }

    #[test]
    fn intervals_are_clipped_to_the_week() {
        let week =
            week(vec![iv("집", -1, -2 * H, 7 * H), iv("집", 6, WEEK_SECONDS - 4 * H, WEEK_SECONDS + 6 * H)]);
        assert_eq!(times(&week), [("집", 11 * H as u32)]);
    }

    #[test]
    fn reversed_and_zero_length_intervals_are_ignored_and_counted() {
        let summary = summarize(
            1,
            vec![iv("식사", 0, 13 * H, 13 * H), iv("카페", 0, 15 * H, 14 * H), iv("집", 0, 0, H)],
        );
        assert_eq!((summary.counted, summary.ignored), (1, 2));
        assert_eq!(times(&summary.week.unwrap()), [("집", H as u32)]);
    }

    #[test]
    fn intervals_entirely_outside_the_week_count_for_nothing() {
        let summary =
            summarize(1, vec![iv("집", -1, -5 * H, -H), iv("집", 6, WEEK_SECONDS, WEEK_SECONDS + H)]);
        assert_eq!(summary, Summarized { week: None, counted: 0, ignored: 0 });
    }

    #[test]
    fn days_with_data_are_the_week_s_dates_with_a_counted_interval() {
        let week = week(vec![
            iv("집", -1, -H, H),                     // the Sunday before: not a day of the week
            iv("집", 2, 2 * 24 * H, 2 * 24 * H + H), // Wednesday
            iv("집", 2, 2 * 24 * H + 2 * H, 2 * 24 * H + 3 * H), // Wednesday again (a duplicate day row)
            iv("집", 4, 4 * 24 * H, 4 * 24 * H),     // Friday, but only an ignored interval
        ]);
        assert_eq!(week.days_with_data, 1);
    }

    #[test]
    fn blank_labels_are_unlabelled_and_labels_are_trimmed() {
        let week = week(vec![iv(" ", 0, 0, H), iv("집 ", 0, H, 2 * H), iv("집", 0, 2 * H, 3 * H)]);
        assert_eq!(times(&week), [("집", 2 * H as u32), ("?", H as u32)]);
    }

    #[test]
    fn shares_are_of_the_recorded_time() {
        let week = week(vec![iv("집", 0, 0, 3 * H), iv("카페", 0, 3 * H, 4 * H)]);
        assert_eq!(week.share_of(week.seconds_in("집")), 0.75);
        assert_eq!(week.seconds_in("학교"), 0);
    }
}
