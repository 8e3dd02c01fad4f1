//! Who a token held by several users is sent to: its owner, the lowest user id, the tokens
//! compared on their exact bytes after trimming spaces (tokens are case-sensitive; the column's
//! collation is not). The database groups every token on a CRC-32 of those bytes in one scan
//! (`Database::shared_groups`); each group is then settled exactly:
//!
//! - a group of two users is settled when its higher user is read: his token is compared with
//!   the lower user's, looked up by primary key for a whole page at once;
//! - a group of three or more (rarer) is read whole up front and grouped on the bytes.
//!
//! Every shard and every resumed run sees the same groups, so they agree on the owner. Memory
//! follows the shared tokens (24 bytes per group, 8 per settled non-owner, and a 128 KiB
//! filter once there is a group), not the users.

use std::collections::HashMap;

use super::Candidate;
use crate::db::tokens::{SharedGroup, HASHES_PER_QUERY};
use crate::db::{Database, DbError};
use crate::shard::Shard;

/// The shared-token groups of one run.
#[derive(Debug, Default)]
pub(crate) struct Owners {
    /// Sorted by hash.
    groups: Vec<SharedGroup>,
    /// One bit per 4,096 hash values, set where a group's hash falls: most rows are told they
    /// share nothing from 128 KiB that stay in cache, without a binary search through the
    /// groups (24 bytes each, 1.2 MB at 50,000 groups), whose cache misses were a large share
    /// of the run's CPU when many users share a token (BENCHMARKS.md, "Why the code looks like
    /// this").
    present: HashFilter,
    /// Users of groups of three or more whose token a lower user holds, sorted.
    non_owners: Vec<i64>,
}

/// The CRC-32 the database computes as `CRC32(TRIM(BINARY fcmToken))`.
pub(crate) fn hash(stored: &str) -> u32 {
    crc32fast::hash(trim_spaces(stored).as_bytes())
}

/// What SQL's `TRIM` takes off: spaces only (`str::trim` would also take tabs and newlines,
/// and then two tokens the database keeps apart would compare equal here).
fn trim_spaces(stored: &str) -> &str {
    stored.trim_matches(' ')
}

impl Owners {
    /// The groups as the database has them now, the large ones settled.
    ///
    /// # Errors
    /// When the database fails.
    pub(crate) async fn load(db: &Database) -> Result<Self, DbError> {
        let groups = db.shared_groups().await?;
        let large: Vec<u32> = groups.iter().filter(|g| g.rows > 2).map(|g| g.hash).collect();
        let mut non_owners = Vec::new();
        for hashes in large.chunks(HASHES_PER_QUERY) {
            non_owners.extend(lower_held(db.rows_hashed_to(hashes).await?));
        }
        non_owners.sort_unstable();
        let present = HashFilter::of(groups.iter().map(|g| g.hash));
        Ok(Owners { groups, present, non_owners })
    }

    /// Tokens held by several users (a group may be two tokens with one hash), for the log.
    pub(crate) fn groups(&self) -> usize {
        self.groups.len()
    }

    fn group_of(&self, hash: u32) -> Option<&SharedGroup> {
        if !self.present.may_hold(hash) {
            return None;
        }
        let at = self.groups.binary_search_by_key(&hash, |g| g.hash).ok()?;
        Some(&self.groups[at])
    }

    /// Sets `held_by_lower` on the candidates whose token a lower user holds.
    ///
    /// # Errors
    /// When the database fails.
    pub(crate) async fn mark(&self, db: &Database, candidates: &mut [Candidate]) -> Result<(), DbError> {
        if self.groups.is_empty() {
            return Ok(());
        }
        // (candidate, the lower user of its pair)
        let mut pairs: Vec<(usize, i64)> = Vec::new();
        for (at, candidate) in candidates.iter_mut().enumerate() {
            let (Some(user_id), Some(stored)) = (candidate.user_id, candidate.stored.as_deref()) else {
                continue;
            };
            let Some(group) = self.group_of(hash(stored)) else { continue };
            if group.rows > 2 {
                candidate.held_by_lower = self.non_owners.binary_search(&user_id).is_ok();
            } else if user_id > group.min_user_id {
                pairs.push((at, group.min_user_id));
            }
        }
        if pairs.is_empty() {
            return Ok(());
        }
        let mut lower: Vec<i64> = pairs.iter().map(|&(_, user_id)| user_id).collect();
        lower.sort_unstable();
        lower.dedup();
        let tokens: HashMap<i64, String> =
            db.tokens_of(&lower).await?.into_iter().filter_map(|(id, token)| Some((id, token?))).collect();
        for (at, lower) in pairs {
            let candidate = &mut candidates[at];
            let ours = candidate.stored.as_deref().map(trim_spaces);
            candidate.held_by_lower =
                tokens.get(&lower).is_some_and(|theirs| Some(trim_spaces(theirs)) == ours);
        }
        Ok(())
    }

