//! The Wolley backend's MariaDB: connecting, classifying failures, and (in submodules) every SQL
//! statement wolley-push runs. mysql_async lives here and nowhere else.

pub(crate) mod doctor;
pub(crate) mod ledger;
pub(crate) mod prune_log;
pub(crate) mod report;
pub(crate) mod schema;
pub(crate) mod stats;
pub(crate) mod tokens;

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use mysql_async::{Opts, Pool};

use crate::advice::Advice;
use crate::exit::ExitCode;

/// What the app stores until it has a real token (Django's default). With NULL and `''` it means
/// "no token": every statement that selects users with a token binds it (see [`has_token`]).
pub(crate) const PLACEHOLDER_TOKEN: &str = "abc";

/// The SQL condition "`column` holds a token", with one parameter: [`PLACEHOLDER_TOKEN`].
macro_rules! has_token {
    ($column:literal) => {
        concat!($column, " IS NOT NULL AND ", $column, " NOT IN ('', ?)")
    };
}
pub(crate) use has_token;

/// How long to wait for a connection before calling the database unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// MariaDB error numbers wolley-push reacts to.
mod code {
    pub(super) const ACCESS_DENIED: u16 = 1045;
    pub(super) const DB_ACCESS_DENIED: u16 = 1044;
    pub(super) const UNKNOWN_DATABASE: u16 = 1049;
    pub(super) const NO_SUCH_TABLE: u16 = 1146;
    pub(super) const UNKNOWN_COLUMN: u16 = 1054;
    /// "INSERT command denied to user 'u'@'h' for table `db`.`t`"
    pub(super) const TABLE_ACCESS_DENIED: u16 = 1142;
    /// "SELECT command denied to user 'u'@'h' for column 'c' in table 't'"
    pub(super) const COLUMN_ACCESS_DENIED: u16 = 1143;
    /// "Access denied; you need (at least one of) the SUPER privilege(s) for this operation"
    pub(super) const SPECIFIC_ACCESS_DENIED: u16 = 1227;
    /// "Unknown thread id: N" (KILL of a session that has ended)
    pub(super) const NO_SUCH_THREAD: u16 = 1094;
    /// "You are not owner of thread N" (KILL of another account's session)
    pub(super) const KILL_DENIED: u16 = 1095;
    /// "Lock wait timeout exceeded": `lock_wait_timeout` (metadata locks) or
    /// `innodb_lock_wait_timeout` (row locks) ran out.
    pub(super) const LOCK_WAIT_TIMEOUT: u16 = 1205;
}

/// `?, ?, …`: the placeholders of an `IN (…)` of `n` values. Statements whose number of values
/// varies bind positional parameters: a name cannot stand for the n-th of them.
pub(super) fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// The `VALUES` list of a multi-row `INSERT`: `rows` copies of `row`, e.g. `(?, ?, NOW())`
/// (positional, as [`placeholders`]).
pub(super) fn values_list(row: &str, rows: usize) -> String {
    vec![row; rows].join(", ")
}

/// Midnight of `date` as a bound DATETIME parameter (the backend's naive datetimes).
pub(super) fn date_value(date: chrono::NaiveDate) -> mysql_async::Value {
    datetime_value(date.and_time(chrono::NaiveTime::MIN))
}

/// `at` as a bound DATETIME parameter, to the microsecond.
pub(super) fn datetime_value(at: chrono::NaiveDateTime) -> mysql_async::Value {
    use chrono::{Datelike, Timelike};
    mysql_async::Value::Date(
        u16::try_from(at.year()).expect("weeks are in years 0 to 9999"),
        at.month() as u8,
        at.day() as u8,
        at.hour() as u8,
        at.minute() as u8,
        at.second() as u8,
        at.nanosecond() / 1_000,
    )
}

/// A database URL whose `Display` never shows the password.
#[derive(Clone)]
pub(crate) struct DatabaseUrl {
    opts: Opts,
    masked: String,
}

impl DatabaseUrl {
    /// Parses a `mysql://user:password@host:port/database` URL.
    ///
    /// # Errors
    /// [`DbError::BadUrl`], which does not repeat the URL (it may hold a password).
    pub(crate) fn parse(text: &str) -> Result<Self, DbError> {
        let bad = |reason: String| DbError::BadUrl { reason };
        let url = url::Url::parse(text).map_err(|e| bad(e.to_string()))?;
        if url.scheme() != "mysql" {
            return Err(bad(format!("the scheme is \"{}\", not \"mysql\"", url.scheme())));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(bad("it names no host".into()));
        }
        let opts = Opts::from_url(text).map_err(|e| bad(e.to_string()))?;
        Ok(DatabaseUrl { opts, masked: mask_password(url) })
    }
}

