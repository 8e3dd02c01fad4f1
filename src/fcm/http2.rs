//! The HTTP/2 transport of [`super::FcmClient`]: `h2` directly over TCP or `tokio-rustls`, one
//! connection per lane, opened on first use and again after it closed.
//!
//! Why not a general HTTP client: reqwest (on hyper's pooled client) parsed and cloned a URL,
//! checked a connection out of a pool, spawned a task and crossed two channels for every request;
//! together that was most of the CPU a message cost that was not the kernel's. Here a request is
//! a header block handed to `h2`'s stream state, and the worker awaits the answer itself.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use h2::client::SendRequest;
use http::{HeaderMap, HeaderValue, Method, Request, Uri};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::timeout::RequestTimer;

/// Time allowed for TCP connect and TLS handshake together.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// An idle connection is pinged this often, so a NAT or load balancer does not drop it silently
/// between bursts.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// A ping unanswered this long means the connection is dead.
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// Receive window per stream: an FCM answer is well under 1 KiB; 64 KiB (the protocol default)
/// leaves room for any error body.
const STREAM_WINDOW: u32 = 65_535;
/// Receive window of a whole connection: 100 streams' answers at once.
const CONNECTION_WINDOW: u32 = 1024 * 1024;
/// Largest HTTP/2 frame accepted (the protocol's minimum, so nothing buffers larger frames).
const MAX_FRAME: u32 = 16_384;
/// FCM's answers carry a handful of headers.
const MAX_HEADER_LIST: u32 = 16 * 1024;

/// Why an exchange got no HTTP answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TransportError {
    /// No TCP connection, or no TLS session on it.
    #[error("connection failed: {0}")]
    Connect(String),
    /// The connection broke or the server reset the stream.
    #[error("transport error: {0}")]
    Http2(#[from] h2::Error),
    /// No answer within the request timeout (connecting included).
    #[error("timed out after {}", humantime::format_duration(*.0))]
    TimedOut(Duration),
}

/// The parts of an answer the verdict needs.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) retry_after: Option<HeaderValue>,
    pub(crate) body: Bytes,
}

/// Where requests go and how to reach it; shared by every lane.
pub(crate) struct Endpoint {
    /// `host:port`, what TCP connects to.
    address: String,
    /// `Some` for `https`.
    tls: Option<(TlsConnector, ServerName<'static>)>,
    /// The send URL, pseudo-headers included, parsed once.
    uri: Uri,
    /// Content type and user agent: the same on every request.
    headers: HeaderMap,
    request_timeout: Duration,
}

/// How an [`Endpoint`] cannot be built.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EndpointError {
    /// Not an `http`/`https` URL with a host.
    #[error("the FCM endpoint {0} is not an http(s) URL with a host: fix --fcm-endpoint")]
    Url(String),
    /// `--fcm-ca-file` unreadable or not PEM.
    #[error("cannot use --fcm-ca-file {path}: {reason}; give a readable PEM file of CA certificates")]
    CaFile { path: String, reason: String },
    /// The TLS setup (the system's certificate store) failed.
    #[error("cannot set up TLS for the FCM endpoint: {0}; check the system's CA certificates")]
    Tls(#[from] rustls::Error),
}

impl Endpoint {
    /// The endpoint of `send_url`, trusting `extra_ca_file` besides the system's authorities.
    pub(crate) fn new(
        send_url: &url::Url,
        extra_ca_file: Option<&std::path::Path>,
        request_timeout: Duration,
    ) -> Result<Self, EndpointError> {
        let bad_url = || EndpointError::Url(send_url.to_string());
        let host = send_url.host_str().ok_or_else(bad_url)?;
        let port = send_url.port_or_known_default().ok_or_else(bad_url)?;
        let tls = match send_url.scheme() {
            "http" => None,
            "https" => {
                let name =
                    ServerName::try_from(host.trim_matches(['[', ']']).to_owned()).map_err(|_| bad_url())?;
                Some((tls_connector(extra_ca_file)?, name))
            }
            _ => return Err(bad_url()),
        };
        let uri = Uri::try_from(send_url.as_str()).map_err(|_| bad_url())?;
        let mut headers = HeaderMap::new();
        headers
            .insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=UTF-8"));
        headers.insert(
            http::header::USER_AGENT,
            HeaderValue::from_static(concat!("wolley-push/", env!("CARGO_PKG_VERSION"))),
        );
        Ok(Endpoint { address: format!("{host}:{port}"), tls, uri, headers, request_timeout })
    }

    /// A request for one message: the shared URI and headers, and this access token.
    fn request(&self, authorization: &HeaderValue) -> Request<()> {
        let mut request = Request::new(());
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.uri.clone();
        let headers = request.headers_mut();
        headers.reserve(3);
        headers.extend(self.headers.iter().map(|(name, value)| (name.clone(), value.clone())));
        headers.insert(http::header::AUTHORIZATION, authorization.clone());
        request
    }

