//! `migrate` under contention: another migrate of the same database, a transaction holding a
//! table's metadata lock, a newer version recorded meanwhile. It gives up in seconds with exit
//! 75 naming what holds it, and never moves the recorded version back.

use std::time::{Duration, Instant};

use crate::harness::{Ran, TestDb, World};

/// The version this build migrates to.
const REQUIRED: u32 = 7;

/// A migrated database put back to version 2: migration 3's last column is gone again.
fn one_version_behind() -> World {
    let world = World::new().with_db();
    world.db().exec(
        "ALTER TABLE wolley_push_run DROP COLUMN in_flight; UPDATE wolley_push_schema SET version = 2 WHERE id = 1",
    );
    world
}

fn version(db: &TestDb) -> u32 {
    db.query::<u32>("SELECT version FROM wolley_push_schema WHERE id = 1")[0]
}

fn migrate(world: &World) -> (Ran, Duration) {
    let started = Instant::now();
    let output = world.run(["migrate"]);
    (output, started.elapsed())
}

#[test]
fn migrate_held_up_by_an_open_transaction_exits_75_in_seconds_naming_the_session() {
    let world = one_version_behind();
    let mut reader = world.db().session();
    let id: u64 = reader.first("SELECT CONNECTION_ID()");
    // A read inside a transaction holds the table's metadata lock until the transaction ends.
    reader.exec("START TRANSACTION; SELECT * FROM wolley_push_run");
    let (output, took) = migrate(&world);
    let text = output.exits(75).stderr();
    assert!(took < Duration::from_secs(30), "took {took:?}");
    assert!(
        text.contains(&format!("session {id} (root@")) && text.contains("in a transaction open for"),
        "{text}"
    );
    assert!(text.contains("end that transaction") && text.contains("run migrate again later"), "{text}");
    drop(reader);
    assert_eq!(version(world.db()), 2, "nothing is recorded for a migration that did not run");
}

#[test]
fn migrate_while_another_holds_the_databases_migrate_lock_exits_75_saying_so() {
    let world = one_version_behind();
    let mut other = world.db().session();
    let taken: i64 =
        other.first("SELECT GET_LOCK(CONCAT('wolley_push:migrate:', LEFT(SHA1(DATABASE()), 12)), 0)");
    assert_eq!(taken, 1);
    let (output, took) = migrate(&world);
    let text = output.exits(75).stderr();
    assert!(took < Duration::from_secs(30), "took {took:?}");
    assert!(
        text.contains("another `wolley-push migrate` is running on") && text.contains(world.db().name()),
        "{text}"
    );
    assert_eq!(version(world.db()), 2);
}

#[test]
fn two_migrates_started_together_each_end_0_or_75_and_leave_the_schema_current() {
    let world = World::new().with_unmigrated_db();
    let children: Vec<_> = (0..2).map(|_| world.std_cmd().arg("migrate").output_spawned()).collect();
    let outputs: Vec<Ran> = children.into_iter().map(Ran::wait).collect();
    let codes: Vec<i32> = outputs.iter().map(Ran::code).collect();
    for output in &outputs {
        assert!(matches!(output.code(), 0 | 75), "{codes:?}: {}", output.stderr());
    }
    assert!(codes.contains(&0), "{codes:?}");
    assert_eq!(version(world.db()), REQUIRED);
}

#[test]
fn a_newer_version_recorded_while_migrate_runs_is_never_moved_back() {
    let world = one_version_behind();
    // As a newer build's migrate would: record a version past this build's while this one is
    // applying 3.
    let mut newer = world.db().session();
    newer.exec(&format!(
        "START TRANSACTION; UPDATE wolley_push_schema SET version = {} WHERE id = 1",
        REQUIRED + 1
    ));
    let child = world.std_cmd().arg("migrate").output_spawned();
    // This database's migrate only: the other tests' migrates run on the same server.
    let writing = "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
                   WHERE DB = DATABASE() AND INFO LIKE 'INSERT INTO wolley_push_schema%'";
    let deadline = Instant::now() + Duration::from_secs(8);
    while world.db().query::<u64>(writing)[0] == 0 {
        assert!(Instant::now() < deadline, "migrate never came to record its version");
        std::thread::sleep(Duration::from_millis(20));
    }
    newer.exec("COMMIT");
    Ran::wait(child).exits(0);
    assert_eq!(version(world.db()), REQUIRED + 1);
}

/// Spawns with stdout and stderr captured.
trait SpawnCaptured {
    fn output_spawned(&mut self) -> std::process::Child;
}

impl SpawnCaptured for std::process::Command {
    fn output_spawned(&mut self) -> std::process::Child {
        use std::process::Stdio;
        self.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
    }
}
