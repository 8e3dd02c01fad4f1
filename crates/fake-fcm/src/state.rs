//! What the fake remembers between requests: scripts, access tokens, counters, the request log.
//!
//! Exists so that both endpoints and the test-facing [`crate::FakeFcm`] handle share one
//! place: hot counters are atomics, everything else sits behind one mutex that is never held
//! across an `.await`.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::oauth::{AccessTokens, Verifier};
use crate::{Options, RecordedRequest, Reply};

/// Everything the server and the handle share.
pub(crate) struct Shared {
    pub(crate) options: Options,
    pub(crate) verifier: Verifier,
    pub(crate) counters: Counters,
    pub(crate) refuse_oauth: AtomicBool,
    /// The HTTP status every token request is answered with while non-zero.
    pub(crate) fail_oauth: AtomicU16,
    pub(crate) pings: crate::ping::PingLog,
    state: Mutex<State>,
}

impl Shared {
    pub(crate) fn new(options: Options, verifier: Verifier) -> Shared {
        Shared {
            options,
            verifier,
            counters: Counters::default(),
            refuse_oauth: AtomicBool::new(false),
            fail_oauth: AtomicU16::new(0),
            pings: Default::default(),
            state: Mutex::default(),
        }
    }

    /// The state behind the lock (a panicking test thread does not poison it for the others).
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A map keyed by tokens that every send looks up. Hashed with foldhash, not SipHash: SipHash
/// over a 170-character device token was 3% of the fake's instructions per send, and the keys
/// come from the tests and benchmarks, not from an adversary.
pub(crate) type TokenMap<V> = HashMap<String, V, foldhash::fast::RandomState>;

/// The part of the shared state that needs a lock.
#[derive(Default)]
pub(crate) struct State {
    /// The reply to every send while set (a misconfigured project), before any script.
    pub(crate) every_reply: Option<Reply>,
    /// Replies for the next sends, whatever their token.
    pub(crate) next_replies: VecDeque<Reply>,
    /// Replies for the next sends to one token.
    pub(crate) scripts: HashMap<String, VecDeque<Reply>>,
    pub(crate) tokens: AccessTokens,
    /// 200 answers to real (not `validate_only`) sends, per registration token.
    pub(crate) deliveries: TokenMap<u32>,
    /// Every send request, when `record_bodies` is on.
    pub(crate) log: Vec<RecordedRequest>,
}

impl State {
    /// The scripted reply for the next send to `token`: the `answer_every_send_with` reply, then
    /// `script_next` replies, then the token's own.
    pub(crate) fn scripted(&mut self, token: Option<&str>) -> Option<Reply> {
        if let Some(every) = &self.every_reply {
            return Some(every.clone());
        }
        let next = self.next_replies.pop_front();
        next.or_else(|| self.scripts.get_mut(token?)?.pop_front())
    }
}

/// Counters read by tests and benchmarks, cheap to bump from every request.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) requests: AtomicU64,
    pub(crate) deliveries: AtomicU64,
    pub(crate) oauth_requests: AtomicU64,
    in_flight: AtomicU64,
    pub(crate) max_in_flight: AtomicU64,
    pub(crate) send_connections: AtomicU64,
}

impl Counters {
    /// Marks a send as being handled until the returned guard is dropped.
    pub(crate) fn enter(&self) -> InFlight<'_> {
        let now = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        self.max_in_flight.fetch_max(now, Ordering::Relaxed);
        InFlight(&self.in_flight)
    }
}

/// A send being handled; dropping it (even when the client goes away) ends it.
pub(crate) struct InFlight<'a>(&'a AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
