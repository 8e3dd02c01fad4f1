//! What goes on the wire: exact request bodies and headers for both message kinds.

use serde_json::Value;

use crate::harness::{bare_cmd, RunToEnd, World};

const GOLDEN_TOKEN: &str = "GOLDEN-TOKEN:APA91bExample";

fn golden(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/golden/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn sent_body(world: &World, job: &str) -> Value {
    let tokens = world.file("tokens.txt", &format!("{GOLDEN_TOKEN}\n"));
    world.cmd().arg(job).arg("--tokens-file").arg(&tokens).ran().exits(0);
    let requests = world.fcm.requests();
    assert_eq!(requests.len(), 1);
    requests[0].body.clone().expect("a JSON body")
}

#[test]
fn save_location_sends_exactly_the_golden_silent_push() {
    let world = World::new();
    assert_eq!(sent_body(&world, "save-location"), golden("save-location"));
}

#[test]
fn path_daily_sends_exactly_the_golden_visible_notification() {
    let world = World::new();
    assert_eq!(sent_body(&world, "path-daily"), golden("path-daily"));
}

/// The `aps` dictionary of the one path-daily request a run with `extra` flags sent.
fn path_daily_aps(extra: &[&str]) -> Value {
    let world = World::new();
    let tokens = world.file("tokens.txt", &format!("{GOLDEN_TOKEN}\n"));
    world.cmd().arg("path-daily").arg("--tokens-file").arg(&tokens).args(extra).ran().exits(0);
    world.fcm.requests()[0].body.as_ref().unwrap()["message"]["apns"]["payload"]["aps"].clone()
}

#[test]
fn the_midnight_path_daily_plays_no_sound() {
    let aps = path_daily_aps(&[]);
    assert!(aps.get("sound").is_none(), "{aps}");
}

#[test]
fn path_daily_with_sound_plays_the_default_sound() {
    assert_eq!(path_daily_aps(&["--sound"])["sound"], "default");
}

#[test]
fn requests_carry_a_bearer_token_and_json_over_http2() {
    let world = World::new();
    sent_body(&world, "save-location");
    let request = &world.fcm.requests()[0];
    assert!(request.authorization.as_deref().is_some_and(|a| a.starts_with("Bearer ya29.")), "{request:?}");
    assert!(
        request.content_type.as_deref().is_some_and(|c| c.starts_with("application/json")),
        "{request:?}"
    );
    assert_eq!(request.http_version, "HTTP/2.0");
    assert!(!request.validate_only);
}

#[test]
fn print_writes_the_golden_bodies_without_credentials_or_network() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.txt");
    std::fs::write(&tokens, format!("{GOLDEN_TOKEN}\n")).unwrap();
    for job in ["save-location", "path-daily"] {
        let printed: Value =
            bare_cmd().arg(job).arg("--print").arg("--tokens-file").arg(&tokens).ran().exits(0).json();
        assert_eq!(printed, golden(job), "{job}");
    }
}

#[test]
fn send_delivers_one_message_to_the_given_token() {
    let world = World::new();
    world.run(["send", "--token", GOLDEN_TOKEN, "--kind", "save-location"]).exits(0);
    assert_eq!(world.fcm.deliveries(GOLDEN_TOKEN), 1);
    assert_eq!(world.fcm.requests()[0].body.as_ref().unwrap(), &golden("save-location"));
}

#[test]
fn send_accepts_a_custom_title_and_body() {
    let world = World::new();
    world.run(["send", "--token", GOLDEN_TOKEN, "--title", "점검", "--body", "테스트 알림"]).exits(0);
    let body = world.fcm.requests()[0].body.clone().unwrap();
    assert_eq!(body["message"]["notification"], serde_json::json!({"title": "점검", "body": "테스트 알림"}));
}

#[test]
fn an_https_endpoint_is_reached_over_http2_when_its_ca_is_trusted() {
    let world = World::with_options(fake_fcm::Options { tls: true, ..Default::default() });
    let ca = world.file("ca.pem", world.fcm.ca_pem().unwrap());
    world.cmd().env("WOLLEY_FCM_CA_FILE", &ca).args(["send", "--token", GOLDEN_TOKEN]).ran().exits(0);
    assert!(world.fcm.endpoint().starts_with("https://"));
    assert_eq!(world.fcm.requests()[0].http_version, "HTTP/2.0");
}

#[test]
fn an_https_endpoint_with_an_untrusted_certificate_is_not_sent_to() {
    let world = World::with_options(fake_fcm::Options { tls: true, ..Default::default() });
    world.run(["send", "--token", GOLDEN_TOKEN, "--max-attempts", "1"]).exits(75);
    assert_eq!(world.fcm.total_requests(), 0);
}

#[test]
fn the_readme_first_command_prints_the_sample_without_an_account_or_a_database() {
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/tokens.txt");
    let output = bare_cmd().args(["save-location", "--print", "--tokens-file", sample]).ran().exits(0);
    let bodies = output.json_lines();
    assert_eq!(bodies.len(), 3, "three distinct valid tokens in the sample");
    assert!(bodies.iter().all(|b| b["message"]["data"]["type"] == "saveLocation"));
    assert!(output.stderr().contains("skipped"), "the summary goes to stderr: {}", output.stderr());
}
