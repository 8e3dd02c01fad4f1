//! `app_user`'s devices, one shard of them, in keyset pages of `user_id`: a resumed slot's
//! retry set first, then the users above its checkpoint. For `path-daily --remind`, only the
//! users among its audience ([`NotArrived`]), decided by the database page by page. The next keyset page is read while
//! the run marks and works on the current one, so the database and the run take turns less
//! (BENCHMARKS.md).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use tokio::task::JoinHandle;

use super::owners::Owners;
use super::{mark, retry_candidates, Candidate, Page, Reach, ReadFrom, RetrySet};
use crate::db::tokens::{NotArrived, TokenRow, PAGE_SIZE};
use crate::db::{Database, DbError};
use crate::shard::Shard;

/// Where the next page of `app_user` starts.
pub(crate) struct UserPages {
    db: Database,
    shard: Shard,
    start: ReadFrom,
    /// Only the reminder's audience; `None`: everyone with a token.
    among: Option<Arc<NotArrived>>,
    owners: OnceLock<Owners>,
    retry_set: Option<RetrySet>,
    ahead: Option<ReadAhead>,
    after: i64,
    done: bool,
}

/// One keyset page as read.
struct KeysetPage {
    page: Page,
    /// The last user on it (`None`: the page is empty).
    last_user_id: Option<i64>,
    /// Fewer rows than a full page: nothing comes after it.
    is_last: bool,
}

/// The next keyset page, being read in the background; dropping it stops the read (a run that
/// stops does not wait for rows it will not use).
struct ReadAhead(JoinHandle<Result<KeysetPage, DbError>>);

impl ReadAhead {
    /// Starts reading the page after `after`. On the run's one thread the read starts only
    /// when the caller yields, so this yields once: the query is on its way before the caller
    /// goes back to work, and the database works on it meanwhile.
    async fn start(db: Database, after: i64, shard: Shard, among: Option<Arc<NotArrived>>) -> Self {
        let ahead = ReadAhead(tokio::spawn(keyset_page(db, after, shard, among)));
        tokio::task::yield_now().await;
        ahead
    }

    async fn page(mut self) -> Result<KeysetPage, DbError> {
        // Only `drop` aborts the task, so an error here is a panic of the read: raise it again.
        (&mut self.0).await.unwrap_or_else(|panic| std::panic::resume_unwind(panic.into_panic()))
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl UserPages {
    pub(super) fn new(db: Database, shard: Shard, start: ReadFrom, among: Option<NotArrived>) -> Self {
        let retry_set = RetrySet::new(start.retry_set.clone());
        let after = start.after_user_id;
        let among = among.map(Arc::new);
        UserPages {
            db,
            shard,
            start,
            among,
            owners: OnceLock::new(),
            retry_set,
            ahead: None,
            after,
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

    /// The checkpoint, the shard and the retry set the pages start from, and the reminder's
    /// audience they are limited to, if any.
    pub(super) fn reach(&self) -> Reach<'_> {
        Reach {
            after: self.start.after_user_id,
            shard: self.shard,
            retry_set: self.start.retry_set.as_ref(),
            among: self.among.as_deref(),
        }
    }

    pub(super) async fn next_page(&mut self) -> Result<Option<Page>, DbError> {
        if let Some(page) = self.retry_page().await? {
            return Ok(Some(page));
        }
        let read = match self.ahead.take() {
            Some(ahead) => ahead.page().await,
            None if self.done => return Ok(None),
            None => keyset_page(self.db.clone(), self.after, self.shard, self.among.clone()).await,
        }?;
        let Some(last_user_id) = read.last_user_id else {
            self.done = true;
            return Ok(None);
        };
        self.after = last_user_id;
        self.done = read.is_last;
        if !self.done {
            let among = self.among.clone();
            self.ahead = Some(ReadAhead::start(self.db.clone(), self.after, self.shard, among).await);
        }
        // After the next read has started: looking up the lower users of shared tokens (another
        // connection) and reading the next page then keep two of the server's threads busy.
        let mut page = read.page;
        mark(&self.owners, &self.db, &mut page).await?;
        Ok(Some(page))
    }

    /// The next page of the retry set, marked; `None` once it is read.
    async fn retry_page(&mut self) -> Result<Option<Page>, DbError> {
        let Some(retry_set) = &mut self.retry_set else { return Ok(None) };
        let Some(ids) = retry_set.next_ids(&self.db).await? else {
            self.retry_set = None;
            return Ok(None);
        };
        let tokens = match self.among.as_deref() {
            // A reminder's retry set is asked again: a user who uploaded meanwhile is done.
            Some(among) => self.db.not_arrived_among(&ids, among).await?,
            None => self.db.tokens_of(&ids).await?,
        };
        let found: HashMap<_, _> =
            tokens.into_iter().filter_map(|(user_id, token)| Some((user_id, (token?, None)))).collect();
        let mut page = retry_candidates(ids, found);
        mark(&self.owners, &self.db, &mut page).await?;
        Ok(Some(page))
    }
}

/// The users of `shard` after `after` (`among` the reminder's audience, if given), one page,
/// not yet marked.
async fn keyset_page(
    db: Database,
    after: i64,
    shard: Shard,
    among: Option<Arc<NotArrived>>,
) -> Result<KeysetPage, DbError> {
    let rows = db.token_page(after, shard, among.as_deref()).await?;
    let is_last = rows.len() < PAGE_SIZE;
    let last_user_id = rows.last().map(|row| row.user_id);
    let candidates = rows
        .into_iter()
        .map(|TokenRow { user_id, token }| Candidate::read(Some(user_id), Some(token), None))
        .collect();
    let page = Page { candidates, unusable_lines: 0 };
    Ok(KeysetPage { page, last_user_id, is_last })
}
