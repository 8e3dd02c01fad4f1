//! Where device tokens come from and which of them are worth sending. A [`TokenSource`] yields
//! pages of candidates in `user_id` order: the backend's `app_user` ([`users`]), the week's
//! badge winners ([`winners`]), a tokens file ([`mod@file`]) or one token. A resumed slot's sources
//! first yield its retry set, then the users above its checkpoint. The [`TokenFilter`] decides
//! which candidates are sent: trimmed, checked, and each token once ([`owners`] decides which
//! of the users sharing a token in the database gets it).

mod file;
mod keyset;
mod owners;
mod users;
mod winners;

pub(crate) use winners::Winners;

use std::collections::HashSet;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher, Hasher};
use std::path::PathBuf;
use std::sync::Arc;

use crate::counts::TargetCounts;
use crate::db::tokens::NotArrived;
use crate::db::{Database, DbError};
use crate::fcm::message::Message;
use crate::fcm::target::{TargetKind, Targets};
use crate::shard::Shard;
use crate::slot::RunKey;

use keyset::KeysetPages;
use owners::Owners;

pub(crate) use file::TokenFileError;

/// Tokens this long or longer cannot be FCM registration tokens.
pub(crate) const MAX_TOKEN_BYTES: usize = 4096;
pub(crate) use crate::db::PLACEHOLDER_TOKEN;

/// One device to send to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// The backend user, when known (needed to prune a dead token).
    pub user_id: Option<i64>,
    /// The token or installation ID as sent: trimmed.
    pub token: String,
    /// Which of the two it is: the field it is sent in.
    pub kind: TargetKind,
    /// The token exactly as stored, when it differs from `token` (pruning compares this).
    pub stored: Option<String>,
    /// A message of this target's own, instead of the run's (e.g. which badges a user won).
    pub message: Option<Arc<Message>>,
}

impl Target {
    /// The token exactly as the database holds it.
    pub(crate) fn stored_token(&self) -> &str {
        self.stored.as_deref().unwrap_or(&self.token)
    }

    /// The first 8 characters, the most a log or summary may show of a token.
    pub(crate) fn short(&self) -> &str {
        short_token(&self.token)
    }
}

/// The first 8 characters of a token (device tokens are secrets in logs).
pub(crate) fn short_token(token: &str) -> &str {
    let end = token.char_indices().nth(8).map_or(token.len(), |(i, _)| i);
    &token[..end]
}

/// Counts kept while reading tokens.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub(crate) struct TokenCounts {
    /// Distinct valid tokens handed to the sender.
    pub targeted: u64,
    /// Of `targeted`, those sent as Firebase installation IDs.
    pub fids: u64,
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
    /// `targeted` by how the device is addressed.
    pub(crate) fn targets(&self) -> TargetCounts {
        TargetCounts { token: self.targeted - self.fids, fid: self.fids }
    }

    /// Everything not sent on purpose.
    pub(crate) fn skipped(&self) -> u64 {
        self.invalid + self.duplicate + self.unusable_lines + self.gone
    }
}

/// Decides which tokens are sent, and as what: trimmed, checked, each token once, read as a
/// registration token or an installation ID.
#[derive(Default)]
pub(crate) struct TokenFilter {
    dedup: Dedup,
    targets: Targets,
    counts: TokenCounts,
}

/// How a token seen twice is recognised.
enum Dedup {
    /// Remember a 64-bit fingerprint of every token (files and single tokens: no database to
    /// ask). Grows by 8 bytes per token.
    Seen { seen: HashSet<u64, BuildHasherDefault<AsHashed>>, hasher: BuildHasherDefault<DefaultHasher> },
    /// The source marked each user whose token a lower user holds (see [`owners`]): only the
    /// owner's row is sent, and the rule holds across shards and resumed runs.
    Database,
}

impl Default for Dedup {
    fn default() -> Self {
        Dedup::Seen { seen: HashSet::default(), hasher: BuildHasherDefault::default() }
    }
}

/// The set of fingerprints hashes each one as itself: a fingerprint is a hash already, and
/// hashing it again (and again for every one at each growth of the set) was 1% of a send's
/// instructions from a tokens file (BENCHMARKS.md, issue 21).
#[derive(Default)]
struct AsHashed(u64);

