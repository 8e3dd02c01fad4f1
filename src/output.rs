//! stderr: tracing logs and the progress bar, drawn so they never tear each other.
//! stdout belongs to the summary and to `--print`.

use std::io::{IsTerminal, Write};
use std::sync::OnceLock;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

use crate::cli::Progress;

static BARS: OnceLock<MultiProgress> = OnceLock::new();

fn bars() -> &'static MultiProgress {
    BARS.get_or_init(MultiProgress::new)
}

/// Starts logging to stderr. `RUST_LOG` wins; otherwise `-q` shows warnings and errors only,
/// `-v` adds wolley-push's debug lines (and gcp_auth's warnings, which quote the token
/// endpoint's error answer), `-vv` its trace lines. Other crates stay at `warn`: their debug
/// output can carry request details. gcp_auth warns on each of its own retries, which our one
/// error line already sums up.
pub fn init_logging(quiet: bool, verbose: u8) {
    let default = match (quiet, verbose) {
        (true, _) => "warn,gcp_auth=error",
        (false, 0) => "warn,gcp_auth=error,wolley_push=info",
        (false, 1) => "warn,wolley_push=debug",
        (false, _) => "warn,wolley_push=trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(StderrAroundBars)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}

/// A progress bar for `total` messages (0 = unknown), hidden unless asked for or on a terminal.
pub fn progress_bar(policy: Progress, total: u64, label: &str) -> ProgressBar {
    let visible = match policy {
        Progress::Always => true,
        Progress::Never => false,
        Progress::Auto => std::io::stderr().is_terminal(),
    };
    if !visible {
        return ProgressBar::hidden();
    }
    let template = if total > 0 {
        "{prefix} [{bar:30}] {pos}/{len} {per_sec} eta {eta}"
    } else {
        "{prefix} {spinner} {pos} {per_sec}"
    };
    let bar = ProgressBar::with_draw_target(Some(total).filter(|&t| t > 0), ProgressDrawTarget::hidden())
        .with_style(ProgressStyle::with_template(template).expect("valid template").progress_chars("=> "))
        .with_prefix(label.to_owned());
    let bar = bars().add(bar);
    bars().set_draw_target(ProgressDrawTarget::term_like(Box::new(console::Term::stderr())));
    bar
}

/// Writes log lines to stderr with any progress bar lifted out of the way.
#[derive(Clone, Copy)]
struct StderrAroundBars;

impl Write for StderrAroundBars {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        bars().suspend(|| std::io::stderr().write_all(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> MakeWriter<'a> for StderrAroundBars {
    type Writer = StderrAroundBars;

    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}
