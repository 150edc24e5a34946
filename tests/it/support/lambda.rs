//! An independent Lambda Runtime API: cargo-lambda's emulator (`cargo lambda watch
//! --only-lambda-apis`, from PyPI; `scripts/test.sh` installs it and sets SCAR_CARGO_LAMBDA).
//! The supervisor runs its real Runtime API loop against it; tests invoke through the
//! emulator's Lambda Invoke endpoint, as the AWS SDK would.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running emulator, serving one function.
pub struct RuntimeApi {
    child: Child,
    port: u16,
    function: String,
    _project: tempfile::TempDir,
}

fn binary() -> PathBuf {
    std::env::var_os("SCAR_CARGO_LAMBDA").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv-tools/bin/cargo-lambda"),
        PathBuf::from,
    )
}

impl RuntimeApi {
    /// Starts the emulator for function `function` on a free port and waits until it answers.
    pub fn start(function: &str) -> RuntimeApi {
        let bin = binary();
        assert!(
            bin.exists(),
            "cargo-lambda not found at {}: run ./scripts/test.sh, which installs it",
            bin.display()
        );
        // It reads a Cargo project's metadata even when it builds nothing, and serves the
        // functions its binaries name: give it one whose binary is the function.
        let project = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(project.path().join("src")).expect("src");
        std::fs::write(
            project.path().join("Cargo.toml"),
            format!("[package]\nname = \"{function}\"\nversion = \"0.0.0\"\nedition = \"2021\"\n[workspace]\n"),
        )
        .expect("Cargo.toml");
        std::fs::write(project.path().join("src/main.rs"), "fn main() {}\n").expect("main");
        let port = super::moto::free_port();
        let child = Command::new(&bin)
            .args([
                "lambda",
                "watch",
                "--only-lambda-apis",
                "-A",
                "127.0.0.1",
                "-P",
            ])
            .arg(port.to_string())
            .current_dir(project.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cargo-lambda starts");
        let api = RuntimeApi {
            child,
            port,
            function: function.to_owned(),
            _project: project,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "cargo-lambda did not listen within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        api
    }

    /// `AWS_LAMBDA_RUNTIME_API` for the function run against it.
    pub fn runtime_api(&self) -> String {
        format!("http://127.0.0.1:{}/.rt/{}", self.port, self.function)
    }

    /// Its Lambda API endpoint (`AWS_ENDPOINT_URL` for a Lambda client).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The Lambda environment a runtime needs besides the API (what Lambda sets).
    pub fn lambda_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_LAMBDA_RUNTIME_API", self.runtime_api()),
            ("AWS_LAMBDA_FUNCTION_NAME", self.function.clone()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512".into()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ]
    }

    /// Invokes the function synchronously with `payload` (Lambda's Invoke API, as the SDK
    /// sends it); answers the HTTP status and the body (status 0 and the error when no answer
    /// came within 60 s).
    pub fn invoke(&self, payload: &[u8]) -> (u16, Vec<u8>) {
        match self.try_invoke(payload) {
            Ok(r) => r,
            Err(e) => (0, format!("no answer: {e}").into_bytes()),
        }
    }

    /// The invoking side of the emulator at `port`, for `function`, on its own.
    fn client(port: u16, function: &str) -> Invoker {
        Invoker {
            port,
            function: function.to_owned(),
        }
    }

    fn try_invoke(&self, payload: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
        Self::client(self.port, &self.function).try_invoke(payload)
    }
}

/// What invokes a function through the emulator's Lambda API.
struct Invoker {
    port: u16,
    function: String,
}

impl Invoker {
    fn try_invoke(&self, payload: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(60)))?;
        write!(
            s,
            "POST /2015-03-31/functions/{}/invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.function,
            payload.len()
        )?;
        s.write_all(payload)?;
        let mut r = BufReader::new(s);
        let (line, length) = read_head(&mut r)?;
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let mut body = Vec::new();
        match length {
            Some(n) => {
                body.resize(n, 0);
                r.read_exact(&mut body)?;
            }
            None => {
                r.read_to_end(&mut body)?;
            }
        }
        Ok((status, body))
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A stand-in for API Gateway's REST proxy integration with `*/*` binary media types, in front
/// of the emulator: each HTTP request becomes a proxy event with the body base64-encoded, and
/// the function's proxy answer goes back as its status and decoded bytes. (API Gateway itself
/// exists only on AWS; cargo-lambda's function URLs do not answer in its `--only-lambda-apis`
/// mode.)
pub struct ApiGateway {
    /// `http://127.0.0.1:PORT/`.
    pub url: String,
}

/// A message's first line and its `Content-Length`, the head read.
fn read_head(r: &mut BufReader<TcpStream>) -> std::io::Result<(String, Option<usize>)> {
    let mut line = String::new();
    r.read_line(&mut line)?;
    let mut length = None;
    loop {
        let mut h = String::new();
        r.read_line(&mut h)?;
        if h == "\r\n" || h.is_empty() {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse::<usize>().ok();
        }
    }
    Ok((line, length))
}

fn read_request(r: &mut BufReader<TcpStream>) -> std::io::Result<(String, String, Vec<u8>)> {
    let (line, length) = read_head(r)?;
    let length = length.unwrap_or(0);
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("GET").to_owned();
    let path = parts.next().unwrap_or("/").to_owned();
    let mut body = vec![0; length];
    r.read_exact(&mut body)?;
    Ok((method, path, body))
}

impl ApiGateway {
    /// Serves requests for `api`'s function until the test process ends.
    pub fn start(api: &RuntimeApi) -> ApiGateway {
        use base64::Engine as _;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
        let url = format!("http://{}/", listener.local_addr().expect("addr"));
        let (port, function) = (api.port, api.function.clone());
        std::thread::spawn(move || {
            let b64 = base64::engine::general_purpose::STANDARD;
            for conn in listener.incoming().flatten() {
                let Ok(mut writer) = conn.try_clone() else {
                    continue;
                };
                let mut reader = BufReader::new(conn);
                let Ok((method, path, body)) = read_request(&mut reader) else {
                    continue;
                };
                let event = serde_json::json!({
                    "httpMethod": method, "path": path, "requestContext": {"stage": "scar"},
                    "headers": {}, "body": b64.encode(&body), "isBase64Encoded": true
                });
                let lambda = RuntimeApi::client(port, &function);
                let (status, answer) = match lambda.try_invoke(event.to_string().as_bytes()) {
                    Ok((200, a)) => {
                        let a: serde_json::Value = serde_json::from_slice(&a).unwrap_or_default();
                        let body = a["body"].as_str().unwrap_or_default();
                        let bytes = if a["isBase64Encoded"] == true {
                            b64.decode(body).unwrap_or_default()
                        } else {
                            body.as_bytes().to_vec()
                        };
                        (a["statusCode"].as_u64().unwrap_or(502), bytes)
                    }
                    _ => (502, b"Internal server error".to_vec()),
                };
                let _ = write!(
                    writer,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    answer.len()
                );
                let _ = writer.write_all(&answer);
            }
        });
        ApiGateway { url }
    }
}
