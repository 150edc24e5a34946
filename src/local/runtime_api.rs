//! The Lambda Runtime API (version 2018-06-01), served on loopback for a function run here:
//! what Lambda's own service does for the runtime inside an execution environment. The
//! function's process asks for the next event (`GET .../invocation/next`, held open until there
//! is one), and answers it (`POST .../invocation/{id}/response` or `.../error`); a runtime
//! that cannot start says so (`POST .../init/error`).
//!
//! One invocation runs at a time, as in one Lambda execution environment. The server listens
//! on 127.0.0.1 only, on a port the system picks.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use tokio::sync::{Notify, oneshot};

/// The most a response or error body may hold: Lambda's limit for a synchronous response.
pub const MAX_RESPONSE: usize = 6 * 1024 * 1024;

/// How an invocation ended, as the runtime reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `.../response`: the function's answer.
    Response(Vec<u8>),
    /// `.../error`: the runtime's error document, and its type header when it sent one.
    Error {
        /// `Lambda-Runtime-Function-Error-Type`.
        error_type: Option<String>,
        /// The error document (`{"errorMessage", "errorType", ...}`).
        body: Vec<u8>,
    },
    /// `.../init/error`: the runtime could not start.
    InitError {
        /// `Lambda-Runtime-Function-Error-Type`.
        error_type: Option<String>,
        /// The error document.
        body: Vec<u8>,
    },
}

/// One invocation waiting for the runtime, or being run by it.
struct Invocation {
    id: String,
    event: Vec<u8>,
    deadline: SystemTime,
    done: oneshot::Sender<Outcome>,
}

#[derive(Default)]
struct State {
    queue: Mutex<VecDeque<Invocation>>,
    running: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    init_error: Mutex<Option<Outcome>>,
    arrived: Notify,
    failed: Notify,
}

/// A running Runtime API server; it stops when dropped.
pub struct RuntimeApi {
    addr: SocketAddr,
    function_arn: String,
    state: Arc<State>,
    counter: std::sync::atomic::AtomicU64,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RuntimeApi {
    /// Starts serving on 127.0.0.1 for the function `function_arn`.
    ///
    /// # Errors
    /// When no loopback port can be bound.
    pub async fn start(function_arn: &str) -> std::io::Result<RuntimeApi> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State::default());
        let served = state.clone();
        let arn = function_arn.to_owned();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = served.clone();
                let arn = arn.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let state = state.clone();
                        let arn = arn.clone();
                        async move { Ok::<_, Infallible>(handle(&state, &arn, req).await) }
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    // A runtime that hangs up mid-request is its own problem.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
        Ok(RuntimeApi {
            addr,
            function_arn: function_arn.to_owned(),
            state,
            counter: std::sync::atomic::AtomicU64::new(0),
            task,
        })
    }

    /// `host:port`, as `AWS_LAMBDA_RUNTIME_API` takes it.
    #[must_use]
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// The function's ARN, as invocations carry it.
    #[must_use]
    pub fn function_arn(&self) -> &str {
        &self.function_arn
    }

    /// Hands `event` to the runtime and waits for its outcome, for at most `timeout`; `None`
    /// when it gave none in time. An init error reported before or during the wait ends it.
    pub async fn invoke(&self, event: Vec<u8>, timeout: Duration) -> (String, Option<Outcome>) {
        let n = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = request_id(n);
        let (done, outcome) = oneshot::channel();
        let deadline = SystemTime::now() + timeout;
        if let Ok(mut q) = self.state.queue.lock() {
            q.push_back(Invocation {
                id: id.clone(),
                event,
                deadline,
                done,
            });
        }
        // A `next` waiting now wakes; one that comes later finds it queued.
        self.state.arrived.notify_waiters();
        let init_failed = async {
            loop {
                let failed = self.state.failed.notified();
                if let Some(e) = self.init_error() {
                    return e;
                }
                failed.await;
            }
        };
        let outcome = tokio::select! {
            r = outcome => r.ok(),
            e = init_failed => Some(e),
            () = tokio::time::sleep(timeout) => None,
        };
        // Whatever the runtime says after this is too late.
        if let Ok(mut q) = self.state.queue.lock() {
            q.retain(|i| i.id != id);
        }
        if let Ok(mut r) = self.state.running.lock() {
            r.remove(&id);
        }
        (id, outcome)
    }

    /// The init error the runtime reported, if it did.
    #[must_use]
    pub fn init_error(&self) -> Option<Outcome> {
        self.state.init_error.lock().ok().and_then(|e| e.clone())
    }
}

