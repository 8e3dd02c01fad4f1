//! A run's outcome as people and scripts see it: the counts, the summary (human or JSON) and
//! the exit code they imply.

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::counts::Counts;
use crate::exit::ExitCode;
use crate::mode::Mode;
use crate::output::{Format, Output};

/// The summary of one run.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Summary {
    pub job: &'static str,
    /// The slot: half-hour, ISO week, or `-`.
    pub slot: String,
    /// `send`, `dry-run` or `print`.
    pub mode: Mode,
    /// The run's counts, flattened into the summary's own fields (`sent`, `pruned`, …).
    #[serde(flatten)]
    pub counts: Counts,
    /// Wall time in seconds.
    pub duration_secs: f64,
    /// Messages answered per second.
    pub rate_per_sec: f64,
    /// The pace a spread run (`path-daily --spread`) set itself: messages per second, before
    /// retries and pauses. Absent when the run sent as fast as `--rate` allows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pace_per_sec: Option<f64>,
    /// The run was stopped by SIGTERM or SIGINT before it finished.
    pub interrupted: bool,
    /// For a journaled slot: the users a rerun of the slot would send (its retry set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_set: Option<u64>,
    pub exit_code: u8,
}

impl Summary {
    /// Builds the summary, deriving the exit code from the counts.
    pub(crate) fn new(
        job: &'static str,
        slot: String,
        mode: Mode,
        counts: Counts,
        elapsed: Duration,
    ) -> Self {
        let secs = elapsed.as_secs_f64();
        let answered = counts.sent + counts.pruned + counts.failed;
        let rate = if secs > 0.0 { answered as f64 / secs } else { 0.0 };
        Summary {
            job,
            slot,
            mode,
            counts,
            duration_secs: (secs * 1000.0).round() / 1000.0,
            rate_per_sec: rate.round(),
            pace_per_sec: None,
            interrupted: false,
            retry_set: None,
            exit_code: exit_code_for(&counts, false).code(),
        }
    }

    /// Marks the run as stopped by a signal before it finished (exit 3: a rerun resumes).
    pub(crate) fn interrupted(mut self) -> Self {
        self.interrupted = true;
        self.exit_code = self.exit_code().code();
        self
    }

    /// Adds the pace a spread run set itself (rounded to a hundredth: a slot of few users goes
    /// slower than one message per second).
    pub(crate) fn with_pace(mut self, pace: Option<f64>) -> Self {
        self.pace_per_sec = pace.map(|pace| (pace * 100.0).round() / 100.0);
        self
    }

    /// Adds the slot's retry set after the run.
    pub(crate) fn with_retry_set(mut self, users: u64) -> Self {
        self.retry_set = Some(users);
        self
    }

    /// The exit code the counts imply.
    pub(crate) fn exit_code(&self) -> ExitCode {
        exit_code_for(&self.counts, self.interrupted)
    }

    /// The summary in `format`, ending with a newline.
    pub(crate) fn render(&self, format: Format) -> String {
        match format {
            Format::Json => serde_json::to_string(self).expect("summaries serialise") + "\n",
            Format::Human => self.human(),
        }
    }

    fn human(&self) -> String {
        let c = &self.counts;
        let mut out = String::new();
        let _ = writeln!(out, "{} {} ({})", self.job, self.slot, self.mode.as_str());
        let sent = self.mode.accepted_label();
        for (name, value) in [
            ("targeted", c.targeted),
            (sent, c.sent),
            ("pruned", c.pruned),
            ("failed", c.failed),
            ("skipped", c.skipped),
            ("expired", c.expired),
        ] {
            let _ = writeln!(out, "  {name:<9}{value:>10}");
        }
        // Of `targeted`: how far the devices have moved to installation IDs.
        let _ = writeln!(out, "  {:<9}{:>10}", "as fid", c.targets.fid);
        if let Some(users) = self.retry_set {
            let _ = writeln!(out, "  {:<9}{:>10}", "retry set", users);
        }
        let _ = writeln!(out, "  {:<9}{:>10.3} s", "duration", self.duration_secs);
        let _ = writeln!(out, "  {:<9}{:>10} msg/s", "rate", self.rate_per_sec);
        if let Some(pace) = self.pace_per_sec {
            let _ = writeln!(out, "  {:<9}{:>10} msg/s (spread over the window)", "pace", pace);
        }
        out
    }
}

/// Prints `summary` on stdout (stderr when stdout carries `--print` bodies), or nothing after
/// a successful run with `-q`, or once stdout's reader has gone: the run's outcome (its exit
/// code, journal and metrics) never depends on who reads its output.
///
/// # Errors
/// When the output cannot be written.
pub(crate) fn emit(summary: &Summary, output: &Output, to_stderr: bool) -> std::io::Result<()> {
    if output.quiet && summary.exit_code() == ExitCode::Success {
        return Ok(());
    }
    let text = summary.render(output.format);
    if to_stderr {
        // The bodies' reader has gone (`--print | head -1`): what it stopped reading needs no
        // account of it.
        if crate::output::stdout_gone() {
            return Ok(());
        }
        std::io::stderr().write_all(text.as_bytes())
    } else {
        crate::output::print(&text).map(drop)
    }
}

/// 3 when anything failed or expired, or the run was interrupted; 75 when FCM never answered.
fn exit_code_for(counts: &Counts, interrupted: bool) -> ExitCode {
    let nothing_answered = counts.sent + counts.pruned == 0 && counts.failed == counts.unreachable;
    if counts.unreachable > 0 && nothing_answered {
        ExitCode::TempFail
    } else if counts.failed > 0 || counts.expired > 0 || interrupted {
        ExitCode::Partial
    } else {
        ExitCode::Success
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clean_run_exits_zero() {
        let counts = Counts { targeted: 2, sent: 1, pruned: 1, ..Counts::default() };
        assert_eq!(exit_code_for(&counts, false), ExitCode::Success);
    }

    #[test]
    fn failures_or_expired_messages_make_a_partial_run() {
        assert_eq!(
            exit_code_for(&Counts { sent: 5, failed: 1, ..Counts::default() }, false),
            ExitCode::Partial
        );
        assert_eq!(
            exit_code_for(&Counts { sent: 5, expired: 1, ..Counts::default() }, false),
            ExitCode::Partial
        );
    }

    #[test]
    fn a_run_where_fcm_never_answered_is_temporary() {
        let counts = Counts { targeted: 3, failed: 3, unreachable: 3, ..Counts::default() };
        assert_eq!(exit_code_for(&counts, false), ExitCode::TempFail);
    }

    #[test]
    fn the_json_summary_is_one_object_with_every_count() {
        let summary =
            Summary::new("save-location", "slot".into(), Mode::Send, Counts::default(), Duration::ZERO);
        let value: serde_json::Value = serde_json::from_str(&summary.render(Format::Json)).unwrap();
        for key in [
            "job",
            "slot",
            "targeted",
            "sent",
            "pruned",
            "failed",
            "skipped",
            "expired",
            "targets",
            "duration_secs",
            "rate_per_sec",
            "exit_code",
        ] {
            assert!(value.get(key).is_some(), "{key}");
        }
    }
}
