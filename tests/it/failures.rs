//! What happens to an input whose invocation fails: the function's failure policy
//! (`onFailure`: retries, event age and where Lambda records an event it gave up on) planned as
//! its own resource, applied, read back, healed and removed, against moto; the stack's
//! failures bucket, and the managed role's permission to write there.
//!
//! moto's gap: a second `PutFunctionEventInvokeConfig` on a function is appended to the first,
//! and `GetFunctionEventInvokeConfig` answers with the first, so an edited policy cannot be read
//! back there. These tests change a policy by removing it (out of band, or from the manifest)
//! and creating it again; the update path is the same `Put`, which AWS documents as replacing
//! the whole configuration.

use crate::support::moto::Moto;
use crate::support::{ok, stdout};

const STACK: &str = "apiVersion: scar/v1alpha1
kind: Stack
metadata:
  name: books
spec:
  region: us-east-1
  role:
    managed: true
";

fn function(on_failure: &str) -> String {
    format!(
        "apiVersion: scar/v1alpha1
kind: Function
metadata:
  name: ocr
spec:
  image: grycap/imagemagick
  input:
    - bucket: books-scans
      prefix: pages/
{on_failure}"
    )
}

const POLICY: &str = "  onFailure:
    retryAttempts: 0
    maxEventAge: 120
";

pub(crate) fn write(dir: &std::path::Path, on_failure: &str) {
    std::fs::write(dir.join("stack.yaml"), STACK).expect("write");
    std::fs::write(dir.join("ocr.yaml"), function(on_failure)).expect("write");
}

/// `(retries, event age, on-failure destination)` of the function's failure policy, or
/// `None` without one.
async fn policy(moto: &Moto) -> Option<(i32, i32, String)> {
    let lambda = aws_sdk_lambda::Client::new(&moto.sdk().await);
    let out = lambda
        .get_function_event_invoke_config()
        .function_name("ocr")
        .send()
        .await
        .ok()?;
    Some((
        out.maximum_retry_attempts()?,
        out.maximum_event_age_in_seconds()?,
        out.destination_config()
            .and_then(|d| d.on_failure())
            .and_then(|f| f.destination())
            .unwrap_or_default()
            .to_owned(),
    ))
}

/// The failures bucket scar derives for stack `books` in us-east-1.
fn failures_bucket() -> String {
    scar::model::failures::default_bucket("books", "us-east-1", None)
}

