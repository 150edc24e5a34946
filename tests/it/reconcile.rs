//! Plan and apply against a real AWS-compatible server (moto on loopback, one per test),
//! through the real binary and the real AWS SDK. Scenarios from the plan/apply issue:
//! apply then an empty plan, a one-field edit, drift, prune, foreign resources, stale saved
//! plans, and invalid manifests making no request at all.

use crate::support;

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::support::moto::{Moto, copy_dir, s3, sdk_config};
use crate::support::{ok, stderr, stdout};

const STACK: &str = "apiVersion: scar/v1alpha1
kind: Stack
metadata:
  name: demo
spec:
  region: us-east-1
  role:
    managed: true
";

fn function(name: &str, bucket: &str, prefix: &str, memory: u32) -> String {
    format!(
        "apiVersion: scar/v1alpha1
kind: Function
metadata:
  name: {name}
spec:
  image: grycap/imagemagick
  memory: {memory}
  input:
    - bucket: {bucket}
      prefix: {prefix}
  output:
    - bucket: {bucket}
      prefix: {name}-out/
"
    )
}

fn stack_dir(files: &[(&str, String)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("stack.yaml"), STACK).expect("write");
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).expect("write");
    }
    dir
}

fn example(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("manifests")
            .join(name),
        dir.path(),
    );
    dir
}

/// Asserts that a bucket's notification configuration holds no Lambda entry (or none at all).
async fn assert_no_triggers(s3c: &aws_sdk_s3::Client, bucket: &str, why: &str) {
    let n = s3c
        .get_bucket_notification_configuration()
        .bucket(bucket)
        .send()
        .await;
    if let Ok(n) = n {
        assert!(n.lambda_function_configurations().is_empty(), "{why}");
    }
}

async fn memory_of(moto: &Moto, name: &str) -> i32 {
    let lambda = aws_sdk_lambda::Client::new(&moto.sdk().await);
    let c = lambda
        .get_function_configuration()
        .function_name(name)
        .send()
        .await
        .expect("function exists");
    c.memory_size().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_an_example_then_the_plan_is_empty() {
    let moto = Moto::start();
    let dir = example("imagemagick");
    let out = moto.scar(dir.path(), &["apply", ".", "--auto-approve"]);
    ok(&out);
    assert!(
        stdout(&out).contains("Apply complete! Resources: 10 added, 0 changed, 0 destroyed."),
        "{}",
        stdout(&out)
    );
    let plan = moto.scar(dir.path(), &["plan", ".", "--detailed-exitcode"]);
    assert_eq!(
        plan.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&plan),
        stderr(&plan)
    );
    assert!(stdout(&plan).contains("No changes."));
    assert_eq!(memory_of(&moto, "scar-imagemagick").await, 1024);
}