fn mask_password(mut url: url::Url) -> String {
    if url.password().is_some() {
        let _ = url.set_password(Some("***"));
    }
    url.to_string()
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked)
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.masked)
    }
}

/// A database failure, with what to do about it.
#[derive(Debug, thiserror::Error)]
#[error("{}; {}", self.what(), self.fix())]
pub enum DbError {
    /// The URL cannot be used.
    BadUrl { reason: String },
    /// The server cannot be reached.
    Unreachable { url: String, reason: String },
    /// The server refused the credentials or the database name.
    AccessDenied { url: String, reason: String },
    /// A backend table or column is missing.
    MissingBackendSchema { url: String, reason: String },
    /// The database user lacks a privilege a statement needs.
    PrivilegeMissing {
        url: String,
        /// What wolley-push was doing.
        doing: &'static str,
        /// The privileges the server named, as a phrase: `the INSERT privilege`, `the INSERT and
        /// UPDATE privileges`, `the SUPER or CONNECTION ADMIN privilege`.
        privilege: String,
        /// The statement that grants it, e.g. ``GRANT INSERT ON `wolley`.`wolley_push_run` ``.
        grant: String,
        reason: String,
    },
    /// wolley-push's own tables are missing or older than this build.
    SchemaBehind(#[from] schema::SchemaBehind),
    /// wolley-push's own tables were migrated by a newer build.
    SchemaAhead(#[from] schema::SchemaAhead),
    /// Another `migrate` of the same database held its lock past the wait.
    MigrateRunning(#[from] schema::MigrateRunning),
    /// Another session's lock kept a migration from running within the wait.
    MigrateBlocked(#[from] schema::MigrateBlocked),
    /// A stored value that cannot be what its column holds (a hand edit, or a newer build's).
    MalformedRow {
        /// The table read.
        table: &'static str,
        /// Its column (or the statement's alias for it).
        column: &'static str,
        /// The value as stored, quoted as SQL.
        found: String,
        /// What the column must hold, e.g. `a shard, K/N`.
        expected: &'static str,
    },
    /// Any other failure of a statement.
    Query {
        /// What wolley-push was doing.
        doing: &'static str,
        url: String,
        /// The server's or driver's message.
        reason: String,
    },
}

impl Advice for DbError {
    fn what(&self) -> String {
        match self {
            DbError::BadUrl { reason } => {
                format!("WOLLEY_DATABASE_URL / --database-url is not a valid MariaDB URL ({reason})")
            }
            DbError::Unreachable { url, reason } => format!("cannot reach the database at {url}: {reason}"),
            DbError::AccessDenied { url, reason } => {
                format!("the database at {url} refused the connection: {reason}")
            }
            DbError::MissingBackendSchema { url, reason } => {
                format!("the database at {url} lacks what wolley-push reads: {reason}")
            }
            DbError::PrivilegeMissing { url, doing, privilege, reason, .. } => {
                format!("the database user of {url} lacks {privilege}, needed while {doing}: {reason}")
            }
            DbError::SchemaBehind(behind) => behind.what(),
            DbError::SchemaAhead(ahead) => ahead.what(),
            DbError::MigrateRunning(running) => running.what(),
            DbError::MigrateBlocked(blocked) => blocked.what(),
            DbError::MalformedRow { table, column, found, expected } => {
                format!("{table}.{column} holds {found}, which is not {expected}")
            }
            DbError::Query { doing, url, reason } => {
                format!("database error while {doing} at {url}: {reason}")
            }
        }
    }

    fn fix(&self) -> Cow<'static, str> {
        match self {
            DbError::BadUrl { .. } => "expected mysql://USER:PASSWORD@HOST:3306/DATABASE".into(),
            DbError::Unreachable { .. } => {
                "check that MariaDB is running and that this host can reach its address and port, then run again".into()
            }
            DbError::AccessDenied { .. } => "check the user, password and database name in WOLLEY_DATABASE_URL, \
                and that the user may connect from this host"
                .into(),
            DbError::MissingBackendSchema { .. } => {
                "point WOLLEY_DATABASE_URL at the Wolley backend's database (the one its Django app migrates)".into()
            }
            DbError::PrivilegeMissing { grant, .. } => format!(
                "as a database administrator, {grant} TO that user (docs/troubleshooting.md lists \
                 what wolley-push needs), then run again"
            )
            .into(),
            DbError::SchemaBehind(behind) => behind.fix(),
            DbError::SchemaAhead(ahead) => ahead.fix(),
            DbError::MigrateRunning(running) => running.fix(),
            DbError::MigrateBlocked(blocked) => blocked.fix(),
            DbError::MalformedRow { .. } => {
                "correct or delete that row by hand (wolley-push writes only what it reads back), then run again"
                    .into()
            }
            DbError::Query { .. } => "check the database's health and the user's privileges, then run again".into(),
        }
    }
}

impl DbError {
    /// Unreachable, query failures and a migrate held up by another session are worth a retry
    /// later; the rest need the operator.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            DbError::Unreachable { .. }
            | DbError::Query { .. }
            | DbError::MigrateRunning(_)
            | DbError::MigrateBlocked(_) => ExitCode::TempFail,
            DbError::BadUrl { .. }
            | DbError::AccessDenied { .. }
            | DbError::MissingBackendSchema { .. }
            | DbError::PrivilegeMissing { .. }
            | DbError::MalformedRow { .. }
            | DbError::SchemaBehind(_)
            | DbError::SchemaAhead(_) => ExitCode::Config,
        }
    }
}

/// A result row read by column name (or the statement's alias), so that a statement's columns
/// can be reordered without swapping values.
pub(super) struct NamedRow {
    row: mysql_async::Row,
    /// The table read, for the error.
    table: &'static str,
}

impl NamedRow {
    pub(super) fn new(row: mysql_async::Row, table: &'static str) -> Self {
        NamedRow { row, table }
    }

