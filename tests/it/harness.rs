//! Test support: a fresh MariaDB database per test, a fake FCM server with a matching
//! service-account key, and the real `wolley-push` binary wired to both.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use assert_cmd::Command;
use fake_fcm::{FakeFcm, Options};
use mysql_async::prelude::*;
use serde_json::Value;

/// The backend's schema: the repository's own copy (see the file's header).
const BACKEND_SCHEMA: &str = include_str!("../fixtures/schema/wolley-backend.sql");
/// A fixed "now" so slots and expirations are reproducible: Monday 2026-11-30 14:44 in Seoul.
pub const NOW: &str = "2026-11-30T05:44:00Z";

/// The MariaDB server tests use: `WOLLEY_TEST_DATABASE_URL`, default root on 127.0.0.1.
pub fn server_url() -> String {
    std::env::var("WOLLEY_TEST_DATABASE_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
}

/// A database of its own for one test, with the backend's tables; dropped with the value.
pub struct TestDb {
    name: String,
    runtime: tokio::runtime::Runtime,
    pool: mysql_async::Pool,
    server: mysql_async::Pool,
}

impl TestDb {
    /// A new database with the backend's schema.
    pub fn new() -> Self {
        let db = Self::empty();
        db.exec(BACKEND_SCHEMA);
        db
    }

    /// A new database without any table.
    pub fn empty() -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = format!("wolley_it_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let server = mysql_async::Pool::new(server_url().as_str());
        runtime
            .block_on(async {
                let mut conn = server.get_conn().await?;
                conn.query_drop(format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4")).await
            })
            .unwrap_or_else(|e| {
                panic!(
                    "MariaDB is not reachable at {} ({e}). These tests need a real MariaDB: start it \
                     (see .ci/run) or set WOLLEY_TEST_DATABASE_URL",
                    server_url()
                )
            });
        let pool = mysql_async::Pool::new(format!("{}/{name}", server_url()).as_str());
        TestDb { name, runtime, pool, server }
    }

    /// The URL the binary gets.
    pub fn url(&self) -> String {
        format!("{}/{}", server_url(), self.name)
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs statements (several allowed, separated by `;`).
    pub fn exec(&self, sql: &str) {
        self.runtime
            .block_on(async { self.pool.get_conn().await?.query_drop(sql).await })
            .unwrap_or_else(|e| panic!("test SQL failed: {e}\n{sql}"));
    }

    /// Runs one statement with bound parameters.
    pub fn exec_with(&self, sql: &str, params: impl Into<mysql_async::Params> + Send) {
        let params = params.into();
        self.runtime
            .block_on(async { self.pool.get_conn().await?.exec_drop(sql, params).await })
            .unwrap_or_else(|e| panic!("test SQL failed: {e}\n{sql}"));
    }

    /// Rows of a query.
    pub fn query<T: FromRow + Send + 'static>(&self, sql: &str) -> Vec<T> {
        self.runtime
            .block_on(async { self.pool.get_conn().await?.query(sql).await })
            .unwrap_or_else(|e| panic!("test SQL failed: {e}\n{sql}"))
    }

    /// Adds users with these tokens (and their `auth_user` rows).
    pub fn add_users(&self, users: &[(i64, Option<&str>)]) {
        self.runtime
            .block_on(async {
                let mut conn = self.pool.get_conn().await?;
                conn.exec_batch(
                    "INSERT INTO auth_user (id, password, is_superuser, username, first_name, last_name, email, \
                     is_staff, is_active, date_joined) VALUES (?, '', 0, CONCAT('user', ?), '', '', '', 0, 1, NOW())",
                    users.iter().map(|(id, _)| (id, id)),
                )
                .await?;
                conn.exec_batch(
                    "INSERT INTO app_user (user_id, fcmToken) VALUES (?, ?)",
                    users.iter().map(|(id, token)| (id, token)),
                )
                .await
            })
            .unwrap_or_else(|e| panic!("adding users failed: {e}"));
    }

    /// Adds `count` users with ids from 1 and tokens `token_of(id)`, in one statement.
    pub fn add_numbered_users(&self, count: u32) {
        self.exec(&format!(
            "INSERT INTO auth_user (id, password, is_superuser, username, first_name, last_name, email, \
               is_staff, is_active, date_joined) \
             SELECT seq, '', 0, CONCAT('user', seq), '', '', '', 0, 1, NOW() FROM seq_1_to_{count}; \
             INSERT INTO app_user (user_id, fcmToken) SELECT seq, CONCAT('{TOKEN_PREFIX}', seq) FROM seq_1_to_{count}"
        ));
    }

    /// A user's token now.
    pub fn token_of(&self, user_id: i64) -> Option<String> {
        self.query::<Option<String>>(&format!("SELECT fcmToken FROM app_user WHERE user_id = {user_id}"))
            .pop()
            .expect("the user exists")
    }
}

/// The shape of the tokens [`TestDb::add_numbered_users`] writes.
pub const TOKEN_PREFIX: &str = "fcm-token-for-user:APA91b-";

/// The token [`TestDb::add_numbered_users`] gives `user_id`.
pub fn numbered_token(user_id: u32) -> String {
    format!("{TOKEN_PREFIX}{user_id}")
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let (pool, server) = (self.pool.clone(), self.server.clone());
        let _ = self.runtime.block_on(async move {
            let _ = pool.disconnect().await;
            let mut conn = server.get_conn().await?;
            conn.query_drop(format!("DROP DATABASE IF EXISTS `{name}`")).await?;
            drop(conn);
            server.disconnect().await
        });
    }
}

/// A fake FCM server, its key on disk, and optionally a database: one test's world.
pub struct World {
    /// The fake FCM server.
    pub fcm: FakeFcm,
    /// The backend database, if the test has one.
    pub db: Option<TestDb>,
    dir: tempfile::TempDir,
    key_path: PathBuf,
}

impl World {
    /// A fake FCM with default options and no database.
    pub fn new() -> Self {
        Self::with_options(Options::default())
    }

    /// A fake FCM with these options and no database.
    pub fn with_options(options: Options) -> Self {
        let fcm = FakeFcm::start(options);
        let dir = tempfile::tempdir().unwrap();
        let key_path = dir.path().join("service-account.json");
        std::fs::write(&key_path, fcm.service_account_json()).unwrap();
        World { fcm, db: None, dir, key_path }
    }

    /// Adds a fresh backend database, with wolley-push's tables migrated.
    pub fn with_db(mut self) -> Self {
        let db = TestDb::new();
        migrate(&db);
        self.db = Some(db);
        self
    }

    /// Adds a fresh backend database without wolley-push's tables.
    pub fn with_unmigrated_db(mut self) -> Self {
        self.db = Some(TestDb::new());
        self
    }

    /// The database.
    pub fn db(&self) -> &TestDb {
        self.db.as_ref().expect("this world has a database")
    }

    /// Writes a file into the test's directory and returns its path.
    pub fn file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// The binary, pointed at the fake and the database, with short back-offs.
    pub fn cmd(&self) -> Command {
        let mut cmd = bare_cmd();
        cmd.env("GOOGLE_APPLICATION_CREDENTIALS", &self.key_path)
            .env("WOLLEY_FCM_ENDPOINT", self.fcm.endpoint())
            .env("WOLLEY_BACKOFF", "20ms")
            .env("WOLLEY_QUOTA_BACKOFF", "50ms");
        if let Some(db) = &self.db {
            cmd.env("WOLLEY_DATABASE_URL", db.url());
        }
        cmd
    }

    /// Runs the binary with `args` (see [`World::cmd`]) to its end.
    pub fn run<I, S>(&self, args: I) -> Ran
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd().args(args).ran()
    }

    /// The same, as a `std::process::Command` (for tests that spawn and signal it).
    pub fn std_cmd(&self) -> std::process::Command {
        let cmd = self.cmd();
        let mut std_cmd = std::process::Command::new(cmd.get_program());
        std_cmd.args(cmd.get_args());
        for (key, value) in cmd.get_envs() {
            match value {
                Some(value) => std_cmd.env(key, value),
                None => std_cmd.env_remove(key),
            };
        }
        std_cmd
    }
}

