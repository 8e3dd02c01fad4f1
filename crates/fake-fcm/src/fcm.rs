//! The FCM HTTP v1 `messages:send` endpoint.
//!
//! Exists to answer sends the way FCM does: authentication first, then the request checks
//! FCM makes, then scripted replies, injected 503s or success, counting deliveries and
//! logging requests for tests and benchmarks to assert on.

use std::sync::atomic::Ordering;
use std::time::Instant;

use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE};
use hyper::http::request::Parts;

use crate::http::{header, read_body, HttpResponse};
use crate::message::{self, SendBody};
use crate::state::{Shared, State};
use crate::{RecordedRequest, Reply};

/// The project id in a `/v1/projects/{project_id}/messages:send` path.
pub(crate) fn send_path_project(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/v1/projects/")?;
    rest.strip_suffix("/messages:send").or_else(|| rest.strip_suffix("/messages%3Asend"))
}

/// One send request as it arrived; borrowed, because most of it is only looked at.
struct Send<'a> {
    at: Instant,
    sequence: u64,
    project_matches: bool,
    head: &'a Parts,
    raw_body: &'a [u8],
    body: SendBody<'a>,
}

impl Send<'_> {
    fn authorization(&self) -> Option<&str> {
        header(&self.head.headers, AUTHORIZATION)
    }
}

/// Answers `POST /v1/projects/{project}/messages:send`, after the configured latency.
pub(crate) async fn send_endpoint(
    shared: &Shared,
    head: &Parts,
    body: Incoming,
    project: &str,
) -> HttpResponse {
    let at = Instant::now();
    let _in_flight = shared.counters.enter();
    let sequence = shared.counters.requests.fetch_add(1, Ordering::Relaxed);
    let raw_body = read_body(body).await;
    if !shared.options.latency.is_zero() {
        tokio::time::sleep(shared.options.latency).await;
    }
    let project_matches = project == shared.options.project_id;
    let body = message::read(&raw_body);
    let send = Send { at, sequence, project_matches, head, raw_body: &raw_body, body };
    let reply = answer_and_record(shared, &send);
    let message_name = format!("projects/{project}/messages/0:{sequence}%{:016x}", mix(sequence));
    reply.to_response(&message_name)
}

/// Decides the reply under the lock, then counts and logs it.
fn answer_and_record(shared: &Shared, send: &Send<'_>) -> Reply {
    let mut state = shared.state();
    let reply = decide(shared, &mut state, send);
    if reply == Reply::Ok && !send.body.validate_only {
        if let Some(token) = send.body.token() {
            count_delivery(&mut state, token);
        }
        shared.counters.deliveries.fetch_add(1, Ordering::Relaxed);
    }
    if shared.options.record_bodies {
        let status = reply.status();
        state.log.push(record(send, status));
    }
    reply
}

/// One more delivery to `token`; its key is copied only the first time.
fn count_delivery(state: &mut State, token: &str) {
    match state.deliveries.get_mut(token) {
        Some(count) => *count += 1,
        None => {
            state.deliveries.insert(token.to_owned(), 1);
        }
    }
}

/// The reply to a send, in FCM's order of precedence.
fn decide(shared: &Shared, state: &mut State, send: &Send<'_>) -> Reply {
    if !state.tokens.admit(send.authorization()) {
        return Reply::unauthenticated();
    }
    if !send.project_matches {
        return Reply::project_not_found();
    }
    if let Err(refusal) = &send.body.verdict {
        return refusal.clone();
    }
    if let Some(scripted) = state.scripted(send.body.token()) {
        return scripted;
    }
    if transient_failure(send.sequence, shared.options.transient_503_ratio) {
        return Reply::unavailable(None);
    }
    Reply::Ok
}

fn record(send: &Send<'_>, status: u16) -> RecordedRequest {
    let target = send.body.target.as_ref();
    RecordedRequest {
        token: target.map(|(_, token)| token.clone().into_owned()),
        target_field: target.map(|&(field, _)| field),
        validate_only: send.body.validate_only,
        body: serde_json::from_slice(send.raw_body).ok(),
        authorization: send.authorization().map(str::to_owned),
        content_type: header(&send.head.headers, CONTENT_TYPE).map(str::to_owned),
        http_version: format!("{:?}", send.head.version),
        at: send.at,
        status,
    }
}

/// Whether the send with this sequence number gets an injected 503: deterministic, and close
/// to `ratio` of all sends.
fn transient_failure(sequence: u64, ratio: f64) -> bool {
    let unit = (mix(sequence) >> 11) as f64 / (1u64 << 53) as f64;
    unit < ratio
}

/// SplitMix64: spreads consecutive numbers evenly over `u64`.
fn mix(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_path_project_reads_the_project_id() {
        assert_eq!(send_path_project("/v1/projects/p-1/messages:send"), Some("p-1"));
        assert_eq!(send_path_project("/v1/projects/p-1/messages"), None);
    }

    #[test]
    fn transient_failures_follow_the_ratio() {
        let failures = (0..10_000).filter(|&n| transient_failure(n, 0.25)).count();
        assert!((2_300..2_700).contains(&failures), "{failures}");
        assert!(!(0..1000).any(|n| transient_failure(n, 0.0)));
    }
}
