//! Function checks: names, scripts, images, limits that span fields, Batch and HTTP settings.

use std::collections::HashMap;

use crate::diag::{Diagnostic, Diagnostics};
use crate::manifest::load::{Doc, ManifestSet};
use crate::manifest::names;
use crate::manifest::resolve::{self, Effective};
use crate::manifest::types::{ComputeType, EnvValue, Execution, FunctionManifest};

/// Lambda's limit on the total size of a function's environment variables.
const ENV_LIMIT_BYTES: usize = 4096;

/// Variables Lambda reserves, and those the supervisor sets for every event.
const RESERVED_ENV: &[&str] = &[
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
    "INPUT_FILE_PATH",
    "TMP_OUTPUT_DIR",
];

/// CloudWatch Logs' accepted retention periods, in days.
pub(crate) const RETENTION_DAYS: &[u32] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

/// Fargate's vCPU and memory (MiB) pairs: vCPUs, lowest memory, highest memory, step.
const FARGATE: &[(f64, u32, u32, u32)] = &[
    (0.25, 512, 2048, 512),
    (0.5, 1024, 4096, 1024),
    (1.0, 2048, 8192, 1024),
    (2.0, 4096, 16384, 1024),
    (4.0, 8192, 30720, 1024),
    (8.0, 16384, 61440, 4096),
    (16.0, 32768, 122_880, 8192),
];

pub(super) fn check(set: &ManifestSet, out: &mut Diagnostics) {
    let stack = set.stack();
    let stack_name = stack.map_or("stack", |s| s.value.metadata.name.as_str());
    let mut seen: HashMap<String, &Doc<FunctionManifest>> = HashMap::new();
    for f in &set.functions {
        let name = &f.value.metadata.name;
        if let Some(first) = seen.get(&name.to_lowercase()) {
            let same = first.value.metadata.name == *name;
            out.push(
                Diagnostic::error(if same {
                    format!("duplicate function name `{name}`")
                } else {
                    format!(
                        "function name `{name}` differs from `{}` only in case",
                        first.value.metadata.name
                    )
                })
                .at(f.at("/metadata/name"))
                .field("metadata.name")
                .related(first.at("/metadata/name"), "first defined here")
                .hint(
                    "function names are unique in a stack, ignoring case (ECR names are lowercase)",
                ),
            );
        } else {
            seen.insert(name.to_lowercase(), f);
        }
        if let Some(problem) = names::function_name_problem(stack_name, name) {
            out.push(
                Diagnostic::error(format!("invalid function name `{name}`: {problem}"))
                    .at(f.at("/metadata/name"))
                    .field("metadata.name"),
            );
        }
        let eff = resolve::effective(stack.map(|s| &s.value.spec), &f.value.spec);
        check_one(set, f, &eff, out);
        check_env(set, f, &eff, stack_name, stack.map(|s| &s.value.spec), out);
    }
}

/// A queued input's queue against the function: Lambda refuses a mapping whose queue hides a
/// received event for less than the function may run; events beyond the function's reserved
/// concurrency are received, throttled and received again, each receive counting.
fn check_queue(
    f: &Doc<FunctionManifest>,
    eff: &Effective,
    q: &crate::manifest::types::QueueSpec,
    i: usize,
    out: &mut Diagnostics,
) {
    if let Some(v) = q.visibility_timeout.filter(|v| *v < eff.timeout) {
        out.push(
            Diagnostic::error(format!(
                "the queue hides a received event for {v} s, less than the function's timeout of {} s: Lambda refuses such a queue",
                eff.timeout
            ))
            .at(f.at(&format!("/spec/input/{i}/queue/visibilityTimeout")))
            .field(format!("spec.input[{i}].queue.visibilityTimeout"))
            .hint("leave it out (six times the timeout), or make it at least the timeout"),
        );
    }
    if let (Some(n), Some(r)) = (q.max_concurrency, f.value.spec.reserved_concurrency)
        && n > r
    {
        out.push(
            Diagnostic::warning(format!(
                "the queue runs up to {n} at once, but the function may run only {r}: throttled events are received again, and each receive counts toward maxReceives"
            ))
            .at(f.at(&format!("/spec/input/{i}/queue/maxConcurrency")))
            .field(format!("spec.input[{i}].queue.maxConcurrency"))
            .hint("keep maxConcurrency at or below reservedConcurrency"),
        );
    }
}

