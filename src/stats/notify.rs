//! `stats weekly --notify`: the week's badge winners, read page by page in `user_id` order,
//! each with a notification of their own naming the badges they earned.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::badges::BadgeRules;
use crate::db::stats::WinnerRow;
use crate::db::{Database, DbError};
use crate::fcm::message::Message;
use crate::journal::Checkpoint;
use crate::slot::IsoWeek;

/// One winner to notify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Winner {
    /// The user.
    pub user_id: i64,
    /// `app_user.fcmToken` as stored (the token filter trims and checks it).
    pub token: String,
    /// Their notification.
    pub message: Arc<Message>,
}

/// The winners of one week, as a token source: keyset pages of `wolley_push_user_badge` joined
/// with `app_user`, so memory holds one page whatever the number of winners.
pub struct BadgeWinners {
    db: Database,
    week: IsoWeek,
    now: DateTime<Utc>,
    after: i64,
    done: bool,
    checkpoint: Option<Arc<Checkpoint>>,
}

impl BadgeWinners {
    /// The winners of `week`, notified at `now`.
    pub fn new(db: Database, week: IsoWeek, now: DateTime<Utc>) -> Self {
        BadgeWinners { db, week, now, after: i64::MIN, done: false, checkpoint: None }
    }

    /// Skips the winners at or below `user_id` (notified by an earlier attempt).
    pub fn resume_after(mut self, user_id: i64) -> Self {
        self.after = self.after.max(user_id);
        self
    }

    /// Reports each winner handed to the sender to the run journal's checkpoint.
    pub fn with_checkpoint(mut self, checkpoint: Option<Arc<Checkpoint>>) -> Self {
        self.checkpoint = checkpoint;
        self
    }

    /// The journal's checkpoint, when the run is journaled.
    pub fn checkpoint(&self) -> Option<&Checkpoint> {
        self.checkpoint.as_deref()
    }

    /// The database the winners come from (where dead tokens are pruned).
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// The next page of winners; empty after the last.
    ///
    /// # Errors
    /// As classified by the database layer.
    pub async fn next_page(&mut self) -> Result<Vec<Winner>, DbError> {
        if self.done {
            return Ok(Vec::new());
        }
        let rows = self.db.badge_winner_page(self.week, self.after).await?;
        self.done = (rows.len() as u64) < crate::db::stats::WINNERS_PER_PAGE;
        if let Some(last) = rows.last() {
            self.after = last.user_id;
        }
        Ok(rows.into_iter().map(|row| self.winner(row)).collect())
    }

    fn winner(&self, row: WinnerRow) -> Winner {
        let names: Vec<&str> = row.names.iter().map(String::as_str).collect();
        let message = Message::badge(self.week.to_string(), row.codes, &names, &self.now);
        Winner { user_id: row.user_id, token: row.token, message: Arc::new(message) }
    }
}

/// The largest notification `rules` can produce (a user earning every badge): the run checks
/// it against FCM's size limit before sending anything.
pub fn largest_notification(rules: &BadgeRules, week: IsoWeek, now: DateTime<Utc>) -> Message {
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