pub(crate) fn plan(moto: &Moto, dir: &std::path::Path) -> (Option<i32>, String) {
    let out = moto.scar(dir, &["plan", ".", "--detailed-exitcode"]);
    (out.status.code(), stdout(&out))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failure_policy_is_applied_read_back_healed_and_removed() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), POLICY);

    let (code, text) = plan(&moto, dir.path());
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("+ invoke_config \"ocr\""), "{text}");
    assert!(text.contains("maximum_retry_attempts = 0"), "{text}");
    ok(&moto.scar(dir.path(), &["apply", ".", "--auto-approve"]));
    assert_eq!(
        policy(&moto).await,
        Some((0, 120, format!("arn:aws:s3:::{}", failures_bucket())))
    );
    let (code, text) = plan(&moto, dir.path());
    assert_eq!(code, Some(0), "read back, nothing to do:\n{text}");
    // The records go to a bucket the stack made and owns, and the managed role may write
    // there (Lambda writes them with the function's role).
    let s3 = crate::support::moto::s3(&moto.sdk().await);
    let tags = s3
        .get_bucket_tagging()
        .bucket(failures_bucket())
        .send()
        .await
        .expect("the failures bucket, tagged");
    assert!(
        tags.tag_set()
            .iter()
            .any(|t| t.key() == "scar:stack" && t.value() == "books")
    );
    let doc = role_policy(&moto).await;
    assert!(
        doc.contains("WriteFailureRecords")
            && doc.contains(&format!("arn:aws:s3:::{}/*", failures_bucket())),
        "{doc}"
    );

    // Removed out of band: the plan sees it gone and apply puts it back.
    let lambda = aws_sdk_lambda::Client::new(&moto.sdk().await);
    lambda
        .delete_function_event_invoke_config()
        .function_name("ocr")
        .send()
        .await
        .expect("delete");
    let (code, text) = plan(&moto, dir.path());
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("+ invoke_config \"ocr\""), "{text}");
    ok(&moto.scar(dir.path(), &["apply", ".", "--auto-approve"]));
    assert_eq!(
        policy(&moto).await,
        Some((0, 120, format!("arn:aws:s3:::{}", failures_bucket())))
    );

    // Taken out of the manifest: the policy is Lambda's defaults with the stack's bucket (on
    // for every S3-triggered function), so the plan puts those. (moto cannot read an edited
    // policy back: not applied here.)
    write(dir.path(), "");
    let (code, text) = plan(&moto, dir.path());
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("~ maximum_retry_attempts = 0 -> 2")
            && text.contains("~ maximum_event_age = 120 -> 21600"),
        "{text}"
    );

    // The function's S3 input taken out: nothing invokes it asynchronously, the policy goes,
    // and the next plan, which no longer reads it, is empty.
    std::fs::write(
        dir.path().join("ocr.yaml"),
        "apiVersion: scar/v1alpha1\nkind: Function\nmetadata:\n  name: ocr\nspec:\n  image: grycap/imagemagick\n",
    )
    .expect("write");
    let (code, text) = plan(&moto, dir.path());
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("- invoke_config \"ocr\""), "{text}");
    ok(&moto.scar(dir.path(), &["apply", ".", "--auto-approve"]));
    assert_eq!(policy(&moto).await, None);
    let (code, text) = plan(&moto, dir.path());
    assert_eq!(code, Some(0), "{text}");

    // Back, then destroyed with its function.
    write(dir.path(), POLICY);
    ok(&moto.scar(dir.path(), &["apply", ".", "--auto-approve"]));
    assert_eq!(
        policy(&moto).await,
        Some((0, 120, format!("arn:aws:s3:::{}", failures_bucket())))
    );
    let out = moto.scar(dir.path(), &["destroy", ".", "--auto-approve"]);
    ok(&out);
    assert!(
        stdout(&out).contains("- invoke_config \"ocr\""),
        "{}",
        stdout(&out)
    );
    assert_eq!(policy(&moto).await, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_stacks_default_reaches_only_functions_invoked_asynchronously() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("stack.yaml"),
        format!("{STACK}  defaults:\n    onFailure:\n      maxEventAge: 600\n"),
    )
    .expect("write");
    std::fs::write(dir.path().join("ocr.yaml"), function("")).expect("write");
    std::fs::write(
        dir.path().join("api.yaml"),
        "apiVersion: scar/v1alpha1
kind: Function
metadata:
  name: api
spec:
  image: grycap/cowsay
  http: {}
",
    )
    .expect("write");
    ok(&moto.scar(dir.path(), &["apply", ".", "--auto-approve"]));
    // The function's own retries are Lambda's default; the age is the stack's.
    assert_eq!(
        policy(&moto).await,
        Some((2, 600, format!("arn:aws:s3:::{}", failures_bucket())))
    );
    let lambda = aws_sdk_lambda::Client::new(&moto.sdk().await);
    assert!(
        lambda
            .get_function_event_invoke_config()
            .function_name("api")
            .send()
            .await
            .is_err(),
        "an HTTP function is invoked synchronously: no policy"
    );
    assert_eq!(plan(&moto, dir.path()).0, Some(0));
}

/// The managed role's policy document.
pub(crate) async fn role_policy(moto: &Moto) -> String {
    let iam = aws_sdk_iam::Client::new(&moto.sdk().await);
    let out = iam
        .get_role_policy()
        .role_name("scar-books-exec")
        .policy_name("scar")
        .send()
        .await
        .expect("the role's policy");
    urlencoding_free(out.policy_document())
}

/// IAM's policy documents come URL-encoded from AWS (moto sends them plain).
fn urlencoding_free(doc: &str) -> String {
    doc.replace("%22", "\"")
        .replace("%3A", ":")
        .replace("%2F", "/")
        .replace("%2A", "*")
}

