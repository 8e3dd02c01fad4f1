//! `--ping-url`: Healthchecks-style pings around every run, best effort.

use fake_fcm::Reply;

use crate::harness::{Ran, RunToEnd, World};

/// Stands in for a Healthchecks UUID: a secret that must never be printed.
const CHECK: &str = "0f6a1b2c-3d4e-4f50-8a9b-c0d1e2f3a4b5";

fn world_with_users() -> World {
    let world = World::new().with_db();
    world.db().add_users(&[(1, Some("alive-token:APA91bAlive")), (2, Some("other-token:APA91bOther"))]);
    world
}

fn run(world: &World, args: &[&str]) -> Ran {
    world.cmd().args(args).args(["--ping-url", &world.fcm.ping_url(CHECK)]).ran()
}

fn paths(suffixes: &[&str]) -> Vec<String> {
    suffixes.iter().map(|suffix| format!("/ping/{CHECK}{suffix}")).collect()
}

#[test]
fn a_successful_run_pings_start_then_success() {
    let world = world_with_users();
    run(&world, &["save-location", "-q"]).exits(0);
    assert_eq!(world.fcm.pings(), paths(&["/start", ""]));
}

#[test]
fn a_failed_run_pings_start_then_its_exit_code() {
    let world = world_with_users();
    run(&world, &["save-location", "-q", "--database-url", "mysql://root@127.0.0.1:1/wolley"]).exits(75);
    assert_eq!(world.fcm.pings(), paths(&["/start", "/75"]));
    let end = world.fcm.ping_requests().pop().unwrap();
    assert!(
        end.body.contains("cannot reach the database"),
        "the error goes to the check's log: {}",
        end.body
    );
}

#[test]
fn a_partial_run_pings_exit_code_3_with_its_counts() {
    let world = world_with_users();
    world.fcm.script("other-token:APA91bOther", vec![Reply::unavailable(None)]);
    run(&world, &["save-location", "-q", "--max-attempts", "1"]).exits(3);
    assert_eq!(world.fcm.pings(), paths(&["/start", "/3"]));
    let end = world.fcm.ping_requests().pop().unwrap();
    assert!(end.body.contains("sent 1") && end.body.contains("failed 1"), "{}", end.body);
}

#[test]
fn a_run_with_nothing_to_do_pings_success() {
    let world = world_with_users();
    world.run(["save-location", "-q"]).exits(0);
    run(&world, &["save-location", "-q"]).exits(0);
    assert_eq!(world.fcm.pings(), paths(&["/start", ""]));
    assert!(world.fcm.ping_requests()[1].body.contains("already done"));
}

#[test]
fn start_and_end_of_one_run_share_a_run_id() {
    let world = world_with_users();
    run(&world, &["save-location", "-q"]).exits(0);
    let rid =
        |query: &Option<String>| query.as_deref().and_then(|q| q.strip_prefix("rid=")).map(str::to_owned);
    let pings = world.fcm.ping_requests();
    assert!(rid(&pings[0].query).is_some(), "{:?}", pings[0].query);
    assert_eq!(rid(&pings[0].query), rid(&pings[1].query));
}

#[test]
fn an_unreachable_ping_url_does_not_change_the_exit_code() {
    let world = world_with_users();
    world
        .run(["save-location", "-q", "--ping-url", &format!("http://127.0.0.1:1/ping/{CHECK}")])
        .exits(0)
        .stderr_contains("health ping to 127.0.0.1:1 failed");
    assert_eq!(world.fcm.total_deliveries(), 2);
}

#[test]
fn an_unreachable_ping_url_does_not_change_a_failure_either() {
    let world = world_with_users();
    world.fcm.script("other-token:APA91bOther", vec![Reply::unavailable(None)]);
    world
        .run(["save-location", "-q", "--max-attempts", "1", "--ping-url", "http://127.0.0.1:1/ping/x"])
        .exits(3);
}

#[test]
fn a_ping_answered_with_a_server_error_is_retried_once_and_only_warned_about() {
    let world = world_with_users();
    world.fcm.answer_pings_with(Some(500));
    let output = run(&world, &["save-location"]).exits(0);
    assert_eq!(world.fcm.pings(), paths(&["/start", "/start", "", ""]));
    output.stderr_contains("answered HTTP 500");
}

#[test]
fn the_ping_url_secret_never_appears_in_output() {
    let world = world_with_users();
    world.fcm.answer_pings_with(Some(404));
    let output = run(&world, &["save-location", "-vv"]);
    let everything = format!("{}{}", output.stdout(), output.stderr());
    assert_eq!(output.code(), 0, "{everything}");
    assert!(everything.contains("health ping to 127.0.0.1:"), "{everything}");
    assert!(!everything.contains(CHECK), "{everything}");
}

#[test]
fn every_job_is_pinged_but_doctor_is_not() {
    let world = world_with_users();
    run(&world, &["migrate"]).exits(0);
    assert_eq!(world.fcm.pings(), paths(&["/start", ""]));
    let _ = run(&world, &["doctor"]);
    assert_eq!(world.fcm.pings().len(), 2, "doctor sent pings: {:?}", world.fcm.pings());
}