    /// Of the users of `shard` above `after_user_id`, how many are not their token's owner,
    /// counting every pair as one token (a pair of different tokens with one CRC-32 is rare: about
    /// 120 among a million distinct tokens). For the progress bar's total.
    pub(crate) fn non_owners_among(&self, after_user_id: i64, shard: Shard) -> u64 {
        // `%` keeps the sign like SQL's MOD.
        let counted = |user_id: i64| {
            user_id > after_user_id && user_id % i64::from(shard.count) == i64::from(shard.index)
        };
        let pairs = self.groups.iter().filter(|g| g.rows == 2 && counted(g.max_user_id)).count();
        let large = self.non_owners.iter().filter(|&&user_id| counted(user_id)).count();
        (pairs + large) as u64
    }
}

/// A set of hashes that answers "certainly not in it" from one bit (empty: holds nothing).
#[derive(Debug, Default)]
struct HashFilter {
    bits: Vec<u64>,
}

impl HashFilter {
    /// One bit per 2^`SHIFT` hash values.
    const SHIFT: u32 = 12;
    const WORDS: usize = (1 << (32 - Self::SHIFT)) / 64;

    fn of(hashes: impl ExactSizeIterator<Item = u32>) -> Self {
        if hashes.len() == 0 {
            return HashFilter::default();
        }
        let mut bits = vec![0u64; Self::WORDS];
        for hash in hashes {
            let bit = (hash >> Self::SHIFT) as usize;
            bits[bit / 64] |= 1 << (bit % 64);
        }
        HashFilter { bits }
    }

    fn may_hold(&self, hash: u32) -> bool {
        let bit = (hash >> Self::SHIFT) as usize;
        self.bits.get(bit / 64).is_some_and(|word| word & (1 << (bit % 64)) != 0)
    }
}

/// Of `rows` (user, token as stored), the users whose exact trimmed token a lower user holds.
fn lower_held(rows: Vec<(i64, String)>) -> Vec<i64> {
    let mut owner: HashMap<&str, i64> = HashMap::new();
    for (user_id, token) in &rows {
        owner.entry(trim_spaces(token)).and_modify(|o| *o = (*o).min(*user_id)).or_insert(*user_id);
    }
    rows.iter().filter(|(user_id, token)| owner[trim_spaces(token)] != *user_id).map(|(u, _)| *u).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_the_databases_crc32_of_the_trimmed_bytes() {
        // SELECT CRC32(TRIM(BINARY '  fcm:APA91b  ')) on MariaDB 10.11
        assert_eq!(hash("  fcm:APA91b  "), crc32fast::hash(b"fcm:APA91b"));
        assert_eq!(hash("\tfcm:APA91b"), crc32fast::hash(b"\tfcm:APA91b"));
        assert_eq!(crc32fast::hash(b"hello"), 907_060_870);
    }

    #[test]
    fn the_hash_filter_holds_every_hash_it_was_given_and_not_those_far_from_them() {
        let filter = HashFilter::of([0, 7 << 12, u32::MAX].into_iter());
        for held in [0, 7 << 12, (7 << 12) + 4095, u32::MAX] {
            assert!(filter.may_hold(held), "{held}");
        }
        for absent in [1 << 12, 8 << 12, u32::MAX - 4096] {
            assert!(!filter.may_hold(absent), "{absent}");
        }
        assert!(!HashFilter::of(std::iter::empty()).may_hold(0));
    }

    #[test]
    fn in_a_large_group_only_the_lowest_holder_of_each_exact_token_owns_it() {
        let rows = vec![
            (9, "tokenA".to_owned()),
            (3, " tokenA ".to_owned()),
            (5, "TOKENA".to_owned()),
            (7, "tokenB".to_owned()),
            (4, "tokenA".to_owned()),
        ];
        let mut held = lower_held(rows);
        held.sort_unstable();
        assert_eq!(held, vec![4, 9]);
    }
}
