//! The fake's wire behaviour, checked over real HTTP: OAuth, authentication, request checks,
//! scripts and counters.

mod common;

use std::time::{Duration, Instant};

use common::*;
use fake_fcm::{FakeFcm, Options, Reply};
use serde_json::json;

#[tokio::test]
async fn token_endpoint_accepts_a_correctly_signed_padded_jwt() {
    let fake = FakeFcm::start(Options::default());
    let answer = request_token(&fake, &sign_jwt(&claims(&fake), true)).await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    assert!(answer.json["access_token"].as_str().unwrap().starts_with("ya29.fake-1-"));
    assert_eq!(answer.json["expires_in"], 3600);
    assert_eq!(answer.json["token_type"], "Bearer");
    assert_eq!(fake.oauth_requests(), 1);
}

#[tokio::test]
async fn token_endpoint_accepts_an_unpadded_jwt() {
    let fake = FakeFcm::start(Options::default());
    let answer = request_token(&fake, &sign_jwt(&claims(&fake), false)).await;
    assert_eq!(answer.status, 200, "{}", answer.json);
}

#[tokio::test]
async fn token_endpoint_rejects_a_jwt_with_a_bad_signature() {
    let fake = FakeFcm::start(Options::default());
    let jwt = sign_jwt(&claims(&fake), true);
    let (signed, _) = jwt.rsplit_once('.').unwrap();
    let other = sign_jwt(&json!({"iss": "someone-else"}), true);
    let forged = format!("{signed}.{}", other.rsplit_once('.').unwrap().1);
    let answer = request_token(&fake, &forged).await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json, json!({"error": "invalid_grant", "error_description": "Invalid JWT Signature."}));
}

#[tokio::test]
async fn token_endpoint_rejects_a_jwt_for_another_audience() {
    let fake = FakeFcm::start(Options::default());
    let mut claims = claims(&fake);
    claims["aud"] = json!("https://oauth2.googleapis.com/token");
    let answer = request_token(&fake, &sign_jwt(&claims, true)).await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json["error"], "invalid_grant");
}

#[tokio::test]
async fn refuse_oauth_makes_the_token_endpoint_answer_invalid_grant() {
    let fake = FakeFcm::start(Options::default());
    fake.refuse_oauth(true);
    let answer = request_token(&fake, &sign_jwt(&claims(&fake), true)).await;
    assert_eq!((answer.status, answer.json["error"].as_str()), (400, Some("invalid_grant")));
    fake.refuse_oauth(false);
    assert_eq!(request_token(&fake, &sign_jwt(&claims(&fake), true)).await.status, 200);
    assert_eq!(fake.oauth_requests(), 2);
}

#[tokio::test]
async fn fail_oauth_with_makes_the_token_endpoint_answer_that_status_until_lifted() {
    let fake = FakeFcm::start(Options::default());
    fake.fail_oauth_with(Some(503));
    let answer = request_token(&fake, &sign_jwt(&claims(&fake), true)).await;
    assert_eq!(answer.status, 503);
    assert!(answer.json.get("access_token").is_none(), "{}", answer.json);
    fake.fail_oauth_with(None);
    assert_eq!(request_token(&fake, &sign_jwt(&claims(&fake), true)).await.status, 200);
}

#[tokio::test]
async fn send_without_a_bearer_token_gets_401_unauthenticated() {
    let fake = FakeFcm::start(Options::default());
    let body = message("t").to_string().into_bytes();
    let answer = post(build_request(&send_url(&fake), &[], body), Version::Http1).await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.json["error"]["status"], "UNAUTHENTICATED");
    assert!(answer.json["error"].get("details").is_none());
    assert_eq!((fake.total_requests(), fake.total_deliveries()), (1, 0));
}

#[tokio::test]
async fn send_with_an_unknown_bearer_token_gets_401_unauthenticated() {
    let fake = FakeFcm::start(Options::default());
    let answer = send_as(&fake, "ya29.made-up", &message("t"), Version::Http1).await;
    assert_eq!(answer.status, 401);
}

#[tokio::test]
async fn send_with_a_valid_token_gets_the_message_name() {
    let fake = FakeFcm::start(Options::default());
    let bearer = access_token(&fake).await;
    let answer = send_as(&fake, &bearer, &message("t"), Version::Http1).await;
    assert_eq!(answer.status, 200);
    let name = answer.json["name"].as_str().unwrap();
    assert!(name.starts_with("projects/wolley-test/messages/"), "{name}");
}

#[tokio::test]
async fn send_to_another_project_gets_404_without_details() {
    let fake = FakeFcm::start(Options::default());
    let bearer = access_token(&fake).await;
    let url = format!("{}/v1/projects/other/messages:send", fake.endpoint());
    let answer = post(send_request(&url, &bearer, &message("t")), Version::Http1).await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.json["error"]["status"], "NOT_FOUND");
    assert!(answer.json["error"].get("details").is_none());
}

