//! What the body of a send says (its target and `validate_only`), and the checks FCM makes on
//! it before anything else.
//!
//! Exists so that the fake's cost per send stays small beside the client it measures: it
//! shares the benchmark's cores, and reading every body into a `serde_json::Value` was most
//! of its work. Bodies are first read through a borrowed view that can only *accept*;
//! anything the view does not accept outright is read again the full way, into a `Value`,
//! and only that full reading ever refuses. So every refusal, and its message, comes from one
//! place, and the view cannot change what the fake answers (a test holds the two readings
//! to agreeing on every body the view accepts).

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

use crate::Reply;

/// FCM's limit on the size of a message.
const MAX_MESSAGE_BYTES: usize = 4096;

/// Bodies up to this size cannot hold a message over [`MAX_MESSAGE_BYTES`] once it is written
/// out compactly, which is how the size is measured: re-writing JSON never lengthens a string
/// or an integer, and the worst a number can do is `1e15` (4 characters) becoming
/// `1000000000000000.0` (18), which with the comma it needs stays under 4× (3.8×).
const VIEW_SIZE_LIMIT: usize = MAX_MESSAGE_BYTES / 4;

/// The `Message` fields that name one device; FCM's `target` is a oneof: exactly one is set
/// (topics and conditions are not faked).
const TARGET_FIELDS: [&str; 2] = ["token", "fid"];

/// One send's body, as far as the fake's answer depends on it.
#[derive(Debug)]
pub(crate) struct SendBody<'a> {
    /// `Ok`, or the refusal FCM gives this body.
    pub(crate) verdict: Result<(), Reply>,
    /// The target field (`"token"` or `"fid"`) and the device it names, when it has one
    /// (even on a refused body, for the request log).
    pub(crate) target: Option<(&'static str, Cow<'a, str>)>,
    /// Whether `validate_only` is `true`.
    pub(crate) validate_only: bool,
}

impl SendBody<'_> {
    /// The device: `message.token` or `message.fid`.
    pub(crate) fn token(&self) -> Option<&str> {
        self.target.as_ref().map(|(_, token)| token.as_ref())
    }
}

/// Reads a send's body: through the borrowed view when it accepts, the full way otherwise.
pub(crate) fn read(body: &[u8]) -> SendBody<'_> {
    let viewed = std::str::from_utf8(body).ok().and_then(view);
    viewed.unwrap_or_else(|| read_fully(body))
}

/// The full reading: the body as a `serde_json::Value`, checked the way FCM checks it.
fn read_fully(body: &[u8]) -> SendBody<'static> {
    let body: Option<Value> = serde_json::from_slice(body).ok();
    let message = body.as_ref().and_then(|body| body.get("message"));
    let target = message.and_then(|message| {
        TARGET_FIELDS.iter().find_map(|&field| Some((field, message.get(field)?.as_str()?)))
    });
    let flag = body.as_ref().and_then(|body| body.get("validate_only"));
    SendBody {
        verdict: check_body(body.as_ref()),
        target: target.map(|(field, token)| (field, Cow::Owned(token.to_owned()))),
        validate_only: flag.and_then(Value::as_bool).unwrap_or(false),
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
    if is_background_at_priority_10(get("apns-push-type"), get("apns-priority")) {
        return Err(Reply::invalid_payload(
            "Invalid APNs headers: apns-priority 10 is not allowed with apns-push-type background",
        ));
    }
    Ok(())
}

fn is_background_at_priority_10(push_type: Option<&str>, priority: Option<&str>) -> bool {
    push_type == Some("background") && priority == Some("10")
}

// The borrowed view: one pass over the body, reading only objects (a derived struct would
// also read an array, by position), keys without escapes, and each known field once. It
// answers `None` ("read it fully") at the first thing that is not plainly acceptable: a parse
// error, a field of an unexpected type or named twice, an escaped key or target, a size near
// the limit, a background push at priority 10. `None` is never a refusal.