    /// A new HTTP/2 connection (TCP, TLS when `https`, the HTTP/2 preface), driven by a task of
    /// its own that also pings it; `closed` is set when that task ends.
    async fn connect(&self, closed: Arc<AtomicBool>) -> Result<SendRequest<Bytes>, TransportError> {
        let connecting = async {
            let tcp = TcpStream::connect(&self.address)
                .await
                .map_err(|e| TransportError::Connect(format!("cannot connect to {}: {e}", self.address)))?;
            tcp.set_nodelay(true).map_err(|e| TransportError::Connect(format!("{}: {e}", self.address)))?;
            match &self.tls {
                None => handshake(Coalesced(tcp), closed).await,
                Some((connector, name)) => {
                    let tls = connector.connect(name.clone(), tcp).await.map_err(|e| {
                        TransportError::Connect(format!(
                            "TLS handshake with {}: {}",
                            self.address,
                            crate::causes::one_line(&e)
                        ))
                    })?;
                    handshake(Coalesced(tls), closed).await
                }
            }
        };
        tokio::time::timeout(CONNECT_TIMEOUT, connecting).await.map_err(|_| {
            TransportError::Connect(format!(
                "no connection to {} within {}",
                self.address,
                humantime::format_duration(CONNECT_TIMEOUT)
            ))
        })?
    }
}

/// The TLS client setup: the system's authorities (as the platform verifier finds them) and
/// `extra_ca_file`'s, HTTP/2 offered by ALPN.
fn tls_connector(extra_ca_file: Option<&std::path::Path>) -> Result<TlsConnector, EndpointError> {
    let extra = match extra_ca_file {
        Some(path) => load_certificates(path)?,
        None => Vec::new(),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls_platform_verifier::Verifier::new_with_extra_roots(extra, provider.clone())?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}

/// The certificates of `--fcm-ca-file`.
fn load_certificates(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, EndpointError> {
    use rustls::pki_types::pem::PemObject as _;
    let failed = |reason: String| EndpointError::CaFile { path: path.display().to_string(), reason };
    let pem = std::fs::read(path).map_err(|e| failed(e.to_string()))?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| failed(format!("not a PEM certificate bundle ({e})")))?;
    if certificates.is_empty() {
        return Err(failed("it holds no PEM certificate".into()));
    }
    Ok(certificates)
}

/// The HTTP/2 preface and settings on `io`, and the task that drives the connection.
async fn handshake<T>(io: T, closed: Arc<AtomicBool>) -> Result<SendRequest<Bytes>, TransportError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, mut connection) = h2::client::Builder::new()
        .enable_push(false)
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_frame_size(MAX_FRAME)
        .max_header_list_size(MAX_HEADER_LIST)
        // Until the server's SETTINGS arrive h2 would allow any number of streams; FCM's front
        // ends answer GOAWAY to a client that opens more than ~100.
        .initial_max_send_streams(super::STREAMS_PER_CONNECTION)
        .handshake::<_, Bytes>(io)
        .await
        .map_err(|e| TransportError::Connect(format!("HTTP/2 handshake: {e}")))?;
    let ping_pong = connection.ping_pong();
    tokio::spawn(async move {
        let ended = tokio::select! {
            ended = &mut connection => ended.err(),
            () = keep_alive(ping_pong) => None,
        };
        if let Some(error) = ended {
            tracing::debug!(%error, "an FCM connection ended");
        }
        closed.store(true, Ordering::Release);
    });
    Ok(sender)
}

/// A connection's socket (TCP, or TLS over it) that tells `h2` it takes no vectored writes.
///
/// `h2` keeps a DATA frame of 256 bytes or more out of its 16 KiB write buffer when the socket
/// writes vectored, and flushes before it takes the next frame: every request went out in a
/// write (and a TLS record) of its own, a third of the CPU a message cost. Without vectored
/// writes it copies frames under 1 KiB, an FCM request body's size, into the buffer, and sends
/// the requests queued since the connection last ran in one write (BENCHMARKS.md, issue 21).
struct Coalesced<T>(T);

impl<T: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Coalesced<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl<T: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Coalesced<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

/// Pings every [`KEEP_ALIVE_INTERVAL`]; returns when a pong does not come in time.
async fn keep_alive(ping_pong: Option<h2::PingPong>) {
    let Some(mut ping_pong) = ping_pong else { return std::future::pending().await };
    loop {
        tokio::time::sleep(KEEP_ALIVE_INTERVAL).await;
        match tokio::time::timeout(KEEP_ALIVE_TIMEOUT, ping_pong.ping(h2::Ping::opaque())).await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => {
                tracing::debug!(%error, "keep-alive ping failed");
                return;
            }
            Err(_) => {
                tracing::debug!("keep-alive ping unanswered: closing the FCM connection");
                return;
            }
        }
    }
}

/// A live connection and whether its driver has ended.
struct Live {
    sender: SendRequest<Bytes>,
    closed: Arc<AtomicBool>,
}

