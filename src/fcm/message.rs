//! The two message kinds the app understands, built exactly as docs/product.md specifies, and the
//! pre-serialised request template the sender splices each device token into.

use chrono::{DateTime, Duration as ChronoDuration, TimeZone};
use serde_json::{json, Map, Value};

use super::target::TargetKind;
use crate::exit::ExitCode;

/// Default title of the weekly `path-daily` notification.
pub(crate) const PATH_DAILY_TITLE: &str = "From Wolley 🗓";
/// Default body of the weekly `path-daily` notification.
pub(crate) const PATH_DAILY_BODY: &str = "일주일 동안의 기록을 확인해보세요!";
/// Default body of `path-daily --remind`, the week's second notification, to those whose week
/// has not arrived: it says why they hear from the app again, and what to do.
pub(crate) const PATH_DAILY_REMIND_BODY: &str =
    "지난주 기록이 아직 올라오지 않았어요. 앱을 열어 확인해보세요!";
/// FCM's limit on a message, in bytes: the whole `message` object as FCM sees it, token included.
pub(crate) const MAX_MESSAGE_BYTES: usize = 4096;
/// Room kept for the device token when a message is checked before anything is sent. The
/// backend's `app_user.fcmToken` is VARCHAR(200) and real FCM tokens are 150 to 200 characters;
/// 256 bytes covers every token the database can hold, with a margin. Only a `--tokens-file`
/// or `send --token` can bring a longer one (up to 4 KiB), and [`message_bytes`] checks each
/// such message on its own (the client then fails that one message, unsent).
pub(crate) const TOKEN_ALLOWANCE: usize = 256;
/// How long an undelivered `path-daily` reminder stays worth showing.
const PATH_DAILY_TTL_SECS: i64 = 86_400;
/// Title of the weekly badge notification.
pub(crate) const BADGE_TITLE: &str = "From Wolley 🏅";
/// How long an undelivered badge notification stays worth showing.
const BADGE_TTL_SECS: i64 = 86_400;

/// A message that cannot be sent as built.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    /// The serialised message, with room for a device token, is over FCM's limit.
    #[error(
        "the {kind} message is {bytes} bytes with room for a {TOKEN_ALLOWANCE}-byte device token \
         (FCM counts the token), over FCM's {MAX_MESSAGE_BYTES}-byte limit; shorten --title/--body \
         by at least {} bytes (nothing was sent)",
        .bytes - MAX_MESSAGE_BYTES
    )]
    TooLarge {
        /// The message kind's name.
        kind: &'static str,
        /// Its size with [`TOKEN_ALLOWANCE`] bytes of token.
        bytes: usize,
    },
}

impl MessageError {
    /// Oversized messages come from the command line (`--title`, `--body`).
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::Usage
    }
}

/// What one run sends: the message without its target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Message {
    /// Silent wake-up so the app records a GPS point.
    SaveLocation {
        /// Start of the half-hour slot, RFC 3339 with offset.
        slot: String,
        /// Unix seconds after which APNs drops the push.
        expires_at: i64,
        /// Android time to live, in seconds.
        ttl_secs: u64,
    },
    /// Visible weekly reminder that makes the app upload its GPS logs.
    PathDaily {
        /// ISO week label, e.g. `2026-W48`.
        week: String,
        /// Unix seconds after which APNs drops the notification.
        expires_at: i64,
        title: String,
        body: String,
        /// Whether the phone plays its notification sound. Off by default: the run goes out
        /// at ten past midnight, and a chime then wakes people for a reminder that can wait.
        sound: bool,
    },
    /// Visible notification of the badges a user earned in a week (`stats weekly --notify`).
    Badge {
        /// ISO week label, e.g. `2026-W48`.
        week: String,
        /// The badges' codes, comma-joined.
        badges: String,
        /// Unix seconds after which APNs drops the notification.
        expires_at: i64,
        title: String,
        /// Notification body, naming the badges.
        body: String,
    },
}

impl Message {
    /// A `save-location` wake-up for the half-hour slot starting at `slot`.
    pub(crate) fn save_location<Tz: TimeZone>(slot: &DateTime<Tz>, ttl: std::time::Duration) -> Self
    where
        Tz::Offset: std::fmt::Display,
    {
        let ttl_secs = ttl.as_secs();
        let ttl_chrono = ChronoDuration::seconds(ttl_secs as i64);
        Message::SaveLocation {
            slot: slot.to_rfc3339(),
            expires_at: (slot.clone() + ttl_chrono).timestamp(),
            ttl_secs,
        }
    }

