//! The AWS Batch resources of a function that delegates (`execution: batch | lambda-batch`):
//! a managed compute environment, a job queue on it, and a job definition whose command runs
//! the supervisor with the event the function hands over.

use serde_json::{Value, json};

use super::attrs::{
    ComputeEnvAttrs, JobDefinitionAttrs, JobQueueAttrs, MultiNode, Retry, RetryRule, to_attrs,
};
use super::grants::{ACCOUNT, Grants, Need};
use super::{Address, DesiredResource, ResourceKind, int, ownership_tags};
use crate::manifest::names;
use crate::manifest::resolve::{
    DEFAULT_BATCH_MEMORY, DEFAULT_BATCH_VCPUS, DEFAULT_INSTANCE_ROLE, DEFAULT_MAX_VCPUS, Effective,
};
use crate::manifest::types::{BatchRetrySpec, ComputeSpec, ComputeType, EnvValue, Execution};

/// The command of every job definition: the supervisor in Batch mode. It reads the event from
/// `SCAR_EVENT`, which the delegating function sets when it submits the job.
pub const BATCH_COMMAND: [&str; 2] = [scar_contract::SUPERVISOR_PATH, "batch"];

/// Environment variables that tell the function's supervisor where to delegate.
pub const EXECUTION_ENV: &str = scar_contract::env::EXECUTION;
/// The job queue the supervisor submits to.
pub const JOB_QUEUE_ENV: &str = scar_contract::env::BATCH_JOB_QUEUE;
/// The job definition the supervisor submits (by name: its latest active revision).
pub const JOB_DEFINITION_ENV: &str = scar_contract::env::BATCH_JOB_DEFINITION;
/// Set (`true`) when the job definition is multi-node.
pub const MULTI_NODE_ENV: &str = scar_contract::env::BATCH_MULTI_NODE;

/// What a delegating function adds to the graph and to its own settings.
pub(super) struct Delegation {
    /// Compute environment, job queue and job definition.
    pub resources: Vec<DesiredResource>,
    /// What the function must wait for (queue and definition).
    pub function_depends_on: Vec<Address>,
    /// Variables added to the function's environment.
    pub function_env: Vec<(&'static str, String)>,
}

/// True for Fargate compute types.
#[must_use]
pub fn is_fargate(kind: ComputeType) -> bool {
    matches!(kind, ComputeType::Fargate | ComputeType::FargateSpot)
}

/// What a delegating function needs of the managed role: submitting to its queue and
/// definition, Batch's own log group, and on Fargate, pulling the stack's images with the
/// job's execution role.
pub(super) fn grant(
    stack: &str,
    function: &str,
    spec: &crate::manifest::types::StackSpec,
    eff: &Effective,
    g: &mut Grants,
) {
    if !eff.execution.delegates() {
        return;
    }
    let base = names::derive(stack, function).batch;
    let region = &spec.region;
    g.allow(
        Need::SubmitBatchJobs,
        format!("arn:aws:batch:{region}:{ACCOUNT}:job-queue/{base}"),
    );
    g.allow(
        Need::SubmitBatchJobs,
        format!("arn:aws:batch:{region}:{ACCOUNT}:job-definition/{base}:*"),
    );
    // Batch jobs run with the same role and log to Batch's own group.
    g.allow(
        Need::Logs,
        format!("arn:aws:logs:{region}:{ACCOUNT}:log-group:/aws/batch/job:*"),
    );
    let fargate = eff
        .batch
        .as_ref()
        .and_then(|b| b.compute.as_ref())
        .and_then(|c| c.kind)
        .is_some_and(is_fargate);
    if fargate {
        g.allow(Need::EcrToken, "*".into());
        g.allow(
            Need::PullImages,
            format!(
                "arn:aws:ecr:{region}:{ACCOUNT}:repository/{}",
                names::derive(stack, "x").ecr_repository
            ),
        );
    }
}

/// The retry strategy of a job definition: the manifest's, or scar's default. The default
/// runs a job again, up to 3 attempts in all, when its host went away (an EC2 instance
/// reclaimed or stopped: Batch's status reason starts `Host EC2`; the container agent lost:
/// reason `AGENT`), and never when the script failed, so a bug is not paid for three times.
#[must_use]
pub fn retry(spec: Option<&BatchRetrySpec>) -> Retry {
    let r = crate::manifest::contract::job_retry(spec);
    Retry {
        attempts: int(r.attempts),
        evaluate_on_exit: r
            .rules
            .into_iter()
            .map(|r| RetryRule {
                on_status_reason: r.on_status_reason,
                on_reason: r.on_reason,
                on_exit_code: r.on_exit_code,
                action: if r.retry { "RETRY" } else { "EXIT" }.to_owned(),
            })
            .collect(),
    }
}

/// Attempts in all of scar's default retry strategy.
pub const DEFAULT_BATCH_ATTEMPTS: i32 = crate::manifest::contract::DEFAULT_BATCH_ATTEMPTS as i32;

fn sorted(v: Option<&Vec<String>>) -> Vec<String> {
    let mut v = v.cloned().unwrap_or_default();
    v.sort();
    v.dedup();
    v
}

/// The inputs a function's Batch resources are built from.
pub(super) struct BatchInput<'a> {
    pub stack: &'a str,
    pub function: &'a str,
    pub eff: &'a Effective,
    pub image: &'a Value,
    pub script: &'a str,
    /// The execution role (an ARN, or a reference to the managed role).
    pub role: &'a Value,
    pub user_tags: &'a std::collections::BTreeMap<String, String>,
    /// The function's environment as sent to Lambda (literals and secret references).
    pub function_env: &'a indexmap::IndexMap<String, String>,
}

