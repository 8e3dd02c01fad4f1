//! The Wolley backend's MariaDB: connecting, classifying failures, and (in submodules) every SQL
//! statement wolley-push runs. mysql_async lives here and nowhere else.

pub mod doctor;
pub mod journal;
pub mod lock;
pub mod schema;
pub mod stats;
pub mod tokens;

use std::fmt;
use std::time::Duration;

use mysql_async::{Opts, Pool};

use crate::exit::ExitCode;

/// How long to wait for a connection before calling the database unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// MariaDB error numbers wolley-push reacts to.
mod code {
    pub const ACCESS_DENIED: u16 = 1045;
    pub const DB_ACCESS_DENIED: u16 = 1044;
    pub const UNKNOWN_DATABASE: u16 = 1049;
    pub const NO_SUCH_TABLE: u16 = 1146;
    pub const UNKNOWN_COLUMN: u16 = 1054;
}

/// A database URL whose `Display` never shows the password.
#[derive(Clone)]
pub struct DatabaseUrl {
    opts: Opts,
    masked: String,
}

impl DatabaseUrl {
    /// Parses a `mysql://user:password@host:port/database` URL.
    ///
    /// # Errors
    /// [`DbError::BadUrl`], which does not repeat the URL (it may hold a password).
    pub fn parse(text: &str) -> Result<Self, DbError> {
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
pub enum DbError {
    /// The URL cannot be used.
    #[error(
        "WOLLEY_DATABASE_URL / --database-url is not a valid MariaDB URL ({reason}); \
         expected mysql://USER:PASSWORD@HOST:3306/DATABASE"
    )]
    BadUrl {
        /// What is wrong with it.
        reason: String,
    },
    /// The server cannot be reached.
    #[error("cannot reach the database at {url}: {reason}; check that MariaDB is running and reachable, then run again")]
    Unreachable {
        /// The masked URL.
        url: String,
        /// What happened.
        reason: String,
    },
    /// The server refused the credentials or the database name.
    #[error("the database at {url} refused the connection: {reason}; check the user, password and database name in WOLLEY_DATABASE_URL")]
    AccessDenied {
        /// The masked URL.
        url: String,
        /// The server's message.
        reason: String,
    },
    /// A backend table or column is missing.
    #[error("the database at {url} lacks what wolley-push reads: {reason}; point WOLLEY_DATABASE_URL at the Wolley backend's database")]
    MissingBackendSchema {
        /// The masked URL.
        url: String,
        /// The server's message.
        reason: String,
    },
    /// wolley-push's own tables are missing or older than this build.
    #[error(transparent)]
    SchemaBehind(#[from] schema::SchemaBehind),
    /// wolley-push's own tables were migrated by a newer build.
    #[error(transparent)]
    SchemaAhead(#[from] schema::SchemaAhead),
    /// Any other failure of a statement.
    #[error("database error while {doing} at {url}: {reason}")]
    Query {
        /// What wolley-push was doing.
        doing: &'static str,
        /// The masked URL.
        url: String,
        /// The server's or driver's message.
        reason: String,
    },
}

impl DbError {
    /// Unreachable and query failures are worth a retry later; the rest need the operator.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            DbError::Unreachable { .. } | DbError::Query { .. } => ExitCode::TempFail,
            DbError::BadUrl { .. }
            | DbError::AccessDenied { .. }
            | DbError::MissingBackendSchema { .. }
            | DbError::SchemaBehind(_)
            | DbError::SchemaAhead(_) => ExitCode::Config,
        }
    }
}

/// A pool of connections to the backend's database.
#[derive(Clone)]
pub struct Database {
    pool: Pool,
    url: DatabaseUrl,
}

impl Database {
    /// Connects once to fail fast with a clear error, then keeps the pool.
    ///
    /// # Errors
    /// [`DbError::Unreachable`] or [`DbError::AccessDenied`].
    pub async fn connect(url: &DatabaseUrl) -> Result<Self, DbError> {
        let db = Database { pool: Pool::new(url.opts.clone()), url: url.clone() };
        let conn = db.conn().await?;
        drop(conn);
        Ok(db)
    }

    /// A connection from the pool.
    ///
    /// # Errors
    /// [`DbError::Unreachable`] or [`DbError::AccessDenied`].
    pub async fn conn(&self) -> Result<mysql_async::Conn, DbError> {
        match tokio::time::timeout(CONNECT_TIMEOUT, self.pool.get_conn()).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(error)) => Err(self.classify(error, "connecting")),
            Err(_) => Err(DbError::Unreachable {
                url: self.url.to_string(),
                reason: format!("no connection within {}s", CONNECT_TIMEOUT.as_secs()),
            }),
        }
    }

    /// Turns a driver error into the [`DbError`] an operator can act on.
    pub fn classify(&self, error: mysql_async::Error, doing: &'static str) -> DbError {
        let url = self.url.to_string();
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
                    _ => DbError::Query { doing, url, reason },
                }
            }
            mysql_async::Error::Io(io) => DbError::Unreachable { url, reason: io.to_string() },
            other if doing == "connecting" => DbError::Unreachable { url, reason: other.to_string() },
            other => DbError::Query { doing, url, reason: other.to_string() },
        }
    }

    /// Closes every connection; call before exit so the server sees clean disconnects.
    pub async fn close(self) {
        let _ = self.pool.disconnect().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
