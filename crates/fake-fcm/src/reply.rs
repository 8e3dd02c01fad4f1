//! The answers the fake can give to one send, named after FCM's failure modes.
//!
//! Exists so that tests script behaviour by name (`Reply::unregistered()`) and the wire
//! format of Google's errors is written in one place only.

use serde_json::json;

use crate::http::{json_response, json_text_response, HttpResponse};

/// What the fake answers to one `messages:send` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// 200 `{"name": "projects/{p}/messages/<id>"}`: the message was accepted.
    Ok,
    /// A Google API error `{"error": {"code", "message", "status", "details"}}`.
    Error {
        /// The HTTP status, e.g. 404.
        status: u16,
        /// Google's canonical status name, e.g. `"NOT_FOUND"`.
        grpc_status: &'static str,
        /// The `FcmError` `errorCode` put in `details`, e.g. `"UNREGISTERED"`; `None` for no details.
        error_code: Option<&'static str>,
        /// The human-readable `error.message`.
        message: String,
        /// Seconds sent in a `Retry-After` header, if any.
        retry_after: Option<u64>,
        /// A `google.rpc.BadRequest` entry put in `details` after the `FcmError` one, if any.
        field_violation: Option<FieldViolation>,
    },
}

/// One `fieldViolations` entry of a `google.rpc.BadRequest` error detail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldViolation {
    /// The request field at fault, e.g. `"message.token"`.
    pub field: String,
    /// What is wrong with it.
    pub description: String,
}

const FCM_ERROR_TYPE: &str = "type.googleapis.com/google.firebase.fcm.v1.FcmError";
const BAD_REQUEST_TYPE: &str = "type.googleapis.com/google.rpc.BadRequest";
/// What FCM says when only a `fieldViolations` entry tells which argument is invalid.
const GENERIC_INVALID_ARGUMENT: &str = "Request contains an invalid argument.";

impl Reply {
    fn error(
        status: u16,
        grpc_status: &'static str,
        error_code: Option<&'static str>,
        message: &str,
        retry_after: Option<u64>,
    ) -> Reply {
        let message = message.to_owned();
        Reply::Error { status, grpc_status, error_code, message, retry_after, field_violation: None }
    }

    /// 404 NOT_FOUND, errorCode UNREGISTERED: the app was uninstalled or the token expired.
    pub fn unregistered() -> Reply {
        Reply::error(404, "NOT_FOUND", Some("UNREGISTERED"), "Requested entity was not found.", None)
    }

    /// 403 PERMISSION_DENIED, errorCode SENDER_ID_MISMATCH: the token belongs to another project.
    pub fn sender_id_mismatch() -> Reply {
        let message = "SenderId mismatch";
        Reply::error(403, "PERMISSION_DENIED", Some("SENDER_ID_MISMATCH"), message, None)
    }

    /// 400 INVALID_ARGUMENT: the registration token is malformed.
    pub fn invalid_token() -> Reply {
        Reply::invalid_payload("The registration token is not a valid FCM registration token")
    }

    /// 400 INVALID_ARGUMENT with the generic message "Request contains an invalid argument." and
    /// a `google.rpc.BadRequest` detail naming `message.token`: the other way FCM says a
    /// registration token is malformed (firebase-admin-python#187).
    pub fn invalid_token_field_violation() -> Reply {
        Reply::field_violation("message.token", "Invalid registration token")
    }

    /// 400 INVALID_ARGUMENT with the generic message and a `google.rpc.BadRequest` detail whose
    /// one field violation is on `field`.
    pub fn field_violation(field: &str, description: &str) -> Reply {
        Reply::Error {
            status: 400,
            grpc_status: "INVALID_ARGUMENT",
            error_code: Some("INVALID_ARGUMENT"),
            message: GENERIC_INVALID_ARGUMENT.to_owned(),
            retry_after: None,
            field_violation: Some(FieldViolation {
                field: field.to_owned(),
                description: description.to_owned(),
            }),
        }
    }

    /// 400 INVALID_ARGUMENT, errorCode INVALID_ARGUMENT, with this message.
    pub fn invalid_payload(message: &str) -> Reply {
        Reply::error(400, "INVALID_ARGUMENT", Some("INVALID_ARGUMENT"), message, None)
    }

    /// 401 UNAUTHENTICATED, errorCode THIRD_PARTY_AUTH_ERROR: APNs or Web Push rejected the project's credentials.
    pub fn third_party_auth_error() -> Reply {
        let message = "Auth error from APNS or Web Push Service";
        Reply::error(401, "UNAUTHENTICATED", Some("THIRD_PARTY_AUTH_ERROR"), message, None)
    }

