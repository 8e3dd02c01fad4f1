//! `doctor`: checks a wolley-push install before cron depends on it, and prints a checklist an
//! operator can act on at 3 a.m.: one line per check, `OK`, `WARN`, `FAIL` with the reason and
//! the fix, or `SKIP` when a check it depends on failed.
//!
//! It reuses the pieces the jobs use (key loading, the authenticator, the FCM client, the
//! database pool and schema check), so a check that passes here passes in the job. It sends one
//! `validate_only` message to a made-up device token: nothing is ever delivered, pruned or
//! recorded.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;

use crate::advice::Advice;
use crate::config::Config;
use crate::db::{schema, Database, DatabaseUrl, DbError};
use crate::error::Result;
use crate::exit::ExitCode;
use crate::fcm::auth::{AuthError, Authenticator, ServiceAccountKey};
use crate::fcm::message::{Message, RequestTemplate};
use crate::fcm::{FatalSendError, Verdict};
use crate::output::{self, Format};
use crate::slot;
use crate::timeout::RequestTimer;

/// The check names, stable for scripts reading `--format json`.
const CONFIG: &str = "config";
const KEY: &str = "key";
const KEY_PERMISSIONS: &str = "key-permissions";
const OAUTH: &str = "oauth";
const FCM: &str = "fcm";
const DATABASE: &str = "database";
const BACKEND_TABLES: &str = "backend-tables";
const SCHEMA: &str = "schema";
const TOKENS: &str = "tokens";
const STATS_INDEXES: &str = "stats-indexes";

/// A syntactically plausible registration token no device has: FCM validates the request,
/// then answers that the token is not valid, which proves authentication and permission.
const DOCTOR_TOKEN: &str =
    "wolley-push-doctor:APA91bDoctorCheckNotARealDeviceTokenNothingIsDelivered0000000000";
/// Time limit of one database statement (connecting has its own).
const QUERY_TIMEOUT: Duration = Duration::from_secs(15);

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    Ok,
    /// Works, but deserves attention; does not fail doctor.
    Warn,
    /// Broken: the jobs would fail.
    Fail,
    /// Not run, because a check it depends on failed.
    Skip,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
            Status::Skip => "SKIP",
        }
    }
}

/// One line of the checklist.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Check {
    /// What was checked.
    pub name: &'static str,
    /// How it went.
    pub status: Status,
    /// What was found (or why the check was skipped).
    pub detail: String,
    /// What to do about a warning or failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// The exit code a failure of this check deserves.
    #[serde(skip)]
    pub exit_code: ExitCode,
}

impl Check {
    fn ok(name: &'static str, detail: impl Into<String>) -> Self {
        Check { name, status: Status::Ok, detail: detail.into(), fix: None, exit_code: ExitCode::Success }
    }

    fn warn(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Check {
            name,
            status: Status::Warn,
            detail: detail.into(),
            fix: Some(fix.into()),
            exit_code: ExitCode::Success,
        }
    }

    fn fail(name: &'static str, code: ExitCode, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Check { name, status: Status::Fail, detail: detail.into(), fix: Some(fix.into()), exit_code: code }
    }

    fn skip(name: &'static str, why: &str) -> Self {
        Check { name, status: Status::Skip, detail: why.to_owned(), fix: None, exit_code: ExitCode::Success }
    }

    fn passed(&self) -> bool {
        self.status != Status::Fail
    }
}

/// Runs every check, prints the checklist, and returns 0 when nothing failed, otherwise the
/// exit code of the first failure (78 configuration, 75 temporary).
///
/// # Errors
/// Only when stdout cannot be written: every problem found is a line of the checklist.
pub(crate) async fn run(config: &Config) -> Result<ExitCode> {
    let checks = checklist(config).await;
    let code = checks.iter().find(|check| !check.passed()).map_or(ExitCode::Success, |check| check.exit_code);
    if !(config.output.quiet && code == ExitCode::Success) {
        let text = render(&checks, config.output.format, config.output.quiet);
        output::print(&text)?;
    }
    Ok(code)
}

