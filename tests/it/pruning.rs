//! Pruning deletes the backend's data, so it is judged on the whole slot and can be undone:
//! the prune breaker, the prune log and `tokens restore`.

use fake_fcm::{Options, Reply};

use crate::harness::{never_reached, numbered_token, World};

const SLOT: &str = "2026-11-30T14:30";

fn world(users: u32) -> World {
    let world = World::with_options(Options::default()).with_db();
    world.db().add_numbered_users(users);
    world
}

fn cleared(world: &World) -> u64 {
    world.db().query::<u64>("SELECT COUNT(*) FROM app_user WHERE fcmToken IS NULL")[0]
}

/// Users 1..=dead answer UNREGISTERED: old accounts, read first, hold the dead tokens.
fn with_dead_oldest(users: u32, dead: u32) -> World {
    let world = world(users);
    for user in 1..=dead {
        world.fcm.script(&numbered_token(user), vec![Reply::unregistered()]);
    }
    world
}

#[test]
fn a_key_of_another_project_removes_no_token_and_exits_78() {
    let world = world(2000);
    world.fcm.answer_every_send_with(Some(Reply::sender_id_mismatch()));
    world.run(["save-location"]).exits(78).stderr_contains("another Firebase project");
    assert_eq!(cleared(&world), 0, "no token may be removed");
    let journal = world.db().journal("save-location");
    assert_eq!((journal.status.as_str(), journal.pruned), ("failed", 0), "{journal:?}");
    assert!(journal.retrying > 0 && journal.adds_up(), "the held users are in the retry set: {journal:?}");
}

#[test]
fn after_the_key_is_fixed_a_rerun_reaches_the_users_the_breaker_held_back() {
    let world = world(500);
    world.fcm.answer_every_send_with(Some(Reply::sender_id_mismatch()));
    world.run(["save-location"]).exits(78);
    world.fcm.answer_every_send_with(None);
    world.run(["save-location"]).exits(0);
    assert_eq!(never_reached(&world.fcm, 500), Vec::<u32>::new());
    assert_eq!(world.db().journal("save-location").status, "done");
}

#[test]
fn a_few_percent_of_dead_tokens_are_all_pruned_even_when_they_come_first() {
    let world = with_dead_oldest(1000, 30);
    world.run(["save-location"]).exits(0);
    assert_eq!(cleared(&world), 30);
    assert_eq!(world.db().token_of(1), None);
    assert_eq!(world.db().token_of(31), Some(numbered_token(31)));
    let logged =
        world.db().query::<u64>("SELECT COUNT(*) FROM wolley_push_prune_log WHERE state = 'applied'");
    assert_eq!(logged, vec![30], "every removed token is in the prune log");
}

#[test]
fn force_prune_removes_a_mass_of_dead_tokens() {
    let world = with_dead_oldest(200, 200);
    world.run(["save-location"]).exits(78).stderr_contains("--force-prune");
    assert_eq!(cleared(&world), 0);
    for user in 1..=200 {
        world.fcm.script(&numbered_token(user), vec![Reply::unregistered()]);
    }
    world.run(["save-location", "--force-prune"]).exits(0);
    assert_eq!(cleared(&world), 200);
}

#[test]
fn tokens_restore_puts_a_slots_pruned_tokens_back_but_never_over_a_new_one() {
    let world = with_dead_oldest(1000, 30);
    world.run(["save-location"]).exits(0);
    world.db().exec("UPDATE app_user SET fcmToken = 'registered-again:APA91b-5' WHERE user_id = 5");
    let text = world.run(["tokens", "restore", "--job", "save-location", "--slot", SLOT]).exits(0).stdout();
    assert!(text.contains("restored 29 tokens") && text.contains("kept 1"), "{text}");
    assert_eq!(world.db().token_of(1), Some(numbered_token(1)));
    assert_eq!(world.db().token_of(5).as_deref(), Some("registered-again:APA91b-5"));
    assert_eq!(cleared(&world), 0);
}

#[test]
fn tokens_restore_since_a_time_reports_in_json() {
    let world = with_dead_oldest(100, 3);
    world.run(["save-location"]).exits(0);
    let value = world.run(["tokens", "restore", "--since", "2020-01-01", "--format", "json"]).exits(0).json();
    assert_eq!((value["restored"].as_u64(), value["kept"].as_u64()), (Some(3), Some(0)), "{value}");
    assert_eq!(cleared(&world), 0);
}

#[test]
fn tokens_restore_needs_a_slot_or_a_time() {
    World::new().run(["tokens", "restore", "--job", "save-location"]).exits(2).stderr_contains("--since");
}

/// Rows read from `wolley_push_prune_log` in `world`'s database so far, by index (MariaDB's
/// user statistics, switched on here: the server-wide counters other tests also move would not
/// say which database's rows were read).
fn prune_log_rows_read(world: &World) -> Vec<(String, u64)> {
    world.db().exec("SET GLOBAL userstat = 1");
    world.db().query(&format!(
        "SELECT INDEX_NAME, ROWS_READ FROM information_schema.INDEX_STATISTICS \
         WHERE TABLE_SCHEMA = '{}' AND TABLE_NAME = 'wolley_push_prune_log' ORDER BY INDEX_NAME",
        world.db().name()
    ))
}

#[test]
fn the_pending_pages_read_only_their_own_slot_s_rows() {
    const OLDER: u32 = 50_000;
    const DEAD: u32 = 1_500;
    let world = with_dead_oldest(DEAD, DEAD);
    // An older slot's rows, all with lower ids than this run's.
    world.db().exec(&format!(
        "INSERT INTO wolley_push_prune_log (job, slot, shard, user_id, token, reason, state, recorded_at) \
         SELECT 'save-location', '2026-11-30T14:00', '0/1', seq, 'old', 'UNREGISTERED', 'pending', UTC_TIMESTAMP(6) \
         FROM seq_1_to_{OLDER}; \
         ANALYZE TABLE wolley_push_prune_log"
    ));
    let before = prune_log_rows_read(&world);
    world.run(["save-location", "--force-prune"]).exits(0);
    assert_eq!(cleared(&world), u64::from(DEAD));
    let after = prune_log_rows_read(&world);
    let read = |name: &str, of: &[(String, u64)]| of.iter().find(|r| r.0 == name).map_or(0, |r| r.1);
    let delta = |name: &str| read(name, &after) - read(name, &before);
    let total: u64 = after.iter().map(|r| r.1).sum::<u64>() - before.iter().map(|r| r.1).sum::<u64>();
    assert!(
        delta("wolley_push_prune_log_pending") >= u64::from(DEAD),
        "pages not read by the index: {after:?}"
    );
    // Every own row a few times over (counting, paging, marking), never the older slot's.
    assert!(total < 4 * u64::from(DEAD), "{total} rows read for {DEAD} of the slot's own: {after:?}");
}
