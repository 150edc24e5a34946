//! A real AWS-compatible server for tests: moto on loopback, started per test, stopped on drop.
//!
//! The server binary comes from `SCAR_MOTO_SERVER`, else `.venv-moto/bin/moto_server` in the
//! package (`scripts/test.sh` installs it). Each test gets its own server on a free port, so
//! tests run in parallel without sharing state.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A running moto server.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

/// A free loopback port.
pub fn free_port() -> u16 {
    // The kernel may hand a port just released to the next caller: two servers started at
    // once by two tests would then share one (the second fails to bind, and its test talks to
    // the first's). A port is handed out once per test process.
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port on loopback");
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

fn server_binary() -> PathBuf {
    std::env::var_os("SCAR_MOTO_SERVER").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-moto/bin/moto_server"),
        PathBuf::from,
    )
}

impl Moto {
    /// Starts a server and waits until it answers.
    pub fn start() -> Moto {
        Moto::start_with_env(&[])
    }

    /// [`Moto::start`], with variables in the server's environment (such as
    /// `INITIAL_NO_AUTH_ACTION_COUNT`, after which moto checks IAM policies).
    pub fn start_with_env(env: &[(&str, &str)]) -> Moto {
        let bin = server_binary();
        assert!(
            bin.exists(),
            "moto_server not found at {}: run ./scripts/test.sh, which installs it",
            bin.display()
        );
        let port = free_port();
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let mut moto = moto;
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            // Another process on the port would answer for a server that could not bind it.
            if let Ok(Some(status)) = moto.child.try_wait() {
                panic!("moto_server on port {port} ended at start ({status})");
            }
            if http_get(port, "/moto-api/").is_some() {
                return moto;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("moto did not answer on port {port} within 30 s");
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.endpoint
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0)
    }

    /// Runs `scar` against this server (or `endpoint`, such as a proxy in front of it).
    pub fn scar_via(&self, endpoint: &str, dir: &Path, args: &[&str]) -> Output {
        scar_command(endpoint, dir, args)
            .output()
            .expect("scar runs")
    }

    /// Runs `scar` against this server.
    pub fn scar(&self, dir: &Path, args: &[&str]) -> Output {
        self.scar_via(&self.endpoint, dir, args)
    }

    /// The default VPC's first default subnet and its `default` security group: moto checks
    /// that a Batch compute environment's subnets and groups exist in its EC2. Read through
    /// EC2's Query API (moto ignores the signature), so the tests need no EC2 SDK crate.
    pub fn default_network(&self) -> (String, String) {
        let query = |q: &str, tag: &str| {
            let auth = "Authorization: AWS4-HMAC-SHA256 Credential=test/20250101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0";
            let body = http_request(self.port(), &format!("/?{q}&Version=2016-11-15"), auth)
                .expect("moto answers EC2 queries");
            let open = format!("<{tag}>");
            let start = body.find(&open).expect("an id in the answer") + open.len();
            let end = body[start..].find('<').expect("closing tag") + start;
            body[start..end].to_owned()
        };
        (
            query(
                "Action=DescribeSubnets&Filter.1.Name=default-for-az&Filter.1.Value.1=true",
                "subnetId",
            ),
            query(
                "Action=DescribeSecurityGroups&Filter.1.Name=group-name&Filter.1.Value.1=default",
                "groupId",
            ),
        )
    }

    /// An SDK configuration pointed at this server, for arranging and checking from tests.
    pub async fn sdk(&self) -> aws_config::SdkConfig {
        sdk_config(&self.endpoint).await
    }
}

/// The `scar` command with dummy credentials pointed at `endpoint`.
pub fn scar_command(endpoint: &str, dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_scar"));
    c.args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env(
            "SCAR_REGISTRY_ENDPOINTS",
            super::registry::endpoints(super::registry::shared()),
        )
        .env("SCAR_CACHE_DIR", super::registry::cache_dir())
        .env_remove("AWS_PROFILE")
        .env_remove("SCAR_LOG");
    c
}

/// An SDK configuration for `endpoint` with dummy credentials.
pub async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_sts::config::Credentials::new(
            "test", "test", None, None, "static",
        ))
        .load()
        .await
}

/// Makes buckets `names` in `moto`; returns an S3 client for it.
pub async fn buckets(moto: &Moto, names: &[&str]) -> aws_sdk_s3::Client {
    let client = s3(&moto.sdk().await);
    for b in names {
        client
            .create_bucket()
            .bucket(*b)
            .send()
            .await
            .expect("bucket");
    }
    client
}

/// An S3 client with path-style addressing, as the emulator needs.
pub fn s3(config: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(config)
            .force_path_style(true)
            .build(),
    )
}

fn http_get(port: u16, path: &str) -> Option<String> {
    http_request(port, path, "X-Scar-Test: 1")
}

fn http_request(port: u16, path: &str, header: &str) -> Option<String> {
    let mut s =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200))
            .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{header}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.starts_with("HTTP/1.1 200").then_some(out)
}

impl Moto {
    /// The log streams of `group`, read with a plain JSON request: moto writes the streams of
    /// the invocations it attempts with fractional timestamps, which the SDK refuses to read.
    pub fn log_stream_count(&self, group: &str) -> usize {
        let body = serde_json::json!({ "logGroupName": group }).to_string();
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port())) else {
            return 0;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let sent = write!(
            s,
            "POST / HTTP/1.1\r\nHost: logs.us-east-1.amazonaws.com\r\nContent-Type: application/x-amz-json-1.1\r\nX-Amz-Target: Logs_20140328.DescribeLogStreams\r\nAuthorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/logs/aws4_request, SignedHeaders=host, Signature=0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let mut out = String::new();
        if sent.is_err() || s.read_to_string(&mut out).is_err() {
            return 0;
        }
        out.split_once("\r\n\r\n")
            .and_then(|(_, b)| serde_json::from_str::<serde_json::Value>(b).ok())
            .and_then(|v| v["logStreams"].as_array().map(Vec::len))
            .unwrap_or(0)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Copies a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read dir").flatten() {
        let p = e.path();
        let dest = to.join(e.file_name());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).expect("copy");
        }
    }
}
