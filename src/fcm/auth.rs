//! Access tokens for FCM: a Google service-account key exchanged (by gcp_auth) for an OAuth
//! token, cached and refreshed before expiry, and replaced at once when FCM says it expired.
//! A token endpoint that fails temporarily (5xx, 429, no answer) is tried again a few times and
//! reported as temporary; one that refuses the key, as configuration.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use gcp_auth::{CustomServiceAccount, TokenProvider};
use reqwest::header::HeaderValue;
use serde::Deserialize;

use crate::advice::Advice;
use crate::exit::ExitCode;

/// The OAuth scope FCM's HTTP v1 API requires.
pub(crate) const FCM_SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
/// gcp_auth has no timeout of its own and retries 5 times (~750 ms); this bounds one exchange.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(20);
/// Exchanges per refresh while the endpoint fails temporarily (5xx, 429, no answer): gcp_auth's
/// own tries span under a second, too short to ride out a blip of Google's.
const TOKEN_ATTEMPTS: u32 = 3;
/// The pause before the second exchange; it doubles before each further one.
const TOKEN_BACKOFF: Duration = Duration::from_secs(1);
/// Time limit of the one request that reads the endpoint's answer after gcp_auth failed.
const DIAGNOSIS_TIMEOUT: Duration = Duration::from_secs(10);
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Refresh this long before Google's expiry so no request carries a token that dies in flight.
const REFRESH_MARGIN: Duration = Duration::from_secs(120);
/// The most a key file may hold: a service-account key is ~2.3 KB, so anything near this is
/// another file, and the bound keeps a runaway source (`/dev/zero` behind a symlink, a huge
/// file) from growing memory without end.
const MAX_KEY_BYTES: u64 = 64 * 1024;
const KEY_HELP: &str = "download a service-account key from the Firebase console (Project settings › \
    Service accounts › Generate new private key) and point GOOGLE_APPLICATION_CREDENTIALS or --credentials at it";

/// Why no access token could be had.
#[derive(Debug, thiserror::Error)]
#[error("{}; {}", self.what(), self.fix())]
pub enum AuthError {
    /// No key configured.
    Missing,
    /// The key file cannot be read.
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The key's path names a FIFO, a device, a directory or a socket: opening a FIFO without a
    /// writer blocks forever, reading `/dev/zero` never ends.
    NotAFile {
        path: PathBuf,
        /// What it is instead, e.g. `a named pipe (FIFO)`.
        kind: &'static str,
    },
    /// The key file is larger than any service-account key ([`MAX_KEY_BYTES`]).
    TooLarge { path: PathBuf },
    /// The key file is not a usable service-account key.
    Malformed { path: PathBuf, reason: String },
    /// The token endpoint answered, but refused the key.
    Rejected {
        path: PathBuf,
        /// The key's `token_uri`.
        token_uri: String,
        /// The endpoint's answer, e.g. `HTTP 400 invalid_grant: Invalid JWT Signature.`.
        answer: String,
    },
    /// The token endpoint answered every try with a temporary failure (5xx, 429).
    TemporarilyFailing {
        /// The key's `token_uri`.
        token_uri: String,
        /// The last answer, e.g. `HTTP 503`.
        reason: String,
        /// How many exchanges were tried.
        attempts: u32,
    },
    /// The token endpoint could not be reached in time.
    Unreachable {
        /// The key's `token_uri`.
        token_uri: String,
        reason: String,
    },
}

impl Advice for AuthError {
    fn what(&self) -> String {
        match self {
            AuthError::Missing => {
                "no service-account key is configured (GOOGLE_APPLICATION_CREDENTIALS / --credentials)".into()
            }
            AuthError::Unreadable { path, source } => {
                format!("cannot read the service-account key {}: {source}", path.display())
            }
            AuthError::NotAFile { path, kind } => {
                format!("the service-account key {} is {kind}, not a regular file", path.display())
            }
            AuthError::TooLarge { path } => format!(
                "the service-account key {} is larger than {} KiB (a key is about 2.3 KB): it is not a key",
                path.display(),
                MAX_KEY_BYTES / 1024
            ),
            AuthError::Malformed { path, reason } => {
                format!("{} is not a usable Google service-account key: {reason}", path.display())
            }
            AuthError::Rejected { path, token_uri, answer } => format!(
                "Google's token endpoint {token_uri} refused the service-account key {} ({answer})",
                path.display()
            ),
            AuthError::TemporarilyFailing { token_uri, reason, attempts } => format!(
                "Google's token endpoint {token_uri} is temporarily failing ({attempts} tries, the last \
                 answered {reason}); the key is not in question"
            ),
            AuthError::Unreachable { token_uri, reason } => {
                format!("cannot get an access token from {token_uri}: {reason}")
            }
        }
    }

