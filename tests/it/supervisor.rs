//! scar-supervisor in local mode: the static binary that goes into images, with the
//! configuration `scar image config` prints for a stack the test writes, against moto's S3,
//! Batch, SSM and Secrets Manager, a second moto standing in for MinIO, and a real WebDAV
//! server (wsgidav), with real shell scripts: inputs staged, SCAR's environment contract,
//! outputs uploaded to every matching destination on every provider and only those, a lost
//! output failing the invocation, secrets resolved and never shown, the image's own command,
//! every byte value over HTTP, the timeout threshold, Batch delegation (multi-node too), and
//! inputs and outputs larger than one part streamed.

use crate::support;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::support::moto::{Moto, buckets, s3};
use crate::support::supervisor::{Stack, local, log};

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

async fn body(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Vec<u8> {
    let o = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("s3://{bucket}/{key}: {e}"));
    o.body.collect().await.expect("body").into_bytes().to_vec()
}

async fn text(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> String {
    String::from_utf8_lossy(&body(client, bucket, key).await).into_owned()
}

/// Puts an input object in `sup-in`.
async fn put(client: &aws_sdk_s3::Client, key: &str, body: Vec<u8>) {
    client
        .put_object()
        .bucket("sup-in")
        .key(key)
        .body(body.into())
        .send()
        .await
        .expect("put");
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
    put(&client, "in/a.txt", b"hello".to_vec()).await;
    put(&client, "in/b c.txt", b"world".to_vec()).await;
    let stack = Stack::new("");
    stack.function(
        "thumbs",
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
    let (out, response) = local(
        &moto.endpoint,
        &stack.config("thumbs"),
        &s3_event(&[("sup-in", "in/a.txt"), ("sup-in", "in/b+c.txt")]),
        &[],
    );
    assert!(out.status.success(), "{response:#}\n{}", log(&out));
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
    assert_eq!(text(&client, "sup-out", "all/a.txt.upper").await, "HELLO");
    let meta: Value =
        serde_json::from_str(&text(&client, "sup-out", "json/meta/b c.txt.json").await)
            .expect("meta json");
    assert_eq!(
        meta,
        json!({"bucket": "sup-in", "key": "in/b c.txt", "request": "req-1", "function": "thumbs", "stack": "local"})
    );
    assert!(
        log(&out).contains("processed a.txt"),
        "the script's output is streamed to the log"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_script_reports_its_status_and_stderr_tail_and_keeps_its_outputs() {
    let moto = Moto::start();
    let client = buckets(&moto, &["sup-in", "sup-out"]).await;
    put(&client, "in/a.txt", b"x".to_vec()).await;
    let stack = Stack::new("");
    stack.function(
        "thumbs",
        OUTPUTS,
        "echo partial > \"$TMP_OUTPUT_DIR/partial.log\"\nfor i in 1 2 3; do echo \"step $i failed\" >&2; done\nexit 3\n",
    );
    let (out, response) = local(
        &moto.endpoint,
        &stack.config("thumbs"),
        &s3_event(&[("sup-in", "in/a.txt")]),
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let r = &response["results"][0];
    assert_eq!(r["exit_status"], 3);
    assert_eq!(r["ok"], false);
    assert_eq!(r["stderr_tail"][2], "step 3 failed");
    assert_eq!(keys(&client, "sup-out").await, ["all/partial.log"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_queued_inputs_failed_messages_are_named_in_batch_item_failures_and_no_other() {
    let moto = Moto::start();
    let client = buckets(&moto, &["sup-in", "sup-out"]).await;
    for key in ["in/a.txt", "in/bad.txt", "in/c.txt"] {
        put(&client, key, b"x".to_vec()).await;
    }
    let stack = Stack::new("");
    stack.function(
        "thumbs",
        OUTPUTS,
        "case \"$INPUT_FILE_PATH\" in *bad*) echo \"cannot\" >&2; exit 5;; esac\ncp \"$INPUT_FILE_PATH\" \"$TMP_OUTPUT_DIR/\"\n",
    );
    // SQS messages as an event source mapping hands them over: each body an S3 event (two
    // records in one), S3's test event, and a body that is no S3 event at all.
    let message = |id: &str, body: String| {
        json!({"messageId": id, "receiptHandle": "r", "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q", "body": body})
    };
    let event = json!({"Records": [
        message("m-a", s3_event(&[("sup-in", "in/a.txt")]).to_string()),
        message("m-bad", s3_event(&[("sup-in", "in/bad.txt"), ("sup-in", "in/c.txt")]).to_string()),
        message("m-test", json!({"Service": "Amazon S3", "Event": "s3:TestEvent"}).to_string()),
        message("m-junk", "hello".to_owned()),
    ]});
    let (out, response) = local(&moto.endpoint, &stack.config("thumbs"), &event, &[]);
    assert_eq!(
        response["batchItemFailures"],
        json!([{"itemIdentifier": "m-bad"}, {"itemIdentifier": "m-junk"}]),
        "{response:#}\n{}",
        log(&out)
    );
    assert_eq!(response["ok"], false);
    // Every object of every message ran: c.txt, beside the failing bad.txt, too.
    assert_eq!(keys(&client, "sup-out").await, ["all/a.txt", "all/c.txt"]);
}

/// A failure record in Lambda's format for `key` of `sup-in`, failed `attempts` times.
fn record(key: &str, attempts: u32) -> String {
    json!({"version": "1.0", "timestamp": "2026-12-07T10:00:00.000Z",
        "requestContext": {"requestId": format!("req-{key}"),
            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:thumbs:$LATEST",
            "condition": "RetriesExhausted", "approximateInvokeCount": attempts},
        "requestPayload": s3_event(&[("sup-in", key)]),
        "responsePayload": {"errorType": "ScarInvocationFailed"}})
    .to_string()
}

/// A sweep (the event the function's schedule sends) runs the function's failure records
/// again, oldest first: the record of an input that now succeeds is deleted, one that fails
/// again is replaced by a record of this run, one `scar retry` has marked is left alone, and
/// the invocation succeeds.
#[tokio::test(flavor = "multi_thread")]
async fn a_sweep_runs_the_failure_records_again_and_settles_each() {
    let moto = Moto::start();
    let client = buckets(&moto, &["sup-in", "sup-out", "sup-failures"]).await;
    for key in ["in/a.txt", "in/bad.txt", "in/marked.txt"] {
        put(&client, key, b"x".to_vec()).await;
    }
    let stack = Stack::new("");
    stack.function(
        "thumbs",
        OUTPUTS,
        "case \"$INPUT_FILE_PATH\" in *bad*) echo \"still cannot\" >&2; exit 5;; esac\ncp \"$INPUT_FILE_PATH\" \"$TMP_OUTPUT_DIR/\"\n",
    );
    let prefix = "aws/lambda/async/thumbs/2026/12/07/";
    let records = [
        format!("{prefix}2026-12-07T10.00.00-a"),
        format!("{prefix}2026-12-07T10.00.01-bad"),
        format!("{prefix}2026-12-07T10.00.02-marked"),
    ];
    for (key, input) in records
        .iter()
        .zip(["in/a.txt", "in/bad.txt", "in/marked.txt"])
    {
        client
            .put_object()
            .bucket("sup-failures")
            .key(key)
            .body(record(input, 3).into_bytes().into())
            .send()
            .await
            .expect("record");
    }
    let mark = format!("scar/retrying/{}", records[2]);
    client
        .put_object()
        .bucket("sup-failures")
        .key(&mark)
        .body(b"{}".to_vec().into())
        .send()
        .await
        .expect("mark");
    let mut config = stack.config("thumbs");
    config["sweep"] = json!("sup-failures");
    let (out, response) = local(&moto.endpoint, &config, &json!({"scar-sweep": {}}), &[]);
    assert_eq!(response["ok"], true, "{response:#}\n{}", log(&out));
    assert_eq!(
        response["swept"],
        json!({"bucket": "sup-failures", "succeeded": 1, "failed_again": 1, "skipped": 1,
            "left_for_next_time": 0}),
        "{response:#}"
    );
    assert_eq!(keys(&client, "sup-out").await, ["all/a.txt"]);
    let left = keys(&client, "sup-failures").await;
    assert!(!left.contains(&records[0]), "settled: {left:?}");
    assert!(!left.contains(&records[1]), "replaced: {left:?}");
    assert!(
        left.contains(&records[2]) && left.contains(&mark),
        "left to its retry: {left:?}"
    );
    let new: Vec<&String> = left
        .iter()
        .filter(|k| k.starts_with("aws/lambda/async/thumbs/") && **k != records[2])
        .collect();
    assert_eq!(new.len(), 1, "{left:?}");
    let again: Value =
        serde_json::from_str(&text(&client, "sup-failures", new[0]).await).expect("a record");
    assert_eq!(
        again["requestPayload"]["Records"][0]["s3"]["object"]["key"],
        "in/bad.txt"
    );
    assert!(
        again["responsePayload"]["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("still cannot")),
        "{again:#}"
    );

    // A function whose configuration names no records refuses a sweep.
    let (_, refused) = local(
        &moto.endpoint,
        &stack.config("thumbs"),
        &json!({"scar-sweep": {}}),
        &[],
    );
    assert_ne!(refused["ok"], true, "{refused:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn http_requests_carry_every_byte_value_both_ways() {
    let moto = Moto::start();
    let stack = Stack::new("");
    stack.function(
        "echo",
        "",
        "cat \"$INPUT_FILE_PATH\"\nprintf '%s %s' \"$SCAR_HTTP_METHOD\" \"$SCAR_HTTP_PATH\"\n",
    );
    let config = stack.config("echo");
    let bytes: Vec<u8> = (0..=255).collect();
    let b64 = base64::engine::general_purpose::STANDARD;
    let rest = json!({
        "httpMethod": "POST", "path": "/convert", "requestContext": {"requestId": "r"},
        "headers": {"Content-Type": "application/octet-stream"},
        "body": b64.encode(&bytes), "isBase64Encoded": true
    });
    // The 2.0 payload of HTTP APIs and function URLs.
    let v2 = json!({
        "version": "2.0", "rawPath": "/convert", "body": b64.encode(&bytes), "isBase64Encoded": true,
        "requestContext": {"http": {"method": "POST", "path": "/convert"}}
    });
    for event in [rest, v2] {
        let (out, response) = local(&moto.endpoint, &config, &event, &[]);
        assert!(out.status.success(), "{response:#}");
        assert_eq!(response["statusCode"], 200);
        assert_eq!(response["isBase64Encoded"], true);
        let got = b64
            .decode(response["body"].as_str().expect("body"))
            .expect("base64");
        let mut want = bytes.clone();
        want.extend_from_slice(b"POST /convert");
        assert_eq!(got, want, "every byte back, then the script's own output");
    }

    stack.function("echo", "", "echo bad input >&2\nexit 2\n");
    let event = json!({"httpMethod": "GET", "path": "/", "requestContext": {}});
    let (out, response) = local(&moto.endpoint, &stack.config("echo"), &event, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(response["statusCode"], 500);
    assert_eq!(response["headers"]["x-scar-exit-status"], "2");

    // Above what Lambda can return: a clear answer instead of Lambda's own failure.
    stack.function("echo", "", "head -c 5000000 /dev/zero\n");
    let (_, response) = local(&moto.endpoint, &stack.config("echo"), &event, &[]);
    assert_eq!(response["statusCode"], 502, "{response:#}");
    assert_eq!(response["headers"]["x-scar-error"], "response-too-large");
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
    job_env(batch, id)
        .await
        .remove("SCAR_EVENT")
        .unwrap_or_default()
}

/// The environment job `id` was submitted with.
async fn job_env(
    batch: &aws_sdk_batch::Client,
    id: &str,
) -> std::collections::BTreeMap<String, String> {
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
        .filter_map(|kv| Some((kv.name()?.to_owned(), kv.value()?.to_owned())))
        .collect()
}

const BATCH: &str = "  batch:
    compute:
      type: FARGATE
      subnets: [subnet-1]
      securityGroups: [sg-1]
";

#[tokio::test(flavor = "multi_thread")]
async fn batch_mode_submits_every_event_to_the_functions_queue() {
    let moto = Moto::start();
    let batch = batch_target(&moto).await;
    let stack = Stack::new("");
    stack.function(
        "thumbs",
        &format!("  execution: batch\n  input:\n    - bucket: sup-in\n{BATCH}"),
        "echo never runs here\n",
    );
    let config = stack.config("thumbs");
    // Its failures are recorded (an S3 input): its jobs are told where, and how Batch retries.
    assert_eq!(
        config["batch_failures"]["retry"]["attempts"], 3,
        "{config:#}"
    );
    let event = s3_event(&[("sup-in", "in/video.mp4")]);
    let (out, response) = local(&moto.endpoint, &config, &event, &[]);
    assert!(out.status.success(), "{response:#}\n{}", log(&out));
    let id = response["delegated"]["job_id"].as_str().expect("a job id");
    let mut env = job_env(&batch, id).await;
    let handed: Value =
        serde_json::from_str(&env.remove("SCAR_EVENT").unwrap_or_default()).expect("event JSON");
    assert_eq!(handed, event, "the job gets the event as it came");
    // The key its failure record would take, chosen once for every attempt.
    let record = env.remove("SCAR_FAILURE_RECORD").unwrap_or_default();
    assert!(
        record.starts_with("aws/lambda/async/thumbs/") && record.ends_with("-req-1"),
        "{record}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_multi_node_job_gets_the_event_through_node_overrides() {
    let moto = Moto::start();
    batch_target(&moto).await;
    // moto drops nodeOverrides, so the request itself is checked, on its way to moto.
    let proxy = support::proxy::Proxy::start(moto.port(), support::proxy::Fault::None);
    let stack = Stack::new("");
    stack.function(
        "thumbs",
        "  execution: batch\n  batch:\n    multiNode:\n      nodes: 2\n    compute:\n      subnets: [subnet-1]\n      securityGroups: [sg-1]\n",
        "echo never runs here\n",
    );
    let config = stack.config("thumbs");
    assert_eq!(config["batch_multi_node"], true);
    let event = s3_event(&[("sup-in", "in/big.mp4")]);
    let (out, response) = local(&proxy.endpoint, &config, &event, &[]);
    assert!(out.status.success(), "{response:#}\n{}", log(&out));
    let lines = proxy.log.lock().expect("log").clone();
    let submit = lines
        .iter()
        .find(|l| l.contains("/v1/submitjob"))
        .unwrap_or_else(|| panic!("no SubmitJob in {lines:#?}"));
    let body: Value =
        serde_json::from_str(&submit[submit.find('{').expect("a JSON body")..]).expect("JSON");
    let node = &body["nodeOverrides"]["nodePropertyOverrides"][0];
    assert_eq!(node["targetNodes"], "0:", "{body:#}");
    assert!(
        node["containerOverrides"]["environment"]
            .as_array()
            .is_some_and(|e| e.iter().any(|kv| kv["name"] == "SCAR_EVENT")),
        "{body:#}"
    );
    assert!(body.get("containerOverrides").is_none(), "{body:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_timeout_threshold_stops_the_script_uploads_partial_results_and_lambda_batch_delegates()
{
    let moto = Moto::start();
    let client = buckets(&moto, &["sup-in", "sup-out"]).await;
    put(&client, "in/a.txt", b"x".to_vec()).await;
    let batch = batch_target(&moto).await;
    let stack = Stack::new("");
    // 3 s timeout, 1 s kept back: the script is stopped after 2 s.
    stack.function(
        "thumbs",
        &format!("  timeout: 3\n  timeoutThreshold: 1\n  execution: lambda-batch\n{BATCH}{OUTPUTS}"),
        "echo first half > \"$TMP_OUTPUT_DIR/part-1.log\"\nsleep 30\necho never > \"$TMP_OUTPUT_DIR/part-2.log\"\n",
    );
    let started = std::time::Instant::now();
    let (_, response) = local(
        &moto.endpoint,
        &stack.config("thumbs"),
        &s3_event(&[("sup-in", "in/a.txt")]),
        &[],
    );
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

/// The Lambda environment the desired graph gives function `name`: what `scar plan` shows
/// and `scar apply` sets.
fn planned_environment(stack: &Stack, name: &str) -> Value {
    let (set, _) = scar::manifest::load_dir(stack.dir.path());
    let graph = scar::model::build(&set).expect("a valid stack");
    let function = graph
        .resources
        .iter()
        .find(|r| r.address.to_string() == format!("function/{name}"))
        .expect("the function");
    function.attrs["environment"].clone()
}

const SECRET_DB: &str = "db-pa55-hunter2";
const SECRET_TOKEN: &str = "tok-9f8e7d";

/// An SSM SecureString and a Secrets Manager JSON secret in moto.
async fn secrets(moto: &Moto) {
    let config = moto.sdk().await;
    aws_sdk_ssm::Client::new(&config)
        .put_parameter()
        .name("/app/db")
        .value(SECRET_DB)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .expect("parameter");
    aws_sdk_secretsmanager::Client::new(&config)
        .create_secret()
        .name("app/api")
        .secret_string(json!({"token": SECRET_TOKEN, "user": "scar"}).to_string())
        .send()
        .await
        .expect("secret");
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_reach_the_script_and_nothing_else() {
    let moto = Moto::start();
    let client = buckets(&moto, &["sup-in", "sup-out"]).await;
    secrets(&moto).await;
    let stack = Stack::new("");
    stack.function(
        "thumbs",
        &format!(
            "  environment:\n    DB_PASSWORD:\n      secretRef: {{ssm: /app/db}}\n    API_TOKEN:\n      secretRef: {{secretsManager: app/api, key: token}}\n    MODE: fast\n{OUTPUTS}"
        ),
        "printf '%s|%s|%s' \"$DB_PASSWORD\" \"$API_TOKEN\" \"$MODE\" > \"$TMP_OUTPUT_DIR/seen.txt\"\necho done\n",
    );
    let config = stack.config("thumbs");
    // In Lambda the function's environment holds the references and names them in
    // SCAR_SECRETS (as `scar plan` shows); the script gets the values.
    let planned = planned_environment(&stack, "thumbs");
    assert_eq!(planned["SCAR_SECRETS"], "API_TOKEN,DB_PASSWORD");
    assert_eq!(planned["DB_PASSWORD"], "ssm:/app/db");
    assert_eq!(planned["API_TOKEN"], "secretsmanager:app/api#token");
    let mut env: Vec<(&str, &str)> = ["SCAR_SECRETS", "DB_PASSWORD", "API_TOKEN", "MODE"]
        .into_iter()
        .map(|k| (k, planned[k].as_str().expect("a string")))
        .collect();
    env.push(("SCAR_LOG", "debug"));
    let (out, response) = local(&moto.endpoint, &config, &json!({}), &env);
    assert!(out.status.success(), "{response:#}\n{}", log(&out));
    assert_eq!(
        text(&client, "sup-out", "all/seen.txt").await,
        format!("{SECRET_DB}|{SECRET_TOKEN}|fast")
    );
    let shown = format!("{}{}", log(&out), String::from_utf8_lossy(&out.stdout));
    for secret in [SECRET_DB, SECRET_TOKEN] {
        assert!(!shown.contains(secret), "a value was shown:\n{shown}");
    }

    // A reference that cannot be read fails the invocation before the script runs, naming
    // the reference.
    stack.function(
        "thumbs",
        &format!(
            "  environment:\n    DB_PASSWORD:\n      secretRef: {{ssm: /app/missing}}\n{OUTPUTS}"
        ),
        "echo ran > \"$TMP_OUTPUT_DIR/ran.txt\"\n",
    );
    let (out, _) = local(
        &moto.endpoint,
        &stack.config("thumbs"),
        &json!({}),
        &[
            ("SCAR_SECRETS", "DB_PASSWORD"),
            ("DB_PASSWORD", "ssm:/app/missing"),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(log(&out).contains("ssm:/app/missing"), "{}", log(&out));
    assert_eq!(
        keys(&client, "sup-out").await,
        ["all/seen.txt"],
        "the script did not run"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn outputs_reach_every_storage_provider_and_a_lost_one_fails_the_invocation() {
    let moto = Moto::start();
    let minio = Moto::start();
    let client = buckets(&moto, &["sup-in", "sup-out", "partner"]).await;
    let minio_client = s3(&minio.sdk().await);
    minio_client
        .create_bucket()
        .bucket("lab")
        .send()
        .await
        .expect("bucket");
    put(&client, "in/photo.jpg", b"pixels".to_vec()).await;
    let config = moto.sdk().await;
    let ssm = aws_sdk_ssm::Client::new(&config);
    for (name, value) in [
        ("/lab/ak", "minio-access"),
        ("/lab/sk", "minio-secret"),
        ("/partner/ak", "AKIAPARTNER"),
        ("/partner/sk", "partner-secret"),
        ("/dav/password", "dav-pa55"),
    ] {
        ssm.put_parameter()
            .name(name)
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .send()
            .await
            .expect("parameter");
    }
    let dav = support::webdav::WebDav::start("scar", "dav-pa55");
    let providers = |dav_url: &str| {
        format!(
            "  storageProviders:
    minio:
      lab:
        endpoint: {}
        accessKey: {{ssm: /lab/ak}}
        secretKey: {{ssm: /lab/sk}}
    s3:
      partner:
        region: eu-west-1
        accessKey: {{ssm: /partner/ak}}
        secretKey: {{ssm: /partner/sk}}
    webdav:
      dcache:
        hostname: {dav_url}
        login: scar
        password: {{ssm: /dav/password}}
",
            minio.endpoint
        )
    };
    let outputs = "  output:
    - bucket: sup-out
      prefix: own/
    - bucket: lab
      prefix: results/
      provider: minio.lab
      filter:
        suffix: [.txt]
    - bucket: partner
      prefix: shared/
      provider: s3.partner
    - bucket: data
      prefix: scar/out/
      provider: webdav.dcache
";
    let script = "mkdir -p \"$TMP_OUTPUT_DIR/deep\"\necho summary > \"$TMP_OUTPUT_DIR/deep/summary.txt\"\ncp \"$INPUT_FILE_PATH\" \"$TMP_OUTPUT_DIR/photo.bin\"\n";
    let stack = Stack::new(&providers(&dav.url));
    stack.function("thumbs", outputs, script);
    let event = s3_event(&[("sup-in", "in/photo.jpg")]);
    let (out, response) = local(&moto.endpoint, &stack.config("thumbs"), &event, &[]);
    assert!(out.status.success(), "{response:#}\n{}", log(&out));
    assert_eq!(
        keys(&client, "sup-out").await,
        ["own/deep/summary.txt", "own/photo.bin"]
    );
    assert_eq!(
        keys(&minio_client, "lab").await,
        ["results/deep/summary.txt"],
        "MinIO gets the .txt files only, on its own endpoint"
    );
    assert_eq!(
        keys(&client, "partner").await,
        ["shared/deep/summary.txt", "shared/photo.bin"]
    );
    assert_eq!(
        dav.read("data/scar/out/deep/summary.txt").as_deref(),
        Some(b"summary\n".as_slice()),
        "WebDAV gets every file, its folders made"
    );
    assert_eq!(
        dav.read("data/scar/out/photo.bin").as_deref(),
        Some(b"pixels".as_slice())
    );

    // Regression (issue 23, finding 5): an input key `in/..\..\..\escaped.txt` made a file of
    // that name in the output folder; its backslashes became `/`, and the WebDAV upload went
    // to `data/scar/out/../../../escaped.txt`, which the server put above `data/`. Now such a
    // name is uploaded nowhere (S3 and MinIO alike) and the invocation says so; a backslash
    // that climbs nothing is a character of the name.
    let copy = "cp \"$INPUT_FILE_PATH\" \"$TMP_OUTPUT_DIR/\"\n";
    stack.function("thumbs", outputs, copy);
    for (key, body) in [
        ("in/..\\..\\..\\escaped.txt", b"out of place".to_vec()),
        ("in/ok\\name.txt", b"fine".to_vec()),
    ] {
        put(&client, key, body).await;
    }
    let escaping = s3_event(&[("sup-in", "in/..\\..\\..\\escaped.txt")]);
    let (out, response) = local(&moto.endpoint, &stack.config("thumbs"), &escaping, &[]);
    assert_eq!(out.status.code(), Some(1), "{response:#}");
    let errors = response["results"][0]["upload_errors"].to_string();
    assert!(errors.contains("path segment"), "{response:#}");
    assert_eq!(
        response["results"][0]["uploaded"],
        json!([]),
        "{response:#}"
    );
    let mut written = Vec::new();
    let mut todo = vec![dav.files()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).expect("dav files").flatten() {
            if e.path().is_dir() {
                todo.push(e.path());
            } else {
                written.push(e.path());
            }
        }
    }
    assert!(
        written
            .iter()
            .all(|p| !p.to_string_lossy().contains("escaped")),
        "{written:?}"
    );
    assert!(
        keys(&client, "sup-out")
            .await
            .iter()
            .all(|k| !k.contains("escaped"))
    );
    let fine = s3_event(&[("sup-in", "in/ok\\name.txt")]);
    let (out, response) = local(&moto.endpoint, &stack.config("thumbs"), &fine, &[]);
    assert!(out.status.success(), "{response:#}\n{}", log(&out));
    assert_eq!(
        dav.read("data/scar/out/ok\\name.txt").as_deref(),
        Some(b"fine".as_slice())
    );
    assert!(
        keys(&client, "sup-out")
            .await
            .contains(&"own/ok\\name.txt".to_owned())
    );

    // The WebDAV server now refuses the password: that output is lost, the others are not,
    // and the invocation fails naming it.
    let refusing = support::webdav::WebDav::start("scar", "another-password");
    let stack = Stack::new(&providers(&refusing.url));
    stack.function("thumbs", outputs, script);
    let (out, response) = local(&moto.endpoint, &stack.config("thumbs"), &event, &[]);
    assert_eq!(out.status.code(), Some(1), "{response:#}");
    let errors = response["results"][0]["upload_errors"].to_string();
    assert!(
        errors.contains("webdav.dcache") && errors.contains("401"),
        "{response:#}"
    );
    assert_eq!(
        response["results"][0]["uploaded"].as_array().map(Vec::len),
        Some(5)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn with_no_script_the_images_own_command_runs_with_call_time_arguments() {
    let moto = Moto::start();
    let client = buckets(&moto, &["sup-out"]).await;
    let stack = Stack::new("");
    std::fs::write(
        stack.dir.path().join("cow.yaml"),
        "apiVersion: scar/v1alpha1\nkind: Function\nmetadata:\n  name: cow\nspec:\n  image: alpine:3.20\n  output:\n    - bucket: sup-out\n",
    )
    .expect("write");
    let mut config = stack.config("cow");
    assert_eq!(config["script"], "");
    // What assembly records from the base image's config.
    let workdir = tempfile::tempdir().expect("tempdir");
    config["command"] = json!({
        "entrypoint": ["/bin/sh", "-c", "pwd > \"$TMP_OUTPUT_DIR/$0.txt\"; echo \"$@\" >> \"$TMP_OUTPUT_DIR/$0.txt\""],
        "cmd": ["default", "from", "cmd"],
        "working_dir": workdir.path().display().to_string(),
    });
    let (out, response) = local(&moto.endpoint, &config, &json!({}), &[]);
    assert!(out.status.success(), "{response:#}\n{}", log(&out));
    let (out, response) = local(
        &moto.endpoint,
        &config,
        &json!({"args": ["given", "a b"]}),
        &[],
    );
    assert!(out.status.success(), "{response:#}\n{}", log(&out));
    let cwd = workdir.path().display().to_string();
    assert_eq!(
        text(&client, "sup-out", "default.txt").await,
        format!("{cwd}\nfrom cmd\n")
    );
    assert_eq!(
        text(&client, "sup-out", "given.txt").await,
        format!("{cwd}\na b\n"),
        "call-time arguments take Cmd's place after the entrypoint, as `docker run IMAGE ARGS`"
    );
    // A script given at call time runs instead (SCAR's `run -s`).
    let (out, _) = local(
        &moto.endpoint,
        &config,
        &json!({"script": "echo \"$1\" > \"$TMP_OUTPUT_DIR/script.txt\"", "args": ["x"]}),
        &[],
    );
    assert!(out.status.success(), "{}", log(&out));
    assert_eq!(text(&client, "sup-out", "script.txt").await, "x\n");
    // No script and no command: a clear failure.
    config["command"] = json!({"entrypoint": [], "cmd": []});
    let (out, _) = local(&moto.endpoint, &config, &json!({}), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(log(&out).contains("no script"), "{}", log(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn inputs_and_outputs_larger_than_a_part_stream_in_parts() {
    let moto = Moto::start();
    let client = buckets(&moto, &["sup-in", "sup-out"]).await;
    // 40 MiB, not repeating with the part size, so a misplaced part shows.
    let big: Vec<u8> = (0..40u32 * 1024 * 1024)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    put(&client, "in/big.bin", big.clone()).await;
    let stack = Stack::new("");
    stack.function(
        "thumbs",
        "  output:\n    - bucket: sup-out\n",
        "cp \"$INPUT_FILE_PATH\" \"$TMP_OUTPUT_DIR/copy.bin\"\nwc -c < \"$INPUT_FILE_PATH\"\n",
    );
    let (out, response) = local(
        &moto.endpoint,
        &stack.config("thumbs"),
        &s3_event(&[("sup-in", "in/big.bin")]),
        &[],
    );
    assert!(out.status.success(), "{response:#}\n{}", log(&out));
    assert!(log(&out).contains(&big.len().to_string()), "{}", log(&out));
    let head = client
        .head_object()
        .bucket("sup-out")
        .key("copy.bin")
        .send()
        .await
        .expect("head");
    assert!(
        head.e_tag()
            .is_some_and(|t| t.trim_matches('"').ends_with("-5")),
        "a multipart upload of 5 parts: {:?}",
        head.e_tag()
    );
    assert!(
        body(&client, "sup-out", "copy.bin").await == big,
        "the same bytes came back"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_trusts_the_images_ca_bundle_and_refuses_an_unknown_issuer() {
    let moto = Moto::start();
    let client = buckets(&moto, &["sup-in"]).await;
    put(&client, "in/a.txt", b"over tls".to_vec()).await;
    let config = moto.sdk().await;
    aws_sdk_ssm::Client::new(&config)
        .put_parameter()
        .name("/dav/password")
        .value("dav-pa55")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .expect("parameter");
    let ca = support::webdav::TestCa::new();
    let dav = support::webdav::WebDav::start_tls("scar", "dav-pa55", &ca);
    let stack = Stack::new(&format!(
        "  storageProviders:\n    webdav:\n      secure:\n        hostname: {}\n        login: scar\n        password: {{ssm: /dav/password}}\n",
        dav.url
    ));
    stack.function(
        "thumbs",
        "  output:\n    - bucket: data\n      provider: webdav.secure\n",
        "cp \"$INPUT_FILE_PATH\" \"$TMP_OUTPUT_DIR/a.txt\"\n",
    );
    let config = stack.config("thumbs");
    let event = s3_event(&[("sup-in", "in/a.txt")]);
    // The test's authority is in no bundle this machine has, nor among the compiled-in roots.
    let (out, response) = local(&moto.endpoint, &config, &event, &[]);
    assert_eq!(out.status.code(), Some(1), "{response:#}");
    let errors = response["results"][0]["upload_errors"].to_string();
    assert!(
        errors.contains("webdav.secure") && errors.contains("UnknownIssuer"),
        "{response:#}\n{}",
        log(&out)
    );
    assert_eq!(dav.read("data/a.txt"), None);
    // The image's bundle (here through SSL_CERT_FILE) holds it: the upload goes through.
    let bundle = ca.ca().display().to_string();
    let (out, response) = local(
        &moto.endpoint,
        &config,
        &event,
        &[("SSL_CERT_FILE", &bundle), ("SCAR_LOG", "debug")],
    );
    assert!(out.status.success(), "{response:#}\n{}", log(&out));
    assert_eq!(
        dav.read("data/a.txt").as_deref(),
        Some(b"over tls".as_slice())
    );
    assert!(
        log(&out).contains("from_image=1"),
        "the bundle's one root is read, besides the compiled-in ones: {}",
        log(&out)
    );
}
