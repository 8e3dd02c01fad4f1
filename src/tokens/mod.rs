//! Where device tokens come from and which of them are worth sending. A [`TokenSource`] yields
//! pages of candidates in `user_id` order: the backend's `app_user` ([`users`]), the week's
//! badge winners ([`winners`]), a tokens file ([`file`]) or one token. A resumed slot's sources
//! first yield its retry set, then the users above its checkpoint. The [`TokenFilter`] decides
//! which candidates are sent: trimmed, checked, and each token once.

mod file;
mod users;
mod winners;

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::db::{Database, DbError};
use crate::fcm::message::Message;
use crate::shard::Shard;
use crate::slot::{IsoWeek, RunKey};

pub use file::TokenFileError;

/// Tokens this long or longer cannot be FCM registration tokens.
pub const MAX_TOKEN_BYTES: usize = 4096;
pub use crate::db::PLACEHOLDER_TOKEN;

/// One device to send to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The backend user, when known (needed to prune a dead token).
    pub user_id: Option<i64>,
    /// The token as sent: trimmed.
    pub token: String,
    /// The token exactly as stored, when it differs from `token` (pruning compares this).
    pub stored: Option<String>,
    /// A message of this target's own, instead of the run's (e.g. which badges a user won).
    pub message: Option<Arc<Message>>,
}

impl Target {
    /// The token exactly as the database holds it.
    pub fn stored_token(&self) -> &str {
        self.stored.as_deref().unwrap_or(&self.token)
    }

    /// The first 8 characters, the most a log or summary may show of a token.
    pub fn short(&self) -> &str {
        short_token(&self.token)
    }
}

/// The first 8 characters of a token (device tokens are secrets in logs).
pub fn short_token(token: &str) -> &str {
    let end = token.char_indices().nth(8).map_or(token.len(), |(i, _)| i);
    &token[..end]
}

/// Counts kept while reading tokens.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct TokenCounts {
    /// Distinct valid tokens handed to the sender.
    pub targeted: u64,
    /// Tokens that cannot be valid (control characters, spaces, too long, not ASCII).
    pub invalid: u64,
    /// Tokens already seen in this run.
    pub duplicate: u64,
    /// Lines of a tokens file that are not a token (e.g. a user id that is not a number).
    pub unusable_lines: u64,
    /// Users of the retry set who have no token any more.
    pub gone: u64,
}

impl TokenCounts {
    /// Everything not sent on purpose.
    pub fn skipped(&self) -> u64 {
        self.invalid + self.duplicate + self.unusable_lines + self.gone
    }
}

/// Decides which tokens are sent: trimmed, checked, and each token once.
#[derive(Default)]
pub struct TokenFilter {
    dedup: Dedup,
    counts: TokenCounts,
}

/// How a token seen twice is recognised.
enum Dedup {
    /// Remember a 64-bit fingerprint of every token (files and single tokens: no database to
    /// ask). Grows by 8 bytes per token.
    Seen { seen: HashSet<u64>, hasher: BuildHasherDefault<DefaultHasher> },
    /// The database named each token held by several users and its owner, the lowest such
    /// user id: only the owner's row is sent. Memory follows the duplicated tokens, not the
    /// users, and the rule holds across shards and resumed runs.
    Owners(HashMap<String, i64>),
}

impl Default for Dedup {
    fn default() -> Self {
        Dedup::Seen { seen: HashSet::new(), hasher: BuildHasherDefault::default() }
    }
}

impl Dedup {
    fn is_duplicate(&mut self, user_id: Option<i64>, token: &str) -> bool {
        match self {
            Dedup::Seen { seen, hasher } => !seen.insert(hasher.hash_one(token)),
            Dedup::Owners(owners) => owners.get(token).is_some_and(|&owner| Some(owner) != user_id),
        }
    }
}

/// Why a token is not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Empty or the app's placeholder: the user has no token.
    NoToken,
    /// Cannot be a registration token.
    Invalid,
    /// Sent already in this run.
    Duplicate,
}

