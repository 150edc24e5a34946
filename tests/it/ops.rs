//! The operating commands against moto: `scar ls` (table and JSON), `scar put` and `scar get`
//! (folders, relative paths kept), `scar logs` (a request's lines only), and their errors.

use crate::support;

use std::path::Path;

use serde_json::Value;

use crate::support::moto::{Moto, s3};
use crate::support::{ok, stderr, stdout};

const STACK: &str = "apiVersion: scar/v1alpha1
kind: Stack
metadata:
  name: ops
spec:
  region: us-east-1
  role:
    managed: true
";

const THUMBS: &str = "apiVersion: scar/v1alpha1
kind: Function
metadata:
  name: thumbs
spec:
  image: grycap/imagemagick
  input:
    - bucket: ops-data
      prefix: in/
  output:
    - bucket: ops-data
      prefix: out/
";

const WEB: &str = "apiVersion: scar/v1alpha1
kind: Function
metadata:
  name: web
spec:
  image: grycap/cowsay
  memory: 1024
  http: {}
";

fn stack() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in [
        ("stack.yaml", STACK),
        ("thumbs.yaml", THUMBS),
        ("web.yaml", WEB),
    ] {
        std::fs::write(dir.path().join(name), text).expect("write");
    }
    dir
}

fn json_of(out: &std::process::Output) -> Value {
    ok(out);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(out)))
}

fn write(path: &Path, text: &str) {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    std::fs::write(path, text).expect("write");
}