    /// Takes the value of `column` out of the row.
    ///
    /// # Errors
    /// [`DbError::MalformedRow`] when the stored value cannot be a `T`.
    ///
    /// # Panics
    /// When the statement has no such column: the statement and its reader disagree.
    pub(super) fn get<T: mysql_async::prelude::FromValue>(
        &mut self,
        column: &'static str,
    ) -> Result<T, DbError> {
        match self.row.take_opt::<T, _>(column) {
            Some(Ok(value)) => Ok(value),
            Some(Err(mysql_async::FromValueError(found))) => {
                Err(self.malformed(column, &found, "of the column's type"))
            }
            None => panic!("the statement reading {} selects no column {column}", self.table),
        }
    }

    /// Takes the text of `column` out of the row and parses it into what `stored` holds.
    ///
    /// # Errors
    /// [`DbError::MalformedRow`], naming `stored` and `expected`, when the text does not parse.
    pub(super) fn parse<T: std::str::FromStr>(
        &mut self,
        column: &'static str,
        stored: &'static str,
        expected: &'static str,
    ) -> Result<T, DbError> {
        let text: String = self.get(column)?;
        text.parse().map_err(|_| self.malformed(stored, &text.as_str().into(), expected))
    }

    fn malformed(&self, column: &'static str, found: &mysql_async::Value, expected: &'static str) -> DbError {
        DbError::MalformedRow { table: self.table, column, found: found.as_sql(false), expected }
    }
}

/// Lock names are global to the server: qualify them by database, within the 64-character
/// limit, so staging and production (or parallel tests) on one server do not collide.
pub(super) async fn qualified_lock_name(
    conn: &mut mysql_async::Conn,
    name: &str,
) -> mysql_async::Result<String> {
    use mysql_async::prelude::Queryable as _;
    let qualified: Option<String> = conn
        .exec_first("SELECT CONCAT('wolley_push:', ?, ':', LEFT(SHA1(IFNULL(DATABASE(), '')), 12))", (name,))
        .await?;
    Ok(qualified.unwrap_or_else(|| format!("wolley_push:{name}")))
}

/// What wolley-push was doing when the database failed. While connecting, any failure of the
/// driver means the server cannot be reached; during a statement it is that statement's failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Doing {
    Connecting,
    /// Running a statement, named for the operator.
    Statement(&'static str),
}

impl Doing {
    /// The phrase the error's text puts after "while".
    fn described(self) -> &'static str {
        match self {
            Doing::Connecting => "connecting",
            Doing::Statement(doing) => doing,
        }
    }
}

/// A pool of connections to the backend's database.
#[derive(Clone)]
pub(crate) struct Database {
    pool: Pool,
    url: DatabaseUrl,
}

