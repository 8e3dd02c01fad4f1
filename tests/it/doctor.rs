//! `doctor`: one line per check; a healthy setup passes, and each fault fails its own line
//! (with the fix), skips what depends on it, and makes the exit code non-zero.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use fake_fcm::Reply;

use crate::harness::{bare_cmd, server_url, Ran, RunToEnd, World};

const CHECKS: [&str; 10] = [
    "config",
    "key",
    "key-permissions",
    "oauth",
    "fcm",
    "database",
    "backend-tables",
    "schema",
    "tokens",
    "stats-indexes",
];

/// The indexes the backend should have for `stats weekly` to read only the week.
const STATS_INDEXES: &str = "CREATE INDEX dailypath_date ON dailypath (date); \
     CREATE INDEX intervalstay_last_updated ON intervalstay (last_updated); \
     CREATE INDEX intervalmove_last_updated ON intervalmove (last_updated)";

/// A world with users that have tokens, and its key as a private file (mode 0600).
fn healthy() -> (World, PathBuf) {
    let world = World::new().with_db();
    world.db().add_users(&[(1, Some("token-of-user-1:APA91bHealthy")), (2, Some("abc")), (3, None)]);
    world.db().exec(STATS_INDEXES);
    let key = key_with_mode(&world, &world.fcm.service_account_json(), 0o600);
    (world, key)
}

fn key_with_mode(world: &World, contents: &str, mode: u32) -> PathBuf {
    let key = world.file("doctor-key.json", contents);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(mode)).unwrap();
    key
}

fn doctor(world: &World, key: &PathBuf, args: &[&str]) -> Ran {
    world.cmd().env("GOOGLE_APPLICATION_CREDENTIALS", key).arg("doctor").args(args).ran()
}

/// The line of `check`, e.g. `FAIL oauth: ... — ...`.
fn line(output: &Ran, check: &str) -> String {
    let text = output.stdout();
    let found: Vec<&str> =
        text.lines().filter(|line| line.split_whitespace().nth(1) == Some(&format!("{check}:"))).collect();
    assert_eq!(found.len(), 1, "one line for {check}:\n{text}\nstderr: {}", output.stderr());
    found[0].to_owned()
}

fn status(output: &Ran, check: &str) -> String {
    line(output, check).split_whitespace().next().unwrap().to_owned()
}

fn assert_fails_only(output: &Ran, failing: &str, skipped: &[&str]) {
    for check in CHECKS {
        let expected = if check == failing {
            "FAIL"
        } else if skipped.contains(&check) {
            "SKIP"
        } else {
            "OK"
        };
        assert_eq!(status(output, check), expected, "{check}:\n{}", output.stdout());
    }
    assert!(line(output, failing).contains(" — "), "a failure says how to fix it: {}", line(output, failing));
}

#[test]
fn doctor_passes_on_a_healthy_setup_and_exits_0() {
    let (world, key) = healthy();
    let output = doctor(&world, &key, &[]).exits(0);
    for check in CHECKS {
        assert_eq!(status(&output, check), "OK", "{}", output.stdout());
    }
    assert!(line(&output, "tokens").contains("1 user has a token"), "{}", line(&output, "tokens"));
    assert!(output.stdout().ends_with("doctor: all 10 checks passed\n"), "{}", output.stdout());
}

#[test]
fn a_backend_without_a_last_updated_index_gets_a_warning_naming_it_and_still_passes() {
    let (world, key) = healthy();
    world.db().exec("DROP INDEX intervalmove_last_updated ON intervalmove");
    let output = doctor(&world, &key, &[]).exits(0);
    let warning = line(&output, "stats-indexes");
    assert!(
        warning.starts_with(
            "WARN stats-indexes: no index on intervalmove (last_updated): a stats weekly refresh"
        ),
        "{warning}"
    );
    assert!(
        warning.contains("CREATE INDEX intervalmove_last_updated ON intervalmove (last_updated)"),
        "{warning}"
    );
    assert!(!warning.contains("intervalstay_last_updated"), "{warning}");
}