#[tokio::test]
async fn scripted_token_gets_its_replies_in_order_then_200() {
    let fake = FakeFcm::start(Options::default());
    fake.script("t", vec![Reply::unavailable(Some(3)), Reply::unregistered()]);
    let bearer = access_token(&fake).await;
    let first = send_as(&fake, &bearer, &message("t"), Version::Http1).await;
    assert_eq!((first.status, error_code(&first)), (503, "UNAVAILABLE"));
    assert_eq!(first.headers["retry-after"], "3");
    let second = send_as(&fake, &bearer, &message("t"), Version::Http1).await;
    assert_eq!((second.status, error_code(&second)), (404, "UNREGISTERED"));
    let other = send_as(&fake, &bearer, &message("other"), Version::Http1).await;
    assert_eq!(other.status, 200);
    assert_eq!(send_as(&fake, &bearer, &message("t"), Version::Http1).await.status, 200);
    assert_eq!(fake.deliveries("t"), 1);
}

#[tokio::test]
async fn script_next_applies_to_any_token_before_per_token_scripts() {
    let fake = FakeFcm::start(Options::default());
    fake.script("t", vec![Reply::internal()]);
    fake.script_next(vec![Reply::quota_exceeded(Some(1))]);
    let bearer = access_token(&fake).await;
    let statuses = [
        send_as(&fake, &bearer, &message("t"), Version::Http1).await.status,
        send_as(&fake, &bearer, &message("t"), Version::Http1).await.status,
        send_as(&fake, &bearer, &message("u"), Version::Http1).await.status,
    ];
    assert_eq!(statuses, [429, 500, 200]);
}

#[tokio::test]
async fn non_string_data_value_gets_400_invalid_argument() {
    let fake = FakeFcm::start(Options::default());
    let bearer = access_token(&fake).await;
    let body = json!({"message": {"token": "t", "data": {"count": 3}}});
    let answer = send_as(&fake, &bearer, &body, Version::Http1).await;
    assert_eq!((answer.status, error_code(&answer)), (400, "INVALID_ARGUMENT"));
    let text = answer.json["error"]["message"].as_str().unwrap();
    assert!(text.starts_with("Invalid value at 'message.data[0].value' (TYPE_STRING)"), "{text}");
}

#[tokio::test]
async fn background_push_with_priority_10_gets_400() {
    let fake = FakeFcm::start(Options::default());
    let bearer = access_token(&fake).await;
    let headers = json!({"apns-push-type": "background", "apns-priority": "10"});
    let body = json!({"message": {"token": "t", "apns": {"headers": headers}}});
    let answer = send_as(&fake, &bearer, &body, Version::Http1).await;
    assert_eq!((answer.status, error_code(&answer)), (400, "INVALID_ARGUMENT"));
    assert_eq!(fake.total_deliveries(), 0);
}

#[tokio::test]
async fn checks_run_before_scripted_replies() {
    let fake = FakeFcm::start(Options::default());
    fake.script("t", vec![Reply::unregistered()]);
    let bearer = access_token(&fake).await;
    let body = json!({"message": {"token": "t", "data": {"n": 1}}});
    assert_eq!(send_as(&fake, &bearer, &body, Version::Http1).await.status, 400);
    assert_eq!(send_as(&fake, &bearer, &message("t"), Version::Http1).await.status, 404);
}

#[tokio::test]
async fn counters_count_deliveries_and_requests_but_not_validate_only() {
    let fake = FakeFcm::start(Options::default());
    let bearer = access_token(&fake).await;
    let mut dry_run = message("a");
    dry_run["validate_only"] = json!(true);
    assert_eq!(send_as(&fake, &bearer, &dry_run, Version::Http1).await.status, 200);
    send_as(&fake, &bearer, &message("a"), Version::Http1).await;
    send_as(&fake, &bearer, &message("b"), Version::Http1).await;
    send_as(&fake, &bearer, &message("b"), Version::Http1).await;
    send_as(&fake, &bearer, &json!({"message": {}}), Version::Http1).await;
    assert_eq!((fake.deliveries("a"), fake.deliveries("b")), (1, 2));
    assert_eq!(fake.delivered_tokens(), ["a", "b"]);
    assert_eq!((fake.total_deliveries(), fake.total_requests()), (3, 5));
    let requests = fake.requests();
    assert_eq!(requests.len(), 5);
    assert!(requests[0].validate_only);
    assert_eq!(requests[4].status, 400);
    assert_eq!(requests[1].authorization.as_deref(), Some(format!("Bearer {bearer}").as_str()));
    assert!(fake.wait_for_deliveries(3, Duration::ZERO));
}

