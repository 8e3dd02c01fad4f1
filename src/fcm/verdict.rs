//! What an FCM HTTP v1 answer means for the message and for the run (docs/product.md, "Responses and
//! what they do").
//! Google's error JSON is branched on `details[].errorCode` first, then on the HTTP status.

use std::borrow::Cow;
use std::time::Duration;

use serde::Deserialize;

use crate::advice::Advice;

/// Why FCM says a token will never work again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeadReason {
    /// 404 `UNREGISTERED`: the app was uninstalled or the token expired.
    Unregistered,
    /// 403 `SENDER_ID_MISMATCH`: the token belongs to another Firebase project.
    SenderIdMismatch,
    /// 400 `INVALID_ARGUMENT` about the registration token.
    InvalidToken,
}

impl DeadReason {
    /// FCM's name for the reason.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            DeadReason::Unregistered => "UNREGISTERED",
            DeadReason::SenderIdMismatch => "SENDER_ID_MISMATCH",
            DeadReason::InvalidToken => "INVALID_ARGUMENT (token)",
        }
    }

    /// A reason as the prune log stores it ([`DeadReason::as_str`]).
    pub(crate) fn parse(stored: &str) -> Option<Self> {
        [DeadReason::Unregistered, DeadReason::SenderIdMismatch, DeadReason::InvalidToken]
            .into_iter()
            .find(|reason| reason.as_str() == stored)
    }
}

/// FCM rejected something every message shares: sending more cannot succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}; {}; the run stopped", self.what(), self.fix())]
pub enum FatalSendError {
    /// 400 `INVALID_ARGUMENT` not about the token: our payload is wrong.
    InvalidPayload(String),
    /// 401 `THIRD_PARTY_AUTH_ERROR` on too many messages: the APNs key in Firebase is broken.
    ThirdPartyAuth(String),
    /// 403 other than `SENDER_ID_MISMATCH`: the service account may not send.
    PermissionDenied(String),
    /// 404 without `UNREGISTERED`: the project or endpoint does not exist.
    NotFound(String),
    /// 401 `UNAUTHENTICATED` again right after a fresh access token.
    Unauthenticated(String),
}

impl Advice for FatalSendError {
    fn what(&self) -> String {
        match self {
            FatalSendError::InvalidPayload(why) => {
                format!("FCM rejected the message payload (400 INVALID_ARGUMENT: {why})")
            }
            FatalSendError::ThirdPartyAuth(why) => {
                format!("FCM could not authenticate with APNs (401 THIRD_PARTY_AUTH_ERROR: {why})")
            }
            FatalSendError::PermissionDenied(why) => format!("FCM refused the service account (403 {why})"),
            FatalSendError::NotFound(why) => format!("FCM answered 404 for the send URL ({why})"),
            FatalSendError::Unauthenticated(why) => {
                format!("FCM rejects even a fresh access token (401 UNAUTHENTICATED: {why})")
            }
        }
    }

    fn fix(&self) -> Cow<'static, str> {
        match self {
            FatalSendError::InvalidPayload(_) => {
                "check --title/--body, otherwise report it as a wolley-push bug"
            }
            FatalSendError::ThirdPartyAuth(_) => {
                "upload a valid APNs auth key in the Firebase console (Project settings › Cloud Messaging)"
            }
            FatalSendError::PermissionDenied(_) => {
                "give the service account the Firebase Cloud Messaging API Admin role (Google Cloud \
                 console › IAM), and check --project-id"
            }
            FatalSendError::NotFound(_) => {
                "check --project-id / WOLLEY_FCM_PROJECT_ID and --fcm-endpoint, and that the Firebase \
                 Cloud Messaging API is enabled for the project"
            }
            FatalSendError::Unauthenticated(_) => {
                "check that the key belongs to the project and the Firebase Cloud Messaging API is enabled"
            }
        }
        .into()
    }
}

/// What to do after one answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// 200: count it sent.
    Accepted,
    /// The token is dead: prune it.
    Dead(DeadReason),
    /// The access token expired: refresh once and resend.
    Unauthenticated(String),
    /// Try again later.
    Transient {
        /// The server's `Retry-After`, if any.
        retry_after: Option<Duration>,
        /// A 429: the whole run slows down.
        quota: bool,
        /// Short description for logs and the summary.
        reason: String,
    },
    /// 401 `THIRD_PARTY_AUTH_ERROR`: APNs (or Web Push) refused this one message. FCM reports
    /// it per token and intermittently (firebase-admin-node #3215, #2294), so it fails the
    /// message, not the run; a later run may deliver it.
    ThirdPartyAuth(String),
    /// No answer: connection refused, reset or timed out (tried again like a 5xx).
    Unreachable(String),
    /// This one message failed for good: an answer docs/product.md does not name, or (from the
    /// client, unsent) a message too big for FCM once its unusually long token is in.
    Rejected(String),
    /// Stop the run.
    Fatal(FatalSendError),
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize, Default)]
struct ErrorDetail {
    #[serde(default)]
    message: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    details: Vec<FcmErrorDetail>,
}

