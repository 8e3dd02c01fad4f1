//! FCM answers that say less than they should: a dead token named only by a field violation,
//! an APNs refusal for one device among many, a message that is too big only once its token is in.

use fake_fcm::Reply;

use crate::harness::{code, stderr, summary, World};

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