/// The Batch resources of one delegating function; `None` for `execution: lambda` or when
/// validation would have refused the settings.
pub(super) fn delegation(i: &BatchInput<'_>) -> Option<Delegation> {
    if !i.eff.execution.delegates() {
        return None;
    }
    let batch = i.eff.batch.as_ref()?;
    let compute = batch.compute.clone().unwrap_or_default();
    let kind = compute.kind.unwrap_or(ComputeType::Ec2);
    let fargate = is_fargate(kind);
    let base = names::derive(i.stack, i.function).batch;
    let ce_name = names::batch_compute_environment(i.stack, i.function, fargate);
    let ce = Address::new(
        ResourceKind::BatchComputeEnvironment,
        if fargate {
            format!("{}:fargate", i.function)
        } else {
            i.function.to_owned()
        },
    );
    let queue = Address::new(ResourceKind::BatchJobQueue, i.function);
    let definition = Address::new(ResourceKind::BatchJobDefinition, i.function);
    let mut out = vec![
        compute_environment(i, &ce, &ce_name, kind, &compute),
        DesiredResource {
            address: queue.clone(),
            attrs: to_attrs(&JobQueueAttrs {
                name: base.clone(),
                priority: 1,
                state: "ENABLED".to_owned(),
                compute_environments: vec![ce_name.clone()],
                tags: ownership_tags(i.stack, &queue, i.user_tags),
            }),
            sensitive: Vec::new(),
            depends_on: vec![ce],
        },
    ];
    let mut env = i.function_env.clone();
    let mut sensitive = Vec::new();
    for (k, v) in &batch.environment {
        match v {
            EnvValue::Literal(s) => {
                env.insert(k.clone(), s.clone());
            }
            EnvValue::Secret(s) => {
                env.insert(k.clone(), s.secret_ref.to_reference());
            }
        }
    }
    for (k, v) in i.eff.environment.iter().chain(&batch.environment) {
        if matches!(v, EnvValue::Secret(_)) {
            sensitive.push(format!("environment.{k}"));
        }
    }
    // The job's own secret variables join the function's in the list the supervisor reads.
    if let Some((k, v)) =
        crate::manifest::contract::secrets_env(i.eff.environment.iter().chain(&batch.environment))
    {
        env.insert(k.to_owned(), v.to_string());
    }
    sensitive.sort();
    sensitive.dedup();
    out.push(DesiredResource {
        address: definition.clone(),
        attrs: to_attrs(&JobDefinitionAttrs::<Value> {
            name: base.clone(),
            platform: if fargate { "FARGATE" } else { "EC2" }.to_owned(),
            kind: if batch.multi_node.is_some() {
                "multinode"
            } else {
                "container"
            }
            .to_owned(),
            image: i.image.clone(),
            script: i.script.to_owned(),
            vcpus: batch.vcpus.unwrap_or(DEFAULT_BATCH_VCPUS),
            memory: int(batch.memory.unwrap_or(DEFAULT_BATCH_MEMORY)),
            gpu: int(batch.gpu.unwrap_or(0)),
            command: BATCH_COMMAND.iter().map(|c| (*c).to_owned()).collect(),
            environment: env,
            job_role: i.role.clone(),
            execution_role: if fargate { i.role.clone() } else { json!("") },
            multi_node: batch.multi_node.as_ref().map(|m| MultiNode {
                nodes: int(m.nodes),
                main_node: int(m.main_node.unwrap_or(0)),
            }),
            retry: retry(batch.retry.as_ref()),
            timeout: batch.timeout.map(int),
            // Older revisions left active (by a run stopped between registering and
            // deregistering) are deregistered in place.
            active_revisions: 1,
            tags: ownership_tags(i.stack, &definition, i.user_tags),
            revisions: Vec::new(),
        }),
        sensitive,
        depends_on: Vec::new(),
    });
    Some(Delegation {
        resources: out,
        function_depends_on: vec![queue, definition],
        function_env: vec![
            (
                EXECUTION_ENV,
                match i.eff.execution {
                    Execution::Batch => "batch",
                    _ => "lambda-batch",
                }
                .to_owned(),
            ),
            (JOB_QUEUE_ENV, base.clone()),
            (JOB_DEFINITION_ENV, base),
        ]
        .into_iter()
        .chain(
            batch
                .multi_node
                .is_some()
                .then(|| (MULTI_NODE_ENV, "true".to_owned())),
        )
        .collect(),
    })
}

