//! The metrics file (`--metrics-file`): each job's last run in the Prometheus text format, for
//! node_exporter's textfile collector.
//!
//! Every job may share one file: a run reads it, replaces its own job's series (per shard,
//! when sharded) and keeps everything else. The new file is written beside the old one (a
//! temporary file in the same directory) and renamed over it, so the collector never reads
//! half a file; an advisory
//! lock on `PATH.lock` keeps two jobs that finish together from losing each other's series.
//!
//! The series (label `wolley_job`, not `job`: Prometheus would rename that one to `exported_job`
//! on a node_exporter scrape; plus `shard` for a sharded run):
//! - `wolley_push_last_run_timestamp_seconds`: when the last run ended, whatever its outcome;
//! - `wolley_push_last_success_timestamp_seconds`: when the last successful run ended; only a
//!   run that exits 0 and did its job (including "slot already done") moves it, a run that
//!   found another run holding the lock does not;
//! - `wolley_push_last_run_duration_seconds`;
//! - `wolley_push_last_run_messages{result="sent|pruned|failed|expired|skipped"}`: absent when
//!   the last run counted no messages (it stopped with an error, or the job sends none);
//! - `wolley_push_last_run_targets{target="token|fid"}`: the devices it targeted, by how they
//!   are addressed (registration token or installation ID), absent as the messages are;
//! - `wolley_push_last_run_exit_code`.
//!
//! `report week` adds the week it reported (label `wolley_job="report-week"`), replaced
//! whole by each report: `wolley_push_week_wake_rate_median`, `wolley_push_week_wake_lift_median`
//! (absent when no slot had active users) and `wolley_push_week_never_woke_users`.
//!
//! `stats weekly` adds `wolley_push_week_upload_coverage_ratio{wolley_job="stats-weekly",
//! week="2026-W48"}`: the last computed week's upload coverage after `path-daily`, replaced
//! (or removed, when the week has none) by each run.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::{File, TryLockError};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::counts::Counts;
use crate::exit::ExitCode;
use crate::shard::Shard;

const LAST_RUN: &str = "wolley_push_last_run_timestamp_seconds";
const LAST_SUCCESS: &str = "wolley_push_last_success_timestamp_seconds";
const DURATION: &str = "wolley_push_last_run_duration_seconds";
const MESSAGES: &str = "wolley_push_last_run_messages";
const TARGETS: &str = "wolley_push_last_run_targets";
const EXIT_CODE: &str = "wolley_push_last_run_exit_code";

/// wolley-push's metric families in the order they are written, with their help text.
const FAMILIES: &[(&str, &str)] = &[
    (LAST_RUN, "Unix time the job's last run ended, whatever its outcome."),
    (LAST_SUCCESS, "Unix time the job's last successful run ended (exit code 0)."),
    (DURATION, "Wall time of the job's last run."),
    (MESSAGES, "Messages of the job's last run by result (sent, pruned, failed, expired, skipped)."),
    (TARGETS, "Devices the job's last run targeted by how they are addressed (token, fid)."),
    (EXIT_CODE, "Exit code of the job's last run (0 ok, 3 partial, 75 temporary, 78 configuration)."),
];

const WEEK_WAKE_RATE: &str = "wolley_push_week_wake_rate_median";
const WEEK_LIFT: &str = "wolley_push_week_wake_lift_median";
const WEEK_NEVER_WOKE: &str = "wolley_push_week_never_woke_users";

/// The week report's families, written after the runs' own.
const WEEK_FAMILIES: &[(&str, &str)] = &[
    (WEEK_WAKE_RATE, "Median over the reported week's slots of the share of active users who recorded a point within the wake window after the push."),
    (WEEK_LIFT, "Median over the reported week's slots of the wake rate minus the same share in the window before the push."),
    (WEEK_NEVER_WOKE, "Users active in the reported week who recorded no point in any slot's wake window."),
];

const UPLOAD_COVERAGE: &str = "wolley_push_week_upload_coverage_ratio";

/// `stats weekly`'s families, written last.
const STATS_FAMILIES: &[(&str, &str)] = &[
    (UPLOAD_COVERAGE, "Of the users path-daily notified for the last computed week (label week), the share who uploaded that week since the push."),
];

/// Every family wolley-push writes, in the order it writes them.
fn our_families() -> impl Iterator<Item = &'static (&'static str, &'static str)> {
    FAMILIES.iter().chain(WEEK_FAMILIES).chain(STATS_FAMILIES)
}

