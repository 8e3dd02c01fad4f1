//! `report week`: a fixture week whose answer is known by construction, read back as JSON, as
//! the human summary, as the metrics file, and as a page rendered by a real browser.
//!
//! The week (2026-W48, Asia/Seoul): every `save-location` slot sent 5 s after its half-hour,
//! except Tuesday 12:00 (no journal row) and Tuesday 14:00 (two shards, started 14:00:20 and
//! 14:00:03). Users 1–5 have points on Tuesday, 4 and 5 on Wednesday; window 10 minutes:
//! - Tue 10:00: users 1, 2, 3 have a point 2–3 minutes after the push, user 1 one 8 minutes
//!   before it: wake 3/5, baseline 1/5, lift +0.4;
//! - Tue 11:00: nobody after the push, user 3 before it: lift −0.2;
//! - Tue 12:00 (not sent): users 1 and 2 have points at 12:02, which count for nothing;
//! - Tue 14:00 (sharded): users 1 and 2 at 14:00:10, after the earliest shard's start (14:00:03)
//!   but before the other's (14:00:20): wake 2/5, baseline 0;
//! - Wed 08:00: user 4 at 08:03 of the 2 active users: wake 0.5;
//! - user 5 only ever has points at :15 (no window): the one user who never woke;
//! - user 6 has one point, Sunday 23:55 before the week (in Monday 00:00's window before the
//!   push), and is active on no day of the week: counted nowhere.

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use crate::harness::{Ran, RunToEnd, World};

const WEEK: &str = "2026-W48";
const TUE_10: &str = "2026-11-24T10:00:00+09:00";
const TUE_11: &str = "2026-11-24T11:00:00+09:00";
const TUE_12: &str = "2026-11-24T12:00:00+09:00";
const TUE_14: &str = "2026-11-24T14:00:00+09:00";
const WED_08: &str = "2026-11-25T08:00:00+09:00";

/// A database holding the fixture week.
pub(crate) fn fixture() -> World {
    let world = World::new().with_db();
    let db = world.db();
    db.add_users(&(1..=6).map(|id| (id, None)).collect::<Vec<_>>());
    // Every slot but 72 (Tue 12:00) and 76 (Tue 14:00, sharded below), started 5 s late.
    db.exec(
        "INSERT INTO wolley_push_run (job, slot, shard, status, targeted, sent, pruned, host, pid, started_at, \
           updated_at) \
         SELECT 'save-location', DATE_FORMAT('2026-11-23' + INTERVAL seq * 30 MINUTE, '%Y-%m-%dT%H:%i:00+09:00'), \
           '0/1', 'done', 5, 4, 1, 'test', 1, \
           '2026-11-23' + INTERVAL seq * 30 MINUTE - INTERVAL 9 HOUR + INTERVAL 5 SECOND, UTC_TIMESTAMP(6) \
         FROM seq_0_to_335 WHERE seq NOT IN (72, 76)",
    );
    let journal =
        "INSERT INTO wolley_push_run (job, slot, shard, status, targeted, sent, pruned, host, pid, \
                   started_at, updated_at) VALUES (?, ?, ?, 'done', ?, ?, 0, 'test', 1, ?, UTC_TIMESTAMP(6))";
    db.exec_with(journal, ("save-location", TUE_14, "0/2", 2, 2, "2026-11-24 05:00:20"));
    db.exec_with(journal, ("save-location", TUE_14, "1/2", 3, 3, "2026-11-24 05:00:03"));
    db.exec_with(journal, ("path-daily", "2026-W49", "0/1", 5, 5, "2026-11-29 15:10:00"));
    let points: &[(i64, &str, &[&str])] = &[
        (1, "2026-11-24", &["09:52:00", "10:02:00", "12:02:00", "14:00:10"]),
        (2, "2026-11-24", &["10:02:00", "12:02:00", "14:00:10"]),
        (3, "2026-11-24", &["10:03:00", "10:55:00"]),
        (4, "2026-11-24", &["10:15:00"]),
        (4, "2026-11-25", &["08:03:00"]),
        (5, "2026-11-24", &["10:15:00"]),
        (5, "2026-11-25", &["08:15:00"]),
        (6, "2026-11-22", &["23:55:00"]),
    ];
    for (id, (user, date, times)) in points.iter().enumerate() {
        let day = 100 + id as i64;
        // Every day uploaded 10 minutes after path-daily's push (2026-11-30 00:10).
        db.exec_with(
            "INSERT INTO dailypath (dailypath_id, date, path_type, date_created, last_updated, user_id) \
             VALUES (?, ?, 'daily', '2026-11-30 00:20:00', '2026-11-30 00:20:00', ?)",
            (day, *date, *user),
        );
        for time in *times {
            db.exec_with(
                "INSERT INTO gpslog (latitude, longitude, timestamp, daily_path_id) VALUES (37.5, 127.0, ?, ?)",
                (format!("{date} {time}"), day),
            );
        }
    }
    world
}

