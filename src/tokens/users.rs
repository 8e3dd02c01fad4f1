//! `app_user`'s devices, one shard of them, in keyset pages of `user_id`: a resumed slot's
//! retry set first, then the users above its checkpoint. For `path-daily --remind`, only the
//! users among its audience ([`NotArrived`]), decided by the database page by page. The next keyset page is read while
//! the run marks and works on the current one, so the database and the run take turns less
//! (BENCHMARKS.md).

use std::collections::HashMap;
use std::sync::Arc;

use super::keyset::{retry_candidates, Keyset, KeysetPage, PageRead};
use super::{Candidate, Page, Reach, ReadFrom};
use crate::db::tokens::{NotArrived, TokenRow, PAGE_SIZE, SEND_PAGE_SIZE};
use crate::db::{Database, DbError};
use crate::shard::Shard;

/// Which users of `app_user` a run reads.
pub(crate) struct Users {
    shard: Shard,
    /// Only the reminder's audience; `None`: everyone with a token.
    among: Option<Arc<NotArrived>>,
    /// Rows a page: [`PAGE_SIZE`], or [`SEND_PAGE_SIZE`] for a run that sends.
    page_rows: usize,
}

impl Users {
    pub(super) fn new(shard: Shard, among: Option<NotArrived>) -> Self {
        Users { shard, among: among.map(Arc::new), page_rows: PAGE_SIZE }
    }

    /// Pages sized for a run that sends rather than prints.
    pub(super) fn paged_for_sending(self) -> Self {
        Users { page_rows: SEND_PAGE_SIZE, ..self }
    }

    /// The users the pages reach from `start`: its checkpoint and retry set, this shard, and
    /// the reminder's audience, if any.
    pub(super) fn reach<'a>(&'a self, start: &'a ReadFrom) -> Reach<'a> {
        Reach {
            after: start.after_user_id,
            shard: self.shard,
            retry_set: start.retry_set.as_ref(),
            among: self.among.as_deref(),
        }
    }
}

impl Keyset for Users {
    const READ_AHEAD: bool = true;

    async fn retry_page(&self, db: &Database, ids: Vec<i64>) -> Result<Page, DbError> {
        let tokens = match self.among.as_deref() {
            // A reminder's retry set is asked again: a user who uploaded meanwhile is done.
            Some(among) => db.not_arrived_among(&ids, among).await?,
            None => db.tokens_of(&ids).await?,
        };
        let found: HashMap<_, _> =
            tokens.into_iter().filter_map(|(user_id, token)| Some((user_id, (token?, None)))).collect();
        Ok(retry_candidates(ids, found))
    }

    fn page_after(&self, db: Database, after: i64) -> PageRead {
        Box::pin(keyset_page(db, after, self.shard, self.among.clone(), self.page_rows))
    }
}

/// The users of `shard` after `after` (`among` the reminder's audience, if given), one page,
/// not yet marked.
async fn keyset_page(
    db: Database,
    after: i64,
    shard: Shard,
    among: Option<Arc<NotArrived>>,
    page_rows: usize,
) -> Result<KeysetPage, DbError> {
    let rows = db.token_page(after, shard, among.as_deref(), page_rows).await?;
    let is_last = rows.len() < page_rows;
    let last_user_id = rows.last().map(|row| row.user_id);
    let candidates = rows
        .into_iter()
        .map(|TokenRow { user_id, token }| Candidate::read(Some(user_id), Some(token), None))
        .collect();
    let page = Page { candidates, unusable_lines: 0 };
    Ok(KeysetPage { page, last_user_id, is_last })
}