/// Runs `wolley-push migrate` on `db`.
pub fn migrate(db: &TestDb) {
    bare_cmd().arg("migrate").env("WOLLEY_DATABASE_URL", db.url()).ran().exits(0);
}

/// The binary with a clean environment: no configuration leaks in from the machine.
pub fn bare_cmd() -> Command {
    let mut cmd = Command::cargo_bin("wolley-push").unwrap();
    for var in [
        "WOLLEY_DATABASE_URL",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "WOLLEY_FCM_PROJECT_ID",
        "WOLLEY_FCM_ENDPOINT",
        "WOLLEY_CONCURRENCY",
        "WOLLEY_RATE",
        "WOLLEY_TIMEZONE",
        "RUST_LOG",
        "JOB_COMPLETION_INDEX",
        "WOLLEY_FAILPOINT",
        "WOLLEY_MAX_DEAD_SHARE",
    ] {
        cmd.env_remove(var);
    }
    // path-daily spreads its slot over 10 minutes by default; tests that spread say so.
    cmd.env("WOLLEY_NOW", NOW).env("WOLLEY_SPREAD", "0").timeout(Duration::from_secs(120));
    cmd
}

/// A slot's journal row, as `runs` and tests read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Journal {
    /// running, done, partial or failed.
    pub status: String,
    /// The checkpoint.
    pub checkpoint: i64,
    /// Users the slot reached.
    pub targeted: u64,
    /// Delivered.
    pub sent: u64,
    /// Dead tokens.
    pub pruned: u64,
    /// Failed for good.
    pub failed: u64,
    /// The retry set's size.
    pub retrying: u64,
}

