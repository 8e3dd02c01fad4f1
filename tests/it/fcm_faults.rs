//! FCM answers that say less than they should: a dead token named only by a field violation,
//! an APNs refusal for one device among many, a message that is too big only once its token is in.

use fake_fcm::Reply;

use crate::harness::{numbered_token, Ran, RunToEnd, World};

const ALIVE: &str = "alive-token:APA91bF3x9QmZ1kTq7Lr2vYcN8sW4eJ6";
const MALFORMED: &str = "malformed-token:APA91bKx7Vb2Nq9Lm4Rt6Yw1";

#[test]
fn a_token_named_only_by_a_field_violation_is_pruned() {
    let world = World::new().with_db();
    world.db().add_users(&[(1, Some(ALIVE)), (2, Some(MALFORMED))]);
    world.fcm.script(MALFORMED, vec![Reply::invalid_token_field_violation()]);
    let summary = world.run(["save-location", "--format", "json"]).exits(0).summary();
    assert_eq!((summary["sent"].as_u64(), summary["pruned"].as_u64()), (Some(1), Some(1)), "{summary}");
    assert_eq!(world.db().token_of(2), None);
    assert_eq!(world.db().token_of(1).as_deref(), Some(ALIVE));
}

#[test]
fn a_field_violation_on_another_field_stops_the_run_and_prunes_nothing() {
    let world = World::new().with_db();
    world.db().add_numbered_users(200);
    world.fcm.script_next(vec![Reply::field_violation("message.android.ttl", "Invalid duration")]);
    world.run(["save-location", "--concurrency", "1"]).exits(78).stderr_contains("message.android.ttl");
    assert!(world.fcm.total_requests() < 5, "the run went on: {} requests", world.fcm.total_requests());
    assert!(world.db().token_of(1).is_some(), "a payload error must not prune");
}

#[test]
fn third_party_auth_error_fails_only_its_message_and_the_run_goes_on() {
    let world = World::new().with_db();
    world.db().add_numbered_users(1000);
    world.fcm.script(&numbered_token(500), vec![Reply::third_party_auth_error()]);
    let summary = world.run(["save-location", "--format", "json"]).exits(3).summary();
    assert_eq!((summary["sent"].as_u64(), summary["failed"].as_u64()), (Some(999), Some(1)), "{summary}");
    assert_eq!(world.fcm.total_deliveries(), 999);
    assert_eq!(world.fcm.deliveries(&numbered_token(500)), 0);
    assert_eq!(world.fcm.total_requests(), 1000, "a THIRD_PARTY_AUTH_ERROR is not retried within the run");
    assert!(world.db().token_of(500).is_some(), "an APNs refusal is not a dead token");
}

#[test]
fn doctor_fails_its_fcm_line_with_the_apns_advice_on_third_party_auth_error() {
    let world = World::new().with_db();
    world.db().add_users(&[(1, Some(ALIVE))]);
    let key = world.file("doctor-key.json", &world.fcm.service_account_json());
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    world.fcm.script_next(vec![Reply::third_party_auth_error()]);
    let stdout =
        world.cmd().env("GOOGLE_APPLICATION_CREDENTIALS", &key).arg("doctor").ran().exits(78).stdout();
    let fcm = stdout.lines().find(|line| line.contains(" fcm: ")).unwrap_or_else(|| panic!("{stdout}"));
    assert!(fcm.starts_with("FAIL") && fcm.contains("APNs auth key"), "{fcm}");
}

/// A token of a real token's length (FCM's are 150 to 200 characters).
fn real_length_token() -> String {
    format!("fcm-token:APA91b{}", "x".repeat(147))
}

/// wolley-push's room for a device token in its size check (src/fcm/message.rs).
const TOKEN_ALLOWANCE: usize = 256;

/// The size FCM counts (the `message` object) of a path-daily message to `token` with a body of
/// `body_len` ASCII bytes, measured with `--print`.
fn message_size(world: &World, token: &str, body_len: usize) -> usize {
    let tokens = world.file("measure.txt", token);
    let body: serde_json::Value = world
        .cmd()
        .args(["path-daily", "--print", "--body", &"b".repeat(body_len), "--tokens-file"])
        .arg(&tokens)
        .ran()
        .exits(0)
        .json();
    serde_json::to_vec(&body["message"]).unwrap().len()
}

/// The longest `--body` that fits FCM's 4096 bytes with a token of `token_len` bytes.
fn longest_body(world: &World, token_len: usize) -> usize {
    let token = "t".repeat(40);
    let without_body_or_token = message_size(world, &token, 0) - token.len();
    4096 - without_body_or_token - token_len
}

fn path_daily(world: &World, tokens: &[&str], body_len: usize) -> Ran {
    let tokens = world.file("tokens.txt", &tokens.join("\n"));
    world
        .cmd()
        .args(["path-daily", "--format", "json", "--body", &"b".repeat(body_len), "--tokens-file"])
        .arg(&tokens)
        .ran()
}

#[test]
fn a_body_fcm_would_refuse_once_the_token_is_in_exits_2_before_anything_is_sent() {
    let world = World::new();
    let token = real_length_token();
    // Without its token this message fits; with it, FCM would refuse it mid-run.
    path_daily(&world, &[&token], longest_body(&world, token.len()) + 1)
        .exits(2)
        .stderr_contains("FCM counts the token");
    assert_eq!((world.fcm.oauth_requests(), world.fcm.total_requests()), (0, 0));
}

#[test]
fn a_body_just_over_the_limit_with_room_for_the_token_exits_2() {
    let world = World::new();
    path_daily(&world, &[&real_length_token()], longest_body(&world, TOKEN_ALLOWANCE) + 1).exits(2);
    assert_eq!(world.fcm.total_requests(), 0);
}

#[test]
fn a_body_just_under_the_limit_is_delivered() {
    let world = World::new();
    let token = real_length_token();
    path_daily(&world, &[&token], longest_body(&world, TOKEN_ALLOWANCE)).exits(0);
    assert_eq!(world.fcm.deliveries(&token), 1);
}

#[test]
fn a_token_too_long_for_the_message_fails_alone_unsent_and_the_run_goes_on() {
    let world = World::new();
    let (token, long_token) = (real_length_token(), format!("fcm-token:APA91b{}", "y".repeat(1000)));
    let summary =
        path_daily(&world, &[&token, &long_token], longest_body(&world, TOKEN_ALLOWANCE)).exits(3).summary();
    assert_eq!((summary["sent"].as_u64(), summary["failed"].as_u64()), (Some(1), Some(1)), "{summary}");
    assert_eq!(world.fcm.deliveries(&token), 1);
    assert_eq!(world.fcm.total_requests(), 1, "the message with the long token was not sent");
}
