//! A bug shows as one line and exit 1, never as Rust's panic report and exit 101.

use fake_fcm::Reply;

use crate::harness::{code, stderr, World};

const TOKEN: &str = "some-token:APA91bF3x9QmZ1kTq7Lr2vYcN8sW4eJ6";

/// A real panic path that remains: a `Retry-After` of u64::MAX seconds overflows the back-off
/// arithmetic in the sender (send.rs), in a worker task whose panic is re-raised where the
/// workers are joined. When that is fixed, this test needs another real panic path.
fn run_into_a_panic(world: &World) -> std::process::Output {
    let tokens = world.file("tokens.txt", TOKEN);
    world.fcm.script(TOKEN, vec![Reply::unavailable(Some(u64::MAX))]);
    let mut cmd = world.cmd();
    cmd.env_remove("RUST_BACKTRACE").args(["save-location", "--tokens-file"]).arg(&tokens);
    cmd.output().unwrap()
}

#[test]
fn a_panic_prints_one_internal_error_line_and_exits_1() {
    let world = World::new();
    let output = run_into_a_panic(&world);
    let text = stderr(&output);
    assert_eq!(code(&output), 1, "{text}");
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
    let tokens = world.file("tokens.txt", TOKEN);
    world.fcm.script(TOKEN, vec![Reply::unavailable(Some(u64::MAX))]);
    let output = world
        .cmd()
        .env("RUST_BACKTRACE", "1")
        .args(["save-location", "--tokens-file"])
        .arg(&tokens)
        .output()
        .unwrap();
    let text = stderr(&output);
    assert_eq!(code(&output), 1, "{text}");
    assert!(text.contains("wolley-push: internal error: ") && text.contains("panicked at"), "{text}");
}