impl TokenFilter {
    /// A filter that sends a duplicated token only to its owner (see `Database::duplicate_tokens`).
    pub fn with_owners(owners: HashMap<String, i64>) -> Self {
        TokenFilter { dedup: Dedup::Owners(owners), counts: TokenCounts::default() }
    }

    /// The target for `stored`, or why it is not sent.
    pub fn admit(&mut self, user_id: Option<i64>, stored: &str) -> Result<Target, Rejection> {
        let token = stored.trim();
        if token.is_empty() || token == PLACEHOLDER_TOKEN {
            return Err(Rejection::NoToken);
        }
        if !could_be_valid(token) {
            self.counts.invalid += 1;
            return Err(Rejection::Invalid);
        }
        if self.dedup.is_duplicate(user_id, token) {
            self.counts.duplicate += 1;
            return Err(Rejection::Duplicate);
        }
        self.counts.targeted += 1;
        let stored = (token.len() != stored.len()).then(|| stored.to_owned());
        Ok(Target { user_id, token: token.to_owned(), stored, message: None })
    }

    /// Counts what a page could not even offer: unusable lines, users gone from the retry set.
    pub(crate) fn count_unread(&mut self, unusable_lines: u64, gone: u64) {
        self.counts.unusable_lines += unusable_lines;
        self.counts.gone += gone;
    }

    /// What was admitted and rejected so far.
    pub fn counts(&self) -> TokenCounts {
        self.counts
    }
}

fn could_be_valid(token: &str) -> bool {
    token.len() < MAX_TOKEN_BYTES && token.bytes().all(|b| b.is_ascii_graphic())
}

/// One row a source read: a user (when known) and their token now (`None`: no token any more).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Candidate {
    /// The backend user, when known.
    pub user_id: Option<i64>,
    /// The token exactly as stored; `None` when the user has none now.
    pub stored: Option<String>,
    /// A message of this user's own.
    pub message: Option<Arc<Message>>,
    /// The user comes from the slot's retry set.
    pub in_retry_set: bool,
}

/// What a source read in one go.
#[derive(Debug, Default)]
pub(crate) struct Page {
    /// The rows, in `user_id` order (retry set first, when resuming).
    pub candidates: Vec<Candidate>,
    /// Lines of a tokens file that could not be read as a token.
    pub unusable_lines: u64,
}

/// Where a run's tokens come from.
pub enum TokenSource {
    /// `app_user`, one shard of it.
    Users(users::UserPages),
    /// A tokens file, or stdin for `-`.
    File(file::FilePages),
    /// One token given on the command line (taken once).
    Single(Option<String>),
    /// The week's badge winners, each with a notification of their own.
    Winners(winners::WinnerPages),
}

/// Why reading tokens stopped early.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The file failed.
    #[error(transparent)]
    File(#[from] TokenFileError),
}

/// Where a resumed slot starts, for the sources that read the database.
#[derive(Debug, Clone)]
pub(crate) struct Start {
    /// The slot whose retry set is read first (`None`: no retry set).
    pub retry_set: Option<RunKey>,
    /// Users at or below this id are not read (after the retry set).
    pub after_user_id: i64,
}

impl Start {
    /// From the beginning, without a retry set.
    pub fn beginning() -> Self {
        Start { retry_set: None, after_user_id: 0 }
    }
}

impl TokenSource {
    /// `app_user`'s users of `shard`, from `start`.
    pub(crate) fn users(db: Database, shard: Shard, start: Start) -> Self {
        TokenSource::Users(users::UserPages::new(db, shard, start))
    }

    /// The badge winners of `week`, notified at `now`, from `start`.
    pub(crate) fn winners(db: Database, week: IsoWeek, now: DateTime<Utc>, start: Start) -> Self {
        TokenSource::Winners(winners::WinnerPages::new(db, week, now, start))
    }

    /// The lines of `path` (`-` = stdin).
    pub(crate) fn file(path: PathBuf) -> Self {
        TokenSource::File(file::FilePages::new(path))
    }