#[tokio::test(flavor = "multi_thread")]
async fn ls_put_get_and_logs_work_on_a_deployed_stack() {
    let moto = Moto::start();
    let dir = stack();
    ok(&moto.scar(dir.path(), &["apply", ".", "--auto-approve"]));

    // ls: live state, and the HTTP URL of the function that has one.
    let listed = json_of(&moto.scar(dir.path(), &["ls", ".", "--json"]));
    assert_eq!(listed["stack"], "ops");
    let fns = listed["functions"].as_array().expect("functions");
    let by = |n: &str| {
        fns.iter()
            .find(|f| f["name"] == n)
            .cloned()
            .expect("listed")
    };
    assert_eq!(by("thumbs")["state"], "Active");
    assert_eq!(by("thumbs")["memory"], 512);
    assert_eq!(by("thumbs")["url"], Value::Null);
    assert_eq!(by("web")["memory"], 1024);
    assert!(
        by("web")["url"]
            .as_str()
            .is_some_and(|u| u.contains(".execute-api.us-east-1.amazonaws.com/scar")),
        "{listed:#}"
    );
    let table = stdout(&moto.scar(dir.path(), &["ls", "."]));
    let header = table.lines().next().unwrap_or_default();
    assert!(
        header.starts_with("NAME") && header.contains("URL"),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("thumbs") && l.contains("Active")),
        "{table}"
    );

    // put: a folder (paths relative to it) and a file, to the function's input.
    let local = tempfile::tempdir().expect("tempdir");
    write(&local.path().join("photos/a.jpg"), "a");
    write(&local.path().join("photos/sub/b.jpg"), "b");
    write(&local.path().join("c.txt"), "c");
    let photos = local.path().join("photos").display().to_string();
    let c = local.path().join("c.txt").display().to_string();
    let put = moto.scar(dir.path(), &["put", ".", "thumbs", &photos, &c, "--json"]);
    let uploaded = json_of(&put);
    assert_eq!(uploaded["uploaded"].as_array().map(Vec::len), Some(3));
    assert!(
        stderr(&put).contains("[3/3] s3://ops-data/"),
        "progress: {}",
        stderr(&put)
    );
    let client = s3(&moto.sdk().await);
    let listed = client
        .list_objects_v2()
        .bucket("ops-data")
        .prefix("in/")
        .send()
        .await
        .expect("list");
    let mut keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["in/a.jpg", "in/c.txt", "in/sub/b.jpg"]);

    // get: everything under the output prefix, relative paths kept.
    for (k, v) in [("out/x.txt", "x"), ("out/deep/y.txt", "y")] {
        client
            .put_object()
            .bucket("ops-data")
            .key(k)
            .body(v.as_bytes().to_vec().into())
            .send()
            .await
            .expect("put");
    }
    let to = tempfile::tempdir().expect("tempdir");
    let got = json_of(&moto.scar(
        dir.path(),
        &[
            "get",
            ".",
            "thumbs",
            "--to",
            &to.path().display().to_string(),
            "--json",
        ],
    ));
    assert_eq!(got["downloaded"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        std::fs::read_to_string(to.path().join("deep/y.txt")).expect("y"),
        "y"
    );
    assert_eq!(
        std::fs::read_to_string(to.path().join("x.txt")).expect("x"),
        "x"
    );

    // get_writes_hidden_paths: keys are whatever the bucket's writers chose. A hidden path,
    // a folder that is a link, and a file that exists locally are skipped (and said so); a key
    // that cannot be written does not stop the others, and fails the run at the end.
    let elsewhere = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::symlink(elsewhere.path(), to.path().join("link")).expect("link");
    for (k, v) in [
        ("out/.git/hooks/post-checkout", "#!/bin/sh\nevil"),
        ("out/link/z.txt", "through a link"),
        ("out/x.txt", "x, changed"),
        ("out/x.txt/inner", "under a file"),
        ("out/new.txt", "new"),
    ] {
        client
            .put_object()
            .bucket("ops-data")
            .key(k)
            .body(v.as_bytes().to_vec().into())
            .send()
            .await
            .expect("put");
    }
    let to_arg = to.path().display().to_string();
    let got = json_of(&moto.scar(
        dir.path(),
        &["get", ".", "thumbs", "--to", &to_arg, "--json"],
    ));
    let skipped: Vec<&str> = got["skipped"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["key"].as_str())
        .collect();
    for key in [
        "out/.git/hooks/post-checkout",
        "out/link/z.txt",
        "out/x.txt",
        "out/deep/y.txt",
    ] {
        assert!(skipped.contains(&key), "{key} not skipped: {got}");
    }
    assert!(
        !to.path().join(".git").exists(),
        "a hidden path was written"
    );
    assert!(
        !elsewhere.path().join("z.txt").exists(),
        "written through a link"
    );
    assert_eq!(
        std::fs::read_to_string(to.path().join("x.txt")).expect("x"),
        "x",
        "an existing file was overwritten"
    );
    assert_eq!(
        std::fs::read_to_string(to.path().join("new.txt")).expect("new"),
        "new"
    );
    let forced = moto.scar(
        dir.path(),
        &["get", ".", "thumbs", "--to", &to_arg, "--overwrite"],
    );
    assert_eq!(forced.status.code(), Some(1), "{}", stdout(&forced));
    assert!(
        stderr(&forced).contains("downloading out/x.txt/inner failed"),
        "{}",
        stderr(&forced)
    );
    assert_eq!(
        std::fs::read_to_string(to.path().join("x.txt")).expect("x"),
        "x, changed"
    );
    for k in [
        "out/.git/hooks/post-checkout",
        "out/link/z.txt",
        "out/x.txt/inner",
        "out/new.txt",
        "out/x.txt",
    ] {
        client
            .delete_object()
            .bucket("ops-data")
            .key(k)
            .send()
            .await
            .expect("delete");
    }
    client
        .put_object()
        .bucket("ops-data")
        .key("out/x.txt")
        .body(b"x".to_vec().into())
        .send()
        .await
        .expect("put");

    // A file larger than a part goes up in parts and comes back in ranged parts, whole.
    let big: Vec<u8> = (0..20u32 * 1024 * 1024)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    let big_dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(big_dir.path().join("big.bin"), &big).expect("write");
    let big_path = big_dir.path().join("big.bin").display().to_string();
    let put = moto.scar(dir.path(), &["put", ".", "thumbs", &big_path]);
    ok(&put);
    let head = client
        .head_object()
        .bucket("ops-data")
        .key("in/big.bin")
        .send()
        .await
        .expect("head");
    assert!(
        head.e_tag()
            .is_some_and(|t| t.trim_matches('"').ends_with("-3")),
        "uploaded in 3 parts: {:?}",
        head.e_tag()
    );
    client
        .copy_object()
        .bucket("ops-data")
        .key("out/big.bin")
        .copy_source("ops-data/in/big.bin")
        .send()
        .await
        .expect("copy");
    let again = tempfile::tempdir().expect("tempdir");
    ok(&moto.scar(
        dir.path(),
        &[
            "get",
            ".",
            "thumbs",
            "--to",
            &again.path().display().to_string(),
        ],
    ));
    assert!(
        std::fs::read(again.path().join("big.bin")).expect("big.bin") == big,
        "the same bytes came back"
    );

    // logs: a request's lines only.
    let logs = aws_sdk_cloudwatchlogs::Client::new(&moto.sdk().await);
    put_log_lines(
        &logs,
        "/aws/lambda/thumbs",
        "2026/11/27/[$LATEST]abc",
        0,
        &[
            "START RequestId: req-1 Version: $LATEST",
            "running the script req-1",
            "START RequestId: req-2 Version: $LATEST",
            "uploaded s3://ops-data/out/x.txt req-2",
        ],
    )
    .await;
    let all = stdout(&moto.scar(dir.path(), &["logs", ".", "thumbs"]));
    assert_eq!(all.lines().count(), 4, "{all}");
    let one = stdout(&moto.scar(
        dir.path(),
        &["logs", ".", "thumbs", "--request-id", "req-2"],
    ));
    assert_eq!(one.lines().count(), 2, "{one}");
    assert!(one.lines().all(|l| l.contains("req-2")), "{one}");
}

