//! Where device tokens come from (the backend's `app_user` table or a tokens file) and which
//! of them are worth sending: trimmed, checked, and each token sent once per run.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio_util::sync::CancellationToken;

use crate::db::tokens::{Shard, TokenRow};
use crate::db::{Database, DbError};
use crate::fcm::message::Message;
use crate::journal::Checkpoint;
use crate::stats::notify::{BadgeWinners, Winner};

/// Tokens this long or longer cannot be FCM registration tokens.
pub const MAX_TOKEN_BYTES: usize = 4096;
/// What the app stores until it has a real token (Django's default).
pub const PLACEHOLDER_TOKEN: &str = "abc";

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

/// A tokens file that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    /// Open or read failed.
    #[error("cannot read the tokens file {}: {source}; give --tokens-file a readable file of `token` or `user_id<TAB>token` lines, or - for stdin", path.display())]
    Unreadable {
        /// The file's path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
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
}

impl TokenCounts {
    /// Everything not sent on purpose.
    pub fn skipped(&self) -> u64 {
        self.invalid + self.duplicate
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

    /// What was admitted and rejected so far.
    pub fn counts(&self) -> TokenCounts {
        self.counts
    }
}

fn could_be_valid(token: &str) -> bool {
    token.len() < MAX_TOKEN_BYTES && token.bytes().all(|b| b.is_ascii_graphic())
}

/// Where a run's tokens come from.
pub enum TokenSource {
    /// `app_user`, after a user id (exclusive), for one shard.
    Database {
        /// The backend database.
        db: Database,
        /// Users at or below this id are not read.
        after_user_id: i64,
        /// Which users.
        shard: Shard,
        /// Told of every user handed to the sender, when the run is journaled.
        checkpoint: Option<Arc<Checkpoint>>,
    },
    /// A tokens file, or stdin for `-`.
    File(PathBuf),
    /// One token given on the command line.
    Single(String),
    /// The week's badge winners, each target with a notification of its own.
    BadgeWinners(BadgeWinners),
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

impl TokenSource {
    /// Reads every token, sending admitted targets to `out` in order until the source ends,
    /// `stop` fires or the receiver is gone. Returns the counts.
    ///
    /// # Errors
    /// When the database or the file fails.
    pub async fn feed(
        self,
        out: async_channel::Sender<Target>,
        stop: CancellationToken,
    ) -> Result<TokenCounts, SourceError> {
        let mut filter = match &self {
            TokenSource::Database { db, .. } => {
                let started = std::time::Instant::now();
                let owners = db.duplicate_tokens().await?;
                let secs = started.elapsed().as_secs_f64();
                tracing::debug!(shared_tokens = owners.len(), secs, "found the tokens held by several users");
                TokenFilter::with_owners(owners)
            }
            _ => TokenFilter::default(),
        };
        match self {
            TokenSource::Database { db, after_user_id, shard, checkpoint } => {
                let pages = Pages { db: &db, after: after_user_id, shard };
                feed_from_database(pages, checkpoint.as_deref(), &mut filter, &out, &stop).await?
            }
            TokenSource::File(path) => feed_from_file(&path, &mut filter, &out, &stop).await?,
            TokenSource::Single(token) => {
                if let Ok(target) = filter.admit(None, &token) {
                    forward(&out, target, &stop).await;
                }
            }
            TokenSource::BadgeWinners(winners) => {
                feed_badge_winners(winners, &mut filter, &out, &stop).await?
            }
        }
        Ok(filter.counts())
    }
}

/// Where the next page of `app_user` starts.
struct Pages<'a> {
    db: &'a Database,
    after: i64,
    shard: Shard,
}

async fn feed_from_database(
    mut pages: Pages<'_>,
    checkpoint: Option<&Checkpoint>,
    filter: &mut TokenFilter,
    out: &async_channel::Sender<Target>,
    stop: &CancellationToken,
) -> Result<(), DbError> {
    loop {
        let page = pages.db.token_page(pages.after, pages.shard).await?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        pages.after = last.user_id;
        let full = page.len() == crate::db::tokens::PAGE_SIZE;
        for TokenRow { user_id, token } in page {
            if let Ok(target) = filter.admit(Some(user_id), &token) {
                // Pending before it is queued, so the checkpoint never passes a queued user.
                if let Some(checkpoint) = checkpoint {
                    checkpoint.dispatched(user_id);
                }
                if !forward(out, target, stop).await {
                    return Ok(());
                }
            }
        }
        if !full {
            return Ok(());
        }
    }
}

async fn feed_badge_winners(
    mut winners: BadgeWinners,
    filter: &mut TokenFilter,
    out: &async_channel::Sender<Target>,
    stop: &CancellationToken,
) -> Result<(), DbError> {
    loop {
        let page = winners.next_page().await?;
        if page.is_empty() {
            return Ok(());
        }
        for Winner { user_id, token, message } in page {
            if let Ok(mut target) = filter.admit(Some(user_id), &token) {
                target.message = Some(message);
                if let Some(checkpoint) = winners.checkpoint() {
                    checkpoint.dispatched(user_id);
                }
                if !forward(out, target, stop).await {
                    return Ok(());
                }
            }
        }
    }
}

async fn feed_from_file(
    path: &Path,
    filter: &mut TokenFilter,
    out: &async_channel::Sender<Target>,
    stop: &CancellationToken,
) -> Result<(), TokenFileError> {
    let unreadable = |source| TokenFileError::Unreadable { path: path.to_owned(), source };
    let reader: Box<dyn AsyncRead + Unpin + Send> = if path.as_os_str() == "-" {
        Box::new(tokio::io::stdin())
    } else {
        Box::new(tokio::fs::File::open(path).await.map_err(unreadable)?)
    };
    let mut lines = BufReader::new(reader).lines();
    let mut number = 0u64;
    while let Some(line) = lines.next_line().await.map_err(unreadable)? {
        number += 1;
        let Some((user_id, token)) = parse_line(&line) else {
            continue;
        };
        let Ok(user_id) = user_id.map(str::parse::<i64>).transpose() else {
            tracing::warn!(line = number, file = %path.display(), "skipping a line whose user id is not a number");
            continue;
        };
        if let Ok(target) = filter.admit(user_id, token) {
            if !forward(out, target, stop).await {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// `token` or `user_id<TAB>token`; blank lines and `#` comments are skipped.
fn parse_line(line: &str) -> Option<(Option<&str>, &str)> {
    let trimmed = line.trim();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return None;
    }
    Some(match line.split_once('\t') {
        Some((user_id, token)) => (Some(user_id.trim()), token),
        None => (None, line),
    })
}

async fn forward(out: &async_channel::Sender<Target>, target: Target, stop: &CancellationToken) -> bool {
    tokio::select! {
        sent = out.send(target) => sent.is_ok(),
        () = stop.cancelled() => false,
    }
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

    #[test]
    fn file_lines_may_carry_a_user_id() {
        assert_eq!(parse_line("42\tTOKEN"), Some((Some("42"), "TOKEN")));
        assert_eq!(parse_line("TOKEN"), Some((None, "TOKEN")));
        assert_eq!(parse_line("# comment"), None);
        assert_eq!(parse_line("   "), None);
    }
}