/// A new request id, unique in this process.
pub(crate) fn new_request_id() -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    request_id(COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed) | (1 << 63))
}

/// A request id in the shape Lambda gives them (a UUID's), unique in this process.
fn request_id(n: u64) -> String {
    let t = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let h = crate::image::digest(format!("{t}:{n}:{}", std::process::id()).as_bytes());
    let h = h.trim_start_matches("sha256:");
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

type Answer = Response<Full<Bytes>>;

fn answer(status: StatusCode, body: &str) -> Answer {
    let mut r = Response::new(Full::new(Bytes::from(body.to_owned())));
    *r.status_mut() = status;
    r
}

async fn handle(state: &State, arn: &str, req: Request<Incoming>) -> Answer {
    const PREFIX: &str = "/2018-06-01/runtime/";
    let path = req.uri().path().to_owned();
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return answer(
            StatusCode::NOT_FOUND,
            "{\"errorMessage\":\"not a Runtime API path\"}",
        );
    };
    let error_type = req
        .headers()
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    match (req.method(), rest.split('/').collect::<Vec<_>>().as_slice()) {
        (&Method::GET, ["invocation", "next"]) => next(state, arn).await,
        (&Method::POST, ["invocation", id, kind @ ("response" | "error")]) => {
            let (id, kind) = ((*id).to_owned(), *kind);
            let Some(body) = body_of(req).await else {
                return answer(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "{\"errorMessage\":\"the body is over 6 MB\"}",
                );
            };
            let done = state.running.lock().ok().and_then(|mut r| r.remove(&id));
            let Some(done) = done else {
                return answer(
                    StatusCode::BAD_REQUEST,
                    "{\"errorMessage\":\"no invocation with that id is running\"}",
                );
            };
            let outcome = if kind == "response" {
                Outcome::Response(body)
            } else {
                Outcome::Error { error_type, body }
            };
            let _ = done.send(outcome);
            answer(StatusCode::ACCEPTED, "{\"status\":\"OK\"}")
        }
        (&Method::POST, ["init", "error"]) => {
            let body = body_of(req).await.unwrap_or_default();
            if let Ok(mut e) = state.init_error.lock() {
                *e = Some(Outcome::InitError { error_type, body });
            }
            state.failed.notify_waiters();
            answer(StatusCode::ACCEPTED, "{\"status\":\"OK\"}")
        }
        _ => answer(
            StatusCode::NOT_FOUND,
            "{\"errorMessage\":\"unknown Runtime API call\"}",
        ),
    }
}

async fn body_of(req: Request<Incoming>) -> Option<Vec<u8>> {
    Limited::new(req.into_body(), MAX_RESPONSE)
        .collect()
        .await
        .ok()
        .map(|b| b.to_bytes().to_vec())
}

