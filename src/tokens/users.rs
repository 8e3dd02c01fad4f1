//! `app_user`'s devices, one shard of them, in keyset pages of `user_id`: a resumed slot's
//! retry set first, then the users above its checkpoint.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::owners::Owners;
use super::{mark, retry_candidates, Candidate, Page, RetrySet, Start};
use crate::db::tokens::{TokenRow, PAGE_SIZE};
use crate::db::{Database, DbError};
use crate::shard::Shard;
use crate::slot::RunKey;

/// Where the next page of `app_user` starts.
pub(crate) struct UserPages {
    db: Database,
    shard: Shard,
    start: Start,
    owners: OnceLock<Owners>,
    retry_set: Option<RetrySet>,
    after: i64,
    done: bool,
}

impl UserPages {
    pub(super) fn new(db: Database, shard: Shard, start: Start) -> Self {
        let retry_set = RetrySet::new(start.retry_set.clone());
        let after = start.after_user_id;
        UserPages { db, shard, start, owners: OnceLock::new(), retry_set, after, done: false }
    }

    pub(super) fn database(&self) -> &Database {
        &self.db
    }

    /// Where the shared-token groups go once read (`TokenSource::filter`).
    pub(super) fn owners(&self) -> &OnceLock<Owners> {
        &self.owners
    }

    /// The checkpoint, the shard and the retry set the pages start from.
    pub(super) fn start(&self) -> (i64, Shard, Option<&RunKey>) {
        (self.start.after_user_id, self.shard, self.start.retry_set.as_ref())
    }

    pub(super) async fn next_page(&mut self) -> Result<Option<Page>, DbError> {
        let Some(mut page) = self.read_page().await? else { return Ok(None) };
        mark(&self.owners, &self.db, &mut page).await?;
        Ok(Some(page))
    }

    async fn read_page(&mut self) -> Result<Option<Page>, DbError> {
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
            .map(|TokenRow { user_id, token }| Candidate::read(Some(user_id), Some(token), None))
            .collect();
        Ok(Some(Page { candidates, unusable_lines: 0 }))
    }
}