#[test]
fn an_unknown_function_is_named_with_the_stacks_functions() {
    let dir = stack();
    let out = support::scar_in(dir.path(), &["put", ".", "nosuch", "file.txt"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("the stack has no function `nosuch`; its functions: thumbs, web"),
        "{}",
        stderr(&out)
    );
}

/// moto 5.2.5 runs Lambda functions in Docker, which this machine does not have: every
/// invocation fails on its side (HTTP 500). These tests therefore check what scar sends, on
/// the wire, and that it reports the failure; a function answering is proved only on AWS.
#[tokio::test(flavor = "multi_thread")]
async fn invoke_and_run_send_what_the_supervisor_expects_and_report_failures() {
    use support::proxy::{Fault, Proxy};
    let moto = Moto::start();
    let dir = stack();
    ok(&moto.scar(dir.path(), &["apply", ".", "--auto-approve"]));
    let file = dir.path().join("hello.txt");
    std::fs::write(&file, "hello\n").expect("write");
    let proxy = Proxy::start(moto.port(), Fault::None);

    // A function without an endpoint: Lambda Invoke with the bytes as `data`; not retried.
    let out = moto.scar_via(
        &proxy.endpoint,
        dir.path(),
        &["invoke", ".", "thumbs", "--data", "hello.txt"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("invoking failed"), "{}", stderr(&out));
    let log = proxy.log.lock().expect("log").clone();
    let invokes: Vec<&String> = log
        .iter()
        .filter(|l| l.starts_with("POST /2015-03-31/functions/thumbs/invocations"))
        .collect();
    assert_eq!(
        invokes.len(),
        1,
        "an invocation is never retried after a 5xx: {log:#?}"
    );
    assert!(
        invokes[0].ends_with("{\"data\":\"aGVsbG8K\"}"),
        "{}",
        invokes[0]
    );

    // A function with an endpoint: an HTTP POST to it (moto serves APIs under its endpoint).
    let out = moto.scar(dir.path(), &["invoke", ".", "web", "--data", "hello.txt"]);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("POST {}/restapis/", moto.endpoint))
            && err.contains("/scar/_user_request_/"),
        "{err}"
    );
    assert!(
        err.contains("HTTP 500"),
        "moto cannot run the function: {err}"
    );
    assert_eq!(out.status.code(), Some(1));

    // run: one direct invocation per object under the input, then a summary.
    let client = s3(&moto.sdk().await);
    for k in ["in/1.jpg", "in/2.jpg", "in/3.jpg"] {
        client
            .put_object()
            .bucket("ops-data")
            .key(k)
            .body(b"x".to_vec().into())
            .send()
            .await
            .expect("put");
    }
    let proxy = Proxy::start(moto.port(), Fault::None);
    let out = moto.scar_via(
        &proxy.endpoint,
        dir.path(),
        &["run", ".", "thumbs", "--json"],
    );
    assert_eq!(out.status.code(), Some(1));
    let summary: Value = serde_json::from_slice(&out.stdout).expect("summary JSON");
    assert_eq!(summary["succeeded"], 0);
    assert_eq!(summary["failed"].as_array().map(Vec::len), Some(3));
    assert!(stderr(&out).contains("[3/3] failed"), "{}", stderr(&out));
    let log = proxy.log.lock().expect("log").clone();
    let mut sent: Vec<String> = log
        .iter()
        .filter(|l| l.starts_with("POST /2015-03-31/functions/thumbs/invocations"))
        .filter_map(|l| {
            l.split_once(' ')
                .map(|(_, rest)| rest.rsplit(' ').next().unwrap_or_default().to_owned())
        })
        .collect();
    sent.sort();
    assert_eq!(
        sent,
        [1, 2, 3]
            .map(|i| format!("{{\"input\":{{\"bucket\":\"ops-data\",\"key\":\"in/{i}.jpg\"}}}}"))
            .to_vec()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_of_a_delegating_function_include_its_batch_jobs() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/video-process");
    for sub in ["", "scripts"] {
        std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
        for entry in std::fs::read_dir(root.join(sub)).expect("example") {
            let p = entry.expect("entry").path();
            if p.is_file() {
                let to = dir.path().join(sub).join(p.file_name().expect("name"));
                std::fs::copy(&p, to).expect("copy");
            }
        }
    }
    let logs = aws_sdk_cloudwatchlogs::Client::new(&moto.sdk().await);
    // The function's own lines, its job's lines, and another job definition's lines.
    put_log_lines(
        &logs,
        "/aws/lambda/scar-batch-ffmpeg-split",
        "2026/11/27/[$LATEST]abc",
        0,
        &["START RequestId: req-9", "delegated req-9"],
    )
    .await;
    put_log_lines(
        &logs,
        "/aws/batch/job",
        "scar-video-process-scar-batch-ffmpeg-split/default/0f1e2d",
        2,
        &["ffmpeg split req-9"],
    )
    .await;
    put_log_lines(
        &logs,
        "/aws/batch/job",
        "someone-elses-job/default/77",
        3,
        &["not ours req-9"],
    )
    .await;
    let out = moto.scar(
        dir.path(),
        &[
            "logs",
            ".",
            "scar-batch-ffmpeg-split",
            "--request-id",
            "req-9",
        ],
    );
    ok(&out);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[2].contains(
            "scar-video-process-scar-batch-ffmpeg-split/default/0f1e2d ffmpeg split req-9"
        ),
        "{text}"
    );
    assert!(!text.contains("not ours"), "{text}");
}

