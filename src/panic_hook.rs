//! What a panic looks like to the operator: one line on stderr that says it is a bug and where,
//! and exit status 1 as docs/product.md promises (Rust's own default is a multi-line report and
//! status 101, which cron and scripts would read as "some other failure").
//!
//! The hook only prints and remembers; `main` turns the panic into exit 1 (see there for why the
//! hook does not exit itself).

use std::ffi::OsStr;
use std::sync::atomic::{AtomicBool, Ordering};

static PANICKED: AtomicBool = AtomicBool::new(false);

/// Replaces Rust's panic report with one line; with `RUST_BACKTRACE` set (not `0`), Rust's own
/// report and backtrace follow it. Only the first panic of the process is reported: a panic in a
/// tokio task is raised again where the task is joined (`JoinError` and an `expect`), and that
/// echo would only hide the place of the first.
pub fn install() {
    let rust_report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let first = !PANICKED.swap(true, Ordering::SeqCst);
        if first {
            let location = info.location().map(|at| format!("{}:{}", at.file(), at.line()));
            eprintln!("{}", describe(payload_text(info.payload()), location.as_deref()));
        }
        if backtrace_wanted(std::env::var_os("RUST_BACKTRACE").as_deref()) {
            rust_report(info);
        }
    }));
}

/// Whether anything in this process panicked, whether or not the panic was caught.
pub fn happened() -> bool {
    PANICKED.load(Ordering::SeqCst)
}

/// What is said of a panic whose payload is not text.
const NO_MESSAGE: &str = "a panic without a message";

/// A caught panic's message, or [`NO_MESSAGE`] when its payload is not text.
pub(crate) fn message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload_text(payload).unwrap_or(NO_MESSAGE)
}

/// A panic's message: `panic!("literal")` carries a `&str`, a formatted one a `String`.
fn payload_text(payload: &(dyn std::any::Any + Send)) -> Option<&str> {
    payload.downcast_ref::<&str>().copied().or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}

/// The line printed for a panic with `message` (when it has a text one) at `location`.
fn describe(message: Option<&str>, location: Option<&str>) -> String {
    let message = match message {
        Some(text) => text.split_whitespace().collect::<Vec<_>>().join(" "),
        None => NO_MESSAGE.to_owned(),
    };
    let at = location.map(|at| format!(" at {at}")).unwrap_or_default();
    format!(
        "wolley-push: internal error: {message}{at}; this is a bug, please report it with the command you ran"
    )
}

/// Rust's convention: any value but `0` asks for backtraces.
fn backtrace_wanted(value: Option<&OsStr>) -> bool {
    value.is_some_and(|value| value != "0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_is_one_line_naming_the_message_and_the_place() {
        assert_eq!(
            describe(Some("the sender does not panic"), Some("src/jobs/pipeline.rs:151")),
            "wolley-push: internal error: the sender does not panic at src/jobs/pipeline.rs:151; \
             this is a bug, please report it with the command you ran"
        );
    }

    #[test]
    fn a_multi_line_panic_message_stays_on_one_line() {
        let line = describe(Some("first\nsecond\r\n  third"), Some("src/x.rs:1"));
        assert!(!line.contains('\n') && !line.contains('\r'), "{line}");
        assert!(line.contains("first second third at src/x.rs:1"), "{line}");
    }

    #[test]
    fn a_panic_without_a_text_message_or_place_still_says_it_is_a_bug() {
        assert_eq!(
            describe(None, None),
            "wolley-push: internal error: a panic without a message; this is a bug, please report it \
             with the command you ran"
        );
    }

    #[test]
    fn a_panics_message_is_read_whether_literal_or_formatted() {
        let literal: Box<dyn std::any::Any + Send> = Box::new("literal");
        let formatted: Box<dyn std::any::Any + Send> = Box::new(format!("formatted {}", 1));
        let other: Box<dyn std::any::Any + Send> = Box::new(42);
        assert_eq!(payload_text(literal.as_ref()), Some("literal"));
        assert_eq!(payload_text(formatted.as_ref()), Some("formatted 1"));
        assert_eq!(payload_text(other.as_ref()), None);
    }

    #[test]
    fn rust_backtrace_asks_for_rusts_report_unless_it_is_0() {
        assert!(!backtrace_wanted(None));
        assert!(!backtrace_wanted(Some(OsStr::new("0"))));
        assert!(backtrace_wanted(Some(OsStr::new("1"))));
        assert!(backtrace_wanted(Some(OsStr::new("full"))));
    }
}
