//! Google's OAuth 2.0 token endpoint for service accounts, and the access tokens it hands out.
//!
//! Exists so that the client's real auth path (a JWT signed with the service-account key,
//! traded for a bearer token) runs against something that checks it as strictly as Google:
//! signature, issuer, audience, scope and times, and so that sends can be refused once their
//! token expires or is revoked.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::alphabet::URL_SAFE;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use hyper::body::Incoming;
use hyper::header::CONTENT_TYPE;
use hyper::Request;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{RsaKeyPair, UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;

use crate::http::{header, json_response, read_body, HttpResponse};
use crate::state::{Shared, TokenMap};

/// The throwaway RSA key of the fake service account (PKCS#8 PEM).
pub(crate) const TEST_KEY_PEM: &str = include_str!("test-key.pem");
/// The scope a JWT must ask for to be allowed to send.
const FCM_SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// How far in the future `iat` may be, for clock skew.
const CLOCK_SKEW_SECS: i64 = 60;

/// URL-safe base64 that takes segments with or without `=` padding (gcp_auth pads them).
const BASE64_URL: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A refusal from the token endpoint: 400 `{"error", "error_description"}`.
#[derive(Debug, PartialEq, Eq)]
struct OAuthError {
    error: &'static str,
    description: String,
}

impl OAuthError {
    fn new(error: &'static str, description: &str) -> OAuthError {
        OAuthError { error, description: description.to_owned() }
    }

    fn invalid_grant(description: &str) -> OAuthError {
        OAuthError::new("invalid_grant", description)
    }

    /// What the endpoint answers while `refuse_oauth(true)` is in force.
    fn account_not_found() -> OAuthError {
        OAuthError::invalid_grant("Invalid grant: account not found")
    }

    fn to_response(&self) -> HttpResponse {
        json_response(400, &json!({ "error": self.error, "error_description": self.description }))
    }
}

/// Answers `POST /token`: checks the form and its JWT, then issues an access token.
pub(crate) async fn token_endpoint(shared: &Shared, request: Request<Incoming>) -> HttpResponse {
    let oauth_requests = &shared.counters.oauth_requests;
    oauth_requests.fetch_add(1, Ordering::Relaxed);
    let content_type = header(request.headers(), CONTENT_TYPE).unwrap_or_default().to_owned();
    let form = read_body(request.into_body()).await;
    let failing = shared.fail_oauth.load(Ordering::Relaxed);
    if failing != 0 {
        return temporary_failure(failing);
    }
    let checked = if shared.refuse_oauth.load(Ordering::Relaxed) {
        Err(OAuthError::account_not_found())
    } else {
        shared.verifier.check_request(&content_type, &form)
    };
    match checked {
        Ok(()) => issue_token(shared),
        Err(refusal) => refusal.to_response(),
    }
}

/// What the endpoint answers while `fail_oauth_with(Some(status))` is in force: Google's
/// front ends give a 5xx or 429 a short JSON error, not a token.
fn temporary_failure(status: u16) -> HttpResponse {
    let error = match status {
        429 => "rate_limit_exceeded",
        _ => "internal_failure",
    };
    let description = "The service is currently unavailable. Please try again later.";
    json_response(status, &json!({ "error": error, "error_description": description }))
}

fn issue_token(shared: &Shared) -> HttpResponse {
    let expires_in = shared.options.access_token_expires_in;
    let token = shared.state().tokens.issue(Duration::from_secs(expires_in));
    let body = json!({ "access_token": token, "expires_in": expires_in, "token_type": "Bearer" });
    json_response(200, &body)
}

/// The claims of a service-account JWT that Google checks.
#[derive(Deserialize)]
struct Claims {
    iss: String,
    aud: String,
    scope: String,
    exp: i64,
    iat: i64,
}

/// Checks token requests against the fake service account.
pub(crate) struct Verifier {
    public_key: Vec<u8>,
    client_email: String,
    token_uri: String,
}

impl Verifier {
    /// A verifier for JWTs signed with the test key, issued by `client_email` for `token_uri`.
    pub(crate) fn new(client_email: String, token_uri: String) -> Verifier {
        let pair = RsaKeyPair::from_pkcs8(&pem_to_der(TEST_KEY_PEM)).expect("test key is PKCS#8 RSA");
        Verifier { public_key: pair.public().as_ref().to_vec(), client_email, token_uri }
    }

    /// Checks a token request: a URL-encoded form with the JWT grant type and a valid JWT.
    fn check_request(&self, content_type: &str, form: &[u8]) -> Result<(), OAuthError> {
        if !content_type.starts_with("application/x-www-form-urlencoded") {
            let description = "Bad Request: expected a URL-encoded form";
            return Err(OAuthError::new("invalid_request", description));
        }
        let fields: HashMap<_, _> = url::form_urlencoded::parse(form).collect();
        let grant_type = fields.get("grant_type").map(|g| g.as_ref()).unwrap_or_default();
        if grant_type != JWT_BEARER {
            let description = format!("Invalid grant_type: {grant_type}");
            return Err(OAuthError::new("unsupported_grant_type", &description));
        }
        let assertion = fields
            .get("assertion")
            .ok_or_else(|| OAuthError::new("invalid_request", "Missing required parameter: assertion"))?;
        self.check_jwt(assertion, unix_now())
    }

    fn check_jwt(&self, jwt: &str, now: i64) -> Result<(), OAuthError> {
        let malformed = || OAuthError::invalid_grant("Invalid JWT: malformed token.");
        let (signed, signature) = jwt.rsplit_once('.').ok_or_else(malformed)?;
        let (header, claims) = signed.split_once('.').ok_or_else(malformed)?;
        let header: serde_json::Value = decode_segment(header).ok_or_else(malformed)?;
        if header["alg"] != "RS256" {
            return Err(OAuthError::invalid_grant("Invalid JWT: alg must be RS256."));
        }
        self.check_signature(signed, signature)?;
        let claims: Claims = decode_segment(claims).ok_or_else(malformed)?;
        self.check_claims(&claims, now)
    }

    fn check_signature(&self, signed: &str, signature: &str) -> Result<(), OAuthError> {
        let key = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &self.public_key);
        let signature = BASE64_URL.decode(signature).unwrap_or_default();
        match key.verify(signed.as_bytes(), &signature) {
            Ok(()) => Ok(()),
            Err(_) => Err(OAuthError::invalid_grant("Invalid JWT Signature.")),
        }
    }

    fn check_claims(&self, claims: &Claims, now: i64) -> Result<(), OAuthError> {
        if claims.iss != self.client_email {
            return Err(OAuthError::account_not_found());
        }
        if claims.aud != self.token_uri {
            let description =
                format!("Invalid JWT: Failed audience check. The right audience is {}", self.token_uri);
            return Err(OAuthError::invalid_grant(&description));
        }
        let asks_for_fcm = claims.scope.split_whitespace().any(|scope| scope == FCM_SCOPE);
        if !asks_for_fcm {
            let description = "Invalid OAuth scope or ID token audience provided.";
            return Err(OAuthError::new("invalid_scope", description));
        }
        if claims.exp <= now || claims.iat > now + CLOCK_SKEW_SECS {
            return Err(OAuthError::invalid_grant(
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable \
                 timeframe. Check your iat and exp values in the JWT claim.",
            ));
        }
        Ok(())
    }
}