/// Every check, in the order they are printed.
pub(crate) async fn checklist(config: &Config) -> Vec<Check> {
    let mut checks = vec![configured(config)];
    checks.extend(credential_checks(config).await);
    checks.extend(database_checks(config).await);
    checks
}

/// The checklist as text: one line per check and a verdict (only the lines that are not OK
/// with `-q`), or one JSON object.
pub(crate) fn render(checks: &[Check], format: Format, quiet: bool) -> String {
    let failed = checks.iter().filter(|check| !check.passed()).count();
    if format == Format::Json {
        let report = serde_json::json!({ "ok": failed == 0, "checks": checks });
        return report.to_string() + "\n";
    }
    let mut out = String::new();
    for check in checks.iter().filter(|check| !quiet || check.status != Status::Ok) {
        let _ = write!(out, "{:<5}{}: {}", check.status.label(), check.name, check.detail);
        if let Some(fix) = &check.fix {
            let _ = write!(out, " — {fix}");
        }
        out.push('\n');
    }
    if failed == 0 {
        let _ = writeln!(out, "doctor: all {} checks passed", checks.len());
    } else {
        let _ = writeln!(
            out,
            "doctor: {failed} of {} checks failed; fix the first FAIL line and run doctor again",
            checks.len()
        );
    }
    out
}

fn configured(config: &Config) -> Check {
    if let (Some(url), Some(key)) = (&config.database_url, &config.credentials) {
        return Check::ok(
            CONFIG,
            format!(
                "database {url}, key {}, FCM {}, time zone {}",
                key.display(),
                endpoint(config),
                config.timezone
            ),
        );
    }
    let mut missing = Vec::new();
    if config.database_url.is_none() {
        missing.push("database URL (WOLLEY_DATABASE_URL or --database-url)");
    }
    if config.credentials.is_none() {
        missing.push("service-account key (GOOGLE_APPLICATION_CREDENTIALS or --credentials)");
    }
    Check::fail(
        CONFIG,
        ExitCode::Config,
        format!("no {}", missing.join(" and no ")),
        "set WOLLEY_DATABASE_URL=mysql://USER:PASSWORD@HOST:3306/DATABASE and \
         GOOGLE_APPLICATION_CREDENTIALS=/path/to/service-account.json where the jobs run \
         (crontab, systemd EnvironmentFile, Kubernetes Secret)",
    )
}

fn endpoint(config: &Config) -> &str {
    config.fcm_endpoint.as_str().trim_end_matches('/')
}

/// key, key-permissions, oauth and fcm: each needs the one before it, except the permissions.
async fn credential_checks(config: &Config) -> Vec<Check> {
    let mut checks = Vec::new();
    let Some(path) = config.credentials.as_deref() else {
        for name in [KEY, KEY_PERMISSIONS, OAUTH, FCM] {
            checks.push(Check::skip(name, "no service-account key is configured"));
        }
        return checks;
    };
    let key = ServiceAccountKey::load(path);
    checks.push(match &key {
        Ok(key) => Check::ok(
            KEY,
            format!(
                "{} is a service-account key for {} (project {})",
                path.display(),
                key.client_email,
                key.project_id.as_deref().unwrap_or("not named")
            ),
        ),
        Err(error) => auth_failure(KEY, error),
    });
    checks.push(permissions(path));
    let auth = match key.and_then(Authenticator::new) {
        Ok(auth) => Arc::new(auth),
        Err(_) => {
            checks.push(Check::skip(OAUTH, "the key is not usable"));
            checks.push(Check::skip(FCM, "the key is not usable"));
            return checks;
        }
    };
    match auth.bearer().await {
        Ok(_) => {
            checks.push(Check::ok(OAUTH, format!("obtained an access token from {}", auth.key().token_uri)))
        }
        Err(error) => {
            checks.push(auth_failure(OAUTH, &error));
            checks.push(Check::skip(FCM, "no access token"));
            return checks;
        }
    }
    checks.push(fcm_send(config, auth).await);
    checks
}

