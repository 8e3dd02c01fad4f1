//! `stats weekly --notify`: what the badge notifications look like at their largest. The
//! winners themselves are a token source (`tokens::winners`).

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_notification_names_every_badge_in_code_order() {
        let now = DateTime::parse_from_rfc3339("2026-11-30T00:30:00+09:00").unwrap().with_timezone(&Utc);
        let message = largest_notification(&BadgeRules::builtin(), "2026-W48".parse().unwrap(), now);
        let Message::Badge { badges, body, .. } = message else { panic!("a badge message") };
        assert_eq!(badges, "athlete,cafe-lover,everyday,explorer,hard-worker,homebody,scholar,social");
        assert!(body.contains("운동 꾸준러, 카페 단골"), "{body}");
    }
}
