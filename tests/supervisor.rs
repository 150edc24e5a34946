//! scar-supervisor in local mode (`--event --function`), against moto's S3 and Batch, with
//! real shell scripts: inputs staged, SCAR's environment contract, outputs uploaded to every
//! matching destination and only those, a failing script's status and stderr tail, an API
//! Gateway request with a binary body, the timeout threshold, Batch delegation, and the
//! Lambda Runtime API loop against a stand-in for the Runtime API (the real one exists only
//! inside Lambda).

mod support;

use std::path::Path;
use std::process::{Command, Output};

use base64::Engine as _;
use serde_json::{Value, json};

use support::moto::{Moto, s3};

fn supervisor(moto: &Moto, dir: &Path, event: &Value) -> (Output, Value) {
    std::fs::write(dir.join("event.json"), event.to_string()).expect("write event");
    let out = Command::new(env!("CARGO_BIN_EXE_scar-supervisor"))
        .args(["--event", "event.json", "--function", "function.yaml"])
        .args(["--request-id", "req-1"])
        .current_dir(dir)
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env_remove("AWS_PROFILE")
        .env_remove("SCAR_CONFIG")
        .output()
        .expect("scar-supervisor runs");
    let response = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON response ({e}):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out, response)
}

fn function(dir: &Path, spec: &str, script: &str) {
    std::fs::write(
        dir.join("function.yaml"),
        format!(
            "apiVersion: scar/v1alpha1\nkind: Function\nmetadata:\n  name: thumbs\nspec:\n  image: alpine:3.20\n  script: run.sh\n{spec}"
        ),
    )
    .expect("write");
    std::fs::write(dir.join("run.sh"), script).expect("write");
}

fn s3_event(records: &[(&str, &str)]) -> Value {
    json!({"Records": records.iter().map(|(b, k)| json!({
        "eventSource": "aws:s3",
        "s3": {"bucket": {"name": b}, "object": {"key": k}}
    })).collect::<Vec<_>>()})
}

async fn keys(client: &aws_sdk_s3::Client, bucket: &str) -> Vec<String> {
    let mut k: Vec<String> = client
        .list_objects_v2()
        .bucket(bucket)
        .send()
        .await
        .expect("list")
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect();
    k.sort();
    k
}

async fn body(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> String {
    let o = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("s3://{bucket}/{key}: {e}"));
    String::from_utf8_lossy(&o.body.collect().await.expect("body").into_bytes()).into_owned()
}

/// Puts an input object in `sup-in`.
async fn put(client: &aws_sdk_s3::Client, key: &str, body: &[u8]) {
    client
        .put_object()
        .bucket("sup-in")
        .key(key)
        .body(body.to_vec().into())
        .send()
        .await
        .expect("put");
}