/// One entry of `error.details`: an `FcmError` carries `errorCode`, a `google.rpc.BadRequest`
/// carries `fieldViolations`; each field is absent from the other kinds.
#[derive(Deserialize)]
struct FcmErrorDetail {
    #[serde(rename = "errorCode")]
    error_code: Option<String>,
    #[serde(rename = "fieldViolations", default)]
    field_violations: Vec<FieldViolation>,
}

#[derive(Deserialize)]
struct FieldViolation {
    #[serde(default)]
    field: String,
    #[serde(default)]
    description: String,
}

/// The request fields that name the device (a registration token or an installation ID), as
/// `fieldViolations[].field` names them.
const TARGET_FIELDS: [&str; 2] = ["message.token", "message.fid"];

/// Classifies an answer by its status, `Retry-After` header and body.
pub(crate) fn classify(status: u16, retry_after: Option<&str>, body: &[u8]) -> Verdict {
    if (200..300).contains(&status) {
        return Verdict::Accepted;
    }
    let detail = serde_json::from_slice::<ErrorBody>(body).map(|b| b.error).unwrap_or_default();
    let error_code = detail.details.iter().find_map(|d| d.error_code.as_deref());
    let described = describe(status, &detail);
    let retry_after = retry_after.and_then(parse_retry_after);
    match (error_code, status) {
        (Some("UNREGISTERED"), _) => Verdict::Dead(DeadReason::Unregistered),
        (Some("SENDER_ID_MISMATCH"), _) => Verdict::Dead(DeadReason::SenderIdMismatch),
        (Some("THIRD_PARTY_AUTH_ERROR"), _) => Verdict::ThirdPartyAuth(detail.message),
        (Some("INVALID_ARGUMENT"), _) | (None, 400) => invalid_argument(&detail),
        (Some("QUOTA_EXCEEDED"), _) | (_, 429) => {
            Verdict::Transient { retry_after, quota: true, reason: described }
        }
        (Some("UNAVAILABLE" | "INTERNAL"), _) | (_, 500..=599) => {
            Verdict::Transient { retry_after, quota: false, reason: described }
        }
        (_, 401) => Verdict::Unauthenticated(detail.message),
        (_, 403) => Verdict::Fatal(FatalSendError::PermissionDenied(described)),
        (_, 404) => Verdict::Fatal(FatalSendError::NotFound(described)),
        _ => Verdict::Rejected(described),
    }
}

/// A 400 `INVALID_ARGUMENT` is about the device when its message says so ("The registration token
/// is not a valid FCM registration token", or an installation ID) or when its
/// `google.rpc.BadRequest` detail names only `message.token` or `message.fid` (the message then
/// may say just "Request contains an invalid argument."). A violation on any other field is our
/// payload's fault, even beside one on the device: pruning on it would clear live tokens from
/// every message of the run.
fn invalid_argument(detail: &ErrorDetail) -> Verdict {
    let violations: Vec<&FieldViolation> = detail.details.iter().flat_map(|d| &d.field_violations).collect();
    let names_the_device = |v: &&FieldViolation| TARGET_FIELDS.contains(&v.field.as_str());
    let elsewhere = violations.iter().any(|v| !names_the_device(v));
    let on_the_token = violations.iter().any(names_the_device);
    if !elsewhere && (on_the_token || is_about_the_token(&detail.message)) {
        return Verdict::Dead(DeadReason::InvalidToken);
    }
    let mut described = detail.message.clone();
    for violation in violations {
        described.push_str(&format!(" [{}: {}]", violation.field, violation.description));
    }
    Verdict::Fatal(FatalSendError::InvalidPayload(described))
}

/// Google words an invalid token as "The registration token is not a valid FCM registration
/// token"; an invalid installation ID names it.
fn is_about_the_token(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    message.contains("registration token") || message.contains("installation id")
}

fn describe(status: u16, detail: &ErrorDetail) -> String {
    match (detail.status.is_empty(), detail.message.is_empty()) {
        (true, true) => format!("HTTP {status}"),
        (false, true) => format!("{status} {}", detail.status),
        (true, false) => format!("{status}: {}", detail.message),
        (false, false) => format!("{status} {}: {}", detail.status, detail.message),
    }
}