fn decode_segment<T: DeserializeOwned>(segment: &str) -> Option<T> {
    serde_json::from_slice(&BASE64_URL.decode(segment).ok()?).ok()
}

/// The DER bytes inside a PEM block.
fn pem_to_der(pem: &str) -> Vec<u8> {
    let base64: String = pem.lines().filter(|line| !line.starts_with("-----")).collect();
    STANDARD.decode(base64).expect("PEM body is base64")
}

fn unix_now() -> i64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    since_epoch.as_secs() as i64
}

/// One access token handed out by the token endpoint.
struct Issued {
    number: u64,
    expires_at: Instant,
}

/// The access tokens issued so far, and which of them still work.
#[derive(Default)]
pub(crate) struct AccessTokens {
    issued: TokenMap<Issued>,
    issued_count: u64,
    /// Tokens numbered up to this one were revoked.
    revoked_up_to: u64,
    /// Sends still admitted before every token issued by then is revoked.
    revoke_after: Option<u64>,
}

impl AccessTokens {
    /// A new token `ya29.fake-<n>-<random hex>` that works for `lifetime`.
    pub(crate) fn issue(&mut self, lifetime: Duration) -> String {
        self.issued_count += 1;
        let number = self.issued_count;
        let token = format!("ya29.fake-{number}-{}", random_hex());
        let expires_at = Instant::now() + lifetime;
        self.issued.insert(token.clone(), Issued { number, expires_at });
        token
    }