#[tokio::test(flavor = "multi_thread")]
async fn one_edited_field_is_exactly_one_change() {
    let moto = Moto::start();
    let dir = example("imagemagick");
    ok(&moto.scar(dir.path(), &["apply", ".", "--auto-approve"]));
    let file = dir.path().join("grayify.yaml");
    let text = std::fs::read_to_string(&file)
        .expect("read")
        .replace("memory: 1024", "memory: 2048");
    std::fs::write(&file, text).expect("write");

    let plan = moto.scar(dir.path(), &["plan", ".", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(2), "{}", stderr(&plan));
    let text = stdout(&plan);
    assert!(text.contains("~ memory = 1024 -> 2048"), "{text}");
    assert!(
        text.contains("Plan: 0 to add, 1 to change, 0 to destroy."),
        "{text}"
    );
    let changed: Vec<&str> = text
        .lines()
        .filter(|l| l.trim_start().starts_with("~ ") && l.contains(" = "))
        .collect();
    assert_eq!(changed, ["      ~ memory = 1024 -> 2048"], "{text}");

    ok(&moto.scar(dir.path(), &["apply", ".", "--auto-approve"]));
    assert_eq!(memory_of(&moto, "scar-imagemagick").await, 2048);
    let again = moto.scar(dir.path(), &["plan", ".", "--detailed-exitcode"]);
    assert_eq!(again.status.code(), Some(0), "{}", stdout(&again));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_out_of_band_change_is_drift_and_apply_restores_it() {
    let moto = Moto::start();
    let dir = example("imagemagick");
    ok(&moto.scar(dir.path(), &["apply", ".", "--auto-approve"]));
    let lambda = aws_sdk_lambda::Client::new(&moto.sdk().await);
    lambda
        .update_function_configuration()
        .function_name("scar-imagemagick")
        .memory_size(256)
        .send()
        .await
        .expect("out-of-band update");

    let plan = moto.scar(dir.path(), &["plan", ".", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(2), "{}", stderr(&plan));
    let text = stdout(&plan);
    assert!(
        text.contains("Note: Objects have changed outside of scar"),
        "{text}"
    );
    assert!(
        text.contains("# function/scar-imagemagick has changed"),
        "{text}"
    );
    assert!(
        text.contains("(restores a change made outside scar)"),
        "{text}"
    );
    let json = moto.scar(dir.path(), &["plan", ".", "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json plan");
    assert_eq!(
        doc["resource_drift"][0]["address"],
        "function/scar-imagemagick"
    );

    ok(&moto.scar(dir.path(), &["apply", ".", "--auto-approve"]));
    assert_eq!(memory_of(&moto, "scar-imagemagick").await, 1024);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_removed_manifest_prunes_the_function_and_keeps_the_data() {
    let moto = Moto::start();
    let dir = stack_dir(&[
        (
            "thumbs.yaml",
            function("thumbs", "demo-media", "input/", 512),
        ),
        ("exif.yaml", function("exif", "demo-photos", "photos/", 512)),
    ]);
    ok(&moto.scar(dir.path(), &["apply", ".", "--auto-approve"]));
    let config = moto.sdk().await;
    let s3c = s3(&config);
    s3c.put_object()
        .bucket("demo-photos")
        .key("photos/cat.jpg")
        .body(b"meow".to_vec().into())
        .send()
        .await
        .expect("put");

    std::fs::remove_file(dir.path().join("exif.yaml")).expect("rm");
    let out = moto.scar(dir.path(), &["apply", ".", "--auto-approve"]);
    ok(&out);
    let text = stdout(&out);
    for addr in [
        "function/exif",
        "log_group/exif",
        "lambda_permission/exif/s3:demo-photos",
    ] {
        assert!(
            text.contains(&format!("# {addr} will be destroyed")),
            "{addr} not pruned:\n{text}"
        );
    }
    assert!(
        text.contains("s3_trigger/demo-photos:scar.demo.exif."),
        "{text}"
    );

    let lambda = aws_sdk_lambda::Client::new(&config);
    assert!(
        lambda
            .get_function()
            .function_name("exif")
            .send()
            .await
            .is_err(),
        "exif still exists"
    );
    assert!(
        lambda
            .get_function()
            .function_name("thumbs")
            .send()
            .await
            .is_ok(),
        "thumbs was touched"
    );
    let logs = aws_sdk_cloudwatchlogs::Client::new(&config);
    let groups = logs
        .describe_log_groups()
        .log_group_name_prefix("/aws/lambda/exif")
        .send()
        .await
        .expect("logs");
    assert!(groups.log_groups().is_empty(), "log group left behind");
    let obj = s3c
        .get_object()
        .bucket("demo-photos")
        .key("photos/cat.jpg")
        .send()
        .await;
    assert!(obj.is_ok(), "the bucket's data must survive a prune");
    assert_no_triggers(&s3c, "demo-photos", "trigger entry left behind").await;
    let again = moto.scar(dir.path(), &["plan", ".", "--detailed-exitcode"]);
    assert_eq!(again.status.code(), Some(0), "{}", stdout(&again));
}

async fn foreign_function(
    lambda: &aws_sdk_lambda::Client,
    role: &str,
    name: &str,
    tags: &[(&str, &str)],
) {
    let mut req = lambda
        .create_function()
        .function_name(name)
        .package_type(aws_sdk_lambda::types::PackageType::Image)
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .image_uri("someone/else:1")
                .build(),
        )
        .role(role)
        .memory_size(128);
    for (k, v) in tags {
        req = req.tags(*k, *v);
    }
    req.send().await.expect("create a foreign function");
}

/// Someone else's role, an untagged function `untagged` and a function `other` of another
/// scar stack, both running with that role.
async fn foreign_functions(
    iam: &aws_sdk_iam::Client,
    lambda: &aws_sdk_lambda::Client,
    other: &str,
) {
    let role = iam
        .create_role()
        .role_name("someone-elses")
        .assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[]}"#)
        .send()
        .await
        .expect("role");
    let role_arn = role.role().map(|r| r.arn().to_owned()).unwrap_or_default();
    foreign_function(lambda, &role_arn, "untagged", &[]).await;
    foreign_function(
        lambda,
        &role_arn,
        other,
        &[("scar:stack", "other"), ("scar:managed-by", "scar")],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn foreign_resources_survive_apply_prune_and_destroy() {
    let moto = Moto::start();
    let config = moto.sdk().await;
    let iam = aws_sdk_iam::Client::new(&config);
    let lambda = aws_sdk_lambda::Client::new(&config);
    foreign_functions(&iam, &lambda, "other-stack-fn").await;
    let s3c = s3(&config);
    s3c.create_bucket()
        .bucket("demo-media")
        .send()
        .await
        .expect("bucket");
    let queue = aws_sdk_s3::types::QueueConfiguration::builder()
        .id("someone-elses-queue")
        .queue_arn("arn:aws:sqs:us-east-1:123456789012:uploads")
        .events(aws_sdk_s3::types::Event::S3ObjectCreated)
        .filter(
            aws_sdk_s3::types::NotificationConfigurationFilter::builder()
                .key(
                    aws_sdk_s3::types::S3KeyFilter::builder()
                        .filter_rules(
                            aws_sdk_s3::types::FilterRule::builder()
                                .name(aws_sdk_s3::types::FilterRuleName::Prefix)
                                .value("queue/")
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .build()
        .expect("queue configuration");
    s3c.put_bucket_notification_configuration()
        .bucket("demo-media")
        .notification_configuration(
            aws_sdk_s3::types::NotificationConfiguration::builder()
                .queue_configurations(queue)
                .build(),
        )
        .send()
        .await
        .expect("a foreign SQS entry");

    let survivors = || async {
        for name in ["untagged", "other-stack-fn"] {
            let f = lambda
                .get_function_configuration()
                .function_name(name)
                .send()
                .await
                .expect("foreign function survives");
            assert_eq!(f.memory_size(), Some(128), "{name} was modified");
        }
        let n = s3c
            .get_bucket_notification_configuration()
            .bucket("demo-media")
            .send()
            .await
            .expect("config");
        assert_eq!(
            n.queue_configurations().len(),
            1,
            "the SQS entry was dropped"
        );
        assert_eq!(
            n.queue_configurations()[0].id(),
            Some("someone-elses-queue")
        );
        s3c.head_bucket()
            .bucket("demo-media")
            .send()
            .await
            .expect("the bucket survives");
    };

    let dir = stack_dir(&[
        (
            "thumbs.yaml",
            function("thumbs", "demo-media", "input/", 512),
        ),
        ("exif.yaml", function("exif", "demo-photos", "photos/", 512)),
    ]);
    ok(&moto.scar(dir.path(), &["apply", ".", "--auto-approve"]));
    survivors().await;
    let n = s3c
        .get_bucket_notification_configuration()
        .bucket("demo-media")
        .send()
        .await
        .expect("config");
    assert_eq!(
        n.lambda_function_configurations().len(),
        1,
        "scar's entry sits beside the SQS one"
    );

    std::fs::remove_file(dir.path().join("thumbs.yaml")).expect("rm");
    ok(&moto.scar(dir.path(), &["apply", ".", "--auto-approve"]));
    survivors().await;

    ok(&moto.scar(dir.path(), &["destroy", ".", "--auto-approve"]));
    survivors().await;
    assert!(
        lambda
            .get_function()
            .function_name("exif")
            .send()
            .await
            .is_err(),
        "destroy left exif"
    );

    // A manifest that names an unowned function is a plan error, then adoptable.
    let clash = stack_dir(&[(
        "untagged.yaml",
        function("untagged", "demo-media", "input/", 512),
    )]);
    let plan = moto.scar(clash.path(), &["plan", "."]);
    assert_eq!(plan.status.code(), Some(1));
    assert!(
        stdout(&plan).contains("scar adopt DIR function/untagged"),
        "{}",
        stdout(&plan)
    );
    ok(&moto.scar(
        clash.path(),
        &["adopt", ".", "function/untagged", "--auto-approve"],
    ));
    let plan = moto.scar(clash.path(), &["plan", ".", "--detailed-exitcode"]);
    assert_eq!(
        plan.status.code(),
        Some(2),
        "{}\n{}",
        stdout(&plan),
        stderr(&plan)
    );
    assert!(
        stdout(&plan).contains("~ memory = 128 -> 512"),
        "{}",
        stdout(&plan)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stale_saved_plan_is_refused_and_writes_nothing() {
    let moto = Moto::start();
    let dir = example("imagemagick");
    ok(&moto.scar(dir.path(), &["apply", ".", "--auto-approve"]));
    let file = dir.path().join("grayify.yaml");
    let text = std::fs::read_to_string(&file)
        .expect("read")
        .replace("memory: 1024", "memory: 2048");
    std::fs::write(&file, text).expect("write");
    let plan = moto.scar(dir.path(), &["plan", ".", "-o", "plan.json"]);
    ok(&plan);
    let show = moto.scar(dir.path(), &["show", "plan.json"]);
    ok(&show);
    assert!(stdout(&show).contains("~ memory = 1024 -> 2048"));

    let lambda = aws_sdk_lambda::Client::new(&moto.sdk().await);
    lambda
        .update_function_configuration()
        .function_name("scar-imagemagick")
        .timeout(30)
        .send()
        .await
        .expect("out-of-band");
    let apply = moto.scar(dir.path(), &["apply", "plan.json"]);
    assert_eq!(apply.status.code(), Some(1), "{}", stderr(&apply));
    assert!(stderr(&apply).contains("stale"), "{}", stderr(&apply));
    assert_eq!(
        memory_of(&moto, "scar-imagemagick").await,
        1024,
        "a stale plan wrote something"
    );

    // A fresh saved plan applies.
    ok(&moto.scar(dir.path(), &["plan", ".", "-o", "plan.json"]));
    ok(&moto.scar(dir.path(), &["apply", "plan.json"]));
    assert_eq!(memory_of(&moto, "scar-imagemagick").await, 2048);
}

#[test]
fn invalid_manifests_make_no_aws_request() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("listener");
    let port = listener.local_addr().expect("addr").port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    listener.set_nonblocking(true).expect("nonblocking");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let watcher = std::thread::spawn(move || {
        while !stop2.load(Ordering::SeqCst) {
            if let Ok((mut s, _)) = listener.accept() {
                counter.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf);
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    });
    let endpoint = format!("http://127.0.0.1:{port}");
    let case = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/invalid/memory-too-low");
    for args in [
        &["plan", "."][..],
        &["apply", ".", "--auto-approve"],
        &["destroy", ".", "--auto-approve"],
    ] {
        let out = support::moto::scar_command(&endpoint, &case, args)
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            stderr(&out).contains("nothing was read from or written to AWS"),
            "{}",
            stderr(&out)
        );
    }
    stop.store(true, Ordering::SeqCst);
    let _ = watcher.join();
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        0,
        "an invalid stack reached the network"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_account_guard_stops_everything() {
    let moto = Moto::start();
    let dir = example("darknet-http");
    // moto's account is 123456789012 and the example is guarded to it: plan works.
    ok(&moto.scar(dir.path(), &["plan", "."]));
    let file = dir.path().join("stack.yaml");
    let text = std::fs::read_to_string(&file)
        .expect("read")
        .replace("123456789012", "999999999999");
    std::fs::write(&file, text).expect("write");
    let out = moto.scar(dir.path(), &["apply", ".", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("guarded to 999999999999"),
        "{}",
        stderr(&out)
    );
    let config = sdk_config(&moto.endpoint).await;
    let lambda = aws_sdk_lambda::Client::new(&config);
    assert!(
        lambda
            .get_function()
            .function_name("scar-darknet-api-s3")
            .send()
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn removing_an_input_removes_its_permission_and_trigger() {
    let moto = Moto::start();
    let dir = stack_dir(&[(
        "thumbs.yaml",
        function("thumbs", "demo-media", "input/", 512),
    )]);
    ok(&moto.scar(dir.path(), &["apply", ".", "--auto-approve"]));
    let no_input = "apiVersion: scar/v1alpha1\nkind: Function\nmetadata:\n  name: thumbs\nspec:\n  image: grycap/imagemagick\n  memory: 512\n  output:\n    - bucket: demo-media\n      prefix: thumbs-out/\n";
    std::fs::write(dir.path().join("thumbs.yaml"), no_input).expect("write");
    let out = moto.scar(dir.path(), &["apply", ".", "--auto-approve"]);
    ok(&out);
    let text = stdout(&out);
    assert!(
        text.contains("# lambda_permission/thumbs/s3:demo-media will be destroyed"),
        "{text}"
    );
    assert!(
        text.contains("~ \"scar:s3-invoke\" = \"true\" -> \"false\""),
        "{text}"
    );
    let config = moto.sdk().await;
    let lambda = aws_sdk_lambda::Client::new(&config);
    let statements = match lambda.get_policy().function_name("thumbs").send().await {
        Ok(p) => serde_json::from_str::<serde_json::Value>(p.policy().unwrap_or("{}"))
            .unwrap_or_default()["Statement"]
            .as_array()
            .map_or(0, Vec::len),
        Err(_) => 0,
    };
    assert_eq!(statements, 0, "the S3 permission stayed");
    assert_no_triggers(&s3(&config), "demo-media", "the trigger stayed").await;
    let again = moto.scar(dir.path(), &["plan", ".", "--detailed-exitcode"]);
    assert_eq!(again.status.code(), Some(0), "{}", stdout(&again));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_script_edit_shows_as_a_diff_rebuilds_the_image_and_round_trips() {
    let moto = Moto::start();
    let dir = example("imagemagick");
    ok(&moto.scar(dir.path(), &["apply", ".", "--auto-approve"]));
    let script = dir.path().join("scripts/grayify-image.sh");
    let text = std::fs::read_to_string(&script).expect("read");
    std::fs::write(
        &script,
        text.replace("-type Grayscale", "-type Grayscale -strip"),
    )
    .expect("write");
    let plan = moto.scar(dir.path(), &["plan", ".", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(2), "{}", stderr(&plan));
    let out = stdout(&plan);
    // The script is inside the assembled image: the plan rebuilds it and moves the function
    // to the new image.
    assert!(out.contains("~ script_sha256 = \"sha256:"), "{out}");
    // The old script is read from the image the function runs: the change shows as a diff.
    assert!(out.contains("~ script = <<-DIFF"), "{out}");
    assert!(
        out.contains("+convert \"$INPUT_FILE_PATH\" -type Grayscale -strip"),
        "{out}"
    );
    assert!(
        out.contains("# function_image/scar-imagemagick will be updated in-place"),
        "{out}"
    );
    assert!(out.contains("-> (known after apply)"), "{out}");
    assert!(!out.contains("changed outside of scar"), "{out}");
    ok(&moto.scar(dir.path(), &["apply", ".", "--auto-approve"]));
    let again = moto.scar(dir.path(), &["plan", ".", "--detailed-exitcode"]);
    assert_eq!(again.status.code(), Some(0), "{}", stdout(&again));
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_terminal_apply_asks_for_auto_approve_and_changes_nothing() {
    let moto = Moto::start();
    let dir = example("imagemagick");
    let out = moto.scar(dir.path(), &["apply", "."]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("pass --auto-approve"),
        "{}",
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("Plan: 10 to add"),
        "the plan is shown first"
    );
    let lambda = aws_sdk_lambda::Client::new(&moto.sdk().await);
    assert!(
        lambda
            .get_function()
            .function_name("scar-imagemagick")
            .send()
            .await
            .is_err(),
        "something was created"
    );
    let destroy = moto.scar(dir.path(), &["destroy", "."]);
    assert_eq!(
        destroy.status.code(),
        Some(0),
        "nothing to destroy is no error: {}",
        stderr(&destroy)
    );
}

/// The steps of a saved plan, as JSON, for editing the way an attacker would.
fn plan_steps(doc: &mut serde_json::Value) -> &mut Vec<serde_json::Value> {
    doc["plan"]["steps"].as_array_mut().expect("steps")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_saved_plan_is_trusted_whole() {
    let moto = Moto::start();
    let dir = example("imagemagick");
    ok(&moto.scar(dir.path(), &["apply", ".", "--auto-approve"]));
    let config = moto.sdk().await;
    let lambda = aws_sdk_lambda::Client::new(&config);
    let role = lambda
        .get_function()
        .function_name("scar-imagemagick")
        .send()
        .await
        .expect("function")
        .configuration()
        .and_then(|c| c.role())
        .unwrap_or_default()
        .to_owned();
    foreign_function(&lambda, &role, "intruder", &[]).await;
    let file = dir.path().join("grayify.yaml");
    let text = std::fs::read_to_string(&file)
        .expect("read")
        .replace("memory: 1024", "memory: 2048");
    std::fs::write(&file, text).expect("write");
    ok(&moto.scar(dir.path(), &["plan", ".", "-o", "plan.json"]));
    let saved = std::fs::read_to_string(dir.path().join("plan.json")).expect("plan");
    let doc: serde_json::Value = serde_json::from_str(&saved).expect("json");

    // 1. A delete of a function scar never owned, slipped into the steps.
    let mut deletes = doc.clone();
    let mut intruder = plan_steps(&mut deletes)
        .iter()
        .find(|s| s["address"] == "function/scar-imagemagick")
        .cloned()
        .expect("the function's step");
    intruder["address"] = "function/intruder".into();
    intruder["action"] = "delete".into();
    intruder["changes"] = serde_json::json!([]);
    intruder["after"] = serde_json::Value::Null;
    intruder["expected_fingerprint"] = serde_json::Value::Null;
    plan_steps(&mut deletes).push(intruder);
    // 2. The managed role given everything, in the desired state and the steps alike.
    let mut widened = doc.clone();
    for r in widened["desired"]["resources"]
        .as_array_mut()
        .expect("resources")
    {
        if r["address"]
            .as_str()
            .is_some_and(|a| a.starts_with("iam_role/"))
        {
            r["attrs"]["policy"]["Statement"][0]["Action"] = "*".into();
            r["attrs"]["policy"]["Statement"][0]["Resource"] = "*".into();
        }
    }
    // 3. What apply runs (`after`) changed, what show renders (`changes`) kept.
    let mut hidden = doc.clone();
    for s in plan_steps(&mut hidden) {
        if s["address"] == "function/scar-imagemagick" {
            s["after"]["memory"] = 10240.into();
        }
    }
    for (case, edited) in [("delete", deletes), ("role", widened), ("hidden", hidden)] {
        std::fs::write(
            dir.path().join("edited.json"),
            serde_json::to_string(&edited).expect("json"),
        )
        .expect("write");
        let apply = moto.scar(dir.path(), &["apply", "edited.json"]);
        let err = stderr(&apply);
        assert_eq!(apply.status.code(), Some(1), "{case}: {err}");
        assert!(err.contains("nothing was written"), "{case}: {err}");
        if case == "hidden" {
            let show = moto.scar(dir.path(), &["show", "edited.json"]);
            assert_eq!(show.status.code(), Some(1), "show rendered an edited plan");
            assert!(stderr(&show).contains("was edited"), "{}", stderr(&show));
        }
    }
    assert!(
        lambda
            .get_function()
            .function_name("intruder")
            .send()
            .await
            .is_ok(),
        "an edited plan deleted a function scar does not own"
    );
    assert_eq!(memory_of(&moto, "scar-imagemagick").await, 1024);
    let iam = aws_sdk_iam::Client::new(&config);
    let policy = iam
        .get_role_policy()
        .role_name("scar-imagemagick-exec")
        .policy_name("scar")
        .send()
        .await
        .map(|p| p.policy_document().to_owned())
        .unwrap_or_default();
    assert!(!policy.contains("\"*\""), "{policy}");

    // The plan as made applies.
    ok(&moto.scar(dir.path(), &["apply", "plan.json"]));
    assert_eq!(memory_of(&moto, "scar-imagemagick").await, 2048);
}

#[tokio::test(flavor = "multi_thread")]
async fn ownership_is_checked_again_when_a_step_runs() {
    let moto = Moto::start();
    let config = moto.sdk().await;
    let iam = aws_sdk_iam::Client::new(&config);
    let lambda = aws_sdk_lambda::Client::new(&config);
    foreign_functions(&iam, &lambda, "other-stacks").await;
    // The executor runs in a child process of this test binary, which gets the emulator's
    // credentials in its environment (this process may not set its own).
    let child = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "reconcile::executor_refuses_what_the_stack_does_not_own",
            "--ignored",
        ])
        .env("SCAR_TEST_MOTO", &moto.endpoint)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("NO_PROXY", "127.0.0.1")
        .env_remove("AWS_PROFILE")
        .output()
        .expect("the child test runs");
    let report = String::from_utf8_lossy(&child.stdout);
    assert!(
        child.status.success() && report.contains("1 passed"),
        "{report}{}",
        String::from_utf8_lossy(&child.stderr)
    );
    for name in ["untagged", "other-stacks"] {
        let f = lambda
            .get_function()
            .function_name(name)
            .send()
            .await
            .expect("still there");
        assert_eq!(
            f.configuration().and_then(|c| c.memory_size()),
            Some(128),
            "{name} was changed"
        );
    }
}

/// Steps that update or delete functions stack `demo` does not own, given straight to the
/// executor (as an edited plan, or a race after the plan's read, would): each is refused.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "run by ownership_is_checked_again_when_a_step_runs, in a process with credentials"]
async fn executor_refuses_what_the_stack_does_not_own() {
    use scar::apply::Executor as _;
    let endpoint = std::env::var("SCAR_TEST_MOTO").expect("SCAR_TEST_MOTO");
    let settings = scar::cloud::Settings {
        endpoint: Some(endpoint),
        region: Some("us-east-1".into()),
        profile: None,
    };
    let cloud = scar::aws::AwsCloud::connect(&settings, "us-east-1").await;
    let session = scar::aws::AccountSession {
        cloud: &cloud,
        account: cloud.account_id().await.expect("account"),
        stack: "demo".into(),
    };
    for (name, action) in [
        ("untagged", "delete"),
        ("other-stacks", "delete"),
        ("untagged", "update"),
    ] {
        let after = if action == "update" {
            serde_json::json!({"memory": 4096})
        } else {
            serde_json::Value::Null
        };
        let step: scar::plan::Step = serde_json::from_value(serde_json::json!({
            "address": format!("function/{name}"),
            "action": action,
            "reason": null,
            "cause": "manifest",
            "changes": [],
            "before": {"memory": 128},
            "after": after,
            "sensitive": [],
            "depends_on": [],
            "expected_fingerprint": null,
        }))
        .expect("a step");
        let e = session
            .execute(&step)
            .await
            .expect_err("a write to what the stack does not own");
        assert!(e.message.contains("not to stack `demo`"), "{e}");
    }
}

/// A stack directory named `stack` whose functions (name, bucket, prefix) have one input each.
fn named_stack(stack: &str, functions: &[(&str, &str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("stack.yaml"),
        STACK.replace("name: demo", &format!("name: {stack}")),
    )
    .expect("write");
    for (name, bucket, prefix) in functions {
        std::fs::write(
            dir.path().join(format!("{name}.yaml")),
            format!(
                "apiVersion: scar/v1alpha1\nkind: Function\nmetadata:\n  name: {name}\nspec:\n  image: grycap/cowsay\n  input:\n    - bucket: {bucket}\n      prefix: {prefix}\n"
            ),
        )
        .expect("write");
    }
    dir
}

/// The Ids of a bucket's Lambda notification entries, sorted.
async fn trigger_ids(s3c: &aws_sdk_s3::Client, bucket: &str) -> Vec<String> {
    let mut ids: Vec<String> = s3c
        .get_bucket_notification_configuration()
        .bucket(bucket)
        .send()
        .await
        .map(|n| {
            n.lambda_function_configurations()
                .iter()
                .filter_map(|c| c.id().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn stacks_take_each_others_triggers() {
    let moto = Moto::start();
    let s3c = s3(&moto.sdk().await);
    s3c.create_bucket()
        .bucket("shared-bkt")
        .send()
        .await
        .expect("bucket");
    // Under the former Id grammar, stack `ab`'s function `x-f` and stack `ab-x`'s function `f`
    // both wrote `scar-ab-x-f-<hash>`, and `ab` took `ab-x`'s entry for its own.
    let ab = named_stack("ab", &[("x-f", "shared-bkt", "a/")]);
    let ab_x = named_stack("ab-x", &[("f", "shared-bkt", "b/")]);
    ok(&moto.scar(ab_x.path(), &["apply", ".", "--auto-approve"]));
    ok(&moto.scar(ab.path(), &["apply", ".", "--auto-approve"]));
    assert_eq!(trigger_ids(&s3c, "shared-bkt").await.len(), 2);
    for dir in [&ab, &ab_x] {
        let plan = moto.scar(dir.path(), &["plan", ".", "--detailed-exitcode"]);
        assert_eq!(plan.status.code(), Some(0), "{}", stdout(&plan));
    }

    // An entry the former grammar wrote for `ab`'s function is still read as `ab`'s (so it is
    // replaced, not orphaned), and never as `ab-x`'s.
    let lambda = aws_sdk_lambda::Client::new(&moto.sdk().await);
    let arn = lambda
        .get_function()
        .function_name("x-f")
        .send()
        .await
        .expect("x-f")
        .configuration()
        .and_then(|c| c.function_arn())
        .unwrap_or_default()
        .to_owned();
    let current = s3c
        .get_bucket_notification_configuration()
        .bucket("shared-bkt")
        .send()
        .await
        .expect("configuration");
    let mut entries = current.lambda_function_configurations().to_vec();
    entries.push(
        aws_sdk_s3::types::LambdaFunctionConfiguration::builder()
            .id("scar-ab-x-f-0badc0de")
            .lambda_function_arn(&arn)
            .events(aws_sdk_s3::types::Event::from("s3:ObjectCreated:*"))
            .build()
            .expect("entry"),
    );
    s3c.put_bucket_notification_configuration()
        .bucket("shared-bkt")
        .notification_configuration(
            aws_sdk_s3::types::NotificationConfiguration::builder()
                .set_lambda_function_configurations(Some(entries))
                .build(),
        )
        .send()
        .await
        .expect("a legacy entry");
    let plan = moto.scar(ab_x.path(), &["plan", ".", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "{}", stdout(&plan));
    let plan = moto.scar(ab.path(), &["plan", "."]);
    assert!(
        stdout(&plan).contains("s3_trigger/shared-bkt:scar-ab-x-f-0badc0de will be destroyed"),
        "{}",
        stdout(&plan)
    );
    ok(&moto.scar(ab.path(), &["apply", ".", "--auto-approve"]));
    let ids = trigger_ids(&s3c, "shared-bkt").await;
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(ids.iter().all(|i| i.starts_with("scar.")), "{ids:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_stacks_lose_each_others_triggers() {
    let moto = Moto::start();
    let s3c = s3(&moto.sdk().await);
    s3c.create_bucket()
        .bucket("crowd")
        .send()
        .await
        .expect("bucket");
    let stacks: Vec<tempfile::TempDir> = (1..=3)
        .map(|s| {
            let functions: Vec<(String, String)> = (1..=3)
                .map(|f| (format!("s{s}-f{f}"), format!("s{s}/f{f}/")))
                .collect();
            let refs: Vec<(&str, &str, &str)> = functions
                .iter()
                .map(|(n, p)| (n.as_str(), "crowd", p.as_str()))
                .collect();
            named_stack(&format!("s{s}"), &refs)
        })
        .collect();
    let children: Vec<std::process::Child> = stacks
        .iter()
        .map(|d| {
            support::moto::scar_command(&moto.endpoint, d.path(), &["apply", ".", "--auto-approve"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("scar starts")
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().expect("apply ends");
        ok(&out);
    }
    assert_eq!(
        trigger_ids(&s3c, "crowd").await.len(),
        9,
        "entries were lost"
    );
    for d in &stacks {
        let plan = moto.scar(d.path(), &["plan", ".", "--detailed-exitcode"]);
        assert_eq!(plan.status.code(), Some(0), "{}", stdout(&plan));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn image_drift_is_invisible() {
    let moto = Moto::start();
    let dir = example("imagemagick");
    ok(&moto.scar(dir.path(), &["apply", ".", "--auto-approve"]));
    let lambda = aws_sdk_lambda::Client::new(&moto.sdk().await);
    let image = |f: aws_sdk_lambda::operation::get_function::GetFunctionOutput| {
        f.code()
            .and_then(|c| c.image_uri())
            .unwrap_or_default()
            .to_owned()
    };
    let deployed = image(
        lambda
            .get_function()
            .function_name("scar-imagemagick")
            .send()
            .await
            .expect("function"),
    );
    lambda
        .update_function_code()
        .function_name("scar-imagemagick")
        .image_uri("123456789012.dkr.ecr.us-east-1.amazonaws.com/someone-else:latest")
        .send()
        .await
        .expect("out-of-band image");
    let plan = moto.scar(dir.path(), &["plan", ".", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(2), "{}", stdout(&plan));
    assert!(stdout(&plan).contains("someone-else"), "{}", stdout(&plan));
    ok(&moto.scar(dir.path(), &["apply", ".", "--auto-approve"]));
    let now = image(
        lambda
            .get_function()
            .function_name("scar-imagemagick")
            .send()
            .await
            .expect("function"),
    );
    assert_eq!(now, deployed, "apply did not set the deployed image back");
}

#[tokio::test(flavor = "multi_thread")]
async fn foreign_log_group_taken_over() {
    let moto = Moto::start();
    let logs = aws_sdk_cloudwatchlogs::Client::new(&moto.sdk().await);
    // Someone's log group with the name the stack's function would log to, and no function.
    logs.create_log_group()
        .log_group_name("/aws/lambda/scar-imagemagick")
        .tags("team", "audit")
        .send()
        .await
        .expect("log group");
    logs.put_retention_policy()
        .log_group_name("/aws/lambda/scar-imagemagick")
        .retention_in_days(3653)
        .send()
        .await
        .expect("retention");
    let dir = example("imagemagick");
    let apply = moto.scar(dir.path(), &["apply", ".", "--auto-approve"]);
    assert_eq!(apply.status.code(), Some(1), "{}", stdout(&apply));
    assert!(
        stdout(&apply).contains("log_group/scar-imagemagick")
            || stderr(&apply).contains("log_group/scar-imagemagick"),
        "{}",
        stdout(&apply)
    );
    let groups = logs
        .describe_log_groups()
        .log_group_name_prefix("/aws/lambda/scar-imagemagick")
        .send()
        .await
        .expect("groups");
    assert_eq!(
        groups
            .log_groups()
            .first()
            .and_then(|g| g.retention_in_days()),
        Some(3653),
        "the foreign group's retention was cut"
    );
    let destroy = moto.scar(dir.path(), &["destroy", ".", "--auto-approve"]);
    let _ = destroy;
    assert_eq!(
        logs.describe_log_groups()
            .log_group_name_prefix("/aws/lambda/scar-imagemagick")
            .send()
            .await
            .expect("groups")
            .log_groups()
            .len(),
        1,
        "destroy deleted a foreign log group"
    );
}

/// An IAM user of moto with `policy` inline, and its access key `(id, secret)`.
async fn iam_user(
    iam: &aws_sdk_iam::Client,
    name: &str,
    policy: &serde_json::Value,
) -> (String, String) {
    iam.create_user()
        .user_name(name)
        .send()
        .await
        .expect("user");
    iam.put_user_policy()
        .user_name(name)
        .policy_name("scar")
        .policy_document(policy.to_string())
        .send()
        .await
        .expect("policy");
    let key = iam
        .create_access_key()
        .user_name(name)
        .send()
        .await
        .expect("key");
    let key = key.access_key().expect("access key");
    (
        key.access_key_id().to_owned(),
        key.secret_access_key().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn what_the_cli_user_needs_is_undocumented() {
    // moto checks IAM policies once INITIAL_NO_AUTH_ACTION_COUNT requests have been made (the
    // six that make the two users below), but only for S3 does it check the resource asked
    // for: every other service is checked against `*`, which no resource-scoped statement
    // matches, and Lambda's requests fail its signature check once it checks at all. So S3
    // runs on a checking moto (`AWS_ENDPOINT_URL_S3`) and every other service on a second,
    // open one; the S3 statements of `scar policy` (the stack's buckets, its lock and the
    // notification leases) are checked exactly as printed. Lambda, Logs, IAM, ECR, STS,
    // tagging, Batch and API Gateway statements are not checked by this test.
    let open = Moto::start();
    let checking = Moto::start_with_env(&[("INITIAL_NO_AUTH_ACTION_COUNT", "6")]);
    let dir = stack_dir(&[("thumbs.yaml", function("thumbs", "demo-in", "in/", 512))]);
    let printed = open.scar(dir.path(), &["policy", ".", "--account", "123456789012"]);
    let printed: serde_json::Value = serde_json::from_slice(&printed.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", stderr(&printed)));
    let mut statements: Vec<serde_json::Value> = printed["Statement"]
        .as_array()
        .expect("statements")
        .iter()
        .filter(|s| {
            let actions: Vec<&str> = match &s["Action"] {
                serde_json::Value::String(a) => vec![a.as_str()],
                v => v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(serde_json::Value::as_str)
                    .collect(),
            };
            actions.iter().all(|a| a.starts_with("s3:"))
        })
        .cloned()
        .collect();
    assert!(statements.len() >= 3, "{printed}");
    // moto names HeadBucket's permission `s3:HeadBucket`; AWS checks `s3:ListBucket`, which
    // the printed policy grants on the lock bucket. The same bucket, moto's name for it.
    statements.push(
        serde_json::json!({"Effect": "Allow", "Action": "s3:HeadBucket",
        "Resource": "arn:aws:s3:::scar-locks-123456789012-us-east-1"}),
    );
    let scoped = serde_json::json!({"Version": "2012-10-17", "Statement": statements});
    let admin_policy = serde_json::json!({"Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]});
    let iam = aws_sdk_iam::Client::new(&checking.sdk().await);
    let (ci_id, ci_secret) = iam_user(&iam, "scar-ci", &scoped).await;
    let (admin_id, admin_secret) = iam_user(&iam, "admin", &admin_policy).await;
    let as_ci = |args: &[&str]| {
        let mut c = support::moto::scar_command(&open.endpoint, dir.path(), args);
        c.env_remove("AWS_ENDPOINT_URL")
            .env("AWS_ACCESS_KEY_ID", &ci_id)
            .env("AWS_SECRET_ACCESS_KEY", &ci_secret)
            .env("AWS_ENDPOINT_URL_S3", &checking.endpoint);
        for service in [
            "LAMBDA",
            "IAM",
            "STS",
            "CLOUDWATCH_LOGS",
            "ECR",
            "RESOURCE_GROUPS_TAGGING_API",
            "BATCH",
            "API_GATEWAY",
            "SQS",
        ] {
            c.env(format!("AWS_ENDPOINT_URL_{service}"), &open.endpoint);
        }
        c.output().expect("scar runs")
    };
    ok(&as_ci(&["apply", ".", "--auto-approve"]));
    let plan = as_ci(&["plan", ".", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "{}", stdout(&plan));
    let admin = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(&checking.endpoint)
        .credentials_provider(aws_sdk_sts::config::Credentials::new(
            admin_id,
            admin_secret,
            None,
            None,
            "static",
        ))
        .load()
        .await;
    let entries = s3(&admin)
        .get_bucket_notification_configuration()
        .bucket("demo-in")
        .send()
        .await
        .expect("notifications");
    assert_eq!(entries.lambda_function_configurations().len(), 1);

    // The check is live: a bucket the printed policy does not name is refused.
    std::fs::write(
        dir.path().join("exif.yaml"),
        function("exif", "someone-elses-bucket", "in/", 512),
    )
    .expect("write");
    let refused = as_ci(&["apply", ".", "--auto-approve"]);
    assert_eq!(refused.status.code(), Some(1), "{}", stdout(&refused));
    assert!(
        stderr(&refused).contains("AccessDenied"),
        "{}",
        stderr(&refused)
    );
}
