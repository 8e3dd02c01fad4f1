//! Transient answers: retried with back-off, `Retry-After` honoured, 429 slows the whole run.

use std::time::Duration;

use fake_fcm::Reply;

use crate::harness::{RunToEnd, World};

const TOKEN: &str = "retry-token:APA91bF3x9QmZ1kTq7Lr2vYcN8sW4eJ6";

fn one_token_world() -> (World, std::path::PathBuf) {
    let world = World::new();
    let tokens = world.file("tokens.txt", &format!("{TOKEN}\n"));
    (world, tokens)
}

#[test]
fn a_503_then_200_is_retried_and_counted_sent() {
    let (world, tokens) = one_token_world();
    world.fcm.script(TOKEN, vec![Reply::unavailable(None)]);
    let summary = world
        .cmd()
        .args(["save-location", "--format", "json", "--tokens-file"])
        .arg(&tokens)
        .ran()
        .exits(0)
        .summary();
    assert_eq!(world.fcm.total_requests(), 2);
    assert_eq!((summary["sent"].as_u64(), summary["failed"].as_u64()), (Some(1), Some(0)));
}

#[test]
fn a_500_is_retried_too() {
    let (world, tokens) = one_token_world();
    world.fcm.script(TOKEN, vec![Reply::internal(), Reply::internal()]);
    world.cmd().args(["save-location", "--tokens-file"]).arg(&tokens).ran().exits(0);
    assert_eq!(world.fcm.deliveries(TOKEN), 1);
}

#[test]
fn retry_after_is_honoured() {
    let (world, tokens) = one_token_world();
    world.fcm.script(TOKEN, vec![Reply::unavailable(Some(1))]);
    world.cmd().args(["save-location", "--tokens-file"]).arg(&tokens).ran().exits(0);
    let requests = world.fcm.requests();
    assert_eq!(requests.len(), 2);
    let gap = requests[1].at - requests[0].at;
    assert!(gap >= Duration::from_secs(1), "retried after {gap:?}, before Retry-After");
}

#[test]
fn a_persistent_503_ends_as_failed_with_exit_3() {
    let (world, tokens) = one_token_world();
    world.fcm.script(TOKEN, vec![Reply::unavailable(None); 10]);
    let output = world
        .cmd()
        .args(["save-location", "--format", "json", "--max-attempts", "3", "--tokens-file"])
        .arg(&tokens)
        .ran()
        .exits(3);
    assert_eq!(world.fcm.total_requests(), 3);
    assert_eq!(output.summary()["failed"], 1);
}

#[test]
fn a_429_pauses_every_request_until_retry_after() {
    // 200 messages, 4 at a time, 20 ms each: without a run-wide pause the others would keep
    // going through the whole second the 429's Retry-After asks for.
    let world =
        World::with_options(fake_fcm::Options { latency: Duration::from_millis(20), ..Default::default() });
    let tokens: String = (0..200).map(|i| format!("quota-token-{i}:APA91bXYZ\n")).collect();
    let tokens = world.file("tokens.txt", &tokens);
    world.fcm.script_next(vec![Reply::quota_exceeded(Some(1))]);
    world.cmd().args(["save-location", "--concurrency", "4", "--tokens-file"]).arg(&tokens).ran().exits(0);
    let requests = world.fcm.requests();
    assert_eq!(requests.len(), 201, "one retry, no storm");
    let quota_hit = requests.iter().find(|r| r.status == 429).expect("the 429").at;
    // Requests already on their way when the 429 came back may land just after it; then silence.
    let during_pause = requests
        .iter()
        .filter(|r| {
            r.at > quota_hit + Duration::from_millis(200) && r.at < quota_hit + Duration::from_secs(1)
        })
        .count();
    assert_eq!(during_pause, 0, "requests kept coming during the pause");
    assert_eq!(world.fcm.total_deliveries(), 200);
}

#[test]
fn fcm_unreachable_exits_75() {
    let world = World::new();
    let tokens = world.file("tokens.txt", &format!("{TOKEN}\n"));
    // The token endpoint answers (the key's token_uri), but the send endpoint is a closed port.
    world
        .cmd()
        .args([
            "save-location",
            "--max-attempts",
            "2",
            "--fcm-endpoint",
            "http://127.0.0.1:9",
            "--tokens-file",
        ])
        .arg(&tokens)
        .ran()
        .exits(75);
}
