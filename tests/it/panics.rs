//! A bug shows as one line and exit 1, never as Rust's panic report and exit 101.

use fake_fcm::Reply;

use crate::harness::{numbered_token, Ran, RunToEnd, World};

/// No real panic is left to provoke from outside (the last one, an absurd `Retry-After`
/// overflowing the back-off, is the next test), so a failpoint panics while the
/// answers are counted, after 10 of them (src/failpoint.rs: only the `failpoints` feature,
/// which `cargo test` turns on, reads `WOLLEY_FAILPOINT`).
const PANIC: (&str, &str) = ("WOLLEY_FAILPOINT", "panic-while-counting");

fn tokens(world: &World, count: u32) -> std::path::PathBuf {
    let lines: Vec<String> = (1..=count).map(numbered_token).collect();
    world.file("tokens.txt", &lines.join("\n"))
}

fn run_into_a_panic(world: &World) -> Ran {
    let tokens = tokens(world, 50);
    let mut cmd = world.cmd();
    cmd.env_remove("RUST_BACKTRACE")
        .env(PANIC.0, PANIC.1)
        .args(["save-location", "--tokens-file"])
        .arg(&tokens);
    cmd.ran()
}

#[test]
fn an_absurd_retry_after_is_waited_for_at_most_an_hour_not_a_panic() {
    let world = World::new();
    let token = numbered_token(1);
    world.fcm.script(&token, vec![Reply::unavailable(Some(u64::MAX))]);
    let tokens = world.file("tokens.txt", &token);
    let output =
        world.cmd().args(["save-location", "--deadline", "2s", "--tokens-file"]).arg(&tokens).ran().exits(3);
    assert!(!output.stderr().contains("internal error"), "{}", output.stderr());
}

#[test]
fn a_panic_while_sending_a_slot_records_it_failed_before_exiting_1() {
    let world = World::new().with_db();
    world.db().add_numbered_users(50);
    world.cmd().env(PANIC.0, PANIC.1).arg("save-location").ran().exits(1);
    let rows = world.db().query::<(String, String)>("SELECT status, error FROM wolley_push_run");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, "failed");
    assert!(rows[0].1.contains("failpoint panic-while-counting"), "{:?}", rows[0]);
}

#[test]
fn a_panic_prints_one_internal_error_line_and_exits_1() {
    let world = World::new();
    let text = run_into_a_panic(&world).exits(1).stderr();
    let internal: Vec<&str> = text.lines().filter(|line| line.contains("internal error")).collect();
    assert_eq!(internal.len(), 1, "{text}");
    assert!(internal[0].starts_with("wolley-push: internal error: "), "{}", internal[0]);
    assert!(
        internal[0].contains(".rs:") && internal[0].contains("this is a bug, please report it"),
        "{}",
        internal[0]
    );
    assert!(!text.contains("panicked at") && !text.contains("RUST_BACKTRACE"), "{text}");
}

#[test]
fn rust_backtrace_adds_rusts_own_report_to_the_line() {
    let world = World::new();
    let tokens = tokens(&world, 50);
    let text = world
        .cmd()
        .env("RUST_BACKTRACE", "1")
        .env(PANIC.0, PANIC.1)
        .args(["save-location", "--tokens-file"])
        .arg(&tokens)
        .ran()
        .exits(1)
        .stderr();
    assert!(text.contains("wolley-push: internal error: ") && text.contains("panicked at"), "{text}");
}
