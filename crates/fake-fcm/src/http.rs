//! Small HTTP helpers shared by the two endpoints.
//!
//! Exists so that building JSON responses and reading request heads and bodies is written once.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use serde_json::Value;

/// Every response the fake sends.
pub(crate) type HttpResponse = Response<Full<Bytes>>;

/// A response with this status and a JSON body.
pub(crate) fn json_response(status: u16, body: &Value) -> HttpResponse {
    json_text_response(status, body.to_string().into_bytes())
}

/// A response with this status and a body that is already JSON text.
pub(crate) fn json_text_response(status: u16, json: Vec<u8>) -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::from(json)));
    *response.status_mut() = StatusCode::from_u16(status).expect("a valid status code");
    let content_type = HeaderValue::from_static("application/json; charset=UTF-8");
    response.headers_mut().insert(CONTENT_TYPE, content_type);
    response
}

/// The value of a request header, if present and valid UTF-8.
pub(crate) fn header(headers: &HeaderMap, name: HeaderName) -> Option<&str> {
    headers.get(name)?.to_str().ok()
}

/// The whole request body; a body cut short by the client reads as empty (and so is rejected).
pub(crate) async fn read_body(body: Incoming) -> Bytes {
    match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::new(),
    }
}
