//! Healthchecks-style ping endpoints: any request under `/ping/`.
//!
//! Exists so that wolley-push's `--ping-url` can be tested end to end: every ping is answered
//! like Healthchecks does (200 `OK`, or a status a test chose) and remembered with its method,
//! path, body and arrival time, for tests to assert the order of `start`, success and failure.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::CONTENT_TYPE;
use hyper::{Request, Response, StatusCode};

use crate::http::{read_body, HttpResponse};
use crate::state::Shared;

/// Every path under this prefix is a ping.
const PREFIX: &str = "/ping/";

/// One ping request, as the fake saw it.
#[derive(Clone, Debug)]
pub struct Ping {
    /// `GET`, `POST` or `HEAD`.
    pub method: String,
    /// The request path, e.g. `/ping/save-location/start` (without the query).
    pub path: String,
    /// The query string, if any.
    pub query: Option<String>,
    /// The body as text (lossy).
    pub body: String,
    /// When the request arrived.
    pub at: Instant,
}

/// The pings received, and the status to answer them with.
#[derive(Default)]
pub(crate) struct PingLog {
    state: Mutex<PingState>,
}

#[derive(Default)]
struct PingState {
    received: Vec<Ping>,
    answer: Option<u16>,
}

impl PingLog {
    fn state(&self) -> MutexGuard<'_, PingState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every ping so far, in arrival order.
    pub(crate) fn received(&self) -> Vec<Ping> {
        let mut pings = self.state().received.clone();
        pings.sort_by_key(|ping| ping.at);
        pings
    }

    /// Answer pings with `status` from now on (`None`: 200).
    pub(crate) fn answer_with(&self, status: Option<u16>) {
        self.state().answer = status;
    }
}

/// Whether `path` is a ping's.
pub(crate) fn is_ping(path: &str) -> bool {
    path.starts_with(PREFIX)
}

/// Records the ping and answers it.
pub(crate) async fn endpoint(shared: &Shared, request: Request<Incoming>) -> HttpResponse {
    let at = Instant::now();
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().map(str::to_owned);
    let body = String::from_utf8_lossy(&read_body(request.into_body()).await).into_owned();
    let status = {
        let mut state = shared.pings.state();
        state.received.push(Ping { method, path, query, body, at });
        state.answer.unwrap_or(200)
    };
    let mut response = Response::new(Full::new(Bytes::from_static(b"OK")));
    *response.status_mut() = StatusCode::from_u16(status).expect("a valid status code");
    response.headers_mut().insert(CONTENT_TYPE, "text/plain; charset=utf-8".parse().unwrap());
    response
}