impl Database {
    /// Connects once to fail fast with a clear error, then keeps the pool.
    ///
    /// # Errors
    /// [`DbError::Unreachable`] or [`DbError::AccessDenied`].
    pub(crate) async fn connect(url: &DatabaseUrl) -> Result<Self, DbError> {
        let db = Database { pool: Pool::new(url.opts.clone()), url: url.clone() };
        let conn = db.conn().await?;
        drop(conn);
        Ok(db)
    }

    /// The server's clock, in UTC: the one clock every run of every host shares.
    ///
    /// # Errors
    /// As classified.
    pub(crate) async fn utc_now(&self) -> Result<chrono::DateTime<chrono::Utc>, DbError> {
        use mysql_async::prelude::Queryable as _;
        let mut conn = self.conn().await?;
        let micros: Option<i64> = conn
            .query_first("SELECT TIMESTAMPDIFF(MICROSECOND, '1970-01-01', UTC_TIMESTAMP(6))")
            .await
            .map_err(|e| self.classify(e, "reading the server's clock"))?;
        Ok(chrono::DateTime::from_timestamp_micros(micros.unwrap_or_default()).unwrap_or_default())
    }

    /// A connection from the pool.
    ///
    /// # Errors
    /// [`DbError::Unreachable`] or [`DbError::AccessDenied`].
    pub(crate) async fn conn(&self) -> Result<mysql_async::Conn, DbError> {
        match tokio::time::timeout(CONNECT_TIMEOUT, self.pool.get_conn()).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(error)) => Err(self.classify_connecting(error)),
            Err(_) => Err(DbError::Unreachable {
                url: self.url.to_string(),
                reason: format!("no connection within {}s", CONNECT_TIMEOUT.as_secs()),
            }),
        }
    }

    /// Turns a statement's driver error into the [`DbError`] an operator can act on; `doing`
    /// names the statement's purpose for the operator (`reading the server's clock`).
    pub(crate) fn classify(&self, error: mysql_async::Error, doing: &'static str) -> DbError {
        self.classify_during(error, Doing::Statement(doing))
    }

    /// As [`Database::classify`], for a failure while a connection is being set up: one the
    /// server did not answer means it cannot be reached.
    pub(crate) fn classify_connecting(&self, error: mysql_async::Error) -> DbError {
        self.classify_during(error, Doing::Connecting)
    }

    fn classify_during(&self, error: mysql_async::Error, phase: Doing) -> DbError {
        let url = self.url.to_string();
        let doing = phase.described();
        match error {
            mysql_async::Error::Server(server) => {
                let reason = format!("{} (error {})", server.message, server.code);
                match server.code {
                    code::ACCESS_DENIED | code::DB_ACCESS_DENIED | code::UNKNOWN_DATABASE => {
                        DbError::AccessDenied { url, reason }
                    }
                    code::NO_SUCH_TABLE | code::UNKNOWN_COLUMN => {
                        DbError::MissingBackendSchema { url, reason }
                    }
                    code::TABLE_ACCESS_DENIED | code::COLUMN_ACCESS_DENIED | code::SPECIFIC_ACCESS_DENIED => {
                        let Missing { privilege, grant } = missing_privilege(server.code, &server.message);
                        DbError::PrivilegeMissing { url, doing, privilege, grant, reason }
                    }
                    code::KILL_DENIED => DbError::PrivilegeMissing {
                        url,
                        doing,
                        privilege: "the CONNECTION ADMIN privilege".to_owned(),
                        grant: "GRANT CONNECTION ADMIN ON *.*".to_owned(),
                        reason,
                    },
                    _ => DbError::Query { doing, url, reason },
                }
            }
            mysql_async::Error::Io(io) => DbError::Unreachable { url, reason: io.to_string() },
            other if phase == Doing::Connecting => DbError::Unreachable { url, reason: other.to_string() },
            other => DbError::Query { doing, url, reason: other.to_string() },
        }
    }

    /// The database did not answer: `reason` says how.
    pub(crate) fn unreachable(&self, reason: String) -> DbError {
        DbError::Unreachable { url: self.url.to_string(), reason }
    }

    /// Closes every connection; call before exit so the server sees clean disconnects.
    pub(crate) async fn close(self) {
        let _ = self.pool.disconnect().await;
    }
}

/// The privilege a "denied" error names, and the GRANT that gives it.
#[derive(Debug, PartialEq, Eq)]
struct Missing {
    privilege: String,
    grant: String,
}

