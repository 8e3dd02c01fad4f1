//! stderr: tracing logs and the progress bar, drawn so they never tear each other.
//! stdout belongs to the summary and to `--print`, and is written only through [`print()`] and
//! [`StdoutBodies`]: a reader that has gone (`| head -1`) ends the output quietly, as ripgrep's
//! does, never the run.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use clap::ValueEnum;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

use crate::counts::Counts;
use crate::tokens::{Expected, Rejections};

/// Output settings.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// Summary format.
    pub format: Format,
    /// Progress bar policy.
    pub progress: ProgressWhen,
    /// Print nothing on success.
    pub quiet: bool,
}

/// Summary formats (`--format`; clap takes the enum as it is).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A few aligned lines for people.
    Human,
    /// One JSON object.
    Json,
}

/// When to draw the progress bar (`--progress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressWhen {
    /// Only when stderr is a terminal.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

impl ProgressWhen {
    /// Whether the bar is drawn: callers skip the work of counting its total when it is not
    /// (under cron, say).
    pub(crate) fn shown(self) -> bool {
        match self {
            ProgressWhen::Always => true,
            ProgressWhen::Never => false,
            ProgressWhen::Auto => std::io::stderr().is_terminal(),
        }
    }
}

/// Set once a write to stdout met a closed pipe: nothing more is written there.
static STDOUT_GONE: AtomicBool = AtomicBool::new(false);

/// What became of a write to stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Written {
    /// The reader has it (or the pipe's buffer does).
    Yes,
    /// The reader has gone (EPIPE): stop producing output; the run itself is not affected.
    ReaderGone,
}

/// A closed pipe is [`Written::ReaderGone`], remembered for every later write. Rust ignores
/// SIGPIPE, so a write to it returns EPIPE instead of killing the process; that must stay so,
/// or a journaled run would die mid-slot when its reader goes.
fn written(result: std::io::Result<()>) -> std::io::Result<Written> {
    match result {
        Ok(()) => Ok(Written::Yes),
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {
            STDOUT_GONE.store(true, Ordering::Relaxed);
            Ok(Written::ReaderGone)
        }
        Err(error) => Err(error),
    }
}

/// Whether stdout's reader has gone: what would only accompany stdout's output (the summary
/// of a `--print` run, on stderr) is left out too.
pub(crate) fn stdout_gone() -> bool {
    STDOUT_GONE.load(Ordering::Relaxed)
}

/// Writes `text` to stdout, or nothing once its reader has gone.
///
/// # Errors
/// When stdout cannot be written for another reason (a full disk behind a redirection).
pub(crate) fn print(text: &str) -> std::io::Result<Written> {
    if stdout_gone() {
        return Ok(Written::ReaderGone);
    }
    let mut stdout = std::io::stdout().lock();
    written(stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()))
}

/// stdout for many writes (the request bodies of `--print`), buffered.
pub(crate) struct StdoutBodies {
    out: std::io::BufWriter<std::io::StdoutLock<'static>>,
}

impl StdoutBodies {
    /// Locks stdout for the bodies.
    pub(crate) fn new() -> Self {
        StdoutBodies { out: std::io::BufWriter::new(std::io::stdout().lock()) }
    }

    /// Writes one body; after [`Written::ReaderGone`] the caller stops producing them.
    ///
    /// # Errors
    /// As [`print()`].
    pub(crate) fn write(&mut self, bytes: &[u8]) -> std::io::Result<Written> {
        written(self.out.write_all(bytes))
    }

    /// Writes out what is buffered.
    ///
    /// # Errors
    /// As [`print()`].
    pub(crate) fn finish(mut self) -> std::io::Result<Written> {
        if stdout_gone() {
            return Ok(Written::ReaderGone);
        }
        written(self.out.flush())
    }
}

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

/// The answers a run has had so far, shared with the bar's renderer: updating three atomics per
/// answer is cheaper than formatting a message string 20,000 times a second, and the bar is
/// drawn at most 20 times a second anyway.
#[derive(Debug, Default)]
struct Answers {
    sent: AtomicU64,
    pruned: AtomicU64,
    failed: AtomicU64,
}

/// A run's progress bar: answered/total, share, sent/pruned/failed, rate and ETA. Hidden unless
/// asked for or on a terminal.
pub(crate) struct RunProgress {
    /// `None` when the bar is hidden (under cron): nothing reads a hidden bar's counts, so none
    /// are kept and an answer costs one branch.
    drawn: Option<DrawnBar>,
}

