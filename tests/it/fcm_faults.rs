//! FCM answers that say less than they should: a dead token named only by a field violation,
//! an APNs refusal for one device among many, a message that is too big only once its token is in.

use fake_fcm::Reply;

use crate::harness::{code, numbered_token, stderr, summary, World};

const ALIVE: &str = "alive-token:APA91bF3x9QmZ1kTq7Lr2vYcN8sW4eJ6";
const MALFORMED: &str = "malformed-token:APA91bKx7Vb2Nq9Lm4Rt6Yw1";

#[test]
fn a_token_named_only_by_a_field_violation_is_pruned() {
    let world = World::new().with_db();
    world.db().add_users(&[(1, Some(ALIVE)), (2, Some(MALFORMED))]);
    world.fcm.script(MALFORMED, vec![Reply::invalid_token_field_violation()]);
    let output = world.cmd().args(["save-location", "--format", "json"]).output().unwrap();
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let summary = summary(&output);
    assert_eq!((summary["sent"].as_u64(), summary["pruned"].as_u64()), (Some(1), Some(1)), "{summary}");
    assert_eq!(world.db().token_of(2), None);
    assert_eq!(world.db().token_of(1).as_deref(), Some(ALIVE));
}

#[test]
fn a_field_violation_on_another_field_stops_the_run_and_prunes_nothing() {
    let world = World::new().with_db();
    world.db().add_numbered_users(200);
    world.fcm.script_next(vec![Reply::field_violation("message.android.ttl", "Invalid duration")]);
    let output = world.cmd().args(["save-location", "--concurrency", "1"]).output().unwrap();
    assert_eq!(code(&output), 78, "{}", stderr(&output));
    assert!(stderr(&output).contains("message.android.ttl"), "{}", stderr(&output));
    assert!(world.fcm.total_requests() < 5, "the run went on: {} requests", world.fcm.total_requests());
    assert!(world.db().token_of(1).is_some(), "a payload error must not prune");
}

#[test]
fn third_party_auth_error_fails_only_its_message_and_the_run_goes_on() {
    let world = World::new().with_db();
    world.db().add_numbered_users(1000);
    world.fcm.script(&numbered_token(500), vec![Reply::third_party_auth_error()]);
    let output = world.cmd().args(["save-location", "--format", "json"]).output().unwrap();
    assert_eq!(code(&output), 3, "{}", stderr(&output));
    let summary = summary(&output);
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
    let output = world.cmd().env("GOOGLE_APPLICATION_CREDENTIALS", &key).arg("doctor").output().unwrap();
    assert_eq!(code(&output), 78, "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let fcm = stdout.lines().find(|line| line.contains(" fcm: ")).unwrap_or_else(|| panic!("{stdout}"));
    assert!(fcm.starts_with("FAIL") && fcm.contains("APNs auth key"), "{fcm}");
}