/// The job label of the week report's series.
const WEEK_JOB: &str = "report-week";

/// What `report week` puts in the metrics file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct WeekFigures {
    /// The median wake rate over the slots with active users.
    pub wake_rate_median: Option<f64>,
    /// The median lift over the same slots.
    pub lift_median: Option<f64>,
    /// Active users who never woke.
    pub never_woke: u64,
}

/// How long a run waits for another run to finish writing the file.
const LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// One run, as the metrics file records it.
#[derive(Debug, Clone)]
pub(crate) struct RunRecord<'a> {
    /// The job's name (label `job`).
    pub job: &'a str,
    /// The shard, when the run was one of several (label `shard`).
    pub shard: Option<Shard>,
    /// When the run ended.
    pub finished_at: SystemTime,
    /// How long it took.
    pub duration: Duration,
    /// Its exit code.
    pub exit_code: ExitCode,
    /// Its message counts, when it counted any.
    pub counts: Option<Counts>,
    /// Whether it moves the last-success timestamp.
    pub succeeded: bool,
}

/// Records `run` in the file at `path`, keeping every other job's series.
///
/// # Errors
/// When the file's directory cannot be written, or another writer holds the lock too long.
pub(crate) fn record(path: &Path, run: &RunRecord<'_>) -> io::Result<()> {
    update(path, |exposition| exposition.replace_run(run))
}

/// Replaces the week report's series in the file at `path` with `week`'s, keeping the rest.
///
/// # Errors
/// As [`record`].
pub(crate) fn record_week(path: &Path, week: &WeekFigures) -> io::Result<()> {
    update(path, |exposition| exposition.replace_week(week))
}

/// Replaces the upload coverage series with `week`'s `coverage` (label `week`), or removes it
/// when the week has none (no `path-daily` run announced it, or it notified nobody): the file
/// holds the last computed week's, never a stale one.
///
/// # Errors
/// As [`record`].
pub(crate) fn record_upload_coverage(path: &Path, week: &str, coverage: Option<f64>) -> io::Result<()> {
    update(path, |exposition| exposition.replace_upload_coverage(week, coverage))
}

/// Reads the file at `path` (under its lock), changes it with `change` and writes it back.
fn update(path: &Path, change: impl FnOnce(&mut Exposition)) -> io::Result<()> {
    let _lock = lock(path)?;
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => String::new(),
        Err(error) => return Err(error),
    };
    let mut exposition = Exposition::parse(&existing);
    change(&mut exposition);
    write_atomically(path, exposition.render().as_bytes())
}

/// `PATH` with `suffix` appended to its file name.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// An exclusive lock on `PATH.lock`, released when the file is dropped.
fn lock(path: &Path) -> io::Result<File> {
    let lock_path = sibling(path, ".lock");
    let file = File::options().create(true).truncate(false).write(true).open(&lock_path)?;
    let deadline = Instant::now() + LOCK_TIMEOUT;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(TryLockError::WouldBlock) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("another process held {} for {}s", lock_path.display(), LOCK_TIMEOUT.as_secs()),
                ))
            }
            Err(TryLockError::Error(error)) => return Err(error),
        }
    }
}

/// Writes a temporary file beside `PATH`, flushes it to disk, and renames it over `PATH` (the
/// temporary file is removed if anything fails on the way).
fn write_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    let directory = path.parent().filter(|dir| !dir.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut file =
        tempfile::Builder::new().prefix(".wolley-push-metrics").suffix(".tmp").tempfile_in(directory)?;
    file.write_all(contents)?;
    file.as_file().sync_all()?;
    file.persist(path).map(drop).map_err(|error| error.error)
}

/// One sample line: `name{labels} value`.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    labels: Vec<(String, String)>,
    value: String,
}

