//! `stats weekly`: each user's week by category, badges, and the badge notification, checked
//! against figures computed by hand on the backend's real tables.

use std::cell::Cell;
use std::time::{Duration as StdDuration, Instant};

use chrono::{Duration, NaiveDate, NaiveDateTime};
use fake_fcm::{Options, Reply};
use serde_json::{json, Value};

use crate::harness::{duplicates, migrate, never_reached, Ran, RunToEnd, TestDb, World};

const WEEK: &str = "2026-W48";
const H: i64 = 3600;
const WEEK_SECONDS: u32 = 7 * 86_400;
const TOKEN_A: &str = "winner-a:APA91bGk2Lq8Vn3Xz7Tr1Wy5Pm9Hs4Jd6";
const TOKEN_B: &str = "winner-b:APA91bHq4Tz8Vr2Lx6Nm0Ws3Pk9Jd5Fb1";
const TOKEN_C: &str = "loser-c:APA91bXq4Tz8Vr2Lx6Nm0Ws3Pk9Jd5Fb1";

/// Writes backend rows (`dailypath`, `intervalstay`, `intervalmove`) with readable times.
struct Backend<'a> {
    db: &'a TestDb,
    next_day: Cell<i64>,
}

impl<'a> Backend<'a> {
    fn new(db: &'a TestDb) -> Self {
        Backend { db, next_day: Cell::new(1000) }
    }

    /// A `dailypath` row with this id.
    fn day(&self, id: i64, user: i64, date: &str, path_type: &str) -> i64 {
        self.db.exec_with(
            "INSERT INTO dailypath (dailypath_id, date, path_type, date_created, last_updated, user_id) \
             VALUES (?, ?, ?, NOW(6), NOW(6), ?)",
            (id, date, path_type, user),
        );
        id
    }

    fn stay(&self, day: i64, start: &str, end: &str, category: &str) {
        self.db.exec_with(
            "INSERT INTO intervalstay (start_time, end_time, latitude, longitude, address, category, location, \
             location_id, percent, date_created, last_updated, daily_path_id) \
             VALUES (?, ?, 37.5, 127.0, '서울', ?, '', '', 0.5, NOW(6), NOW(6), ?)",
            (start, end, category, day),
        );
    }

    fn moving(&self, day: i64, start: &str, end: &str) {
        self.db.exec_with(
            "INSERT INTO intervalmove (start_time, end_time, transport, percent, date_created, last_updated, \
             daily_path_id) VALUES (?, ?, 'walk', 0.5, NOW(6), NOW(6), ?)",
            (start, end, day),
        );
    }

    /// A day of its own for `user` on the week's day `weekday` (0 = Monday) with one stay of
    /// `seconds` from `at` ("HH:MM:SS").
    fn stay_for(&self, user: i64, weekday: i64, at: &str, category: &str, seconds: i64) {
        let date = week_day(weekday);
        let start = NaiveDateTime::parse_from_str(&format!("{date} {at}"), "%Y-%m-%d %H:%M:%S").unwrap();
        let end = start + Duration::seconds(seconds);
        let id = self.next_day.get();
        self.next_day.set(id + 1);
        self.day(id, user, &date.to_string(), "daily");
        self.stay(id, &start.to_string(), &end.to_string(), category);
    }
}

fn week_day(weekday: i64) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 23).unwrap() + Duration::days(weekday)
}

fn users(db: &TestDb, ids: &[i64]) {
    let tokens: Vec<(i64, Option<&str>)> = ids.iter().map(|&id| (id, None)).collect();
    db.add_users(&tokens);
}

/// `stats weekly` for the test week with `args`; the output whatever the exit code.
fn stats(world: &World, args: &[&str]) -> Ran {
    world.cmd().args(["stats", "weekly", "--timezone", "Asia/Seoul", "--week", WEEK]).args(args).ran()
}

/// The JSON report of a successful run (the first line of stdout).
fn report(world: &World, args: &[&str]) -> Value {
    let output = stats(world, &[&["--format", "json"], args].concat()).exits(0);
    let stdout = output.stdout();
    let line = stdout.lines().next().unwrap_or_else(|| panic!("no report; stderr: {}", output.stderr()));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("the report is not JSON ({e}): {stdout}"))
}

/// (user, category, seconds, share) of `week`.
fn stat_rows(db: &TestDb, week: &str) -> Vec<(i64, String, u32, String)> {
    db.query(&format!(
        "SELECT user_id, category, seconds, CAST(share AS CHAR) FROM wolley_push_weekly_stat \
         WHERE week = '{week}' ORDER BY user_id, category"
    ))
}

/// (user, recorded, untracked, days with data) of `week`.
fn user_rows(db: &TestDb, week: &str) -> Vec<(i64, u32, u32, u8)> {
    db.query(&format!(
        "SELECT user_id, recorded_seconds, untracked_seconds, days_with_data FROM wolley_push_weekly_user \
         WHERE week = '{week}' ORDER BY user_id"
    ))
}

/// (user, badge) of `week`.
fn badge_rows(db: &TestDb, week: &str) -> Vec<(i64, String)> {
    db.query(&format!(
        "SELECT user_id, badge FROM wolley_push_user_badge WHERE week = '{week}' ORDER BY user_id, badge"
    ))
}

fn badges_of(db: &TestDb, user: i64) -> Vec<String> {
    badge_rows(db, WEEK).into_iter().filter(|(u, _)| *u == user).map(|(_, b)| b).collect()
}

/// User 1's hand-computed week and user 2 without any data.
///
/// | row | counts | why |
/// | --- | --- | --- |
/// | 집 Sun 22:00 → Mon 07:00 (day of the Sunday before) | 집 7 h | clipped at the week's start |
/// | 회사 Mon 09:00-12:00 and 11:00-13:00 | 회사 4 h | two overlapping rows of one stay |
/// | move Mon 08:00-09:00 and 12:30-13:30 | 이동 2 h | the second overlaps 회사 by 30 min |
/// | 식사 Mon 13:00-13:00, 카페 Mon 15:00 → 14:00 | nothing, 2 ignored | zero-length, reversed |
/// | 헬스장 Mon 18:00-19:30 | 헬스장 1.5 h | a category the app does not know |
/// | 집 00:00-08:00 and move 08:00-09:00 on a past Wednesday | 과거 9 h | every interval of a past day |
/// | 집 Sun 20:00 → next Mon 06:00 | 집 4 h | clipped at the week's end |
/// | a day of the next week and one of the week before | nothing | outside the week |
///
/// Recorded (the union): Mon 00-07, 08-13:30, 18-19:30 (14 h), Wed 00-09 (9 h), Sun 20-24
/// (4 h) = 27 h. Days with data: Monday, Wednesday, Sunday (the Sunday before is not in the
/// week). Categories with an hour or more: 5, which earns `explorer`.
fn hand_computed_week(db: &TestDb) {
    users(db, &[1, 2]);
    hand_computed_rows(db);
}

