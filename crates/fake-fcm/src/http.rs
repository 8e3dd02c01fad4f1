//! Small HTTP helpers shared by the two endpoints.
//!
//! Exists so that building JSON responses and reading request heads and bodies is written once.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderName, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use serde_json::Value;

/// Every response the fake sends.
pub(crate) type HttpResponse = Response<Full<Bytes>>;

/// A response with this status and a JSON body.
pub(crate) fn json_response(status: u16, body: &Value) -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = StatusCode::from_u16(status).expect("a valid status code");
    response.headers_mut().insert(CONTENT_TYPE, "application/json; charset=UTF-8".parse().unwrap());
    response
}

/// The value of a request header, if present and valid UTF-8.
pub(crate) fn header(request: &Request<Incoming>, name: HeaderName) -> Option<String> {
    request.headers().get(name)?.to_str().ok().map(str::to_owned)
}

/// The whole request body; a body cut short by the client reads as empty (and so is rejected).
pub(crate) async fn read_body(request: Request<Incoming>) -> Bytes {
    match request.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::new(),
    }
}