    /// A `path-daily` reminder for `week`, sent at `now`, silent unless `sound`.
    pub(crate) fn path_daily<Tz: TimeZone>(
        week: String,
        now: &DateTime<Tz>,
        (title, body): (String, String),
        sound: bool,
    ) -> Self {
        Message::PathDaily { week, expires_at: now.timestamp() + PATH_DAILY_TTL_SECS, title, body, sound }
    }

    /// The notification of the badges `codes` (comma-joined), named `names`, earned in `week`,
    /// sent at `now`.
    pub(crate) fn badge<Tz: TimeZone>(
        week: String,
        codes: String,
        names: &[&str],
        now: &DateTime<Tz>,
    ) -> Self {
        Message::Badge {
            week,
            badges: codes,
            expires_at: now.timestamp() + BADGE_TTL_SECS,
            title: BADGE_TITLE.to_owned(),
            body: format!("지난주 기록으로 배지를 받았어요: {}", names.join(", ")),
        }
    }

    /// The kind's name as the app and `thread-id` know it.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Message::SaveLocation { .. } => "saveLocation",
            Message::PathDaily { .. } => "pathDaily",
            Message::Badge { .. } => "badge",
        }
    }

    /// The FCM `message` object for the device `target`, named in its `kind`'s field.
    pub(crate) fn to_json(&self, kind: TargetKind, target: &str) -> Value {
        let mut message = match self {
            Message::SaveLocation { slot, expires_at, ttl_secs } => {
                save_location_json(slot, *expires_at, *ttl_secs)
            }
            Message::PathDaily { week, expires_at, title, body, sound } => {
                path_daily_json(week, *expires_at, (title, body), *sound)
            }
            Message::Badge { week, badges, expires_at, title, body } => {
                badge_json(week, badges, *expires_at, title, body)
            }
        };
        let object = message.as_object_mut().expect("message builders return objects");
        let mut with_target = Map::with_capacity(object.len() + 1);
        with_target.insert(kind.field().into(), Value::String(target.into()));
        with_target.append(object);
        Value::Object(with_target)
    }
}

fn save_location_json(slot: &str, expires_at: i64, ttl_secs: u64) -> Value {
    json!({
        "data": { "type": "saveLocation", "slot": slot },
        "android": { "priority": "normal", "ttl": format!("{ttl_secs}s"), "collapse_key": "saveLocation" },
        "apns": {
            // Apple and FCM reject priority 10 for background pushes; an expiration keeps a stale
            // wake-up from being queued behind Apple's background throttle.
            "headers": {
                "apns-push-type": "background",
                "apns-priority": "5",
                "apns-expiration": expires_at.to_string(),
                "apns-collapse-id": "saveLocation",
            },
            "payload": { "aps": { "content-available": 1, "thread-id": "saveLocation" } },
        },
    })
}

fn path_daily_json(week: &str, expires_at: i64, (title, body): (&str, &str), sound: bool) -> Value {
    let data = json!({ "type": "pathDaily", "week": week });
    let mut message = visible_json("pathDaily", data, (expires_at, PATH_DAILY_TTL_SECS), title, body);
    if !sound {
        // iOS plays no sound when `aps` has none; Android's `notification` carries none here.
        message["apns"]["payload"]["aps"].as_object_mut().expect("aps is an object").remove("sound");
    }
    message
}

fn badge_json(week: &str, badges: &str, expires_at: i64, title: &str, body: &str) -> Value {
    let data = json!({ "type": "badge", "week": week, "badges": badges });
    visible_json("badge", data, (expires_at, BADGE_TTL_SECS), title, body)
}