/// The view of a whole body: `Some` only when the full reading would accept it too.
fn view(text: &str) -> Option<SendBody<'_>> {
    if text.len() > VIEW_SIZE_LIMIT {
        return None;
    }
    let Object(body) = serde_json::from_str::<Object<BodyView<'_>>>(text).ok()?;
    let message = body.message?;
    let target = match (message.token, message.fid) {
        (Some(token), None) => ("token", Cow::Borrowed(token)),
        (None, Some(fid)) => ("fid", Cow::Borrowed(fid)),
        _ => return None,
    };
    let validate_only = body.validate_only.unwrap_or(false);
    Some(SendBody { verdict: Ok(()), target: Some(target), validate_only })
}

/// A JSON object read field by field into `T`.
struct Object<T>(T);

/// A view of one JSON object: takes each field's value from `entries` (or fails).
trait ObjectView<'de>: Default {
    fn read_field<A: MapAccess<'de>>(&mut self, name: &'de str, entries: &mut A) -> Result<(), A::Error>;
}

impl<'de, T: ObjectView<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ObjectVisitor(PhantomData))
    }
}

struct ObjectVisitor<T>(PhantomData<T>);

impl<'de, T: ObjectView<'de>> Visitor<'de> for ObjectVisitor<T> {
    type Value = Object<T>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<Object<T>, A::Error> {
        let mut view = T::default();
        while let Some(name) = entries.next_key::<&'de str>()? {
            view.read_field(name, &mut entries)?;
        }
        Ok(Object(view))
    }
}

/// Sets a field met for the first time; one named twice fails (the full reading decides
/// which one counts).
fn once<T, E: de::Error>(slot: &mut Option<T>, value: T) -> Result<(), E> {
    match slot.replace(value) {
        None => Ok(()),
        Some(_) => Err(E::custom("a field named twice")),
    }
}

/// A send body's top level.
#[derive(Default)]
struct BodyView<'a> {
    message: Option<MessageView<'a>>,
    validate_only: Option<bool>,
}

impl<'de> ObjectView<'de> for BodyView<'de> {
    fn read_field<A: MapAccess<'de>>(&mut self, name: &'de str, entries: &mut A) -> Result<(), A::Error> {
        match name {
            "message" => once(&mut self.message, entries.next_value::<Object<MessageView<'de>>>()?.0),
            "validate_only" => once(&mut self.validate_only, entries.next_value()?),
            _ => entries.next_value::<IgnoredAny>().map(drop),
        }
    }
}

/// The fields of a `Message` the checks look at: the target (a string without escapes; even
/// `null` would set the oneof, so it fails here), `data` (null, or strings only) and
/// `apns` (null, or no background push at priority 10).
#[derive(Default)]
struct MessageView<'a> {
    token: Option<&'a str>,
    fid: Option<&'a str>,
    data: Option<()>,
    apns: Option<()>,
}

impl<'de> ObjectView<'de> for MessageView<'de> {
    fn read_field<A: MapAccess<'de>>(&mut self, name: &'de str, entries: &mut A) -> Result<(), A::Error> {
        match name {
            "token" => once(&mut self.token, entries.next_value()?),
            "fid" => once(&mut self.fid, entries.next_value()?),
            "data" => once(&mut self.data, entries.next_value::<Option<StringValues>>().map(drop)?),
            "apns" => once(&mut self.apns, entries.next_value::<Option<Object<ApnsView>>>().map(drop)?),
            _ => entries.next_value::<IgnoredAny>().map(drop),
        }
    }
}

/// `message.apns`, read for its `headers`, which fail to read when they ask for a background
/// push at priority 10.
#[derive(Default)]
struct ApnsView {
    headers: Option<()>,
}

impl<'de> ObjectView<'de> for ApnsView {
    fn read_field<A: MapAccess<'de>>(&mut self, name: &'de str, entries: &mut A) -> Result<(), A::Error> {
        if name != "headers" {
            return entries.next_value::<IgnoredAny>().map(drop);
        }
        let headers = entries.next_value::<Option<ApnsPushHeaders<'de>>>()?.unwrap_or_default();
        if is_background_at_priority_10(headers.push_type, headers.priority) {
            return Err(de::Error::custom("a background push at priority 10"));
        }
        once(&mut self.headers, ())
    }
}

