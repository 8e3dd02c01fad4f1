//! The FCM HTTP v1 `messages:send` endpoint.
//!
//! Exists to answer sends the way FCM does: authentication first, then the request checks
//! FCM makes, then scripted replies, injected 503s or success, counting deliveries and
//! logging requests for tests and benchmarks to assert on.

use std::sync::atomic::Ordering;
use std::time::Instant;

use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE};
use hyper::Request;
use serde_json::Value;

use crate::http::{header, read_body, HttpResponse};
use crate::state::{Shared, State};
use crate::{RecordedRequest, Reply};

/// FCM's limit on the size of a message.
const MAX_MESSAGE_BYTES: usize = 4096;

/// The project id in a `/v1/projects/{project_id}/messages:send` path.
pub(crate) fn send_path_project(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/v1/projects/")?;
    rest.strip_suffix("/messages:send").or_else(|| rest.strip_suffix("/messages%3Asend"))
}

/// The `Message` fields that name one device; FCM's `target` is a oneof: exactly one is set
/// (topics and conditions are not faked).
const TARGET_FIELDS: [&str; 2] = ["token", "fid"];

/// One send request as it arrived.
struct Send {
    at: Instant,
    sequence: u64,
    project_matches: bool,
    authorization: Option<String>,
    content_type: Option<String>,
    http_version: String,
    body: Option<Value>,
}

impl Send {
    /// The device: `message.token` or `message.fid` (FCM takes exactly one target).
    fn token(&self) -> Option<&str> {
        self.target().map(|(_, value)| value)
    }

    /// The target field and its value.
    fn target(&self) -> Option<(&'static str, &str)> {
        let message = self.body.as_ref()?.get("message")?;
        TARGET_FIELDS.iter().find_map(|&field| Some((field, message.get(field)?.as_str()?)))
    }

    fn validate_only(&self) -> bool {
        let flag = self.body.as_ref().and_then(|body| body.get("validate_only"));
        flag.and_then(Value::as_bool).unwrap_or(false)
    }
}

/// Answers `POST /v1/projects/{project}/messages:send`, after the configured latency.
pub(crate) async fn send_endpoint(
    shared: &Shared,
    request: Request<Incoming>,
    project: &str,
) -> HttpResponse {
    let at = Instant::now();
    let _in_flight = shared.counters.enter();
    let sequence = shared.counters.requests.fetch_add(1, Ordering::Relaxed);
    let authorization = header(&request, AUTHORIZATION);
    let content_type = header(&request, CONTENT_TYPE);
    let http_version = format!("{:?}", request.version());
    let body = serde_json::from_slice(&read_body(request).await).ok();
    if !shared.options.latency.is_zero() {
        tokio::time::sleep(shared.options.latency).await;
    }
    let project_matches = project == shared.options.project_id;
    let send = Send { at, sequence, project_matches, authorization, content_type, http_version, body };
    let reply = answer_and_record(shared, send);
    let message_name = format!("projects/{project}/messages/0:{sequence}%{:016x}", mix(sequence));
    reply.to_response(&message_name)
}

/// Decides the reply under the lock, then counts and logs it.
fn answer_and_record(shared: &Shared, send: Send) -> Reply {
    let checked = check_body(send.body.as_ref());
    let mut state = shared.state();
    let reply = decide(shared, &mut state, &send, checked);
    if reply == Reply::Ok && !send.validate_only() {
        if let Some(token) = send.token() {
            *state.deliveries.entry(token.to_owned()).or_default() += 1;
        }
        shared.counters.deliveries.fetch_add(1, Ordering::Relaxed);
    }
    if shared.options.record_bodies {
        let status = reply.status();
        state.log.push(record(send, status));
    }
    reply
}

/// The reply to a send, in FCM's order of precedence.
fn decide(shared: &Shared, state: &mut State, send: &Send, checked: Result<(), Reply>) -> Reply {
    if !state.tokens.admit(send.authorization.as_deref()) {
        return Reply::unauthenticated();
    }
    if !send.project_matches {
        return Reply::project_not_found();
    }
    if let Err(refusal) = checked {
        return refusal;
    }
    if let Some(scripted) = state.scripted(send.token()) {
        return scripted;
    }
    if transient_failure(send.sequence, shared.options.transient_503_ratio) {
        return Reply::unavailable(None);
    }
    Reply::Ok
}

fn record(send: Send, status: u16) -> RecordedRequest {
    RecordedRequest {
        token: send.token().map(str::to_owned),
        target_field: send.target().map(|(field, _)| field),
        validate_only: send.validate_only(),
        body: send.body,
        authorization: send.authorization,
        content_type: send.content_type,
        http_version: send.http_version,
        at: send.at,
        status,
    }
}

