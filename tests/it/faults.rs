//! Failure tests: a process killed during apply (at several points, with the request held
//! before and after the emulator saw it), and throttling and 5xx answers injected between scar
//! and moto. After each, rerunning converges: no duplicates, no orphans, retries visible.

use std::sync::atomic::Ordering;

use crate::support::moto::{Moto, s3};
use crate::support::proxy::{Fault, Proxy};
use crate::support::{ok, stderr, stdout};

const STACK: &str = "apiVersion: scar/v1alpha1
kind: Stack
metadata:
  name: crash
spec:
  region: us-east-1
  role:
    managed: true
";

fn function(name: &str, bucket: &str) -> String {
    format!(
        "apiVersion: scar/v1alpha1\nkind: Function\nmetadata:\n  name: {name}\nspec:\n  image: grycap/imagemagick\n  input:\n    - bucket: {bucket}\n      prefix: in/\n  output:\n    - bucket: {bucket}\n      prefix: out/{name}/\n"
    )
}

fn stack() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("stack.yaml"), STACK).expect("write");
    std::fs::write(dir.path().join("a.yaml"), function("alpha", "crash-a")).expect("write");
    std::fs::write(dir.path().join("b.yaml"), function("beta", "crash-b")).expect("write");
    dir
}

/// Everything the stack may have left in AWS, as counts.
async fn census(moto: &Moto) -> (usize, usize, usize, usize, bool) {
    let config = moto.sdk().await;
    let lambda = aws_sdk_lambda::Client::new(&config);
    let functions = ["alpha", "beta"];
    let mut fns = 0;
    let mut statements = 0;
    for f in functions {
        if lambda.get_function().function_name(f).send().await.is_ok() {
            fns += 1;
            if let Ok(p) = lambda.get_policy().function_name(f).send().await {
                let doc: serde_json::Value =
                    serde_json::from_str(p.policy().unwrap_or("{}")).unwrap_or_default();
                statements += doc["Statement"].as_array().map_or(0, Vec::len);
            }
        }
    }
    let logs = aws_sdk_cloudwatchlogs::Client::new(&config);
    let mut groups = 0;
    for f in functions {
        let g = logs
            .describe_log_groups()
            .log_group_name_prefix(format!("/aws/lambda/{f}"))
            .send()
            .await
            .expect("logs");
        groups += g.log_groups().len();
    }
    let s3c = s3(&config);
    let mut entries = 0;
    for b in ["crash-a", "crash-b"] {
        if let Ok(n) = s3c
            .get_bucket_notification_configuration()
            .bucket(b)
            .send()
            .await
        {
            entries += n.lambda_function_configurations().len();
        }
    }
    let iam = aws_sdk_iam::Client::new(&config);
    let role = iam
        .get_role()
        .role_name("scar-crash-exec")
        .send()
        .await
        .is_ok();
    (fns, groups, statements, entries, role)
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_applies_converge_without_duplicates_or_orphans() {
    // Count the requests of a whole apply, then kill at points spread over its writes (the
    // first dozen requests are reads), holding the request before or after moto saw it.
    let total = {
        let moto = Moto::start();
        let proxy = Proxy::start(moto.port(), Fault::None);
        ok(&moto.scar_via(
            &proxy.endpoint,
            stack().path(),
            &["apply", ".", "--auto-approve", "--parallelism", "3"],
        ));
        proxy.requests.load(Ordering::SeqCst)
    };
    assert!(
        total > 20,
        "an apply of two functions made only {total} requests"
    );
    let reads = 12;
    let points = Fault::spread(total, reads);
    eprintln!("apply makes {total} requests; killing at {points:?}");
    for fault in points {
        let moto = Moto::start();
        let dir = stack();
        let proxy = Proxy::start(moto.port(), fault);
        let reached = proxy.kill_at_hang(
            dir.path(),
            &["apply", ".", "--auto-approve", "--parallelism", "3"],
        );
        drop(proxy);
        assert!(
            reached,
            "{fault:?}: apply finished before the kill point; move the points"
        );

        let rerun = moto.scar(dir.path(), &["apply", ".", "--auto-approve"]);
        ok(&rerun);
        let plan = moto.scar(dir.path(), &["plan", ".", "--detailed-exitcode"]);
        assert_eq!(
            plan.status.code(),
            Some(0),
            "{fault:?}: not converged:\n{}",
            stdout(&plan)
        );
        assert_eq!(
            census(&moto).await,
            (2, 2, 2, 2, true),
            "{fault:?}: duplicates or gaps after the rerun"
        );

        ok(&moto.scar(dir.path(), &["destroy", ".", "--auto-approve"]));
        assert_eq!(
            census(&moto).await,
            (0, 0, 0, 0, false),
            "{fault:?}: orphans after destroy"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn throttling_and_server_errors_are_retried_and_logged() {
    let moto = Moto::start();
    let dir = stack();
    let proxy = Proxy::start(moto.port(), Fault::Every(3));
    let out = moto.scar_via(
        &proxy.endpoint,
        dir.path(),
        &["apply", ".", "--auto-approve"],
    );
    ok(&out);
    assert!(
        proxy.injected.load(Ordering::SeqCst) >= 5,
        "too few faults injected to mean anything"
    );
    let log = stderr(&out);
    assert!(
        log.contains("retrying after Throttled failure"),
        "throttling retries not logged:\n{log}"
    );
    assert!(
        log.contains("retrying after Transient failure"),
        "5xx retries not logged:\n{log}"
    );
    let plan = moto.scar_via(
        &proxy.endpoint,
        dir.path(),
        &["plan", ".", "--detailed-exitcode"],
    );
    assert_eq!(
        plan.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&plan),
        stderr(&plan)
    );
    assert_eq!(census(&moto).await, (2, 2, 2, 2, true));
}
