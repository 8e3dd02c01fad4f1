//! `path-daily --remind`: the week's second notification, only to the users the Monday run
//! reached whose week has not arrived since it started, each once; and the upload coverage
//! after it in `stats weekly` and `report week`.

use fake_fcm::Reply;
use serde_json::Value;

use crate::harness::{numbered_token, Ran, RunToEnd, TestDb, World};

/// The week the Monday run of the test's now (2026-W49) announces.
const ANNOUNCED: &str = "2026-W48";
/// The Monday run's first start: 2026-11-30 00:10 in Seoul, in UTC as the journal keeps it.
const PUSH_UTC: &str = "2026-11-29 15:10:00";
/// The reminder's first start: 2026-11-30 09:00 in Seoul.
const REMIND_UTC: &str = "2026-11-30 00:00:00";

/// A world of users 1..=`users` with numbered tokens.
fn world(users: u32) -> World {
    let world = World::new().with_db();
    world.db().add_numbered_users(users);
    world
}

/// The real `path-daily` for the test's week, its first start then set to Monday 00:10 in
/// Seoul (the run itself starts at the machine's now); the output whatever the exit code.
fn first_run(world: &World, args: &[&str]) -> Ran {
    let output = world.cmd().arg("path-daily").args(args).ran();
    world.db().exec(&format!(
        "UPDATE wolley_push_run SET first_started_at = '{PUSH_UTC}' WHERE job = 'path-daily'"
    ));
    output
}

/// `path-daily --remind` with `args`; the output whatever the exit code.
fn remind(world: &World, args: &[&str]) -> Ran {
    world.cmd().args(["path-daily", "--remind"]).args(args).ran()
}

/// A `dailypath` row of `user` dated `date` last updated at `updated` (the backend's naive
/// Seoul time).
fn upload(db: &TestDb, user: u32, date: &str, updated: &str) {
    db.exec_with(
        "INSERT INTO dailypath (date, path_type, date_created, last_updated, user_id) VALUES (?, 'daily', ?, ?, ?)",
        (date, updated, updated, user),
    );
}

/// The users (by their numbered token) the fake was sent to from request `from` on.
fn reached_since(world: &World, from: usize) -> Vec<String> {
    let mut tokens: Vec<String> =
        world.fcm.requests()[from..].iter().filter_map(|request| request.token.clone()).collect();
    tokens.sort();
    tokens
}

fn tokens_of(users: &[u32]) -> Vec<String> {
    let mut tokens: Vec<String> = users.iter().map(|&user| numbered_token(user)).collect();
    tokens.sort();
    tokens
}

/// Path-daily reached users 1 to 5; 1, 2 and 3 uploaded a day of the week after it started, 4
/// only before it, 5 only a day outside the week (the next Monday) after it.
fn three_of_five_uploaded() -> World {
    let world = world(5);
    first_run(&world, &[]).exits(0);
    let db = world.db();
    upload(db, 1, "2026-11-23", "2026-11-30 00:15:00");
    upload(db, 2, "2026-11-27", "2026-11-30 02:00:00");
    upload(db, 3, "2026-11-29", "2026-11-30 08:59:59");
    upload(db, 4, "2026-11-28", "2026-11-30 00:09:59.999999");
    upload(db, 5, "2026-11-30", "2026-11-30 00:20:00");
    world
}

#[test]
fn the_reminder_reaches_exactly_the_users_the_first_run_reached_whose_week_has_not_arrived() {
    let world = three_of_five_uploaded();
    let before = world.fcm.requests().len();
    let output = remind(&world, &["--format", "json"]).exits(0);
    assert_eq!(reached_since(&world, before), tokens_of(&[4, 5]));
    let summary = output.summary();
    assert_eq!(
        (summary["job"].as_str(), summary["slot"].as_str()),
        (Some("path-daily-remind"), Some("2026-W49-remind"))
    );
    assert_eq!(summary["sent"], 2);
}

#[test]
fn a_second_reminder_finds_its_slot_done_and_reaches_nobody() {
    let world = three_of_five_uploaded();
    remind(&world, &[]).exits(0);
    let before = world.fcm.requests().len();
    remind(&world, &[]).exits(0).stderr_contains("already done");
    assert_eq!(reached_since(&world, before), Vec::<String>::new());
}

#[test]
fn a_user_who_joined_after_the_first_run_is_not_reminded() {
    let world = world(3);
    first_run(&world, &[]).exits(0);
    world.db().add_users(&[(4, Some(numbered_token(4).as_str()))]);
    let before = world.fcm.requests().len();
    remind(&world, &[]).exits(0);
    assert_eq!(reached_since(&world, before), tokens_of(&[1, 2, 3]));
}