#[tokio::test(flavor = "multi_thread")]
async fn records_go_where_the_manifest_says_and_another_accounts_failures_bucket_is_refused() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "  onFailure:\n    destination: none\n");
    ok(&moto.scar(dir.path(), &["apply", ".", "--auto-approve"]));
    assert_eq!(policy(&moto).await, Some((2, 21600, String::new())));
    write(
        dir.path(),
        "  onFailure:\n    destination: arn:aws:sqs:us-east-1:123456789012:book-failures\n",
    );
    // moto answers a later Get with the first configuration put (see the module's note), so
    // what is checked is what apply wrote: the queue's ARN, and the managed role's permission
    // to send there.
    let applied = moto.scar(dir.path(), &["apply", ".", "--auto-approve"]);
    ok(&applied);
    assert!(
        stdout(&applied)
            .contains("on_failure = \"\" -> \"arn:aws:sqs:us-east-1:123456789012:book-failures\""),
        "{}",
        stdout(&applied)
    );
    let doc = role_policy(&moto).await;
    assert!(
        doc.contains("SendFailureRecords")
            && doc.contains("arn:aws:sqs:us-east-1:123456789012:book-failures"),
        "{doc}"
    );

    // A bucket of the default name, untagged, in this account: what an apply stopped between
    // creating and tagging it leaves. The plan takes it over, and apply tags it.
    let s3 = crate::support::moto::s3(&moto.sdk().await);
    let other = tempfile::tempdir().expect("tempdir");
    let stack_of = |name: &str, function: &str| {
        std::fs::write(
            other.path().join("stack.yaml"),
            STACK.replace("name: books", &format!("name: {name}")),
        )
        .expect("write");
        std::fs::write(
            other.path().join("ocr.yaml"),
            function_named(function).replace("books-scans", &format!("{name}-scans")),
        )
        .expect("write");
    };
    let left = scar::model::failures::default_bucket("books3", "us-east-1", None);
    s3.create_bucket()
        .bucket(&left)
        .send()
        .await
        .expect("a bucket");
    stack_of("books3", "ocr3");
    let out = moto.scar(other.path(), &["plan", "."]);
    assert!(
        stdout(&out).contains("left untagged by an apply that stopped"),
        "{}",
        stdout(&out)
    );
    ok(&moto.scar(other.path(), &["apply", ".", "--auto-approve"]));
    let tags = s3
        .get_bucket_tagging()
        .bucket(&left)
        .send()
        .await
        .expect("tagged");
    assert!(
        tags.tag_set()
            .iter()
            .any(|t| t.key() == "scar:stack" && t.value() == "books3"),
        "{tags:?}"
    );
    ok(&moto.scar(other.path(), &["destroy", ".", "--auto-approve"]));

    // Another account made a bucket of the default name: S3 says so at apply, which refuses
    // it before Lambda is told to write there.
    let sts = aws_sdk_sts::Client::new(&moto.sdk().await);
    let theirs = sts
        .assume_role()
        .role_arn("arn:aws:iam::111111111111:role/squatter")
        .role_session_name("squatter")
        .send()
        .await
        .expect("credentials of another account")
        .credentials
        .expect("credentials");
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(&moto.endpoint)
        .credentials_provider(aws_sdk_sts::config::Credentials::new(
            theirs.access_key_id(),
            theirs.secret_access_key(),
            Some(theirs.session_token().to_owned()),
            None,
            "squatter",
        ))
        .load()
        .await;
    let squatted = scar::model::failures::default_bucket("books2", "us-east-1", None);
    crate::support::moto::s3(&config)
        .create_bucket()
        .bucket(&squatted)
        .send()
        .await
        .expect("a bucket of the default name, in another account");
    stack_of("books2", "ocr2");
    let out = moto.scar(other.path(), &["apply", ".", "--auto-approve"]);
    assert!(!out.status.success());
    let said = format!("{}{}", stdout(&out), crate::support::stderr(&out));
    assert!(said.contains(&format!("bucket/{squatted}")), "{said}");
    let lambda = aws_sdk_lambda::Client::new(&moto.sdk().await);
    assert!(
        lambda
            .get_function_event_invoke_config()
            .function_name("ocr2")
            .send()
            .await
            .is_err(),
        "no record is sent to another account's bucket"
    );
}

fn function_named(name: &str) -> String {
    function(POLICY).replace("name: ocr", &format!("name: {name}"))
}

/// A record as Lambda writes it to an S3 destination (the test plays Lambda's part: moto
/// invokes no function asynchronously), failed `attempts` times, with `response`.
pub(crate) fn lambda_record(
    key: &str,
    timestamp: &str,
    attempts: u32,
    response: &serde_json::Value,
) -> String {
    serde_json::json!({
        "version": "1.0",
        "timestamp": timestamp,
        "requestContext": {
            "requestId": format!("req-{attempts}-{key}"),
            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:ocr:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": attempts
        },
        "requestPayload": {"Records": [{"eventSource": "aws:s3", "s3": {
            "bucket": {"name": "books-scans"}, "object": {"key": key}}}]},
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": response
    })
    .to_string()
}