/// The private key must not be readable by other users; its group having access is a warning,
/// since a group of the job's own is how Kubernetes (fsGroup) shares a secret with a pod.
fn permissions(path: &Path) -> Check {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(_) => return Check::skip(KEY_PERMISSIONS, "the key file cannot be read"),
    };
    let mode = metadata.permissions().mode() & 0o777;
    let shown = path.display();
    if mode & 0o007 != 0 {
        Check::fail(
            KEY_PERMISSIONS,
            ExitCode::Config,
            format!(
                "{shown} has mode {mode:04o}: every user of this host can read or replace the private key"
            ),
            format!("chmod 600 {shown} (owned by the user the jobs run as)"),
        )
    } else if mode & 0o070 != 0 {
        Check::warn(
            KEY_PERMISSIONS,
            format!("{shown} has mode {mode:04o}: group {} can access the private key", metadata.gid()),
            format!("chmod 600 {shown}, unless that group is the job's own (as a Kubernetes fsGroup is)"),
        )
    } else {
        Check::ok(KEY_PERMISSIONS, format!("{shown} has mode {mode:04o}: only its owner can read it"))
    }
}

fn auth_failure(name: &'static str, error: &AuthError) -> Check {
    advised(name, error.exit_code(), error)
}

/// A failed check in the error's own words: what failed, and its fix.
fn advised(name: &'static str, code: ExitCode, error: &dyn Advice) -> Check {
    Check::fail(name, code, error.what(), error.fix())
}

/// One `validate_only` message: proves FCM is reachable and lets this key send for the project.
async fn fcm_send(config: &Config, auth: Arc<Authenticator>) -> Check {
    let Some(project) = config.project_id.clone().or_else(|| auth.key().project_id.clone()) else {
        return Check::fail(
            FCM,
            ExitCode::Config,
            "the key names no project_id and none is configured",
            "set WOLLEY_FCM_PROJECT_ID or --project-id to the Firebase project's ID",
        );
    };
    let client = match super::delivery::build_fcm_client(config, &project, auth, 1) {
        Ok(client) => client,
        Err(error) => {
            return Check::fail(FCM, error.exit_code(), error.to_string(), "fix the FCM endpoint settings")
        }
    };
    let slot = slot::half_hour(config.now, config.timezone);
    let message = Message::save_location(&slot, slot::HALF_HOUR);
    let template = match RequestTemplate::new(&message, true) {
        Ok(template) => template,
        Err(error) => return Check::fail(FCM, error.exit_code(), error.to_string(), "report this as a bug"),
    };
    match client.send(|| Bytes::from(template.render(DOCTOR_TOKEN)), &mut RequestTimer::new()).await {
        Ok(answer) => fcm_answer(endpoint(config), &project, answer),
        Err(error) => auth_failure(FCM, &error),
    }
}

/// The fcm line for FCM's answer (from `at`) to the validate_only message for `project`.
fn fcm_answer(at: &str, project: &str, answer: Verdict) -> Check {
    match answer {
        Verdict::Accepted => Check::ok(
            FCM,
            format!("{at} accepted a validate_only message for project {project}; nothing was delivered"),
        ),
        // FCM authenticates and authorises the request before it looks at the token: an answer
        // about the token is the proof doctor wants.
        Verdict::Dead(reason) => Check::ok(
            FCM,
            format!(
                "{at} accepted the key for project {project} and refused only doctor's made-up device \
                 token ({}), as expected; nothing was delivered",
                reason.as_str()
            ),
        ),
        Verdict::Fatal(fatal) => fcm_refusal(project, fatal),
        // A job counts one such answer as a failed message; doctor's one probe has nothing
        // else to go on, and the likeliest cause is the APNs key in Firebase.
        Verdict::ThirdPartyAuth(message) => fcm_refusal(project, FatalSendError::ThirdPartyAuth(message)),
        Verdict::Unauthenticated(message) => fcm_refusal(project, FatalSendError::Unauthenticated(message)),
        Verdict::Transient { reason, .. } => Check::fail(
            FCM,
            ExitCode::TempFail,
            format!("{at} answered {reason}"),
            "FCM is overloaded or unavailable: run doctor again in a few minutes",
        ),
        Verdict::Rejected(reason) => Check::fail(
            FCM,
            ExitCode::Config,
            format!("{at} refused the validate_only message: {reason}"),
            "check --fcm-endpoint (normally https://fcm.googleapis.com) and --project-id",
        ),
        Verdict::Unreachable(reason) => Check::fail(
            FCM,
            ExitCode::TempFail,
            format!("cannot reach FCM at {at}: {reason}"),
            "check DNS, the firewall and any proxy for outbound HTTPS from this host, and --fcm-endpoint",
        ),
    }
}

