//! How many workers a send starts: as many as its load keeps busy, up to `--concurrency`.

use std::time::Duration;

use fake_fcm::Options;

use crate::harness::{RunToEnd, World};

/// The workers a `save-location` run with `args` started, from its debug log, for `tokens`
/// tokens answered after `latency_ms`.
fn workers_started(tokens: u32, latency_ms: u64, args: &[&str]) -> u64 {
    let world = World::with_options(Options {
        latency: Duration::from_millis(latency_ms),
        record_bodies: false,
        ..Options::default()
    });
    let lines: String = (1..=tokens).map(|n| format!("workers-test:APA91b{n:08}\n")).collect();
    let tokens_file = world.file("tokens.txt", &lines);
    let ran = world.cmd().args(["save-location", "-v", "--tokens-file"]).arg(&tokens_file).args(args).ran();
    let stderr = ran.exits(0).stderr();
    let line = stderr.lines().find(|line| line.contains("the engine is done")).expect(&stderr);
    let count = line.split_whitespace().find_map(|field| field.strip_prefix("workers="));
    count.and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("no worker count in {line}"))
}

#[test]
fn a_run_at_full_speed_starts_every_worker_its_concurrency_allows() {
    assert_eq!(workers_started(400, 20, &["--rate", "0", "--concurrency", "20"]), 20);
}

#[test]
fn a_capped_run_starts_only_the_workers_its_pace_keeps_busy() {
    // 150 a second answered in 20 ms keep a few requests in flight: only FCM stalling for most
    // of a second could make the run need 100 of the 1,500 workers it may start (or one per
    // message, 300).
    let started = workers_started(300, 20, &["--rate", "150"]);
    assert!(started < 100, "{started} workers started for 150 messages a second");
}