/// A visible notification of `kind` (its `thread-id` and collapse key), alike for every kind
/// but its `data`; `expiry` is (Unix seconds for APNs, seconds to live for Android).
fn visible_json(
    kind: &str,
    data: Value,
    (expires_at, ttl_secs): (i64, i64),
    title: &str,
    body: &str,
) -> Value {
    json!({
        "notification": { "title": title, "body": body },
        "data": data,
        "android": { "priority": "high", "ttl": format!("{ttl_secs}s"), "collapse_key": kind },
        "apns": {
            "headers": {
                "apns-push-type": "alert",
                "apns-priority": "10",
                "apns-expiration": expires_at.to_string(),
                "apns-collapse-id": kind,
            },
            "payload": { "aps": { "content-available": 1, "thread-id": kind, "sound": "default" } },
        },
    })
}

/// A request body serialised once, with the device spliced in per message: the hot path of a
/// large fan-out does one copy per message instead of building and serialising a JSON tree.
#[derive(Debug, Clone)]
pub(crate) struct RequestTemplate {
    /// Up to the value of `"token":`.
    token_prefix: Vec<u8>,
    /// Up to the value of `"fid":`.
    fid_prefix: Vec<u8>,
    suffix: Vec<u8>,
    validate_only: bool,
}

const TOKEN_PLACEHOLDER: &str = "\u{1}wolley-token\u{1}";

impl RequestTemplate {
    /// Serialises `message` once, checking FCM's size limit before anything is sent.
    ///
    /// # Errors
    /// [`MessageError::TooLarge`] when the message with a token of [`TOKEN_ALLOWANCE`] bytes
    /// would be over 4096 bytes.
    pub(crate) fn new(message: &Message, validate_only: bool) -> Result<Self, MessageError> {
        // The token field's name is the longer: the check holds for an FID too.
        let without_token =
            serde_json::to_vec(&message.to_json(TargetKind::Token, "")).expect("JSON values serialise").len();
        let payload_bytes = without_token + TOKEN_ALLOWANCE;
        if payload_bytes > MAX_MESSAGE_BYTES {
            return Err(MessageError::TooLarge { kind: message.kind(), bytes: payload_bytes });
        }
        let (token_prefix, suffix) = split_at_placeholder(message, TargetKind::Token, validate_only);
        let (fid_prefix, _) = split_at_placeholder(message, TargetKind::Fid, validate_only);
        Ok(RequestTemplate { token_prefix, fid_prefix, suffix, validate_only })
    }

    /// The request body for the device `target` of `kind`, written into `out` (cleared first).
    pub(crate) fn render_into(&self, kind: TargetKind, target: &str, out: &mut Vec<u8>) {
        let prefix = match kind {
            TargetKind::Token => &self.token_prefix,
            TargetKind::Fid => &self.fid_prefix,
        };
        out.clear();
        out.reserve(prefix.len() + target.len() + self.suffix.len());
        out.extend_from_slice(prefix);
        write_json_string_contents(target, out);
        out.extend_from_slice(&self.suffix);
    }

    /// The request body for the device `target` of `kind`, with its own `message` when it
    /// carries one (e.g. a per-user badge notification), written into `out`.
    pub(crate) fn render_for(
        &self,
        kind: TargetKind,
        target: &str,
        message: Option<&Message>,
        out: &mut Vec<u8>,
    ) {
        match message {
            None => self.render_into(kind, target, out),
            Some(message) => {
                out.clear();
                serde_json::to_writer(&mut *out, &request_body(message, kind, target, self.validate_only))
                    .expect("JSON values serialise");
            }
        }
    }

    /// The request body for the registration token `token` as a new buffer.
    pub(crate) fn render(&self, token: &str) -> Vec<u8> {
        let mut out = Vec::new();
        self.render_into(TargetKind::Token, token, &mut out);
        out
    }
}

/// The body serialised with a placeholder for the device, cut around it: (before, after).
fn split_at_placeholder(message: &Message, kind: TargetKind, validate_only: bool) -> (Vec<u8>, Vec<u8>) {
    let body = request_body(message, kind, TOKEN_PLACEHOLDER, validate_only);
    let text = serde_json::to_string(&body).expect("JSON values serialise");
    let marker = serde_json::to_string(TOKEN_PLACEHOLDER).expect("strings serialise");
    let marker = &marker[1..marker.len() - 1];
    let at = text.find(marker).expect("the placeholder is in the body");
    (text.as_bytes()[..at].to_vec(), text.as_bytes()[at + marker.len()..].to_vec())
}

