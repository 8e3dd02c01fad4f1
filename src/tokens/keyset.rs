//! The skeleton every database source shares: a resumed slot's retry set first, then keyset
//! pages of `user_id` after the checkpoint, done when a page is short; each page marked for the
//! tokens a lower user holds ([`Owners`]) before the run sees it. A [`Keyset`] says what to read;
//! [`KeysetPages`] reads it one page at a time (and, if the keyset asks, the next page while the
//! run works on this one).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::task::JoinHandle;

use super::owners::Owners;
use super::{Candidate, Page, ReadFrom};
use crate::db::{Database, DbError};
use crate::fcm::message::Message;
use crate::slot::RunKey;

/// What a database source reads, page by page.
pub(crate) trait Keyset {
    /// Read the next keyset page in a task of its own while the run works on this one.
    const READ_AHEAD: bool;

    /// The candidates for the retry-set users `ids`, in their order.
    fn retry_page(&self, db: &Database, ids: Vec<i64>) -> impl Future<Output = Result<Page, DbError>> + Send;

    /// The keyset page after user `after`, not yet marked.
    fn page_after(&self, db: Database, after: i64) -> PageRead;
}

/// A keyset page being read: owned, so that it can be read ahead in a task of its own (one
/// allocation per page of thousands of rows).
pub(crate) type PageRead = Pin<Box<dyn Future<Output = Result<KeysetPage, DbError>> + Send>>;

/// One keyset page as read.
pub(crate) struct KeysetPage {
    pub page: Page,
    /// The last user on it (`None`: the page is empty).
    pub last_user_id: Option<i64>,
    /// Fewer rows than a full page: nothing comes after it.
    pub is_last: bool,
}

/// The pages of a [`Keyset`], from where the slot resumes. Holding the [`Owners`] it marks with,
/// it cannot hand out a page that was not marked.
pub(crate) struct KeysetPages<K> {
    db: Database,
    keyset: K,
    owners: Owners,
    retry_set: Option<RetrySet>,
    ahead: Option<ReadAhead>,
    after: i64,
    done: bool,
}

impl<K: Keyset> KeysetPages<K> {
    pub(super) fn new(db: Database, keyset: K, start: ReadFrom, owners: Owners) -> Self {
        let retry_set = RetrySet::new(start.retry_set);
        KeysetPages { db, keyset, owners, retry_set, ahead: None, after: start.after_user_id, done: false }
    }

    /// The next page, marked; `None` after the last.
    pub(super) async fn next_page(&mut self) -> Result<Option<Page>, DbError> {
        let page = match self.retry_page().await? {
            Some(page) => Some(page),
            None => self.keyset_page().await?,
        };
        let Some(mut page) = page else { return Ok(None) };
        // After the next read has started: looking up the lower users of shared tokens (another
        // connection) and reading the next page then keep two of the server's threads busy.
        self.owners.mark(&self.db, &mut page.candidates).await?;
        Ok(Some(page))
    }

    /// The next page of the retry set; `None` once it is read.
    async fn retry_page(&mut self) -> Result<Option<Page>, DbError> {
        let Some(retry_set) = &mut self.retry_set else { return Ok(None) };
        let Some(ids) = retry_set.next_ids(&self.db).await? else {
            self.retry_set = None;
            return Ok(None);
        };
        self.keyset.retry_page(&self.db, ids).await.map(Some)
    }

    /// The next keyset page; `None` after a short one.
    async fn keyset_page(&mut self) -> Result<Option<Page>, DbError> {
        let read = match self.ahead.take() {
            Some(ahead) => ahead.page().await,
            None if self.done => return Ok(None),
            None => self.keyset.page_after(self.db.clone(), self.after).await,
        }?;
        let Some(last_user_id) = read.last_user_id else {
            self.done = true;
            return Ok(None);
        };
        self.after = last_user_id;
        self.done = read.is_last;
        if K::READ_AHEAD && !self.done {
            self.ahead = Some(ReadAhead::start(self.keyset.page_after(self.db.clone(), self.after)).await);
        }
        Ok(Some(read.page))
    }
}

/// The next keyset page, being read in the background; dropping it stops the read (a run that
/// stops does not wait for rows it will not use).
struct ReadAhead(JoinHandle<Result<KeysetPage, DbError>>);

impl ReadAhead {
    /// Starts `read`. On the run's one thread the read starts only when the caller yields, so
    /// this yields once: the query is on its way before the caller goes back to work, and the
    /// database works on it meanwhile.
    async fn start(read: PageRead) -> Self {
        let ahead = ReadAhead(tokio::spawn(read));
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

/// Reads a slot's retry set page by page, in `user_id` order.
#[derive(Debug)]
struct RetrySet {
    key: RunKey,
    after: i64,
    done: bool,
}

impl RetrySet {
    fn new(key: Option<RunKey>) -> Option<Self> {
        key.map(|key| RetrySet { key, after: i64::MIN, done: false })
    }

    /// The next page of user ids; `None` once the set is read.
    async fn next_ids(&mut self, db: &Database) -> Result<Option<Vec<i64>>, DbError> {
        if self.done {
            return Ok(None);
        }
        let ids = db.retry_page(&self.key, self.after, crate::db::tokens::PAGE_SIZE).await?;
        self.done = ids.len() < crate::db::tokens::PAGE_SIZE;
        match ids.last() {
            Some(&last) => {
                self.after = last;
                Ok(Some(ids))
            }
            None => Ok(None),
        }
    }
}

/// Candidates for a page of retry-set `ids`, in their order: a user not `found` has no token
/// (or no message) any more.
pub(super) fn retry_candidates(
    ids: Vec<i64>,
    mut found: HashMap<i64, (String, Option<Arc<Message>>)>,
) -> Page {
    let candidates = ids
        .into_iter()
        .map(|user_id| {
            let (stored, message) = found.remove(&user_id).map_or((None, None), |(t, m)| (Some(t), m));
            Candidate { in_retry_set: true, ..Candidate::read(Some(user_id), stored, message) }
        })
        .collect();
    Page { candidates, unusable_lines: 0 }
}