/// A bar on stderr and what it shows.
struct DrawnBar {
    bar: ProgressBar,
    answers: Arc<Answers>,
    /// The total took in repeated tokens ([`Expected::repeats_counted`]).
    repeats_counted: bool,
}

impl RunProgress {
    /// A bar for the `expected` messages (total not known: a spinner with the counts instead),
    /// drawn as `policy` says.
    pub(crate) fn new(policy: ProgressWhen, expected: Expected, label: &str) -> Self {
        RunProgress { drawn: policy.shown().then(|| DrawnBar::new(expected, label)) }
    }

    /// One more answer; `counts` are the run's counts after it.
    pub(crate) fn answered(&self, counts: &Counts) {
        let Some(DrawnBar { bar, answers, .. }) = &self.drawn else { return };
        answers.sent.store(counts.sent, Ordering::Relaxed);
        answers.pruned.store(counts.pruned, Ordering::Relaxed);
        answers.failed.store(counts.failed, Ordering::Relaxed);
        bar.inc(1);
    }

    /// Takes off the total the rows of a page that were `rejected` and that it had counted.
    pub(crate) fn rejected(&self, rejected: &Rejections) {
        let Some(DrawnBar { bar, repeats_counted, .. }) = &self.drawn else { return };
        let by = not_coming(rejected, *repeats_counted);
        if let Some(total) = bar.length().filter(|_| by > 0) {
            bar.set_length(total.saturating_sub(by).max(bar.position()));
        }
    }

    /// Removes the bar (the summary follows).
    pub(crate) fn finish(&self) {
        if let Some(DrawnBar { bar, .. }) = &self.drawn {
            bar.finish_and_clear();
        }
    }
}

impl DrawnBar {
    /// Draws a bar for `expected` on stderr, labelled `label`.
    fn new(expected: Expected, label: &str) -> Self {
        let answers = Arc::new(Answers::default());
        let template = match expected.total {
            Some(_) => "{prefix} [{bar:25}] {counts}",
            None => "{prefix} {spinner} {counts}",
        };
        let shown = Arc::clone(&answers);
        let style = ProgressStyle::with_template(template)
            .expect("valid template")
            .progress_chars("=> ")
            .with_key("counts", move |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = w.write_str(&progress_counts(&Snapshot::of(state, &shown)));
            });
        let bar = ProgressBar::with_draw_target(expected.total, ProgressDrawTarget::hidden())
            .with_style(style)
            .with_prefix(label.to_owned());
        let bar = bars().add(bar);
        bars().set_draw_target(ProgressDrawTarget::term_like(Box::new(console::Term::stderr())));
        bar.enable_steady_tick(Duration::from_millis(200));
        DrawnBar { bar, answers, repeats_counted: expected.repeats_counted }
    }
}

/// Of a page's `rejected` rows, the messages the expected total had counted: every one (an
/// invalid token, a line that is not one, a user gone from the retry set), except a repeated
/// token when the count had left repeats out already (the database's).
fn not_coming(rejected: &Rejections, repeats_counted: bool) -> u64 {
    let Rejections { no_token, gone, invalid, duplicate, unusable_lines } = *rejected;
    let repeats = if repeats_counted { duplicate } else { 0 };
    no_token + gone + invalid + unusable_lines + repeats
}

/// What the bar's counts are drawn from, at one instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Snapshot {
    /// Messages answered.
    pub done: u64,
    /// Messages the run expects to send, when known.
    pub total: Option<u64>,
    /// Answers by kind.
    pub sent: u64,
    pub pruned: u64,
    pub failed: u64,
    /// Answers per second, recently.
    pub per_sec: f64,
}

impl Snapshot {
    fn of(state: &ProgressState, answers: &Answers) -> Self {
        Snapshot {
            done: state.pos(),
            total: state.len(),
            sent: answers.sent.load(Ordering::Relaxed),
            pruned: answers.pruned.load(Ordering::Relaxed),
            failed: answers.failed.load(Ordering::Relaxed),
            per_sec: state.per_sec(),
        }
    }
}

