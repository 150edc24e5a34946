//! What happens to an input whose invocation fails: the function's failure policy
//! (`onFailure`: retries and event age) planned as its own resource, applied, read back, healed
//! and removed, against moto.
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

fn write(dir: &std::path::Path, on_failure: &str) {
    std::fs::write(dir.join("stack.yaml"), STACK).expect("write");
    std::fs::write(dir.join("ocr.yaml"), function(on_failure)).expect("write");
}

/// `(retries, event age)` of the function's failure policy, or `None` without one.
async fn policy(moto: &Moto) -> Option<(i32, i32)> {
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
    ))
}

fn plan(moto: &Moto, dir: &std::path::Path) -> (Option<i32>, String) {
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
    assert_eq!(policy(&moto).await, Some((0, 120)));
    let (code, text) = plan(&moto, dir.path());
    assert_eq!(code, Some(0), "read back, nothing to do:\n{text}");

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
    assert_eq!(policy(&moto).await, Some((0, 120)));

    // Taken out of the manifest: the policy scar set goes (Lambda's defaults again), and the
    // next plan, which no longer reads it, is empty.
    write(dir.path(), "");
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
    assert_eq!(policy(&moto).await, Some((0, 120)));
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
    assert_eq!(policy(&moto).await, Some((2, 600)));
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
