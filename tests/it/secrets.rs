//! Secrets never reach stdout or stderr, even at `-v`.

use fake_fcm::{FakeFcm, Reply};

use crate::harness::{server_url, RunToEnd, World};

const PASSWORD: &str = "pw-d0-not-print-me";

/// A MariaDB account with a password, for this test only.
struct PasswordUser {
    name: String,
    world_db: String,
}

impl PasswordUser {
    fn create(world: &World) -> Self {
        let name = format!("wolley_pw_{}", std::process::id());
        let db = world.db();
        db.exec(&format!("CREATE OR REPLACE USER '{name}'@'%' IDENTIFIED BY '{PASSWORD}'"));
        db.exec(&format!("CREATE OR REPLACE USER '{name}'@'localhost' IDENTIFIED BY '{PASSWORD}'"));
        for host in ["%", "localhost"] {
            db.exec(&format!("GRANT ALL ON `{}`.* TO '{name}'@'{host}'", db.name()));
        }
        PasswordUser { name, world_db: db.name().to_owned() }
    }

    fn url(&self) -> String {
        let host = server_url().rsplit('@').next().unwrap().to_owned();
        format!("mysql://{}:{PASSWORD}@{host}/{}", self.name, self.world_db)
    }
}

#[test]
fn secrets_never_appear_in_output_at_verbose_level() {
    let world = World::new().with_db();
    let user = PasswordUser::create(&world);
    let dead = "dead-device-token:APA91bF3x9QmZ1kTq7Lr2vYcN8sW4eJ6hU0pA5oD3";
    let alive = "alive-device-token:APA91bGk2Lq8Vn3Xz7Tr1Wy5Pm9Hs4Jd6Fb0Nc2";
    world.db().add_users(&[(1, Some(alive)), (2, Some(dead))]);
    world.fcm.script(dead, vec![Reply::unavailable(None), Reply::unregistered()]);
    let output = world.cmd().env("WOLLEY_DATABASE_URL", user.url()).args(["save-location", "-v"]).ran();
    let everything = format!("{}{}", output.stdout(), output.stderr());
    assert_eq!(output.code(), 0, "{everything}");
    assert!(everything.contains("dead-dev"), "the short form is what logs show: {everything}");
    let access_token =
        world.fcm.requests()[0].authorization.clone().unwrap().trim_start_matches("Bearer ").to_owned();
    let key_line = FakeFcm::private_key_pem().lines().nth(5).unwrap();
    for secret in [PASSWORD, access_token.as_str(), key_line, dead, alive] {
        assert!(!everything.contains(secret), "leaked {secret:.12}...: {everything}");
    }
}