async fn buckets(moto: &Moto, names: &[&str]) -> aws_sdk_s3::Client {
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

const OUTPUTS: &str = "  output:
    - bucket: sup-out
      prefix: all/
    - bucket: sup-out
      prefix: json/
      filter:
        suffix: [.json]
";

#[tokio::test(flavor = "multi_thread")]
async fn every_record_is_staged_run_and_uploaded_to_each_matching_destination() {
    let moto = Moto::start();
    let client = buckets(&moto, &["sup-in", "sup-out"]).await;
    put(&client, "in/a.txt", b"hello").await;
    put(&client, "in/b c.txt", b"world").await;
    let dir = tempfile::tempdir().expect("tempdir");
    function(
        dir.path(),
        OUTPUTS,
        r#"set -e
name=$(basename "$INPUT_FILE_PATH")
tr a-z A-Z < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/$name.upper"
mkdir -p "$TMP_OUTPUT_DIR/meta"
printf '{"bucket":"%s","key":"%s","request":"%s","function":"%s","stack":"%s"}' \
  "$SCAR_INPUT_BUCKET" "$SCAR_INPUT_KEY" "$SCAR_REQUEST_ID" "$SCAR_FUNCTION" "$SCAR_STACK" \
  > "$TMP_OUTPUT_DIR/meta/$name.json"
echo "processed $name"
"#,
    );
    let (out, response) = supervisor(
        &moto,
        dir.path(),
        &s3_event(&[("sup-in", "in/a.txt"), ("sup-in", "in/b+c.txt")]),
    );
    assert!(out.status.success(), "{response:#}");
    assert_eq!(response["ok"], true);
    assert_eq!(response["results"].as_array().map(Vec::len), Some(2));
    assert_eq!(response["results"][1]["input"], "s3://sup-in/in/b c.txt");
    assert_eq!(
        keys(&client, "sup-out").await,
        [
            "all/a.txt.upper",
            "all/b c.txt.upper",
            "all/meta/a.txt.json",
            "all/meta/b c.txt.json",
            "json/meta/a.txt.json",
            "json/meta/b c.txt.json",
        ],
        "every file to `all/`, only the .json files to `json/`"
    );
    assert_eq!(body(&client, "sup-out", "all/a.txt.upper").await, "HELLO");
    let meta: Value =
        serde_json::from_str(&body(&client, "sup-out", "json/meta/b c.txt.json").await)
            .expect("meta json");
    assert_eq!(
        meta,
        json!({"bucket": "sup-in", "key": "in/b c.txt", "request": "req-1", "function": "thumbs", "stack": "local"})
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("processed a.txt"),
        "the script's output is streamed to the log"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_script_reports_its_status_and_stderr_tail_and_keeps_its_outputs() {
    let moto = Moto::start();
    let client = buckets(&moto, &["sup-in", "sup-out"]).await;
    put(&client, "in/a.txt", b"x").await;
    let dir = tempfile::tempdir().expect("tempdir");
    function(
        dir.path(),
        OUTPUTS,
        "echo partial > \"$TMP_OUTPUT_DIR/partial.log\"\nfor i in 1 2 3; do echo \"step $i failed\" >&2; done\nexit 3\n",
    );
    let (out, response) = supervisor(&moto, dir.path(), &s3_event(&[("sup-in", "in/a.txt")]));
    assert_eq!(out.status.code(), Some(1));
    let r = &response["results"][0];
    assert_eq!(r["exit_status"], 3);
    assert_eq!(r["ok"], false);
    assert_eq!(r["stderr_tail"][2], "step 3 failed");
    assert_eq!(keys(&client, "sup-out").await, ["all/partial.log"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_api_gateway_request_round_trips_a_binary_body() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().expect("tempdir");
    function(
        dir.path(),
        "",
        "cat \"$INPUT_FILE_PATH\"\nprintf '%s %s' \"$SCAR_HTTP_METHOD\" \"$SCAR_HTTP_PATH\"\n",
    );
    let bytes: Vec<u8> = (0..=255).collect();
    let b64 = base64::engine::general_purpose::STANDARD;
    let event = json!({
        "httpMethod": "POST", "path": "/convert", "requestContext": {"requestId": "r"},
        "headers": {"Content-Type": "application/octet-stream"},
        "body": b64.encode(&bytes), "isBase64Encoded": true
    });
    let (out, response) = supervisor(&moto, dir.path(), &event);
    assert!(out.status.success(), "{response:#}");
    assert_eq!(response["statusCode"], 200);
    assert_eq!(response["isBase64Encoded"], true);
    let got = b64
        .decode(response["body"].as_str().expect("body"))
        .expect("base64");
    let mut want = bytes.clone();
    want.extend_from_slice(b"POST /convert");
    assert_eq!(got, want, "every byte back, then the script's own output");

    function(dir.path(), "", "echo bad input >&2\nexit 2\n");
    let (out, response) = supervisor(&moto, dir.path(), &event);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(response["statusCode"], 500);
    assert_eq!(response["headers"]["x-scar-exit-status"], "2");
}

/// A compute environment, queue and definition for function `thumbs` of stack `local`.
async fn batch_target(moto: &Moto) -> aws_sdk_batch::Client {
    use aws_sdk_batch::types as bt;
    let config = moto.sdk().await;
    let iam = aws_sdk_iam::Client::new(&config);
    let role = iam
        .create_role()
        .role_name("batch-service")
        .assume_role_policy_document("{}")
        .send()
        .await
        .expect("role");
    let (subnet, group) = moto.default_network();
    let batch = aws_sdk_batch::Client::new(&config);
    batch
        .create_compute_environment()
        .compute_environment_name("scar-local-thumbs")
        .r#type(bt::CeType::Managed)
        .state(bt::CeState::Enabled)
        .service_role(role.role().map(|r| r.arn()).unwrap_or_default())
        .compute_resources(
            bt::ComputeResource::builder()
                .r#type(bt::CrType::Fargate)
                .maxv_cpus(2)
                .subnets(subnet)
                .security_group_ids(group)
                .build(),
        )
        .send()
        .await
        .expect("environment");
    batch
        .create_job_queue()
        .job_queue_name("scar-local-thumbs")
        .priority(1)
        .state(bt::JqState::Enabled)
        .compute_environment_order(
            bt::ComputeEnvironmentOrder::builder()
                .order(1)
                .compute_environment(
                    "arn:aws:batch:us-east-1:123456789012:compute-environment/scar-local-thumbs",
                )
                .build(),
        )
        .send()
        .await
        .expect("queue");
    let need = |kind, value: &str| {
        bt::ResourceRequirement::builder()
            .r#type(kind)
            .value(value)
            .build()
    };
    batch
        .register_job_definition()
        .job_definition_name("scar-local-thumbs")
        .r#type(bt::JobDefinitionType::Container)
        .container_properties(
            bt::ContainerProperties::builder()
                .image("alpine:3.20")
                .resource_requirements(need(bt::ResourceType::Vcpu, "1"))
                .resource_requirements(need(bt::ResourceType::Memory, "2048"))
                .build(),
        )
        .send()
        .await
        .expect("definition");
    batch
}

async fn job_event(batch: &aws_sdk_batch::Client, id: &str) -> String {
    let jobs = batch
        .describe_jobs()
        .jobs(id)
        .send()
        .await
        .expect("describe");
    let job = jobs.jobs().first().expect("the job exists");
    assert_eq!(
        job.job_queue(),
        Some("arn:aws:batch:us-east-1:123456789012:job-queue/scar-local-thumbs")
    );
    job.container()
        .map(|c| c.environment())
        .unwrap_or_default()
        .iter()
        .find(|kv| kv.name() == Some("SCAR_EVENT"))
        .and_then(|kv| kv.value())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn batch_mode_submits_every_event_to_the_functions_queue() {
    let moto = Moto::start();
    let batch = batch_target(&moto).await;
    let dir = tempfile::tempdir().expect("tempdir");
    function(dir.path(), "  execution: batch\n", "echo never runs here\n");
    let event = s3_event(&[("sup-in", "in/video.mp4")]);
    let (out, response) = supervisor(&moto, dir.path(), &event);
    assert!(out.status.success(), "{response:#}");
    let id = response["delegated"]["job_id"].as_str().expect("a job id");
    let handed: Value = serde_json::from_str(&job_event(&batch, id).await).expect("event JSON");
    assert_eq!(handed, event, "the job gets the event as it came");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_timeout_threshold_stops_the_script_uploads_partial_results_and_lambda_batch_delegates()
{
    let moto = Moto::start();
    let client = buckets(&moto, &["sup-in", "sup-out"]).await;
    put(&client, "in/a.txt", b"x").await;
    let batch = batch_target(&moto).await;
    let dir = tempfile::tempdir().expect("tempdir");
    // 3 s timeout, 1 s kept back: the script is stopped after 2 s.
    function(
        dir.path(),
        &format!("  timeout: 3\n  timeoutThreshold: 1\n  execution: lambda-batch\n{OUTPUTS}"),
        "echo first half > \"$TMP_OUTPUT_DIR/part-1.log\"\nsleep 30\necho never > \"$TMP_OUTPUT_DIR/part-2.log\"\n",
    );
    let started = std::time::Instant::now();
    let (_, response) = supervisor(&moto, dir.path(), &s3_event(&[("sup-in", "in/a.txt")]));
    let took = started.elapsed();
    assert!(took < std::time::Duration::from_secs(10), "{took:?}");
    let r = &response["results"][0];
    assert_eq!(r["timed_out"], true, "{response:#}");
    assert_eq!(keys(&client, "sup-out").await, ["all/part-1.log"]);
    let id = r["delegated_job_id"].as_str().expect("delegated to Batch");
    assert!(job_event(&batch, id).await.contains("in/a.txt"));
    assert_eq!(
        response["ok"], true,
        "work handed to Batch is not a failure"
    );
}

/// A stand-in for Lambda's Runtime API on loopback: hands out one event as invocation
/// `req-9`, records what the runtime posts back, and holds every later poll.
struct FakeRuntimeApi {
    port: u16,
    posted: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
}

fn read_http(reader: &mut std::io::BufReader<std::net::TcpStream>) -> Option<(String, String)> {
    use std::io::{BufRead, Read};
    let mut line = String::new();
    reader.read_line(&mut line).ok().filter(|n| *n > 0)?;
    let target = line
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    let (mut length, mut chunked) = (0usize, false);
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let lower = h.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
            chunked = true;
        }
        if h == "\r\n" || h.is_empty() {
            break;
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim(), 16).ok()?;
            let mut chunk = vec![0u8; n + 2];
            reader.read_exact(&mut chunk).ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else {
        body.resize(length, 0);
        reader.read_exact(&mut body).ok()?;
    }
    Some((target, String::from_utf8_lossy(&body).into_owned()))
}

impl FakeRuntimeApi {
    fn start(event: Value) -> FakeRuntimeApi {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
        let port = listener.local_addr().expect("addr").port();
        let posted = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let handed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sink = posted.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (sink, handed, event) = (sink.clone(), handed.clone(), event.clone());
                std::thread::spawn(move || {
                    let Ok(mut writer) = conn.try_clone() else {
                        return;
                    };
                    let mut reader = std::io::BufReader::new(conn);
                    while let Some((target, body)) = read_http(&mut reader) {
                        if target.ends_with("/runtime/invocation/next") {
                            if handed.swap(true, std::sync::atomic::Ordering::SeqCst) {
                                std::thread::sleep(std::time::Duration::from_secs(600));
                                return;
                            }
                            let deadline = std::time::SystemTime::now()
                                .duration_since(std::time::UNIX_EPOCH)
                                .map_or(0, |d| d.as_millis())
                                + 60_000;
                            let payload = event.to_string();
                            let _ = write!(
                                writer,
                                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: req-9\r\nLambda-Runtime-Deadline-Ms: {deadline}\r\nLambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:thumbs\r\nLambda-Runtime-Trace-Id: Root=1-5759e988-bd862e3fe1be46a994272793\r\nContent-Length: {}\r\n\r\n{payload}",
                                payload.len()
                            );
                        } else {
                            if let Ok(mut p) = sink.lock() {
                                p.push((target, body));
                            }
                            let _ = write!(
                                writer,
                                "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}"
                            );
                        }
                    }
                });
            }
        });
        FakeRuntimeApi { port, posted }
    }

    /// Runs `scar-supervisor` as Lambda would, until it posted a result (or 30 s).
    fn invoke(&self, moto: &Moto, config: &scar::supervisor::Config) -> (String, Value) {
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut child = Command::new(env!("CARGO_BIN_EXE_scar-supervisor"))
            .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{}", self.port))
            .env("AWS_LAMBDA_FUNCTION_NAME", "thumbs")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env(
                "SCAR_CONFIG",
                b64.encode(serde_json::to_vec(config).expect("config json")),
            )
            .env("AWS_ENDPOINT_URL", &moto.endpoint)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env("NO_PROXY", "127.0.0.1,localhost")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("scar-supervisor starts");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let posted = loop {
            if let Some(p) = self.posted.lock().ok().and_then(|p| p.first().cloned()) {
                break p;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "nothing posted within 30 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let _ = child.kill();
        let _ = child.wait();
        (
            posted.0,
            serde_json::from_str(&posted.1).unwrap_or(Value::String(posted.1)),
        )
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_lambda_runtime_api_loop_answers_an_invocation_and_reports_a_failed_one() {
    let moto = Moto::start();
    let client = buckets(&moto, &["sup-in", "sup-out"]).await;
    put(&client, "in/a.txt", b"lambda").await;
    let dir = tempfile::tempdir().expect("tempdir");
    function(
        dir.path(),
        OUTPUTS,
        "tr a-z A-Z < \"$INPUT_FILE_PATH\" > \"$TMP_OUTPUT_DIR/out.txt\"\n",
    );
    let config = scar::supervisor::Config::from_manifest(&dir.path().join("function.yaml"), "demo")
        .expect("config");
    let api = FakeRuntimeApi::start(s3_event(&[("sup-in", "in/a.txt")]));
    let (path, answer) = api.invoke(&moto, &config);
    assert_eq!(path, "POST /2018-06-01/runtime/invocation/req-9/response");
    assert_eq!(answer["ok"], true, "{answer:#}");
    assert_eq!(
        answer["results"][0]["uploaded"][0],
        "s3://sup-out/all/out.txt"
    );
    assert_eq!(body(&client, "sup-out", "all/out.txt").await, "LAMBDA");

    function(dir.path(), OUTPUTS, "echo no such model >&2\nexit 4\n");
    let config = scar::supervisor::Config::from_manifest(&dir.path().join("function.yaml"), "demo")
        .expect("config");
    let api = FakeRuntimeApi::start(s3_event(&[("sup-in", "in/a.txt")]));
    let (path, answer) = api.invoke(&moto, &config);
    assert_eq!(path, "POST /2018-06-01/runtime/invocation/req-9/error");
    let message = answer["errorMessage"].as_str().unwrap_or_default();
    assert!(
        message.contains("no such model") && message.contains("\"exit_status\":4"),
        "{answer:#}"
    );
}
