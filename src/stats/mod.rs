//! Weekly statistics: each user's week by category ([`week`]), the badge rules evaluated over
//! it ([`badges`]), what a run reports ([`report`]), how many people uploaded the week after
//! `path-daily`'s push ([`uploads`]) and who is told about their badges
//! ([`notify`]).
//!
//! Everything here is plain computation over figures the database layer hands over page by
//! page (`crate::user_week` defines them, `crate::db::stats` owns the SQL), so the rules of the week are unit-tested without a
//! server and memory follows one page of users, never all of them.

pub(crate) mod badges;
pub(crate) mod notify;
pub(crate) mod refresh;
pub(crate) mod report;
pub(crate) mod uploads;
pub(crate) mod week;