fn fcm_refusal(project: &str, fatal: FatalSendError) -> Check {
    let detail = match &fatal {
        FatalSendError::InvalidPayload(_) => format!("{} to doctor's message", fatal.what()),
        _ => format!("{} (project {project})", fatal.what()),
    };
    Check::fail(FCM, ExitCode::Config, detail, fatal.fix())
}

/// database, backend-tables, schema and tokens.
async fn database_checks(config: &Config) -> Vec<Check> {
    let Some(url) = &config.database_url else {
        return [DATABASE, BACKEND_TABLES, SCHEMA, TOKENS, STATS_INDEXES]
            .into_iter()
            .map(|name| Check::skip(name, "no database URL is configured"))
            .collect();
    };
    let db = match Database::connect(url).await {
        Ok(db) => db,
        Err(error) => {
            let mut checks = vec![db_failure(DATABASE, &error)];
            for name in [BACKEND_TABLES, SCHEMA, TOKENS, STATS_INDEXES] {
                checks.push(Check::skip(name, "the database is not reachable"));
            }
            return checks;
        }
    };
    let checks = database_contents(&db, url).await;
    db.close().await;
    checks
}

/// The lines of a reachable database: database, backend-tables, schema, then tokens and
/// stats-indexes when the backend's tables are all there.
async fn database_contents(db: &Database, url: &DatabaseUrl) -> Vec<Check> {
    let version = answered("reading the version", url, db.server_version()).await;
    let mut checks = vec![match version {
        Ok(version) => Check::ok(DATABASE, format!("connected to {url} (server {version})")),
        Err(error) => db_failure(DATABASE, &error),
    }];
    let (backend, backend_ok) = backend_tables(db, url).await;
    checks.push(backend);
    checks.push(schema_check(db, url).await);
    if !backend_ok {
        checks.push(Check::skip(TOKENS, "the backend's tables are not all there"));
        checks.push(Check::skip(STATS_INDEXES, "the backend's tables are not all there"));
        return checks;
    }
    checks.push(tokens_check(db, url).await);
    let missing = answered("reading information_schema.STATISTICS", url, db.missing_stats_indexes()).await;
    checks.push(stats_indexes(missing));
    checks
}

/// The backend-tables line, and whether every table and column the jobs read is there.
async fn backend_tables(db: &Database, url: &DatabaseUrl) -> (Check, bool) {
    let backend = async {
        match db.current_database().await? {
            None => Ok(None),
            Some(_) => db.missing_backend_columns().await.map(Some),
        }
    };
    let backend = answered("reading information_schema", url, backend).await;
    let backend_ok = matches!(&backend, Ok(Some(missing)) if missing.is_empty());
    let check = match backend {
        Ok(None) => Check::fail(
            BACKEND_TABLES,
            ExitCode::Config,
            format!("{url} names no database"),
            "end WOLLEY_DATABASE_URL with the backend's database: mysql://USER:PASSWORD@HOST:3306/DATABASE",
        ),
        Ok(Some(missing)) if missing.is_empty() => Check::ok(
            BACKEND_TABLES,
            "app_user, dailypath, intervalstay and intervalmove have every column wolley-push reads",
        ),
        Ok(Some(missing)) => Check::fail(
            BACKEND_TABLES,
            ExitCode::Config,
            format!("the database lacks {}", missing.join(", ")),
            "point WOLLEY_DATABASE_URL at the Wolley backend's database (the one its Django app migrates)",
        ),
        Err(error) => db_failure(BACKEND_TABLES, &error),
    };
    (check, backend_ok)
}

