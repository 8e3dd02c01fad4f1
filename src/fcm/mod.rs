//! Everything that speaks to Firebase: OAuth access tokens ([`auth`]), the message kinds
//! ([`message`]), what an answer means ([`verdict`]) and the HTTP/2 client ([`FcmClient`]).
//! reqwest and gcp_auth live here and nowhere else.

pub mod auth;
pub mod message;
pub mod verdict;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};

pub use verdict::{DeadReason, FatalSendError, Verdict};

use auth::{AuthError, Authenticator};

/// Google's front ends allow about this many concurrent streams on one HTTP/2 connection.
pub const STREAMS_PER_CONNECTION: usize = 100;

/// How the client connects.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// Requests in flight at most; decides how many HTTP/2 connections to open.
    pub concurrency: usize,
    /// Time limit of one request.
    pub request_timeout: Duration,
    /// Extra certificate authorities (PEM) to trust for the FCM endpoint, besides the system's.
    pub extra_ca_file: Option<std::path::PathBuf>,
}

/// An FCM HTTP v1 client: a few HTTP/2 connections, each carrying many streams.
pub struct FcmClient {
    connections: Vec<reqwest::Client>,
    send_url: reqwest::Url,
    auth: Arc<Authenticator>,
}

impl FcmClient {
    /// Builds the connections (lazily connected) for `project_id` at `endpoint`.
    ///
    /// # Errors
    /// When the TLS configuration cannot be built.
    pub fn new(
        endpoint: &url::Url,
        project_id: &str,
        auth: Arc<Authenticator>,
        settings: &ClientSettings,
    ) -> anyhow::Result<Self> {
        install_crypto_provider();
        let extra_roots = match &settings.extra_ca_file {
            Some(path) => load_certificates(path)?,
            None => Vec::new(),
        };
        // hyper never opens a second HTTP/2 connection to one host, and a connection carries at
        // most ~100 streams: more throughput needs more clients.
        let count = settings.concurrency.div_ceil(STREAMS_PER_CONNECTION).clamp(1, 64);
        let connections = (0..count)
            .map(|_| build_http_client(settings.request_timeout, &extra_roots))
            .collect::<Result<Vec<_>, _>>()?;
        let base = endpoint.as_str().trim_end_matches('/');
        let send_url = reqwest::Url::parse(&format!("{base}/v1/projects/{project_id}/messages:send"))?;
        Ok(FcmClient { connections, send_url, auth })
    }

    /// The number of HTTP/2 connections.
    pub fn connection_count(&self) -> usize {
        self.connections.len()
    }

    /// Sends one request body on connection `lane`, refreshing the access token once when FCM
    /// says it expired. A body whose message FCM would find too big is not sent: it is answered
    /// [`Verdict::Rejected`] at once.
    ///
    /// # Errors
    /// When no access token can be obtained.
    pub async fn send(&self, lane: usize, body: Bytes) -> Result<Verdict, AuthError> {
        let size = message::message_bytes(&body);
        if size > message::MAX_MESSAGE_BYTES {
            // Only an unusually long token gets here (the template kept room for a normal one):
            // FCM would refuse the payload as a whole and stop the run, so this message alone
            // fails, unsent.
            return Ok(Verdict::Rejected(format!(
                "not sent: with its device token the message would be {size} bytes, over FCM's {}-byte limit",
                message::MAX_MESSAGE_BYTES
            )));
        }
        let bearer = self.auth.bearer().await?;
        let answer = self.post(lane, &bearer.header, body.clone()).await;
        let Verdict::Unauthenticated(_) = answer else {
            return Ok(answer);
        };
        tracing::debug!("FCM says the access token expired; refreshing it");
        let fresh = self.auth.reject(bearer.generation).await?;
        Ok(match self.post(lane, &fresh.header, body).await {
            Verdict::Unauthenticated(message) => Verdict::Fatal(FatalSendError::Unauthenticated(message)),
            other => other,
        })
    }

    async fn post(&self, lane: usize, authorization: &HeaderValue, body: Bytes) -> Verdict {
        let client = &self.connections[lane % self.connections.len()];
        // A parsed URL and a static content type: nothing parsed or allocated per request here.
        let response = client
            .post(self.send_url.clone())
            .header(AUTHORIZATION, authorization.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json; charset=UTF-8"))
            .body(body)
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            Err(error) => return Verdict::Unreachable(transport_error(&error)),
        };
        let status = response.status().as_u16();
        let retry_after =
            response.headers().get(RETRY_AFTER).and_then(|v| v.to_str().ok()).map(str::to_owned);
        match response.bytes().await {
            Ok(bytes) => verdict::classify(status, retry_after.as_deref(), &bytes),
            Err(error) => Verdict::Unreachable(transport_error(&error)),
        }
    }
}

/// reqwest and gcp_auth share rustls with the `ring` provider only; rustls needs it named once.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The certificates of `--fcm-ca-file`.
fn load_certificates(path: &std::path::Path) -> anyhow::Result<Vec<reqwest::Certificate>> {
    use anyhow::Context as _;
    let pem = std::fs::read(path).with_context(|| format!("cannot read --fcm-ca-file {}", path.display()))?;
    reqwest::Certificate::from_pem_bundle(&pem)
        .with_context(|| format!("--fcm-ca-file {} holds no PEM certificate", path.display()))
}

fn build_http_client(
    timeout: Duration,
    extra_roots: &[reqwest::Certificate],
) -> reqwest::Result<reqwest::Client> {
    let builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(10))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .http2_keep_alive_while_idle(true)
        .user_agent(concat!("wolley-push/", env!("CARGO_PKG_VERSION")));
    // HTTP/2 only, also over TLS: cleartext HTTP/2 has no ALPN to negotiate it, and over TLS
    // a pool that does not know yet that a connection will be HTTP/2 opens one connection per
    // concurrent request while the first handshake runs (measured: ~0.6 MB each).
    let builder = builder.http2_prior_knowledge();
    let builder =
        if extra_roots.is_empty() { builder } else { builder.tls_certs_merge(extra_roots.iter().cloned()) };
    builder.build()
}

fn transport_error(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else {
        "transport error"
    };
    // reqwest's own message repeats the URL; its causes say what went wrong.
    match std::error::Error::source(error) {
        Some(cause) => format!("{kind}: {}", crate::causes::one_line(cause)),
        None => kind.to_owned(),
    }
}