/// The checks FCM makes on the request body before anything else.
fn check_body(body: Option<&Value>) -> Result<(), Reply> {
    let body =
        body.ok_or_else(|| Reply::invalid_payload("Invalid JSON payload received. Unexpected token."))?;
    let message = body.get("message").filter(|message| message.is_object());
    let message = message.ok_or_else(|| Reply::invalid_payload("Request contains an invalid argument."))?;
    let targets: Vec<&str> =
        TARGET_FIELDS.into_iter().filter(|field| message.get(*field).is_some()).collect();
    match targets.as_slice() {
        [] => return Err(Reply::invalid_payload("Invalid request: message.token is required.")),
        [field] if message[*field].is_string() => {}
        [field] => {
            let text = format!("Invalid value at 'message.{field}' (TYPE_STRING)");
            return Err(Reply::field_violation(&format!("message.{field}"), &text));
        }
        [_, second, ..] => {
            return Err(Reply::invalid_payload(&format!(
            "Invalid value at 'message' (oneof), oneof field 'target' is already set. Cannot set '{second}'"
        )))
        }
    }
    check_data(message.get("data"))?;
    check_size(message)?;
    check_apns_headers(message)
}

/// `message.data` must map strings to strings.
fn check_data(data: Option<&Value>) -> Result<(), Reply> {
    let Some(data) = data.filter(|data| !data.is_null()) else {
        return Ok(());
    };
    let Some(entries) = data.as_object() else {
        return Err(Reply::invalid_payload("Invalid value at 'message.data' (map<string, string>)"));
    };
    match entries.values().enumerate().find(|(_, value)| !value.is_string()) {
        Some((index, value)) => Err(Reply::invalid_payload(&format!(
            "Invalid value at 'message.data[{index}].value' (TYPE_STRING), {value}"
        ))),
        None => Ok(()),
    }
}

fn check_size(message: &Value) -> Result<(), Reply> {
    let mut size = ByteCount(0);
    let size = serde_json::to_writer(&mut size, message).map_or(0, |()| size.0);
    if size > MAX_MESSAGE_BYTES {
        return Err(Reply::invalid_payload("Message is too big"));
    }
    Ok(())
}

/// Counts what is written to it: the serialised size without building the bytes.
struct ByteCount(usize);

impl std::io::Write for ByteCount {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0 += bytes.len();
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Apple refuses `apns-priority: 10` on background pushes, and FCM passes that on.
fn check_apns_headers(message: &Value) -> Result<(), Reply> {
    let Some(headers) = message.pointer("/apns/headers").and_then(Value::as_object) else {
        return Ok(());
    };
    let get = |name: &str| {
        let found = headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name));
        found.and_then(|(_, value)| value.as_str())
    };
    if get("apns-push-type") == Some("background") && get("apns-priority") == Some("10") {
        return Err(Reply::invalid_payload(
            "Invalid APNs headers: apns-priority 10 is not allowed with apns-push-type background",
        ));
    }
    Ok(())
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
    use serde_json::json;

    fn refusal(body: Value) -> String {
        match check_body(Some(&body)) {
            Err(Reply::Error { message, .. }) => message,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn send_path_project_reads_the_project_id() {
        assert_eq!(send_path_project("/v1/projects/p-1/messages:send"), Some("p-1"));
        assert_eq!(send_path_project("/v1/projects/p-1/messages"), None);
    }

    #[test]
    fn a_message_with_an_fid_is_accepted_like_one_with_a_token() {
        assert!(check_body(Some(&json!({"message": {"fid": "cR_8eKx2Q-2mP0aBcDeF9z"}}))).is_ok());
    }

    #[test]
    fn a_message_with_both_a_token_and_an_fid_is_refused() {
        assert!(refusal(json!({"message": {"token": "t", "fid": "f"}})).contains("oneof"));
    }

    #[test]
    fn a_message_without_a_token_is_refused() {
        assert!(refusal(json!({"message": {"topic": "news"}})).contains("message.token"));
    }

    #[test]
    fn a_data_value_that_is_not_a_string_names_its_index() {
        let body = json!({"message": {"token": "t", "data": {"a": "1", "b": 2}}});
        assert_eq!(refusal(body), "Invalid value at 'message.data[1].value' (TYPE_STRING), 2");
    }

    #[test]
    fn a_message_over_4096_bytes_is_too_big() {
        let body = json!({"message": {"token": "t", "data": {"big": "x".repeat(4096)}}});
        assert_eq!(refusal(body), "Message is too big");
    }

    #[test]
    fn transient_failures_follow_the_ratio() {
        let failures = (0..10_000).filter(|&n| transient_failure(n, 0.25)).count();
        assert!((2_300..2_700).contains(&failures), "{failures}");
        assert!(!(0..1000).any(|n| transient_failure(n, 0.0)));
    }
}