    fn fix(&self) -> Cow<'static, str> {
        match self {
            AuthError::Missing | AuthError::Malformed { .. } | AuthError::TooLarge { .. } => KEY_HELP.into(),
            AuthError::NotAFile { .. } => "point GOOGLE_APPLICATION_CREDENTIALS or --credentials at the key's \
                JSON file itself (a regular file, or a symbolic link to one), as downloaded from the Firebase console"
                .into(),
            AuthError::Unreadable { path, source } => match source.kind() {
                std::io::ErrorKind::NotFound => KEY_HELP.into(),
                std::io::ErrorKind::PermissionDenied => format!(
                    "let the user the jobs run as read it: chown that user {} && chmod 600 it",
                    path.display()
                )
                .into(),
                _ => "check the file and its directory".into(),
            },
            AuthError::Rejected { .. } => "the key may be deleted or disabled, or the host's clock wrong (the \
                request is signed with the time): check the clock, or create a new key in the Firebase console"
                .into(),
            AuthError::TemporarilyFailing { .. } => {
                "Google's side is failing (status.cloud.google.com): run again in a few minutes".into()
            }
            AuthError::Unreachable { .. } => "check DNS, the firewall and any proxy for outbound HTTPS from this \
                host, then run again"
                .into(),
        }
    }
}

impl AuthError {
    /// Unreachable and temporarily failing are temporary; everything else needs the operator.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            AuthError::Unreachable { .. } | AuthError::TemporarilyFailing { .. } => ExitCode::TempFail,
            _ => ExitCode::Config,
        }
    }
}

/// The parts of a service-account key wolley-push reads itself, for clear errors and defaults.
#[derive(Deserialize)]
struct KeyFields {
    #[serde(rename = "type")]
    kind: Option<String>,
    project_id: Option<String>,
    client_email: Option<String>,
    private_key: Option<String>,
    token_uri: Option<String>,
}

/// A validated service-account key file. Its text is a secret: never formatted anywhere.
pub(crate) struct ServiceAccountKey {
    path: PathBuf,
    json: String,
    /// The key's Firebase project.
    pub project_id: Option<String>,
    /// The service account's e-mail address.
    pub client_email: String,
    /// Where tokens are exchanged.
    pub token_uri: String,
}

impl std::fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("path", &self.path)
            .field("client_email", &self.client_email)
            .finish_non_exhaustive()
    }
}