impl Journal {
    /// `targeted == sent + pruned + failed + retrying`.
    pub fn adds_up(&self) -> bool {
        self.targeted == self.sent + self.pruned + self.failed + self.retrying
    }
}

impl TestDb {
    /// The only journal row of `job`.
    pub fn journal(&self, job: &str) -> Journal {
        let rows = self.query::<(String, i64, u64, u64, u64, u64, u64)>(&format!(
            "SELECT status, checkpoint_user_id, targeted, sent, pruned, failed, retrying \
             FROM wolley_push_run WHERE job = '{job}'"
        ));
        assert_eq!(rows.len(), 1, "one journal row of {job}: {rows:?}");
        let (status, checkpoint, targeted, sent, pruned, failed, retrying) = rows[0].clone();
        Journal { status, checkpoint, targeted, sent, pruned, failed, retrying }
    }

    /// The users in `job`'s retry set, in order.
    pub fn retry_set(&self, job: &str) -> Vec<i64> {
        self.query(&format!("SELECT user_id FROM wolley_push_retry WHERE job = '{job}' ORDER BY user_id"))
    }
}

/// How many deliveries to users 1..=`users` (numbered tokens) went beyond the first.
pub fn duplicates(fcm: &fake_fcm::FakeFcm, users: u32) -> u64 {
    (1..=users).map(|u| u64::from(fcm.deliveries(&numbered_token(u)).saturating_sub(1))).sum()
}

/// Users 1..=`users` never delivered to.
pub fn never_reached(fcm: &fake_fcm::FakeFcm, users: u32) -> Vec<u32> {
    (1..=users).filter(|&u| fcm.deliveries(&numbered_token(u)) == 0).collect()
}

/// A finished run of the binary: how it exited and what it printed. Its assertions show the
/// run's stderr and stdout when they fail.
pub struct Ran {
    output: std::process::Output,
}

impl From<std::process::Output> for Ran {
    fn from(output: std::process::Output) -> Self {
        Ran { output }
    }
}

impl Ran {
    /// Waits for a spawned run (with piped stdout and stderr, to see them) to end.
    pub fn wait(child: std::process::Child) -> Self {
        Ran::from(child.wait_with_output().unwrap())
    }

    /// Asserts that the run exited with `expected`; the run again, to look further.
    #[track_caller]
    pub fn exits(self, expected: i32) -> Self {
        let code = self.code();
        assert!(code == expected, "exited {code}, not {expected}\n{}", self.shown());
        self
    }

    /// Asserts that stderr contains `text`; the run again.
    #[track_caller]
    pub fn stderr_contains(self, text: &str) -> Self {
        assert!(self.stderr().contains(text), "stderr does not contain {text:?}\n{}", self.shown());
        self
    }

    /// The exit code, which must exist (no signal).
    #[track_caller]
    pub fn code(&self) -> i32 {
        let Some(code) = self.output.status.code() else { panic!("killed by a signal\n{}", self.shown()) };
        code
    }

    /// How the run ended.
    pub fn status(&self) -> std::process::ExitStatus {
        self.output.status
    }

    /// stderr as text.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// stdout as text.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    /// stdout as text, failing the test when it is not UTF-8.
    pub fn stdout_utf8(&self) -> String {
        String::from_utf8(self.output.stdout.clone()).expect("stdout is UTF-8")
    }

    /// The JSON summary a `--format json` run printed: the last line of stdout.
    #[track_caller]
    pub fn summary(&self) -> Value {
        let stdout = self.stdout();
        let Some(line) = stdout.lines().last() else { panic!("no summary on stdout\n{}", self.shown()) };
        self.parsed(line.as_bytes(), "the summary")
    }

    /// The whole of stdout as one JSON document.
    #[track_caller]
    pub fn json(&self) -> Value {
        self.parsed(&self.output.stdout, "stdout")
    }

