//! Errors an operator must act on say two things: what failed (with which input) and what to do.
//! [`Advice`] keeps the two apart, so the error line (`what; fix`) and `doctor`'s checklist
//! (`FAIL <what> — <fix>`) are written once, by the error itself.

use std::borrow::Cow;

/// An error that knows what the operator should do about it.
pub(crate) trait Advice {
    /// What failed, with which input (never a secret).
    fn what(&self) -> String;
    /// What to do about it.
    fn fix(&self) -> Cow<'static, str>;
}
