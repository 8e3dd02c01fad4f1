//! Run safety: one run per slot, SIGTERM, shards, slots, migrate (faults: `ledger.rs`).

use std::process::Child;
use std::time::Duration;

use fake_fcm::Options;

use crate::harness::{bare_cmd, duplicates, migrate, numbered_token, Ran, RunToEnd, World};

fn slow_world(users: u32, latency_ms: u64) -> World {
    let world =
        World::with_options(Options { latency: Duration::from_millis(latency_ms), ..Options::default() })
            .with_db();
    world.db().add_numbered_users(users);
    world
}

/// (status, checkpoint, sent, expired) of the only journal row of `job`.
fn journal(world: &World, job: &str) -> (String, i64, u64, u64) {
    let rows = world.db().query::<(String, i64, u64, u64)>(&format!(
        "SELECT status, checkpoint_user_id, sent, expired FROM wolley_push_run WHERE job = '{job}'"
    ));
    assert_eq!(rows.len(), 1, "one journal row: {rows:?}");
    rows[0].clone()
}

fn spawn(world: &World, args: &[&str]) -> Child {
    world
        .std_cmd()
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

fn assert_every_user_delivered(world: &World, users: u32) {
    let missing: Vec<u32> = (1..=users).filter(|&u| world.fcm.deliveries(&numbered_token(u)) == 0).collect();
    assert!(
        missing.is_empty(),
        "{} users never reached, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
}

#[test]
fn two_runs_started_together_send_each_message_once() {
    let world = slow_world(60, 200);
    let first = spawn(&world, &["save-location", "--concurrency", "6"]);
    let second = spawn(&world, &["save-location", "--concurrency", "6"]);
    let (first, second) = (Ran::wait(first), Ran::wait(second));
    assert_eq!((first.code(), second.code()), (0, 0), "{}\n{}", first.stderr(), second.stderr());
    let warnings = [&first, &second].iter().filter(|o| o.stderr().contains("holds the lock")).count();
    assert_eq!(warnings, 1, "one run stood aside:\n{}\n{}", first.stderr(), second.stderr());
    assert_eq!(world.fcm.total_deliveries(), 60);
    assert_every_user_delivered(&world, 60);
}

#[test]
fn a_done_slot_is_skipped_on_rerun() {
    let world = slow_world(20, 0);
    world.run(["save-location"]).exits(0);
    world.run(["save-location", "--format", "json"]).exits(0).stderr_contains("already done");
    assert_eq!(world.fcm.total_deliveries(), 20);
    assert_eq!(journal(&world, "save-location").0, "done");
}

#[test]
fn force_sends_a_done_slot_again() {
    let world = slow_world(20, 0);
    world.run(["save-location"]);
    world.run(["save-location", "--force", "--format", "json"]).exits(0);
    assert_eq!(world.fcm.deliveries(&numbered_token(1)), 2);
    assert_eq!(journal(&world, "save-location").2, 20, "the forced run's counts replace the old ones");
}

#[test]
fn sigterm_stops_the_run_as_partial_and_a_rerun_completes_it() {
    let users = 3000;
    let world = slow_world(users, 20);
    let child = spawn(&world, &["save-location", "--concurrency", "20"]);
    assert!(world.fcm.wait_for_deliveries(800, Duration::from_secs(60)), "the run did not get going");
    let killed =
        std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    Ran::wait(child).exits(3);
    let (status, _, sent, _) = journal(&world, "save-location");
    assert_eq!(status, "partial");
    assert!(sent >= 800 && sent < u64::from(users), "sent {sent}");
    world.run(["save-location"]).exits(0);
    assert_every_user_delivered(&world, users);
    assert_eq!(duplicates(&world.fcm, users), 0, "a stopped run records exactly where it stopped");
}

#[test]
fn three_shards_cover_every_user_exactly_once() {
    let users = 300;
    let world = slow_world(users, 10);
    let children: Vec<Child> = ["0/3", "1/3", "2/3"]
        .iter()
        .map(|shard| spawn(&world, &["save-location", "--shard", shard]))
        .collect();
    for child in children {
        Ran::wait(child).exits(0);
    }
    assert_eq!(world.fcm.total_deliveries(), u64::from(users));
    assert_every_user_delivered(&world, users);
    let done =
        world.db().query::<String>("SELECT shard FROM wolley_push_run WHERE status = 'done' ORDER BY shard");
    assert_eq!(done, vec!["0/3", "1/3", "2/3"]);
}

#[test]
fn a_kubernetes_completion_index_picks_the_shard() {
    let world = slow_world(30, 0);
    world.cmd().env("JOB_COMPLETION_INDEX", "1").args(["save-location", "--shards", "3"]).ran().exits(0);
    let delivered = world.fcm.delivered_tokens();
    let expected: Vec<String> = (1..=30).filter(|u| u % 3 == 1).map(numbered_token).collect();
    assert_eq!(delivered.len(), 10);
    assert!(expected.iter().all(|t| delivered.contains(t)));
}

#[test]
fn missing_tables_stop_the_job_with_the_migrate_hint() {
    let world = World::new().with_unmigrated_db();
    world.db().add_numbered_users(3);
    world.run(["save-location"]).exits(78).stderr_contains("wolley-push migrate");
    assert_eq!(world.fcm.total_requests(), 0);
}

#[test]
fn migrate_twice_is_harmless() {
    let world = World::new().with_unmigrated_db();
    world.db().add_numbered_users(3);
    migrate(world.db());
    let again = bare_cmd().arg("migrate").env("WOLLEY_DATABASE_URL", world.db().url()).ran().exits(0);
    assert!(again.stdout().contains("up to date"));
    assert_eq!(world.db().query::<u64>("SELECT COUNT(*) FROM app_user"), vec![3]);
}

#[test]
fn the_slot_flag_names_the_slot_sent_and_journaled() {
    let world = slow_world(1, 0);
    world.run(["save-location", "--slot", "2026-11-30T09:00"]).exits(0);
    let body = world.fcm.requests()[0].body.clone().unwrap();
    assert_eq!(body["message"]["data"]["slot"], "2026-11-30T09:00:00+09:00");
    let slots = world.db().query::<String>("SELECT slot FROM wolley_push_run");
    assert_eq!(slots, vec!["2026-11-30T09:00:00+09:00"]);
}

#[test]
fn a_slot_off_the_half_hour_is_a_usage_error() {
    bare_cmd()
        .args(["save-location", "--print", "--tokens-file", "-", "--slot", "2026-11-30T09:15"])
        .ran()
        .exits(2)
        .stderr_contains(":00 or :30");
}