impl ServiceAccountKey {
    /// Reads and checks the key at `path`: a regular file (a symbolic link is followed) of at
    /// most [`MAX_KEY_BYTES`].
    ///
    /// The file's type is checked before it is opened, because opening a FIFO without a writer
    /// blocks forever. A file replaced by a FIFO between the check and the open still blocks:
    /// that takes someone racing the job on purpose, and the key's directory is the operator's.
    ///
    /// # Errors
    /// [`AuthError::Unreadable`], [`AuthError::NotAFile`], [`AuthError::TooLarge`] or
    /// [`AuthError::Malformed`], naming the file.
    pub(crate) fn load(path: &Path) -> Result<Self, AuthError> {
        use std::io::Read as _;
        let unreadable = |source| AuthError::Unreadable { path: path.to_owned(), source };
        let metadata = std::fs::metadata(path).map_err(unreadable)?;
        if let Some(kind) = not_a_file(&metadata.file_type()) {
            return Err(AuthError::NotAFile { path: path.to_owned(), kind });
        }
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|file| file.take(MAX_KEY_BYTES + 1).read_to_end(&mut bytes))
            .map_err(unreadable)?;
        if bytes.len() as u64 > MAX_KEY_BYTES {
            return Err(AuthError::TooLarge { path: path.to_owned() });
        }
        let json = String::from_utf8(bytes).map_err(|_| AuthError::Malformed {
            path: path.to_owned(),
            reason: "it is not UTF-8 text".into(),
        })?;
        Self::parse(path, json)
    }

    fn parse(path: &Path, json: String) -> Result<Self, AuthError> {
        let malformed = |reason: String| AuthError::Malformed { path: path.to_owned(), reason };
        // serde_json's messages name a line and column, never the content: safe to show.
        let fields: KeyFields =
            serde_json::from_str(&json).map_err(|e| malformed(format!("not JSON ({e})")))?;
        match fields.kind.as_deref() {
            Some("service_account") => {}
            Some(other) => {
                return Err(malformed(format!("its type is \"{other}\", not \"service_account\"")))
            }
            None => return Err(malformed("it has no \"type\" field".into())),
        }
        let private_key = fields.private_key.ok_or_else(|| malformed("it has no private_key".into()))?;
        if !private_key.contains("-----BEGIN PRIVATE KEY-----") {
            return Err(malformed("its private_key is not a PKCS#8 PEM key".into()));
        }
        let client_email = fields.client_email.ok_or_else(|| malformed("it has no client_email".into()))?;
        let token_uri = fields.token_uri.ok_or_else(|| malformed("it has no token_uri".into()))?;
        check_token_uri(&token_uri)
            .map_err(|why| malformed(format!("its token_uri {} {why}", shown(&token_uri))))?;
        Ok(ServiceAccountKey {
            path: path.to_owned(),
            json,
            project_id: fields.project_id,
            client_email,
            token_uri,
        })
    }

    /// A signed JWT asking for [`FCM_SCOPE`], the claims gcp_auth sends: a credential for an
    /// hour, never logged.
    fn assertion(&self, signer: &gcp_auth::Signer) -> Result<String, gcp_auth::Error> {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine as _;
        let now = chrono::Utc::now().timestamp();
        let claims = serde_json::json!({
            "iss": self.client_email,
            "aud": self.token_uri,
            "scope": FCM_SCOPE,
            "iat": now,
            "exp": now + 3600 - 5,
        });
        let mut jwt = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","typ":"JWT"}"#);
        jwt.push('.');
        URL_SAFE_NO_PAD.encode_string(claims.to_string(), &mut jwt);
        let signature = signer.sign(jwt.as_bytes())?;
        jwt.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut jwt);
        Ok(jwt)
    }

    fn provider(&self) -> Result<CustomServiceAccount, AuthError> {
        CustomServiceAccount::from_json(&self.json)
            .map_err(|e| AuthError::Malformed { path: self.path.clone(), reason: e.to_string() })
    }
}

/// What a file that is not a regular file is, in an operator's words; `None` for a regular file.
fn not_a_file(file_type: &std::fs::FileType) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    Some(match file_type {
        t if t.is_file() => return None,
        t if t.is_dir() => "a directory",
        t if t.is_fifo() => "a named pipe (FIFO)",
        t if t.is_char_device() => "a character device",
        t if t.is_block_device() => "a block device",
        t if t.is_socket() => "a socket",
        _ => "a special file",
    })
}

/// gcp_auth builds its token request from `token_uri` with http's URI parser and an `unwrap`
/// (a value it cannot parse panics), and its client refuses any URI but an absolute http(s) one
/// with a host: check the same parser's verdict when the key is loaded. A `token_uri` is no secret.
fn check_token_uri(value: &str) -> Result<(), &'static str> {
    let uri: http::Uri = value.parse().map_err(|_| "is not a URL")?;
    match uri.scheme_str() {
        Some("https" | "http") => {}
        Some(_) => return Err("is not an https:// (or http://) URL"),
        None => return Err("is not an absolute URL (it has no https://)"),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("names no host");
    }
    Ok(())
}

/// A value from the key file as an error shows it: quoted, escaped, and cut if long.
fn shown(value: &str) -> String {
    const SHOWN_CHARS: usize = 120;
    match value.char_indices().nth(SHOWN_CHARS) {
        Some((end, _)) => format!("{:?}…", &value[..end]),
        None => format!("{value:?}"),
    }
}

struct CachedToken {
    header: HeaderValue,
    refresh_at: Instant,
    generation: u64,
}

