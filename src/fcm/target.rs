//! Which field of FCM's `Message` names the device: `token` (a registration token) or `fid` (a
//! Firebase installation ID, which FCM is moving devices to). The backend stores both in
//! `app_user.fcmToken`, so every value is recognised on its own: sending an FID as a `token`
//! makes FCM answer `INVALID_ARGUMENT` about the token, and the run would prune every phone
//! whose app moved to FIDs.

use serde::Serialize;

/// Exactly this long: an FID is 17 bytes (a 4-bit `0111` header and 132 random bits) in
/// URL-safe base64 without padding.
const FID_CHARS: usize = 22;

/// How a device is addressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum TargetKind {
    /// An FCM registration token.
    Token,
    /// A Firebase installation ID.
    Fid,
}

impl TargetKind {
    /// The `Message` field FCM reads it from, as `fieldViolations[].field` names it too.
    pub(crate) fn field(self) -> &'static str {
        match self {
            TargetKind::Token => "token",
            TargetKind::Fid => "fid",
        }
    }
}

/// How stored values are read (`--targets`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Targets {
    /// An FID where the value has an FID's exact shape, a registration token otherwise.
    #[default]
    Auto,
    /// Every value is a registration token.
    Token,
    /// Every value is a Firebase installation ID.
    Fid,
}

impl Targets {
    /// How `value` (trimmed, already checked to be printable ASCII) is sent.
    pub(crate) fn read(self, value: &str) -> TargetKind {
        match self {
            Targets::Token => TargetKind::Token,
            Targets::Fid => TargetKind::Fid,
            Targets::Auto if is_fid(value) => TargetKind::Fid,
            Targets::Auto => TargetKind::Token,
        }
    }
}

/// Whether `value` has an FID's shape: 22 characters of the URL-safe base64 alphabet, the first
/// `c`, `d`, `e` or `f` (the `0111` header in its top four bits). A registration token is much
/// longer (140 to 200 characters, with a `:`), so the two shapes never meet.
pub(crate) fn is_fid(value: &str) -> bool {
    let bytes = value.as_bytes();
    bytes.len() == FID_CHARS
        && matches!(bytes[0], b'c'..=b'f')
        && bytes.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    const FID: &str = "cR_8eKx2Q-2mP0aBcDeF9z";

    #[test]
    fn a_value_of_an_fids_shape_is_an_fid() {
        assert_eq!(FID.len(), 22);
        for first in ['c', 'd', 'e', 'f'] {
            let fid = format!("{first}{}", &FID[1..]);
            assert_eq!(Targets::Auto.read(&fid), TargetKind::Fid, "{fid}");
        }
    }

    #[test]
    fn near_misses_are_tokens() {
        for value in [
            &FID[..21],                    // 21 characters
            &format!("{FID}x"),            // 23
            &format!("a{}", &FID[1..]),    // first character outside c-f
            &format!("g{}", &FID[1..]),    // just past f
            &format!("c{}+", &FID[1..21]), // standard base64's +
            &format!("c{}/", &FID[1..21]), // and /
            "dGhpcyBpcyBhIHRva2Vu:APA91bHun4MxP5egoKMwt2KZFBaFUH-1RYqx",
        ] {
            assert_eq!(Targets::Auto.read(value), TargetKind::Token, "{value}");
        }
    }

    #[test]
    fn a_forced_reading_applies_to_every_value() {
        assert_eq!(Targets::Token.read(FID), TargetKind::Token);
        assert_eq!(Targets::Fid.read("anything:APA91b"), TargetKind::Fid);
    }
}
