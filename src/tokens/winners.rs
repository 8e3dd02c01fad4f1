//! `stats weekly --notify`'s audience: the week's badge winners, in keyset pages of
//! `wolley_push_user_badge` joined with `app_user`, each with a notification naming the badges
//! they earned. A resumed slot's retry set first, then the winners above its checkpoint.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::keyset::{retry_candidates, Keyset, KeysetPage, PageRead};
use super::{Candidate, Page};
use crate::db::stats::{WinnerRow, WINNERS_PER_PAGE};
use crate::db::{Database, DbError};
use crate::fcm::message::Message;
use crate::slot::IsoWeek;

/// Which winners a notification run tells.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Winners {
    /// The week whose badges are announced.
    pub week: IsoWeek,
    /// When the notifications are sent (their expiry counts from it).
    pub now: DateTime<Utc>,
    /// Every badge, told before or not; otherwise only the badges not told yet.
    pub again: bool,
}

impl Keyset for Winners {
    const READ_AHEAD: bool = false;

    async fn retry_page(&self, db: &Database, ids: Vec<i64>) -> Result<Page, DbError> {
        let rows = db.badge_winners_among(self.week, self.again, &ids).await?;
        let found: HashMap<_, _> = rows
            .into_iter()
            .map(|row| {
                let message = self.message(&row);
                (row.user_id, (row.token, Some(message)))
            })
            .collect();
        Ok(retry_candidates(ids, found))
    }

    fn page_after(&self, db: Database, after: i64) -> PageRead {
        let winners = *self;
        Box::pin(async move {
            let rows = db.badge_winner_page(winners.week, winners.again, after).await?;
            let is_last = (rows.len() as u64) < WINNERS_PER_PAGE;
            let last_user_id = rows.last().map(|row| row.user_id);
            let candidates = rows
                .into_iter()
                .map(|row| {
                    let message = winners.message(&row);
                    Candidate::read(Some(row.user_id), Some(row.token), Some(message))
                })
                .collect();
            Ok(KeysetPage { page: Page { candidates, unusable_lines: 0 }, last_user_id, is_last })
        })
    }
}

impl Winners {
    /// The notification of the badges `row` names.
    fn message(&self, row: &WinnerRow) -> Arc<Message> {
        let names: Vec<&str> = row.names.iter().map(String::as_str).collect();
        Arc::new(Message::badge(self.week.to_string(), row.codes.clone(), &names, &self.now))
    }
}