/// An `Authorization` header value and which token it came from.
#[derive(Clone)]
pub(crate) struct Bearer {
    /// `Bearer ...`, marked sensitive so it is never printed by HTTP debug output.
    pub header: HeaderValue,
    /// Which token this is, for [`Authenticator::reject`].
    pub generation: u64,
}

/// Hands out access tokens to many concurrent senders; one refresh at a time.
pub(crate) struct Authenticator {
    key: ServiceAccountKey,
    provider: tokio::sync::Mutex<Arc<CustomServiceAccount>>,
    cached: RwLock<Option<CachedToken>>,
}

impl Authenticator {
    /// Prepares the exchange (no network yet).
    ///
    /// # Errors
    /// [`AuthError::Malformed`] when gcp_auth cannot use the key.
    pub(crate) fn new(key: ServiceAccountKey) -> Result<Self, AuthError> {
        let provider = Arc::new(key.provider()?);
        Ok(Authenticator { key, provider: tokio::sync::Mutex::new(provider), cached: RwLock::new(None) })
    }

    /// The key this authenticator uses.
    pub(crate) fn key(&self) -> &ServiceAccountKey {
        &self.key
    }

    /// A current access token, fetched or refreshed when needed.
    ///
    /// # Errors
    /// [`AuthError::Rejected`], [`AuthError::TemporarilyFailing`] or [`AuthError::Unreachable`].
    pub(crate) async fn bearer(&self) -> Result<Bearer, AuthError> {
        if let Some(bearer) = self.cached_bearer(None) {
            return Ok(bearer);
        }
        self.refresh(None).await
    }

    /// FCM said the token of `generation` is not valid: get a new one (once, however many
    /// requests saw the same rejection).
    ///
    /// # Errors
    /// As [`Authenticator::bearer`].
    pub(crate) async fn reject(&self, generation: u64) -> Result<Bearer, AuthError> {
        self.refresh(Some(generation)).await
    }

    fn cached_bearer(&self, rejected: Option<u64>) -> Option<Bearer> {
        let cached = self.cached.read().expect("token cache lock");
        let token = cached.as_ref()?;
        let usable = Instant::now() < token.refresh_at && Some(token.generation) != rejected;
        usable.then(|| Bearer { header: token.header.clone(), generation: token.generation })
    }

    async fn refresh(&self, rejected: Option<u64>) -> Result<Bearer, AuthError> {
        let mut provider = self.provider.lock().await;
        if let Some(bearer) = self.cached_bearer(rejected) {
            return Ok(bearer);
        }
        if rejected.is_some() {
            // gcp_auth caches tokens until their own expiry: a fresh provider is the only way
            // to make it exchange again.
            *provider = Arc::new(self.key.provider()?);
        }
        // Boxed, and only by the request that exchanges: the exchange's state (gcp_auth's and
        // reqwest's futures) is kilobytes. Inline, every request's future carried room for it;
        // boxed by every request that waits for the lock, a refresh under full load would hold
        // that much per request in flight (BENCHMARKS.md, issue 21).
        let token = Box::pin(self.exchange(&provider)).await?;
        let mut header = HeaderValue::try_from(format!("Bearer {}", token.as_str()))
            .map_err(|_| self.unreachable("the token endpoint returned a malformed access token".into()))?;
        header.set_sensitive(true);
        let lifetime = (token.expires_at() - chrono::Utc::now()).to_std().unwrap_or_default();
        let refresh_at = Instant::now() + lifetime.saturating_sub(REFRESH_MARGIN).max(lifetime / 2);
        let mut cached = self.cached.write().expect("token cache lock");
        let generation = cached.as_ref().map_or(1, |c| c.generation + 1);
        *cached = Some(CachedToken { header: header.clone(), refresh_at, generation });
        tracing::debug!(generation, valid_for_secs = lifetime.as_secs(), "obtained an FCM access token");
        Ok(Bearer { header, generation })
    }

    fn unreachable(&self, reason: String) -> AuthError {
        AuthError::Unreachable { token_uri: self.key.token_uri.clone(), reason }
    }

    fn rejected(&self, answer: String) -> AuthError {
        AuthError::Rejected { path: self.key.path.clone(), token_uri: self.key.token_uri.clone(), answer }
    }

