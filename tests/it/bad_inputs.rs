//! Bad inputs: one clear line on stderr and the exit code docs/product.md promises.

use crate::harness::{bare_cmd, Ran, RunToEnd, TestDb, World};

const TOKEN: &str = "some-token:APA91bF3x9QmZ1kTq7Lr2vYcN8sW4eJ6";

fn error_line(output: &Ran) -> String {
    let text = output.stderr();
    let errors: Vec<_> = text.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(errors.len(), 1, "expected one error line, got:\n{text}");
    errors[0].to_owned()
}

#[test]
fn an_unreachable_database_exits_75_without_showing_the_password() {
    let world = World::new();
    let output = world
        .run(["save-location", "--database-url", "mysql://wolley:hunter2-secret@127.0.0.1:1/wolley"])
        .exits(75);
    let line = error_line(&output);
    assert!(line.contains("cannot reach the database") && line.contains("***"), "{line}");
    assert!(!output.stderr().contains("hunter2-secret"));
}

#[test]
fn a_malformed_database_url_exits_78() {
    let output = bare_cmd().args(["save-location", "--database-url", "mysql//wolley:pw@db"]).ran().exits(78);
    assert!(error_line(&output).contains("WOLLEY_DATABASE_URL"));
}

#[test]
fn a_missing_key_file_exits_78_and_names_the_variable() {
    let world = World::new();
    let tokens = world.file("tokens.txt", TOKEN);
    let output = world
        .cmd()
        .env("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/key.json")
        .args(["save-location", "--tokens-file"])
        .arg(&tokens)
        .ran()
        .exits(78);
    let line = error_line(&output);
    assert!(
        line.contains("GOOGLE_APPLICATION_CREDENTIALS") && line.contains("/nonexistent/key.json"),
        "{line}"
    );
}

#[test]
fn no_key_at_all_exits_78_and_says_how_to_configure_one() {
    let world = World::new();
    let tokens = world.file("tokens.txt", TOKEN);
    let output = world
        .cmd()
        .env_remove("GOOGLE_APPLICATION_CREDENTIALS")
        .args(["save-location", "--tokens-file"])
        .arg(&tokens)
        .ran()
        .exits(78);
    assert!(error_line(&output).contains("GOOGLE_APPLICATION_CREDENTIALS"));
}

#[test]
fn a_malformed_key_file_exits_78() {
    let world = World::new();
    let tokens = world.file("tokens.txt", TOKEN);
    let key =
        world.file("key.json", r#"{"type": "authorized_user", "client_id": "x", "refresh_token": "y"}"#);
    let output = world
        .cmd()
        .env("GOOGLE_APPLICATION_CREDENTIALS", &key)
        .args(["save-location", "--tokens-file"])
        .arg(&tokens)
        .ran()
        .exits(78);
    assert!(error_line(&output).contains("not \"service_account\""));
}

#[test]
fn a_key_google_refuses_exits_78() {
    let world = World::new();
    let tokens = world.file("tokens.txt", TOKEN);
    world.fcm.refuse_oauth(true);
    let output = world.cmd().args(["save-location", "--tokens-file"]).arg(&tokens).ran().exits(78);
    assert!(error_line(&output).contains("refused the service-account key"));
    assert_eq!(world.fcm.total_requests(), 0);
}

#[test]
fn a_missing_backend_table_exits_78() {
    let world = World::new();
    let empty = TestDb::empty();
    crate::harness::migrate(&empty);
    let output = world.cmd().env("WOLLEY_DATABASE_URL", empty.url()).arg("save-location").ran().exits(78);
    assert!(error_line(&output).contains("app_user"));
    assert_eq!(world.fcm.total_requests(), 0);
}

#[test]
fn an_unreadable_tokens_file_exits_78_and_names_it() {
    let world = World::new();
    let output = world.run(["save-location", "--tokens-file", "/nonexistent/tokens.txt"]).exits(78);
    assert!(error_line(&output).contains("/nonexistent/tokens.txt"));
}

#[test]
fn a_message_over_4096_bytes_is_refused_before_anything_is_sent() {
    let world = World::new();
    let tokens = world.file("tokens.txt", TOKEN);
    let output = world
        .cmd()
        .args(["path-daily", "--body", &"가".repeat(1500), "--tokens-file"])
        .arg(&tokens)
        .ran()
        .exits(2);
    assert!(error_line(&output).contains("4096"));
    assert_eq!(world.fcm.total_requests(), 0);
}

#[test]
fn a_bad_flag_value_exits_2() {
    let output =
        bare_cmd().args(["save-location", "--print", "--tokens-file", "-", "--ttl", "soon"]).ran().exits(2);
    assert!(error_line(&output).contains("--ttl"));
}