impl Hasher for AsHashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64`s are hashed here; anything else still gets a usable hash.
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, fingerprint: u64) {
        self.0 = fingerprint;
    }
}

impl Dedup {
    fn is_duplicate(&mut self, held_by_lower: bool, token: &str) -> bool {
        match self {
            Dedup::Seen { seen, hasher } => !seen.insert(hasher.hash_one(token)),
            Dedup::Database => held_by_lower,
        }
    }
}

/// Why a token is not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// Empty or the app's placeholder: the user has no token.
    NoToken,
    /// Cannot be a registration token.
    Invalid,
    /// Sent already in this run.
    Duplicate,
}

/// How many of a page's rows were not sent, by why (what a progress bar takes off its total).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rejections {
    /// Rows without a token outside the retry set (an empty or placeholder line of a file).
    pub no_token: u64,
    /// Users of the retry set who have no token any more.
    pub gone: u64,
    /// Tokens that cannot be valid.
    pub invalid: u64,
    /// Tokens already sent in this run.
    pub duplicate: u64,
    /// Lines of a tokens file that are not a token.
    pub unusable_lines: u64,
}

impl Rejections {
    /// The lines of `page` that could not even be offered, and no rejection yet.
    pub(crate) fn of(page: &Page) -> Self {
        Rejections { unusable_lines: page.unusable_lines, ..Rejections::default() }
    }

    /// Counts one `candidate` the filter rejected for `rejection`.
    pub(crate) fn add(&mut self, rejection: Rejection, candidate: &Candidate) {
        let count = match rejection {
            Rejection::NoToken if candidate.in_retry_set => &mut self.gone,
            Rejection::NoToken => &mut self.no_token,
            Rejection::Invalid => &mut self.invalid,
            Rejection::Duplicate => &mut self.duplicate,
        };
        *count += 1;
    }
}

impl TokenFilter {
    /// A filter for a database source: a token held by several users goes only to the users
    /// the source did not mark (see [`owners`]).
    fn for_database() -> Self {
        TokenFilter { dedup: Dedup::Database, ..TokenFilter::default() }
    }

    /// Reads the values as `targets` says (`--targets`; `auto` by default).
    pub(crate) fn reading(mut self, targets: Targets) -> Self {
        self.targets = targets;
        self
    }

    /// The target for a candidate, or why it is not sent. An admitted candidate's token moves
    /// into the target (a copy per token was 1% of a send's CPU); a rejected one keeps it.
    pub(crate) fn admit(&mut self, candidate: &mut Candidate) -> Result<Target, Rejection> {
        let Some(stored) = candidate.stored.as_deref() else { return Err(Rejection::NoToken) };
        let (kind, trimmed) = self.admit_token(stored, candidate.held_by_lower)?;
        let stored = candidate.stored.take().expect("checked above");
        let (token, stored) = match trimmed {
            Some(token) => (token, Some(stored)),
            None => (stored, None),
        };
        Ok(Target { user_id: candidate.user_id, token, kind, stored, message: None })
    }

    /// The kind of an admissible token, and the token trimmed when trimming changed it.
    fn admit_token(
        &mut self,
        stored: &str,
        held_by_lower: bool,
    ) -> Result<(TargetKind, Option<String>), Rejection> {
        let token = stored.trim();
        if token.is_empty() || token == PLACEHOLDER_TOKEN {
            return Err(Rejection::NoToken);
        }
        if !could_be_valid(token) {
            self.counts.invalid += 1;
            return Err(Rejection::Invalid);
        }
        if self.dedup.is_duplicate(held_by_lower, token) {
            self.counts.duplicate += 1;
            return Err(Rejection::Duplicate);
        }
        self.counts.targeted += 1;
        let kind = self.targets.read(token);
        self.counts.fids += u64::from(kind == TargetKind::Fid);
        Ok((kind, (token.len() != stored.len()).then(|| token.to_owned())))
    }

    /// Counts what a page could not even offer: unusable lines, users gone from the retry set.
    pub(crate) fn count_unread(&mut self, unusable_lines: u64, gone: u64) {
        self.counts.unusable_lines += unusable_lines;
        self.counts.gone += gone;
    }

    /// What was admitted and rejected so far.
    pub(crate) fn counts(&self) -> TokenCounts {
        self.counts
    }
}

fn could_be_valid(token: &str) -> bool {
    // A fold, not `all`: checked many bytes at a time (see `write_json_string_contents`).
    token.len() < MAX_TOKEN_BYTES && token.bytes().fold(true, |graphic, b| graphic & b.is_ascii_graphic())
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
    /// A lower user holds the same token: he gets it, not this user (set by the source).
    pub held_by_lower: bool,
}

impl Candidate {
    /// A row as read, before the shared-token check.
    pub(crate) fn read(user_id: Option<i64>, stored: Option<String>, message: Option<Arc<Message>>) -> Self {
        Candidate { user_id, stored, message, in_retry_set: false, held_by_lower: false }
    }
}

/// What a source read in one go.
#[derive(Debug, Default)]
pub(crate) struct Page {
    /// The rows, in `user_id` order (retry set first, when resuming).
    pub candidates: Vec<Candidate>,
    /// Lines of a tokens file that could not be read as a token.
    pub unusable_lines: u64,
}

/// How many messages a run expects to send (a progress bar's total, a spread's pace), and what
/// that count took in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Expected {
    /// The messages, when the source can tell cheaply: the database's users with a token (minus
    /// those sharing a lower user's token, plus the retry set), a file's token lines, the one
    /// token given. Rows rejected later were counted too (see [`Rejections`]).
    pub total: Option<u64>,
    /// The count took in repeated tokens: a file's lines and a single token are counted as they
    /// are, while the database's count leaves out the users sharing a lower user's token.
    pub repeats_counted: bool,
}

impl Expected {
    /// The database's count, which leaves out the users sharing a lower user's token.
    fn of_database(total: Option<u64>) -> Self {
        Expected { total, repeats_counted: false }
    }

    /// A count of the tokens as given (a file's lines, one token), repeats and all.
    fn as_given(total: Option<u64>) -> Self {
        Expected { total, repeats_counted: true }
    }
}

/// A source ready to be read: its pages, the filter they go through, and what it expects.
pub(crate) struct PreparedSource {
    /// The pages, read one at a time.
    pub pages: TokenPages,
    /// What decides which of the pages' candidates are sent.
    pub filter: TokenFilter,
    /// The messages the run expects to send.
    pub expected: Expected,
}

/// Where a run's tokens come from, before it reads any: [`TokenSource::prepare`] makes it
/// [`TokenPages`].
pub(crate) enum TokenSource {
    /// `app_user`, one shard of it.
    Users { db: Database, users: users::Users, start: ReadFrom },
    /// A tokens file, or stdin for `-`.
    File(file::FilePages),
    /// One device given on the command line, read as its flag said.
    Single { token: String, reading: Targets },
    /// The week's badge winners, each with a notification of their own.
    Winners { db: Database, winners: Winners, start: ReadFrom },
}

/// A prepared source's pages. The database's carry the shared-token owners their pages are
/// marked with.
pub(crate) enum TokenPages {
    /// `app_user`, one shard of it.
    Users(KeysetPages<users::Users>),
    /// A tokens file, or stdin for `-`.
    File(file::FilePages),
    /// One device, taken once.
    Single(Option<String>),
    /// The week's badge winners.
    Winners(KeysetPages<Winners>),
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
pub(crate) struct ReadFrom {
    /// The slot whose retry set is read first (`None`: no retry set).
    pub retry_set: Option<RunKey>,
    /// Users at or below this id are not read (after the retry set).
    pub after_user_id: i64,
}

/// Whom a database source's pages reach: the users of `shard` above `after` (only those `among`
/// the reminder's audience, if given), after the `retry_set`. What the progress bar's total counts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reach<'a> {
    after: i64,
    shard: Shard,
    retry_set: Option<&'a RunKey>,
    among: Option<&'a NotArrived>,
}

impl ReadFrom {
    /// From the beginning, without a retry set.
    pub(crate) fn beginning() -> Self {
        ReadFrom { retry_set: None, after_user_id: 0 }
    }
}

impl TokenSource {
    /// `app_user`'s users of `shard`, from `start`.
    pub(crate) fn users(db: Database, shard: Shard, start: ReadFrom) -> Self {
        TokenSource::Users { db, users: users::Users::new(shard, None), start }
    }

    /// `path-daily --remind`'s audience: the users of `shard` with a token, from `start`, who
    /// are `among` those the first run reached and whose week has not arrived since.
    pub(crate) fn not_arrived(db: Database, shard: Shard, start: ReadFrom, among: NotArrived) -> Self {
        TokenSource::Users { db, users: users::Users::new(shard, Some(among)), start }
    }

    /// The same source, its database pages sized for a run that sends (a printing run keeps
    /// the larger pages its stream speed needs).
    pub(crate) fn paged_for_sending(self) -> Self {
        match self {
            TokenSource::Users { db, users, start } => {
                TokenSource::Users { db, users: users.paged_for_sending(), start }
            }
            other => other,
        }
    }

    /// The badge winners `winners` names, from `start`.
    pub(crate) fn winners(db: Database, winners: Winners, start: ReadFrom) -> Self {
        TokenSource::Winners { db, winners, start }
    }

    /// The lines of `path` (`-` = stdin).
    pub(crate) fn file(path: PathBuf) -> Self {
        TokenSource::File(file::FilePages::new(path))
    }

    /// One device: `send --token` reads it as a token, `send --fid` as an installation ID.
    pub(crate) fn single(token: String, reading: Targets) -> Self {
        TokenSource::Single { token, reading }
    }

    /// Prepares the source to be read: its pages, the filter its candidates go through
    /// (reading values as `targets` says, unless the source says otherwise) and the messages it
    /// expects. From the database, a token held by several users goes to its owner only: the
    /// shared-token owners are read here ([`prepare_owners`]). When `count_total` asks for it,
    /// the users the run expects to reach are counted at the same time (only a drawn progress
    /// bar or a spread needs the total: under cron the count, or a second read of a tokens file,
    /// would be work for nothing).
    ///
    /// # Errors
    /// When the database or the file fails.
    pub(crate) async fn prepare(
        self,
        count_total: bool,
        targets: Targets,
    ) -> Result<PreparedSource, SourceError> {
        let (pages, filter, expected) = match self {
            TokenSource::Users { db, users, start } => {
                let reach = count_total.then(|| users.reach(&start));
                let (owners, total) = prepare_owners(&db, reach).await?;
                let pages = KeysetPages::new(db, users, start, owners);
                (
                    TokenPages::Users(pages),
                    TokenFilter::for_database().reading(targets),
                    Expected::of_database(total),
                )
            }
            TokenSource::Winners { db, winners, start } => {
                let (owners, total) = prepare_owners(&db, None).await?;
                let pages = KeysetPages::new(db, winners, start, owners);
                (
                    TokenPages::Winners(pages),
                    TokenFilter::for_database().reading(targets),
                    Expected::of_database(total),
                )
            }
            TokenSource::File(pages) => {
                let total = if count_total { pages.count_token_lines().await? } else { None };
                (TokenPages::File(pages), TokenFilter::default().reading(targets), Expected::as_given(total))
            }
            TokenSource::Single { token, reading } => {
                let pages = TokenPages::Single(Some(token));
                (pages, TokenFilter::default().reading(reading), Expected::as_given(Some(1)))
            }
        };
        Ok(PreparedSource { pages, filter, expected })
    }
}

impl TokenPages {
    /// The next page, or `None` after the last.
    ///
    /// # Errors
    /// When the database or the file fails.
    pub(crate) async fn next_page(&mut self) -> Result<Option<Page>, SourceError> {
        Ok(match self {
            TokenPages::Users(pages) => pages.next_page().await?,
            TokenPages::Winners(pages) => pages.next_page().await?,
            TokenPages::File(pages) => pages.next_page().await?,
            TokenPages::Single(token) => token.take().map(|token| Page {
                candidates: vec![Candidate::read(None, Some(token), None)],
                unusable_lines: 0,
            }),
        })
    }
}

/// The step a database source takes before its first page: the groups of tokens held by
/// several users read, and their owners known (see [`owners`]); at the same time, on another
/// connection, the users `reach` expects counted, less those who share a lower user's token.
async fn prepare_owners(db: &Database, reach: Option<Reach<'_>>) -> Result<(Owners, Option<u64>), DbError> {
    let started = std::time::Instant::now();
    let (owners, expected) = tokio::try_join!(Owners::load(db), expected_users(db, reach))?;
    let secs = started.elapsed().as_secs_f64();
    tracing::debug!(shared_tokens = owners.groups(), secs, "found the tokens held by several users");
    let expected = reach
        .zip(expected)
        .map(|(reach, users)| users.saturating_sub(owners.non_owners_among(reach.after, reach.shard)));
    Ok((owners, expected))
}

/// The users `start` reaches (this shard's users with a token above the checkpoint, `among`
/// the reminder's audience if given, and the retry set), before taking off those who share a
/// lower user's token; `None` without a start (the badge winners: counting them costs as much
/// as reading them).
async fn expected_users(db: &Database, start: Option<Reach<'_>>) -> Result<Option<u64>, DbError> {
    let Some(Reach { after, shard, retry_set, among }) = start else { return Ok(None) };
    let retrying = async {
        match retry_set {
            Some(key) => db.retry_set_size(key).await,
            None => Ok(0),
        }
    };
    let (users, retrying) = tokio::try_join!(db.count_with_token(after, shard, among), retrying)?;
    Ok(Some(users + retrying))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "fcm:APA91bHun4MxP5egoKMwt2KZFBaFUH";

    /// What `filter` makes of `user`'s stored token.
    fn admit(filter: &mut TokenFilter, user: Option<i64>, stored: &str) -> Result<Target, Rejection> {
        filter.admit(&mut Candidate::read(user, Some(stored.to_owned()), None))
    }

    #[test]
    fn whitespace_around_a_token_is_trimmed_but_the_stored_form_is_kept() {
        let target = admit(&mut TokenFilter::default(), Some(1), &format!("  {TOKEN}\n")).unwrap();
        assert_eq!(target.token, TOKEN);
        assert_eq!(target.stored_token(), format!("  {TOKEN}\n"));
    }

    #[test]
    fn a_token_seen_twice_is_admitted_once() {
        let mut filter = TokenFilter::default();
        assert!(admit(&mut filter, Some(1), TOKEN).is_ok());
        assert_eq!(admit(&mut filter, Some(2), TOKEN), Err(Rejection::Duplicate));
        assert_eq!(filter.counts().duplicate, 1);
    }

    #[test]
    fn placeholder_and_empty_tokens_mean_no_token() {
        let mut filter = TokenFilter::default();
        assert_eq!(admit(&mut filter, None, " abc "), Err(Rejection::NoToken));
        assert_eq!(admit(&mut filter, None, ""), Err(Rejection::NoToken));
        assert_eq!(filter.counts().skipped(), 0);
    }

    #[test]
    fn tokens_with_inner_spaces_control_characters_or_excess_length_are_invalid() {
        let mut filter = TokenFilter::default();
        for junk in ["two words", "tab\there", "nul\0x", "토큰", &"x".repeat(MAX_TOKEN_BYTES)] {
            assert_eq!(admit(&mut filter, None, junk), Err(Rejection::Invalid), "{junk:?}");
        }
        assert_eq!(filter.counts().invalid, 5);
    }

    #[test]
    fn from_the_database_a_user_marked_as_sharing_a_lower_users_token_is_a_duplicate() {
        let mut filter = TokenFilter::for_database();
        let mut owner = Candidate::read(Some(1), Some(TOKEN.to_owned()), None);
        let mut sharer =
            Candidate { held_by_lower: true, ..Candidate::read(Some(2), Some(TOKEN.to_owned()), None) };
        assert!(filter.admit(&mut owner).is_ok());
        assert_eq!(filter.admit(&mut sharer), Err(Rejection::Duplicate));
        assert_eq!(sharer.stored.as_deref(), Some(TOKEN), "a rejected candidate keeps its token");
    }

    #[test]
    fn a_pages_rejections_are_counted_by_why_and_a_retry_set_user_without_a_token_is_gone() {
        let mut filter = TokenFilter::default();
        let mut rejected = Rejections::of(&Page { candidates: Vec::new(), unusable_lines: 1 });
        let no_token = Candidate::read(None, Some(" abc ".into()), None);
        let gone = Candidate { in_retry_set: true, ..Candidate::read(Some(7), None, None) };
        let candidates =
            [TOKEN, TOKEN, "bad token"].map(|token| Candidate::read(None, Some(token.into()), None));
        for mut candidate in candidates.into_iter().chain([no_token, gone]) {
            if let Err(rejection) = filter.admit(&mut candidate) {
                rejected.add(rejection, &candidate);
            }
        }
        let expected = Rejections { no_token: 1, gone: 1, invalid: 1, duplicate: 1, unusable_lines: 1 };
        assert_eq!(rejected, expected);
    }

    #[test]
    fn short_shows_at_most_eight_characters() {
        assert_eq!(short_token(TOKEN), "fcm:APA9");
        assert_eq!(short_token("abc"), "abc");
    }
}
