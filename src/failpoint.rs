//! Faults the integration tests inject where no real one can be provoked from outside — a bug,
//! i.e. a panic. Only a build with the `failpoints` cargo feature reads `WOLLEY_FAILPOINT`: the
//! one `cargo test` makes (Cargo.toml's dev-dependency on this crate turns the feature on). In
//! every other build, `cargo build` and release alike, a failpoint is a constant `false`.

/// Whether the failpoint `name` is switched on for this process (`WOLLEY_FAILPOINT=name`).
#[cfg(feature = "failpoints")]
pub(crate) fn on(name: &str) -> bool {
    static ACTIVE: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    ACTIVE.get_or_init(|| std::env::var("WOLLEY_FAILPOINT").ok()).as_deref() == Some(name)
}

/// Whether the failpoint `name` is switched on for this process: never, without the
/// `failpoints` feature.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub(crate) const fn on(_name: &str) -> bool {
    false
}
