//! `stats weekly --notify`: what the badge notifications look like at their largest, and which
//! notification pass of the week a run sends. The winners themselves are a token source
//! (`tokens::winners`).
//!
//! Every run of `stats weekly --notify` for a week (the first at 00:30, the refreshes after it)
//! tells the winners of the badges not told yet, as a *pass* with a journal slot of its own: the
//! first is named after the week (`2026-W48`), the next ones `2026-W48.2`, `2026-W48.3`... A pass
//! that did not finish is resumed before any new one opens.

use chrono::{DateTime, Utc};

use super::badges::BadgeRules;
use crate::fcm::message::Message;
use crate::slot::IsoWeek;

/// The largest notification `rules` can produce (a user earning every badge): the run checks
/// it against FCM's size limit before sending anything.
pub(crate) fn largest_notification(rules: &BadgeRules, week: IsoWeek, now: DateTime<Utc>) -> Message {
    let mut badges: Vec<(&str, &str)> =
        rules.rules().iter().map(|r| (r.code.as_str(), r.name.as_str())).collect();
    // The same order as the database's GROUP_CONCAT (by code).
    badges.sort_unstable();
    let codes: Vec<&str> = badges.iter().map(|b| b.0).collect();
    let names: Vec<&str> = badges.iter().map(|b| b.1).collect();
    Message::badge(week.to_string(), codes.join(","), &names, &now)
}

/// The notification pass a run sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Pass {
    /// The week's first pass (no pass in the journal yet).
    First(String),
    /// A pass that did not finish: resumed.
    Resume(String),
    /// The pass after the last finished one: opened only if a badge is left to tell (or with `--force`).
    Next(String),
}

/// The pass to send, from the journal's `(slot, status)` rows of the week's passes.
pub(crate) fn next_pass(week: IsoWeek, journal: &[(String, String)]) -> Pass {
    let week = week.to_string();
    let latest = journal
        .iter()
        .filter_map(|(slot, status)| pass_number(&week, slot).map(|number| (number, slot, status)))
        .max_by_key(|(number, ..)| *number);
    match latest {
        None => Pass::First(week),
        Some((_, slot, status)) if status != "done" => Pass::Resume(slot.clone()),
        Some((number, ..)) => Pass::Next(format!("{week}.{}", number + 1)),
    }
}

/// 1 for the week's own slot, N for `<week>.N`; `None` for anything else.
fn pass_number(week: &str, slot: &str) -> Option<u32> {
    if slot == week {
        return Some(1);
    }
    slot.strip_prefix(week)?.strip_prefix('.')?.parse().ok().filter(|&n| n >= 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(rows: &[(&str, &str)]) -> Vec<(String, String)> {
        rows.iter().map(|&(slot, status)| (slot.to_owned(), status.to_owned())).collect()
    }

    #[test]
    fn the_first_pass_is_named_after_the_week() {
        assert_eq!(next_pass("2026-W48".parse().unwrap(), &[]), Pass::First("2026-W48".into()));
    }

    #[test]
    fn an_unfinished_pass_is_resumed_before_a_new_one_opens() {
        let journal = rows(&[("2026-W48", "done"), ("2026-W48.2", "partial")]);
        assert_eq!(next_pass("2026-W48".parse().unwrap(), &journal), Pass::Resume("2026-W48.2".into()));
    }

    #[test]
    fn after_a_finished_pass_comes_the_next_number() {
        let journal = rows(&[
            ("2026-W48.10", "done"),
            ("2026-W48", "done"),
            ("2026-W48.9", "done"),
            ("2026-W48.x", "running"),
        ]);
        assert_eq!(next_pass("2026-W48".parse().unwrap(), &journal), Pass::Next("2026-W48.11".into()));
    }

    #[test]
    fn the_largest_notification_names_every_badge_in_code_order() {
        let now = DateTime::parse_from_rfc3339("2026-11-30T00:30:00+09:00").unwrap().with_timezone(&Utc);
        let message = largest_notification(&BadgeRules::builtin(), "2026-W48".parse().unwrap(), now);
        let Message::Badge { badges, body, .. } = message else { panic!("a badge message") };
        assert_eq!(badges, "athlete,cafe-lover,everyday,explorer,hard-worker,homebody,scholar,social");
        assert!(body.contains("운동 꾸준러, 카페 단골"), "{body}");
    }
}