/// Reads MariaDB's wording of errors 1142, 1143 and 1227 (stable since MySQL 5): the privilege
/// comes first ("INSERT command denied ..."), the table last, or "you need (at least one of)
/// the X, Y privilege(s)". A wording it does not know still yields an honest, vaguer hint.
fn missing_privilege(code: u16, message: &str) -> Missing {
    let generic = || Missing {
        privilege: "a privilege it needs".to_owned(),
        grant: "GRANT the privilege the server names on the object it names".to_owned(),
    };
    let object = |after: &str| {
        let table = message.rsplit_once(after)?.1.trim();
        // 1143 quotes the table 'like this'; GRANT wants `like this`.
        Some(match table.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')) {
            Some(name) => format!("`{name}`"),
            None => table.to_owned(),
        })
    };
    let found = match code {
        code::TABLE_ACCESS_DENIED | code::COLUMN_ACCESS_DENIED => {
            let privilege = message.split_once(" command denied").map(|(p, _)| p.trim().to_owned());
            let on = object(if code == code::TABLE_ACCESS_DENIED { " for table " } else { " in table " });
            privilege.zip(on).map(|(privilege, on)| Missing {
                grant: format!("GRANT {privilege} ON {on}"),
                privilege: match privilege.rsplit_once(", ") {
                    Some((first, last)) => format!("the {first} and {last} privileges"),
                    None => format!("the {privilege} privilege"),
                },
            })
        }
        _ => {
            let named = message.split_once(" the ").and_then(|(_, rest)| rest.split_once(" privilege"));
            named.map(|(privileges, _)| {
                let privileges = privileges.trim().to_owned();
                let grant = match privileges.contains(',') {
                    true => format!("GRANT one of {privileges} ON *.*"),
                    false => format!("GRANT {privileges} ON *.*"),
                };
                Missing { privilege: format!("the {} privilege", privileges.replace(", ", " or ")), grant }
            })
        }
    };
    found.unwrap_or_else(generic)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_privilege_error_names_the_privilege_and_the_grant() {
        let message = "INSERT command denied to user 'ro'@'127.0.0.1' for table `wolley`.`wolley_push_run`";
        assert_eq!(
            missing_privilege(1142, message),
            Missing {
                privilege: "the INSERT privilege".into(),
                grant: "GRANT INSERT ON `wolley`.`wolley_push_run`".into()
            }
        );
    }

    #[test]
    fn a_statement_denied_two_privileges_names_both() {
        let message =
            "INSERT, UPDATE command denied to user 'ro'@'localhost' for table `wolley`.`wolley_push_run`";
        assert_eq!(
            missing_privilege(1142, message),
            Missing {
                privilege: "the INSERT and UPDATE privileges".into(),
                grant: "GRANT INSERT, UPDATE ON `wolley`.`wolley_push_run`".into()
            }
        );
    }

    #[test]
    fn a_column_privilege_error_grants_on_the_table() {
        let message =
            "SELECT command denied to user 'ro'@'127.0.0.1' for column 'fcmToken' in table 'app_user'";
        assert_eq!(
            missing_privilege(1143, message),
            Missing { privilege: "the SELECT privilege".into(), grant: "GRANT SELECT ON `app_user`".into() }
        );
    }

    #[test]
    fn a_global_privilege_error_names_each_privilege_that_would_do() {
        let message =
            "Access denied; you need (at least one of) the SUPER, CONNECTION ADMIN privilege(s) for this operation";
        assert_eq!(
            missing_privilege(1227, message),
            Missing {
                privilege: "the SUPER or CONNECTION ADMIN privilege".into(),
                grant: "GRANT one of SUPER, CONNECTION ADMIN ON *.*".into()
            }
        );
    }

    #[test]
    fn an_unknown_wording_still_says_to_grant() {
        assert!(missing_privilege(1142, "denied").grant.starts_with("GRANT the privilege"));
    }

    #[test]
    fn the_password_is_masked_when_a_url_is_shown() {
        let url = DatabaseUrl::parse("mysql://wolley:s3cret@db.internal:3306/wolley").unwrap();
        assert_eq!(url.to_string(), "mysql://wolley:***@db.internal:3306/wolley");
        assert!(!format!("{url:?}").contains("s3cret"));
    }

    #[test]
    fn a_malformed_url_is_refused_without_repeating_it() {
        let err = DatabaseUrl::parse("mysql//wolley:s3cret@db").unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
        assert_eq!(err.exit_code(), ExitCode::Config);
    }

    #[test]
    fn a_url_of_another_scheme_is_refused() {
        let err = DatabaseUrl::parse("postgres://u:p@h/db").unwrap_err();
        assert!(err.to_string().contains("\"postgres\""), "{err}");
    }
}