    /// One token.
    pub(crate) fn single(token: String) -> Self {
        TokenSource::Single(Some(token))
    }

    /// The database the tokens come from, if any.
    pub(crate) fn database(&self) -> Option<&Database> {
        match self {
            TokenSource::Users(pages) => Some(pages.database()),
            TokenSource::Winners(pages) => Some(pages.database()),
            TokenSource::File(_) | TokenSource::Single(_) => None,
        }
    }

    /// The filter for this source: from the database, tokens held by several users go to
    /// their owner only (see `Database::duplicate_tokens`).
    ///
    /// # Errors
    /// When the database fails.
    pub(crate) async fn filter(&self) -> Result<TokenFilter, SourceError> {
        let Some(db) = self.database() else { return Ok(TokenFilter::default()) };
        let started = std::time::Instant::now();
        let owners = db.duplicate_tokens().await?;
        let secs = started.elapsed().as_secs_f64();
        tracing::debug!(shared_tokens = owners.len(), secs, "found the tokens held by several users");
        Ok(TokenFilter::with_owners(owners))
    }

    /// The next page, or `None` after the last.
    ///
    /// # Errors
    /// When the database or the file fails.
    pub(crate) async fn next_page(&mut self) -> Result<Option<Page>, SourceError> {
        Ok(match self {
            TokenSource::Users(pages) => pages.next_page().await?,
            TokenSource::Winners(pages) => pages.next_page().await?,
            TokenSource::File(pages) => pages.next_page().await?,
            TokenSource::Single(token) => token.take().map(|token| Page {
                candidates: vec![Candidate {
                    user_id: None,
                    stored: Some(token),
                    message: None,
                    in_retry_set: false,
                }],
                unusable_lines: 0,
            }),
        })
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
fn retry_candidates(ids: Vec<i64>, mut found: HashMap<i64, (String, Option<Arc<Message>>)>) -> Page {
    let candidates = ids
        .into_iter()
        .map(|user_id| {
            let (stored, message) = found.remove(&user_id).map_or((None, None), |(t, m)| (Some(t), m));
            Candidate { user_id: Some(user_id), stored, message, in_retry_set: true }
        })
        .collect();
    Page { candidates, unusable_lines: 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "fcm:APA91bHun4MxP5egoKMwt2KZFBaFUH";

    #[test]
    fn whitespace_around_a_token_is_trimmed_but_the_stored_form_is_kept() {
        let target = TokenFilter::default().admit(Some(1), &format!("  {TOKEN}\n")).unwrap();
        assert_eq!(target.token, TOKEN);
        assert_eq!(target.stored_token(), format!("  {TOKEN}\n"));
    }

    #[test]
    fn a_token_seen_twice_is_admitted_once() {
        let mut filter = TokenFilter::default();
        assert!(filter.admit(Some(1), TOKEN).is_ok());
        assert_eq!(filter.admit(Some(2), TOKEN), Err(Rejection::Duplicate));
        assert_eq!(filter.counts().duplicate, 1);
    }

    #[test]
    fn placeholder_and_empty_tokens_mean_no_token() {
        let mut filter = TokenFilter::default();
        assert_eq!(filter.admit(None, " abc "), Err(Rejection::NoToken));
        assert_eq!(filter.admit(None, ""), Err(Rejection::NoToken));
        assert_eq!(filter.counts().skipped(), 0);
    }

    #[test]
    fn tokens_with_inner_spaces_control_characters_or_excess_length_are_invalid() {
        let mut filter = TokenFilter::default();
        for junk in ["two words", "tab\there", "nul\0x", "토큰", &"x".repeat(MAX_TOKEN_BYTES)] {
            assert_eq!(filter.admit(None, junk), Err(Rejection::Invalid), "{junk:?}");
        }
        assert_eq!(filter.counts().invalid, 5);
    }

    #[test]
    fn short_shows_at_most_eight_characters() {
        assert_eq!(short_token(TOKEN), "fcm:APA9");
        assert_eq!(short_token("abc"), "abc");
    }
}