fn compute_environment(
    i: &BatchInput<'_>,
    address: &Address,
    name: &str,
    kind: ComputeType,
    c: &ComputeSpec,
) -> DesiredResource {
    let ec2 = !is_fargate(kind);
    let min = c.min_vcpus.unwrap_or(0);
    let mut instance_types = sorted(c.instance_types.as_ref());
    if instance_types.is_empty() {
        instance_types.push("optimal".into());
    }
    let a = to_attrs(&ComputeEnvAttrs {
        name: name.to_owned(),
        kind: kind.as_str().to_owned(),
        max_vcpus: int(c.max_vcpus.unwrap_or(DEFAULT_MAX_VCPUS)),
        subnets: sorted(c.subnets.as_ref()),
        security_groups: sorted(c.security_groups.as_ref()),
        service_role: c.service_role.clone().unwrap_or_default(),
        state: "ENABLED".to_owned(),
        min_vcpus: ec2.then(|| int(min)),
        // Batch scales `desiredvCpus` itself: it is set on create and never compared.
        desired_vcpus: ec2.then(|| int(c.desired_vcpus.unwrap_or(min))),
        // The progressive strategies are the ones that let AWS update instance types,
        // subnets, security groups and the instance role in place.
        allocation_strategy: ec2.then(|| {
            if kind == ComputeType::Spot {
                "SPOT_CAPACITY_OPTIMIZED"
            } else {
                "BEST_FIT_PROGRESSIVE"
            }
            .to_owned()
        }),
        instance_types: ec2.then_some(instance_types),
        instance_role: ec2.then(|| {
            instance_profile_name(c.instance_role.as_deref().unwrap_or(DEFAULT_INSTANCE_ROLE))
        }),
        bid_percentage: (kind == ComputeType::Spot).then(|| int(c.bid_percentage.unwrap_or(100))),
        tags: ownership_tags(i.stack, address, i.user_tags),
    });
    DesiredResource {
        address: address.clone(),
        attrs: a,
        sensitive: Vec::new(),
        depends_on: Vec::new(),
    }
}

/// An instance profile given as an ARN or a name, as a name (AWS answers with either).
#[must_use]
pub fn instance_profile_name(s: &str) -> String {
    s.rsplit_once(":instance-profile/")
        .map_or(s, |(_, n)| n)
        .rsplit('/')
        .next()
        .unwrap_or(s)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifests_retry_rules_go_to_batch_in_order_and_the_default_spares_failed_scripts() {
        use crate::manifest::types::{ExitAction, ExitRule};
        let spec = BatchRetrySpec {
            attempts: 2,
            evaluate_on_exit: vec![
                ExitRule {
                    on_status_reason: None,
                    on_reason: None,
                    on_exit_code: Some("137".into()),
                    action: ExitAction::Retry,
                },
                ExitRule {
                    on_status_reason: None,
                    on_reason: Some("*".into()),
                    on_exit_code: None,
                    action: ExitAction::Exit,
                },
            ],
        };
        let r = retry(Some(&spec));
        assert_eq!(r.attempts, 2);
        let rules: Vec<(Option<&str>, &str)> = r
            .evaluate_on_exit
            .iter()
            .map(|e| {
                (
                    e.on_exit_code.as_deref().or(e.on_reason.as_deref()),
                    e.action.as_str(),
                )
            })
            .collect();
        assert_eq!(rules, [(Some("137"), "RETRY"), (Some("*"), "EXIT")]);
        // The default's last rule exits for any reason: a script that failed is not run again.
        let d = retry(None);
        assert_eq!(d.attempts, DEFAULT_BATCH_ATTEMPTS);
        let last = d.evaluate_on_exit.last().expect("rules");
        assert_eq!(
            (last.on_reason.as_deref(), last.action.as_str()),
            (Some("*"), "EXIT")
        );
        assert!(
            d.evaluate_on_exit
                .iter()
                .filter(|e| e.action == "RETRY")
                .all(|e| e.on_status_reason.as_deref() == Some("Host EC2*")
                    || e.on_reason.as_deref() == Some("AGENT"))
        );
    }

    #[test]
    fn instance_profiles_compare_by_name() {
        assert_eq!(instance_profile_name("ecsInstanceRole"), "ecsInstanceRole");
        assert_eq!(
            instance_profile_name("arn:aws:iam::123456789012:instance-profile/ecsInstanceRole"),
            "ecsInstanceRole"
        );
        assert_eq!(
            instance_profile_name("arn:aws:iam::123456789012:instance-profile/path/x"),
            "x"
        );
    }
}
