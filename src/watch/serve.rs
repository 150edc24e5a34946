//! The watcher's monitoring endpoint: `GET /healthz` (JSON; 200 while the last run converged,
//! 503 once one failed) and `GET /metrics` (Prometheus text). Nothing else is served, and
//! nothing there changes anything.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};

use super::metrics::Metrics;

/// The most connections served at once: a monitoring endpoint has a scraper and a probe or
/// two. Past it, new connections wait in the kernel's queue until one ends.
const MAX_CONNECTIONS: usize = 32;

/// How long a client may take to send its request's headers.
const HEADER_TIME: Duration = Duration::from_secs(5);

/// How long one connection may last, whatever it does.
const CONNECTION_TIME: Duration = Duration::from_secs(30);

/// The longest pause after `accept` fails (out of file descriptors, say), doubling from 10 ms:
/// a failing `accept` must not spin.
const MAX_ACCEPT_PAUSE: Duration = Duration::from_secs(1);

/// Serves `metrics` on `addr` until the task is dropped; the bound address (for port 0).
///
/// One client cannot stall it: headers must come within [`HEADER_TIME`], a connection lasts
/// at most [`CONNECTION_TIME`] and is not kept alive, at most [`MAX_CONNECTIONS`] are served at
/// once, and a failing `accept` (such as EMFILE) pauses before the next, up to
/// [`MAX_ACCEPT_PAUSE`].
///
/// # Errors
/// When the address cannot be bound.
pub async fn start(
    addr: SocketAddr,
    metrics: Arc<Mutex<Metrics>>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let task = tokio::spawn(async move {
        let mut pause = Duration::from_millis(10);
        loop {
            // A slot first: past the cap, connections wait in the kernel's queue.
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let stream = match listener.accept().await {
                Ok((stream, _)) => {
                    pause = Duration::from_millis(10);
                    stream
                }
                Err(e) => {
                    tracing::warn!(error = %e, pause_ms = pause.as_millis(), "--listen: accepting a connection failed");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(MAX_ACCEPT_PAUSE);
                    continue;
                }
            };
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let _slot = slot;
                let service = hyper::service::service_fn(move |req| {
                    let metrics = metrics.clone();
                    async move { Ok::<_, Infallible>(answer(&metrics, &req)) }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let connection = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(HEADER_TIME)
                    .keep_alive(false)
                    .serve_connection(io, service);
                let _ = tokio::time::timeout(CONNECTION_TIME, connection).await;
            });
        }
    });
    Ok((bound, task))
}

fn answer(metrics: &Mutex<Metrics>, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, kind: &str, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        if let Ok(v) = kind.parse() {
            r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
        }
        r
    };
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET only\n".into(),
        );
    }
    let Ok(m) = metrics.lock() else {
        return reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain",
            "metrics unavailable\n".into(),
        );
    };
    match req.uri().path() {
        "/metrics" => reply(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            m.render(),
        ),
        "/healthz" => reply(
            if m.healthy() {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            },
            "application/json",
            format!("{}\n", m.health()),
        ),
        _ => reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            "/healthz and /metrics only\n".into(),
        ),
    }
}