/// Holds the runtime's `next` until an invocation is queued, then hands it over.
async fn next(state: &State, arn: &str) -> Answer {
    let inv = loop {
        let arrived = state.arrived.notified();
        if let Some(inv) = state.queue.lock().ok().and_then(|mut q| q.pop_front()) {
            break inv;
        }
        arrived.await;
    };
    let deadline_ms = inv
        .deadline
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    if let Ok(mut r) = state.running.lock() {
        r.insert(inv.id.clone(), inv.done);
    }
    let mut r = Response::new(Full::new(Bytes::from(inv.event)));
    let h = r.headers_mut();
    let mut set = |k: &'static str, v: String| {
        if let Ok(v) = hyper::header::HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    };
    set("lambda-runtime-aws-request-id", inv.id.clone());
    set("lambda-runtime-deadline-ms", deadline_ms.to_string());
    set("lambda-runtime-invoked-function-arn", arn.to_owned());
    set(
        "lambda-runtime-trace-id",
        format!(
            "Root=1-00000000-{};Sampled=0",
            &inv.id.replace('-', "")[..24]
        ),
    );
    set("content-type", "application/json".to_owned());
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// One HTTP/1.1 exchange over a fresh connection: status line, headers and body, as text.
    async fn call(addr: &str, method: &str, path: &str, body: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr)
            .await
            .expect("connects");
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await.expect("sends");
        let mut out = String::new();
        s.read_to_string(&mut out).await.expect("reads");
        out
    }

    fn header<'a>(answer: &'a str, name: &str) -> Option<&'a str> {
        answer.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    #[tokio::test]
    async fn an_event_goes_to_the_runtime_and_its_answer_comes_back() {
        let api = RuntimeApi::start("arn:aws:lambda:us-east-1:123456789012:function:f")
            .await
            .expect("serves");
        let addr = api.address();
        assert!(addr.starts_with("127.0.0.1:"));
        let runtime = tokio::spawn({
            let addr = addr.clone();
            async move {
                let next = call(&addr, "GET", "/2018-06-01/runtime/invocation/next", "").await;
                let id = header(&next, "lambda-runtime-aws-request-id")
                    .expect("id")
                    .to_owned();
                let deadline: u128 = header(&next, "lambda-runtime-deadline-ms")
                    .and_then(|d| d.parse().ok())
                    .expect("deadline");
                assert!(next.ends_with("{\"n\":1}"), "{next}");
                assert!(
                    header(&next, "lambda-runtime-invoked-function-arn")
                        .is_some_and(|a| a.ends_with(":f"))
                );
                let path = format!("/2018-06-01/runtime/invocation/{id}/response");
                let ok = call(&addr, "POST", &path, "done").await;
                assert!(ok.starts_with("HTTP/1.1 202"), "{ok}");
                let again = call(&addr, "POST", &path, "twice").await;
                assert!(again.starts_with("HTTP/1.1 400"), "{again}");
                deadline
            }
        });
        let (_, outcome) = api
            .invoke(b"{\"n\":1}".to_vec(), Duration::from_secs(10))
            .await;
        assert_eq!(outcome, Some(Outcome::Response(b"done".to_vec())));
        let deadline = runtime.await.expect("runtime");
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .expect("now")
            .as_millis();
        assert!(deadline > now && deadline <= now + 10_000);

        // An error, then nothing in time.
        let addr2 = addr.clone();
        tokio::spawn(async move {
            let next = call(&addr2, "GET", "/2018-06-01/runtime/invocation/next", "").await;
            let id = header(&next, "lambda-runtime-aws-request-id")
                .expect("id")
                .to_owned();
            let path = format!("/2018-06-01/runtime/invocation/{id}/error");
            call(&addr2, "POST", &path, "{\"errorMessage\":\"boom\"}").await;
        });
        let (_, outcome) = api.invoke(b"{}".to_vec(), Duration::from_secs(10)).await;
        assert!(
            matches!(outcome, Some(Outcome::Error { body, .. }) if body.ends_with(b"\"boom\"}"))
        );
        let (_, outcome) = api.invoke(b"{}".to_vec(), Duration::from_millis(200)).await;
        assert_eq!(outcome, None);
        assert!(
            call(&addr, "GET", "/elsewhere", "")
                .await
                .starts_with("HTTP/1.1 404")
        );
    }

    #[tokio::test]
    async fn an_init_error_ends_the_invocation_waiting_for_it() {
        let api = RuntimeApi::start("arn").await.expect("serves");
        let addr = api.address();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            call(
                &addr,
                "POST",
                "/2018-06-01/runtime/init/error",
                "{\"errorMessage\":\"no\"}",
            )
            .await;
        });
        let (_, outcome) = api.invoke(b"{}".to_vec(), Duration::from_secs(10)).await;
        assert!(
            matches!(outcome, Some(Outcome::InitError { .. })),
            "{outcome:?}"
        );
        assert!(api.init_error().is_some());
    }
}
