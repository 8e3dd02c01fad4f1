//! The server thread: its own tokio runtime, the accept loop, and routing to the endpoints.
//!
//! Exists because the callers are synchronous tests that run the client as a child process:
//! the fake must serve from a thread of its own, HTTP/1.1 and cleartext HTTP/2 on one port,
//! and stop cleanly when the handle is dropped.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;

use crate::fcm::{send_endpoint, send_path_project};
use crate::http::{json_response, HttpResponse};
use crate::oauth::token_endpoint;
use crate::state::Shared;

/// The running server: dropping `stop` (or sending on it) ends it, then `thread` finishes.
pub(crate) struct Server {
    pub(crate) stop: oneshot::Sender<()>,
    pub(crate) thread: JoinHandle<()>,
}

/// Serves `listener` (already bound and listening), and `tls` when given, on a new thread.
pub(crate) fn spawn(
    listener: std::net::TcpListener,
    tls: Option<(std::net::TcpListener, TlsAcceptor)>,
    shared: Arc<Shared>,
) -> Server {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(shared.options.workers.max(1))
        .thread_name("fake-fcm-worker")
        .enable_all()
        .build()
        .expect("a tokio runtime for the fake FCM server");
    let (stop, stopped) = oneshot::channel();
    let thread = std::thread::Builder::new()
        .name("fake-fcm".into())
        .spawn(move || runtime.block_on(serve(listener, tls, shared, stopped)))
        .expect("the fake FCM server thread");
    Server { stop, thread }
}

async fn serve(
    listener: std::net::TcpListener,
    tls: Option<(std::net::TcpListener, TlsAcceptor)>,
    shared: Arc<Shared>,
    stopped: oneshot::Receiver<()>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http2().max_concurrent_streams(shared.options.max_concurrent_streams);
    let plain = accept_loop(listener, None, shared.clone(), builder.clone());
    let secure = async {
        match tls {
            Some((listener, acceptor)) => {
                accept_loop(listener, Some(acceptor), shared.clone(), builder.clone()).await
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = stopped => {}
        () = plain => {}
        () = secure => {}
    }
}

async fn accept_loop(
    listener: std::net::TcpListener,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    builder: auto::Builder<TokioExecutor>,
) {
    listener.set_nonblocking(true).expect("a non-blocking listener");
    let listener = TcpListener::from_std(listener).expect("a tokio listener");
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let _ = stream.set_nodelay(true);
        let (shared, builder, tls) = (shared.clone(), builder.clone(), tls.clone());
        tokio::spawn(async move {
            // Counted once, at its first send: the token exchange and pings ride other connections.
            let carried_a_send = Arc::new(AtomicBool::new(false));
            let service = service_fn(move |request: Request<Incoming>| {
                let first_send = !carried_a_send.load(Ordering::Relaxed) && is_send(&request);
                if first_send && !carried_a_send.swap(true, Ordering::Relaxed) {
                    shared.counters.send_connections.fetch_add(1, Ordering::Relaxed);
                }
                route(shared.clone(), request)
            });
            // A client that goes away mid-request (or mid-handshake) is not the fake's problem.
            match tls {
                None => {
                    let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                }
                Some(acceptor) => {
                    if let Ok(stream) = acceptor.accept(stream).await {
                        let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                    }
                }
            }
        });
    }
}

fn is_send(request: &Request<Incoming>) -> bool {
    request.method() == Method::POST && send_path_project(request.uri().path()).is_some()
}

async fn route(shared: Arc<Shared>, request: Request<Incoming>) -> Result<HttpResponse, Infallible> {
    let (head, body) = request.into_parts();
    let path = head.uri.path();
    let response = if crate::ping::is_ping(path) {
        crate::ping::endpoint(&shared, Request::from_parts(head, body)).await
    } else if head.method != Method::POST {
        not_found()
    } else if path == "/token" {
        token_endpoint(&shared, Request::from_parts(head, body)).await
    } else {
        match send_path_project(path) {
            Some(project) => send_endpoint(&shared, &head, body, project).await,
            None => not_found(),
        }
    };
    Ok(response)
}

fn not_found() -> HttpResponse {
    let error = json!({ "code": 404, "message": "Not Found", "status": "NOT_FOUND" });
    json_response(404, &json!({ "error": error }))
}