/// Writes `body` at `key` in `bucket`, as Lambda writes a record.
pub(crate) async fn put_record(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, body: String) {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(body.into_bytes().into())
        .send()
        .await
        .expect("a record");
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_inputs_are_listed_with_the_supervisors_reason() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), POLICY);
    ok(&moto.scar(dir.path(), &["apply", ".", "--auto-approve"]));
    let out = moto.scar(dir.path(), &["failures", "."]);
    ok(&out);
    assert!(
        stdout(&out).contains("no failed inputs"),
        "{}",
        stdout(&out)
    );

    // The supervisor's answer to a failed invocation, as the runtime sends it to Lambda.
    let report = serde_json::json!({"ok": false, "results": [{"input": "/tmp/in/7.tif",
        "exit_status": 3, "timed_out": false, "ok": false, "uploaded": [],
        "upload_errors": [], "delegated_job_id": null,
        "stderr_tail": ["reading page 7", "tesseract: cannot read page"]}]});
    let failed = serde_json::json!({"errorType": "ScarInvocationFailed",
        "errorMessage": format!("the invocation failed: {report}")});
    let s3 = crate::support::moto::s3(&moto.sdk().await);
    let bucket = failures_bucket();
    for (key, body) in [
        (
            "aws/lambda/async/ocr/2026/12/07/2026-12-07T10.00.00-1a2b",
            lambda_record("pages/7.tif", "2026-12-07T10:00:00.000Z", 3, &failed),
        ),
        (
            "aws/lambda/async/ocr/2019/01/02/2019-01-02T10.00.00-3c4d",
            lambda_record("pages/1.tif", "2019-01-02T10:00:00.000Z", 3, &failed),
        ),
        (
            "aws/lambda/async/ocr/2026/12/07/2026-12-07T11.00.00-5e6f",
            "not a record".to_owned(),
        ),
        // Whoever may write into the bucket (a function's role may) forges a record under
        // ocr's prefix that names another function: `scar retry` would invoke that one.
        (
            "aws/lambda/async/ocr/2026/12/07/2026-12-07T12.00.00-7a8b",
            lambda_record("pages/8.tif", "2026-12-07T12:00:00.000Z", 3, &failed)
                .replace("function:ocr:", "function:victim:"),
        ),
    ] {
        put_record(&s3, &bucket, key, body).await;
    }

    let out = moto.scar(dir.path(), &["failures", ".", "--json"]);
    ok(&out);
    let listed: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    let failures = listed["failures"].as_array().expect("failures");
    assert_eq!(failures.len(), 2, "{listed}");
    let newest = &failures[1];
    assert_eq!(newest["function"], "ocr");
    assert_eq!(newest["input"], "s3://books-scans/pages/7.tif");
    assert_eq!(newest["attempts"], 3);
    assert_eq!(newest["condition"], "RetriesExhausted");
    assert_eq!(
        newest["reason"],
        "exit status 3: tesseract: cannot read page"
    );
    assert!(
        crate::support::stderr(&out).contains("not a Lambda invocation record"),
        "a record that is not one is named: {}",
        crate::support::stderr(&out)
    );
    assert!(
        crate::support::stderr(&out).contains("names the function `victim`"),
        "a record that names another function is named, and skipped: {}",
        crate::support::stderr(&out)
    );
    let dry = moto.scar(dir.path(), &["retry", ".", "ocr", "--dry-run"]);
    ok(&dry);
    assert!(
        stdout(&dry).contains("2 input(s) would be retried") && !stdout(&dry).contains("victim"),
        "{}",
        stdout(&dry)
    );

    // Only what Lambda gave up on lately: the 2019 record is not listed, nor even read.
    let out = moto.scar(
        dir.path(),
        &["failures", ".", "ocr", "--since", "365d", "--json"],
    );
    ok(&out);
    let recent: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    assert!(
        recent["failures"]
            .as_array()
            .expect("failures")
            .iter()
            .all(|f| f["input"] != "s3://books-scans/pages/1.tif"),
        "{recent}"
    );

    let text = moto.scar(dir.path(), &["failures", "."]);
    ok(&text);
    assert!(
        stdout(&text).contains("RetriesExhausted: exit status 3: tesseract: cannot read page"),
        "{}",
        stdout(&text)
    );
    let unknown = moto.scar(dir.path(), &["failures", ".", "nope"]);
    assert!(!unknown.status.success());
}

