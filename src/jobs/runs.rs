//! `runs`: the run journal as an operator reads it, each job's recent slots newest first.

use std::fmt::Write as _;

use serde::Serialize;

use crate::config::Config;
use crate::counts::SlotCounts;
use crate::db::ledger::{JournalTime, RunRow, RunStatus};
use crate::db::Database;
use crate::error::Result;
use crate::exit::ExitCode;
use crate::ledger::LEASE;
use crate::output::{self, Format};
use crate::shard::Shard;

/// One slot as `runs` shows it.
#[derive(Debug, Serialize)]
struct Slot<'a> {
    job: &'a str,
    slot: &'a str,
    shard: Shard,
    status: RunStatus,
    #[serde(flatten)]
    totals: SlotCounts,
    host: &'a str,
    pid: u32,
    heartbeat_age_secs: Option<f64>,
    /// A `running` row whose heartbeat is older than the lease: its run is gone.
    stale: bool,
    started_at: JournalTime,
    updated_at: JournalTime,
    error: Option<&'a str>,
}

impl<'a> From<&'a RunRow> for Slot<'a> {
    fn from(row: &'a RunRow) -> Self {
        let age = row.heartbeat_age_ms.map(|ms| ms as f64 / 1000.0);
        Slot {
            job: &row.job,
            slot: &row.slot,
            shard: row.shard,
            status: row.status,
            totals: row.totals,
            host: &row.host,
            pid: row.pid,
            heartbeat_age_secs: age,
            stale: row.status == RunStatus::Running && age.is_none_or(|age| age >= LEASE.as_secs_f64()),
            started_at: row.started_at,
            updated_at: row.updated_at,
            error: row.error.as_deref(),
        }
    }
}

/// Prints the journal.
///
/// # Errors
/// Without a database URL, or when the database fails.
pub(super) async fn run(config: &Config, job: Option<&str>, last: u32) -> Result<ExitCode> {
    let rows = super::with_database(config, false, async |db| read(db, job, last).await).await?;
    output::print(&render(&rows, config.output.format))?;
    Ok(ExitCode::Success)
}

async fn read(db: &Database, job: Option<&str>, last: u32) -> Result<Vec<RunRow>> {
    db.check_schema().await?;
    let jobs = match job {
        Some(job) => vec![job.to_owned()],
        None => db.journaled_jobs().await?,
    };
    let mut rows = Vec::new();
    for job in jobs {
        rows.extend(db.recent_runs(&job, last).await?);
    }
    Ok(rows)
}

fn render(rows: &[RunRow], format: Format) -> String {
    let slots: Vec<Slot<'_>> = rows.iter().map(Slot::from).collect();
    match format {
        Format::Json => {
            serde_json::to_string(&serde_json::json!({ "runs": slots })).expect("rows serialise") + "\n"
        }
        Format::Human => table(&slots),
    }
}

/// The human table's columns.
const HEADER: [&str; 12] = [
    "JOB",
    "SLOT",
    "SHARD",
    "STATUS",
    "TARGETED",
    "SENT",
    "PRUNED",
    "FAILED",
    "RETRY",
    "HOST",
    "PID",
    "HEARTBEAT",
];

/// The rows as a table (then each row's error on a line of its own).
fn table(slots: &[Slot<'_>]) -> String {
    if slots.is_empty() {
        return "no runs recorded yet\n".to_owned();
    }
    let lines: Vec<[String; 12]> = slots.iter().map(cells).collect();
    let mut out = aligned(&lines);
    for s in slots.iter().filter(|s| s.error.is_some()) {
        let _ = writeln!(out, "{} {} {}: {}", s.job, s.slot, s.shard, s.error.unwrap_or_default());
    }
    out
}

/// One row's cells, in [`HEADER`]'s order.
fn cells(s: &Slot<'_>) -> [String; 12] {
    let status = if s.stale { format!("{} (stale)", s.status) } else { s.status.to_string() };
    let heartbeat = s.heartbeat_age_secs.map_or_else(|| "-".to_owned(), age);
    let t = &s.totals;
    [
        s.job.to_owned(),
        s.slot.to_owned(),
        s.shard.to_string(),
        status,
        t.targeted.to_string(),
        t.sent.to_string(),
        t.pruned.to_string(),
        t.failed.to_string(),
        t.retrying.to_string(),
        s.host.to_owned(),
        s.pid.to_string(),
        heartbeat,
    ]
}

/// [`HEADER`] and `lines`, each column as wide as its widest cell, the numbers right-aligned.
fn aligned(lines: &[[String; 12]]) -> String {
    let mut widths = HEADER.map(str::len);
    for line in lines {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut push = |cells: &[&str]| {
        let row: Vec<String> = cells
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(i, (cell, width))| match i {
                4..=8 | 10 => format!("{cell:>width$}"),
                _ => format!("{cell:<width$}"),
            })
            .collect();
        let _ = writeln!(out, "{}", row.join("  ").trim_end());
    };
    push(&HEADER);
    for line in lines {
        push(&line.iter().map(String::as_str).collect::<Vec<_>>());
    }
    out
}

fn age(secs: f64) -> String {
    match secs {
        s if s < 60.0 => format!("{s:.1}s ago"),
        s if s < 3600.0 => format!("{:.0}m ago", s / 60.0),
        s if s < 86_400.0 => format!("{:.0}h ago", s / 3600.0),
        s => format!("{:.0}d ago", s / 86_400.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_at_a_glance() {
        assert_eq!(age(0.42), "0.4s ago");
        assert_eq!(age(600.0), "10m ago");
        assert_eq!(age(7200.0), "2h ago");
        assert_eq!(age(3.0 * 86_400.0), "3d ago");
    }
}
