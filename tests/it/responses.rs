//! What each FCM answer does: dead tokens pruned (and only they), fatal answers stop the run.

use std::time::Duration;

use fake_fcm::{Options, Reply};

use crate::harness::World;

const ALIVE: &str = "alive-token:APA91bF3x9QmZ1kTq7Lr2vYcN8sW4eJ6";
const UNREGISTERED: &str = "unregistered-token:APA91bGk2Lq8Vn3Xz7Tr";
const MISMATCHED: &str = "mismatched-token:APA91bHq4Tz8Vr2Lx6Nm0W";
const INVALID: &str = "invalid-token:APA91bJw5Ux9Ys3Mz7Op1Xt4Ql0K";

fn world_with_dead_tokens() -> World {
    let world = World::new().with_db();
    world.db().add_users(&[
        (1, Some(ALIVE)),
        (2, Some(UNREGISTERED)),
        (3, Some(MISMATCHED)),
        (4, Some(INVALID)),
    ]);
    world.fcm.script(UNREGISTERED, vec![Reply::unregistered()]);
    world.fcm.script(MISMATCHED, vec![Reply::sender_id_mismatch()]);
    world.fcm.script(INVALID, vec![Reply::invalid_token()]);
    world
}

#[test]
fn dead_tokens_are_pruned_and_live_ones_kept() {
    let world = world_with_dead_tokens();
    let output = world.run(["save-location", "--format", "json"]).exits(0);
    let db = world.db();
    assert_eq!(db.token_of(1).as_deref(), Some(ALIVE));
    assert_eq!((db.token_of(2), db.token_of(3), db.token_of(4)), (None, None, None));
    let summary = output.summary();
    assert_eq!((summary["sent"].as_u64(), summary["pruned"].as_u64()), (Some(1), Some(3)));
}

#[test]
fn a_dead_token_is_not_retried() {
    let world = world_with_dead_tokens();
    world.run(["save-location"]);
    assert_eq!(world.fcm.total_requests(), 4);
}

#[test]
fn a_token_re_registered_during_the_run_is_kept() {
    let world =
        World::with_options(Options { latency: Duration::from_millis(1500), ..Options::default() }).with_db();
    world.db().add_users(&[(1, Some(UNREGISTERED))]);
    world.fcm.script(UNREGISTERED, vec![Reply::unregistered()]);
    let mut child = world.std_cmd().arg("save-location").spawn().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    // The fake records a request once it answers; in-flight shows it on arrival.
    while world.fcm.max_in_flight() == 0 {
        assert!(child.try_wait().unwrap().is_none(), "the run ended before sending");
        assert!(std::time::Instant::now() < deadline, "the request never reached the fake");
        std::thread::sleep(Duration::from_millis(10));
    }
    // The phone registers a new token while FCM is still answering about the old one.
    world
        .db()
        .exec_with("UPDATE app_user SET fcmToken = ? WHERE user_id = 1", ("re-registered-token:APA91bNew",));
    assert!(child.wait().unwrap().success());
    assert_eq!(world.db().token_of(1).as_deref(), Some("re-registered-token:APA91bNew"));
}

#[test]
fn a_dry_run_validates_only_and_prunes_nothing() {
    let world = world_with_dead_tokens();
    let output = world.run(["save-location", "--dry-run", "--format", "json"]).exits(0);
    assert!(world.fcm.requests().iter().all(|r| r.validate_only));
    assert_eq!(world.fcm.total_deliveries(), 0);
    assert_eq!(world.db().token_of(2).as_deref(), Some(UNREGISTERED));
    assert_eq!(output.summary()["mode"], "dry-run");
}

#[test]
fn a_payload_invalid_argument_stops_the_run_with_exit_78() {
    let world = World::new().with_db();
    world.db().add_numbered_users(200);
    world
        .fcm
        .script_next(vec![Reply::invalid_payload("Invalid JSON payload received. Unknown name \"foo\"")]);
    world.run(["save-location", "--concurrency", "1"]).exits(78).stderr_contains("payload");
    assert!(world.fcm.total_requests() < 5, "the run went on: {} requests", world.fcm.total_requests());
    assert!(world.db().token_of(1).is_some(), "a payload error must not prune");
}

#[test]
fn an_access_token_expiring_mid_run_is_refreshed_and_nothing_is_lost() {
    let world = World::new().with_db();
    world.db().add_numbered_users(60);
    world.fcm.expire_access_tokens_after(20);
    world.run(["save-location", "--format", "json", "--concurrency", "4"]).exits(0);
    assert_eq!(world.fcm.total_deliveries(), 60);
    assert_eq!(world.fcm.delivered_tokens().len(), 60);
    assert_eq!(world.fcm.oauth_requests(), 2);
}
