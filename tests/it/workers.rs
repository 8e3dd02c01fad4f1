//! How many workers and connections a send uses: as many as its load keeps busy, up to
//! `--concurrency` and one connection per 100 requests in flight.

use std::time::Duration;

use fake_fcm::Options;

use crate::harness::{RunToEnd, World};

/// What a `save-location` run with `args` used for `tokens` tokens answered after 20 ms.
struct Used {
    /// Workers started, from the run's debug log.
    workers: u64,
    /// Connections that carried sends, as the fake counted them.
    connections: u64,
}

fn used(tokens: u32, args: &[&str]) -> Used {
    let world = World::with_options(Options {
        latency: Duration::from_millis(20),
        record_bodies: false,
        ..Options::default()
    });
    let lines: String = (1..=tokens).map(|n| format!("workers-test:APA91b{n:08}\n")).collect();
    let tokens_file = world.file("tokens.txt", &lines);
    let ran = world.cmd().args(["save-location", "-v", "--tokens-file"]).arg(&tokens_file).args(args).ran();
    let stderr = ran.exits(0).stderr();
    let line = stderr.lines().find(|line| line.contains("the engine is done")).expect(&stderr);
    let count = line.split_whitespace().find_map(|field| field.strip_prefix("workers="));
    let workers = count.and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("no worker count in {line}"));
    Used { workers, connections: world.fcm.send_connections() }
}

#[test]
fn a_run_at_full_speed_starts_every_worker_its_concurrency_allows() {
    assert_eq!(used(400, &["--rate", "0", "--concurrency", "20"]).workers, 20);
}

#[test]
fn a_run_at_full_speed_fills_a_connection_per_hundred_requests_in_flight() {
    assert_eq!(used(3000, &["--rate", "0", "--concurrency", "300"]).connections, 3);
}

#[test]
fn a_light_load_rides_one_connection() {
    // A few requests in flight fit the first connection: spreading them over the 15 a default
    // run may open would send each in a write of its own.
    assert_eq!(used(100, &["--rate", "50"]).connections, 1);
}

#[test]
fn a_capped_run_starts_only_the_workers_its_pace_keeps_busy() {
    // 150 a second answered in 20 ms keep a few requests in flight: only FCM stalling for most
    // of a second could make the run need 100 of the 1,500 workers it may start (or one per
    // message, 300).
    let started = used(300, &["--rate", "150"]).workers;
    assert!(started < 100, "{started} workers started for 150 messages a second");
}