impl Sample {
    fn label(&self, name: &str) -> Option<&str> {
        self.labels.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    fn is_of(&self, job: &str, shard: Option<&str>) -> bool {
        self.label("wolley_job") == Some(job) && self.label("shard") == shard
    }
}

/// One metric family: its comments and samples.
#[derive(Debug, Default)]
struct Family {
    help: Option<String>,
    kind: Option<String>,
    samples: Vec<Sample>,
}

/// The parts of a text exposition this module reads and writes: `# HELP`, `# TYPE` and
/// sample lines without timestamps. Lines it does not understand are dropped.
#[derive(Debug, Default)]
struct Exposition {
    families: BTreeMap<String, Family>,
}

impl Exposition {
    fn parse(text: &str) -> Self {
        let mut exposition = Exposition::default();
        for line in text.lines().map(str::trim).filter(|line| !line.is_empty()) {
            if let Some(comment) = line.strip_prefix('#') {
                let mut words = comment.trim_start().splitn(3, ' ');
                match (words.next(), words.next(), words.next()) {
                    (Some("HELP"), Some(name), help) => {
                        exposition.family(name).help = Some(help.unwrap_or_default().to_owned());
                    }
                    (Some("TYPE"), Some(name), Some(kind)) => {
                        exposition.family(name).kind = Some(kind.trim().to_owned());
                    }
                    _ => {}
                }
            } else if let Some((name, sample)) = parse_sample(line) {
                exposition.family(&name).samples.push(sample);
            } else {
                tracing::warn!("dropping a line of the metrics file that is not a sample: {line:.80}");
            }
        }
        exposition
    }

    fn family(&mut self, name: &str) -> &mut Family {
        self.families.entry(name.to_owned()).or_default()
    }

    /// Replaces `run`'s job's series (only that shard's, when sharded).
    fn replace_run(&mut self, run: &RunRecord<'_>) {
        let shard = run.shard.map(|shard| shard.to_string());
        let shard = shard.as_deref();
        let previous_success = self
            .families
            .get(LAST_SUCCESS)
            .and_then(|family| family.samples.iter().find(|s| s.is_of(run.job, shard)))
            .map(|sample| sample.value.clone());
        for (name, _) in FAMILIES {
            if let Some(family) = self.families.get_mut(*name) {
                family.samples.retain(|sample| !sample.is_of(run.job, shard));
            }
        }
        let labels = |extra: Option<(&str, &str)>| {
            let mut labels = vec![("wolley_job".to_owned(), run.job.to_owned())];
            if let Some(shard) = shard {
                labels.push(("shard".to_owned(), shard.to_owned()));
            }
            if let Some((key, value)) = extra {
                labels.push((key.to_owned(), value.to_owned()));
            }
            labels
        };
        let finished = seconds(run.finished_at.duration_since(UNIX_EPOCH).unwrap_or_default());
        let mut add = |name: &str, labels: Vec<(String, String)>, value: String| {
            self.family(name).samples.push(Sample { labels, value });
        };
        add(LAST_RUN, labels(None), finished.clone());
        match (run.succeeded, previous_success) {
            (true, _) => add(LAST_SUCCESS, labels(None), finished),
            (false, Some(previous)) => add(LAST_SUCCESS, labels(None), previous),
            (false, None) => {}
        }
        add(DURATION, labels(None), seconds(run.duration));
        if let Some(counts) = &run.counts {
            for (result, value) in [
                ("sent", counts.sent),
                ("pruned", counts.pruned),
                ("failed", counts.failed),
                ("expired", counts.expired),
                ("skipped", counts.skipped),
            ] {
                add(MESSAGES, labels(Some(("result", result))), value.to_string());
            }
            for (target, value) in [("token", counts.targets.token), ("fid", counts.targets.fid)] {
                add(TARGETS, labels(Some(("target", target))), value.to_string());
            }
        }
        add(EXIT_CODE, labels(None), run.exit_code.code().to_string());
    }

    /// Replaces the week report's series.
    fn replace_week(&mut self, week: &WeekFigures) {
        for (name, _) in WEEK_FAMILIES {
            if let Some(family) = self.families.get_mut(*name) {
                family.samples.retain(|sample| sample.label("wolley_job") != Some(WEEK_JOB));
            }
        }
        let labels = || vec![("wolley_job".to_owned(), WEEK_JOB.to_owned())];
        let values = [
            (WEEK_WAKE_RATE, week.wake_rate_median.map(|v| v.to_string())),
            (WEEK_LIFT, week.lift_median.map(|v| v.to_string())),
            (WEEK_NEVER_WOKE, Some(week.never_woke.to_string())),
        ];
        for (name, value) in values {
            if let Some(value) = value {
                self.family(name).samples.push(Sample { labels: labels(), value });
            }
        }
    }

    /// Replaces `stats weekly`'s upload coverage series (of whichever week) with `week`'s.
    fn replace_upload_coverage(&mut self, week: &str, coverage: Option<f64>) {
        let family = self.family(UPLOAD_COVERAGE);
        family.samples.clear();
        if let Some(coverage) = coverage {
            let labels = vec![
                ("wolley_job".to_owned(), crate::names::STATS_WEEKLY.to_owned()),
                ("week".to_owned(), week.to_owned()),
            ];
            family.samples.push(Sample { labels, value: coverage.to_string() });
        }
    }

