//! Everything that speaks to Firebase: OAuth access tokens ([`auth`]), the message kinds
//! ([`message`]), which field names the device ([`target`]: a registration token or an
//! installation ID), what an answer means ([`verdict`]) and the HTTP/2 client ([`FcmClient`]).
//! gcp_auth and the HTTP/2 transport ([`http2`]) live here and nowhere else.

pub(crate) mod auth;
mod http2;
pub(crate) mod message;
pub(crate) mod target;
pub(crate) mod verdict;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::HeaderValue;

pub(crate) use verdict::{DeadReason, FatalSendError, Verdict};

use crate::timeout::RequestTimer;
use auth::{AuthError, Authenticator};
use http2::{Endpoint, Lane};

/// Google's front ends allow about this many concurrent streams on one HTTP/2 connection.
pub(crate) const STREAMS_PER_CONNECTION: usize = 100;

/// How the client connects.
#[derive(Debug, Clone)]
pub(crate) struct ClientSettings {
    /// Requests in flight at most; decides how many HTTP/2 connections to open.
    pub concurrency: usize,
    /// Time limit of one request.
    pub request_timeout: Duration,
    /// Extra certificate authorities (PEM) to trust for the FCM endpoint, besides the system's.
    pub extra_ca_file: Option<std::path::PathBuf>,
}

/// Why an [`FcmClient`] cannot be built: the endpoint or `--fcm-ca-file` is unusable.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ClientError(#[from] http2::EndpointError);

/// An FCM HTTP v1 client: a few HTTP/2 connections, each carrying many streams.
pub(crate) struct FcmClient {
    lanes: Vec<Lane>,
    endpoint: Endpoint,
    auth: Arc<Authenticator>,
}

impl FcmClient {
    /// Builds the lanes (connected on first use) for `project_id` at `endpoint`.
    ///
    /// # Errors
    /// When the endpoint is not an http(s) URL, or the TLS configuration cannot be built.
    pub(crate) fn new(
        endpoint: &url::Url,
        project_id: &str,
        auth: Arc<Authenticator>,
        settings: &ClientSettings,
    ) -> Result<Self, ClientError> {
        install_crypto_provider();
        // A connection carries at most ~100 streams: more in flight needs more connections.
        let count = settings.concurrency.div_ceil(STREAMS_PER_CONNECTION).clamp(1, 64);
        let base = endpoint.as_str().trim_end_matches('/');
        let send_url = format!("{base}/v1/projects/{project_id}/messages:send");
        let send_url = url::Url::parse(&send_url).map_err(|_| http2::EndpointError::Url(send_url))?;
        let endpoint = Endpoint::new(&send_url, settings.extra_ca_file.as_deref(), settings.request_timeout)?;
        Ok(FcmClient { lanes: (0..count).map(|_| Lane::new()).collect(), endpoint, auth })
    }

    /// The number of HTTP/2 connections.
    pub(crate) fn connection_count(&self) -> usize {
        self.lanes.len()
    }

    /// Sends one request body, made by `render`, refreshing the access token once when FCM
    /// says it expired. A body whose message FCM would find too big is not sent: it is answered
    /// [`Verdict::Rejected`] at once. The body is handed to `h2` as it is, and rendered again
    /// for a second POST rather than shared: sharing it cost an allocation and two atomic
    /// counts a request (BENCHMARKS.md, issue 21).
    ///
    /// # Errors
    /// When no access token can be obtained.
    pub(crate) async fn send(
        &self,
        render: impl Fn() -> Bytes,
        timer: &mut RequestTimer,
    ) -> Result<Verdict, AuthError> {
        let body = render();
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
        let answer = self.post(&bearer.header, body, timer).await;
        let Verdict::Unauthenticated(_) = answer else {
            return Ok(answer);
        };
        // Boxed, like every rare path: the state of a second POST would make every request's
        // future larger (BENCHMARKS.md, issue 21).
        Box::pin(self.send_with_fresh_token(bearer.generation, render(), timer)).await
    }

    /// FCM said the access token of `generation` expired: sends once more with a new one.
    async fn send_with_fresh_token(
        &self,
        generation: u64,
        body: Bytes,
        timer: &mut RequestTimer,
    ) -> Result<Verdict, AuthError> {
        tracing::debug!("FCM says the access token expired; refreshing it");
        let fresh = self.auth.reject(generation).await?;
        Ok(match self.post(&fresh.header, body, timer).await {
            Verdict::Unauthenticated(message) => Verdict::Fatal(FatalSendError::Unauthenticated(message)),
            other => other,
        })
    }

    /// The first lane with room for another stream, or the least busy when all are full: a
    /// light load (a rate cap, a spread) rides few connections and packs more requests into
    /// each write, while a full one fills every lane (BENCHMARKS.md, issue 21).
    fn pick_lane(&self) -> http2::Busy<'_> {
        let has_room = |lane: &&Lane| lane.in_flight() < STREAMS_PER_CONNECTION;
        let lane = self
            .lanes
            .iter()
            .find(has_room)
            .or_else(|| self.lanes.iter().min_by_key(|lane| lane.in_flight()));
        lane.expect("a client has at least one lane").busy()
    }

    /// One POST and its verdict. Per request only the header block is built: the URI and the
    /// fixed headers are shared, the body is handed to `h2` as it is.
    async fn post(&self, authorization: &HeaderValue, body: Bytes, timer: &mut RequestTimer) -> Verdict {
        let lane = self.pick_lane();
        match lane.post(&self.endpoint, authorization, body, timer).await {
            Ok(answer) => {
                let retry_after = answer.retry_after.as_ref().and_then(|v| v.to_str().ok());
                verdict::classify(answer.status, retry_after, &answer.body)
            }
            Err(error) => Verdict::Unreachable(error.to_string()),
        }
    }
}

/// reqwest and gcp_auth share rustls with the `ring` provider only; rustls needs it named once.
pub(crate) fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
