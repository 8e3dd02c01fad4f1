//! Healthchecks-style health pings (`--ping-url`): `URL/start` when a run starts, `URL` when it
//! succeeds, `URL/<exit code>` when it does not, so a dead-man's-switch service notices both a
//! failing job and one that stopped running.
//!
//! A ping is best effort: it has a short timeout and one retry, and a ping that fails is a
//! warning on stderr, never a job failure. The URL's path is a secret (a Healthchecks UUID or
//! ping key lets anyone report for the check), so only its host is ever shown.

use std::fmt;
use std::time::Duration;

// Errors are shown with their causes; callers strip the URL (a secret) first (`without_url`).
use crate::causes::one_line;
use crate::exit::ExitCode;

/// Time limit of one ping request (Healthchecks' own examples use 10 s for the whole call).
const PING_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause before the one retry.
const RETRY_AFTER: Duration = Duration::from_millis(500);
/// Healthchecks keeps the first 100 kB of a ping's body; ours are one line, cut well below.
const MAX_BODY: usize = 10_000;

/// A validated ping URL. `Display` and `Debug` show only its scheme and host.
#[derive(Clone)]
pub(crate) struct PingUrl {
    url: url::Url,
}

impl PingUrl {
    /// Parses an `http(s)` URL such as `https://hc-ping.com/<uuid>`.
    ///
    /// # Errors
    /// A message for the operator that does not repeat the URL.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let invalid = |why: String| {
            format!("--ping-url / WOLLEY_PING_URL {why}; expected an http(s) URL such as https://hc-ping.com/<uuid>")
        };
        let url = url::Url::parse(text).map_err(|e| invalid(format!("is not a URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid(format!("has the scheme \"{}\"", url.scheme())));
        }
        if url.host_str().is_none_or(str::is_empty) || url.cannot_be_a_base() {
            return Err(invalid("names no host".into()));
        }
        Ok(PingUrl { url })
    }

    /// `host` or `host:port`: all that logs may show.
    pub(crate) fn host(&self) -> String {
        let host = self.url.host_str().unwrap_or_default();
        match self.url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        }
    }

    /// The URL of `signal`: the path gets `/start` or `/<exit code>` appended, the query is kept.
    fn for_signal(&self, signal: Signal, run_id: &str) -> url::Url {
        let mut url = self.url.clone();
        if let Some(suffix) = signal.suffix() {
            url.path_segments_mut().expect("checked: the URL has a base").pop_if_empty().push(&suffix);
        }
        // Healthchecks pairs a start with its end by `rid`, so overlapping runs (shards sharing
        // a check) get their durations right; other services ignore the parameter.
        url.query_pairs_mut().append_pair("rid", run_id);
        url
    }
}

impl fmt::Display for PingUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}/…", self.url.scheme(), self.host())
    }
}

impl fmt::Debug for PingUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PingUrl({self})")
    }
}

/// What a ping reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    /// The run started.
    Start,
    /// The run ended with this exit code (0 = success).
    Finished(ExitCode),
}

impl Signal {
    /// The path segment appended to the URL: none for success.
    fn suffix(self) -> Option<String> {
        match self {
            Signal::Start => Some("start".into()),
            Signal::Finished(ExitCode::Success) => None,
            Signal::Finished(code) => Some(code.code().to_string()),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Signal::Start => "start",
            Signal::Finished(ExitCode::Success) => "success",
            Signal::Finished(_) => "failure",
        }
    }
}

/// Sends one run's pings; cheap to clone.
#[derive(Clone)]
pub(crate) struct Pinger {
    client: reqwest::Client,
    url: PingUrl,
    run_id: String,
}

impl Pinger {
    /// A pinger for `url`, or `None` (after a warning) when no HTTP client can be built.
    pub(crate) fn new(url: PingUrl) -> Option<Self> {
        crate::fcm::install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(PING_TIMEOUT)
            .connect_timeout(PING_TIMEOUT)
            .user_agent(concat!("wolley-push/", env!("CARGO_PKG_VERSION")))
            .build();
        match client {
            Ok(client) => Some(Pinger { client, url, run_id: run_id() }),
            Err(error) => {
                tracing::warn!(
                    "cannot build the health-ping client ({}); no pings this run",
                    one_line(&error)
                );
                None
            }
        }
    }

    /// Sends `signal` with `body` (a line for the check's event log), retrying once. Never
    /// fails: a ping that does not get through is logged as a warning.
    pub(crate) async fn ping(&self, signal: Signal, body: &str) {
        let url = self.url.for_signal(signal, &self.run_id);
        let body = truncate(body, MAX_BODY).to_owned();
        let mut last_error = String::new();
        for attempt in 1..=2 {
            match self.client.post(url.clone()).body(body.clone()).send().await {
                Ok(response) if response.status().is_success() => {
                    tracing::debug!(host = %self.url.host(), signal = signal.describe(), "health ping sent");
                    return;
                }
                Ok(response) => {
                    last_error = format!("answered HTTP {}", response.status().as_u16());
                    if !response.status().is_server_error() {
                        break;
                    }
                }
                Err(error) => last_error = one_line(&error.without_url()),
            }
            if attempt == 1 {
                tokio::time::sleep(RETRY_AFTER).await;
            }
        }
        tracing::warn!(
            "the {} health ping to {} failed ({last_error}); the job's result is not affected",
            signal.describe(),
            self.url.host()
        );
    }
}

/// A random UUID (version 4), as Healthchecks wants for `rid`.
fn run_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    const UUID: &str = "5bf6cc8a-7e1c-4d3c-9d5b-0123456789ab";

    fn url(text: &str) -> PingUrl {
        PingUrl::parse(text).unwrap()
    }

    #[test]
    fn start_success_and_failure_paths_follow_healthchecks() {
        let ping = url(&format!("https://hc-ping.com/{UUID}"));
        let path = |signal| ping.for_signal(signal, "r").path().to_owned();
        assert_eq!(path(Signal::Start), format!("/{UUID}/start"));
        assert_eq!(path(Signal::Finished(ExitCode::Success)), format!("/{UUID}"));
        assert_eq!(path(Signal::Finished(ExitCode::Partial)), format!("/{UUID}/3"));
        assert_eq!(path(Signal::Finished(ExitCode::TempFail)), format!("/{UUID}/75"));
    }

    #[test]
    fn a_trailing_slash_and_a_query_are_kept_sensible() {
        let ping = url("https://hc.example/ping/key/slug/?create=1");
        let start = ping.for_signal(Signal::Start, "r");
        assert_eq!(start.path(), "/ping/key/slug/start");
        assert_eq!(start.query(), Some("create=1&rid=r"));
    }

    #[test]
    fn the_url_is_shown_without_its_secret_path() {
        let ping = url(&format!("https://hc-ping.com:8443/{UUID}"));
        for shown in [ping.to_string(), format!("{ping:?}"), ping.host()] {
            assert!(!shown.contains(UUID), "{shown}");
        }
        assert_eq!(ping.host(), "hc-ping.com:8443");
    }

    #[test]
    fn only_http_urls_are_accepted_and_the_error_does_not_repeat_them() {
        let err = PingUrl::parse(&format!("ftp://hc-ping.com/{UUID}")).unwrap_err();
        assert!(err.contains("\"ftp\"") && !err.contains(UUID), "{err}");
        assert!(PingUrl::parse(UUID).is_err());
    }

    #[test]
    fn run_ids_are_version_4_uuids() {
        let id = run_id();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_ne!(id, run_id());
    }
}
