//! A minimal HTTP client and JWT signer for the fake's own tests.
//!
//! Exists so that each test states one behaviour and not the plumbing of talking to the fake:
//! hyper's connection-level client (HTTP/1.1 or HTTP/2 with prior knowledge) and a
//! service-account JWT signed with the test key the way gcp_auth signs it.

#![allow(dead_code)]

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use bytes::Bytes;
use fake_fcm::FakeFcm;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use ring::rand::SystemRandom;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use serde_json::{json, Value};
use tokio::net::TcpStream;

/// The scope wolley-push asks for.
pub const FCM_SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";

/// One answer from the fake.
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub json: Value,
}

/// Which HTTP version to speak.
#[derive(Clone, Copy)]
pub enum Version {
    Http1,
    Http2,
}

/// An HTTP/2 connection (prior knowledge) whose sender can be cloned for concurrent streams.
pub type Http2Sender = hyper::client::conn::http2::SendRequest<Full<Bytes>>;

/// Opens an HTTP/2 connection to the host of `url`.
pub async fn http2_connection(url: &str) -> Http2Sender {
    let io = TokioIo::new(connect(url).await);
    let (sender, connection) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await.unwrap();
    tokio::spawn(connection);
    sender
}

/// Sends one request over a new connection.
pub async fn post(request: Request<Full<Bytes>>, version: Version) -> Answer {
    let url = request.uri().to_string();
    let response = match version {
        Version::Http1 => {
            let io = TokioIo::new(connect(&url).await);
            let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await.unwrap();
            tokio::spawn(connection);
            sender.send_request(request).await
        }
        Version::Http2 => http2_connection(&url).await.send_request(request).await,
    };
    read_answer(response.unwrap()).await
}

async fn connect(url: &str) -> TcpStream {
    let uri: hyper::Uri = url.parse().unwrap();
    TcpStream::connect(uri.authority().unwrap().as_str()).await.unwrap()
}

/// A POST to `url` with these headers and body.
pub fn build_request(url: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Request<Full<Bytes>> {
    let mut request = Request::post(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(Full::new(Bytes::from(body))).unwrap()
}

async fn read_answer(response: Response<Incoming>) -> Answer {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Answer { status, headers, json: serde_json::from_slice(&bytes).unwrap_or(Value::Null) }
}

/// Claims as gcp_auth sends them for this fake's service account.
pub fn claims(fake: &FakeFcm) -> Value {
    let key: Value = serde_json::from_str(&fake.service_account_json()).unwrap();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    json!({
        "iss": key["client_email"],
        "aud": fake.token_uri(),
        "exp": now + 3595,
        "iat": now,
        "sub": null,
        "scope": FCM_SCOPE,
    })
}

/// A JWT over `claims` signed with the test key; `padded` like gcp_auth, or not.
pub fn sign_jwt(claims: &Value, padded: bool) -> String {
    let engine = if padded { URL_SAFE } else { URL_SAFE_NO_PAD };
    let header = engine.encode(r#"{"alg":"RS256","typ":"JWT"}"#);
    let signed = format!("{header}.{}", engine.encode(claims.to_string()));
    let pem = FakeFcm::private_key_pem();
    let base64: String = pem.lines().filter(|line| !line.starts_with("-----")).collect();
    let key = RsaKeyPair::from_pkcs8(&STANDARD.decode(base64).unwrap()).unwrap();
    let mut signature = vec![0; key.public().modulus_len()];
    key.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), signed.as_bytes(), &mut signature).unwrap();
    format!("{signed}.{}", engine.encode(signature))
}

/// Posts a JWT to the token endpoint as gcp_auth does.
pub async fn request_token(fake: &FakeFcm, jwt: &str) -> Answer {
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer")
        .append_pair("assertion", jwt)
        .finish();
    let headers = [("content-type", "application/x-www-form-urlencoded")];
    post(build_request(&fake.token_uri(), &headers, form.into_bytes()), Version::Http1).await
}

/// A working access token from the fake.
pub async fn access_token(fake: &FakeFcm) -> String {
    let answer = request_token(fake, &sign_jwt(&claims(fake), true)).await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    answer.json["access_token"].as_str().unwrap().to_owned()
}

/// The send URL of the fake's project.
pub fn send_url(fake: &FakeFcm) -> String {
    format!("{}/v1/projects/{}/messages:send", fake.endpoint(), fake.project_id())
}

/// Sends `body` with this bearer token over a new connection.
pub async fn send_as(fake: &FakeFcm, bearer: &str, body: &Value, version: Version) -> Answer {
    post(send_request(&send_url(fake), bearer, body), version).await
}

/// Sends `body` to `url` with this bearer token, as a new stream of `connection`.
pub async fn send_on(connection: &mut Http2Sender, url: &str, bearer: &str, body: &Value) -> Answer {
    let response = connection.send_request(send_request(url, bearer, body)).await;
    read_answer(response.unwrap()).await
}

/// A send of `body` to `url` with this bearer token.
pub fn send_request(url: &str, bearer: &str, body: &Value) -> Request<Full<Bytes>> {
    let authorization = format!("Bearer {bearer}");
    let headers = [("authorization", authorization.as_str()), ("content-type", "application/json")];
    build_request(url, &headers, body.to_string().into_bytes())
}

/// A plain notification to `token`.
pub fn message(token: &str) -> Value {
    json!({ "message": { "token": token, "notification": { "title": "Hi", "body": "There" } } })
}

/// The FCM `errorCode` of an error answer.
pub fn error_code(answer: &Answer) -> &str {
    answer.json["error"]["details"][0]["errorCode"].as_str().unwrap_or("")
}