    /// One access token from gcp_auth, each exchange under [`TOKEN_TIMEOUT`]; a temporary failure
    /// is tried again, up to [`TOKEN_ATTEMPTS`] exchanges, with a doubling pause between them.
    async fn exchange(&self, provider: &CustomServiceAccount) -> Result<Arc<gcp_auth::Token>, AuthError> {
        let mut attempt = 1;
        loop {
            let failure = match tokio::time::timeout(TOKEN_TIMEOUT, provider.token(&[FCM_SCOPE])).await {
                Ok(Ok(token)) => return Ok(token),
                Ok(Err(error)) => self.diagnose(provider, error).await,
                Err(_) => Failure::NoAnswer(format!("no answer within {}s", TOKEN_TIMEOUT.as_secs())),
            };
            let (answered, reason) = match failure {
                Failure::Refused(error) => return Err(error),
                Failure::Failing(reason) => (true, reason),
                Failure::NoAnswer(reason) => (false, reason),
            };
            if attempt >= TOKEN_ATTEMPTS {
                let token_uri = self.key.token_uri.clone();
                return Err(match answered {
                    true => AuthError::TemporarilyFailing { token_uri, reason, attempts: attempt },
                    false => self.unreachable(format!("{reason}; {attempt} tries")),
                });
            }
            let delay = TOKEN_BACKOFF * 2u32.pow(attempt - 1);
            tracing::info!(
                attempt,
                "cannot get an access token from {} ({reason}); trying again in {}s",
                self.key.token_uri,
                delay.as_secs()
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// What a gcp_auth failure means. gcp_auth hides the HTTP status (a refused key and a 503
    /// both read "token request failed"), so after such a failure, and only then, one request
    /// of our own repeats the exchange to read the endpoint's answer: a success costs nothing.
    async fn diagnose(&self, provider: &CustomServiceAccount, error: gcp_auth::Error) -> Failure {
        match error {
            gcp_auth::Error::Str(_) => {}
            gcp_auth::Error::Json(..) => {
                return Failure::Refused(self.rejected("its answer was not an access token".into()))
            }
            other => return Failure::NoAnswer(crate::causes::one_line(&other)),
        }
        let assertion = match self.key.assertion(provider.signer()) {
            Ok(assertion) => assertion,
            Err(error) => {
                return Failure::Refused(AuthError::Malformed {
                    path: self.key.path.clone(),
                    reason: format!("its private key cannot sign a token request ({error})"),
                })
            }
        };
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", JWT_BEARER)
            .append_pair("assertion", &assertion)
            .finish();
        let client = reqwest::Client::builder()
            .timeout(DIAGNOSIS_TIMEOUT)
            .connect_timeout(DIAGNOSIS_TIMEOUT)
            .user_agent(concat!("wolley-push/", env!("CARGO_PKG_VERSION")))
            .build();
        let sent = match client {
            Ok(client) => {
                client
                    .post(&self.key.token_uri)
                    .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(form)
                    .send()
                    .await
            }
            Err(error) => return Failure::NoAnswer(crate::causes::one_line(&error)),
        };
        let response = match sent {
            Ok(response) => response,
            Err(error) => return Failure::NoAnswer(crate::causes::one_line(&error)),
        };
        let status = response.status().as_u16();
        let body = response.bytes().await.unwrap_or_default();
        match token_answer(status, &body) {
            TokenAnswer::Temporary(reason) => Failure::Failing(reason),
            TokenAnswer::Refusal(answer) => Failure::Refused(self.rejected(answer)),
        }
    }
}

/// Why one exchange failed.
enum Failure {
    /// The endpoint refused the key: only the operator can fix it.
    Refused(AuthError),
    /// The endpoint answered with a temporary failure.
    Failing(String),
    /// No answer, or none in time.
    NoAnswer(String),
}

/// What the token endpoint's answer to our own request says.
#[derive(Debug, PartialEq, Eq)]
enum TokenAnswer {
    /// 5xx, 429, 408, or a success after gcp_auth's failures: worth trying again.
    Temporary(String),
    /// Any other status: the key (or its `token_uri`) is refused.
    Refusal(String),
}

/// Classifies the token endpoint's answer by its status, naming its OAuth error
/// (`{"error", "error_description"}`, RFC 6749 5.2) when it has one; the body is never shown
/// otherwise (it could be a long HTML page).
fn token_answer(status: u16, body: &[u8]) -> TokenAnswer {
    #[derive(Deserialize)]
    struct OAuthError {
        error: String,
        #[serde(default)]
        error_description: String,
    }
    let mut answer = format!("HTTP {status}");
    if let Ok(OAuthError { error, error_description }) = serde_json::from_slice::<OAuthError>(body) {
        let text = if error_description.is_empty() { error } else { format!("{error}: {error_description}") };
        let text: String = text.chars().filter(|c| !c.is_control()).take(200).collect();
        answer = format!("{answer} {text}");
    }
    match status {
        200..=299 => TokenAnswer::Temporary(format!("failures, then {answer} to a second look")),
        408 | 429 | 500..=599 => TokenAnswer::Temporary(answer),
        _ => TokenAnswer::Refusal(answer),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<ServiceAccountKey, AuthError> {
        ServiceAccountKey::parse(Path::new("key.json"), json.to_owned())
    }

    #[test]
    fn a_key_of_another_type_is_refused_by_name() {
        let err = parse(r#"{"type": "authorized_user", "client_id": "x"}"#).unwrap_err();
        assert!(err.to_string().contains("\"authorized_user\", not \"service_account\""), "{err}");
    }

    #[test]
    fn a_5xx_429_or_408_from_the_token_endpoint_is_temporary() {
        for status in [500, 502, 503, 504, 429, 408] {
            assert!(matches!(token_answer(status, b""), TokenAnswer::Temporary(_)), "{status}");
        }
    }

    #[test]
    fn any_other_refusal_of_the_token_endpoint_quotes_its_oauth_error() {
        let body = br#"{"error": "invalid_grant", "error_description": "Invalid JWT Signature."}"#;
        assert_eq!(
            token_answer(400, body),
            TokenAnswer::Refusal("HTTP 400 invalid_grant: Invalid JWT Signature.".into())
        );
        assert!(matches!(token_answer(401, b""), TokenAnswer::Refusal(_)));
    }

    #[test]
    fn a_token_endpoint_answer_that_is_not_an_oauth_error_is_not_quoted() {
        let page = b"<html><body>Service Unavailable</body></html>";
        assert_eq!(token_answer(503, page), TokenAnswer::Temporary("HTTP 503".into()));
    }

    #[test]
    fn a_key_that_is_not_json_is_refused() {
        let err = parse("-----BEGIN PRIVATE KEY-----").unwrap_err();
        assert!(err.to_string().contains("not JSON"), "{err}");
    }

    fn key_with_token_uri(token_uri: &str) -> String {
        serde_json::json!({
            "type": "service_account",
            "private_key": "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n",
            "client_email": "a@b.iam.gserviceaccount.com",
            "token_uri": token_uri,
        })
        .to_string()
    }

    #[test]
    fn a_token_uri_that_is_not_an_absolute_http_url_with_a_host_is_refused_by_value() {
        for bad in [
            "",
            "file:///etc/passwd",
            "oauth2.googleapis.com/token",
            "/token",
            "ftp://example.com/token",
            "https:///token",
            "https://exa mple.com/token",
        ] {
            let err = parse(&key_with_token_uri(bad)).map(|_| ()).expect_err(bad);
            assert!(err.to_string().contains(&format!("token_uri {bad:?}")), "{bad}: {err}");
            assert_eq!(err.exit_code(), ExitCode::Config, "{bad}");
        }
    }

    #[test]
    fn googles_token_uri_and_a_local_http_one_are_accepted() {
        for good in ["https://oauth2.googleapis.com/token", "http://127.0.0.1:8080/token"] {
            assert!(parse(&key_with_token_uri(good)).is_ok(), "{good}");
        }
    }

    #[test]
    fn a_long_token_uri_is_cut_when_shown() {
        let long = format!("ftp://{}", "x".repeat(500));
        let err = parse(&key_with_token_uri(&long)).unwrap_err().to_string();
        assert!(err.contains("…") && !err.contains(&"x".repeat(200)), "{err}");
    }

    #[test]
    fn a_key_without_a_pem_private_key_is_refused() {
        let err = parse(r#"{"type": "service_account", "private_key": "abc", "client_email": "a@b", "token_uri": "http://x"}"#)
            .unwrap_err();
        assert!(err.to_string().contains("PKCS#8"), "{err}");
        assert_eq!(err.exit_code(), ExitCode::Config);
    }
}
