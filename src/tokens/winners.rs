//! `stats weekly --notify`'s audience: the week's badge winners, in keyset pages of
//! `wolley_push_user_badge` joined with `app_user`, each with a notification naming the badges
//! they earned. A resumed slot's retry set first, then the winners above its checkpoint.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};

use super::owners::Owners;
use super::{mark, retry_candidates, Candidate, Page, ReadFrom, RetrySet};
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

/// The winners of one week, notified at one instant.
pub(crate) struct WinnerPages {
    db: Database,
    winners: Winners,
    owners: OnceLock<Owners>,
    retry_set: Option<RetrySet>,
    after: i64,
    done: bool,
}

impl WinnerPages {
    pub(super) fn new(db: Database, winners: Winners, start: ReadFrom) -> Self {
        let retry_set = RetrySet::new(start.retry_set);
        WinnerPages {
            db,
            winners,
            owners: OnceLock::new(),
            retry_set,
            after: start.after_user_id,
            done: false,
        }
    }

    pub(super) fn database(&self) -> &Database {
        &self.db
    }

    /// Where the shared-token groups go once read (`TokenSource::filter`).
    pub(super) fn owners(&self) -> &OnceLock<Owners> {
        &self.owners
    }

    pub(super) async fn next_page(&mut self) -> Result<Option<Page>, DbError> {
        let Some(mut page) = self.read_page().await? else { return Ok(None) };
        mark(&self.owners, &self.db, &mut page).await?;
        Ok(Some(page))
    }

    async fn read_page(&mut self) -> Result<Option<Page>, DbError> {
        if let Some(retry_set) = &mut self.retry_set {
            if let Some(ids) = retry_set.next_ids(&self.db).await? {
                let rows = self.db.badge_winners_among(self.winners.week, self.winners.again, &ids).await?;
                let found: HashMap<_, _> = rows
                    .into_iter()
                    .map(|row| {
                        let message = self.message(&row);
                        (row.user_id, (row.token, Some(message)))
                    })
                    .collect();
                return Ok(Some(retry_candidates(ids, found)));
            }
            self.retry_set = None;
        }
        if self.done {
            return Ok(None);
        }
        let rows = self.db.badge_winner_page(self.winners.week, self.winners.again, self.after).await?;
        self.done = (rows.len() as u64) < WINNERS_PER_PAGE;
        let Some(last) = rows.last() else { return Ok(None) };
        self.after = last.user_id;
        let candidates = rows
            .into_iter()
            .map(|row| {
                let message = self.message(&row);
                Candidate::read(Some(row.user_id), Some(row.token), Some(message))
            })
            .collect();
        Ok(Some(Page { candidates, unusable_lines: 0 }))
    }

    fn message(&self, row: &WinnerRow) -> Arc<Message> {
        let names: Vec<&str> = row.names.iter().map(String::as_str).collect();
        Arc::new(Message::badge(self.winners.week.to_string(), row.codes.clone(), &names, &self.winners.now))
    }
}