/// A JSON object whose values are all strings (parsing fails at the first that is not).
struct StringValues;

impl<'de> Deserialize<'de> for StringValues {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(StringValuesVisitor)
    }
}

struct StringValuesVisitor;

impl<'de> Visitor<'de> for StringValuesVisitor {
    type Value = StringValues;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a map of strings to strings")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<StringValues, A::Error> {
        while entries.next_entry::<IgnoredAny, AnyString>()?.is_some() {}
        Ok(StringValues)
    }
}

/// A JSON string, whatever it says (parsing fails on anything else), read without a copy.
struct AnyString;

impl<'de> Deserialize<'de> for AnyString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(AnyStringVisitor)
    }
}

struct AnyStringVisitor;

impl Visitor<'_> for AnyStringVisitor {
    type Value = AnyString;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<AnyString, E> {
        Ok(AnyString)
    }
}

/// The two APNs headers the check reads, matched without regard to case. Parsing fails when
/// either is named twice, or named with escapes, or its value is not an unescaped string.
#[derive(Default)]
struct ApnsPushHeaders<'a> {
    push_type: Option<&'a str>,
    priority: Option<&'a str>,
}

impl<'de> Deserialize<'de> for ApnsPushHeaders<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ApnsPushHeadersVisitor)
    }
}

struct ApnsPushHeadersVisitor;

