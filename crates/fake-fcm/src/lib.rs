//! A fake Firebase Cloud Messaging HTTP v1 server, with Google's OAuth token endpoint, on
//! 127.0.0.1.
//!
//! Exists so that wolley-push's integration tests and benchmarks can run the real binary
//! (real auth via a service-account key, real HTTP/1.1 or HTTP/2) against something that
//! answers like FCM, can be scripted to fail the ways FCM fails, and counts what it
//! delivered. The server runs on its own thread with its own tokio runtime, so synchronous
//! tests can drive it.
//!
//! ```no_run
//! use fake_fcm::{FakeFcm, Options, Reply};
//!
//! let fake = FakeFcm::start(Options::default());
//! std::fs::write("/tmp/key.json", fake.service_account_json()).unwrap();
//! fake.script("token-a", vec![Reply::unregistered()]);
//! // ... run the client with the key and `fake.endpoint()` ...
//! assert_eq!(fake.deliveries("token-b"), 1);
//! ```

mod fcm;
mod http;
mod message;
mod oauth;
mod ping;
mod reply;
mod server;
mod state;
mod tls;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

pub use ping::Ping;
pub use reply::{FieldViolation, Reply};

use oauth::{Verifier, TEST_KEY_PEM};
use server::Server;
use state::Shared;

/// How the fake behaves; start from [`Options::default`].
#[derive(Clone, Debug)]
pub struct Options {
    /// The only project whose send path is accepted; default `"wolley-test"`.
    pub project_id: String,
    /// Added to every send before it is answered; default zero.
    pub latency: Duration,
    /// Lifetime of issued access tokens, reported as `expires_in` and enforced; default 3600.
    pub access_token_expires_in: u64,
    /// HTTP/2 `SETTINGS_MAX_CONCURRENT_STREAMS` per connection; default 100, like Google.
    pub max_concurrent_streams: u32,
    /// Keep a log of every send request for [`FakeFcm::requests`]; default true. Big
    /// benchmarks turn it off and keep only the counters.
    pub record_bodies: bool,
    /// Fraction of sends answered 503 UNAVAILABLE, chosen deterministically from the
    /// request's sequence number; default 0.0.
    pub transient_503_ratio: f64,
    /// Worker threads of the server's runtime (at least 1); default 2.
    pub workers: usize,
    /// Also serve the send endpoint over TLS (self-signed, for `localhost`): `endpoint()` is
    /// then `https://localhost:PORT` and [`FakeFcm::ca_pem`] the certificate to trust. The
    /// token endpoint stays on plain HTTP (gcp_auth trusts only the system's roots).
    pub tls: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            project_id: "wolley-test".to_owned(),
            latency: Duration::ZERO,
            access_token_expires_in: 3600,
            max_concurrent_streams: 100,
            record_bodies: true,
            transient_503_ratio: 0.0,
            workers: 2,
            tls: false,
        }
    }
}

/// One `messages:send` request, as the fake saw and answered it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// The device, `message.token` or `message.fid`, if the body had one.
    pub token: Option<String>,
    /// Which field named it: `"token"` or `"fid"`.
    pub target_field: Option<&'static str>,
    /// The JSON body; `None` when it was not JSON.
    pub body: Option<serde_json::Value>,
    /// The `Authorization` header.
    pub authorization: Option<String>,
    /// The `Content-Type` header.
    pub content_type: Option<String>,
    /// `"HTTP/1.1"` or `"HTTP/2.0"`.
    pub http_version: String,
    /// When the request arrived.
    pub at: Instant,
    /// Whether the body asked for `validate_only`.
    pub validate_only: bool,
    /// The HTTP status the fake answered.
    pub status: u16,
}

/// A running fake; dropping it stops the server and joins its thread.
pub struct FakeFcm {
    endpoint: String,
    plain_endpoint: String,
    ca_pem: Option<String>,
    shared: Arc<Shared>,
    server: Option<Server>,
}

impl FakeFcm {
    /// Binds 127.0.0.1 on a free port and starts serving; returns once it is listening.
    pub fn start(options: Options) -> FakeFcm {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let address = listener.local_addr().expect("the bound address");
        let plain_endpoint = format!("http://{address}");
        let (tls, endpoint, ca_pem) = if options.tls {
            let tls_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
            let port = tls_listener.local_addr().expect("the bound address").port();
            let tls::Tls { acceptor, ca_pem } = tls::Tls::self_signed();
            (Some((tls_listener, acceptor)), format!("https://localhost:{port}"), Some(ca_pem))
        } else {
            (None, plain_endpoint.clone(), None)
        };
        let client_email = client_email(&options.project_id);
        let verifier = Verifier::new(client_email, format!("{plain_endpoint}/token"));
        let shared = Arc::new(Shared::new(options, verifier));
        let server = server::spawn(listener, tls, shared.clone());
        FakeFcm { endpoint, plain_endpoint, ca_pem, shared, server: Some(server) }
    }

    /// The FCM endpoint the client must use: `http://127.0.0.1:PORT`, or with
    /// [`Options::tls`] `https://localhost:PORT`.
    pub fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    /// With [`Options::tls`], the PEM certificate the client must trust.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// The OAuth token endpoint, `http://127.0.0.1:PORT/token` (always plain HTTP).
    pub fn token_uri(&self) -> String {
        format!("{}/token", self.plain_endpoint)
    }

    /// The project whose send path is accepted.
    pub fn project_id(&self) -> &str {
        &self.shared.options.project_id
    }