#[tokio::test]
async fn expire_access_tokens_after_revokes_the_tokens_issued_so_far() {
    let fake = FakeFcm::start(Options::default());
    let old = access_token(&fake).await;
    fake.expire_access_tokens_after(1);
    assert_eq!(send_as(&fake, &old, &message("t"), Version::Http1).await.status, 200);
    assert_eq!(send_as(&fake, &old, &message("t"), Version::Http1).await.status, 401);
    let new = access_token(&fake).await;
    assert_eq!(send_as(&fake, &new, &message("t"), Version::Http1).await.status, 200);
    assert_eq!(send_as(&fake, &old, &message("t"), Version::Http1).await.status, 401);
}

#[tokio::test]
async fn access_tokens_expire_after_expires_in() {
    let options = Options { access_token_expires_in: 1, ..Options::default() };
    let fake = FakeFcm::start(options);
    let bearer = access_token(&fake).await;
    assert_eq!(send_as(&fake, &bearer, &message("t"), Version::Http1).await.status, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(send_as(&fake, &bearer, &message("t"), Version::Http1).await.status, 401);
}

#[tokio::test]
async fn http2_with_prior_knowledge_is_served_on_the_same_port() {
    let fake = FakeFcm::start(Options::default());
    let bearer = access_token(&fake).await;
    assert_eq!(send_as(&fake, &bearer, &message("t"), Version::Http2).await.status, 200);
    assert_eq!(fake.requests()[0].http_version, "HTTP/2.0");
}

#[tokio::test]
async fn latency_is_applied_to_concurrent_sends_in_parallel() {
    let options = Options { latency: Duration::from_millis(300), ..Options::default() };
    let fake = FakeFcm::start(options);
    let (url, bearer) = (send_url(&fake), access_token(&fake).await);
    let started = Instant::now();
    let mut sends = tokio::task::JoinSet::new();
    for i in 0..8 {
        let request = send_request(&url, &bearer, &message(&format!("t{i}")));
        sends.spawn(async move { post(request, Version::Http1).await.status });
    }
    let statuses = sends.join_all().await;
    assert!(statuses.iter().all(|&status| status == 200));
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(started.elapsed() < Duration::from_millis(2000), "{:?}", started.elapsed());
    assert!(fake.max_in_flight() >= 2, "{}", fake.max_in_flight());
}

#[tokio::test]
async fn max_concurrent_streams_limits_streams_per_http2_connection() {
    let latency = Duration::from_millis(100);
    let fake = FakeFcm::start(Options { latency, max_concurrent_streams: 2, ..Options::default() });
    let (url, bearer) = (send_url(&fake), access_token(&fake).await);
    let mut connection = http2_connection(&url).await;
    // Streams opened before the server's SETTINGS arrive are refused (REFUSED_STREAM), as
    // with any HTTP/2 server: one request first makes the client learn the limit.
    assert_eq!(send_on(&mut connection, &url, &bearer, &message("t")).await.status, 200);
    let mut sends = tokio::task::JoinSet::new();
    for i in 0..6 {
        let (mut connection, url, bearer) = (connection.clone(), url.clone(), bearer.clone());
        let body = message(&format!("t{i}"));
        sends.spawn(async move { send_on(&mut connection, &url, &bearer, &body).await.status });
    }
    assert_eq!(sends.join_all().await, [200; 6]);
    assert_eq!(fake.max_in_flight(), 2);
}

#[tokio::test]
async fn transient_503_ratio_answers_a_share_of_sends_with_503() {
    let fake = FakeFcm::start(Options { transient_503_ratio: 0.5, ..Options::default() });
    let bearer = access_token(&fake).await;
    let mut unavailable = 0;
    for _ in 0..20 {
        let answer = send_as(&fake, &bearer, &message("t"), Version::Http1).await;
        if answer.status == 503 {
            assert_eq!(error_code(&answer), "UNAVAILABLE");
            unavailable += 1;
        }
    }
    assert!((3..=17).contains(&unavailable), "{unavailable}");
    assert_eq!(fake.total_deliveries(), 20 - unavailable);
}

#[tokio::test]
async fn record_bodies_off_keeps_only_counters() {
    let fake = FakeFcm::start(Options { record_bodies: false, ..Options::default() });
    let bearer = access_token(&fake).await;
    send_as(&fake, &bearer, &message("t"), Version::Http1).await;
    assert!(fake.requests().is_empty());
    assert_eq!((fake.deliveries("t"), fake.total_requests()), (1, 1));
}

#[test]
fn service_account_json_points_at_the_fake() {
    let fake = FakeFcm::start(Options::default());
    let key: serde_json::Value = serde_json::from_str(&fake.service_account_json()).unwrap();
    assert_eq!(key["type"], "service_account");
    assert_eq!(key["project_id"], "wolley-test");
    assert_eq!(key["client_email"], "wolley-push@wolley-test.iam.gserviceaccount.com");
    assert_eq!(key["token_uri"], fake.token_uri());
    assert_eq!(key["private_key"], FakeFcm::private_key_pem());
}
