//! Moving off SCAR 4.x against moto, as docs/migrating.md walks through it: a function deployed
//! the way SCAR deploys it (a zip package, tags `createdby`/`owner`, the `FDL` variable, a
//! permission with a random statement id, a bucket notification entry of its own) is imported
//! from its FDL and adopted: its entry is taken over in one write, the plan replaces the zip
//! by an image function, apply does it, the stack's permission and entry point at the new
//! function, and the next plan is empty.

use base64::Engine as _;

use crate::support::moto::{Moto, s3};
use crate::support::{ok, stderr, stdout};

/// The function definition SCAR deployed it from.
const FDL: &str = "functions:
  aws:
  - lambda:
      name: scar-cowsay
      container:
        image: grycap/cowsay
      input:
      - storage_provider: s3
        path: scar-legacy/scar-cowsay/input
      output:
      - storage_provider: s3
        path: scar-legacy/scar-cowsay/output
";

/// An empty zip archive: what moto needs to create a zip function.
const EMPTY_ZIP: [u8; 22] = [
    0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

/// Deploys `scar-cowsay` as SCAR 4.x does (scar.md §1.5): bucket, zip function with SCAR's
/// tags and FDL, a permission with a uuid statement id, SCAR's notification entry.
async fn deploy_like_scar(moto: &Moto) -> String {
    let sdk = moto.sdk().await;
    let iam = aws_sdk_iam::Client::new(&sdk);
    let role = iam
        .create_role()
        .role_name("scar-legacy-role")
        .assume_role_policy_document("{}")
        .send()
        .await
        .expect("role")
        .role
        .map(|r| r.arn)
        .expect("arn");
    s3(&sdk)
        .create_bucket()
        .bucket("scar-legacy")
        .send()
        .await
        .expect("bucket");
    let fdl = base64::engine::general_purpose::STANDARD
        .encode(r#"{"name":"scar-cowsay","container":{"image":"grycap/cowsay"}}"#);
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    let arn = lambda
        .create_function()
        .function_name("scar-cowsay")
        .runtime(aws_sdk_lambda::types::Runtime::Python38)
        .handler("scar-cowsay.lambda_handler")
        .role(role)
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .zip_file(aws_sdk_lambda::primitives::Blob::new(EMPTY_ZIP.to_vec()))
                .build(),
        )
        .environment(
            aws_sdk_lambda::types::Environment::builder()
                .variables("FDL", fdl)
                .variables("IMAGE_ID", "grycap/cowsay")
                .build(),
        )
        .tags("createdby", "scar")
        .tags("owner", "AIDAEXAMPLE")
        .send()
        .await
        .expect("SCAR's function")
        .function_arn
        .expect("arn");
    lambda
        .add_permission()
        .function_name("scar-cowsay")
        .statement_id("6f1c1b7e-0d7a-4c55-9f3e-1a2b3c4d5e6f")
        .action("lambda:InvokeFunction")
        .principal("s3.amazonaws.com")
        .source_arn("arn:aws:s3:::scar-legacy")
        .send()
        .await
        .expect("SCAR's permission");
    let entry = aws_sdk_s3::types::LambdaFunctionConfiguration::builder()
        .id("scar-legacy-entry")
        .lambda_function_arn(&arn)
        .events(aws_sdk_s3::types::Event::from("s3:ObjectCreated:*"))
        .filter(
            aws_sdk_s3::types::NotificationConfigurationFilter::builder()
                .key(
                    aws_sdk_s3::types::S3KeyFilter::builder()
                        .filter_rules(
                            aws_sdk_s3::types::FilterRule::builder()
                                .name(aws_sdk_s3::types::FilterRuleName::Prefix)
                                .value("scar-cowsay/input/")
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .build()
        .expect("entry");
    // Another tool's entry for the same function: thumbnails of PNG uploads elsewhere.
    let rule = |name, value: &str| {
        aws_sdk_s3::types::FilterRule::builder()
            .name(name)
            .value(value)
            .build()
    };
    let teams = aws_sdk_s3::types::LambdaFunctionConfiguration::builder()
        .id("team-thumbnails")
        .lambda_function_arn(&arn)
        .events(aws_sdk_s3::types::Event::from("s3:ObjectCreated:Put"))
        .filter(
            aws_sdk_s3::types::NotificationConfigurationFilter::builder()
                .key(
                    aws_sdk_s3::types::S3KeyFilter::builder()
                        .filter_rules(rule(aws_sdk_s3::types::FilterRuleName::Prefix, "uploads/"))
                        .filter_rules(rule(aws_sdk_s3::types::FilterRuleName::Suffix, ".png"))
                        .build(),
                )
                .build(),
        )
        .build()
        .expect("entry");
    s3(&sdk)
        .put_bucket_notification_configuration()
        .bucket("scar-legacy")
        .notification_configuration(
            aws_sdk_s3::types::NotificationConfiguration::builder()
                .lambda_function_configurations(entry)
                .lambda_function_configurations(teams)
                .build(),
        )
        .send()
        .await
        .expect("SCAR's notification entry");
    arn
}

async fn entries(moto: &Moto) -> Vec<(String, String)> {
    s3(&moto.sdk().await)
        .get_bucket_notification_configuration()
        .bucket("scar-legacy")
        .send()
        .await
        .expect("notifications")
        .lambda_function_configurations()
        .iter()
        .map(|c| {
            (
                c.id().unwrap_or_default().to_owned(),
                c.lambda_function_arn().to_owned(),
            )
        })
        .collect()
}

/// How many times moto tried to run the function for an S3 event: each attempt (with no
/// Docker here) leaves a log stream saying so.
fn invocations(moto: &Moto) -> usize {
    moto.log_stream_count("/aws/lambda/scar-cowsay")
}

async fn put(moto: &Moto, key: &str) {
    s3(&moto.sdk().await)
        .put_object()
        .bucket("scar-legacy")
        .key(key)
        .body(b"moo".to_vec().into())
        .send()
        .await
        .expect("put");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scar_4_zip_function_is_adopted_replaced_by_an_image_and_keeps_its_trigger() {
    let moto = Moto::start();
    let arn = deploy_like_scar(&moto).await;
    // SCAR's deployment works: an object under the input prefix reaches the zip function.
    put(&moto, "scar-cowsay/input/before.txt").await;
    assert_eq!(invocations(&moto), 1, "SCAR's trigger fires");

    // docs/migrating.md, step 1: the FDL becomes a stack.
    let work = tempfile::tempdir().expect("tempdir");
    std::fs::write(work.path().join("scar-cowsay.yaml"), FDL).expect("write");
    ok(&moto.scar(
        work.path(),
        &[
            "import",
            "scar-cowsay.yaml",
            "-o",
            "stack",
            "--stack",
            "legacy",
        ],
    ));
    let d = &work.path().join("stack");
    let refused = moto.scar(d, &["plan", "."]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stdout(&refused).contains("scar adopt") || stderr(&refused).contains("scar adopt"),
        "{}{}",
        stdout(&refused),
        stderr(&refused)
    );

    let adopted = moto.scar(d, &["adopt", ".", "function/scar-cowsay", "--auto-approve"]);
    ok(&adopted);
    let said = stdout(&adopted);
    assert!(
        said.contains("was deployed by SCAR 4.x (tag createdby=scar, FDL variable)"),
        "{said}"
    );
    assert!(said.contains("is a zip function"), "{said}");
    assert!(
        said.contains("package_type = \"Zip\" -> \"Image\""),
        "{said}"
    );
    // SCAR's entry is gone, the stack's points at the same function: no moment without one.
    // Regression (issue 23, finding 13): every other entry for the function went too, though
    // the message said only SCAR's were replaced; another tool's entry stays.
    assert!(
        said.contains("replaced SCAR's S3 notification entry of function/scar-cowsay in scar-legacy: entry scar-legacy-entry (prefix scar-cowsay/input/)"),
        "{said}"
    );
    let mut now = entries(&moto).await;
    assert_eq!(now.len(), 2, "{now:?}");
    assert!(
        now.contains(&("team-thumbnails".to_owned(), arn.clone())),
        "{now:?}"
    );
    now.retain(|(id, _)| id != "team-thumbnails");
    assert!(now[0].0.starts_with("scar"), "{now:?}");
    assert_ne!(now[0].0, "scar-legacy-entry");
    assert_eq!(now[0].1, arn);
    put(&moto, "scar-cowsay/input/adopted.txt").await;
    assert_eq!(
        invocations(&moto),
        2,
        "the stack's entry fires the zip function"
    );

    let plan = stdout(&moto.scar(d, &["plan", "."]));
    assert!(
        plan.contains("function/scar-cowsay must be replaced")
            && plan.contains("# forces replacement"),
        "{plan}"
    );
    ok(&moto.scar(d, &["apply", ".", "--auto-approve"]));
    let lambda = aws_sdk_lambda::Client::new(&moto.sdk().await);
    let f = lambda
        .get_function()
        .function_name("scar-cowsay")
        .send()
        .await
        .expect("function");
    let config = f.configuration().expect("configuration");
    assert_eq!(
        config.package_type(),
        Some(&aws_sdk_lambda::types::PackageType::Image)
    );
    assert_eq!(config.function_arn(), Some(arn.as_str()), "the same ARN");
    let policy = lambda
        .get_policy()
        .function_name("scar-cowsay")
        .send()
        .await
        .expect("policy")
        .policy
        .unwrap_or_default();
    assert!(
        policy.contains("arn:aws:s3:::scar-legacy") && !policy.contains("6f1c1b7e"),
        "the stack's statement, not SCAR's: {policy}"
    );
    let mut kept = entries(&moto).await;
    kept.retain(|(id, _)| id != "team-thumbnails");
    assert_eq!(kept, now, "the entry was kept across the replace");
    let again = moto.scar(d, &["plan", ".", "--detailed-exitcode"]);
    assert_eq!(again.status.code(), Some(0), "{}", stdout(&again));
}