    /// Each line of stdout as a JSON document (`--print`'s bodies).
    #[track_caller]
    pub fn json_lines(&self) -> Vec<Value> {
        let mut values = Vec::new();
        for line in self.stdout().lines() {
            values.push(self.parsed(line.as_bytes(), "a line of stdout"));
        }
        values
    }

    /// `text` (`what` of the run's output) as JSON.
    #[track_caller]
    fn parsed(&self, text: &[u8], what: &str) -> Value {
        match serde_json::from_slice(text) {
            Ok(value) => value,
            Err(e) => panic!("{what} is not JSON ({e})\n{}", self.shown()),
        }
    }

    /// Both streams, for a failure message.
    fn shown(&self) -> String {
        format!("--- stderr ---\n{}\n--- stdout ---\n{}", self.stderr().trim_end(), self.stdout().trim_end())
    }
}

/// Running a prepared command to its end, as a [`Ran`]: `world.cmd().env(..).args(..).ran()`.
pub trait RunToEnd {
    /// Runs the command and waits for it.
    fn ran(&mut self) -> Ran;
}

impl RunToEnd for Command {
    fn ran(&mut self) -> Ran {
        Ran::from(self.output().unwrap())
    }
}

impl RunToEnd for std::process::Command {
    fn ran(&mut self) -> Ran {
        Ran::from(self.output().unwrap())
    }
}

/// A MariaDB account of its own for one test, with a password, allowed only what it was
/// granted on one test database; dropped with the value.
pub struct TestUser {
    name: String,
    password: String,
    database: String,
    runtime: tokio::runtime::Runtime,
    server: mysql_async::Pool,
}

impl TestUser {
    /// A new account (`'wolley_it_user_…'@'%'`) granted `privileges` (e.g. `"SELECT"`) on `db`.
    pub fn granted(db: &TestDb, privileges: &str) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("wolley_it_user_{}_{n}", std::process::id());
        let password = format!("pw-{}-{n}-never-shown", std::process::id());
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let server = mysql_async::Pool::new(server_url().as_str());
        let sql = format!(
            "CREATE USER '{name}'@'%' IDENTIFIED BY '{password}'; \
             GRANT {privileges} ON `{}`.* TO '{name}'@'%'",
            db.name()
        );
        runtime
            .block_on(async { server.get_conn().await?.query_drop(&sql).await })
            .unwrap_or_else(|e| panic!("creating the test user failed: {e}"));
        TestUser { name, password, database: db.name().to_owned(), runtime, server }
    }

    /// The database URL the binary gets, password included.
    pub fn url(&self) -> String {
        let mut url = url::Url::parse(&server_url()).unwrap();
        url.set_username(&self.name).unwrap();
        url.set_password(Some(&self.password)).unwrap();
        url.set_path(&self.database);
        url.to_string()
    }

    /// The account's password, for tests that check it is never shown.
    pub fn password(&self) -> &str {
        &self.password
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let sql = format!("DROP USER IF EXISTS '{}'@'%'", self.name);
        let server = self.server.clone();
        let _ = self.runtime.block_on(async move {
            server.get_conn().await?.query_drop(sql).await?;
            server.disconnect().await
        });
    }
}

/// A connection of the test's own to a [`TestDb`], kept open with whatever transaction or lock
/// it holds until dropped (which disconnects: the server then ends both).
pub struct Session<'a> {
    db: &'a TestDb,
    conn: Option<mysql_async::Conn>,
}

impl TestDb {
    /// A connection of its own, e.g. to hold a transaction open while the binary runs.
    pub fn session(&self) -> Session<'_> {
        let conn = self.runtime.block_on(self.pool.get_conn()).unwrap_or_else(|e| panic!("connecting: {e}"));
        Session { db: self, conn: Some(conn) }
    }
}

impl Session<'_> {
    /// Runs statements on this connection.
    pub fn exec(&mut self, sql: &str) {
        let conn = self.conn.as_mut().expect("open");
        self.db
            .runtime
            .block_on(conn.query_drop(sql))
            .unwrap_or_else(|e| panic!("test SQL failed: {e}\n{sql}"));
    }

    /// The first row of a query on this connection.
    pub fn first<T: FromRow + Send + 'static>(&mut self, sql: &str) -> T {
        let conn = self.conn.as_mut().expect("open");
        self.db
            .runtime
            .block_on(conn.query_first(sql))
            .unwrap_or_else(|e| panic!("test SQL failed: {e}\n{sql}"))
            .unwrap_or_else(|| panic!("no row: {sql}"))
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            let _ = self.db.runtime.block_on(conn.disconnect());
        }
    }
}
