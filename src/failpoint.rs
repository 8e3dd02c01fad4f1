//! Faults the integration tests inject where no real one can be provoked from outside — a bug,
//! i.e. a panic. Only debug builds (what `cargo test` runs) read `WOLLEY_FAILPOINT`; in a
//! release build every failpoint is a constant `false` and compiles away.

/// Whether the failpoint `name` is switched on for this process.
#[cfg(debug_assertions)]
pub(crate) fn on(name: &str) -> bool {
    static ACTIVE: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    ACTIVE.get_or_init(|| std::env::var("WOLLEY_FAILPOINT").ok()).as_deref() == Some(name)
}

/// Whether the failpoint `name` is switched on for this process: never, in a release build.
#[cfg(not(debug_assertions))]
#[inline(always)]
pub(crate) fn on(_name: &str) -> bool {
    false
}
