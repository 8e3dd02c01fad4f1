//! The database as the jobs find it: a schema a newer build migrated, a user without the
//! privileges the jobs need. Both are configuration (78), said in one line with the fix.

use crate::harness::{bare_cmd, RunToEnd, TestUser, World};

const TOKEN: &str = "some-token:APA91bF3x9QmZ1kTq7Lr2vYcN8sW4eJ6";

/// A migrated world whose schema version a newer wolley-push (version 99) left behind.
fn world_migrated_by_a_newer_build() -> World {
    let world = World::new().with_db();
    world.db().add_users(&[(1, Some(TOKEN))]);
    world.db().exec("UPDATE wolley_push_schema SET version = 99 WHERE id = 1");
    world
}

fn schema_version(world: &World) -> u32 {
    world.db().query::<u32>("SELECT version FROM wolley_push_schema WHERE id = 1")[0]
}

#[test]
fn a_job_on_a_schema_newer_than_the_build_exits_78_and_sends_nothing() {
    let world = world_migrated_by_a_newer_build();
    let text = world.run(["save-location"]).exits(78).stderr();
    let expected = format!(
        "wolley-push's tables in {} were migrated by a newer wolley-push: version 99; this build knows ",
        world.db().url()
    );
    assert!(text.contains(&expected), "{text}");
    assert!(text.contains("; install the newer build (or restore the matching one)"), "{text}");
    assert_eq!(world.fcm.total_requests(), 0);
}

#[test]
fn migrate_on_a_schema_newer_than_the_build_exits_78_and_changes_nothing() {
    let world = world_migrated_by_a_newer_build();
    let output = bare_cmd().arg("migrate").env("WOLLEY_DATABASE_URL", world.db().url()).ran().exits(78);
    assert!(!output.stdout().contains("up to date"));
    output.stderr_contains("migrated by a newer wolley-push: version 99");
    assert_eq!(schema_version(&world), 99);
}

#[test]
fn doctor_fails_its_schema_line_on_a_schema_newer_than_the_build() {
    let world = world_migrated_by_a_newer_build();
    let key = world.file("private-key.json", &world.fcm.service_account_json());
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let stdout =
        world.cmd().env("GOOGLE_APPLICATION_CREDENTIALS", &key).arg("doctor").ran().exits(78).stdout();
    let line = stdout.lines().find(|line| line.contains(" schema: ")).unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        line.starts_with("FAIL") && line.contains("migrated by a newer wolley-push: version 99"),
        "{line}"
    );
    assert!(line.contains("install the newer build"), "{line}");
}

#[test]
fn a_user_without_a_needed_privilege_exits_78_naming_it_and_the_grant() {
    let world = World::new().with_db();
    world.db().add_users(&[(1, Some(TOKEN))]);
    let reader = TestUser::granted(world.db(), "SELECT");
    let output = world.cmd().env("WOLLEY_DATABASE_URL", reader.url()).arg("save-location").ran();
    let all = format!("{}{}", output.stdout(), output.stderr());
    assert_eq!(output.code(), 78, "{all}");
    let errors: Vec<&str> = all.lines().filter(|line| line.contains("error")).collect();
    assert_eq!(errors.len(), 1, "{all}");
    let line = errors[0];
    // The journal's first write is an INSERT (today with ON DUPLICATE KEY UPDATE, so UPDATE too).
    assert!(line.contains("lacks the INSERT"), "{line}");
    let table = format!("`{}`.`wolley_push_run`", world.db().name());
    assert!(line.contains("GRANT INSERT") && line.contains(&format!(" ON {table} TO that user")), "{line}");
    assert!(!all.contains(reader.password()), "the password was shown: {all}");
    assert_eq!(world.fcm.total_requests(), 0);
}