fn report(world: &World, args: &[&str]) -> Ran {
    world.cmd().args(["report", "week", "--week", WEEK]).args(args).ran().exits(0)
}

fn json_report(world: &World) -> Value {
    report(world, &["--format", "json"]).json()
}

fn slot<'a>(report: &'a Value, label: &str) -> &'a Value {
    let slots = report["slots"].as_array().expect("slots");
    slots.iter().find(|s| s["slot"] == label).unwrap_or_else(|| panic!("no slot {label}"))
}

/// The fields of a slot a test compares.
fn wake(slot: &Value) -> Value {
    json!([
        slot["active"],
        slot["woke"],
        slot["baseline"],
        slot["wake_rate"],
        slot["baseline_rate"],
        slot["lift"]
    ])
}

#[test]
fn report_week_counts_wake_rate_baseline_and_lift_per_slot() {
    let report = json_report(&fixture());
    assert_eq!(wake(slot(&report, TUE_10)), json!([5, 3, 1, 0.6, 0.2, 0.4]));
    assert_eq!(wake(slot(&report, TUE_11)), json!([5, 0, 1, 0.0, 0.2, -0.2]));
    assert_eq!(wake(slot(&report, WED_08)), json!([2, 1, 0, 0.5, 0.0, 0.5]));
    assert_eq!(wake(slot(&report, "2026-11-23T00:00:00+09:00")), json!([0, 0, 0, null, null, null]));
    assert_eq!(report["active_per_day"], json!([0, 5, 2, 0, 0, 0, 0]));
    assert_eq!(report["slots"].as_array().unwrap().len(), 336);
}

#[test]
fn report_week_times_a_sharded_slot_from_its_earliest_shard() {
    let report = json_report(&fixture());
    let sharded = slot(&report, TUE_14);
    assert_eq!(wake(sharded), json!([5, 2, 0, 0.4, 0.0, 0.4]));
    assert_eq!(sharded["start"], "2026-11-24T14:00:03+09:00");
    assert_eq!((&sharded["shards"], &sharded["sent"]), (&json!(2), &json!(5)));
}

#[test]
fn report_week_lists_a_slot_without_a_journal_row_as_not_sent() {
    let report = json_report(&fixture());
    assert_eq!(report["slots_not_sent"], json!([TUE_12]));
    assert_eq!((&report["slots_sent"], &report["slots_total"]), (&json!(335), &json!(336)));
    let missing = slot(&report, TUE_12);
    assert_eq!(
        (&missing["status"], &missing["start"], &missing["wake_rate"]),
        (&json!("not sent"), &json!(null), &json!(null))
    );
}

#[test]
fn report_week_names_the_active_users_who_never_woke() {
    let report = json_report(&fixture());
    assert_eq!((&report["never_woke"], &report["never_woke_ids"]), (&json!(1), &json!([5])));
    assert_eq!(report["active_users"], 5);
}

#[test]
fn report_week_summarises_medians_worsts_deliveries_and_the_weekly_jobs() {
    let report = json_report(&fixture());
    assert_eq!((&report["wake_rate_median"], &report["lift_median"]), (&json!(0.0), &json!(0.0)));
    assert_eq!(report["lift_worst"], json!({"slot": TUE_11, "value": -0.2}));
    assert_eq!(
        report["deliveries"],
        json!({"targeted": 1675, "sent": 1341, "pruned": 334, "failed": 0, "expired": 0})
    );
    assert_eq!(report["path_daily"]["start"], "2026-11-30T00:10:00+09:00");
    assert_eq!(report["badge_notification"]["status"], "not sent");
    // Users 1 to 5 uploaded a day of the week at +10 min; user 6 only the Sunday before it.
    assert_eq!(
        report["uploads"],
        json!({ "since": "2026-11-30T00:10:00+09:00", "notified": 5, "uploaded": 5, "coverage": 1.0,
                "arrivals": [{ "from_minutes": 0, "to_minutes": 10, "users": 0 },
                             { "from_minutes": 10, "to_minutes": 20, "users": 5 }] })
    );
}

#[test]
fn report_week_human_output_starts_with_the_summary_lines() {
    let text = report(&fixture(), &[]).stdout_utf8();
    let lines: Vec<&str> = text.lines().take(9).collect();
    assert_eq!(
        lines,
        [
            "week 2026-W48 (Asia/Seoul), wake window 10m",
            "slots: 335 of 336 sent; not sent: 2026-11-24T12:00:00+09:00",
            "wake rate: median 0.0%, worst 0.0% at 2026-11-24T00:00:00+09:00",
            "lift: median +0.0 pts, worst -20.0 pts at 2026-11-24T11:00:00+09:00",
            "never woke: 1 of 5 active users",
            "deliveries: targeted 1675, sent 1341, pruned 334, failed 0, expired 0",
            "path-daily 2026-W49: done (started 2026-11-30T00:10:00+09:00), sent 5, pruned 0, failed 0, expired 0",
            "stats-notify 2026-W48: not sent",
            "uploads: 5 of 5 notified (100.0%) since 2026-11-30T00:10:00+09:00",
        ]
    );
    let tuesday =
        "2026-11-24       5  47/48      0.0%      0.0%  +0.0 pts -20.0 pts      189      46       0";
    assert!(text.lines().any(|line| line == tuesday), "the day table:\n{text}");
}

