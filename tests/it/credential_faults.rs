//! The service-account key and Google's token endpoint: a failing endpoint is temporary (75), a
//! refused or malformed key is configuration (78), and neither crashes.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::harness::{Ran, RunToEnd, World};

const TOKEN: &str = "some-token:APA91bF3x9QmZ1kTq7Lr2vYcN8sW4eJ6";

fn error_lines(output: &Ran) -> Vec<String> {
    output.stderr().lines().filter(|line| line.contains("error")).map(str::to_owned).collect()
}

#[test]
fn a_failing_token_endpoint_is_retried_then_exits_75_and_sends_nothing() {
    let world = World::new();
    let tokens = world.file("tokens.txt", TOKEN);
    world.fcm.fail_oauth_with(Some(503));
    let output = world.cmd().args(["save-location", "--tokens-file"]).arg(&tokens).ran().exits(75);
    let errors = error_lines(&output);
    assert_eq!(errors.len(), 1, "{}", output.stderr());
    assert!(errors[0].contains("temporarily failing") && errors[0].contains("HTTP 503"), "{}", errors[0]);
    assert!(!errors[0].contains("refused"), "a 503 is not a refused key: {}", errors[0]);
    // One exchange is gcp_auth's 5 tries and our one look at the answer.
    assert!(world.fcm.oauth_requests() >= 12, "only {} token requests", world.fcm.oauth_requests());
    assert_eq!(world.fcm.total_requests(), 0);
}

#[test]
fn a_token_endpoint_that_recovers_within_the_retries_lets_the_run_go_on() {
    let world = World::new();
    let tokens = world.file("tokens.txt", TOKEN);
    world.fcm.fail_oauth_with(Some(503));
    let child = world.std_cmd().args(["save-location", "--tokens-file"]).arg(&tokens).spawn().unwrap();
    // gcp_auth's own tries of the first exchange end after ~0.75 s; the second starts after 1 s more.
    std::thread::sleep(Duration::from_millis(1300));
    world.fcm.fail_oauth_with(None);
    Ran::wait(child).exits(0);
    assert_eq!(world.fcm.deliveries(TOKEN), 1);
    assert!(world.fcm.oauth_requests() > 5, "the first exchange failed and was tried again");
}

#[test]
fn a_key_the_token_endpoint_refuses_exits_78_quoting_its_reason() {
    let world = World::new();
    let tokens = world.file("tokens.txt", TOKEN);
    world.fcm.refuse_oauth(true);
    let output = world.cmd().args(["save-location", "--tokens-file"]).arg(&tokens).ran().exits(78);
    let errors = error_lines(&output);
    assert_eq!(errors.len(), 1, "{}", output.stderr());
    assert!(errors[0].contains("refused the service-account key") && errors[0].contains("invalid_grant"));
}

#[test]
fn doctor_fails_its_oauth_line_with_exit_75_while_the_token_endpoint_fails() {
    let world = World::new().with_db();
    world.db().add_users(&[(1, Some(TOKEN))]);
    let key = world.file("doctor-key.json", &world.fcm.service_account_json());
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    world.fcm.fail_oauth_with(Some(503));
    let output = world.cmd().env("GOOGLE_APPLICATION_CREDENTIALS", &key).arg("doctor").ran();
    let stdout = output.stdout();
    let oauth = stdout.lines().find(|line| line.contains(" oauth: ")).unwrap_or_else(|| panic!("{stdout}"));
    assert!(oauth.starts_with("FAIL") && oauth.contains("temporarily failing"), "{oauth}");
    assert!(stdout.lines().any(|line| line.starts_with("SKIP fcm:")), "{stdout}");
    assert_eq!(output.code(), 75, "{stdout}");
}

/// Values of `token_uri` that once made gcp_auth panic.
const MALFORMED_TOKEN_URIS: [&str; 5] =
    ["", "file:///etc/passwd", "oauth2.googleapis.com/token", "/token", "ftp://oauth2.googleapis.com/token"];