/// The function's reserved concurrency and whether it carries the pause's tag. (moto's
/// `GetFunction` leaves out a reserved concurrency of 0, which AWS gives; its
/// `GetFunctionConcurrency` gives it.)
async fn hold(moto: &Moto) -> (Option<i32>, bool) {
    let lambda = aws_sdk_lambda::Client::new(&moto.sdk().await);
    let out = lambda
        .get_function()
        .function_name("ocr")
        .send()
        .await
        .expect("the function");
    let reserved = lambda
        .get_function_concurrency()
        .function_name("ocr")
        .send()
        .await
        .expect("the function's concurrency");
    (
        reserved.reserved_concurrent_executions(),
        out.tags().is_some_and(|t| t.contains_key("scar:paused")),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_function_stays_paused_through_plans_and_resumes_with_what_was_held() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let reserved = format!("{POLICY}  reservedConcurrency: 5\n");
    write(dir.path(), &reserved);
    ok(&moto.scar(dir.path(), &["apply", ".", "--auto-approve"]));
    assert_eq!(hold(&moto).await, (Some(5), false));

    let out = moto.scar(dir.path(), &["pause", ".", "ocr"]);
    ok(&out);
    assert!(stdout(&out).contains("paused `ocr`"), "{}", stdout(&out));
    assert_eq!(hold(&moto).await, (Some(0), true));
    let again = moto.scar(dir.path(), &["pause", ".", "ocr"]);
    ok(&again);
    assert!(
        stdout(&again).contains("already paused"),
        "{}",
        stdout(&again)
    );

    let ls = moto.scar(dir.path(), &["ls", "."]);
    ok(&ls);
    assert!(stdout(&ls).contains("(paused)"), "{}", stdout(&ls));

    // Plans keep the hold and say so; another change applies and the hold stays.
    let (code, text) = plan(&moto, dir.path());
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("function/ocr is paused since"), "{text}");
    write(dir.path(), &format!("{reserved}  memory: 1024\n"));
    let (code, text) = plan(&moto, dir.path());
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("memory") && !text.contains("reserved_concurrency"),
        "{text}"
    );
    ok(&moto.scar(dir.path(), &["apply", ".", "--auto-approve"]));
    assert_eq!(hold(&moto).await, (Some(0), true));

    // Held meanwhile: an input Lambda gave up on since the pause (the test plays Lambda), and
    // one from before it, a real failure that resume leaves to `scar retry`.
    let s3 = crate::support::moto::s3(&moto.sdk().await);
    let bucket = failures_bucket();
    let now = scar::lock::rfc3339(scar::lock::now() + 1);
    let held = scar::failures::record_key("ocr", scar::lock::now() + 1, "held");
    let throttled = serde_json::json!(null);
    let old_key = "aws/lambda/async/ocr/2019/01/02/2019-01-02T10.00.00-3c4d";
    for (key, body) in [
        (
            held.clone(),
            lambda_record("pages/12.tif", &now, 0, &throttled)
                .replace("RetriesExhausted", "EventAgeExceeded"),
        ),
        (
            old_key.to_owned(),
            lambda_record("pages/1.tif", "2019-01-02T10:00:00.000Z", 1, &throttled),
        ),
    ] {
        put_record(&s3, &bucket, &key, body).await;
    }

    let out = moto.scar(dir.path(), &["resume", ".", "ocr"]);
    let said = stdout(&out);
    assert!(
        said.contains("resumed `ocr`") && said.contains("reserved concurrency: 5"),
        "{said}"
    );
    assert_eq!(hold(&moto).await, (Some(5), false));
    // Only the held input was retried. moto cannot run an image function: its Invoke
    // answers 500, so the input was not run, and its record stands, unmarked, for `scar
    // retry`; the record from before the pause was not touched.
    assert!(
        said.contains("retrying the 1 input(s)") && said.contains("1 not run"),
        "{said}{}",
        crate::support::stderr(&out)
    );
    assert!(
        crate::support::stderr(&out).contains("lambda:Invoke failed"),
        "{}",
        crate::support::stderr(&out)
    );
    assert_eq!(out.status.code(), Some(1), "not every input was run");
    let listed = s3
        .list_objects_v2()
        .bucket(&bucket)
        .send()
        .await
        .expect("list");
    let mut keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    keys.sort_unstable();
    assert_eq!(keys, [old_key, held.as_str()], "no mark left behind");

    let (code, text) = plan(&moto, dir.path());
    assert_eq!(code, Some(0), "{text}");
    assert!(!text.contains("paused"), "{text}");
    let again = moto.scar(dir.path(), &["resume", ".", "ocr"]);
    ok(&again);
    assert!(
        stdout(&again).contains("is not paused"),
        "{}",
        stdout(&again)
    );

    // A function that keeps no records cannot be paused: what arrived would be lost.
    write(dir.path(), "  onFailure:\n    destination: none\n");
    let refused = moto.scar(dir.path(), &["pause", ".", "ocr"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        crate::support::stderr(&refused).contains("would be lost"),
        "{}",
        crate::support::stderr(&refused)
    );
    assert_eq!(hold(&moto).await, (Some(5), false), "nothing changed");
}