/// User 1's rows of [`hand_computed_week`], without adding any user.
fn hand_computed_rows(db: &TestDb) {
    let b = Backend::new(db);
    let sunday_before = b.day(101, 1, "2026-11-22", "daily");
    b.stay(sunday_before, "2026-11-22 22:00:00", "2026-11-23 07:00:00", "집");
    let monday = b.day(102, 1, "2026-11-23", "daily");
    b.stay(monday, "2026-11-23 09:00:00", "2026-11-23 12:00:00", "회사");
    b.stay(monday, "2026-11-23 11:00:00", "2026-11-23 13:00:00", "회사");
    b.moving(monday, "2026-11-23 08:00:00", "2026-11-23 09:00:00");
    b.moving(monday, "2026-11-23 12:30:00", "2026-11-23 13:30:00");
    b.stay(monday, "2026-11-23 13:00:00", "2026-11-23 13:00:00", "식사");
    b.stay(monday, "2026-11-23 15:00:00", "2026-11-23 14:00:00", "카페");
    b.stay(monday, "2026-11-23 18:00:00", "2026-11-23 19:30:00", "헬스장");
    let past_wednesday = b.day(103, 1, "2026-11-25", "past");
    b.stay(past_wednesday, "2026-11-25 00:00:00", "2026-11-25 08:00:00", "집");
    b.moving(past_wednesday, "2026-11-25 08:00:00", "2026-11-25 09:00:00");
    let sunday = b.day(104, 1, "2026-11-29", "daily");
    b.stay(sunday, "2026-11-29 20:00:00", "2026-11-30 06:00:00", "집");
    let next_monday = b.day(105, 1, "2026-11-30", "daily");
    b.stay(next_monday, "2026-11-30 06:00:00", "2026-11-30 09:00:00", "집");
    let week_before = b.day(106, 1, "2026-11-16", "daily");
    b.stay(week_before, "2026-11-16 10:00:00", "2026-11-16 12:00:00", "집");
}

fn row(user: i64, category: &str, seconds: i64, share: &str) -> (i64, String, u32, String) {
    (user, category.to_owned(), seconds as u32, share.to_owned())
}