#[test]
fn report_week_writes_the_weeks_figures_to_the_metrics_file() {
    let world = fixture();
    let metrics = world.file("wolley-push.prom", "");
    report(&world, &["-q", "--metrics-file", metrics.to_str().unwrap()]);
    let text = std::fs::read_to_string(&metrics).unwrap();
    for line in [
        "wolley_push_week_wake_rate_median{wolley_job=\"report-week\"} 0\n",
        "wolley_push_week_wake_lift_median{wolley_job=\"report-week\"} 0\n",
        "wolley_push_week_never_woke_users{wolley_job=\"report-week\"} 1\n",
        "wolley_push_last_run_exit_code{wolley_job=\"report-week\"} 0\n",
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
}

#[test]
fn report_week_writes_nothing_to_the_database() {
    let world = fixture();
    let checksum = |world: &World| {
        world
            .db()
            .query::<(String, Option<i64>)>("CHECKSUM TABLE wolley_push_run, gpslog, dailypath, app_user")
    };
    let before = checksum(&world);
    report(&world, &["--format", "json"]);
    assert_eq!(checksum(&world), before);
}

#[test]
fn report_week_refuses_a_wake_window_longer_than_a_slot() {
    let world = World::new();
    world
        .run(["report", "week", "--wake-window", "31m"])
        .exits(2)
        .stderr_contains("--wake-window: \"31m\" is too long: at most 30m");
}

#[test]
fn report_week_refuses_a_journal_row_whose_shard_is_not_k_of_n() {
    let world = fixture();
    world.db().exec(&format!(
        "UPDATE wolley_push_run SET shard = 'half' WHERE slot = '{TUE_14}' AND shard = '1/2'"
    ));
    world
        .run(["report", "week", "--week", WEEK])
        .exits(78)
        .stderr_contains("wolley_push_run.shard holds 'half', which is not a shard, K/N");
}

// ---- the page, in a real browser ----

/// Headless Chromium on `page`: (stdout, stderr) of `--dump-dom`, and a screenshot's size.
fn chromium(args: &[&str], page: &Path) -> Ran {
    let binary = std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let output = Command::new(&binary)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--enable-logging=stderr", "--v=0"])
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {binary} ({e}): install Debian's chromium (.ci/run does: apt-get install chromium)")
        });
    Ran::from(output)
}

fn screenshot(page: &Path, png: &Path) -> u64 {
    let output =
        chromium(&[&format!("--screenshot={}", png.display()), "--window-size=412,1600"], page).exits(0);
    std::fs::metadata(png).unwrap_or_else(|e| panic!("no screenshot ({e}): {}", output.stderr())).len()
}

fn html_page(world: &World) -> std::path::PathBuf {
    let page = world.file("week.html", "");
    report(world, &["--format", "html", "--output", page.to_str().unwrap()]);
    page
}

#[test]
fn report_week_page_draws_both_charts_in_chromium_without_console_errors() {
    let world = fixture();
    let page = html_page(&world);
    let output = chromium(&["--dump-dom"], &page);
    let dom = output.stdout();
    assert!(dom.contains("<svg id=\"heatmap\""), "no heat map in the DOM");
    assert_eq!(dom.matches("class=\"cell\"").count(), 336, "a 7 × 48 heat map");
    assert!(dom.contains("<svg id=\"deliveries\""), "no delivery chart in the DOM");
    assert!(dom.contains("lift +40.0 pts, wake 60.0% (3 of 5)"), "the cell's title gives the lift");
    let log = output.stderr();
    for error in ["Uncaught", "CONSOLE(", "Failed to load", "ERR_FILE_NOT_FOUND"] {
        assert!(!log.contains(error), "chromium logged {error}:\n{log}");
    }
}

#[test]
fn report_week_page_renders_to_a_screenshot_far_from_blank() {
    let world = fixture();
    let page = html_page(&world);
    let blank = world.file("blank.html", "<!DOCTYPE html><html><body></body></html>");
    let drawn = screenshot(&page, &page.with_extension("png"));
    let empty = screenshot(&blank, &blank.with_extension("png"));
    // A white page compresses to a few kilobytes; the charts and text do not.
    assert!(drawn > 4 * empty, "the page's screenshot is {drawn} bytes, a blank page's {empty}");
}
