//! The watcher's monitoring endpoint: `GET /healthz` (JSON; 200 while the last run converged,
//! 503 once one failed) and `GET /metrics` (Prometheus text). Nothing else is served, and
//! nothing there changes anything.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};

use super::metrics::Metrics;

/// Serves `metrics` on `addr` until the task is dropped; the bound address (for port 0).
///
/// # Errors
/// When the address cannot be bound.
pub async fn start(
    addr: SocketAddr,
    metrics: Arc<Mutex<Metrics>>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let metrics = metrics.clone();
                    async move { Ok::<_, Infallible>(answer(&metrics, &req)) }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
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
