//! `--ping-url`: Healthchecks-style pings around every run, best effort.

use std::process::Output;

use fake_fcm::Reply;

use crate::harness::{code, stderr, World};

/// Stands in for a Healthchecks UUID: a secret that must never be printed.
const CHECK: &str = "0f6a1b2c-3d4e-4f50-8a9b-c0d1e2f3a4b5";

fn world_with_users() -> World {
    let world = World::new().with_db();
    world.db().add_users(&[(1, Some("alive-token:APA91bAlive")), (2, Some("other-token:APA91bOther"))]);
    world
}

fn run(world: &World, args: &[&str]) -> Output {
    world.cmd().args(args).args(["--ping-url", &world.fcm.ping_url(CHECK)]).output().unwrap()
}

fn paths(suffixes: &[&str]) -> Vec<String> {
    suffixes.iter().map(|suffix| format!("/ping/{CHECK}{suffix}")).collect()
}

#[test]
fn a_successful_run_pings_start_then_success() {
    let world = world_with_users();
    let output = run(&world, &["save-location", "-q"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(world.fcm.pings(), paths(&["/start", ""]));
}

#[test]
fn a_failed_run_pings_start_then_its_exit_code() {
    let world = world_with_users();
    let output = run(&world, &["save-location", "-q", "--database-url", "mysql://root@127.0.0.1:1/wolley"]);
    assert_eq!(code(&output), 75, "{}", stderr(&output));
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
    let output = run(&world, &["save-location", "-q", "--max-attempts", "1"]);
    assert_eq!(code(&output), 3, "{}", stderr(&output));
    assert_eq!(world.fcm.pings(), paths(&["/start", "/3"]));
    let end = world.fcm.ping_requests().pop().unwrap();
    assert!(end.body.contains("sent 1") && end.body.contains("failed 1"), "{}", end.body);
}

#[test]
fn a_run_with_nothing_to_do_pings_success() {
    let world = world_with_users();
    assert_eq!(code(&world.cmd().args(["save-location", "-q"]).output().unwrap()), 0);
    let output = run(&world, &["save-location", "-q"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(world.fcm.pings(), paths(&["/start", ""]));
    assert!(world.fcm.ping_requests()[1].body.contains("already done"));
}

#[test]
fn start_and_end_of_one_run_share_a_run_id() {
    let world = world_with_users();
    assert_eq!(code(&run(&world, &["save-location", "-q"])), 0);
    let rid =
        |query: &Option<String>| query.as_deref().and_then(|q| q.strip_prefix("rid=")).map(str::to_owned);
    let pings = world.fcm.ping_requests();
    assert!(rid(&pings[0].query).is_some(), "{:?}", pings[0].query);
    assert_eq!(rid(&pings[0].query), rid(&pings[1].query));
}

#[test]
fn an_unreachable_ping_url_does_not_change_the_exit_code() {
    let world = world_with_users();
    let output = world
        .cmd()
        .args(["save-location", "-q", "--ping-url", &format!("http://127.0.0.1:1/ping/{CHECK}")])
        .output()
        .unwrap();
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(stderr(&output).contains("health ping to 127.0.0.1:1 failed"), "{}", stderr(&output));
    assert_eq!(world.fcm.total_deliveries(), 2);
}

#[test]
fn an_unreachable_ping_url_does_not_change_a_failure_either() {
    let world = world_with_users();
    world.fcm.script("other-token:APA91bOther", vec![Reply::unavailable(None)]);
    let output = world
        .cmd()
        .args(["save-location", "-q", "--max-attempts", "1", "--ping-url", "http://127.0.0.1:1/ping/x"])
        .output()
        .unwrap();
    assert_eq!(code(&output), 3, "{}", stderr(&output));
}

#[test]
fn a_ping_answered_with_a_server_error_is_retried_once_and_only_warned_about() {
    let world = world_with_users();
    world.fcm.answer_pings_with(Some(500));
    let output = run(&world, &["save-location"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(world.fcm.pings(), paths(&["/start", "/start", "", ""]));
    assert!(stderr(&output).contains("answered HTTP 500"), "{}", stderr(&output));
}

#[test]
fn the_ping_url_secret_never_appears_in_output() {
    let world = world_with_users();
    world.fcm.answer_pings_with(Some(404));
    let output = run(&world, &["save-location", "-vv"]);
    let everything =
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert_eq!(code(&output), 0, "{everything}");
    assert!(everything.contains("health ping to 127.0.0.1:"), "{everything}");
    assert!(!everything.contains(CHECK), "{everything}");
}

#[test]
fn every_job_is_pinged_but_doctor_is_not() {
    let world = world_with_users();
    assert_eq!(code(&run(&world, &["migrate"])), 0);
    assert_eq!(world.fcm.pings(), paths(&["/start", ""]));
    let _ = run(&world, &["doctor"]);
    assert_eq!(world.fcm.pings().len(), 2, "doctor sent pings: {:?}", world.fcm.pings());
}