/// The fake's key with another `token_uri`, as a private file.
fn key_with_token_uri(world: &World, token_uri: &str) -> PathBuf {
    let mut key: Value = serde_json::from_str(&world.fcm.service_account_json()).unwrap();
    key["token_uri"] = token_uri.into();
    let path = world.file("key-with-bad-token-uri.json", &key.to_string());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

fn assert_no_panic(output: &Ran) {
    let text = output.stderr();
    assert!(!text.contains("panicked") && !text.contains("internal error"), "{text}");
}

#[test]
fn a_malformed_token_uri_stops_a_job_with_78_naming_the_key_and_the_value() {
    let world = World::new();
    let tokens = world.file("tokens.txt", TOKEN);
    for token_uri in MALFORMED_TOKEN_URIS {
        let key = key_with_token_uri(&world, token_uri);
        let output = world
            .cmd()
            .env("GOOGLE_APPLICATION_CREDENTIALS", &key)
            .args(["save-location", "--tokens-file"])
            .arg(&tokens)
            .ran();
        assert_eq!(output.code(), 78, "{token_uri:?}: {}", output.stderr());
        assert_no_panic(&output);
        let errors = error_lines(&output);
        assert_eq!(errors.len(), 1, "{token_uri:?}: {}", output.stderr());
        let line = &errors[0];
        let named =
            line.contains(&key.display().to_string()) && line.contains(&format!("token_uri {token_uri:?}"));
        assert!(named && line.contains("Firebase console"), "{line}");
    }
    assert_eq!((world.fcm.oauth_requests(), world.fcm.total_requests()), (0, 0));
}

#[test]
fn a_malformed_token_uri_stops_send_with_78() {
    let world = World::new();
    for token_uri in MALFORMED_TOKEN_URIS {
        let key = key_with_token_uri(&world, token_uri);
        let output =
            world.cmd().env("GOOGLE_APPLICATION_CREDENTIALS", &key).args(["send", "--token", TOKEN]).ran();
        assert_eq!(output.code(), 78, "{token_uri:?}: {}", output.stderr());
        assert_no_panic(&output);
    }
    assert_eq!(world.fcm.total_requests(), 0);
}

#[test]
fn doctor_fails_its_key_line_on_a_malformed_token_uri_and_skips_oauth() {
    let world = World::new().with_db();
    world.db().add_users(&[(1, Some(TOKEN))]);
    for token_uri in MALFORMED_TOKEN_URIS {
        let key = key_with_token_uri(&world, token_uri);
        let output = world.cmd().env("GOOGLE_APPLICATION_CREDENTIALS", &key).arg("doctor").ran();
        assert_eq!(output.code(), 78, "{token_uri:?}: {}", output.stderr());
        assert_no_panic(&output);
        let stdout = output.stdout();
        let status = |check: &str| {
            let prefix = format!(" {check}: ");
            let line = stdout.lines().find(|line| line.contains(&prefix));
            line.unwrap_or_else(|| panic!("no {check} line: {stdout}")).to_owned()
        };
        let key_line = status("key");
        assert!(
            key_line.starts_with("FAIL") && key_line.contains(&format!("token_uri {token_uri:?}")),
            "{key_line}"
        );
        assert!(status("oauth").starts_with("SKIP") && status("fcm").starts_with("SKIP"), "{stdout}");
    }
    assert_eq!(world.fcm.oauth_requests(), 0);
}

#[test]
fn a_key_without_a_project_id_and_no_flag_exits_78_naming_the_fix() {
    let world = World::new();
    let tokens = world.file("tokens.txt", TOKEN);
    let mut key: Value = serde_json::from_str(&world.fcm.service_account_json()).unwrap();
    key.as_object_mut().unwrap().remove("project_id");
    let key_path = world.file("no-project.json", &key.to_string());
    let output = world
        .cmd()
        .env("GOOGLE_APPLICATION_CREDENTIALS", &key_path)
        .args(["save-location", "--tokens-file"])
        .arg(&tokens)
        .ran()
        .exits(78);
    let errors = error_lines(&output);
    assert_eq!(errors.len(), 1, "{}", output.stderr());
    assert!(
        errors[0].contains("no-project.json") && errors[0].contains("names no project_id"),
        "{}",
        errors[0]
    );
    assert!(errors[0].contains("--project-id"), "{}", errors[0]);
    assert_eq!(world.fcm.total_requests(), 0);
}

/// Runs `cmd` to its end, or kills it after 20 s: a child that hangs fails the test instead of
/// stalling the suite. Returns what it wrote and whether it ended by itself.
fn run_with_guard(mut cmd: std::process::Command) -> (Ran, bool) {
    use std::process::Stdio;
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut ended = true;
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            ended = false;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (Ran::wait(child), ended)
}

/// A key path that names something other than a key file, as save-location meets it.
fn save_location_with_key(world: &World, key: &std::path::Path) -> (Ran, bool) {
    let tokens = world.file("tokens.txt", TOKEN);
    let mut cmd = world.std_cmd();
    cmd.env("GOOGLE_APPLICATION_CREDENTIALS", key).args(["save-location", "--tokens-file"]).arg(&tokens);
    run_with_guard(cmd)
}

fn assert_refused_at_once(output: Ran, ended: bool, key: &std::path::Path, says: &str) {
    assert!(ended, "still running after 20 s; stderr: {}", output.stderr());
    let output = output.exits(78);
    let errors = error_lines(&output);
    assert_eq!(errors.len(), 1, "{}", output.stderr());
    assert!(errors[0].contains(&key.display().to_string()) && errors[0].contains(says), "{}", errors[0]);
}

fn fifo(world: &World) -> PathBuf {
    let path = world.file("key-fifo", "");
    std::fs::remove_file(&path).unwrap();
    let made = std::process::Command::new("mkfifo").arg(&path).status().unwrap();
    assert!(made.success(), "mkfifo failed");
    path
}

#[test]
fn a_fifo_as_the_key_exits_78_at_once_instead_of_waiting_for_a_writer() {
    let world = World::new();
    let key = fifo(&world);
    let (output, ended) = save_location_with_key(&world, &key);
    assert_refused_at_once(output, ended, &key, "is a named pipe (FIFO), not a regular file");
    assert_eq!(world.fcm.total_requests(), 0);
}

#[test]
fn dev_zero_as_the_key_exits_78_at_once_instead_of_reading_forever() {
    let world = World::new();
    let key = std::path::Path::new("/dev/zero");
    let (output, ended) = save_location_with_key(&world, key);
    assert_refused_at_once(output, ended, key, "is a character device, not a regular file");
}

#[test]
fn a_directory_as_the_key_exits_78_naming_it() {
    let world = World::new();
    let key = world.file("anchor", "").with_file_name("key-dir");
    std::fs::create_dir(&key).unwrap();
    let (output, ended) = save_location_with_key(&world, &key);
    assert_refused_at_once(output, ended, &key, "is a directory, not a regular file");
}

#[test]
fn a_ten_megabyte_key_file_exits_78_as_too_large() {
    let world = World::new();
    let key = world.file("huge-key.json", &" ".repeat(10 << 20));
    let (output, ended) = save_location_with_key(&world, &key);
    assert_refused_at_once(output, ended, &key, "larger than 64 KiB");
}

#[test]
fn doctor_fails_its_key_line_at_once_on_a_fifo() {
    let world = World::new().with_db();
    let key = fifo(&world);
    let mut cmd = world.std_cmd();
    cmd.env("GOOGLE_APPLICATION_CREDENTIALS", &key).arg("doctor");
    let (output, ended) = run_with_guard(cmd);
    assert!(ended, "still running after 20 s; stderr: {}", output.stderr());
    let stdout = output.exits(78).stdout();
    let key_line = stdout.lines().find(|line| line.contains(" key: ")).unwrap_or_else(|| panic!("{stdout}"));
    assert!(key_line.starts_with("FAIL") && key_line.contains("named pipe (FIFO)"), "{key_line}");
}
