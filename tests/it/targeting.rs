//! Which devices a run reaches: only valid tokens, each once, all of them.

use crate::harness::{numbered_token, RunToEnd, World};

const VALID_A: &str = "valid-token-a:APA91bGk2Lq8Vn3Xz7Tr1Wy5Pm9Hs4Jd6";
const VALID_B: &str = "valid-token-b:APA91bHq4Tz8Vr2Lx6Nm0Ws3Pk9Jd5Fb1";

#[test]
fn only_valid_distinct_tokens_are_sent() {
    let world = World::new().with_db();
    let padded = format!("  {VALID_B}\t");
    world.db().add_users(&[
        (1, Some(VALID_A)),
        (2, None),
        (3, Some("")),
        (4, Some("abc")),
        (5, Some(VALID_A)),
        (6, Some("junk token with spaces")),
        (7, Some(&padded)),
        (8, Some("ctrl\u{7}char")),
    ]);
    let output = world.run(["save-location", "--format", "json"]).exits(0);
    assert_eq!(world.fcm.delivered_tokens(), vec![VALID_A.to_owned(), VALID_B.to_owned()]);
    assert_eq!(world.fcm.total_requests(), 2);
    let summary = output.summary();
    assert_eq!(
        (summary["targeted"].as_u64(), summary["sent"].as_u64(), summary["skipped"].as_u64()),
        (Some(2), Some(2), Some(3))
    );
}

#[test]
fn every_user_is_reached_once_across_many_pages() {
    let world = World::new().with_db();
    world.db().add_numbered_users(12_345);
    world.run(["save-location", "--format", "json"]).exits(0);
    assert_eq!(world.fcm.total_deliveries(), 12_345);
    assert_eq!(world.fcm.delivered_tokens().len(), 12_345);
    assert_eq!(world.fcm.deliveries(&numbered_token(12_345)), 1);
}

#[test]
fn a_tokens_file_replaces_the_database() {
    let world = World::new();
    let tokens = world.file("tokens.txt", &format!("# comment\n{VALID_A}\n42\t{VALID_B}\n\n{VALID_A}\n"));
    let output =
        world.cmd().args(["path-daily", "--format", "json", "--tokens-file"]).arg(&tokens).ran().exits(0);
    assert_eq!(world.fcm.delivered_tokens(), vec![VALID_A.to_owned(), VALID_B.to_owned()]);
    assert_eq!(output.summary()["skipped"], 1);
}

#[test]
fn tokens_can_come_from_stdin() {
    let world = World::new();
    world
        .cmd()
        .args(["save-location", "--tokens-file", "-"])
        .write_stdin(format!("{VALID_A}\n"))
        .ran()
        .exits(0);
    assert_eq!(world.fcm.deliveries(VALID_A), 1);
}

#[test]
fn a_token_shared_by_users_in_different_shards_is_sent_once() {
    let world = World::new().with_db();
    world.db().add_users(&[(1, Some(VALID_A)), (2, Some(VALID_A)), (3, Some(VALID_B))]);
    for shard in ["0/2", "1/2"] {
        world.run(["save-location", "--shard", shard]).exits(0);
    }
    assert_eq!(world.fcm.deliveries(VALID_A), 1);
    assert_eq!(world.fcm.deliveries(VALID_B), 1);
}

/// Its CRC-32 (235617765) is in the lower half of the hash range, `VALID_A`'s (2797972544) in
/// the upper: the database groups the two halves at once, on two connections.
const LOWER_HALF: &str = "valid-token-c:APA91bKr7Ws2Lq9Vx4Tz1Nm6Hp3Jd8Fc5";

#[test]
fn tokens_shared_in_either_half_of_the_hash_range_are_each_sent_once() {
    assert!(
        crc32fast::hash(LOWER_HALF.as_bytes()) < 1 << 31 && crc32fast::hash(VALID_A.as_bytes()) >= 1 << 31
    );
    let world = World::new().with_db();
    world.db().add_users(&[
        (1, Some(VALID_A)),
        (2, Some(LOWER_HALF)),
        (3, Some(VALID_A)),
        (4, Some(LOWER_HALF)),
    ]);
    let output = world.run(["save-location", "--format", "json"]).exits(0);
    assert_eq!(world.fcm.deliveries(VALID_A), 1);
    assert_eq!(world.fcm.deliveries(LOWER_HALF), 1);
    assert_eq!(output.summary()["skipped"], 2);
}

#[test]
fn a_token_shared_by_users_pages_apart_goes_to_the_lowest_only() {
    // Three pages of 10,000 users: the later pages are read ahead, while the run sends.
    let world = World::new().with_db();
    world.db().add_numbered_users(25_000);
    world.db().exec(&format!(
        "UPDATE app_user SET fcmToken = '{}' WHERE user_id IN (15000, 24000)",
        numbered_token(7)
    ));
    let output = world.run(["save-location", "--format", "json"]).exits(0);
    assert_eq!(world.fcm.deliveries(&numbered_token(7)), 1);
    assert_eq!(world.fcm.total_deliveries(), 24_998);
    assert_eq!(output.summary()["skipped"], 2);
}

#[test]
fn tokens_differing_only_in_case_are_different_devices() {
    let world = World::new().with_db();
    world.db().add_users(&[(1, Some(VALID_A)), (2, Some(&VALID_A.to_uppercase()))]);
    world.run(["save-location"]).exits(0);
    assert_eq!(world.fcm.total_deliveries(), 2);
}

/// Two different tokens with the same CRC-32 (`CRC32('collide:APA91b29685295')` =
/// `CRC32('collide:APA91b32060020')` = 2775260530): the database groups tokens on that hash
/// first, so these land in one group and must still be told apart on their bytes.
const COLLIDING: [&str; 2] = ["collide:APA91b29685295", "collide:APA91b32060020"];

#[test]
fn two_tokens_with_one_hash_are_two_devices() {
    let world = World::new().with_db();
    world.db().add_users(&[(1, Some(COLLIDING[0])), (2, Some(COLLIDING[1]))]);
    let output = world.run(["save-location", "--format", "json"]).exits(0);
    assert_eq!(world.fcm.deliveries(COLLIDING[0]), 1);
    assert_eq!(world.fcm.deliveries(COLLIDING[1]), 1);
    assert_eq!(output.summary()["skipped"], 0);
}

#[test]
fn in_a_group_of_colliding_tokens_each_token_goes_to_its_lowest_user_in_every_shard() {
    let world = World::new().with_db();
    let padded = format!("  {} ", COLLIDING[0]);
    world.db().add_users(&[
        (1, Some(COLLIDING[1])),
        (2, Some(COLLIDING[0])),
        (3, Some(COLLIDING[1])),
        (4, Some(&padded)),
        (5, Some(COLLIDING[0])),
        (6, Some(COLLIDING[1])),
    ]);
    let mut skipped = 0;
    for shard in ["0/2", "1/2"] {
        let summary = world.run(["save-location", "--format", "json", "--shard", shard]).exits(0).summary();
        skipped += summary["skipped"].as_u64().unwrap();
    }
    assert_eq!(world.fcm.deliveries(COLLIDING[0]), 1, "user 2 owns it");
    assert_eq!(world.fcm.deliveries(COLLIDING[1]), 1, "user 1 owns it");
    assert_eq!(world.fcm.total_deliveries(), 2);
    assert_eq!(skipped, 4);
}