/// `Retry-After` in seconds; the HTTP-date form is rare from Google and read as absent.
fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(status: &str, code: Option<&str>, message: &str) -> Vec<u8> {
        let details = match code {
            Some(code) => {
                serde_json::json!([{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}])
            }
            None => serde_json::json!([]),
        };
        serde_json::to_vec(&serde_json::json!({"error": {"code": 0, "message": message, "status": status, "details": details}})).unwrap()
    }

    #[test]
    fn unregistered_is_a_dead_token() {
        let v =
            classify(404, None, &body("NOT_FOUND", Some("UNREGISTERED"), "Requested entity was not found."));
        assert_eq!(v, Verdict::Dead(DeadReason::Unregistered));
    }

    #[test]
    fn sender_id_mismatch_is_a_dead_token() {
        let v =
            classify(403, None, &body("PERMISSION_DENIED", Some("SENDER_ID_MISMATCH"), "SenderId mismatch"));
        assert_eq!(v, Verdict::Dead(DeadReason::SenderIdMismatch));
    }

    #[test]
    fn invalid_argument_about_the_token_is_a_dead_token() {
        let msg = "The registration token is not a valid FCM registration token";
        let v = classify(400, None, &body("INVALID_ARGUMENT", Some("INVALID_ARGUMENT"), msg));
        assert_eq!(v, Verdict::Dead(DeadReason::InvalidToken));
    }

    #[test]
    fn invalid_argument_about_the_payload_stops_the_run() {
        let msg = "Invalid value at 'message.data[0].value' (TYPE_STRING), 1";
        let v = classify(400, None, &body("INVALID_ARGUMENT", Some("INVALID_ARGUMENT"), msg));
        assert!(matches!(v, Verdict::Fatal(FatalSendError::InvalidPayload(_))));
    }

    /// Google's answer to a malformed token in some regions and API versions (firebase-admin-python#187).
    fn bad_request(field: &str, description: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({"error": {
            "code": 400,
            "message": "Request contains an invalid argument.",
            "status": "INVALID_ARGUMENT",
            "details": [
                {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "INVALID_ARGUMENT"},
                {"@type": "type.googleapis.com/google.rpc.BadRequest",
                 "fieldViolations": [{"field": field, "description": description}]},
            ],
        }}))
        .unwrap()
    }

    #[test]
    fn a_field_violation_on_the_token_is_a_dead_token() {
        let v = classify(400, None, &bad_request("message.token", "Invalid registration token"));
        assert_eq!(v, Verdict::Dead(DeadReason::InvalidToken));
    }

    #[test]
    fn a_field_violation_on_the_installation_id_is_a_dead_target() {
        let v = classify(400, None, &bad_request("message.fid", "Invalid installation ID"));
        assert_eq!(v, Verdict::Dead(DeadReason::InvalidToken));
    }

    #[test]
    fn a_field_violation_on_another_field_stops_the_run_and_names_the_field() {
        let v = classify(400, None, &bad_request("message.android.ttl", "Invalid duration"));
        let Verdict::Fatal(FatalSendError::InvalidPayload(why)) = v else { panic!("{v:?}") };
        assert!(why.contains("message.android.ttl: Invalid duration"), "{why}");
    }

    #[test]
    fn a_field_violation_beside_one_on_the_token_stops_the_run() {
        let mut body: serde_json::Value =
            serde_json::from_slice(&bad_request("message.token", "Invalid registration token")).unwrap();
        body["error"]["details"][1]["fieldViolations"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"field": "message.data", "description": "Invalid value"}));
        let v = classify(400, None, &serde_json::to_vec(&body).unwrap());
        assert!(matches!(v, Verdict::Fatal(FatalSendError::InvalidPayload(_))), "{v:?}");
    }

    #[test]
    fn a_generic_invalid_argument_without_field_violations_stops_the_run() {
        let v = classify(
            400,
            None,
            &body("INVALID_ARGUMENT", Some("INVALID_ARGUMENT"), "Request contains an invalid argument."),
        );
        assert!(matches!(v, Verdict::Fatal(FatalSendError::InvalidPayload(_))), "{v:?}");
    }

    #[test]
    fn third_party_auth_error_fails_only_its_message() {
        let v = classify(
            401,
            None,
            &body("UNAUTHENTICATED", Some("THIRD_PARTY_AUTH_ERROR"), "Auth error from APNS"),
        );
        assert_eq!(v, Verdict::ThirdPartyAuth("Auth error from APNS".into()));
    }

    #[test]
    fn plain_unauthenticated_asks_for_a_new_access_token() {
        let v = classify(
            401,
            None,
            &body("UNAUTHENTICATED", None, "Request had invalid authentication credentials."),
        );
        assert!(matches!(v, Verdict::Unauthenticated(_)));
    }

    #[test]
    fn quota_exceeded_is_transient_and_slows_the_run() {
        let v = classify(429, Some("7"), &body("RESOURCE_EXHAUSTED", Some("QUOTA_EXCEEDED"), "quota"));
        assert!(
            matches!(v, Verdict::Transient { quota: true, retry_after: Some(d), .. } if d == Duration::from_secs(7))
        );
    }

    #[test]
    fn unavailable_without_a_body_is_transient() {
        assert!(matches!(
            classify(503, None, b"<html>"),
            Verdict::Transient { quota: false, retry_after: None, .. }
        ));
    }

    #[test]
    fn a_404_without_unregistered_is_a_wrong_project() {
        assert!(matches!(classify(404, None, b""), Verdict::Fatal(FatalSendError::NotFound(_))));
    }
}
