//! An error and its causes on one line, `outer: cause: root cause`: what logs and messages show
//! of errors from other crates, whose `Display` says only the outermost part.

/// `error` and every `source()` below it, joined by `: `.
pub(crate) fn one_line(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
