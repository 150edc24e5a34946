//! Batch delegation and HTTP endpoints against moto on loopback, through the real binary and
//! the real AWS SDK: create, update in place, new job definition revisions, delete; the
//! video-process example; an API whose id survives function updates; foreign resources with
//! similar names never touched.
//!
//! moto 5.2.5 gaps these tests meet, stated where they matter (never faked):
//! - it requires a Batch `serviceRole` that exists in its IAM (AWS does not), and EC2
//!   instance roles that are instance profiles, so each test creates both;
//! - subnets and security groups must exist in its EC2: the default VPC's are used;
//! - `UpdateComputeEnvironment` ignores `computeResources`: scar's request is checked on the
//!   wire instead, and the next plan still shows the change;
//! - a new job definition revision keeps the first revision's `platformCapabilities`;
//! - `DescribeJobDefinitions` leaves out `nodeProperties` (multi-node definitions);
//! - environments and queues are VALID at once, so waits return on the first look;
//! - it keeps a deleted compute environment's tags under its ARN, so tests never reuse a name.

use std::collections::HashMap;
use std::path::Path;

use crate::support::moto::{Moto, copy_dir};
use crate::support::proxy::{Fault, Proxy};
use crate::support::{ok, stderr, stdout};

const SERVICE_ROLE: &str = "batch-service";

/// Arranges what moto needs for Batch and returns the stack's `defaults.batch.compute` lines.
async fn batch_prerequisites(moto: &Moto) -> String {
    let iam = aws_sdk_iam::Client::new(&moto.sdk().await);
    let role = iam
        .create_role()
        .role_name(SERVICE_ROLE)
        .assume_role_policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"batch.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
        )
        .send()
        .await
        .expect("service role");
    iam.create_instance_profile()
        .instance_profile_name("ecsInstanceRole")
        .send()
        .await
        .expect("instance profile");
    let (subnet, group) = moto.default_network();
    format!(
        "        subnets: [{subnet}]\n        securityGroups: [{group}]\n        serviceRole: {}\n",
        role.role().map(|r| r.arn()).unwrap_or_default()
    )
}

fn stack(name: &str, compute: &str) -> String {
    format!(
        "apiVersion: scar/v1alpha1
kind: Stack
metadata:
  name: {name}
spec:
  region: us-east-1
  role:
    managed: true
  defaults:
    batch:
      compute:
        maxVcpus: 4
{compute}"
    )
}

/// A three-stage pipeline: `split` always on Batch (EC2, with a GPU), `detect` in Lambda with
/// Batch (Fargate) for what does not fit, `notify` in Lambda only.
fn pipeline(dir: &Path, compute: &str, split_vcpus: u32, split_max: u32) {
    let files = [
        ("stack.yaml", stack("wf", compute)),
        (
            "split.yaml",
            format!(
                "apiVersion: scar/v1alpha1
kind: Function
metadata:
  name: split
spec:
  image: grycap/ffmpeg
  script: run.sh
  execution: batch
  batch:
    vcpus: {split_vcpus}
    memory: 4096
    gpu: 1
    timeout: 3600
    compute:
      type: EC2
      maxVcpus: {split_max}
  input:
    - bucket: wf-media
      prefix: videos/
  output:
    - bucket: wf-media
      prefix: frames/
"
            ),
        ),
        (
            "detect.yaml",
            "apiVersion: scar/v1alpha1
kind: Function
metadata:
  name: detect
spec:
  image: grycap/darknet
  script: run.sh
  execution: lambda-batch
  batch:
    vcpus: 0.5
    memory: 1024
    compute:
      type: FARGATE
  input:
    - bucket: wf-media
      prefix: frames/
  output:
    - bucket: wf-media
      prefix: detections/
"
            .to_owned(),
        ),
        (
            "notify.yaml",
            "apiVersion: scar/v1alpha1
kind: Function
metadata:
  name: notify
spec:
  image: alpine:3.20
  script: run.sh
  input:
    - bucket: wf-media
      prefix: detections/
  onFailure:
    retryAttempts: 1
"
            .to_owned(),
        ),
        (
            "workflow.yaml",
            "apiVersion: scar/v1alpha1
kind: Workflow
metadata:
  name: wf
spec:
  stages: [split, detect, notify]
"
            .to_owned(),
        ),
        ("run.sh", "echo \"$INPUT_FILE_PATH\"\n".to_owned()),
    ];
    for (name, text) in files {
        std::fs::write(dir.join(name), text).expect("write");
    }
}

struct BatchState {
    environments: HashMap<String, String>,
    queues: HashMap<String, Vec<String>>,
    /// Active revisions by definition name.
    definitions: HashMap<String, Vec<i32>>,
}