fn check_one(set: &ManifestSet, f: &Doc<FunctionManifest>, eff: &Effective, out: &mut Diagnostics) {
    let spec = &f.value.spec;
    check_image(set, f, out);
    if spec.reserved_concurrency.is_none()
        && let Some(i) = spec
            .ignore_changes
            .iter()
            .position(|i| *i == crate::manifest::types::IgnorableField::ReservedConcurrency)
    {
        out.push(
            Diagnostic::warning(
                "ignoreChanges names reservedConcurrency, which the function does not set: scar leaves it alone anyway",
            )
            .at(f.at(&format!("/spec/ignoreChanges/{i}")))
            .field(format!("spec.ignoreChanges[{i}]"))
            .hint("set `reservedConcurrency` (used when the function is created), or remove the entry"),
        );
    }
    // Only asynchronous invocations (an S3 input's) are retried and kept by Lambda: a
    // function's own `onFailure` on one that has none does nothing (the Stack's defaults
    // may, for its other functions).
    if spec.on_failure.is_some() && !spec.has_s3_input() {
        out.push(
            Diagnostic::warning("`onFailure` does nothing here: the function has no S3 input, and only those invoke it asynchronously")
                .at(f.key_at("/spec/onFailure"))
                .field("spec.onFailure")
                .hint("remove it, or add the input it is meant for"),
        );
    }
    // Throttled events wait (up to six hours by default) and are then dropped: with a
    // reserved concurrency a burst of uploads is throttled for sure.
    let recorded = eff.on_failure.destination != crate::manifest::resolve::Destination::Nowhere;
    if spec.reserved_concurrency.is_some() && spec.has_s3_input() && !recorded {
        out.push(
            Diagnostic::warning("inputs beyond `reservedConcurrency` wait, and Lambda drops those that wait too long with no record of them")
                .at(f.key_at("/spec/reservedConcurrency"))
                .field("spec.reservedConcurrency")
                .hint("leave `onFailure.destination` at its default (the stack's failures bucket, which `scar failures` lists), or name a bucket or queue"),
        );
    }
    if eff.timeout_threshold >= eff.timeout {
        out.push(
            Diagnostic::error(format!(
                "timeoutThreshold ({} s) leaves no time to run: the timeout is {} s",
                eff.timeout_threshold, eff.timeout
            ))
            .at(f.at("/spec/timeoutThreshold"))
            .field("spec.timeoutThreshold")
            .hint("keep the threshold well below the timeout"),
        );
    }
    if !RETENTION_DAYS.contains(&eff.retention_days) {
        out.push(
            Diagnostic::error(format!(
                "log retention of {} days is not one CloudWatch accepts",
                eff.retention_days
            ))
            .at(f.at("/spec/logs/retentionDays"))
            .field("spec.logs.retentionDays")
            .hint(format!(
                "use one of {}",
                RETENTION_DAYS
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        );
    }
    check_network(f, eff, out);
    for (i, input) in spec.input.iter().enumerate() {
        let Some(input) = input.s3() else {
            continue;
        };
        bucket(f, &input.bucket, &format!("/spec/input/{i}/bucket"), out);
        if input.prefix.as_deref().is_some_and(|p| p.starts_with('/')) {
            out.push(
                Diagnostic::error("a key prefix never starts with `/`")
                    .at(f.at(&format!("/spec/input/{i}/prefix")))
                    .field(format!("spec.input[{i}].prefix"))
                    .hint("write `input/`, not `/input/`"),
            );
        }
        for (j, event) in input.events.iter().flatten().enumerate() {
            if !super::graph::is_known_event(event) {
                out.push(
                    Diagnostic::error(format!("unknown S3 event type `{event}`"))
                        .at(f.at(&format!("/spec/input/{i}/events/{j}")))
                        .field(format!("spec.input[{i}].events[{j}]"))
                        .hint("for example `s3:ObjectCreated:*` or `s3:ObjectRemoved:Delete`"),
                );
            }
        }
        if let Some(q) = &input.queue {
            check_queue(f, eff, q, i, out);
        }
    }
    let providers = set.stack().map(|s| &s.value.spec.storage_providers);
    for (i, output) in spec.output.iter().enumerate() {
        match &output.provider {
            None => bucket(f, &output.bucket, &format!("/spec/output/{i}/bucket"), out),
            Some(p) => {
                let known = p
                    .split_once('.')
                    .is_some_and(|(kind, id)| match (kind, providers) {
                        ("s3", Some(sp)) => sp.s3.contains_key(id),
                        ("minio", Some(sp)) => sp.minio.contains_key(id),
                        ("webdav", Some(sp)) => sp.webdav.contains_key(id),
                        ("onedata", Some(sp)) => sp.onedata.contains_key(id),
                        _ => false,
                    });
                if !known {
                    out.push(
                        Diagnostic::error(format!("unknown storage provider `{p}`"))
                            .at(f.at(&format!("/spec/output/{i}/provider")))
                            .field(format!("spec.output[{i}].provider"))
                            .hint("declare it under the Stack's `storageProviders` as `<type>.<id>` (s3, minio, webdav)"),
                    );
                }
            }
        }
    }
    check_batch(f, eff, out);
    if let Some(http) = &spec.http
        && http.throttle.is_some()
        && http.auth != Some(crate::manifest::types::HttpAuth::ApiKey)
    {
        out.push(
            Diagnostic::error("`throttle` applies to callers with API keys")
                .at(f.key_at("/spec/http/throttle"))
                .field("spec.http.throttle")
                .hint("set `auth: apiKey` (the throttle is the usage plan's), or drop `throttle`"),
        );
    }
    if spec.http.is_some() && eff.execution == Execution::Batch {
        out.push(
            Diagnostic::warning("an HTTP function in `batch` mode answers before the work is done")
                .at(f.key_at("/spec/http"))
                .field("spec.http")
                .hint("callers get the Batch job id, not the script's output"),
        );
    }
    // The Stack's tags go on the function's resources too (the function's own win).
    // (A function with no tags of its own leaves that to the Stack's check.)
    let inherited = set
        .stack()
        .filter(|_| !spec.tags.is_empty())
        .map_or(0, |st| {
            st.value
                .spec
                .tags
                .keys()
                .filter(|k| !spec.tags.contains_key(*k))
                .count()
        });
    super::stack::check_tags(&spec.tags, inherited, "/spec/tags", f, out);
}

/// True for variable names Lambda or the supervisor reserves.
#[must_use]
pub fn is_reserved_env(name: &str) -> bool {
    RESERVED_ENV.contains(&name) || name.starts_with("SCAR_")
}

fn bucket(f: &Doc<FunctionManifest>, name: &str, pointer: &str, out: &mut Diagnostics) {
    if let Some(problem) = names::bucket_name_problem(name) {
        out.push(
            Diagnostic::error(format!("invalid bucket name `{name}`: {problem}"))
                .at(f.at(pointer))
                .field(crate::manifest::load::field_path(pointer)),
        );
    }
}

fn check_image(set: &ManifestSet, f: &Doc<FunctionManifest>, out: &mut Diagnostics) {
    let image = &f.value.spec.image;
    let problem = if image.chars().any(char::is_whitespace) || image.starts_with(['/', ':', '@']) {
        Some(format!("`{image}` is not an image reference"))
    } else {
        crate::image::reference::ImageRef::parse(image).err()
    };
    if let Some(problem) = problem {
        out.push(
            Diagnostic::error(problem)
                .at(f.at("/spec/image"))
                .field("spec.image")
                .hint("for example `grycap/imagemagick:latest` or `ACCOUNT.dkr.ecr.REGION.amazonaws.com/repo:tag`"),
        );
        return;
    }
    if f.value.spec.prebuilt == Some(true) {
        let region = set.stack().map(|s| s.value.spec.region.as_str());
        let ecr_region = image
            .split('/')
            .next()
            .and_then(|host| host.split_once(".dkr.ecr."))
            .and_then(|(_, rest)| rest.split('.').next());
        match (ecr_region, region) {
            (None, _) => out.push(
                Diagnostic::error("a prebuilt image must be in ECR: Lambda pulls only from ECR")
                    .at(f.at("/spec/image"))
                    .field("spec.image")
                    .hint("drop `prebuilt: true` to have scar assemble and push the image"),
            ),
            (Some(r), Some(stack)) if r != stack => out.push(
                Diagnostic::error(format!(
                    "the image is in region {r}, but the stack is in {stack}; Lambda pulls only from its own region"
                ))
                .at(f.at("/spec/image"))
                .field("spec.image"),
            ),
            _ => {}
        }
    }
}

fn check_env(
    set: &ManifestSet,
    f: &Doc<FunctionManifest>,
    eff: &Effective,
    stack: &str,
    spec: Option<&crate::manifest::types::StackSpec>,
    out: &mut Diagnostics,
) {
    let mut size = 0;
    for (k, v) in &eff.environment {
        let pointer = format!(
            "/spec/environment/{}",
            crate::manifest::yaml::escape_segment(k)
        );
        let valid = k.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        // A control character in a name is reported with the values' (secrets.rs), quoted.
        if !valid && !k.chars().any(char::is_control) {
            out.push(
                Diagnostic::error(format!("invalid environment variable name `{k}`"))
                    .at(f.key_at(&pointer))
                    .field(format!("spec.environment.{k}"))
                    .hint("start with a letter; use letters, digits and `_`"),
            );
        }
        if is_reserved_env(k) {
            out.push(
                Diagnostic::error(format!("environment variable `{k}` is reserved"))
                    .at(f.key_at(&pointer))
                    .field(format!("spec.environment.{k}"))
                    .hint("Lambda or the scar supervisor sets it; choose another name"),
            );
        }
        size += k.len()
            + match v {
                EnvValue::Literal(s) => s.len(),
                EnvValue::Secret(s) => s.secret_ref.to_reference().len(),
            };
    }
    size += names::supervisor_env(stack, &f.value.metadata.name)
        .iter()
        .chain(&crate::manifest::contract::secrets_env(&eff.environment))
        .map(|(k, v)| k.len() + v.len())
        .sum::<usize>();
    if eff.execution.delegates() {
        // Where to submit: the mode, and the queue and definition names.
        let batch_name = names::derive(stack, &f.value.metadata.name).batch;
        size += scar_contract::env::EXECUTION.len()
            + "lambda-batch".len()
            + scar_contract::env::BATCH_JOB_QUEUE.len()
            + scar_contract::env::BATCH_JOB_DEFINITION.len()
            + 2 * batch_name.len()
            + eff.batch.as_ref().map_or(0, |b| {
                if b.multi_node.is_some() {
                    scar_contract::env::BATCH_MULTI_NODE.len() + "true".len()
                } else {
                    0
                }
            });
    }
    // A prebuilt image's function carries its script (base64, in SCAR_SCRIPT) and its outputs
    // in the environment; an assembled image holds them inside.
    if f.value.spec.prebuilt == Some(true) {
        if f.value.spec.script.is_some() {
            let len = set.script_of(f).len();
            size = size.saturating_add(scar_contract::env::SCRIPT.len() + len.div_ceil(3) * 4);
        }
        // The failures bucket's name is the model's to derive: counted at its longest.
        let bucket = f.value.spec.has_s3_input().then(|| "b".repeat(63));
        size += crate::manifest::contract::config(
            stack,
            spec,
            &f.value,
            String::new(),
            bucket.as_deref(),
        )
        .env()
        .iter()
        .map(|(k, v)| k.len() + v.len())
        .sum::<usize>();
    }
    if size > ENV_LIMIT_BYTES {
        out.push(
            Diagnostic::error(format!(
                "the environment takes about {size} bytes; Lambda allows {ENV_LIMIT_BYTES} in all"
            ))
            .at(f.key_at("/spec/environment"))
            .field("spec.environment")
            .hint("the script counts too (base64, in SCAR_SCRIPT): move large values or code into the image, or values into SSM parameters"),
        );
    }
}

fn check_network(f: &Doc<FunctionManifest>, eff: &Effective, out: &mut Diagnostics) {
    if let Some(vpc) = &eff.vpc {
        for (i, s) in vpc.subnets.iter().enumerate() {
            if !s.starts_with("subnet-") {
                out.push(
                    Diagnostic::error(format!("`{s}` is not a subnet id"))
                        .at(f.at(&format!("/spec/vpc/subnets/{i}")))
                        .field(format!("spec.vpc.subnets[{i}]"))
                        .hint("subnet ids look like `subnet-0123456789abcdef0`"),
                );
            }
        }
        for (i, s) in vpc.security_groups.iter().enumerate() {
            if !s.starts_with("sg-") {
                out.push(
                    Diagnostic::error(format!("`{s}` is not a security group id"))
                        .at(f.at(&format!("/spec/vpc/securityGroups/{i}")))
                        .field(format!("spec.vpc.securityGroups[{i}]"))
                        .hint("security group ids look like `sg-0123456789abcdef0`"),
                );
            }
        }
    }
    let fs = &f.value.spec.file_systems;
    if fs.len() > 1 {
        out.push(
            Diagnostic::error("Lambda mounts at most one file system")
                .at(f.key_at("/spec/fileSystems"))
                .field("spec.fileSystems"),
        );
    }
    if !fs.is_empty() && eff.vpc.is_none() {
        out.push(
            Diagnostic::error("a file system needs the function in a VPC")
                .at(f.key_at("/spec/fileSystems"))
                .field("spec.fileSystems")
                .hint("add `vpc: {subnets: [...], securityGroups: [...]}` that reach the EFS mount targets"),
        );
    }
}

fn check_batch(f: &Doc<FunctionManifest>, eff: &Effective, out: &mut Diagnostics) {
    let delegates = matches!(eff.execution, Execution::Batch | Execution::LambdaBatch);
    let at = |p: &str| f.at(p);
    if !delegates {
        if f.value.spec.batch.is_some() {
            out.push(
                Diagnostic::warning("`batch` settings are unused: execution is `lambda`")
                    .at(f.key_at("/spec/batch"))
                    .field("spec.batch")
                    .hint("set `execution: batch` or `lambda-batch`, or remove the block"),
            );
        }
        return;
    }
    let Some(batch) = &eff.batch else {
        out.push(
            Diagnostic::error("execution delegates to AWS Batch but no `batch` settings are given")
                .at(f.at("/spec/execution"))
                .field("spec.batch")
                .hint("add `batch.compute` (here or in the Stack's defaults); without `subnets` and `securityGroups` it runs in the region's default VPC"),
        );
        return;
    };
    if batch.timeout.is_none() {
        let (pointer, field) = if f.value.spec.batch.is_some() {
            ("/spec/batch", "spec.batch.timeout")
        } else {
            ("/spec/execution", "spec.batch.timeout")
        };
        out.push(
            Diagnostic::warning("a Batch job with no `timeout` runs, and bills, until someone stops it if it hangs")
                .at(f.key_at(pointer))
                .field(field)
                .hint("set `batch.timeout` to the seconds an attempt may take (at least 60), here or in the Stack's defaults"),
        );
    }
    // Left out, the compute environment is the built-in one: EC2, up to 2 vCPUs.
    let compute = &batch.compute.clone().unwrap_or_default();
    let kind = compute.kind.unwrap_or(ComputeType::Ec2);
    let fargate = matches!(kind, ComputeType::Fargate | ComputeType::FargateSpot);
    // Subnets and security groups left out come from the region's default VPC at plan time.
    let min = compute.min_vcpus.unwrap_or(0);
    let max = compute
        .max_vcpus
        .unwrap_or(crate::manifest::resolve::DEFAULT_MAX_VCPUS);
    let desired = compute.desired_vcpus.unwrap_or(min);
    if !(min <= desired && desired <= max) {
        out.push(
            Diagnostic::error(format!(
                "vCPUs must satisfy min <= desired <= max, found {min} <= {desired} <= {max}"
            ))
            .at(f.key_at("/spec/batch/compute"))
            .field("spec.batch.compute"),
        );
    }
    let vcpus = batch
        .vcpus
        .unwrap_or(crate::manifest::resolve::DEFAULT_BATCH_VCPUS);
    if vcpus > f64::from(max) {
        out.push(
            Diagnostic::error(format!(
                "a job asks for {vcpus} vCPUs but the compute environment has at most {max}: it would never start"
            ))
            .at(at("/spec/batch/vcpus"))
            .field("spec.batch.vcpus"),
        );
    }
    if compute.bid_percentage.is_some() && kind != ComputeType::Spot {
        out.push(
            Diagnostic::error("`bidPercentage` applies only to SPOT compute")
                .at(at("/spec/batch/compute/bidPercentage"))
                .field("spec.batch.compute.bidPercentage"),
        );
    }
    if fargate {
        let memory = batch
            .memory
            .unwrap_or(crate::manifest::resolve::DEFAULT_BATCH_MEMORY);
        let fits = FARGATE.iter().any(|&(v, lo, hi, step)| {
            (v - vcpus).abs() < f64::EPSILON
                && (lo..=hi).contains(&memory)
                && (memory - lo) % step == 0
        });
        if !fits {
            out.push(
                Diagnostic::error(format!(
                    "Fargate has no size with {vcpus} vCPU and {memory} MiB"
                ))
                .at(at("/spec/batch/vcpus"))
                .field("spec.batch.vcpus")
                .hint("for example 0.25 vCPU with 512-2048 MiB, 1 vCPU with 2048-8192 MiB in 1024 steps"),
            );
        }
        for (field, bad) in [
            ("gpu", batch.gpu.unwrap_or(0) > 0),
            ("multiNode", batch.multi_node.is_some()),
            ("compute.instanceTypes", compute.instance_types.is_some()),
            ("compute.instanceRole", compute.instance_role.is_some()),
        ] {
            if bad {
                out.push(
                    Diagnostic::error(format!("`batch.{field}` is not available on Fargate"))
                        .at(at(&format!("/spec/batch/{}", field.replace('.', "/"))))
                        .field(format!("spec.batch.{field}"))
                        .hint("use EC2 or SPOT compute"),
                );
            }
        }
    } else if vcpus.fract() != 0.0 {
        out.push(
            Diagnostic::error(format!("EC2 and SPOT jobs take whole vCPUs, found {vcpus}"))
                .at(at("/spec/batch/vcpus"))
                .field("spec.batch.vcpus"),
        );
    }
    if let Some(mn) = &batch.multi_node
        && mn.main_node.unwrap_or(0) >= mn.nodes
    {
        out.push(
            Diagnostic::error(format!(
                "mainNode {} is not one of the {} nodes (0-{})",
                mn.main_node.unwrap_or(0),
                mn.nodes,
                mn.nodes - 1
            ))
            .at(at("/spec/batch/multiNode/mainNode"))
            .field("spec.batch.multiNode.mainNode"),
        );
    }
}