#[test]
fn a_backend_without_an_index_on_dailypath_date_is_told_every_run_scans_its_history() {
    let (world, key) = healthy();
    world.db().exec("DROP INDEX dailypath_date ON dailypath");
    let output = doctor(&world, &key, &[]).exits(0);
    let warning = line(&output, "stats-indexes");
    assert!(
        warning.contains("every stats weekly run and report week scans all of dailypath's history"),
        "{warning}"
    );
    assert!(warning.contains("CREATE INDEX dailypath_date ON dailypath (date)"), "{warning}");
}

#[test]
fn doctor_checks_fcm_with_one_validate_only_request_and_delivers_nothing() {
    let (world, key) = healthy();
    doctor(&world, &key, &[]).exits(0);
    let requests = world.fcm.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert!(requests[0].validate_only);
    assert_eq!(world.fcm.total_deliveries(), 0);
}

#[test]
fn doctor_takes_an_invalid_token_answer_as_proof_that_the_key_may_send() {
    let (world, key) = healthy();
    world.fcm.script_next(vec![Reply::invalid_token()]);
    let output = doctor(&world, &key, &[]).exits(0);
    assert!(line(&output, "fcm").contains("made-up device token"), "{}", line(&output, "fcm"));
}

#[test]
fn a_wrong_database_password_fails_the_database_line_without_showing_it() {
    let (world, key) = healthy();
    let mut url = url::Url::parse(&server_url()).unwrap();
    url.set_password(Some("wrong-pa55word")).unwrap();
    url.set_path(world.db().name());
    let output = world
        .cmd()
        .env("GOOGLE_APPLICATION_CREDENTIALS", &key)
        .env("WOLLEY_DATABASE_URL", url.as_str())
        .arg("doctor")
        .ran()
        .exits(78);
    assert_fails_only(&output, "database", &["backend-tables", "schema", "tokens", "stats-indexes"]);
    assert!(line(&output, "database").contains("password"), "{}", line(&output, "database"));
    assert!(!format!("{}{}", output.stdout(), output.stderr()).contains("wrong-pa55word"));
}

#[test]
fn an_unreachable_database_fails_the_database_line_with_exit_75() {
    let (world, key) = healthy();
    let output = world
        .cmd()
        .env("GOOGLE_APPLICATION_CREDENTIALS", &key)
        .env("WOLLEY_DATABASE_URL", "mysql://root@127.0.0.1:1/wolley")
        .arg("doctor")
        .ran()
        .exits(75);
    assert_fails_only(&output, "database", &["backend-tables", "schema", "tokens", "stats-indexes"]);
}

#[test]
fn a_missing_backend_table_fails_the_backend_tables_line() {
    let (world, key) = healthy();
    world.db().exec("DROP TABLE intervalmove");
    let output = doctor(&world, &key, &[]).exits(78);
    assert_fails_only(&output, "backend-tables", &["tokens", "stats-indexes"]);
    assert!(line(&output, "backend-tables").contains("table intervalmove"), "{}", output.stdout());
}

#[test]
fn a_missing_backend_column_is_named() {
    let (world, key) = healthy();
    world.db().exec("ALTER TABLE intervalstay DROP COLUMN category");
    let output = doctor(&world, &key, &[]).exits(78);
    assert!(line(&output, "backend-tables").contains("column intervalstay.category"), "{}", output.stdout());
}

#[test]
fn an_unmigrated_database_fails_the_schema_line_and_says_to_migrate() {
    let world = World::new().with_unmigrated_db();
    world.db().add_users(&[(1, Some("token-of-user-1:APA91bHealthy"))]);
    world.db().exec(STATS_INDEXES);
    let key = key_with_mode(&world, &world.fcm.service_account_json(), 0o600);
    let output = doctor(&world, &key, &[]).exits(78);
    assert_fails_only(&output, "schema", &[]);
    assert!(line(&output, "schema").contains("wolley-push migrate"), "{}", line(&output, "schema"));
}