/// One HTTP/2 connection's slot: workers share it, the first to find it empty or closed
/// connects while the others wait, and those that waited share that attempt's outcome.
pub(crate) struct Lane {
    live: Mutex<Option<Live>>,
    /// Held while connecting; holds why the last attempt failed, if it did.
    connecting: tokio::sync::Mutex<Option<String>>,
    /// Connection attempts so far, to tell whether one ended while a worker waited.
    attempts: AtomicU64,
    /// Requests on this lane now, counted by [`Busy`].
    in_flight: AtomicUsize,
}

/// A request's claim on its lane, released when the request ends however it ends.
pub(crate) struct Busy<'a>(&'a Lane);

impl std::ops::Deref for Busy<'_> {
    type Target = Lane;

    fn deref(&self) -> &Lane {
        self.0
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Lane {
    pub(crate) fn new() -> Self {
        Lane {
            live: Mutex::new(None),
            connecting: tokio::sync::Mutex::new(None),
            attempts: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        }
    }

    /// Requests on this lane now.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Claims the lane for one request.
    pub(crate) fn busy(&self) -> Busy<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        Busy(self)
    }

    /// POSTs `body` on this lane's connection within the request timeout, kept by `timer`.
    pub(crate) async fn post(
        &self,
        endpoint: &Endpoint,
        authorization: &HeaderValue,
        body: Bytes,
        timer: &mut RequestTimer,
    ) -> Result<Answer, TransportError> {
        let exchange = std::pin::pin!(async {
            let sender = self.sender(endpoint).await?;
            let answer = exchange(sender, || endpoint.request(authorization), body).await;
            if let Err(TransportError::Http2(error)) = &answer {
                if error.is_go_away() || error.is_io() {
                    self.forget();
                }
            }
            answer
        });
        // Counted on the time the process ran: after a freeze the answer may be waiting unread.
        timer
            .within(endpoint.request_timeout, exchange)
            .await
            .unwrap_or(Err(TransportError::TimedOut(endpoint.request_timeout)))
    }

    /// The open connection's handle, or None when there is none or it has closed.
    fn open(&self) -> Option<SendRequest<Bytes>> {
        let live = self.live.lock().expect("lane lock");
        live.as_ref().filter(|live| !live.closed.load(Ordering::Acquire)).map(|live| live.sender.clone())
    }

    async fn sender(&self, endpoint: &Endpoint) -> Result<SendRequest<Bytes>, TransportError> {
        if let Some(sender) = self.open() {
            return Ok(sender);
        }
        let before = self.attempts.load(Ordering::Acquire);
        let mut last_failure = self.connecting.lock().await;
        if let Some(sender) = self.open() {
            return Ok(sender);
        }
        // An attempt failed while this worker waited: a hundred workers do not each wait out
        // the connect timeout of an unreachable endpoint in turn.
        if let Some(failure) =
            last_failure.as_ref().filter(|_| self.attempts.load(Ordering::Acquire) != before)
        {
            return Err(TransportError::Connect(failure.clone()));
        }
        let closed = Arc::new(AtomicBool::new(false));
        // Boxed, and only by the worker that connects: connecting (TCP, TLS, the HTTP/2
        // preface) is kilobytes of state. Inline, every request's future carried room for it;
        // boxed by every worker that waits, the 1,500 waiting at the start held 5.7 MB at the
        // run's peak (BENCHMARKS.md, issue 21).
        let connected = Box::pin(endpoint.connect(closed.clone())).await;
        self.attempts.fetch_add(1, Ordering::Release);
        let sender = match connected {
            Ok(sender) => sender,
            Err(error) => {
                *last_failure = Some(match &error {
                    TransportError::Connect(why) => why.clone(),
                    other => other.to_string(),
                });
                return Err(error);
            }
        };
        *last_failure = None;
        *self.live.lock().expect("lane lock") = Some(Live { sender: sender.clone(), closed });
        Ok(sender)
    }

    /// Drops a connection that failed, so the next request opens a new one.
    fn forget(&self) {
        self.live.lock().expect("lane lock").take();
    }
}

/// One request and its answer on `sender`'s connection, the body read to its end.
async fn exchange(
    sender: SendRequest<Bytes>,
    request: impl FnOnce() -> Request<()>,
    body: Bytes,
) -> Result<Answer, TransportError> {
    // Waits while the connection already carries as many streams as the server allows. The
    // request is built after the wait, so its 224 bytes are not kept in the future's state.
    let mut sender = sender.ready().await?;
    let (response, mut stream) = sender.send_request(request(), false)?;
    stream.send_data(body, true)?;
    // Only the status and `Retry-After` are kept while the body is read, not the whole head.
    let (status, retry_after, mut incoming) = {
        let (head, incoming) = response.await?.into_parts();
        (head.status.as_u16(), head.headers.get(http::header::RETRY_AFTER).cloned(), incoming)
    };
    let mut body = Bytes::new();
    while let Some(chunk) = incoming.data().await {
        let chunk = chunk?;
        let _ = incoming.flow_control().release_capacity(chunk.len());
        // An answer is nearly always one DATA frame: kept as it came, not copied.
        body = if body.is_empty() { chunk } else { [body, chunk].concat().into() };
    }
    Ok(Answer { status, retry_after, body })
}