    /// The file's text: wolley-push's families first in a fixed order, then any others;
    /// samples sorted by their labels, so the same series always land on the same line.
    fn render(&mut self) -> String {
        let mut out = String::new();
        let ours = our_families().map(|(name, help)| (name.to_string(), Some(*help)));
        let others: Vec<_> = self
            .families
            .keys()
            .filter(|name| !our_families().any(|(ours, _)| ours == name))
            .map(|name| (name.clone(), None))
            .collect();
        for (name, our_help) in ours.chain(others) {
            let Some(family) = self.families.get_mut(&name) else { continue };
            if family.samples.is_empty() {
                continue;
            }
            let help = our_help.map(str::to_owned).or_else(|| family.help.clone());
            if let Some(help) = help {
                let _ = writeln!(out, "# HELP {name} {help}");
            }
            let kind = if our_help.is_some() { Some("gauge".to_owned()) } else { family.kind.clone() };
            if let Some(kind) = kind {
                let _ = writeln!(out, "# TYPE {name} {kind}");
            }
            family.samples.sort_by(|a, b| a.labels.cmp(&b.labels));
            for sample in &family.samples {
                out.push_str(&name);
                if !sample.labels.is_empty() {
                    out.push('{');
                    for (i, (key, value)) in sample.labels.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        let _ = write!(out, "{key}=\"{}\"", escape(value));
                    }
                    out.push('}');
                }
                let _ = writeln!(out, " {}", sample.value);
            }
        }
        out
    }
}

/// Seconds with millisecond precision.
fn seconds(duration: Duration) -> String {
    format!("{:.3}", duration.as_secs_f64())
}

fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// `name{key="value",...} value`, or `name value`; `None` for anything else (timestamps too).
fn parse_sample(line: &str) -> Option<(String, Sample)> {
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace())?;
    let (name, mut rest) = line.split_at(name_end);
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
        return None;
    }
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices().peekable();
        loop {
            while chars.next_if(|(_, c)| *c == ',' || c.is_whitespace()).is_some() {}
            match chars.peek() {
                Some((i, '}')) => {
                    rest = &inner[i + 1..];
                    break;
                }
                Some(_) => {}
                None => return None,
            }
            let mut key = String::new();
            while let Some((_, c)) = chars.next_if(|(_, c)| *c != '=') {
                key.push(c);
            }
            chars.next()?; // '='
            if chars.next()?.1 != '"' {
                return None;
            }
            let mut value = String::new();
            loop {
                match chars.next()?.1 {
                    '"' => break,
                    '\\' => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    c => value.push(c),
                }
            }
            labels.push((key.trim().to_owned(), value));
        }
    }
    let mut fields = rest.split_whitespace();
    let value = fields.next()?;
    if fields.next().is_some() || value.parse::<f64>().is_err() {
        return None;
    }
    Some((name.to_owned(), Sample { labels, value: value.to_owned() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(job: &str, exit_code: ExitCode, finished_secs: u64) -> RunRecord<'_> {
        RunRecord {
            job,
            shard: None,
            finished_at: UNIX_EPOCH + Duration::from_secs(finished_secs),
            duration: Duration::from_millis(1500),
            exit_code,
            counts: Some(Counts { sent: 7, pruned: 1, ..Counts::default() }),
            succeeded: exit_code == ExitCode::Success,
        }
    }

    fn apply(text: &str, record: &RunRecord<'_>) -> String {
        let mut exposition = Exposition::parse(text);
        exposition.replace_run(record);
        exposition.render()
    }

    #[test]
    fn a_run_writes_every_series_with_help_and_type() {
        let text = apply("", &run("save-location", ExitCode::Success, 100));
        for (name, _) in FAMILIES {
            assert!(text.contains(&format!("# TYPE {name} gauge")), "{text}");
        }
        assert!(
            text.contains("wolley_push_last_run_messages{wolley_job=\"save-location\",result=\"sent\"} 7\n")
        );
        assert!(text
            .contains("wolley_push_last_success_timestamp_seconds{wolley_job=\"save-location\"} 100.000\n"));
        assert!(text.contains("wolley_push_last_run_duration_seconds{wolley_job=\"save-location\"} 1.500\n"));
    }

    #[test]
    fn a_failed_run_keeps_the_previous_success() {
        let first = apply("", &run("path-daily", ExitCode::Success, 100));
        let second = apply(&first, &run("path-daily", ExitCode::TempFail, 200));
        assert!(second
            .contains("wolley_push_last_success_timestamp_seconds{wolley_job=\"path-daily\"} 100.000\n"));
        assert!(
            second.contains("wolley_push_last_run_timestamp_seconds{wolley_job=\"path-daily\"} 200.000\n")
        );
        assert!(second.contains("wolley_push_last_run_exit_code{wolley_job=\"path-daily\"} 75\n"));
    }

    #[test]
    fn other_jobs_and_shards_keep_their_series() {
        let mut sharded = run("save-location", ExitCode::Success, 50);
        sharded.shard = Some(Shard { index: 1, count: 2 });
        let text = apply("", &run("path-daily", ExitCode::Success, 100));
        let text = apply(&text, &sharded);
        let text = apply(&text, &run("save-location", ExitCode::Partial, 150));
        assert!(text.contains("wolley_push_last_run_exit_code{wolley_job=\"path-daily\"} 0\n"), "{text}");
        assert!(
            text.contains("wolley_push_last_run_exit_code{wolley_job=\"save-location\",shard=\"1/2\"} 0\n")
        );
        assert!(text.contains("wolley_push_last_run_exit_code{wolley_job=\"save-location\"} 3\n"));
    }

    #[test]
    fn rendering_what_was_parsed_gives_the_same_text() {
        let text = apply("", &run("migrate", ExitCode::Success, 100));
        let text = apply(&text, &run("send", ExitCode::Partial, 100));
        assert_eq!(Exposition::parse(&text).render(), text);
    }

    #[test]
    fn foreign_families_and_escaped_labels_survive() {
        let foreign = "# HELP other_metric Something else.\n# TYPE other_metric counter\n\
                       other_metric{path=\"a\\\"b\\\\c\"} 3\n";
        let text = apply(foreign, &run("send", ExitCode::Success, 1));
        assert!(text.ends_with(foreign), "{text}");
    }

    #[test]
    fn a_week_report_replaces_the_previous_weeks_figures_and_keeps_the_runs() {
        let text = apply("", &run("report-week", ExitCode::Success, 100));
        let mut exposition = Exposition::parse(&text);
        exposition.replace_week(&WeekFigures {
            wake_rate_median: Some(0.5),
            lift_median: None,
            never_woke: 3,
        });
        exposition.replace_week(&WeekFigures {
            wake_rate_median: Some(0.25),
            lift_median: Some(0.125),
            never_woke: 4,
        });
        let text = exposition.render();
        assert!(
            text.contains("wolley_push_week_wake_rate_median{wolley_job=\"report-week\"} 0.25\n"),
            "{text}"
        );
        assert!(text.contains("wolley_push_week_wake_lift_median{wolley_job=\"report-week\"} 0.125\n"));
        assert!(text.contains("wolley_push_week_never_woke_users{wolley_job=\"report-week\"} 4\n"));
        assert!(!text.contains(" 0.5\n"));
        let text = apply(&text, &run("report-week", ExitCode::Success, 200));
        assert!(text.contains("wolley_push_week_never_woke_users{wolley_job=\"report-week\"} 4\n"), "{text}");
    }

    #[test]
    fn upload_coverage_holds_the_last_computed_week_only() {
        let text = apply("", &run("stats-weekly", ExitCode::Success, 100));
        let mut exposition = Exposition::parse(&text);
        exposition.replace_upload_coverage("2026-W47", Some(0.5));
        exposition.replace_upload_coverage("2026-W48", Some(0.6));
        let text = exposition.render();
        let line =
            "wolley_push_week_upload_coverage_ratio{wolley_job=\"stats-weekly\",week=\"2026-W48\"} 0.6\n";
        assert!(text.contains(line), "{text}");
        assert!(text.contains("# TYPE wolley_push_week_upload_coverage_ratio gauge\n"));
        assert!(!text.contains("2026-W47"));
        let mut exposition = Exposition::parse(&text);
        exposition.replace_upload_coverage("2026-W49", None);
        assert!(!exposition.render().contains("upload_coverage"));
    }

    #[test]
    fn lines_that_are_not_samples_are_rejected() {
        for line in
            ["no_value", "bad name 1", "m{wolley_job=\"x\" 1", "m{job=x} 1", "m 1 1700000000000", "m abc"]
        {
            assert_eq!(parse_sample(line), None, "{line}");
        }
        assert_eq!(parse_sample("m 1").unwrap().1.value, "1");
    }
}
