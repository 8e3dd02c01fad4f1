//! Splitting users between runs: `--shard K/N` takes the users with `user_id % N == K`, each
//! shard with its own lock and journal row.

use std::fmt;
use std::str::FromStr;

/// One of N disjoint parts of the users.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// K in K/N.
    pub index: u32,
    /// N in K/N.
    pub count: u32,
}

impl Shard {
    /// Every user.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// The shard from `--shard`, or from `--shards N` and Kubernetes' `JOB_COMPLETION_INDEX`.
    ///
    /// # Errors
    /// A message for the operator when the values do not make a shard.
    pub fn resolve(
        shard: Option<Shard>,
        shards: Option<u32>,
        completion_index: Option<&str>,
    ) -> Result<Shard, String> {
        match (shard, shards) {
            (Some(shard), _) => Ok(shard),
            (None, None) => Ok(Shard::ALL),
            (None, Some(count)) => {
                let index = completion_index.ok_or_else(|| {
                    "--shards needs JOB_COMPLETION_INDEX (set by a Kubernetes Indexed Job); \
                     elsewhere use --shard K/N"
                        .to_owned()
                })?;
                let index = index
                    .trim()
                    .parse::<u32>()
                    .map_err(|_| format!("JOB_COMPLETION_INDEX \"{index}\" is not a number"))?;
                Shard::new(index, count)
            }
        }
    }

    fn new(index: u32, count: u32) -> Result<Shard, String> {
        if count == 0 {
            return Err("the number of shards must be at least 1".into());
        }
        if index >= count {
            return Err(format!(
                "shard {index} does not exist in {count} shards (they are 0 to {})",
                count - 1
            ));
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// As its text, `K/N`: how the journal stores it and `runs --format json` shows it.
impl serde::Serialize for Shard {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (index, count) =
            text.split_once('/').ok_or_else(|| format!("\"{text}\" is not K/N, e.g. 0/3"))?;
        let number = |part: &str| part.parse::<u32>().map_err(|_| format!("\"{text}\" is not K/N, e.g. 0/3"));
        Shard::new(number(index)?, number(count)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shard_is_written_k_slash_n() {
        assert_eq!("1/3".parse::<Shard>(), Ok(Shard { index: 1, count: 3 }));
        assert_eq!(Shard { index: 1, count: 3 }.to_string(), "1/3");
    }

    #[test]
    fn impossible_shards_are_refused() {
        for bad in ["3/3", "0/0", "1", "a/3", "-1/3"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn shards_take_their_index_from_kubernetes() {
        assert_eq!(Shard::resolve(None, Some(4), Some("2")), Ok(Shard { index: 2, count: 4 }));
        assert!(Shard::resolve(None, Some(4), None).unwrap_err().contains("JOB_COMPLETION_INDEX"));
        assert!(Shard::resolve(None, Some(4), Some("4")).is_err());
    }

    #[test]
    fn no_shard_flags_means_every_user() {
        assert_eq!(Shard::resolve(None, None, Some("2")), Ok(Shard::ALL));
    }
}
