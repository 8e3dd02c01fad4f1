//! Firebase installation IDs beside registration tokens: each value is sent in the field that
//! fits it (`fid` or `token`), never both, and everything else works for FIDs as for tokens.

use std::collections::BTreeMap;

use fake_fcm::Reply;

use crate::harness::{RunToEnd, World};

const TOKEN_A: &str = "valid-token-a:APA91bGk2Lq8Vn3Xz7Tr1Wy5Pm9Hs4Jd6";
const TOKEN_B: &str = "valid-token-b:APA91bHq4Tz8Vr2Lx6Nm0Ws3Pk9Jd5Fb1";
/// Installation IDs: 22 URL-safe base64 characters, the first c, d, e or f.
const FIDS: [&str; 4] =
    ["cR_8eKx2Q-2mP0aBcDeF9z", "dA1bC2dE3fG4hI5jK6lM7n", "eZ-yX_wV9uT8sR7qP6oN5m", "f0000000000000000000-_"];
/// Values that look almost like FIDs: tokens, to `auto`.
const NEAR_MISSES: [&str; 6] = [
    "cR_8eKx2Q-2mP0aBcDeF9",   // 21 characters
    "cR_8eKx2Q-2mP0aBcDeF9zz", // 23
    "aR_8eKx2Q-2mP0aBcDeF9z",  // first character outside c-f
    "gR_8eKx2Q-2mP0aBcDeF9z",  // just past f
    "cR_8eKx2Q+2mP0aBcDeF9z",  // standard base64's +
    "cR_8eKx2Q/2mP0aBcDeF9z",  // and /
];

/// Every value in the database, with user ids from 1.
fn mixed_world() -> World {
    let world = World::new().with_db();
    let values: Vec<&str> = [TOKEN_A, TOKEN_B].into_iter().chain(FIDS).chain(NEAR_MISSES).collect();
    let users: Vec<(i64, Option<&str>)> =
        values.iter().enumerate().map(|(i, v)| (i as i64 + 1, Some(*v))).collect();
    world.db().add_users(&users);
    world
}

/// The field each delivered value came in, from the fake's log; fails on a body naming both.
fn fields(world: &World) -> BTreeMap<String, &'static str> {
    let mut fields = BTreeMap::new();
    for request in world.fcm.requests() {
        let message = &request.body.as_ref().expect("a JSON body")["message"];
        assert!(
            !(message.get("token").is_some() && message.get("fid").is_some()),
            "a message names both: {message}"
        );
        let value = request.token.clone().expect("a target");
        fields.insert(value, request.target_field.expect("a target field"));
    }
    fields
}

#[test]
fn each_value_is_sent_in_the_field_that_fits_it() {
    let world = mixed_world();
    world.run(["save-location", "--format", "json"]).exits(0);
    let fields = fields(&world);
    assert_eq!(fields.len(), 12, "{fields:?}");
    for fid in FIDS {
        assert_eq!(fields[fid], "fid", "{fid}");
    }
    for token in [TOKEN_A, TOKEN_B].into_iter().chain(NEAR_MISSES) {
        assert_eq!(fields[token], "token", "{token}");
    }
}

#[test]
fn the_summary_counts_the_devices_by_how_they_are_addressed() {
    let world = mixed_world();
    let output = world.run(["save-location", "--format", "json"]).exits(0);
    assert_eq!(output.summary()["targets"], serde_json::json!({"token": 8, "fid": 4}));
    let text = world.run(["save-location", "--force"]).stdout();
    assert!(text.lines().any(|line| line.split_whitespace().eq(["as", "fid", "4"])), "{text}");
}

#[test]
fn targets_token_sends_every_value_as_a_token() {
    let world = mixed_world();
    world.run(["save-location", "--targets", "token"]).exits(0);
    assert!(fields(&world).values().all(|field| *field == "token"));
}

#[test]
fn a_dead_fid_is_pruned_and_can_be_restored() {
    let world = World::new().with_db();
    let mut users: Vec<(i64, Option<String>)> =
        (1..=40).map(|id| (id, Some(format!("live-token-{id}:APA91bXq")))).collect();
    users[4].1 = Some(FIDS[0].to_owned());
    let users: Vec<(i64, Option<&str>)> = users.iter().map(|(id, v)| (*id, v.as_deref())).collect();
    world.db().add_users(&users);
    world.fcm.script(FIDS[0], vec![Reply::unregistered()]);
    let output = world.run(["save-location", "--format", "json"]).exits(0);
    assert_eq!(output.summary()["pruned"], 1);
    assert_eq!(fields(&world)[FIDS[0]], "fid");
    assert_eq!(world.db().token_of(5), None);
    let restore = ["tokens", "restore", "--job", "save-location", "--slot", "2026-11-30T14:30"];
    world.run(restore).exits(0);
    assert_eq!(world.db().token_of(5).as_deref(), Some(FIDS[0]));
}

#[test]
fn send_fid_sends_one_message_in_the_fid_field() {
    let world = World::new();
    world.run(["send", "--fid", FIDS[1], "--kind", "save-location"]).exits(0);
    assert_eq!(fields(&world), BTreeMap::from([(FIDS[1].to_owned(), "fid")]));
}

#[test]
fn send_token_sends_even_an_fid_shaped_value_as_a_token() {
    let world = World::new();
    world.run(["send", "--token", FIDS[1]]).exits(0);
    assert_eq!(fields(&world), BTreeMap::from([(FIDS[1].to_owned(), "token")]));
}

#[test]
fn a_tokens_file_mixing_tokens_and_fids_prints_each_in_its_field() {
    let world = World::new();
    let tokens = world.file("tokens.txt", &format!("{TOKEN_A}\n7\t{}\n{}\n", FIDS[2], NEAR_MISSES[0]));
    let bodies =
        world.cmd().args(["path-daily", "--print", "--tokens-file"]).arg(&tokens).ran().exits(0).json_lines();
    let targets: Vec<(bool, bool)> = bodies
        .iter()
        .map(|body| (body["message"].get("token").is_some(), body["message"].get("fid").is_some()))
        .collect();
    assert_eq!(targets, vec![(true, false), (false, true), (true, false)]);
    assert_eq!(bodies[1]["message"]["fid"], FIDS[2]);
}