/// Writes `lines` to a new stream of `group` (made if missing), a millisecond apart, starting
/// `first` ms after a second ago.
async fn put_log_lines(
    logs: &aws_sdk_cloudwatchlogs::Client,
    group: &str,
    stream: &str,
    first: i64,
    lines: &[&str],
) {
    let now = i64::try_from(scar::lock::now()).expect("time") * 1000;
    let _ = logs.create_log_group().log_group_name(group).send().await;
    logs.create_log_stream()
        .log_group_name(group)
        .log_stream_name(stream)
        .send()
        .await
        .expect("stream");
    let events = (first..)
        .zip(lines)
        .map(|(i, m)| {
            aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                .timestamp(now - 1000 + i)
                .message(*m)
                .build()
                .expect("event")
        })
        .collect();
    logs.put_log_events()
        .log_group_name(group)
        .log_stream_name(stream)
        .set_log_events(Some(events))
        .send()
        .await
        .expect("events");
}

#[tokio::test(flavor = "multi_thread")]
async fn output_prints_what_the_live_resources_expose() {
    let moto = Moto::start();
    let dir = stack();
    let before = moto.scar(dir.path(), &["output", "."]);
    ok(&before);
    assert!(
        stderr(&before).contains("apply it first"),
        "{}",
        stderr(&before)
    );
    ok(&moto.scar(dir.path(), &["apply", ".", "--auto-approve"]));

    let all = json_of(&moto.scar(dir.path(), &["output", ".", "--json"]));
    let lambda = aws_sdk_lambda::Client::new(&moto.sdk().await);
    let arn = lambda
        .get_function()
        .function_name("thumbs")
        .send()
        .await
        .expect("function")
        .configuration()
        .and_then(|c| c.function_arn())
        .expect("arn")
        .to_owned();
    assert_eq!(all["function/thumbs"]["arn"], arn.as_str(), "{all:#}");
    assert_eq!(all["bucket/ops-data"]["name"], "ops-data", "{all:#}");
    assert!(
        all["http_api/web"]["url"]
            .as_str()
            .is_some_and(|u| u.contains(".execute-api.us-east-1.amazonaws.com/")),
        "{all:#}"
    );
    assert!(
        all["function_image/thumbs"]["uri"]
            .as_str()
            .is_some_and(|u| u.contains("@sha256:")),
        "{all:#}"
    );
    assert!(
        all["function/thumbs"].get("account_id").is_none(),
        "{all:#}"
    );

    // One resource with one value: the value alone, for scripts.
    let one = moto.scar(dir.path(), &["output", ".", "function/thumbs"]);
    ok(&one);
    assert_eq!(stdout(&one).trim_end(), arn);
    let table = stdout(&moto.scar(dir.path(), &["output", "."]));
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("function/thumbs.arn") && l.ends_with(&arn)),
        "{table}"
    );
    let missing = moto.scar(dir.path(), &["output", ".", "function/nope"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("`function/nope` has no outputs")
            && stderr(&missing).contains("function/thumbs"),
        "{}",
        stderr(&missing)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn target_narrows_plan_and_apply_and_a_saved_targeted_plan_applies_as_saved() {
    let moto = Moto::start();
    let dir = stack();
    let d = dir.path();
    ok(&moto.scar(d, &["apply", ".", "--auto-approve"]));
    for (file, from, to) in [
        (
            "thumbs.yaml",
            "  image: grycap/imagemagick\n",
            "  image: grycap/imagemagick\n  memory: 768\n",
        ),
        ("web.yaml", "  memory: 1024\n", "  memory: 2048\n"),
    ] {
        let p = d.join(file);
        let text = std::fs::read_to_string(&p).expect("read");
        write(&p, &text.replace(from, to));
    }

    let narrowed = moto.scar(d, &["plan", ".", "--target", "function/thumbs"]);
    ok(&narrowed);
    let text = stdout(&narrowed);
    assert!(
        text.contains("Plan: 0 to add, 1 to change, 0 to destroy."),
        "{text}"
    );
    assert!(
        text.contains("function/thumbs will be updated") && !text.contains("function/web will"),
        "{text}"
    );
    assert!(
        text.contains("partial plan: only function/thumbs"),
        "{text}"
    );
    assert!(
        stderr(&narrowed).contains("the plan is partial (--target)"),
        "{}",
        stderr(&narrowed)
    );

    ok(&moto.scar(
        d,
        &[
            "apply",
            ".",
            "--auto-approve",
            "--target",
            "function/thumbs",
        ],
    ));
    let rest = stdout(&moto.scar(d, &["plan", "."]));
    assert!(
        rest.contains("Plan: 0 to add, 1 to change, 0 to destroy."),
        "{rest}"
    );
    assert!(rest.contains("function/web will be updated"), "{rest}");

    // Saved narrowed, applied as saved; the saved plan's steps are compared with a fresh plan
    // narrowed the same way.
    ok(&moto.scar(
        d,
        &["plan", ".", "--target", "function/web", "-o", "web.json"],
    ));
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("web.json")).expect("plan"))
            .expect("JSON");
    assert_eq!(saved["plan"]["targets"][0], "function/web", "{saved:#}");
    let refused = moto.scar(d, &["apply", "web.json", "--target", "function/thumbs"]);
    assert_eq!(refused.status.code(), Some(1));
    ok(&moto.scar(d, &["apply", "web.json", "--auto-approve"]));
    assert_eq!(
        moto.scar(d, &["plan", ".", "--detailed-exitcode"])
            .status
            .code(),
        Some(0)
    );
    let unknown = moto.scar(d, &["plan", ".", "--target", "function/nope"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        stderr(&unknown).contains("--target function/nope: the plan has no such resource"),
        "{}",
        stderr(&unknown)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn refresh_only_shows_the_drift_alone_and_writes_nothing() {
    let moto = Moto::start();
    let dir = stack();
    let d = dir.path();
    ok(&moto.scar(d, &["apply", ".", "--auto-approve"]));
    // Someone changes thumbs in the console; the manifests change web.
    let lambda = aws_sdk_lambda::Client::new(&moto.sdk().await);
    lambda
        .update_function_configuration()
        .function_name("thumbs")
        .memory_size(3008)
        .send()
        .await
        .expect("drift");
    let p = d.join("web.yaml");
    let text = std::fs::read_to_string(&p).expect("read");
    write(&p, &text.replace("  memory: 1024\n", "  memory: 2048\n"));

    let refreshed = moto.scar(d, &["plan", ".", "--refresh-only", "--detailed-exitcode"]);
    assert_eq!(refreshed.status.code(), Some(2), "{}", stderr(&refreshed));
    let out = stdout(&refreshed);
    assert!(
        out.contains("function/thumbs has changed") && out.contains("memory = 3008"),
        "{out}"
    );
    assert!(!out.contains("function/web"), "{out}");
    assert!(
        out.contains("refresh-only plan: 1 resource(s) changed outside scar"),
        "{out}"
    );
    assert!(
        out.contains("1 change(s) from the manifests are not shown"),
        "{out}"
    );
    let memory = lambda
        .get_function_configuration()
        .function_name("thumbs")
        .send()
        .await
        .expect("read")
        .memory_size();
    assert_eq!(memory, Some(3008), "nothing was written");
}

#[tokio::test(flavor = "multi_thread")]
async fn replace_recreates_a_function_then_its_permission_and_the_trigger_still_fires() {
    let moto = Moto::start();
    let dir = stack();
    let d = dir.path();
    ok(&moto.scar(d, &["apply", ".", "--auto-approve"]));
    let sdk = moto.sdk().await;
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    // A published version marks the function that exists now: a new one has none.
    lambda
        .publish_version()
        .function_name("thumbs")
        .send()
        .await
        .expect("publish");

    let planned = moto.scar(
        d,
        &[
            "plan",
            ".",
            "--replace",
            "function/thumbs",
            "--format",
            "json",
        ],
    );
    let json = json_of(&planned);
    let changes: Vec<(String, Value, Value)> = json["resource_changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter(|c| c["change"]["actions"] != serde_json::json!(["no-op"]))
        .map(|c| {
            (
                c["address"].as_str().unwrap_or_default().to_owned(),
                c["change"]["actions"].clone(),
                c["action_reason"].clone(),
            )
        })
        .collect();
    // Lambda deletes a function's permissions and invoke configuration with it.
    assert_eq!(changes.len(), 3, "{changes:?}");
    assert_eq!(changes[0].0, "function/thumbs", "the function first");
    assert_eq!(changes[0].1, serde_json::json!(["delete", "create"]));
    assert_eq!(changes[0].2, "replace_by_request");
    let mut with: Vec<&str> = changes[1..].iter().map(|c| c.0.as_str()).collect();
    with.sort_unstable();
    assert!(
        with[0] == "invoke_config/thumbs" && with[1].starts_with("lambda_permission/thumbs/"),
        "{changes:?}"
    );
    assert!(
        changes[1..].iter().all(|c| c.2 == "replace_with_function"),
        "{changes:?}"
    );
    let text = stdout(&moto.scar(d, &["plan", ".", "--replace", "function/thumbs"]));
    assert!(
        text.contains("function/thumbs must be replaced (as requested with --replace)")
            && text.contains("Plan: 3 to add, 0 to change, 3 to destroy."),
        "{text}"
    );

    // What holds data or a name others use is refused, and nothing is written.
    let refused = moto.scar(
        d,
        &[
            "apply",
            ".",
            "--auto-approve",
            "--replace",
            "bucket/ops-data",
        ],
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("--replace bucket/ops-data: a bucket cannot be replaced"),
        "{}",
        stderr(&refused)
    );

    // Saved with --replace, applied as saved.
    ok(&moto.scar(
        d,
        &["plan", ".", "--replace", "function/thumbs", "-o", "r.json"],
    ));
    let applied = moto.scar(d, &["apply", "r.json", "--auto-approve"]);
    ok(&applied);
    let log = stderr(&applied);
    let at = |what: &str| {
        log.find(what)
            .unwrap_or_else(|| panic!("`{what}` missing:\n{log}"))
    };
    assert!(
        at("function/thumbs: Replacement complete") < at("lambda_permission/thumbs/"),
        "{log}"
    );
    let versions = lambda
        .list_versions_by_function()
        .function_name("thumbs")
        .send()
        .await
        .expect("versions");
    let versions: Vec<&str> = versions
        .versions()
        .iter()
        .filter_map(|v| v.version())
        .collect();
    assert_eq!(versions, ["$LATEST"], "a new function, not the old one");
    let policy = lambda
        .get_policy()
        .function_name("thumbs")
        .send()
        .await
        .expect("the permission is back")
        .policy
        .unwrap_or_default();
    assert!(policy.contains("arn:aws:s3:::ops-data"), "{policy}");
    let again = moto.scar(d, &["plan", ".", "--detailed-exitcode"]);
    assert_eq!(
        again.status.code(),
        Some(0),
        "converged: {}",
        stdout(&again)
    );

    // What S3 needs to fire the new function: the bucket's entry names its ARN and the new
    // function's policy lets S3 invoke it for that bucket. (moto cannot show the firing for
    // an image function: its S3-to-Lambda path stops at `LambdaFunction.code_digest`, which
    // only zip functions have; the SCAR 4.x adoption test shows it for a zip function.)
    let arn = lambda
        .get_function()
        .function_name("thumbs")
        .send()
        .await
        .expect("function")
        .configuration
        .and_then(|c| c.function_arn)
        .expect("arn");
    let entries = s3(&sdk)
        .get_bucket_notification_configuration()
        .bucket("ops-data")
        .send()
        .await
        .expect("notification");
    assert!(
        entries
            .lambda_function_configurations()
            .iter()
            .any(|e| e.lambda_function_arn() == arn),
        "{entries:?}"
    );
    assert!(policy.contains("s3.amazonaws.com"), "{policy}");
}

#[tokio::test(flavor = "multi_thread")]
async fn protection_and_ignored_fields_hold_against_plans_that_would_undo_them() {
    let moto = Moto::start();
    let dir = stack();
    let d = dir.path();
    let thumbs = d.join("thumbs.yaml");
    let protected = THUMBS.replace(
        "  image: grycap/imagemagick\n",
        "  image: grycap/imagemagick\n  deletionProtection: true\n  reservedConcurrency: 5\n  ignoreChanges: [reservedConcurrency, memory]\n",
    );
    write(&thumbs, &protected);
    ok(&moto.scar(d, &["apply", ".", "--auto-approve"]));
    let lambda = aws_sdk_lambda::Client::new(&moto.sdk().await);
    let read = || async {
        let f = lambda
            .get_function()
            .function_name("thumbs")
            .send()
            .await
            .expect("function");
        (
            f.concurrency()
                .and_then(|c| c.reserved_concurrent_executions()),
            f.configuration().and_then(|c| c.memory_size()),
            f.configuration().and_then(|c| c.timeout()),
            f.tags()
                .and_then(|t| t.get("scar:deletion-protection"))
                .cloned(),
        )
    };
    assert_eq!(
        read().await,
        (Some(5), Some(512), Some(300), Some("true".into()))
    );

    // Operations raise the concurrency and the memory during an incident: scar keeps them.
    lambda
        .put_function_concurrency()
        .function_name("thumbs")
        .reserved_concurrent_executions(50)
        .send()
        .await
        .expect("ops");
    lambda
        .update_function_configuration()
        .function_name("thumbs")
        .memory_size(3008)
        .send()
        .await
        .expect("ops");
    let quiet = moto.scar(d, &["plan", ".", "--detailed-exitcode"]);
    assert_eq!(quiet.status.code(), Some(0), "{}", stdout(&quiet));
    write(
        &thumbs,
        &protected.replace(
            "  reservedConcurrency: 5\n",
            "  reservedConcurrency: 5\n  timeout: 60\n",
        ),
    );
    let plan = stdout(&moto.scar(d, &["plan", "."]));
    assert!(
        plan.contains("timeout = 300 -> 60")
            && !plan.contains("memory")
            && !plan.contains("reserved"),
        "{plan}"
    );
    ok(&moto.scar(d, &["apply", ".", "--auto-approve"]));
    assert_eq!(
        read().await,
        (Some(50), Some(3008), Some(60), Some("true".into()))
    );

    // Its manifest gone, or the stack destroyed, or a replace: refused, nothing deleted.
    std::fs::remove_file(&thumbs).expect("rm");
    for args in [
        &["plan", "."][..],
        &["apply", ".", "--auto-approve"],
        &["destroy", ".", "--auto-approve"],
    ] {
        let refused = moto.scar(d, args);
        assert_eq!(refused.status.code(), Some(1), "{args:?}");
        assert!(
            stdout(&refused).contains("deletion protection is on")
                || stderr(&refused).contains("deletion protection is on"),
            "{args:?}: {}{}",
            stdout(&refused),
            stderr(&refused)
        );
    }
    write(&thumbs, &protected);
    let replace = moto.scar(d, &["plan", ".", "--replace", "function/thumbs"]);
    assert_eq!(replace.status.code(), Some(1));
    assert!(
        stderr(&replace).contains("deletion protection is on"),
        "{}",
        stderr(&replace)
    );
    assert!(read().await.0.is_some(), "still there");

    // Turned off and applied, then deleted.
    write(
        &thumbs,
        &protected.replace("deletionProtection: true", "deletionProtection: false"),
    );
    ok(&moto.scar(d, &["apply", ".", "--auto-approve"]));
    std::fs::remove_file(&thumbs).expect("rm");
    ok(&moto.scar(d, &["apply", ".", "--auto-approve"]));
    assert!(
        lambda
            .get_function()
            .function_name("thumbs")
            .send()
            .await
            .is_err(),
        "deleted"
    );
}
