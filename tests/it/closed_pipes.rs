//! A closed stdout (`| head -1`, `| true`): the output ends quietly, as ripgrep's does — exit 0,
//! nothing on stderr — and a journaled run still records its true outcome.

use std::process::{Command, Stdio};

use crate::harness::{Ran, RunToEnd, World};

/// Runs `cmd` with a stdout whose reader is already gone, capturing stderr.
fn with_stdout_closed(mut cmd: Command) -> Ran {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    cmd.stdout(Stdio::from(writer)).stderr(Stdio::piped()).ran()
}

#[test]
fn print_piped_into_head_ends_quietly_with_exit_0() {
    let world = World::new();
    let lines: String =
        (0..20_000).map(|i| format!("token-{i}:APA91bF3x9QmZ1kTq7Lr2vYcN8sW4eJ6\n")).collect();
    let tokens = world.file("tokens.txt", &lines);
    let wolley = world.std_cmd();
    let mut shell = Command::new("bash");
    // The binary's own status, not head's: PIPESTATUS[0].
    shell.args(["-c", "\"$@\" | head -1; exit \"${PIPESTATUS[0]}\"", "bash"]);
    shell.arg(wolley.get_program()).args(wolley.get_args());
    shell.args(["save-location", "--print", "--tokens-file"]).arg(&tokens);
    for (key, value) in wolley.get_envs() {
        match value {
            Some(value) => shell.env(key, value),
            None => shell.env_remove(key),
        };
    }
    let output = shell.ran().exits(0);
    assert_eq!(output.stderr(), "");
    assert_eq!(output.stdout().lines().count(), 1);
}

#[test]
fn runs_with_its_stdout_closed_exits_0_and_says_nothing() {
    let world = World::new().with_db();
    let mut cmd = world.std_cmd();
    cmd.arg("runs");
    assert_eq!(with_stdout_closed(cmd).exits(0).stderr(), "");
}

#[test]
fn stats_weekly_with_its_stdout_closed_exits_0_and_says_nothing() {
    let world = World::new().with_db();
    let mut cmd = world.std_cmd();
    // Its info lines (the week aggregated) are not what this is about.
    cmd.env("RUST_LOG", "warn").args(["stats", "weekly", "--week", "2026-W48"]);
    assert_eq!(with_stdout_closed(cmd).exits(0).stderr(), "");
}

#[test]
fn a_journaled_run_with_its_stdout_closed_finishes_its_slot_and_records_exit_0() {
    let world = World::new().with_db();
    world.db().add_numbered_users(3);
    let metrics = world.file("wolley-push.prom", "");
    std::fs::remove_file(&metrics).unwrap();
    let mut cmd = world.std_cmd();
    cmd.arg("save-location").arg("--metrics-file").arg(&metrics);
    let stderr = with_stdout_closed(cmd).exits(0).stderr();
    assert!(!stderr.contains("error"), "{stderr}");
    let journal = world.db().journal("save-location");
    assert_eq!((journal.status.as_str(), journal.sent), ("done", 3), "{journal:?}");
    let text = std::fs::read_to_string(&metrics).unwrap();
    let exit_code = text
        .lines()
        .find(|line| line.starts_with("wolley_push_last_run_exit_code{") && line.contains("save-location"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(exit_code.ends_with(" 0"), "{exit_code}");
}