#[test]
fn a_user_left_in_the_first_run_s_retry_set_is_not_reminded() {
    let world = world(3);
    world.fcm.script(&numbered_token(2), vec![Reply::unavailable(None)]);
    let first = first_run(&world, &["--max-attempts", "1"]);
    assert_eq!(first.code(), 3, "user 2 failed and stays in the retry set: {}", first.stderr());
    assert_eq!(world.db().retry_set("path-daily"), [2]);
    let before = world.fcm.requests().len();
    remind(&world, &[]).exits(0);
    assert_eq!(reached_since(&world, before), tokens_of(&[1, 3]));
}

#[test]
fn the_reminder_without_a_first_run_exits_78_and_sends_nothing() {
    let world = world(3);
    let said = remind(&world, &[]).exits(78).stderr();
    assert!(said.contains("no path-daily run of slot 2026-W49"), "{said}");
    assert!(said.contains("wolley-push path-daily --slot 2026-W49"), "{said}");
    assert_eq!(world.fcm.total_requests(), 0);
}

#[test]
fn the_reminder_while_the_first_run_is_still_running_exits_75_and_sends_nothing() {
    let world = world(3);
    world.db().exec(
        "INSERT INTO wolley_push_run (job, slot, shard, status, checkpoint_user_id, host, pid, started_at, \
           first_started_at, updated_at) \
         VALUES ('path-daily', '2026-W49', '0/1', 'running', 1, 'elsewhere', 1, UTC_TIMESTAMP(6), \
           UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))",
    );
    remind(&world, &[]).exits(75).stderr_contains("slot 2026-W49 (shard 0/1) is still running");
    assert_eq!(world.fcm.total_requests(), 0);
}

/// The body of the first request the reminder sent.
fn reminder_message(args: &[&str]) -> Value {
    let world = world(1);
    first_run(&world, &[]).exits(0);
    remind(&world, args).exits(0);
    let requests = world.fcm.requests();
    assert_eq!(requests.len(), 2, "one path-daily, one reminder");
    requests[1].body.as_ref().expect("a JSON body")["message"].clone()
}

#[test]
fn the_reminder_is_a_silent_path_daily_notification_with_its_own_body() {
    let message = reminder_message(&[]);
    assert!(message["apns"]["payload"]["aps"].get("sound").is_none(), "{message}");
    assert_eq!(message["data"], serde_json::json!({"type": "pathDaily", "week": "2026-W49"}));
    assert_eq!(
        message["notification"]["body"],
        "지난주 기록이 아직 올라오지 않았어요. 앱을 열어 확인해보세요!"
    );
}

#[test]
fn the_reminder_with_sound_plays_the_default_sound() {
    assert_eq!(reminder_message(&["--sound"])["apns"]["payload"]["aps"]["sound"], "default");
}

#[test]
fn print_lists_the_reminder_s_audience_without_sending_or_recording() {
    let world = three_of_five_uploaded();
    let before = world.fcm.requests().len();
    let stdout = remind(&world, &["--print"]).exits(0).stdout();
    let mut printed: Vec<String> = stdout
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line).unwrap()["message"]["token"].as_str().unwrap().to_owned()
        })
        .collect();
    printed.sort();
    assert_eq!(printed, tokens_of(&[4, 5]));
    assert_eq!(world.fcm.requests().len(), before);
    let rows: Vec<u64> =
        world.db().query("SELECT COUNT(*) FROM wolley_push_run WHERE job = 'path-daily-remind'");
    assert_eq!(rows, [0]);
}

/// [`three_of_five_uploaded`], reminded (users 4 and 5) at Monday 09:00 in Seoul; user 4 then
/// uploaded at 10:00.
fn reminded_and_one_uploaded() -> World {
    let world = three_of_five_uploaded();
    remind(&world, &[]).exits(0);
    world.db().exec(&format!(
        "UPDATE wolley_push_run SET first_started_at = '{REMIND_UTC}' WHERE job = 'path-daily-remind'"
    ));
    upload(world.db(), 4, "2026-11-24", "2026-11-30 10:00:00");
    world
}

#[test]
fn stats_weekly_counts_the_reminded_users_who_uploaded_after_the_reminder() {
    let world = reminded_and_one_uploaded();
    let stdout = world.run(["stats", "weekly", "--week", ANNOUNCED, "--format", "json"]).exits(0).stdout();
    let report: Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    let uploads = &report["uploads"];
    assert_eq!((uploads["notified"].as_u64(), uploads["uploaded"].as_u64()), (Some(5), Some(4)));
    assert_eq!(
        uploads["remind"],
        serde_json::json!({"since": "2026-11-30T09:00:00+09:00", "notified": 2, "uploaded": 1, "coverage": 0.5})
    );
}

#[test]
fn report_week_says_how_many_reminded_users_uploaded() {
    let world = reminded_and_one_uploaded();
    let text = world.run(["report", "week", "--week", ANNOUNCED]).exits(0).stdout();
    assert!(
        text.contains(
            "uploads: 4 of 5 notified (80.0%) since 2026-11-30T00:10:00+09:00; \
             reminded: 1 of 2 (50.0%) since 2026-11-30T09:00:00+09:00\n"
        ),
        "{text}"
    );
}
