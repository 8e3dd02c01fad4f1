//! Numeric flags out of their range stop the run at once with exit 2 and one line naming the
//! flag, before the database, the token endpoint or FCM is contacted.

use crate::harness::{RunToEnd, World};

/// Runs `save-location` with `args` in a world whose database URL points at a closed port:
/// had the run contacted the database it would exit 75, not 2.
fn assert_refused_at_once(args: &[&str], flag: &str) {
    let world = World::new();
    let output = world
        .cmd()
        .env("WOLLEY_DATABASE_URL", "mysql://wolley:pw@127.0.0.1:1/wolley")
        .arg("save-location")
        .args(args)
        .ran();
    assert_eq!(output.code(), 2, "{args:?}: {}", output.stderr());
    let text = output.stderr();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{args:?}: one line, got:\n{text}");
    assert!(lines[0].starts_with(&format!("wolley-push: error: {flag}: ")), "{args:?}: {}", lines[0]);
    assert_eq!((world.fcm.oauth_requests(), world.fcm.total_requests()), (0, 0), "{args:?}");
}

#[test]
fn concurrency_is_refused_outside_1_to_20000() {
    assert_refused_at_once(&["--concurrency", "0"], "--concurrency");
    assert_refused_at_once(&["--concurrency", "20001"], "--concurrency");
}

#[test]
fn rate_is_refused_above_100000() {
    assert_refused_at_once(&["--rate", "100001"], "--rate");
}

#[test]
fn max_attempts_is_refused_outside_1_to_20() {
    assert_refused_at_once(&["--max-attempts", "0"], "--max-attempts");
    assert_refused_at_once(&["--max-attempts", "21"], "--max-attempts");
}

#[test]
fn a_zero_backoff_is_refused() {
    assert_refused_at_once(&["--backoff", "0s"], "--backoff");
    assert_refused_at_once(&["--quota-backoff", "0s"], "--quota-backoff");
}

#[test]
fn request_timeout_is_refused_at_zero_and_above_10_minutes() {
    assert_refused_at_once(&["--request-timeout", "0s"], "--request-timeout");
    assert_refused_at_once(&["--request-timeout", "11m"], "--request-timeout");
}

#[test]
fn deadline_is_refused_at_zero_and_above_a_week() {
    assert_refused_at_once(&["--deadline", "0s"], "--deadline");
    assert_refused_at_once(&["--deadline", "8days"], "--deadline");
}

#[test]
fn ttl_is_refused_under_a_second_and_above_28_days() {
    assert_refused_at_once(&["--ttl", "0s"], "--ttl");
    assert_refused_at_once(&["--ttl", "2419201s"], "--ttl");
}

#[test]
fn an_environment_variable_out_of_range_is_refused_like_its_flag() {
    let world = World::new();
    world
        .cmd()
        .env("WOLLEY_CONCURRENCY", "20001")
        .args(["save-location", "--print"])
        .ran()
        .exits(2)
        .stderr_contains("--concurrency: 20001 is out of range");
}

#[test]
fn the_ends_of_every_range_are_accepted() {
    let world = World::new();
    let tokens = world.file("tokens.txt", "some-token:APA91bF3x9QmZ1kTq7Lr2vYcN8sW4eJ6");
    world
        .cmd()
        .args([
            "--concurrency",
            "20000",
            "--rate",
            "100000",
            "--max-attempts",
            "20",
            "--request-timeout",
            "10m",
        ])
        .args(["save-location", "--ttl", "28days", "--deadline", "7days", "--tokens-file"])
        .arg(&tokens)
        .ran()
        .exits(0);
    assert_eq!(world.fcm.total_deliveries(), 1);
}