impl<'de> Visitor<'de> for ApnsPushHeadersVisitor {
    type Value = ApnsPushHeaders<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("APNs headers")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<ApnsPushHeaders<'de>, A::Error> {
        let mut found = ApnsPushHeaders::default();
        while let Some(name) = entries.next_key::<&'de str>()? {
            let slot = if name.eq_ignore_ascii_case("apns-push-type") {
                &mut found.push_type
            } else if name.eq_ignore_ascii_case("apns-priority") {
                &mut found.priority
            } else {
                entries.next_value::<IgnoredAny>()?;
                continue;
            };
            if slot.replace(entries.next_value::<&'de str>()?).is_some() {
                return Err(de::Error::custom("a header named twice"));
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn refusal(body: Value) -> String {
        match read(body.to_string().as_bytes()).verdict {
            Err(Reply::Error { message, .. }) => message,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    /// Bodies the view must get right: plain sends it accepts, and every kind of body it has
    /// to leave to the full reading.
    fn bodies() -> Vec<String> {
        let plain = json!({"message": {"token": "t-1", "data": {"type": "saveLocation"},
            "apns": {"headers": {"apns-push-type": "background", "apns-priority": "5"}}}});
        [
            plain.to_string(),
            serde_json::to_string_pretty(&plain).unwrap(),
            r#"{"message": {"fid": "cR_8eKx2Q-2mP0aBcDeF9z"}, "validate_only": true}"#.into(),
            r#"{"message": {"token": "t\u002d1"}, "validate_only": "yes"}"#.into(),
            r#"{"message": {"token": null, "fid": "f"}}"#.into(),
            r#"{"message": {"token": "t", "fid": null}}"#.into(),
            r#"{"message": {"token": 7}}"#.into(),
            r#"{"message": {"token": "t", "token": "u"}}"#.into(),
            r#"{"message": ["t", "f"]}"#.into(),
            r#"[{"token": "t"}, true]"#.into(),
            r#"{"message": {"token": "t"}, "message": {"token": "u"}}"#.into(),
            r#"{"message": {"token": "t", "data": null}}"#.into(),
            r#"{"message": {"token": "t", "data": ["a"]}}"#.into(),
            r#"{"message": {"token": "t", "data": {"a": "1", "b": 2}}}"#.into(),
            r#"{"message": {"token": "t", "data": {"a": 1, "a": "1"}}}"#.into(),
            r#"{"message": {"token": "t", "apns": "x"}}"#.into(),
            r#"{"message": {"token": "t", "apns": {"headers": null}}}"#.into(),
            r#"{"message": {"token": "t", "apns": {"headers": {"apns-push-type": "background", "apns-priority": "10"}}}}"#.into(),
            r#"{"message": {"token": "t", "apns": {"headers": {"APNS-Push-Type": "backgr\u006fund", "apns-priority": "10"}}}}"#.into(),
            r#"{"message": {"token": "t", "apns": {"headers": {"apns-push-type": "background", "apns-priority": 10}}}}"#.into(),
            r#"{"message": {"token": "t", "apns": {"headers": {"apns-priority": "5", "APNS-PRIORITY": "10", "apns-push-type": "background"}}}}"#.into(),
            r#"{"message": {"token": "t", "apns": {"headers": {"apns-push-type": "background", "apns-priority": "10"}, "headers": null}}}"#.into(),
            r#"{"message": {"token": "t", "apns": {"headers": null, "headers": {"apns-push-type": "background", "apns-priority": "10"}}}}"#.into(),
            r#"{"message": {"tok\u0065n": "t"}}"#.into(),
            r#"{"validate_only": true, "message": {"token": "t"}, "validate_only": false}"#.into(),
            format!(r#"{{"message": {{"token": "t", "data": {{"big": "{}"}}}}}}"#, "x".repeat(4096)),
            format!(r#"{{"message": {{"token": "t", "n": [{}1e15]}}}}"#, "1e15,".repeat(900)),
            "not json".into(),
            r#"{"message": {"token": "t"}"#.into(),
        ]
        .into()
    }

    #[test]
    fn the_view_agrees_with_the_full_reading_on_every_body_it_accepts() {
        let mut accepted = 0;
        for body in bodies() {
            let Some(viewed) = view(&body) else { continue };
            let full = read_fully(body.as_bytes());
            assert_eq!(viewed.verdict, full.verdict, "{body}");
            assert_eq!(viewed.target, full.target, "{body}");
            assert_eq!(viewed.validate_only, full.validate_only, "{body}");
            accepted += 1;
        }
        assert_eq!(accepted, 5, "the view should take the plain sends");
    }

    #[test]
    fn the_view_leaves_every_refused_body_to_the_full_reading() {
        for body in bodies() {
            if read_fully(body.as_bytes()).verdict.is_err() {
                assert!(view(&body).is_none(), "the view accepted a body FCM refuses: {body}");
            }
        }
    }

    #[test]
    fn rewriting_numbers_cannot_take_a_body_within_the_view_limit_over_the_size_limit() {
        let worst = format!("[{}1e15]", "1e15,".repeat((VIEW_SIZE_LIMIT - 6) / 5));
        assert!(worst.len() <= VIEW_SIZE_LIMIT);
        let rewritten = serde_json::from_str::<Value>(&worst).unwrap().to_string();
        assert!(rewritten.len() <= MAX_MESSAGE_BYTES, "{} bytes", rewritten.len());
    }

    #[test]
    fn a_message_with_an_fid_is_accepted_like_one_with_a_token() {
        let body = read(br#"{"message": {"fid": "cR_8eKx2Q-2mP0aBcDeF9z"}}"#);
        assert!(body.verdict.is_ok());
        assert_eq!(body.target, Some(("fid", Cow::Borrowed("cR_8eKx2Q-2mP0aBcDeF9z"))));
    }

    #[test]
    fn a_message_with_both_a_token_and_an_fid_is_refused() {
        assert!(refusal(json!({"message": {"token": "t", "fid": "f"}})).contains("oneof"));
    }

    #[test]
    fn a_null_token_beside_an_fid_still_sets_the_oneof() {
        assert!(refusal(json!({"message": {"token": null, "fid": "f"}})).contains("oneof"));
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
    fn a_background_push_at_priority_10_is_refused_whatever_the_header_case() {
        let headers = json!({"APNS-Push-Type": "background", "apns-priority": "10"});
        let body = json!({"message": {"token": "t", "apns": {"headers": headers}}});
        assert!(refusal(body).contains("apns-priority 10"));
    }
}
