//! A small fault-injecting HTTP proxy between scar and moto, for the failure tests: it
//! forwards each request to the emulator, except that it can answer some requests with
//! throttling or server errors, or hang at the Nth request (before or after forwarding it) so
//! the test can kill scar at a known point.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// What the proxy does to requests.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Forward every request.
    None,
    /// Answer every `n`th request with 429 (odd faults) or 503 (even faults) instead.
    Every(usize),
    /// Hold request `n` without forwarding it.
    HangBefore(usize),
    /// Forward request `n`, then hold the answer.
    HangAfter(usize),
    /// Forward every request after this many milliseconds: a model of the network latency of
    /// a real AWS endpoint, for benchmarks.
    Delay(u64),
    /// Forward the `n`th request whose log line contains the text, then close the connection
    /// without its answer: a write that happened, whose answer was lost on the way back.
    DropAnswer(&'static str, usize),
    /// Delay every request by this many milliseconds, and drop the answer of the `n`th
    /// request whose log line contains the text.
    DelayAndDropAnswer(u64, &'static str, usize),
}

impl Fault {
    /// Six kill points spread over the writes of an apply of `total` requests whose first
    /// `reads` are reads, alternately holding the request before and after the emulator saw it.
    pub fn spread(total: usize, reads: usize) -> Vec<Fault> {
        (1..=6)
            .map(|i| {
                let k = reads + i * (total - reads) / 7;
                if i % 2 == 0 {
                    Fault::HangAfter(k)
                } else {
                    Fault::HangBefore(k)
                }
            })
            .collect()
    }
}

/// A running proxy.
pub struct Proxy {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// Requests seen.
    pub requests: Arc<AtomicUsize>,
    /// Faults injected.
    pub injected: Arc<AtomicUsize>,
    /// Set once the proxy holds the request it was told to hang on.
    pub hanging: Arc<AtomicBool>,
    /// One line per request: method, path, `X-Amz-Target`, the query-protocol `Action` and a
    /// JSON body.
    pub log: Arc<std::sync::Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    upstream: u16,
}

impl Proxy {
    /// Starts a proxy to the server on `upstream` (a loopback port).
    pub fn start(upstream: u16, fault: Fault) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy listener");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let p = Proxy {
            endpoint: format!("http://127.0.0.1:{port}"),
            requests: Arc::new(AtomicUsize::new(0)),
            injected: Arc::new(AtomicUsize::new(0)),
            hanging: Arc::new(AtomicBool::new(false)),
            log: Arc::new(std::sync::Mutex::new(Vec::new())),
            stop: Arc::new(AtomicBool::new(false)),
            upstream,
        };
        let log = p.log.clone();
        let (requests, injected, hanging, stop) = (
            p.requests.clone(),
            p.injected.clone(),
            p.hanging.clone(),
            p.stop.clone(),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let (requests, injected, hanging, stop) = (
                            requests.clone(),
                            injected.clone(),
                            hanging.clone(),
                            stop.clone(),
                        );
                        let log = log.clone();
                        std::thread::spawn(move || {
                            let _ = serve(
                                client, upstream, fault, &requests, &injected, &hanging, &stop,
                                &log,
                            );
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        p
    }
}

impl Proxy {
    /// Runs `scar ARGS` in `dir` through this proxy and kills it as soon as the proxy holds
    /// the request it was told to hang on (or after 30 s). True if that point was reached.
    ///
    /// The killed run holds the stack's lock, as a crashed holder would; this breaks it the way
    /// an operator's `scar unlock` does (deleting the lock records), so the next run starts at
    /// once. (Waiting for a lease to run out is tests/it/lock.rs's subject; a lease short enough
    /// to wait for here would be lost to a busy emulator's slow answers.)
    pub fn kill_at_hang(&self, dir: &std::path::Path, args: &[&str]) -> bool {
        let log = tempfile::NamedTempFile::new().expect("a log file");
        let mut child = super::moto::scar_command(&self.endpoint, dir, args)
            .stdout(std::process::Stdio::null())
            .stderr(log.reopen().expect("the log file"))
            .spawn()
            .expect("scar starts");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !self.hanging.load(Ordering::SeqCst) && std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let reached = self.hanging.load(Ordering::SeqCst);
        let _ = child.kill();
        let _ = child.wait();
        if !reached {
            // Why the run ended before the point: its own words.
            eprintln!(
                "the run ended before the kill point:\n{}",
                std::fs::read_to_string(log.path()).unwrap_or_default()
            );
        }
        break_locks(self.upstream);
        reached
    }
}

/// Deletes every stack lock in moto on `port` (the lock bucket's `locks/` records), as
/// `scar unlock` would, with plain requests to the emulator.
fn break_locks(port: u16) {
    let bucket = "scar-locks-123456789012-us-east-1";
    let ask = |request: String| -> String {
        let Ok(mut c) = TcpStream::connect(("127.0.0.1", port)) else {
            return String::new();
        };
        let _ = c.write_all(request.as_bytes());
        let mut answer = String::new();
        let _ = c.read_to_string(&mut answer);
        answer
    };
    let listing = ask(format!(
        "GET /{bucket}?list-type=2&prefix=locks/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    ));
    for key in listing
        .split("<Key>")
        .skip(1)
        .filter_map(|k| k.split("</Key>").next())
    {
        // moto refuses an anonymous delete; it does not check the signature itself.
        ask(format!(
            "DELETE /{bucket}/{key} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0\r\nConnection: close\r\n\r\n"
        ));
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn read_request(reader: &mut BufReader<TcpStream>) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if lower.starts_with("connection:") {
            continue;
        }
        if line == "\r\n" {
            head.extend_from_slice(b"Connection: close\r\n\r\n");
            break;
        }
        head.extend_from_slice(line.as_bytes());
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    head.extend_from_slice(&body);
    Ok(head)
}

fn hold(stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The summary line of a request for the log.
fn describe(request: &[u8]) -> String {
    let text = String::from_utf8_lossy(request);
    let first = text.lines().next().unwrap_or_default();
    let mut parts = first.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let target = text
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("x-amz-target:")
                .then(|| l[13..].trim().to_owned())
        })
        .unwrap_or_default();
    let action = text
        .split(['&', '?', '\n'])
        .find_map(|p| p.trim().strip_prefix("Action=").map(str::to_owned))
        .unwrap_or_default();
    // A JSON body (REST-JSON services such as Batch) ends the line, so a test can check what
    // was asked for.
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.trim())
        .filter(|b| b.starts_with('{'))
        .unwrap_or_default();
    format!("{method} {path} {target} {action} {body}")
}

#[allow(
    clippy::too_many_arguments,
    reason = "the shared counters of one proxy"
)]
fn serve(
    client: TcpStream,
    upstream: u16,
    fault: Fault,
    requests: &AtomicUsize,
    injected: &AtomicUsize,
    hanging: &AtomicBool,
    stop: &AtomicBool,
    log: &std::sync::Mutex<Vec<String>>,
) -> std::io::Result<()> {
    client.set_nonblocking(false)?;
    let mut writer = client.try_clone()?;
    let mut reader = BufReader::new(client);
    let request = read_request(&mut reader)?;
    let line = describe(&request);
    if let Ok(mut l) = log.lock() {
        l.push(line.clone());
    }
    let n = requests.fetch_add(1, Ordering::SeqCst) + 1;
    match fault {
        Fault::Every(k) if k > 0 && n.is_multiple_of(k) => {
            let i = injected.fetch_add(1, Ordering::SeqCst);
            let answer = if i.is_multiple_of(2) {
                "HTTP/1.1 429 Too Many Requests\r\nx-amzn-ErrorType: TooManyRequestsException\r\nContent-Type: application/json\r\nContent-Length: 27\r\nConnection: close\r\n\r\n{\"message\":\"Rate exceeded\"}"
            } else {
                "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            };
            writer.write_all(answer.as_bytes())?;
            return Ok(());
        }
        Fault::HangBefore(k) if n == k => {
            hanging.store(true, Ordering::SeqCst);
            hold(stop);
            return Ok(());
        }
        _ => {}
    }
    if let Fault::Delay(ms) | Fault::DelayAndDropAnswer(ms, _, _) = fault {
        std::thread::sleep(Duration::from_millis(ms));
    }
    let drop_answer = match fault {
        Fault::DropAnswer(text, k) | Fault::DelayAndDropAnswer(_, text, k)
            if line.contains(text) =>
        {
            injected.fetch_add(1, Ordering::SeqCst) + 1 == k
        }
        _ => false,
    };
    let mut up = TcpStream::connect(("127.0.0.1", upstream))?;
    up.write_all(&request)?;
    let mut response = Vec::new();
    up.read_to_end(&mut response)?;
    if drop_answer {
        hanging.store(true, Ordering::SeqCst);
        return Ok(());
    }
    if matches!(fault, Fault::HangAfter(k) if n == k) {
        hanging.store(true, Ordering::SeqCst);
        hold(stop);
        return Ok(());
    }
    writer.write_all(&response)?;
    Ok(())
}