    /// 503 UNAVAILABLE, errorCode UNAVAILABLE, optionally with `Retry-After`.
    pub fn unavailable(retry_after: Option<u64>) -> Reply {
        let message = "The service is currently unavailable.";
        Reply::error(503, "UNAVAILABLE", Some("UNAVAILABLE"), message, retry_after)
    }

    /// 500 INTERNAL, errorCode INTERNAL.
    pub fn internal() -> Reply {
        let message = "Internal error encountered.";
        Reply::error(500, "INTERNAL", Some("INTERNAL"), message, None)
    }

    /// 429 RESOURCE_EXHAUSTED, errorCode QUOTA_EXCEEDED, optionally with `Retry-After`.
    pub fn quota_exceeded(retry_after: Option<u64>) -> Reply {
        let message = "Quota exceeded for quota metric 'Send requests'.";
        Reply::error(429, "RESOURCE_EXHAUSTED", Some("QUOTA_EXCEEDED"), message, retry_after)
    }

    /// 401 UNAUTHENTICATED without details: the OAuth access token is missing, unknown or expired.
    pub fn unauthenticated() -> Reply {
        let message = "Request had invalid authentication credentials. Expected OAuth 2 access \
                       token, login cookie or other valid authentication credential. See \
                       https://developers.google.com/identity/sign-in/web/devconsole-project.";
        Reply::error(401, "UNAUTHENTICATED", None, message, None)
    }

    /// 404 NOT_FOUND without details: the project in the path does not exist.
    pub(crate) fn project_not_found() -> Reply {
        Reply::error(404, "NOT_FOUND", None, "Requested entity was not found.", None)
    }

    /// The HTTP status this reply is sent with.
    pub(crate) fn status(&self) -> u16 {
        match self {
            Reply::Ok => 200,
            Reply::Error { status, .. } => *status,
        }
    }

    /// Puts the reply on the wire; `message_name` is the `name` of an accepted message.
    pub(crate) fn to_response(&self, message_name: &str) -> HttpResponse {
        match self {
            Reply::Ok => {
                let mut body = br#"{"name":"#.to_vec();
                serde_json::to_writer(&mut body, message_name).expect("a string writes to a Vec");
                body.push(b'}');
                json_text_response(200, body)
            }
            Reply::Error { status, grpc_status, error_code, message, retry_after, field_violation } => {
                let mut error = json!({ "code": status, "message": message, "status": grpc_status });
                let mut details = Vec::new();
                if let Some(code) = error_code {
                    details.push(json!({ "@type": FCM_ERROR_TYPE, "errorCode": code }));
                }
                if let Some(FieldViolation { field, description }) = field_violation {
                    details.push(json!({
                        "@type": BAD_REQUEST_TYPE,
                        "fieldViolations": [{ "field": field, "description": description }],
                    }));
                }
                if !details.is_empty() {
                    error["details"] = details.into();
                }
                let mut response = json_response(*status, &json!({ "error": error }));
                if let Some(seconds) = retry_after {
                    response.headers_mut().insert("retry-after", (*seconds).into());
                }
                response
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use serde_json::Value;

    fn body_of(reply: &Reply) -> Value {
        let collect = reply.to_response("n").into_body().collect();
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let bytes = runtime.block_on(collect).unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn unregistered_is_googles_json_with_fcm_details() {
        let expected = json!({"error": {
            "code": 404,
            "message": "Requested entity was not found.",
            "status": "NOT_FOUND",
            "details": [{"@type": FCM_ERROR_TYPE, "errorCode": "UNREGISTERED"}],
        }});
        assert_eq!(body_of(&Reply::unregistered()), expected);
    }

    #[test]
    fn a_token_field_violation_is_googles_json_with_a_bad_request_detail() {
        let expected = json!({"error": {
            "code": 400,
            "message": "Request contains an invalid argument.",
            "status": "INVALID_ARGUMENT",
            "details": [
                {"@type": FCM_ERROR_TYPE, "errorCode": "INVALID_ARGUMENT"},
                {"@type": BAD_REQUEST_TYPE,
                 "fieldViolations": [{"field": "message.token", "description": "Invalid registration token"}]},
            ],
        }});
        assert_eq!(body_of(&Reply::invalid_token_field_violation()), expected);
    }

    #[test]
    fn unauthenticated_has_no_details() {
        assert!(body_of(&Reply::unauthenticated())["error"].get("details").is_none());
    }

    #[test]
    fn retry_after_is_sent_as_a_header() {
        let response = Reply::quota_exceeded(Some(7)).to_response("n");
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()["retry-after"], "7");
    }
}