/// The text after the bar, e.g. `412,345/968,475 42% · sent 410,000 pruned 2,000 failed 345 ·
/// 9,000 msg/s · ETA 1m 02s`. Whole numbers: a rate to four decimals only flickers.
pub(crate) fn progress_counts(s: &Snapshot) -> String {
    let answers =
        format!("sent {} pruned {} failed {}", thousands(s.sent), thousands(s.pruned), thousands(s.failed));
    let rate = format!("{} msg/s", thousands(s.per_sec.max(0.0).round() as u64));
    let Some(total) = s.total else {
        return format!("{} · {answers} · {rate}", thousands(s.done));
    };
    let percent = (s.done.min(total) * 100).checked_div(total).unwrap_or(100);
    let eta = match (total.saturating_sub(s.done), s.per_sec) {
        (0, _) => "ETA 0s".to_owned(),
        (left, rate) if rate >= 1.0 => format!("ETA {}", clock(Duration::from_secs_f64(left as f64 / rate))),
        _ => "ETA -".to_owned(),
    };
    format!("{}/{} {percent}% · {answers} · {rate} · {eta}", thousands(s.done), thousands(total))
}

/// `1234567` → `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// `62 s` → `1m 02s`, `3725 s` → `1h 02m`: minutes matter for a run, not milliseconds.
fn clock(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m {:02}s", secs / 60, secs % 60),
        _ => format!("{}h {:02}m", secs / 3600, secs % 3600 / 60),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(done: u64, total: Option<u64>, per_sec: f64) -> Snapshot {
        Snapshot { done, total, sent: done.saturating_sub(12), pruned: 10, failed: 2.min(done), per_sec }
    }

    #[test]
    fn the_counts_show_share_answers_a_whole_rate_and_the_time_left() {
        assert_eq!(
            progress_counts(&snapshot(412_345, Some(968_475), 9_000.408_3)),
            "412,345/968,475 42% · sent 412,333 pruned 10 failed 2 · 9,000 msg/s · ETA 1m 01s"
        );
    }

    #[test]
    fn without_a_total_there_is_no_share_and_no_eta() {
        assert_eq!(
            progress_counts(&snapshot(9_534, None, 916.308_3)),
            "9,534 · sent 9,522 pruned 10 failed 2 · 916 msg/s"
        );
    }

    #[test]
    fn before_any_answer_the_eta_is_unknown_and_at_the_end_it_is_zero() {
        assert!(progress_counts(&snapshot(0, Some(1_000), 0.0))
            .ends_with("0% · sent 0 pruned 10 failed 0 · 0 msg/s · ETA -"));
        assert!(progress_counts(&snapshot(1_000, Some(1_000), 50.0)).contains("1,000/1,000 100%"));
        assert!(progress_counts(&snapshot(1_000, Some(1_000), 50.0)).ends_with("ETA 0s"));
        assert!(progress_counts(&snapshot(0, Some(0), 0.0)).starts_with("0/0 100%"));
    }

    #[test]
    fn a_hidden_bar_keeps_nothing() {
        let expected = Expected { total: Some(10), repeats_counted: true };
        let progress = RunProgress::new(ProgressWhen::Never, expected, "send");
        progress.answered(&Counts { sent: 1, ..Counts::default() });
        assert!(progress.drawn.is_none());
    }

    #[test]
    fn a_repeated_token_is_not_coming_only_when_the_total_counted_repeats() {
        let rejected = Rejections { no_token: 1, gone: 2, invalid: 4, duplicate: 8, unusable_lines: 16 };
        assert_eq!(not_coming(&rejected, true), 31);
        assert_eq!(not_coming(&rejected, false), 23);
    }

    #[test]
    fn rejections_shrink_the_total_but_never_below_the_answers_so_far() {
        let bar = ProgressBar::with_draw_target(Some(10), ProgressDrawTarget::hidden());
        let drawn = DrawnBar { bar, answers: Arc::default(), repeats_counted: false };
        let progress = RunProgress { drawn: Some(drawn) };
        let bar = &progress.drawn.as_ref().unwrap().bar;
        progress.rejected(&Rejections { invalid: 1, duplicate: 5, ..Rejections::default() });
        assert_eq!(bar.length(), Some(9));
        bar.inc(7);
        progress.rejected(&Rejections { gone: 5, ..Rejections::default() });
        assert_eq!(bar.length(), Some(7));
    }

    #[test]
    fn long_runs_show_hours_and_minutes() {
        assert_eq!(clock(Duration::from_secs(3_725)), "1h 02m");
        assert_eq!(clock(Duration::from_secs(59)), "59s");
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(thousands(999), "999");
    }
}