#[test]
fn a_key_of_the_wrong_type_fails_the_key_line() {
    let (world, _) = healthy();
    let key = key_with_mode(
        &world,
        r#"{"type": "authorized_user", "client_id": "x", "refresh_token": "y"}"#,
        0o600,
    );
    let output = doctor(&world, &key, &[]).exits(78);
    assert_fails_only(&output, "key", &["oauth", "fcm"]);
    assert!(line(&output, "key").contains("\"authorized_user\""), "{}", line(&output, "key"));
}

#[test]
fn a_refused_oauth_exchange_fails_the_oauth_line() {
    let (world, key) = healthy();
    world.fcm.refuse_oauth(true);
    let output = doctor(&world, &key, &[]).exits(78);
    assert_fails_only(&output, "oauth", &["fcm"]);
    assert!(line(&output, "oauth").contains("refused the service-account key"), "{}", line(&output, "oauth"));
}

#[test]
fn a_world_readable_key_fails_the_key_permissions_line_with_chmod_as_the_fix() {
    let (world, _) = healthy();
    let key = key_with_mode(&world, &world.fcm.service_account_json(), 0o644);
    let output = doctor(&world, &key, &[]).exits(78);
    assert_fails_only(&output, "key-permissions", &[]);
    let line = line(&output, "key-permissions");
    assert!(line.contains("0644") && line.contains(&format!("chmod 600 {}", key.display())), "{line}");
}

#[test]
fn a_group_readable_key_is_a_warning_that_does_not_fail_doctor() {
    let (world, _) = healthy();
    let key = key_with_mode(&world, &world.fcm.service_account_json(), 0o640);
    let output = doctor(&world, &key, &[]).exits(0);
    assert_eq!(status(&output, "key-permissions"), "WARN");
}

#[test]
fn fcm_refusing_the_service_account_fails_the_fcm_line() {
    let (world, key) = healthy();
    world.fcm.script_next(vec![Reply::Error {
        status: 403,
        grpc_status: "PERMISSION_DENIED",
        error_code: None,
        message: "Permission 'cloudmessaging.messages.create' denied on resource".into(),
        retry_after: None,
        field_violation: None,
    }]);
    let output = doctor(&world, &key, &[]).exits(78);
    assert_fails_only(&output, "fcm", &[]);
    assert!(line(&output, "fcm").contains("Firebase Cloud Messaging API Admin"), "{}", line(&output, "fcm"));
}

#[test]
fn an_unknown_project_fails_the_fcm_line() {
    let (world, key) = healthy();
    let output = doctor(&world, &key, &["--project-id", "no-such-project"]).exits(78);
    assert_fails_only(&output, "fcm", &[]);
    assert!(line(&output, "fcm").contains("--project-id"), "{}", line(&output, "fcm"));
}

#[test]
fn doctor_without_any_configuration_fails_the_config_line_and_skips_the_rest() {
    let output = bare_cmd().arg("doctor").ran().exits(78);
    assert_eq!(status(&output, "config"), "FAIL");
    for check in &CHECKS[1..] {
        assert_eq!(status(&output, check), "SKIP", "{}", output.stdout());
    }
}

#[test]
fn doctor_json_lists_every_check_with_its_status() {
    let (world, key) = healthy();
    world.fcm.refuse_oauth(true);
    let report = doctor(&world, &key, &["--format", "json"]).exits(78).json();
    assert_eq!(report["ok"], false);
    let checks = report["checks"].as_array().unwrap();
    let names: Vec<&str> = checks.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, CHECKS);
    let oauth = &checks[3];
    assert_eq!(oauth["status"], "fail");
    assert!(oauth["fix"].as_str().is_some_and(|fix| !fix.is_empty()), "{oauth}");
    assert_eq!(checks[4]["status"], "skip");
}

#[test]
fn doctor_with_quiet_prints_nothing_when_everything_passes() {
    let (world, key) = healthy();
    assert_eq!(doctor(&world, &key, &["-q"]).exits(0).stdout(), "");
}