    /// A complete service-account key JSON whose `token_uri` points at this fake.
    pub fn service_account_json(&self) -> String {
        let project = self.project_id();
        let email = client_email(project);
        let key = json!({
            "type": "service_account",
            "project_id": project,
            "private_key_id": "f4ce0fcm0000000000000000000000000000c0de",
            "private_key": TEST_KEY_PEM,
            "client_email": email,
            "client_id": "100000000000000000001",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": self.token_uri(),
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": format!(
                "https://www.googleapis.com/robot/v1/metadata/x509/{}",
                email.replace('@', "%40")
            ),
            "universe_domain": "googleapis.com",
        });
        serde_json::to_string_pretty(&key).expect("JSON serializes")
    }

    /// The test private key (PEM), so tests can assert it never shows up in output.
    pub fn private_key_pem() -> &'static str {
        TEST_KEY_PEM
    }

    /// The next sends to `token` get these replies in order (after any still queued), then
    /// 200s. Scripted replies come after the request checks (auth, project, body), and
    /// `validate_only` sends take their turn like any other.
    pub fn script(&self, token: &str, replies: Vec<Reply>) {
        let mut state = self.shared.state();
        state.scripts.entry(token.to_owned()).or_default().extend(replies);
    }

    /// The next sends, whatever their token, get these replies in order, before any
    /// per-token script.
    pub fn script_next(&self, replies: Vec<Reply>) {
        self.shared.state().next_replies.extend(replies);
    }

    /// Answers every send with `reply` until called with `None` (e.g. SENDER_ID_MISMATCH for a
    /// key of another project), before any script.
    pub fn answer_every_send_with(&self, reply: Option<Reply>) {
        self.shared.state().every_reply = reply;
    }

    /// While `true`, the token endpoint answers 400 `invalid_grant`.
    pub fn refuse_oauth(&self, refuse: bool) {
        self.shared.refuse_oauth.store(refuse, Ordering::Relaxed);
    }

    /// While `Some(status)` (e.g. 503, 500, 429), the token endpoint answers every request
    /// with that status and a short JSON error, as Google's does when it is failing; `None`
    /// restores normal answers. Takes precedence over [`FakeFcm::refuse_oauth`].
    pub fn fail_oauth_with(&self, status: Option<u16>) {
        self.shared.fail_oauth.store(status.unwrap_or(0), Ordering::Relaxed);
    }

    /// After `sends` more sends are let through (that is, pass authentication, whatever they
    /// are answered next), every access token issued by then stops working (401
    /// UNAUTHENTICATED); tokens issued afterwards work.
    pub fn expire_access_tokens_after(&self, sends: u64) {
        self.shared.state().tokens.revoke_after(sends);
    }

    /// Every answered send request in arrival order (empty when `record_bodies` is off).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        let mut requests = self.shared.state().log.clone();
        requests.sort_by_key(|request| request.at);
        requests
    }

    /// How many real (not `validate_only`) sends to `token` were answered 200.
    pub fn deliveries(&self, token: &str) -> u32 {
        self.shared.state().deliveries.get(token).copied().unwrap_or(0)
    }

    /// The distinct tokens delivered to at least once, sorted.
    pub fn delivered_tokens(&self) -> Vec<String> {
        let mut tokens: Vec<String> = self.shared.state().deliveries.keys().cloned().collect();
        tokens.sort();
        tokens
    }

    /// All real sends answered 200.
    pub fn total_deliveries(&self) -> u64 {
        self.shared.counters.deliveries.load(Ordering::Relaxed)
    }

    /// All send requests, whatever the answer.
    pub fn total_requests(&self) -> u64 {
        self.shared.counters.requests.load(Ordering::Relaxed)
    }

    /// Calls to the token endpoint, successful or not.
    pub fn oauth_requests(&self) -> u64 {
        self.shared.counters.oauth_requests.load(Ordering::Relaxed)
    }

    /// The most send requests ever handled at the same time.
    pub fn max_in_flight(&self) -> u64 {
        self.shared.counters.max_in_flight.load(Ordering::Relaxed)
    }

    /// Connections that carried at least one send request.
    pub fn send_connections(&self) -> u64 {
        self.shared.counters.send_connections.load(Ordering::Relaxed)
    }

    /// A Healthchecks-style ping URL on this fake for the check `name`:
    /// `http://127.0.0.1:PORT/ping/{name}`. Any request under it is answered 200 and recorded.
    pub fn ping_url(&self, name: &str) -> String {
        format!("{}/ping/{name}", self.plain_endpoint)
    }

    /// The paths of every ping received (requests under `/ping/`), in arrival order.
    pub fn pings(&self) -> Vec<String> {
        self.shared.pings.received().into_iter().map(|ping| ping.path).collect()
    }

    /// Every ping received, with method, query and body, in arrival order.
    pub fn ping_requests(&self) -> Vec<Ping> {
        self.shared.pings.received()
    }

    /// Answers pings with this HTTP status from now on (`None`: 200 `OK`, like Healthchecks).
    pub fn answer_pings_with(&self, status: Option<u16>) {
        self.shared.pings.answer_with(status);
    }

    /// Waits until at least `n` deliveries were made; `false` if `timeout` passed first.
    pub fn wait_for_deliveries(&self, n: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.total_deliveries() < n {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }
}

impl Drop for FakeFcm {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            let _ = server.stop.send(());
            let _ = server.thread.join();
        }
    }
}

fn client_email(project_id: &str) -> String {
    format!("wolley-push@{project_id}.iam.gserviceaccount.com")
}