    /// Whether a send with this `Authorization` header is let through; each admitted send
    /// counts down a pending [`AccessTokens::revoke_after`].
    pub(crate) fn admit(&mut self, authorization: Option<&str>) -> bool {
        let token = authorization.and_then(|value| value.strip_prefix("Bearer "));
        let Some(issued) = token.and_then(|token| self.issued.get(token.trim())) else {
            return false;
        };
        if issued.number <= self.revoked_up_to || issued.expires_at <= Instant::now() {
            return false;
        }
        match self.revoke_after {
            Some(0) => {
                self.revoked_up_to = self.issued_count;
                self.revoke_after = None;
                false
            }
            Some(left) => {
                self.revoke_after = Some(left - 1);
                true
            }
            None => true,
        }
    }

    /// After `sends` more admitted sends, every token issued by then stops working.
    pub(crate) fn revoke_after(&mut self, sends: u64) {
        self.revoke_after = Some(sends);
    }
}

fn random_hex() -> String {
    let mut bytes = [0u8; 8];
    SystemRandom::new().fill(&mut bytes).expect("system randomness");
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verifier() -> Verifier {
        Verifier::new("sa@p.iam.gserviceaccount.com".into(), "http://127.0.0.1:1/token".into())
    }

    fn claims(scope: &str, iat: i64) -> Claims {
        Claims {
            iss: "sa@p.iam.gserviceaccount.com".into(),
            aud: "http://127.0.0.1:1/token".into(),
            scope: scope.into(),
            exp: iat + 3600,
            iat,
        }
    }

    #[test]
    fn claims_without_the_fcm_scope_are_refused() {
        let refused = verifier().check_claims(&claims("https://example.com/other", 100), 100);
        assert_eq!(refused.unwrap_err().error, "invalid_scope");
    }

    #[test]
    fn claims_issued_in_the_future_are_refused() {
        assert!(verifier().check_claims(&claims(FCM_SCOPE, 1000), 100).is_err());
        assert!(verifier().check_claims(&claims(FCM_SCOPE, 160), 100).is_ok());
    }

    #[test]
    fn expired_claims_are_refused() {
        assert!(verifier().check_claims(&claims(FCM_SCOPE, 100), 3700).is_err());
    }

    #[test]
    fn revoke_after_lets_that_many_sends_through_then_refuses_old_tokens() {
        let mut tokens = AccessTokens::default();
        let old = format!("Bearer {}", tokens.issue(Duration::from_secs(60)));
        tokens.revoke_after(2);
        assert!(tokens.admit(Some(&old)));
        assert!(tokens.admit(Some(&old)));
        assert!(!tokens.admit(Some(&old)));
        let new = format!("Bearer {}", tokens.issue(Duration::from_secs(60)));
        assert!(tokens.admit(Some(&new)));
        assert!(!tokens.admit(Some(&old)));
    }

    #[test]
    fn expired_access_tokens_are_refused() {
        let mut tokens = AccessTokens::default();
        let token = format!("Bearer {}", tokens.issue(Duration::ZERO));
        assert!(!tokens.admit(Some(&token)));
    }
}