#[test]
fn a_small_week_adds_up_to_the_hand_computed_figures() {
    let world = World::new().with_db();
    hand_computed_week(world.db());
    let report = report(&world, &[]);
    assert_eq!(
        stat_rows(world.db(), WEEK),
        [
            row(1, "과거", 9 * H, "0.333333"),
            row(1, "이동", 2 * H, "0.074074"),
            row(1, "집", 11 * H, "0.407407"),
            row(1, "헬스장", 3 * H / 2, "0.055556"),
            row(1, "회사", 4 * H, "0.148148"),
        ]
    );
    assert_eq!(user_rows(world.db(), WEEK), [(1, 27 * H as u32, WEEK_SECONDS - 27 * H as u32, 3)]);
    assert_eq!(badge_rows(world.db(), WEEK), [(1, "explorer".to_owned())]);
    assert_eq!((report["week"].as_str(), report["users"].as_u64()), (Some(WEEK), Some(1)));
    assert_eq!(
        (report["intervals_counted"].as_u64(), report["intervals_ignored"].as_u64()),
        (Some(9), Some(2))
    );
    assert_eq!(report["recorded_hours"], 27.0);
    let categories: Vec<(&str, f64)> = report["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["category"].as_str().unwrap(), c["hours"].as_f64().unwrap()))
        .collect();
    assert_eq!(categories, [("집", 11.0), ("회사", 4.0), ("이동", 2.0), ("과거", 9.0), ("헬스장", 1.5)]);
    assert_eq!(report["badges_awarded"], 1);
}

#[test]
fn user_prints_that_user_s_week() {
    let world = World::new().with_db();
    hand_computed_week(world.db());
    let week = report(&world, &["--user", "1"]);
    assert_eq!((week["user_id"].as_i64(), week["recorded_seconds"].as_u64()), (Some(1), Some(27 * 3600)));
    assert_eq!(
        (week["untracked_seconds"].as_u64(), week["days_with_data"].as_u64()),
        (Some(141 * 3600), Some(3))
    );
    assert_eq!(
        week["categories"][0],
        json!({ "category": "집", "seconds": 39600, "hours": 11.0, "share": 0.407407 })
    );
    assert_eq!(week["badges"], json!([{ "code": "explorer", "name": "다채로운 한 주" }]));
}

#[test]
fn a_user_without_data_has_an_untracked_week_and_no_rows() {
    let world = World::new().with_db();
    hand_computed_week(world.db());
    let week = report(&world, &["--user", "2"]);
    assert_eq!(
        (week["recorded_seconds"].as_u64(), week["untracked_seconds"].as_u64()),
        (Some(0), Some(604_800))
    );
    assert_eq!((week["categories"].clone(), week["badges"].clone()), (json!([]), json!([])));
    assert!(user_rows(world.db(), WEEK).iter().all(|r| r.0 != 2));
}

#[test]
fn days_with_data_are_the_week_s_dates_whose_days_have_a_counted_interval() {
    let world = World::new().with_db();
    users(world.db(), &[1]);
    let b = Backend::new(world.db());
    // The Sunday before reaches into Monday but is not a date of the week.
    let sunday_before = b.day(1, 1, "2026-11-22", "daily");
    b.stay(sunday_before, "2026-11-22 23:00:00", "2026-11-23 01:00:00", "집");
    // Tuesday has two day rows: one date.
    for id in [2, 3] {
        let tuesday = b.day(id, 1, "2026-11-24", "daily");
        b.stay(tuesday, "2026-11-24 10:00:00", "2026-11-24 11:00:00", "카페");
    }
    // Thursday's only interval is reversed; Friday has a day row without intervals.
    let thursday = b.day(4, 1, "2026-11-26", "daily");
    b.stay(thursday, "2026-11-26 10:00:00", "2026-11-26 09:00:00", "카페");
    b.day(5, 1, "2026-11-27", "daily");
    // A past Saturday counts like any other day.
    let saturday = b.day(6, 1, "2026-11-28", "past");
    b.stay(saturday, "2026-11-28 10:00:00", "2026-11-28 11:00:00", "집");
    report(&world, &[]);
    assert_eq!(user_rows(world.db(), WEEK), [(1, 3 * H as u32, WEEK_SECONDS - 3 * H as u32, 2)]);
}

#[test]
fn running_a_week_twice_writes_identical_rows_and_leaves_other_weeks_alone() {
    let world = World::new().with_db();
    hand_computed_week(world.db());
    // Another week, as an earlier version wrote it (generation 0, published).
    world.db().exec(
        "INSERT INTO wolley_push_weekly_stat_gen VALUES ('2026-W47', 0, 1, '집', 3600, 1); \
         INSERT INTO wolley_push_weekly_user_gen VALUES ('2026-W47', 0, 1, 3600, 601200, 1, NULL); \
         INSERT INTO wolley_push_user_badge_gen VALUES ('2026-W47', 0, 1, 'homebody', '집콕 마스터'); \
         INSERT INTO wolley_push_weekly_generation (week, generation, started_at, published_at) \
           VALUES ('2026-W47', 0, NOW(6), NOW(6)); \
         INSERT INTO wolley_push_weekly_published (week, generation, published_at) VALUES ('2026-W47', 0, NOW(6))",
    );
    report(&world, &[]);
    let first = (stat_rows(world.db(), WEEK), user_rows(world.db(), WEEK), badge_rows(world.db(), WEEK));
    report(&world, &[]);
    let second = (stat_rows(world.db(), WEEK), user_rows(world.db(), WEEK), badge_rows(world.db(), WEEK));
    assert_eq!(first, second);
    assert_eq!(stat_rows(world.db(), "2026-W47"), [row(1, "집", H, "1.000000")]);
    assert_eq!(badge_rows(world.db(), "2026-W47"), [(1, "homebody".to_owned())]);
}

#[test]
fn a_full_rerun_follows_changed_input_rows() {
    let world = World::new().with_db();
    hand_computed_week(world.db());
    report(&world, &[]);
    // 회사 now runs to 14:00 (5 h, covering the second move's last 30 min too); 헬스장 is gone,
    // which leaves four categories of an hour or more: no more `explorer`.
    world.db().exec(
        "UPDATE intervalstay SET end_time = '2026-11-23 14:00:00' WHERE category = '회사' AND start_time = '2026-11-23 11:00:00'; \
         DELETE FROM intervalstay WHERE category = '헬스장'",
    );
    report(&world, &["--full"]);
    assert_eq!(
        stat_rows(world.db(), WEEK),
        [
            row(1, "과거", 9 * H, "0.346154"),
            row(1, "이동", 2 * H, "0.076923"),
            row(1, "집", 11 * H, "0.423077"),
            row(1, "회사", 5 * H, "0.192308"),
        ]
    );
    assert_eq!(user_rows(world.db(), WEEK), [(1, 26 * H as u32, WEEK_SECONDS - 26 * H as u32, 3)]);
}

#[test]
fn the_default_week_is_the_last_finished_one_in_seoul() {
    let world = World::new().with_db();
    hand_computed_week(world.db());
    // Monday 00:30 in Seoul is still Sunday in UTC: the week that just ended is 2026-W48.
    let report: Value = world
        .run([
            "stats",
            "weekly",
            "--timezone",
            "Asia/Seoul",
            "--format",
            "json",
            "--now",
            "2026-11-29T15:30:00Z",
        ])
        .exits(0)
        .json();
    assert_eq!(report["week"], WEEK);
    assert_eq!(user_rows(world.db(), WEEK).len(), 1);
}

/// Users 1 and 2 get `build(backend, user, less)` with `less` = 0 and 1 second: user 1 must
/// earn exactly `code`, user 2 nothing.
fn assert_awarded_at_threshold_only(code: &str, build: impl Fn(&Backend, i64, i64)) {
    let world = World::new().with_db();
    users(world.db(), &[1, 2]);
    let backend = Backend::new(world.db());
    build(&backend, 1, 0);
    build(&backend, 2, 1);
    report(&world, &[]);
    assert_eq!(badges_of(world.db(), 1), [code], "at the threshold");
    assert!(badges_of(world.db(), 2).is_empty(), "one second below: {:?}", badges_of(world.db(), 2));
}

#[test]
fn homebody_needs_half_the_recorded_time_at_home() {
    assert_awarded_at_threshold_only("homebody", |b, user, less| {
        b.stay_for(user, 0, "00:00:00", "집", 24 * H - less);
        b.stay_for(user, 2, "00:00:00", "회사", 24 * H + less);
    });
}

#[test]
fn homebody_needs_48_hours_recorded() {
    assert_awarded_at_threshold_only("homebody", |b, user, less| {
        b.stay_for(user, 0, "00:00:00", "집", 24 * H);
        b.stay_for(user, 2, "00:00:00", "회사", 24 * H - less);
    });
}

#[test]
fn hard_worker_needs_45_hours_at_work() {
    assert_awarded_at_threshold_only("hard-worker", |b, user, less| {
        for day in 0..5 {
            b.stay_for(user, day, "09:00:00", "회사", 9 * H - if day == 4 { less } else { 0 });
        }
    });
}

#[test]
fn scholar_needs_20_hours_at_school() {
    assert_awarded_at_threshold_only("scholar", |b, user, less| {
        for day in 0..4 {
            b.stay_for(user, day, "09:00:00", "학교", 5 * H - if day == 3 { less } else { 0 });
        }
    });
}

#[test]
fn athlete_needs_5_hours_of_exercise() {
    assert_awarded_at_threshold_only("athlete", |b, user, less| {
        b.stay_for(user, 0, "18:00:00", "운동", 5 * H - less)
    });
}

#[test]
fn cafe_lover_needs_6_hours_in_cafes() {
    assert_awarded_at_threshold_only("cafe-lover", |b, user, less| {
        b.stay_for(user, 1, "10:00:00", "카페", 3 * H);
        b.stay_for(user, 3, "10:00:00", "카페", 3 * H - less);
    });
}

#[test]
fn social_needs_6_hours_of_meetings() {
    assert_awarded_at_threshold_only("social", |b, user, less| {
        b.stay_for(user, 5, "12:00:00", "모임", 6 * H - less)
    });
}

#[test]
fn everyday_needs_data_on_all_seven_days() {
    assert_awarded_at_threshold_only("everyday", |b, user, less| {
        // One second less means no interval at all on Sunday.
        for day in 0..7 - less {
            b.stay_for(user, day, "12:00:00", "기타", H / 2);
        }
    });
}

#[test]
fn explorer_needs_five_categories_of_an_hour_each() {
    assert_awarded_at_threshold_only("explorer", |b, user, less| {
        for (slot, category) in ["집", "식사", "쇼핑", "병원", "기타"].into_iter().enumerate() {
            let at = format!("{:02}:00:00", 8 + 2 * slot);
            b.stay_for(user, 0, &at, category, H - if category == "기타" { less } else { 0 });
        }
    });
}

#[test]
fn a_custom_rule_file_replaces_the_default_badges() {
    let world = World::new().with_db();
    users(world.db(), &[1, 2]);
    let b = Backend::new(world.db());
    b.stay_for(1, 0, "10:00:00", "카페", 2 * H);
    b.stay_for(1, 1, "10:00:00", "집", 6 * H);
    b.stay_for(2, 0, "18:00:00", "운동", 5 * H); // `athlete` in the default set
    let rules = world.file(
        "badges.toml",
        "[[badge]]\ncode = \"coffee-break\"\nname = \"커피 한 잔\"\n[badge.when]\n\
         category = \"카페\"\ncategory_share_at_least = 0.25\ndays_with_data_at_least = 2\n",
    );
    let report = report(&world, &["--badges", rules.to_str().unwrap()]);
    assert_eq!(badge_rows(world.db(), WEEK), [(1, "coffee-break".to_owned())]);
    assert_eq!(report["badges"], json!([{ "code": "coffee-break", "name": "커피 한 잔", "users": 1 }]));
}

#[test]
fn a_rule_file_with_an_unknown_condition_is_refused_naming_its_line() {
    let world = World::new().with_db();
    let rules = world.file(
        "badges.toml",
        "[[badge]]\ncode = \"x\"\nname = \"X\"\n[badge.when]\ncategory = \"집\"\ncategory_hour_at_least = 3\n",
    );
    let message = stats(&world, &["--badges", rules.to_str().unwrap()]).exits(78).stderr();
    assert!(
        message.contains("badges.toml, line 6") && message.contains("category_hour_at_least"),
        "{message}"
    );
    assert!(user_rows(world.db(), WEEK).is_empty());
}

#[test]
fn a_rule_file_that_is_not_toml_is_refused_naming_its_line() {
    let world = World::new().with_db();
    let rules = world.file("badges.toml", "[[badge]]\ncode = \"x\"\nname = X\n");
    stats(&world, &["--badges", rules.to_str().unwrap()]).exits(78).stderr_contains("badges.toml, line 3");
}

#[test]
fn notify_sends_each_winner_exactly_one_badge_push() {
    let world = World::new().with_db();
    world.db().add_users(&[(1, Some(TOKEN_A)), (2, Some(TOKEN_B)), (3, Some(TOKEN_C)), (4, Some("abc"))]);
    let b = Backend::new(world.db());
    b.stay_for(1, 0, "18:00:00", "운동", 5 * H);
    b.stay_for(1, 1, "10:00:00", "카페", 6 * H);
    b.stay_for(2, 0, "18:00:00", "운동", 5 * H);
    b.stay_for(3, 0, "18:00:00", "운동", H);
    b.stay_for(4, 0, "18:00:00", "운동", 5 * H); // a winner without a token
    let output = stats(&world, &["--notify", "--format", "json"]).exits(0);
    assert_eq!(world.fcm.total_requests(), 2);
    assert_eq!((world.fcm.deliveries(TOKEN_A), world.fcm.deliveries(TOKEN_B)), (1, 1));
    let requests = world.fcm.requests();
    let to_a = requests.iter().find(|r| r.token.as_deref() == Some(TOKEN_A)).unwrap();
    let message = &to_a.body.as_ref().unwrap()["message"];
    assert_eq!(message["data"], json!({ "type": "badge", "week": WEEK, "badges": "athlete,cafe-lover" }));
    assert_eq!(message["notification"]["title"], "From Wolley 🏅");
    assert_eq!(message["notification"]["body"], "지난주 기록으로 배지를 받았어요: 운동 꾸준러, 카페 단골");
    assert_eq!(message["apns"]["payload"]["aps"]["thread-id"], "badge");
    let summary = output.summary();
    assert_eq!((summary["job"].as_str(), summary["sent"].as_u64()), (Some("stats-notify"), Some(2)));
}

#[test]
fn notify_prunes_a_winner_s_dead_token() {
    let world = World::new().with_db();
    world.db().add_users(&[(1, Some(TOKEN_A)), (2, Some(TOKEN_B))]);
    let b = Backend::new(world.db());
    b.stay_for(1, 0, "18:00:00", "운동", 5 * H);
    b.stay_for(2, 0, "18:00:00", "운동", 5 * H);
    world.fcm.script(TOKEN_B, vec![Reply::unregistered()]);
    stats(&world, &["--notify", "-q"]).exits(0);
    assert_eq!(world.db().token_of(1).as_deref(), Some(TOKEN_A));
    assert_eq!(world.db().token_of(2), None);
}

#[test]
fn rerunning_a_week_does_not_notify_its_winners_twice_unless_forced() {
    let world = World::new().with_db();
    world.db().add_users(&[(1, Some(TOKEN_A))]);
    Backend::new(world.db()).stay_for(1, 0, "18:00:00", "운동", 5 * H);
    for _ in 0..2 {
        stats(&world, &["--notify", "-q"]).exits(0);
    }
    assert_eq!(world.fcm.deliveries(TOKEN_A), 1);
    stats(&world, &["--notify", "--force", "-q"]).exits(0);
    assert_eq!(world.fcm.deliveries(TOKEN_A), 2);
    let journal = world
        .db()
        .query::<(String, String, String)>("SELECT job, slot, status FROM wolley_push_run ORDER BY slot");
    let pass = |slot: &str| ("stats-notify".to_owned(), slot.to_owned(), "done".to_owned());
    assert_eq!(journal, vec![pass(WEEK), pass("2026-W48.2")]);
}

/// The backend's upload of `user`'s rows of the week, now: `last_updated` set to Seoul's wall
/// time (the backend's clock), as Django's `auto_now` does when the app posts its days.
fn upload_now(db: &TestDb, user: i64) {
    let now = "UTC_TIMESTAMP(6) + INTERVAL 9 HOUR";
    db.exec(&format!(
        "UPDATE dailypath SET last_updated = {now} WHERE user_id = {user}; \
         UPDATE intervalstay i JOIN dailypath d ON d.dailypath_id = i.daily_path_id \
           SET i.last_updated = {now} WHERE d.user_id = {user}"
    ));
}

/// (user, computed_at) of the week's rows.
fn computed_at(db: &TestDb) -> Vec<(i64, String)> {
    db.query(&format!(
        "SELECT user_id, CAST(computed_at AS CHAR) FROM wolley_push_weekly_user WHERE week = '{WEEK}' ORDER BY user_id"
    ))
}

/// (user, badge) of the week's badges that FCM accepted a notification of.
fn told(db: &TestDb) -> Vec<(i64, String)> {
    db.query(&format!(
        "SELECT user_id, badge FROM wolley_push_user_badge WHERE week = '{WEEK}' AND notified_at IS NOT NULL \
         ORDER BY user_id, badge"
    ))
}

#[test]
fn a_late_uploader_is_computed_by_the_next_run_and_the_others_rows_are_left_alone() {
    let world = World::new().with_db();
    let b = Backend::new(world.db());
    users(world.db(), &[1, 2, 3]);
    b.stay_for(1, 0, "09:00:00", "집", 3 * H);
    b.stay_for(2, 1, "09:00:00", "회사", 4 * H);
    let first = report(&world, &[]);
    assert_eq!((first["scope"].as_str(), first["users"].as_u64()), (Some("full"), Some(2)));
    let before = computed_at(world.db());
    b.stay_for(3, 2, "10:00:00", "카페", 2 * H);
    upload_now(world.db(), 3);
    let second = report(&world, &[]);
    assert_eq!((second["scope"].as_str(), second["users"].as_u64()), (Some("refresh"), Some(1)));
    let after = computed_at(world.db());
    assert_eq!(after[..2], before[..], "users 1 and 2 were rewritten");
    assert_eq!(after.iter().map(|r| r.0).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(user_rows(world.db(), WEEK)[2], (3, 2 * H as u32, WEEK_SECONDS - 2 * H as u32, 1));
}

/// `world` with users 1 (3 h at home on Monday) and 2 (4 h at work on Tuesday), computed once.
fn two_users_computed(world: World) -> World {
    let b = Backend::new(world.db());
    users(world.db(), &[1, 2]);
    b.stay_for(1, 0, "09:00:00", "집", 3 * H);
    b.stay_for(2, 1, "09:00:00", "회사", 4 * H);
    report(&world, &[]);
    world
}

/// User 2's app re-uploads their stay an hour longer, now (only the interval changes).
fn user_2_stays_an_hour_longer(db: &TestDb) {
    db.exec(
        "UPDATE intervalstay i JOIN dailypath d ON d.dailypath_id = i.daily_path_id \
         SET i.end_time = i.end_time + INTERVAL 1 HOUR, i.last_updated = UTC_TIMESTAMP(6) + INTERVAL 9 HOUR \
         WHERE d.user_id = 2",
    );
}

#[test]
fn a_changed_interval_alone_makes_its_user_recomputed() {
    let world = two_users_computed(World::new().with_db());
    user_2_stays_an_hour_longer(world.db());
    let refresh = report(&world, &[]);
    assert_eq!((refresh["scope"].as_str(), refresh["users"].as_u64()), (Some("refresh"), Some(1)));
    assert_eq!(stat_rows(world.db(), WEEK)[1], row(2, "회사", 5 * H, "1.000000"));
}

#[test]
fn a_user_with_days_but_nothing_countable_is_not_recomputed_by_every_refresh() {
    let world = World::new().with_db();
    let b = Backend::new(world.db());
    users(world.db(), &[1, 2]);
    b.stay_for(1, 0, "09:00:00", "집", 3 * H);
    b.stay_for(2, 1, "09:00:00", "회사", 0); // zero-length: ignored, so user 2 gets no row
    report(&world, &[]);
    let refresh = report(&world, &[]);
    assert_eq!(
        (refresh["scope"].as_str(), refresh["intervals_ignored"].as_u64()),
        (Some("refresh"), Some(0))
    );
}

#[test]
fn refreshes_find_changed_intervals_through_an_index_on_last_updated_when_there_is_one() {
    let world = World::new().with_db();
    world.db().exec(
        "CREATE INDEX intervalstay_last_updated ON intervalstay (last_updated); \
         CREATE INDEX intervalmove_last_updated ON intervalmove (last_updated)",
    );
    let world = two_users_computed(world);
    user_2_stays_an_hour_longer(world.db());
    let refresh = report(&world, &[]);
    assert_eq!((refresh["scope"].as_str(), refresh["users"].as_u64()), (Some("refresh"), Some(1)));
    assert_eq!(stat_rows(world.db(), WEEK)[1], row(2, "회사", 5 * H, "1.000000"));
}

#[test]
fn full_recomputes_every_user() {
    let world = two_users_computed(World::new().with_db());
    let full = report(&world, &["--full"]);
    assert_eq!((full["scope"].as_str(), full["users"].as_u64()), (Some("full"), Some(2)));
}

#[test]
fn a_recomputation_that_no_longer_earns_a_badge_keeps_it_and_says_so() {
    let world = World::new().with_db();
    let b = Backend::new(world.db());
    users(world.db(), &[1]);
    b.stay_for(1, 0, "18:00:00", "운동", 5 * H);
    report(&world, &[]);
    assert_eq!(badges_of(world.db(), 1), ["athlete"]);
    // The app re-uploads the day with the workout cut to one hour.
    world.db().exec("UPDATE intervalstay SET end_time = start_time + INTERVAL 1 HOUR");
    upload_now(world.db(), 1);
    let refresh = report(&world, &[]);
    assert_eq!(stat_rows(world.db(), WEEK), [row(1, "운동", H, "1.000000")]);
    assert_eq!(badges_of(world.db(), 1), ["athlete"]);
    assert_eq!((refresh["badges_awarded"].as_u64(), refresh["badges_kept"].as_u64()), (Some(0), Some(1)));
}

#[test]
fn a_full_recomputation_keeps_the_badges_it_no_longer_earns() {
    let world = World::new().with_db();
    let b = Backend::new(world.db());
    users(world.db(), &[1]);
    b.stay_for(1, 0, "18:00:00", "운동", 5 * H);
    report(&world, &[]);
    world.db().exec("DELETE FROM intervalstay");
    let full = report(&world, &["--full"]);
    assert_eq!(badges_of(world.db(), 1), ["athlete"]);
    assert_eq!(full["badges_kept"].as_u64(), Some(1));
}

#[test]
fn a_late_uploader_s_badge_is_told_by_the_refresh_and_the_first_winners_are_not_told_again() {
    let world = World::new().with_db();
    world.db().add_users(&[(1, Some(TOKEN_A)), (2, Some(TOKEN_B))]);
    let b = Backend::new(world.db());
    b.stay_for(1, 0, "18:00:00", "운동", 5 * H);
    stats(&world, &["--notify", "-q"]).exits(0);
    b.stay_for(2, 3, "18:00:00", "운동", 5 * H);
    upload_now(world.db(), 2);
    stats(&world, &["--notify", "-q"]).exits(0);
    assert_eq!((world.fcm.deliveries(TOKEN_A), world.fcm.deliveries(TOKEN_B)), (1, 1));
    assert_eq!(told(world.db()), [(1, "athlete".to_owned()), (2, "athlete".to_owned())]);
}

#[test]
fn a_badge_told_once_is_told_by_no_later_run_of_the_week() {
    let world = World::new().with_db();
    world.db().add_users(&[(1, Some(TOKEN_A)), (2, Some(TOKEN_B))]);
    let b = Backend::new(world.db());
    b.stay_for(1, 0, "18:00:00", "운동", 5 * H);
    stats(&world, &["--notify", "-q"]);
    b.stay_for(2, 3, "18:00:00", "운동", 5 * H);
    upload_now(world.db(), 2);
    stats(&world, &["--notify", "-q"]);
    for _ in 0..2 {
        stats(&world, &["--notify", "-q"]).exits(0);
    }
    assert_eq!((world.fcm.deliveries(TOKEN_A), world.fcm.deliveries(TOKEN_B)), (1, 1));
    let passes = world.db().query::<String>("SELECT slot FROM wolley_push_run ORDER BY slot");
    assert_eq!(passes, [WEEK, "2026-W48.2"], "a pass opened with nothing to tell");
}

#[test]
fn a_badge_newly_earned_by_a_known_winner_is_told_alone() {
    let world = World::new().with_db();
    world.db().add_users(&[(1, Some(TOKEN_A))]);
    let b = Backend::new(world.db());
    b.stay_for(1, 0, "18:00:00", "운동", 5 * H);
    stats(&world, &["--notify", "-q"]);
    b.stay_for(1, 1, "10:00:00", "카페", 6 * H);
    upload_now(world.db(), 1);
    stats(&world, &["--notify", "-q"]).exits(0);
    let requests = world.fcm.requests();
    let last = &requests.last().unwrap().body.as_ref().unwrap()["message"];
    assert_eq!(last["data"]["badges"], "cafe-lover");
    assert_eq!(world.fcm.deliveries(TOKEN_A), 2);
}

#[test]
fn a_badge_whose_notification_failed_stays_untold() {
    let world = World::new().with_db();
    world.db().add_users(&[(1, Some(TOKEN_A)), (2, Some(TOKEN_B))]);
    let b = Backend::new(world.db());
    b.stay_for(1, 0, "18:00:00", "운동", 5 * H);
    b.stay_for(2, 0, "18:00:00", "운동", 5 * H);
    world.fcm.script(TOKEN_B, vec![Reply::unregistered()]);
    stats(&world, &["--notify", "-q"]);
    assert_eq!(told(world.db()), [(1, "athlete".to_owned())]);
}

#[test]
fn a_badge_pass_killed_mid_send_is_finished_by_the_next_run_within_the_crash_bound() {
    const USERS: u32 = 3_000;
    let options =
        Options { latency: StdDuration::from_millis(20), record_bodies: false, ..Options::default() };
    let world = World::with_options(options).with_db();
    many_hand_computed_users(world.db(), USERS);
    let args = [
        "stats",
        "weekly",
        "--timezone",
        "Asia/Seoul",
        "--week",
        WEEK,
        "--notify",
        "-q",
        "--concurrency",
        "50",
    ];
    let mut child = world.std_cmd().args(args).spawn().unwrap();
    assert!(world.fcm.wait_for_deliveries(1000, StdDuration::from_secs(60)), "the pass did not get going");
    child.kill().unwrap();
    child.wait().unwrap();
    world.run(args).exits(0);
    assert_eq!(never_reached(&world.fcm, USERS), Vec::<u32>::new());
    let duplicated = duplicates(&world.fcm, USERS);
    assert!(duplicated <= 50 + 1000, "{duplicated} told twice after one kill");
    assert_eq!(told(world.db()).len(), USERS as usize, "every explorer badge is marked told");
    let sent = world.fcm.total_deliveries();
    world.run(args).exits(0);
    assert_eq!(world.fcm.total_deliveries(), sent, "a later run told someone again");
}

#[test]
fn week_values_that_are_not_iso_weeks_exit_2_with_the_reason() {
    let world = World::new().with_db();
    for (week, reason) in
        [("2026-W54", "2026 has no week 54"), ("2026-48", "lacks the \"-W\""), ("", "it is empty")]
    {
        let output = world.run(["stats", "weekly", "--week", week]);
        assert_eq!(output.code(), 2, "--week {week:?}: {}", output.stderr());
        assert!(output.stderr().contains(reason), "--week {week:?}: {}", output.stderr());
    }
}

#[test]
fn stats_before_migrate_asks_for_it() {
    let world = World::new().with_unmigrated_db();
    stats(&world, &[]).exits(78).stderr_contains("wolley-push migrate");
}

/// Users 1..=`count`, each with user 1's rows of [`hand_computed_week`] (copied in SQL: a few
/// statements whatever the count).
fn many_hand_computed_users(db: &TestDb, count: u32) {
    db.add_numbered_users(count);
    hand_computed_rows(db);
    db.exec(&format!(
        "INSERT INTO dailypath (dailypath_id, date, path_type, date_created, last_updated, user_id) \
           SELECT d.dailypath_id + s.seq * 1000, d.date, d.path_type, d.date_created, d.last_updated, s.seq \
           FROM dailypath d JOIN seq_2_to_{count} s WHERE d.user_id = 1; \
         INSERT INTO intervalstay (start_time, end_time, latitude, longitude, address, category, location, \
             location_id, percent, date_created, last_updated, daily_path_id) \
           SELECT i.start_time, i.end_time, i.latitude, i.longitude, i.address, i.category, i.location, \
             i.location_id, i.percent, i.date_created, i.last_updated, i.daily_path_id + s.seq * 1000 \
           FROM intervalstay i JOIN seq_2_to_{count} s WHERE i.daily_path_id < 1000; \
         INSERT INTO intervalmove (start_time, end_time, transport, percent, date_created, last_updated, \
             daily_path_id) \
           SELECT m.start_time, m.end_time, m.transport, m.percent, m.date_created, m.last_updated, \
             m.daily_path_id + s.seq * 1000 \
           FROM intervalmove m JOIN seq_2_to_{count} s WHERE m.daily_path_id < 1000"
    ));
}

/// User `user`'s rows of [`hand_computed_week`]'s figures, with `gym` as 헬스장's category.
fn hand_computed_stats(user: i64, gym: &str) -> Vec<(i64, String, u32, String)> {
    let mut rows = vec![
        row(user, "과거", 9 * H, "0.333333"),
        row(user, "이동", 2 * H, "0.074074"),
        row(user, "집", 11 * H, "0.407407"),
        row(user, gym, 3 * H / 2, "0.055556"),
        row(user, "회사", 4 * H, "0.148148"),
    ];
    rows.sort();
    rows
}

/// Every row the backend can read of the test week: statistics, users, badges.
type WeekRows = (Vec<(i64, String, u32, String)>, Vec<(i64, u32, u32, u8)>, Vec<(i64, String)>);

fn week_rows(db: &TestDb) -> WeekRows {
    (stat_rows(db, WEEK), user_rows(db, WEEK), badge_rows(db, WEEK))
}

/// What [`many_hand_computed_users`] amounts to for `count` users, 헬스장 counted as `gym`.
fn expected_week(count: u32, gym: &str) -> WeekRows {
    let users = 1..=i64::from(count);
    (
        users.clone().flat_map(|u| hand_computed_stats(u, gym)).collect(),
        users.clone().map(|u| (u, 27 * H as u32, WEEK_SECONDS - 27 * H as u32, 3)).collect(),
        users.map(|u| (u, "explorer".to_owned())).collect(),
    )
}

/// (batches, users) of the test week's published generation.
fn published_generation(db: &TestDb) -> Vec<(u32, u64)> {
    db.query(&format!(
        "SELECT g.batches, g.users FROM wolley_push_weekly_generation g \
         JOIN wolley_push_weekly_published p ON p.week = g.week AND p.generation = g.generation \
         WHERE g.week = '{WEEK}'"
    ))
}

#[test]
fn a_week_written_in_several_transactions_is_whole_and_matches_the_hand_computed_figures() {
    const USERS: u32 = 2_500;
    let world = World::new().with_db();
    many_hand_computed_users(world.db(), USERS);
    let report = report(&world, &[]);
    assert_eq!(report["users"], USERS);
    assert!(
        week_rows(world.db()) == expected_week(USERS, "헬스장"),
        "the week differs from the hand-computed one"
    );
    // Pages of 1,000 users, a transaction each.
    assert_eq!(published_generation(world.db()), [(3, u64::from(USERS))]);
}

/// Rows of generations nobody reads: a dead run's or a superseded week's.
fn unpublished_rows(db: &TestDb) -> u64 {
    db.query::<u64>(
        "SELECT (SELECT COUNT(*) FROM wolley_push_weekly_stat_gen) + (SELECT COUNT(*) FROM wolley_push_weekly_user_gen) \
              + (SELECT COUNT(*) FROM wolley_push_user_badge_gen) \
              - (SELECT COUNT(*) FROM wolley_push_weekly_stat) - (SELECT COUNT(*) FROM wolley_push_weekly_user) \
              - (SELECT COUNT(*) FROM wolley_push_user_badge)",
    )[0]
}

/// Spawns `stats weekly` and kills it (SIGKILL) once a batch of its generation is committed
/// and the week is not published yet. `false` when the run finished first.
fn kill_mid_write(world: &World) -> bool {
    let child = world
        .std_cmd()
        .args(["stats", "weekly", "--timezone", "Asia/Seoul", "--week", WEEK, "--full", "-q"])
        .spawn()
        .unwrap();
    let writing = format!(
        "SELECT COUNT(*) FROM wolley_push_weekly_generation \
         WHERE week = '{WEEK}' AND published_at IS NULL AND batches >= 1"
    );
    kill_once(child, || world.db().query::<u64>(&writing)[0] > 0)
}

/// Kills `child` (SIGKILL) as soon as `caught` holds while it runs: `true`; `false` when it
/// finished first (or after a minute).
fn kill_once(mut child: std::process::Child, caught: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + StdDuration::from_secs(60);
    loop {
        if caught() {
            child.kill().unwrap();
            child.wait().unwrap();
            return true;
        }
        if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
            let _ = child.kill();
            child.wait().unwrap();
            return false;
        }
        std::thread::sleep(StdDuration::from_millis(2));
    }
}

/// Waits until the server has ended the killed run's session, and with it the named lock
/// that marks its generation as being written (`db::stats`).
fn wait_for_dead_sessions(db: &TestDb) {
    let deadline = Instant::now() + StdDuration::from_secs(20);
    let held = "SELECT COUNT(*) FROM wolley_push_weekly_generation WHERE published_at IS NULL AND \
         IS_FREE_LOCK(CONCAT('wolley_push:weekly-generation:', generation, ':', LEFT(SHA1(DATABASE()), 12))) = 0";
    while db.query::<u64>(held)[0] > 0 {
        assert!(Instant::now() < deadline, "the killed run's session still holds its generation's lock");
        std::thread::sleep(StdDuration::from_millis(20));
    }
}

#[test]
fn a_run_killed_mid_write_leaves_the_previous_week_and_a_rerun_publishes_the_new_one() {
    const USERS: u32 = 6_000;
    let world = World::new().with_db();
    let db = world.db();
    many_hand_computed_users(db, USERS);
    let to_new = "UPDATE intervalstay SET category = '운동' WHERE category = '헬스장'";
    let to_old = "UPDATE intervalstay SET category = '헬스장' WHERE category = '운동'";
    let mut killed = false;
    for _ in 0..5 {
        report(&world, &[]);
        db.exec(to_new);
        killed = kill_mid_write(&world);
        if killed {
            break;
        }
        // Too quick to catch: put the old week back and try again.
        db.exec(to_old);
    }
    assert!(killed, "never caught stats weekly between its first batch and the publication");
    assert!(unpublished_rows(db) > 0, "killed before any batch was committed");
    assert!(
        week_rows(db) == expected_week(USERS, "헬스장"),
        "a reader sees something else than the old week"
    );
    wait_for_dead_sessions(db);
    report(&world, &["--full"]);
    assert!(week_rows(db) == expected_week(USERS, "운동"), "the rerun did not publish the whole new week");
    assert_eq!(unpublished_rows(db), 0, "the dead run's and the superseded rows are deleted");
}

/// Spawns a refresh of the test week and kills it (SIGKILL) once it has committed a page and
/// not finished. `false` when the run finished first.
fn kill_mid_refresh(world: &World, pages_before: u32) -> bool {
    let child = world
        .std_cmd()
        .args(["stats", "weekly", "--timezone", "Asia/Seoul", "--week", WEEK, "-q"])
        .spawn()
        .unwrap();
    kill_once(child, || published_generation(world.db())[0].0 > pages_before)
}

/// As if the week had been computed an hour ago, then every user's 헬스장 became `gym`, uploaded
/// 5 minutes ago (before the next run's computed_at, so a user it rewrote is done).
fn computed_an_hour_ago_then_uploaded(db: &TestDb, gym: &str) {
    db.exec(&format!(
        "UPDATE wolley_push_weekly_user_gen SET computed_at = computed_at - INTERVAL 1 HOUR; \
         UPDATE wolley_push_weekly_published SET computed_at = computed_at - INTERVAL 1 HOUR; \
         UPDATE intervalstay SET category = '{gym}', \
           last_updated = UTC_TIMESTAMP(6) + INTERVAL 9 HOUR - INTERVAL 5 MINUTE \
         WHERE category IN ('헬스장', '운동')"
    ));
}

#[test]
fn a_refresh_killed_mid_write_is_finished_by_the_next_run_without_redoing_its_pages() {
    const USERS: u32 = 6_000;
    let world = World::new().with_db();
    let db = world.db();
    many_hand_computed_users(db, USERS);
    report(&world, &[]);
    let mut killed = None;
    for gym in ["운동", "헬스장", "운동", "헬스장", "운동"] {
        computed_an_hour_ago_then_uploaded(db, gym);
        if kill_mid_refresh(&world, published_generation(db)[0].0) {
            killed = Some(gym);
            break;
        }
    }
    let gym = killed.expect("never caught the refresh between its first page and its end");
    let rerun = report(&world, &[]);
    assert_eq!(rerun["scope"], "refresh");
    let recomputed = rerun["users"].as_u64().unwrap();
    assert!(recomputed < u64::from(USERS), "the rerun recomputed the killed run's pages too");
    assert!(week_rows(db) == expected_week(USERS, gym), "the rerun did not finish the refresh");
}

#[test]
fn migrating_again_finishes_an_interrupted_upgrade_and_keeps_the_published_weeks() {
    let world = World::new().with_db();
    let db = world.db();
    hand_computed_week(db);
    report(&world, &[]);
    let published = week_rows(db);
    // As if `migrate` had stopped in version 5, after moving the statistics but before their view.
    db.exec("DROP VIEW wolley_push_weekly_stat; UPDATE wolley_push_schema SET version = 3 WHERE id = 1");
    migrate(db);
    migrate(db);
    assert_eq!(week_rows(db), published);
    let pending_key: Vec<String> = db.query(
        "SELECT COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() \
         AND TABLE_NAME = 'wolley_push_prune_log' AND INDEX_NAME = 'wolley_push_prune_log_pending' \
         ORDER BY SEQ_IN_INDEX",
    );
    assert_eq!(pending_key, ["job", "slot", "shard", "state", "id"]);
    report(&world, &[]);
    assert_eq!(week_rows(db), published, "a run after the second migration");
}

/// Path-daily's Monday run for the week (slot 2026-W49, first started 2026-11-30 00:10 in
/// Seoul and resumed at 00:40; FCM accepted 5), and the backend's days: users 1, 2 and 3
/// uploaded the week 5 minutes, 25 minutes and 3 hours after the push (user 2 twice), user 4
/// before it, user 5 only days outside the week (the Sunday before it, the next Monday).
fn uploads_after_the_push(db: &TestDb) {
    users(db, &[1, 2, 3, 4, 5]);
    db.exec(
        "INSERT INTO wolley_push_run (job, slot, shard, status, targeted, sent, host, pid, started_at, \
           first_started_at, updated_at) \
         VALUES ('path-daily', '2026-W49', '0/1', 'done', 5, 5, 'test', 1, '2026-11-29 15:40:00', \
           '2026-11-29 15:10:00', UTC_TIMESTAMP(6))",
    );
    let days: &[(i64, &str, &str)] = &[
        (1, "2026-11-25", "2026-11-30 00:15:00"),
        (2, "2026-11-26", "2026-11-30 00:35:00"),
        (2, "2026-11-27", "2026-11-30 02:00:00"),
        (3, "2026-11-28", "2026-11-30 03:10:00"),
        (4, "2026-11-24", "2026-11-30 00:09:59.999999"),
        (5, "2026-11-22", "2026-11-30 00:20:00"),
        (5, "2026-11-30", "2026-11-30 00:20:00"),
    ];
    for &(user, date, updated) in days {
        db.exec_with(
            "INSERT INTO dailypath (date, path_type, date_created, last_updated, user_id) \
             VALUES (?, 'daily', ?, ?, ?)",
            (date, updated, updated, user),
        );
    }
}

#[test]
fn uploads_count_the_users_who_uploaded_the_week_since_path_daily_first_started() {
    let world = World::new().with_db();
    uploads_after_the_push(world.db());
    let uploads = report(&world, &[])["uploads"].clone();
    assert_eq!(uploads["since"], "2026-11-30T00:10:00+09:00");
    assert_eq!((uploads["notified"].as_u64(), uploads["uploaded"].as_u64()), (Some(5), Some(3)));
    assert_eq!(uploads["coverage"], 0.6);
}

#[test]
fn arrivals_are_bucketed_by_each_user_s_first_upload_after_the_push() {
    let world = World::new().with_db();
    uploads_after_the_push(world.db());
    let arrivals = report(&world, &[])["uploads"]["arrivals"].clone();
    let arrivals = arrivals.as_array().unwrap();
    let counted: Vec<(u64, u64, u64)> = arrivals
        .iter()
        .filter(|a| a["users"] != 0)
        .map(|a| {
            (
                a["from_minutes"].as_u64().unwrap(),
                a["to_minutes"].as_u64().unwrap(),
                a["users"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(counted, [(0, 10, 1), (20, 30, 1), (180, 240, 1)]);
    // Every 10 minutes of the first 2 hours, then hourly up to the last arrival.
    assert_eq!(arrivals.len(), 14);
    assert_eq!(arrivals[12], json!({ "from_minutes": 120, "to_minutes": 180, "users": 0 }));
}

#[test]
fn the_human_report_says_how_many_notified_users_uploaded() {
    let world = World::new().with_db();
    uploads_after_the_push(world.db());
    let text = stats(&world, &[]).exits(0).stdout();
    assert!(
        text.contains("  uploads             3 of 5 notified (60.0%) since 2026-11-30T00:10:00+09:00\n"),
        "{text}"
    );
}

#[test]
fn without_a_path_daily_run_uploads_are_null_and_the_week_is_still_computed() {
    let world = World::new().with_db();
    hand_computed_week(world.db());
    // The run of the week itself (slot 2026-W48) announced the week before, not this one.
    world.db().exec(
        "INSERT INTO wolley_push_run (job, slot, shard, status, sent, host, pid, started_at, updated_at) \
         VALUES ('path-daily', '2026-W48', '0/1', 'done', 5, 'test', 1, '2026-11-22 15:10:00', UTC_TIMESTAMP(6))",
    );
    let json = report(&world, &[]);
    assert_eq!(json["uploads"], Value::Null);
    assert_eq!(json["users"], 1);
    let text = stats(&world, &[]).stdout();
    assert!(text.contains("  uploads: no path-daily run announced this week\n"), "{text}");
}

#[test]
fn the_metrics_file_gets_the_week_s_upload_coverage() {
    let world = World::new().with_db();
    uploads_after_the_push(world.db());
    let metrics = world.file("wolley-push.prom", "");
    stats(&world, &["-q", "--metrics-file", metrics.to_str().unwrap()]).exits(0);
    let text = std::fs::read_to_string(&metrics).unwrap();
    assert!(
        text.contains(
            "wolley_push_week_upload_coverage_ratio{wolley_job=\"stats-weekly\",week=\"2026-W48\"} 0.6\n"
        ),
        "{text}"
    );
}