/// The size of the `message` object, the part FCM counts against [`MAX_MESSAGE_BYTES`], in a
/// request body made by [`request_body`] or a [`RequestTemplate`]: the body less its
/// `{"message":` and its `}` or `,"validate_only":true}`. Constant time, for every message.
pub(crate) fn message_bytes(body: &[u8]) -> usize {
    const HEAD: &[u8] = br#"{"message":"#;
    const VALIDATE_ONLY_TAIL: &[u8] = br#","validate_only":true}"#;
    let tail = if body.ends_with(VALIDATE_ONLY_TAIL) { VALIDATE_ONLY_TAIL.len() } else { 1 };
    body.len().saturating_sub(HEAD.len() + tail)
}

/// The `messages:send` request body for the device `target` of `kind`.
pub(crate) fn request_body(message: &Message, kind: TargetKind, target: &str, validate_only: bool) -> Value {
    let mut body = json!({ "message": message.to_json(kind, target) });
    if validate_only {
        body["validate_only"] = Value::Bool(true);
    }
    body
}

fn write_json_string_contents(text: &str, out: &mut Vec<u8>) {
    // A fold, not `any`: without the early exit the compiler checks 16 or 32 bytes at a time,
    // and nearly every token has nothing to escape, so the early exit never pays (the loop was a
    // large share of `--print`'s time: BENCHMARKS.md, "Why the code looks like this").
    let needs_escaping = text.bytes().fold(false, |found, b| found | (b == b'"') | (b == b'\\') | (b < 0x20));
    if needs_escaping {
        let quoted = serde_json::to_string(text).expect("strings serialise");
        out.extend_from_slice(&quoted.as_bytes()[1..quoted.len() - 1]);
    } else {
        out.extend_from_slice(text.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::FixedOffset;

    fn seoul_slot() -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339("2026-11-30T14:30:00+09:00").unwrap()
    }

    #[test]
    fn template_renders_the_same_bytes_as_serialising_the_tree() {
        let message = Message::save_location(&seoul_slot(), std::time::Duration::from_secs(1800));
        let template = RequestTemplate::new(&message, false).unwrap();
        let token = "tok\"en\\with-escapes";
        let expected = serde_json::to_vec(&request_body(&message, TargetKind::Token, token, false)).unwrap();
        assert_eq!(template.render(token), expected);
    }

    #[test]
    fn an_fid_is_spliced_into_the_fid_field_with_the_same_bytes_as_serialising_the_tree() {
        let message = Message::path_daily("2026-W48".into(), &seoul_slot(), ("t".into(), "b".into()), false);
        let template = RequestTemplate::new(&message, false).unwrap();
        let fid = "cR_8eKx2Q-2mP0aBcDeF9z";
        let mut body = Vec::new();
        template.render_into(TargetKind::Fid, fid, &mut body);
        let expected = serde_json::to_vec(&request_body(&message, TargetKind::Fid, fid, false)).unwrap();
        assert_eq!(body, expected);
        let parsed: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(parsed["message"]["fid"], fid);
        assert!(parsed["message"].get("token").is_none(), "one target field only");
    }

    #[test]
    fn validate_only_is_part_of_the_template() {
        let message = Message::save_location(&seoul_slot(), std::time::Duration::from_secs(1800));
        let body: Value =
            serde_json::from_slice(&RequestTemplate::new(&message, true).unwrap().render("t")).unwrap();
        assert_eq!(body["validate_only"], Value::Bool(true));
    }

    #[test]
    fn save_location_expires_one_ttl_after_its_slot() {
        let message = Message::save_location(&seoul_slot(), std::time::Duration::from_secs(1800));
        let Message::SaveLocation { expires_at, .. } = message else { unreachable!() };
        assert_eq!(expires_at, seoul_slot().timestamp() + 1800);
    }

    fn path_daily_aps(sound: bool) -> Value {
        let text = ("t".to_owned(), "b".to_owned());
        Message::path_daily("2026-W48".into(), &seoul_slot(), text, sound).to_json(TargetKind::Token, "t")
            ["apns"]["payload"]["aps"]
            .clone()
    }

    #[test]
    fn path_daily_plays_no_sound_by_default() {
        assert_eq!(path_daily_aps(false), json!({ "content-available": 1, "thread-id": "pathDaily" }));
    }

    #[test]
    fn path_daily_plays_the_default_sound_when_asked() {
        assert_eq!(path_daily_aps(true)["sound"], "default");
    }

    #[test]
    fn a_badge_notification_is_visible_and_names_the_badges() {
        let message = Message::badge(
            "2026-W48".into(),
            "cafe-lover,homebody".into(),
            &["카페 단골", "집콕 마스터"],
            &seoul_slot(),
        );
        let json = message.to_json(TargetKind::Token, "t");
        assert_eq!(message.kind(), "badge");
        assert_eq!(
            json["data"],
            json!({ "type": "badge", "week": "2026-W48", "badges": "cafe-lover,homebody" })
        );
        assert_eq!(json["notification"]["title"], BADGE_TITLE);
        assert_eq!(json["notification"]["body"], "지난주 기록으로 배지를 받았어요: 카페 단골, 집콕 마스터");
        assert_eq!(json["apns"]["headers"]["apns-push-type"], "alert");
        assert_eq!(
            json["apns"]["headers"]["apns-expiration"],
            (seoul_slot().timestamp() + 86_400).to_string()
        );
        assert_eq!(
            json["apns"]["payload"]["aps"],
            json!({ "content-available": 1, "thread-id": "badge", "sound": "default" })
        );
        assert_eq!(json["android"], json!({ "priority": "high", "ttl": "86400s", "collapse_key": "badge" }));
    }

    #[test]
    fn message_bytes_is_the_size_of_the_message_object_fcm_counts() {
        let token = "a-device-token:APA91b";
        let message =
            Message::path_daily("2026-W48".into(), &seoul_slot(), ("t".into(), "본문".into()), false);
        let counted = serde_json::to_vec(&message.to_json(TargetKind::Token, token)).unwrap().len();
        for validate_only in [false, true] {
            let template = RequestTemplate::new(&message, validate_only).unwrap();
            assert_eq!(message_bytes(&template.render(token)), counted, "validate_only {validate_only}");
        }
        let badge = Message::badge("2026-W48".into(), "cafe-lover".into(), &["카페 단골"], &seoul_slot());
        let template = RequestTemplate::new(&message, true).unwrap();
        let mut body = Vec::new();
        template.render_for(TargetKind::Token, token, Some(&badge), &mut body);
        assert_eq!(
            message_bytes(&body),
            serde_json::to_vec(&badge.to_json(TargetKind::Token, token)).unwrap().len()
        );
    }

    #[test]
    fn the_size_check_keeps_room_for_the_longest_token() {
        let fits = |body_len: usize| {
            let message = Message::path_daily(
                "2026-W48".into(),
                &seoul_slot(),
                ("t".into(), "x".repeat(body_len)),
                false,
            );
            RequestTemplate::new(&message, false).is_ok()
        };
        let base = serde_json::to_vec(
            &Message::path_daily("2026-W48".into(), &seoul_slot(), ("t".into(), String::new()), false)
                .to_json(TargetKind::Token, ""),
        )
        .unwrap()
        .len();
        let largest = MAX_MESSAGE_BYTES - TOKEN_ALLOWANCE - base;
        assert!(fits(largest));
        assert!(!fits(largest + 1));
    }

    #[test]
    fn an_oversized_message_says_by_how_much_to_shorten_it() {
        let base = serde_json::to_vec(
            &Message::path_daily("2026-W48".into(), &seoul_slot(), ("t".into(), String::new()), false)
                .to_json(TargetKind::Token, ""),
        )
        .unwrap()
        .len();
        let body = "x".repeat(MAX_MESSAGE_BYTES - TOKEN_ALLOWANCE - base + 7);
        let message = Message::path_daily("2026-W48".into(), &seoul_slot(), ("t".into(), body), false);
        let err = RequestTemplate::new(&message, false).unwrap_err().to_string();
        assert!(err.contains("by at least 7 bytes") && err.contains("256-byte device token"), "{err}");
    }

    #[test]
    fn an_oversized_body_is_refused_before_sending() {
        let message =
            Message::path_daily("2026-W48".into(), &seoul_slot(), ("t".into(), "가".repeat(1400)), false);
        let err = RequestTemplate::new(&message, false).unwrap_err();
        assert!(matches!(err, MessageError::TooLarge { bytes, .. } if bytes > MAX_MESSAGE_BYTES));
    }
}
