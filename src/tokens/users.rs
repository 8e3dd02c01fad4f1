//! `app_user`'s devices, one shard of them, in keyset pages of `user_id`: a resumed slot's
//! retry set first, then the users above its checkpoint.

use std::collections::HashMap;

use super::{retry_candidates, Candidate, Page, RetrySet, Start};
use crate::db::tokens::{TokenRow, PAGE_SIZE};
use crate::db::{Database, DbError};
use crate::shard::Shard;

/// Where the next page of `app_user` starts.
pub struct UserPages {
    db: Database,
    shard: Shard,
    retry_set: Option<RetrySet>,
    after: i64,
    done: bool,
}

impl UserPages {
    pub(super) fn new(db: Database, shard: Shard, start: Start) -> Self {
        let retry_set = RetrySet::new(start.retry_set);
        UserPages { db, shard, retry_set, after: start.after_user_id, done: false }
    }

    pub(super) fn database(&self) -> &Database {
        &self.db
    }

    pub(super) async fn next_page(&mut self) -> Result<Option<Page>, DbError> {
        if let Some(retry_set) = &mut self.retry_set {
            if let Some(ids) = retry_set.next_ids(&self.db).await? {
                let found: HashMap<_, _> = self
                    .db
                    .tokens_of(&ids)
                    .await?
                    .into_iter()
                    .filter_map(|(user_id, token)| Some((user_id, (token?, None))))
                    .collect();
                return Ok(Some(retry_candidates(ids, found)));
            }
            self.retry_set = None;
        }
        if self.done {
            return Ok(None);
        }
        let rows = self.db.token_page(self.after, self.shard).await?;
        self.done = rows.len() < PAGE_SIZE;
        let Some(last) = rows.last() else { return Ok(None) };
        self.after = last.user_id;
        let candidates = rows
            .into_iter()
            .map(|TokenRow { user_id, token }| Candidate {
                user_id: Some(user_id),
                stored: Some(token),
                message: None,
                in_retry_set: false,
            })
            .collect();
        Ok(Some(Page { candidates, unusable_lines: 0 }))
    }
}