/// The schema line: wolley-push's tables at the version this build migrates to.
async fn schema_check(db: &Database, url: &DatabaseUrl) -> Check {
    let version = answered("reading the schema version", url, db.schema_version()).await;
    let required = schema::required_version();
    match version {
        Ok(found) if found < required => {
            let behind = schema::SchemaBehind { url: url.to_string(), found, required };
            advised(SCHEMA, ExitCode::Config, &behind)
        }
        // The jobs refuse to run on it (they could write what the newer build misreads).
        Ok(found) if found > required => {
            let ahead = schema::SchemaAhead { url: url.to_string(), found, known: required };
            advised(SCHEMA, ExitCode::Config, &ahead)
        }
        Ok(found) => Check::ok(SCHEMA, format!("wolley-push's tables are at schema version {found}")),
        Err(error) => db_failure(SCHEMA, &error),
    }
}

/// The tokens line: how many users the jobs can send to.
async fn tokens_check(db: &Database, url: &DatabaseUrl) -> Check {
    let count = answered("counting tokens", url, db.stored_token_count()).await;
    match count {
        Ok(0) => Check::warn(
            TOKENS,
            "no user has a token: save-location and path-daily have nobody to send to",
            "tokens appear once the app registers with FCM and the backend stores them in app_user.fcmToken",
        ),
        Ok(1) => Check::ok(TOKENS, "1 user has a token to send to"),
        Ok(count) => Check::ok(TOKENS, format!("{count} users have a token to send to")),
        Err(error) => db_failure(TOKENS, &error),
    }
}

/// Whether `stats weekly` and `report week` reach the week through indexes: without
/// `dailypath (date)` every run scans every user's history, without the `last_updated` ones a
/// refresh reads every interval of the week (docs/stats.md, "Refresh for late uploads"). The
/// tables are the backend's: the fix is theirs to apply.
fn stats_indexes(missing: Result<Vec<(&'static str, &'static str)>, DbError>) -> Check {
    match missing {
        Ok(missing) if missing.is_empty() => Check::ok(
            STATS_INDEXES,
            "dailypath (date), intervalstay (last_updated) and intervalmove (last_updated) are indexed: \
             stats weekly reads only the week, and a refresh only what changed",
        ),
        Ok(missing) => {
            let named: Vec<String> =
                missing.iter().map(|(table, column)| format!("{table} ({column})")).collect();
            let create: Vec<String> = missing
                .iter()
                .map(|(table, column)| format!("CREATE INDEX {table}_{column} ON {table} ({column})"))
                .collect();
            Check::warn(
                STATS_INDEXES,
                format!("no index on {}: {}", named.join(", "), costs(&missing)),
                format!(
                    "ask the backend to add {} in a Django migration (models.Index or db_index=True); \
                     wolley-push never changes the backend's tables",
                    create.join("; ")
                ),
            )
        }
        Err(error) => db_failure(STATS_INDEXES, &error),
    }
}

/// What the missing indexes cost, in the operator's words.
fn costs(missing: &[(&str, &str)]) -> &'static str {
    let days = missing.iter().any(|(table, _)| *table == "dailypath");
    let intervals = missing.iter().any(|(table, _)| *table != "dailypath");
    match (days, intervals) {
        (true, true) => {
            "every stats weekly run scans all of dailypath's history, and a refresh reads every interval of the week"
        }
        (true, false) => "every stats weekly run and report week scans all of dailypath's history to find the week's days",
        _ => "a stats weekly refresh reads every interval of the week to find the few that changed",
    }
}

/// `query`'s result, or a failure naming what was being done when the server did not answer
/// within [`QUERY_TIMEOUT`] (a check must never hang the checklist).
async fn answered<T>(
    doing: &'static str,
    url: &DatabaseUrl,
    query: impl std::future::Future<Output = Result<T, DbError>>,
) -> Result<T, DbError> {
    tokio::time::timeout(QUERY_TIMEOUT, query).await.unwrap_or_else(|_| {
        Err(DbError::Query {
            doing,
            url: url.to_string(),
            reason: format!("no answer within {}s", QUERY_TIMEOUT.as_secs()),
        })
    })
}

fn db_failure(name: &'static str, error: &DbError) -> Check {
    advised(name, error.exit_code(), error)
}