async fn batch_state(moto: &Moto) -> BatchState {
    let batch = aws_sdk_batch::Client::new(&moto.sdk().await);
    let ces = batch
        .describe_compute_environments()
        .send()
        .await
        .expect("environments");
    let queues = batch.describe_job_queues().send().await.expect("queues");
    let defs = batch
        .describe_job_definitions()
        .status("ACTIVE")
        .send()
        .await
        .expect("definitions");
    let mut definitions: HashMap<String, Vec<i32>> = HashMap::new();
    for d in defs.job_definitions() {
        definitions
            .entry(d.job_definition_name().unwrap_or_default().to_owned())
            .or_default()
            .push(d.revision().unwrap_or_default());
    }
    BatchState {
        environments: ces
            .compute_environments()
            .iter()
            .map(|c| {
                (
                    c.compute_environment_name().unwrap_or_default().to_owned(),
                    c.compute_resources()
                        .and_then(|r| r.r#type())
                        .map(|t| t.as_str().to_owned())
                        .unwrap_or_default(),
                )
            })
            .collect(),
        queues: queues
            .job_queues()
            .iter()
            .map(|q| {
                (
                    q.job_queue_name().unwrap_or_default().to_owned(),
                    q.compute_environment_order()
                        .iter()
                        .map(|o| o.compute_environment().unwrap_or_default().to_owned())
                        .collect(),
                )
            })
            .collect(),
        definitions,
    }
}

/// Batch resources nobody gave scar, with names like the stack's.
async fn foreign_batch(moto: &Moto, compute: &str) {
    let batch = aws_sdk_batch::Client::new(&moto.sdk().await);
    let field = |key: &str| {
        compute
            .lines()
            .find_map(|l| l.trim().strip_prefix(key))
            .map(|v| v.trim().trim_matches(['[', ']']).to_owned())
            .unwrap_or_default()
    };
    batch
        .create_compute_environment()
        .compute_environment_name("scar-wf-split-old")
        .r#type(aws_sdk_batch::types::CeType::Managed)
        .state(aws_sdk_batch::types::CeState::Enabled)
        .service_role(field("serviceRole:"))
        .compute_resources(
            aws_sdk_batch::types::ComputeResource::builder()
                .r#type(aws_sdk_batch::types::CrType::Fargate)
                .maxv_cpus(2)
                .subnets(field("subnets:"))
                .security_group_ids(field("securityGroups:"))
                .build(),
        )
        .send()
        .await
        .expect("foreign environment");
    batch
        .create_job_queue()
        .job_queue_name("scar-wf-split-old")
        .priority(1)
        .state(aws_sdk_batch::types::JqState::Enabled)
        .compute_environment_order(
            aws_sdk_batch::types::ComputeEnvironmentOrder::builder()
                .order(1)
                .compute_environment(
                    "arn:aws:batch:us-east-1:123456789012:compute-environment/scar-wf-split-old",
                )
                .build(),
        )
        .send()
        .await
        .expect("foreign queue");
    batch
        .register_job_definition()
        .job_definition_name("scar-wf-split-old")
        .r#type(aws_sdk_batch::types::JobDefinitionType::Container)
        .container_properties(foreign_container())
        .send()
        .await
        .expect("foreign definition");
}

fn foreign_container() -> aws_sdk_batch::types::ContainerProperties {
    let need = |kind, value: &str| {
        aws_sdk_batch::types::ResourceRequirement::builder()
            .r#type(kind)
            .value(value)
            .build()
    };
    aws_sdk_batch::types::ContainerProperties::builder()
        .image("busybox")
        .resource_requirements(need(aws_sdk_batch::types::ResourceType::Vcpu, "1"))
        .resource_requirements(need(aws_sdk_batch::types::ResourceType::Memory, "512"))
        .build()
}

fn plan_exit(moto: &Moto, dir: &Path) -> (Option<i32>, String) {
    let out = moto.scar(dir, &["plan", ".", "--detailed-exitcode"]);
    (
        out.status.code(),
        format!("{}\n{}", stdout(&out), stderr(&out)),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mixed_pipeline_is_created_revised_updated_and_destroyed() {
    let moto = Moto::start();
    let compute = batch_prerequisites(&moto).await;
    foreign_batch(&moto, &compute).await;
    let dir = tempfile::tempdir().expect("tempdir");
    pipeline(dir.path(), &compute, 2, 4);

    let out = moto.scar(dir.path(), &["apply", ".", "--auto-approve"]);
    ok(&out);
    let s = batch_state(&moto).await;
    assert_eq!(
        s.environments.get("scar-wf-split").map(String::as_str),
        Some("EC2")
    );
    assert_eq!(
        s.environments
            .get("fargate-scar-wf-detect")
            .map(String::as_str),
        Some("FARGATE")
    );
    assert!(
        !s.environments.contains_key("scar-wf-notify"),
        "lambda mode has no Batch"
    );
    assert!(s.queues["scar-wf-split"][0].ends_with("/scar-wf-split"));
    assert_eq!(s.definitions["scar-wf-split"], vec![1]);
    let batch = aws_sdk_batch::Client::new(&moto.sdk().await);
    let def = batch
        .describe_job_definitions()
        .job_definition_name("scar-wf-split")
        .send()
        .await
        .expect("definition");
    let container = def.job_definitions()[0]
        .container_properties()
        .expect("container job");
    let requirement = |kind: &str| {
        container
            .resource_requirements()
            .iter()
            .find(|r| r.r#type().map(|t| t.as_str()) == Some(kind))
            .and_then(|r| r.value())
            .map(str::to_owned)
    };
    assert_eq!(requirement("GPU").as_deref(), Some("1"));
    assert_eq!(requirement("VCPU").as_deref(), Some("2"));
    assert_eq!(
        container.command(),
        ["/opt/scar/bin/scar-supervisor", "batch"]
    );
    // A job is run again only when its host went away, and stopped after its timeout.
    let split = &def.job_definitions()[0];
    assert_eq!(
        split
            .timeout()
            .and_then(aws_sdk_batch::types::JobTimeout::attempt_duration_seconds),
        Some(3600)
    );
    let retry = split.retry_strategy().expect("a retry strategy");
    assert_eq!(retry.attempts(), Some(3));
    let rules: Vec<(Option<&str>, Option<&str>, String)> = retry
        .evaluate_on_exit()
        .iter()
        .map(|e| {
            (
                e.on_status_reason(),
                e.on_reason(),
                e.action()
                    .map(|a| a.as_str().to_ascii_uppercase())
                    .unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        rules,
        [
            (Some("Host EC2*"), None, "RETRY".to_owned()),
            (None, Some("AGENT"), "RETRY".to_owned()),
            (None, Some("*"), "EXIT".to_owned()),
        ]
    );
    let detect = batch
        .describe_job_definitions()
        .job_definition_name("scar-wf-detect")
        .send()
        .await
        .expect("definition");
    assert_eq!(
        detect.job_definitions()[0].timeout(),
        None,
        "no timeout unless asked"
    );
    let lambda = aws_sdk_lambda::Client::new(&moto.sdk().await);
    let env = lambda
        .get_function_configuration()
        .function_name("split")
        .send()
        .await
        .expect("function")
        .environment()
        .and_then(|e| e.variables().cloned())
        .unwrap_or_default();
    assert_eq!(env.get("SCAR_EXECUTION").map(String::as_str), Some("batch"));
    assert_eq!(
        env.get("SCAR_BATCH_JOB_QUEUE").map(String::as_str),
        Some("scar-wf-split")
    );
    let iam = aws_sdk_iam::Client::new(&moto.sdk().await);
    let policy = iam
        .get_role_policy()
        .role_name("scar-wf-exec")
        .policy_name("scar")
        .send()
        .await
        .expect("managed role policy");
    let doc = policy.policy_document().to_owned();
    assert!(
        doc.contains("batch%3ASubmitJob") || doc.contains("batch:SubmitJob"),
        "{doc}"
    );
    assert!(doc.contains("job-queue/scar-wf-split"), "{doc}");
    let (code, text) = plan_exit(&moto, dir.path());
    assert_eq!(code, Some(0), "re-plan after create: {text}");

    // A job definition change registers a new revision and deregisters the old one.
    pipeline(dir.path(), &compute, 1, 4);
    let (code, text) = plan_exit(&moto, dir.path());
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("# batch_job_definition/split gets a new revision"),
        "{text}"
    );
    assert!(
        text.contains("vcpus = 2.0 -> 1.0 # forces a new revision"),
        "{text}"
    );
    assert!(
        text.contains("Plan: 1 to add, 0 to change, 1 to destroy."),
        "{text}"
    );
    ok(&moto.scar(dir.path(), &["apply", ".", "--auto-approve"]));
    assert_eq!(
        batch_state(&moto).await.definitions["scar-wf-split"],
        vec![2]
    );
    let (code, text) = plan_exit(&moto, dir.path());
    assert_eq!(code, Some(0), "re-plan after the new revision: {text}");

    // An environment's vCPU bounds change in place. moto ignores `computeResources` in
    // UpdateComputeEnvironment, so the request is checked on the wire, and the next plan
    // still (and only) shows that change.
    pipeline(dir.path(), &compute, 1, 8);
    let proxy = Proxy::start(moto.port(), Fault::None);
    let out = moto.scar_via(
        &proxy.endpoint,
        dir.path(),
        &["apply", ".", "--auto-approve"],
    );
    ok(&out);
    assert!(
        stdout(&out).contains("~ max_vcpus = 4 -> 8"),
        "{}",
        stdout(&out)
    );
    let log = proxy.log.lock().expect("log").clone();
    assert!(
        log.iter()
            .any(|l| l.contains("/v1/updatecomputeenvironment")
                && l.contains("\"computeEnvironment\":\"scar-wf-split\"")
                && l.contains("\"maxvCpus\":8")),
        "no UpdateComputeEnvironment with maxvCpus 8 in {log:#?}"
    );
    let (code, text) = plan_exit(&moto, dir.path());
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("~ max_vcpus = 4 -> 8")
            && text.contains("Plan: 0 to add, 1 to change, 0 to destroy."),
        "moto gap: only the ignored vCPU update may remain: {text}"
    );

    let out = moto.scar(dir.path(), &["destroy", ".", "--auto-approve"]);
    ok(&out);
    let s = batch_state(&moto).await;
    let mut left: Vec<&String> = s.environments.keys().collect();
    left.sort();
    assert_eq!(
        left,
        ["scar-wf-split-old"],
        "only the foreign environment stays"
    );
    assert_eq!(
        s.queues.keys().collect::<Vec<_>>(),
        ["scar-wf-split-old"],
        "only the foreign queue stays"
    );
    assert_eq!(
        s.definitions.keys().collect::<Vec<_>>(),
        ["scar-wf-split-old"],
        "only the foreign definition stays active"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_compute_type_switch_moves_the_queue_then_deletes_the_old_environment() {
    let moto = Moto::start();
    let compute = batch_prerequisites(&moto).await;
    let dir = tempfile::tempdir().expect("tempdir");
    pipeline(dir.path(), &compute, 1, 4);
    ok(&moto.scar(dir.path(), &["apply", ".", "--auto-approve"]));
    let split = std::fs::read_to_string(dir.path().join("split.yaml")).expect("read");
    std::fs::write(
        dir.path().join("split.yaml"),
        split
            .replace("type: EC2", "type: FARGATE")
            .replace("    gpu: 1\n", "")
            .replace("memory: 4096", "memory: 2048"),
    )
    .expect("write");
    let out = moto.scar(dir.path(), &["apply", ".", "--auto-approve"]);
    ok(&out);
    let text = stderr(&out);
    let created = text
        .find("batch_compute_environment/split:fargate: Creation complete")
        .expect("new environment created");
    let moved = text
        .find("batch_job_queue/split: Modifications complete")
        .expect("queue moved");
    let deleted = text
        .find("batch_compute_environment/split: Destruction complete")
        .expect("old environment deleted");
    assert!(created < moved && moved < deleted, "{text}");
    let s = batch_state(&moto).await;
    assert!(!s.environments.contains_key("scar-wf-split"));
    assert!(s.queues["scar-wf-split"][0].ends_with("/fargate-scar-wf-split"));
    // moto keeps the first revision's platformCapabilities on later revisions, so the
    // definition's platform is the one change left.
    let (code, text) = plan_exit(&moto, dir.path());
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("platform = \"EC2\" -> \"FARGATE\"")
            && text.contains("Plan: 1 to add, 0 to change, 1 to destroy."),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_foreign_batch_resource_with_the_same_name_is_an_error_not_a_takeover() {
    let moto = Moto::start();
    let compute = batch_prerequisites(&moto).await;
    let batch = aws_sdk_batch::Client::new(&moto.sdk().await);
    batch
        .register_job_definition()
        .job_definition_name("scar-wf-split")
        .r#type(aws_sdk_batch::types::JobDefinitionType::Container)
        .container_properties(foreign_container())
        .send()
        .await
        .expect("foreign definition");
    let dir = tempfile::tempdir().expect("tempdir");
    pipeline(dir.path(), &compute, 1, 4);
    let out = moto.scar(dir.path(), &["apply", ".", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        text.contains("batch_job_definition/split") && text.contains("already exists"),
        "{text}"
    );
    let s = batch_state(&moto).await;
    assert!(s.environments.is_empty(), "nothing written");
    assert_eq!(
        s.definitions["scar-wf-split"],
        vec![1],
        "foreign one untouched"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_video_process_example_applies_and_destroys() {
    let moto = Moto::start();
    let compute = batch_prerequisites(&moto).await;
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/video-process"),
        dir.path(),
    );
    // The example's network ids are placeholders; moto needs real ones and a service role.
    let stack_file = dir.path().join("stack.yaml");
    let text = std::fs::read_to_string(&stack_file).expect("read");
    let kept: String = text
        .lines()
        .filter(|l| !l.contains("subnets:") && !l.contains("securityGroups:"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&stack_file, format!("{kept}{compute}")).expect("write");
    let out = moto.scar(dir.path(), &["apply", ".", "--auto-approve"]);
    ok(&out);
    let s = batch_state(&moto).await;
    assert!(
        s.environments
            .contains_key("scar-video-process-scar-batch-ffmpeg-split")
    );
    assert_eq!(plan_exit(&moto, dir.path()).0, Some(0));
    ok(&moto.scar(dir.path(), &["destroy", ".", "--auto-approve"]));
    let s = batch_state(&moto).await;
    assert!(
        s.environments.is_empty() && s.queues.is_empty() && s.definitions.is_empty(),
        "Batch resources left after destroy"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_compute_environment_that_names_no_network_runs_in_the_default_vpc() {
    let moto = Moto::start();
    let compute = batch_prerequisites(&moto).await;
    // Only the service role: no subnets, no security groups (as SCAR's examples).
    let role_only: String = compute
        .lines()
        .filter(|l| l.contains("serviceRole"))
        .map(|l| format!("{l}\n"))
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::write(d.join("stack.yaml"), stack("netless", &role_only)).expect("write");
    std::fs::write(
        d.join("thumbs.yaml"),
        "apiVersion: scar/v1alpha1\nkind: Function\nmetadata:\n  name: thumbs\nspec:\n  image: grycap/ffmpeg\n  execution: batch\n  batch:\n    vcpus: 1\n",
    )
    .expect("write");
    ok(&moto.scar(d, &["validate", "."]));
    let (subnet, group) = moto.default_network();
    let plan = moto.scar(d, &["plan", "."]);
    ok(&plan);
    let text = stdout(&plan);
    assert!(
        text.contains(
            "batch_compute_environment/thumbs names no network: it uses the default VPC vpc-"
        ) && text.contains(&subnet)
            && text.contains(&format!("security group {group}")),
        "{text}"
    );
    ok(&moto.scar(d, &["apply", ".", "--auto-approve"]));
    let batch = aws_sdk_batch::Client::new(&moto.sdk().await);
    let ces = batch
        .describe_compute_environments()
        .send()
        .await
        .expect("environments");
    let resources = ces.compute_environments()[0]
        .compute_resources()
        .expect("resources");
    assert!(resources.subnets().contains(&subnet), "{resources:?}");
    assert_eq!(resources.security_group_ids(), [group]);
    assert_eq!(
        plan_exit(&moto, d).0,
        Some(0),
        "the default network is not drift"
    );
}

const HTTP_STACK: &str = "apiVersion: scar/v1alpha1
kind: Stack
metadata:
  name: web
spec:
  region: us-east-1
  role:
    managed: true
";

fn http_function(memory: u32) -> String {
    format!(
        "apiVersion: scar/v1alpha1
kind: Function
metadata:
  name: cowsay
spec:
  image: grycap/cowsay
  memory: {memory}
  http: {{}}
"
    )
}

/// `(id, name)` of every REST API.
async fn apis(moto: &Moto) -> Vec<(String, String)> {
    let gw = aws_sdk_apigateway::Client::new(&moto.sdk().await);
    let out = gw.get_rest_apis().send().await.expect("apis");
    out.items()
        .iter()
        .map(|a| {
            (
                a.id().unwrap_or_default().to_owned(),
                a.name().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn url_line(out: &std::process::Output) -> String {
    stdout(out)
        .lines()
        .find(|l| l.contains("http_api/cowsay url = "))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no URL in:\n{}", stdout(out)))
}

#[tokio::test(flavor = "multi_thread")]
async fn an_http_function_keeps_its_api_through_updates() {
    let moto = Moto::start();
    let gw = aws_sdk_apigateway::Client::new(&moto.sdk().await);
    let foreign = gw
        .create_rest_api()
        .name("scar-web-cowsay")
        .send()
        .await
        .expect("foreign api");
    let foreign_id = foreign.id().unwrap_or_default().to_owned();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("stack.yaml"), HTTP_STACK).expect("write");
    std::fs::write(dir.path().join("cowsay.yaml"), http_function(512)).expect("write");

    let plan = moto.scar(dir.path(), &["plan", "."]);
    assert!(
        stdout(&plan).contains("+ url = (known after apply)"),
        "{}",
        stdout(&plan)
    );
    let out = moto.scar(dir.path(), &["apply", ".", "--auto-approve"]);
    ok(&out);
    let first = url_line(&out);
    let ours: Vec<String> = apis(&moto)
        .await
        .into_iter()
        .filter(|(id, _)| *id != foreign_id)
        .map(|(id, _)| id)
        .collect();
    assert_eq!(ours.len(), 1, "one API created next to the foreign one");
    let id = ours[0].clone();
    assert!(
        first.ends_with(&format!(
            "https://{id}.execute-api.us-east-1.amazonaws.com/scar"
        )),
        "{first}"
    );
    let resources = gw
        .get_resources()
        .rest_api_id(&id)
        .send()
        .await
        .expect("resources");
    let proxy = resources
        .items()
        .iter()
        .find(|r| r.path() == Some("/{proxy+}"))
        .and_then(|r| r.id())
        .expect("{proxy+} resource");
    let integration = gw
        .get_integration()
        .rest_api_id(&id)
        .resource_id(proxy)
        .http_method("ANY")
        .send()
        .await
        .expect("integration");
    assert_eq!(integration.r#type().map(|t| t.as_str()), Some("AWS_PROXY"));
    assert!(
        integration
            .uri()
            .is_some_and(|u| u.ends_with(":function:cowsay/invocations"))
    );
    assert_eq!(
        integration
            .request_parameters()
            .and_then(|p| p.get("integration.request.header.X-Amz-Invocation-Type"))
            .map(String::as_str),
        Some("method.request.header.X-Amz-Invocation-Type"),
        "clients can ask for an asynchronous call"
    );
    let lambda = aws_sdk_lambda::Client::new(&moto.sdk().await);
    let policy = lambda
        .get_policy()
        .function_name("cowsay")
        .send()
        .await
        .expect("policy");
    let policy = policy.policy().unwrap_or_default();
    assert!(
        policy.contains("scar-web-apigw") && policy.contains(&format!(":{id}/*")),
        "permission scoped to the API: {policy}"
    );
    let (code, text) = plan_exit(&moto, dir.path());
    assert_eq!(code, Some(0), "{text}");

    // Every media type is binary, so bodies pass as bytes both ways; a change out of band is
    // drift, repaired in place with a redeployment.
    let binary = |id: String| {
        let gw = gw.clone();
        async move {
            gw.get_rest_api()
                .rest_api_id(id)
                .send()
                .await
                .expect("api")
                .binary_media_types()
                .to_vec()
        }
    };
    assert_eq!(binary(id.clone()).await, ["*/*"]);
    gw.update_rest_api()
        .rest_api_id(&id)
        .patch_operations(
            aws_sdk_apigateway::types::PatchOperation::builder()
                .op(aws_sdk_apigateway::types::Op::Replace)
                .path("/binaryMediaTypes/*~1*")
                .value("image/png")
                .build(),
        )
        .send()
        .await
        .expect("out of band");
    let (code, text) = plan_exit(&moto, dir.path());
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("~ binary_media_types = ["), "{text}");
    let deployments = |id: String| {
        let gw = gw.clone();
        async move {
            gw.get_deployments()
                .rest_api_id(id)
                .send()
                .await
                .expect("deployments")
                .items()
                .len()
        }
    };
    let before = deployments(id.clone()).await;
    ok(&moto.scar(dir.path(), &["apply", ".", "--auto-approve"]));
    assert_eq!(binary(id.clone()).await, ["*/*"]);
    assert_eq!(
        deployments(id.clone()).await,
        before + 1,
        "redeployed to take effect"
    );
    assert_eq!(plan_exit(&moto, dir.path()).0, Some(0));

    // A second API carrying the same address (a create retried after AWS made the first but
    // lost the answer) is pruned; the older one, and its URL, stay.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let twin = gw
        .create_rest_api()
        .name("scar-web-cowsay")
        .tags("scar:stack", "web")
        .tags("scar:managed-by", "scar")
        .tags("scar:address", "http_api/cowsay")
        .send()
        .await
        .expect("twin api");
    let twin_id = twin.id().unwrap_or_default().to_owned();
    let out = moto.scar(dir.path(), &["apply", ".", "--auto-approve"]);
    ok(&out);
    assert!(
        stdout(&out).contains(&format!("# http_api/cowsay#{twin_id} will be destroyed")),
        "{}",
        stdout(&out)
    );
    assert!(!apis(&moto).await.iter().any(|(a, _)| *a == twin_id));
    assert_eq!(url_line(&out), first);

    std::fs::write(dir.path().join("cowsay.yaml"), http_function(1024)).expect("write");
    let out = moto.scar(dir.path(), &["apply", ".", "--auto-approve"]);
    ok(&out);
    assert!(
        stdout(&out).contains("Resources: 0 added, 1 changed, 0 destroyed."),
        "only the function changes: {}",
        stdout(&out)
    );
    assert_eq!(url_line(&out), first, "the URL survives a function update");
    assert!(apis(&moto).await.iter().any(|(a, _)| *a == id));
    assert_eq!(plan_exit(&moto, dir.path()).0, Some(0));

    ok(&moto.scar(dir.path(), &["destroy", ".", "--auto-approve"]));
    let left = apis(&moto).await;
    assert_eq!(
        left,
        [(foreign_id, "scar-web-cowsay".to_owned())],
        "destroy removes our API and only ours"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_multi_node_gpu_job_on_spot_is_registered_as_asked() {
    let moto = Moto::start();
    let compute = batch_prerequisites(&moto).await;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("stack.yaml"), stack("mn", &compute)).expect("write");
    std::fs::write(
        dir.path().join("render.yaml"),
        "apiVersion: scar/v1alpha1
kind: Function
metadata:
  name: render
spec:
  image: nvidia/cuda:12.4.1-runtime-ubuntu22.04
  execution: batch
  batch:
    vcpus: 4
    memory: 16384
    gpu: 1
    multiNode:
      nodes: 3
      mainNode: 1
    compute:
      type: SPOT
      maxVcpus: 16
      bidPercentage: 60
      instanceTypes: [g4dn.xlarge]
",
    )
    .expect("write");
    let proxy = Proxy::start(moto.port(), Fault::None);
    ok(&moto.scar_via(
        &proxy.endpoint,
        dir.path(),
        &["apply", ".", "--auto-approve"],
    ));
    let log = proxy.log.lock().expect("log").clone();
    let register = log
        .iter()
        .find(|l| l.contains("/v1/registerjobdefinition"))
        .expect("a RegisterJobDefinition request");
    for part in [
        "\"type\":\"multinode\"",
        "\"numNodes\":3",
        "\"mainNode\":1",
        "\"targetNodes\":\"0:\"",
        "\"type\":\"GPU\"",
    ] {
        assert!(register.contains(part), "{part} missing from {register}");
    }
    let batch = aws_sdk_batch::Client::new(&moto.sdk().await);
    let defs = batch
        .describe_job_definitions()
        .job_definition_name("scar-mn-render")
        .send()
        .await
        .expect("definition");
    assert_eq!(defs.job_definitions()[0].r#type(), Some("multinode"));
    // moto 5.2.5 does not return `nodeProperties` from DescribeJobDefinitions, so the
    // definition reads back without its container and the next plan registers it again.
    // Everything else, the SPOT environment with its bid percentage included, round-trips.
    let (code, text) = plan_exit(&moto, dir.path());
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("# batch_job_definition/render gets a new revision")
            && text.contains("Plan: 1 to add, 0 to change, 1 to destroy."),
        "only the definition moto cannot describe may change: {text}"
    );
    ok(&moto.scar(dir.path(), &["destroy", ".", "--auto-approve"]));
    assert!(batch_state(&moto).await.definitions.is_empty());
}

/// A Batch function and an HTTP function in stack `kill`.
fn kill_stack(compute: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("stack.yaml"), stack("kill", compute)).expect("write");
    std::fs::write(
        dir.path().join("heavy.yaml"),
        "apiVersion: scar/v1alpha1
kind: Function
metadata:
  name: heavy
spec:
  image: grycap/ffmpeg
  execution: batch
  batch:
    compute:
      type: EC2
",
    )
    .expect("write");
    std::fs::write(dir.path().join("web.yaml"), http_function(512)).expect("write");
    dir
}

/// What the `kill` stack left: environments, queues, active revisions, owned APIs, functions,
/// and the HTTP function's policy statements.
async fn kill_census(moto: &Moto) -> (usize, usize, usize, usize, usize, usize) {
    let s = batch_state(moto).await;
    let config = moto.sdk().await;
    let gw = aws_sdk_apigateway::Client::new(&config);
    let apis = gw.get_rest_apis().send().await.expect("apis");
    let owned = apis
        .items()
        .iter()
        .filter(|a| {
            a.tags()
                .and_then(|t| t.get("scar:stack"))
                .map(String::as_str)
                == Some("kill")
        })
        .count();
    let lambda = aws_sdk_lambda::Client::new(&config);
    let mut functions = 0;
    for f in ["heavy", "cowsay"] {
        if lambda.get_function().function_name(f).send().await.is_ok() {
            functions += 1;
        }
    }
    let statements = match lambda.get_policy().function_name("cowsay").send().await {
        Ok(p) => serde_json::from_str::<serde_json::Value>(p.policy().unwrap_or("{}"))
            .unwrap_or_default()["Statement"]
            .as_array()
            .map_or(0, Vec::len),
        Err(_) => 0,
    };
    (
        s.environments.len(),
        s.queues.len(),
        s.definitions.values().map(Vec::len).sum(),
        owned,
        functions,
        statements,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_applies_of_batch_and_http_converge() {
    use std::sync::atomic::Ordering;
    let (total, log) = {
        let moto = Moto::start();
        let compute = batch_prerequisites(&moto).await;
        let proxy = Proxy::start(moto.port(), Fault::None);
        let dir = kill_stack(&compute);
        ok(&moto.scar_via(
            &proxy.endpoint,
            dir.path(),
            &["apply", ".", "--auto-approve", "--parallelism", "2"],
        ));
        let log = proxy.log.lock().expect("log").clone();
        (proxy.requests.load(Ordering::SeqCst), log)
    };
    // Also right after AWS made the API and the compute environment, their answers lost.
    let after = |what: &str| {
        let i = log
            .iter()
            .position(|l| l.starts_with(what))
            .unwrap_or_else(|| panic!("no `{what}` in {log:#?}"));
        Fault::HangAfter(i + 1)
    };
    let targeted = [
        after("POST /restapis "),
        after("POST /v1/createcomputeenvironment "),
    ];
    // The first requests are reads (STS, tagging, functions, buckets, Batch, API Gateway).
    let reads = 10;
    let points: Vec<Fault> = Fault::spread(total, reads)
        .into_iter()
        .chain(targeted)
        .collect();
    eprintln!("apply makes {total} requests; killing at {points:?}");
    for fault in points {
        let moto = Moto::start();
        let compute = batch_prerequisites(&moto).await;
        let dir = kill_stack(&compute);
        let proxy = Proxy::start(moto.port(), fault);
        let reached = proxy.kill_at_hang(
            dir.path(),
            &["apply", ".", "--auto-approve", "--parallelism", "2"],
        );
        drop(proxy);
        assert!(reached, "{fault:?}: apply finished before the kill point");

        ok(&moto.scar(dir.path(), &["apply", ".", "--auto-approve"]));
        let (code, text) = plan_exit(&moto, dir.path());
        assert_eq!(code, Some(0), "{fault:?}: not converged: {text}");
        assert_eq!(
            kill_census(&moto).await,
            (1, 1, 1, 1, 2, 1),
            "{fault:?}: duplicates or gaps after the rerun"
        );
        ok(&moto.scar(dir.path(), &["destroy", ".", "--auto-approve"]));
        assert_eq!(
            kill_census(&moto).await,
            (0, 0, 0, 0, 0, 0),
            "{fault:?}: orphans after destroy"
        );
    }
}

fn authed_function(http: &str) -> String {
    format!(
        "apiVersion: scar/v1alpha1\nkind: Function\nmetadata:\n  name: cowsay\nspec:\n  image: grycap/cowsay\n  http: {http}\n"
    )
}

/// The root method's `(authorizationType, apiKeyRequired)` of API `id`.
async fn root_method(gw: &aws_sdk_apigateway::Client, id: &str) -> (String, bool) {
    let root = gw
        .get_resources()
        .rest_api_id(id)
        .send()
        .await
        .expect("resources")
        .items()
        .iter()
        .find(|r| r.path() == Some("/"))
        .and_then(|r| r.id())
        .expect("root")
        .to_owned();
    let m = gw
        .get_method()
        .rest_api_id(id)
        .resource_id(&root)
        .http_method("ANY")
        .send()
        .await
        .expect("method");
    (
        m.authorization_type().unwrap_or_default().to_owned(),
        m.api_key_required().unwrap_or(false),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn public_http_endpoints_with_no_choice() {
    let moto = Moto::start();
    let gw = aws_sdk_apigateway::Client::new(&moto.sdk().await);
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("stack.yaml"), HTTP_STACK).expect("write");
    let file = dir.path().join("cowsay.yaml");

    // API keys, with the usage plan's throttling.
    std::fs::write(
        &file,
        authed_function("{auth: apiKey, throttle: {rateLimit: 10, burstLimit: 5}}"),
    )
    .expect("write");
    let out = moto.scar(dir.path(), &["apply", ".", "--auto-approve"]);
    ok(&out);
    assert!(stdout(&out).contains("api_key_id = "), "{}", stdout(&out));
    let id = apis(&moto).await.first().expect("an API").0.clone();
    assert_eq!(root_method(&gw, &id).await, ("NONE".to_owned(), true));
    let plans = gw.get_usage_plans().send().await.expect("plans");
    let plan = plans.items().first().expect("a usage plan");
    assert_eq!(
        plan.api_stages().first().and_then(|s| s.api_id()),
        Some(id.as_str())
    );
    assert_eq!(plan.throttle().map(|t| t.burst_limit()), Some(5));
    let plan_id = plan.id().unwrap_or_default().to_owned();
    let keys = gw
        .get_usage_plan_keys()
        .usage_plan_id(&plan_id)
        .send()
        .await
        .expect("keys");
    assert_eq!(keys.items().len(), 1, "one API key");
    let (code, text) = plan_exit(&moto, dir.path());
    assert_eq!(code, Some(0), "not converged: {text}");

    // A throttle changed out of band is drift, set back.
    gw.update_usage_plan()
        .usage_plan_id(&plan_id)
        .patch_operations(
            aws_sdk_apigateway::types::PatchOperation::builder()
                .op(aws_sdk_apigateway::types::Op::Replace)
                .path("/throttle/burstLimit")
                .value("500")
                .build(),
        )
        .send()
        .await
        .expect("out of band");
    assert_eq!(plan_exit(&moto, dir.path()).0, Some(2));
    ok(&moto.scar(dir.path(), &["apply", ".", "--auto-approve"]));
    assert_eq!(plan_exit(&moto, dir.path()).0, Some(0));

    // Signed callers only: the usage plan and its key go.
    std::fs::write(&file, authed_function("{auth: iam}")).expect("write");
    ok(&moto.scar(dir.path(), &["apply", ".", "--auto-approve"]));
    assert_eq!(root_method(&gw, &id).await, ("AWS_IAM".to_owned(), false));
    assert!(
        gw.get_usage_plans()
            .send()
            .await
            .expect("plans")
            .items()
            .is_empty(),
        "the usage plan outlived auth: apiKey"
    );
    assert!(
        gw.get_api_keys()
            .send()
            .await
            .expect("keys")
            .items()
            .is_empty(),
        "the API key outlived auth: apiKey"
    );
    assert_eq!(plan_exit(&moto, dir.path()).0, Some(0), "converged");

    // A throttle without API keys is a validation error.
    std::fs::write(
        &file,
        authed_function("{auth: iam, throttle: {rateLimit: 1, burstLimit: 1}}"),
    )
    .expect("write");
    let bad = moto.scar(dir.path(), &["plan", "."]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("`throttle` applies to callers with API keys"));
}

/// Every kind a stack holds is read back by refresh: after an apply, the next plan lists a
/// no-op for each resource, and among them every kind scar knows. A kind whose live
/// resources refresh forgot would be planned as a create forever.
#[tokio::test(flavor = "multi_thread")]
async fn every_kind_an_applied_stack_holds_is_read_back() {
    let moto = Moto::start();
    let compute = batch_prerequisites(&moto).await;
    let dir = tempfile::tempdir().expect("tempdir");
    pipeline(dir.path(), &compute, 2, 4);
    std::fs::write(dir.path().join("cowsay.yaml"), http_function(256)).expect("write");
    // A queued input: its queue, dead-letter queue and mapping.
    std::fs::write(
        dir.path().join("archive.yaml"),
        "apiVersion: scar/v1alpha1\nkind: Function\nmetadata:\n  name: archive\nspec:\n  image: grycap/ffmpeg\n  script: run.sh\n  input:\n    - bucket: wf-media\n      prefix: queued/\n      queue:\n        maxConcurrency: 4\n",
    )
    .expect("write");
    ok(&moto.scar(dir.path(), &["apply", ".", "--auto-approve"]));
    let out = moto.scar(dir.path(), &["plan", ".", "--format", "json"]);
    ok(&out);
    let plan: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("plan JSON");
    let mut kinds = std::collections::BTreeSet::new();
    for c in plan["resource_changes"]
        .as_array()
        .expect("resource_changes")
    {
        assert_eq!(
            c["change"]["actions"],
            serde_json::json!(["no-op"]),
            "{}",
            c["address"]
        );
        kinds.insert(c["type"].as_str().expect("type").to_owned());
    }
    let all: std::collections::BTreeSet<String> = scar::model::ResourceKind::ALL
        .iter()
        .map(|k| k.as_str().to_owned())
        .collect();
    assert_eq!(kinds, all, "kinds the applied stack holds");
}

/// Submits a job to `split`'s queue as its supervisor does: the event, the request id, the
/// key of the record a failed last attempt writes, the function's ARN.
async fn submit_as_supervisor(moto: &Moto, stack: &str, key: &str, record_key: &str) -> String {
    use aws_sdk_batch::types::{ContainerOverrides, KeyValuePair};
    let batch = aws_sdk_batch::Client::new(&moto.sdk().await);
    let name = scar::manifest::names::derive(stack, "split").batch;
    let event = serde_json::json!({"Records": [{"eventSource": "aws:s3", "s3": {
        "bucket": {"name": "jobs-media"}, "object": {"key": key}}}]});
    let pair = |n: &str, v: String| KeyValuePair::builder().name(n).value(v).build();
    batch
        .submit_job()
        .job_name(format!("split-{}", key.replace(['/', '.'], "-")))
        .job_queue(&name)
        .job_definition(&name)
        .container_overrides(
            ContainerOverrides::builder()
                .environment(pair(scar_contract::env::EVENT, event.to_string()))
                .environment(pair(scar_contract::env::REQUEST_ID, "req".into()))
                .environment(pair(scar_contract::env::FAILURE_RECORD, record_key.into()))
                .environment(pair(
                    scar_contract::env::FUNCTION_ARN,
                    "arn:aws:lambda:us-east-1:123456789012:function:split".into(),
                ))
                .build(),
        )
        .send()
        .await
        .expect("submit")
        .job_id()
        .unwrap_or_default()
        .to_owned()
}

/// A Batch job that failed before its supervisor could write a record (moto has no Docker
/// here, so every job it runs fails so: as a job whose host went away every time) is listed
/// by `scar failures` from Batch's list of failed jobs, as the record it would have written;
/// one whose supervisor wrote its record is listed once, from the record; one a retry
/// settled is not listed again.
#[tokio::test(flavor = "multi_thread")]
async fn batch_jobs_that_failed_without_a_record_are_listed_from_batch() {
    let moto = Moto::start();
    let compute = batch_prerequisites(&moto).await;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("stack.yaml"), stack("jobs", &compute)).expect("stack");
    std::fs::write(
        dir.path().join("split.yaml"),
        "apiVersion: scar/v1alpha1\nkind: Function\nmetadata:\n  name: split\nspec:\n  image: grycap/ffmpeg\n  script: run.sh\n  execution: batch\n  batch:\n    timeout: 600\n  input:\n    - bucket: jobs-media\n      prefix: videos/\n",
    )
    .expect("function");
    std::fs::write(dir.path().join("run.sh"), "echo hi\n").expect("script");
    ok(&moto.scar(dir.path(), &["apply", ".", "--auto-approve"]));
    let bucket = scar::model::failures::default_bucket("jobs", "us-east-1", None);
    let now = scar::lock::now();
    let lost = scar::failures::record_key("split", now, "lost");
    let written = scar::failures::record_key("split", now, "written");
    let lost_job = submit_as_supervisor(&moto, "jobs", "videos/a.mp4", &lost).await;
    let written_job = submit_as_supervisor(&moto, "jobs", "videos/b.mp4", &written).await;
    // The second job's supervisor wrote its record (the test does).
    let s3 = crate::support::moto::s3(&moto.sdk().await);
    let record = crate::failures::lambda_record(
        "videos/b.mp4",
        &scar::lock::rfc3339(now),
        2,
        &serde_json::json!(null),
    )
    .replace("function:ocr", "function:split")
    .replace("books-scans", "jobs-media");
    crate::failures::put_record(&s3, &bucket, &written, record).await;
    let batch = aws_sdk_batch::Client::new(&moto.sdk().await);
    let mut failed = 0;
    for _ in 0..120 {
        let out = batch
            .describe_jobs()
            .jobs(&lost_job)
            .jobs(&written_job)
            .send()
            .await
            .expect("describe");
        failed = out
            .jobs()
            .iter()
            .filter(|j| j.status() == Some(&aws_sdk_batch::types::JobStatus::Failed))
            .count();
        if failed == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert_eq!(failed, 2, "moto ends both jobs as FAILED");

    let out = moto.scar(dir.path(), &["failures", ".", "--json"]);
    ok(&out);
    let listed: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    let failures = listed["failures"].as_array().expect("failures");
    assert_eq!(
        failures.len(),
        2,
        "{listed}{}",
        crate::support::stderr(&out)
    );
    let of = |input: &str| {
        failures
            .iter()
            .find(|f| f["input"] == format!("s3://jobs-media/{input}"))
            .unwrap_or_else(|| panic!("{input}: {listed}"))
    };
    let a = of("videos/a.mp4");
    assert_eq!(a["condition"], "BatchJobFailed");
    assert_eq!(a["request_id"], lost_job.as_str());
    assert_eq!(a["record"], format!("s3://{bucket}/{lost}"));
    assert!(
        a["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("the job ended without its supervisor")),
        "{a}"
    );
    assert_eq!(
        of("videos/b.mp4")["condition"],
        "RetriesExhausted",
        "{listed}{}",
        crate::support::stderr(&out)
    );

    // Settled by a retry (the marker it leaves): Batch still lists the job, scar no longer.
    s3.put_object()
        .bucket(&bucket)
        .key(format!("scar/settled/{lost}"))
        .body(b"{}".to_vec().into())
        .send()
        .await
        .expect("marker");
    let listed = moto.scar(dir.path(), &["failures", ".", "--json"]);
    ok(&listed);
    let listed: serde_json::Value = serde_json::from_str(&stdout(&listed)).expect("json");
    assert_eq!(
        listed["failures"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
}
