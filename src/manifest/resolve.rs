//! Effective function settings: a Function's own fields over the Stack's `defaults` over the
//! built-in defaults. Checks and (later) the resource graph read these, never raw `Option`s.

use std::collections::BTreeMap;

use super::types::{
    Architecture, BatchSpec, ComputeSpec, ComputeType, EnvValue, Execution, FunctionSpec, LogLevel,
    OnFailureSpec, StackSpec, VpcSpec,
};

/// Built-in memory in MB (SCAR's default).
pub const DEFAULT_MEMORY: u32 = 512;
/// Built-in timeout in seconds (SCAR's default).
pub const DEFAULT_TIMEOUT: u32 = 300;
/// Built-in ephemeral storage in MB (Lambda's default).
pub const DEFAULT_EPHEMERAL_STORAGE: u32 = 512;
/// Built-in timeout threshold in seconds (SCAR's default).
pub const DEFAULT_TIMEOUT_THRESHOLD: u32 = 10;
/// Built-in log retention in days (SCAR's default).
pub const DEFAULT_RETENTION_DAYS: u32 = 30;
/// Built-in vCPUs of a Batch job.
pub const DEFAULT_BATCH_VCPUS: f64 = 1.0;
/// Built-in memory of a Batch job in MiB (fits 1 vCPU on Fargate as well as on EC2).
pub const DEFAULT_BATCH_MEMORY: u32 = 2048;
/// Built-in most vCPUs of a compute environment.
pub const DEFAULT_MAX_VCPUS: u32 = 2;
/// Built-in instance profile of EC2 and SPOT compute environments.
pub const DEFAULT_INSTANCE_ROLE: &str = "ecsInstanceRole";
/// Built-in S3 trigger events.
pub const DEFAULT_EVENTS: &[&str] = &["s3:ObjectCreated:*"];

/// The S3 events an input fires on, defaults filled in.
#[must_use]
pub fn input_events(input: &super::types::S3Input) -> Vec<String> {
    input
        .events
        .clone()
        .unwrap_or_else(|| DEFAULT_EVENTS.iter().map(|s| (*s).to_owned()).collect())
}

/// What decides which objects an input fires on: bucket, prefix, suffix and events.
#[must_use]
pub fn input_rule(input: &super::types::S3Input) -> String {
    format!(
        "{}|{}|{}|{}",
        input.bucket,
        input.prefix.as_deref().unwrap_or(""),
        input.suffix.as_deref().unwrap_or(""),
        input_events(input).join(",")
    )
}

/// A function's settings after defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Effective {
    /// Memory in MB.
    pub memory: u32,
    /// Timeout in seconds.
    pub timeout: u32,
    /// Ephemeral storage in MB.
    pub ephemeral_storage: u32,
    /// Instruction set.
    pub architecture: Architecture,
    /// Seconds kept back before the timeout.
    pub timeout_threshold: u32,
    /// Execution mode.
    pub execution: Execution,
    /// Log retention in days.
    pub retention_days: u32,
    /// Supervisor log level.
    pub log_level: LogLevel,
    /// VPC attachment.
    pub vpc: Option<VpcSpec>,
    /// Environment: the stack's defaults overlaid by the function's own.
    pub environment: BTreeMap<String, EnvValue>,
    /// Batch settings merged field by field, when either side has any.
    pub batch: Option<BatchSpec>,
    /// Deletion protection.
    pub deletion_protection: bool,
    /// The failure policy: the function's, merged field by field over the stack's defaults,
    /// Lambda's retries and event age and the stack's failures bucket filling what neither
    /// names. On for every function, so that no input Lambda gives up on goes unrecorded.
    pub on_failure: OnFailure,
}

/// A resolved [`OnFailureSpec`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnFailure {
    /// Times a failed invocation runs again.
    pub retry_attempts: u32,
    /// Seconds an event may wait.
    pub max_event_age: u32,
    /// Where the record of an event Lambda gave up on goes.
    pub destination: Destination,
}

/// Where Lambda writes the record of an event it gave up on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// The stack's failures bucket.
    Stack,
    /// Nowhere: the event is dropped.
    Nowhere,
    /// A bucket named in the manifest.
    Bucket(String),
    /// An SQS queue, by ARN.
    Queue(String),
}

impl Destination {
    /// `default`, `none`, `s3://BUCKET` or a queue ARN (the schema allows nothing else).
    #[must_use]
    pub fn parse(s: &str) -> Destination {
        match s {
            "none" => Destination::Nowhere,
            _ => match s.strip_prefix("s3://") {
                Some(b) => Destination::Bucket(b.to_owned()),
                None if s.starts_with("arn:") => Destination::Queue(s.to_owned()),
                None => Destination::Stack,
            },
        }
    }
}

/// Lambda's own retries of a failed asynchronous invocation.
pub const DEFAULT_RETRY_ATTEMPTS: u32 = 2;
/// Lambda's own longest wait of an event, in seconds (six hours).
pub const DEFAULT_MAX_EVENT_AGE: u32 = 21_600;

/// Resolves a function's effective settings.
#[must_use]
pub fn effective(stack: Option<&StackSpec>, f: &FunctionSpec) -> Effective {
    let d = stack.map(|s| &s.defaults);
    let pick = |own: Option<u32>, def: Option<u32>, builtin: u32| own.or(def).unwrap_or(builtin);
    let mut environment = d.map(|d| d.environment.clone()).unwrap_or_default();
    environment.extend(f.environment.clone());
    let logs_default = d.and_then(|d| d.logs.as_ref());
    let logs_own = f.logs.as_ref();
    Effective {
        memory: pick(f.memory, d.and_then(|d| d.memory), DEFAULT_MEMORY),
        timeout: pick(f.timeout, d.and_then(|d| d.timeout), DEFAULT_TIMEOUT),
        ephemeral_storage: pick(
            f.ephemeral_storage,
            d.and_then(|d| d.ephemeral_storage),
            DEFAULT_EPHEMERAL_STORAGE,
        ),
        architecture: f
            .architecture
            .or(d.and_then(|d| d.architecture))
            .unwrap_or(Architecture::X86_64),
        timeout_threshold: pick(
            f.timeout_threshold,
            d.and_then(|d| d.timeout_threshold),
            DEFAULT_TIMEOUT_THRESHOLD,
        ),
        execution: f
            .execution
            .or(d.and_then(|d| d.execution))
            .unwrap_or(Execution::Lambda),
        retention_days: logs_own
            .and_then(|l| l.retention_days)
            .or(logs_default.and_then(|l| l.retention_days))
            .unwrap_or(DEFAULT_RETENTION_DAYS),
        log_level: logs_own
            .and_then(|l| l.level)
            .or(logs_default.and_then(|l| l.level))
            .unwrap_or(LogLevel::Info),
        vpc: f.vpc.clone().or_else(|| d.and_then(|d| d.vpc.clone())),
        environment,
        // A delegating function with no Batch settings gets the built-in ones (SCAR's
        // scar.cfg defaults: EC2, up to 2 vCPUs, the default VPC).
        batch: merge_batch(d.and_then(|d| d.batch.as_ref()), f.batch.as_ref()).or_else(|| {
            f.execution
                .or(d.and_then(|d| d.execution))
                .is_some_and(Execution::delegates)
                .then(BatchSpec::default)
        }),
        deletion_protection: f
            .deletion_protection
            .or(d.and_then(|d| d.deletion_protection))
            .unwrap_or(false),
        on_failure: {
            let (own, def) = (f.on_failure.as_ref(), d.and_then(|d| d.on_failure.as_ref()));
            let field =
                |pick: fn(&OnFailureSpec) -> Option<u32>| own.and_then(pick).or(def.and_then(pick));
            let destination = own
                .and_then(|s| s.destination.as_deref())
                .or(def.and_then(|s| s.destination.as_deref()))
                .map_or(Destination::Stack, Destination::parse);
            OnFailure {
                retry_attempts: field(|s| s.retry_attempts).unwrap_or(DEFAULT_RETRY_ATTEMPTS),
                max_event_age: field(|s| s.max_event_age).unwrap_or(DEFAULT_MAX_EVENT_AGE),
                destination,
            }
        },
    }
}

fn merge_batch(base: Option<&BatchSpec>, own: Option<&BatchSpec>) -> Option<BatchSpec> {
    let (base, own) = match (base, own) {
        (None, None) => return None,
        (Some(b), None) => return Some(b.clone()),
        (None, Some(o)) => return Some(o.clone()),
        (Some(b), Some(o)) => (b, o),
    };
    let mut environment = base.environment.clone();
    environment.extend(own.environment.clone());
    Some(BatchSpec {
        vcpus: own.vcpus.or(base.vcpus),
        memory: own.memory.or(base.memory),
        gpu: own.gpu.or(base.gpu),
        environment,
        multi_node: own.multi_node.clone().or_else(|| base.multi_node.clone()),
        retry: own.retry.clone().or_else(|| base.retry.clone()),
        timeout: own.timeout.or(base.timeout),
        compute: match (&base.compute, &own.compute) {
            (Some(b), Some(o)) => {
                // Fields that only make sense for one compute type are inherited only when the
                // function keeps the default's type: a function that switches the stack's SPOT
                // default to FARGATE must not inherit `bidPercentage` or `instanceTypes`.
                let same_type = o.kind.is_none()
                    || o.kind.unwrap_or(ComputeType::Ec2) == b.kind.unwrap_or(ComputeType::Ec2);
                let typed = |own: &Option<Vec<String>>, base: &Option<Vec<String>>| {
                    own.clone().or_else(|| base.clone().filter(|_| same_type))
                };
                Some(ComputeSpec {
                    kind: o.kind.or(b.kind),
                    min_vcpus: o.min_vcpus.or(b.min_vcpus),
                    max_vcpus: o.max_vcpus.or(b.max_vcpus),
                    desired_vcpus: o.desired_vcpus.or(b.desired_vcpus),
                    instance_types: typed(&o.instance_types, &b.instance_types),
                    subnets: o.subnets.clone().or_else(|| b.subnets.clone()),
                    security_groups: o
                        .security_groups
                        .clone()
                        .or_else(|| b.security_groups.clone()),
                    instance_role: o
                        .instance_role
                        .clone()
                        .or_else(|| b.instance_role.clone().filter(|_| same_type)),
                    service_role: o.service_role.clone().or_else(|| b.service_role.clone()),
                    bid_percentage: o.bid_percentage.or(b.bid_percentage.filter(|_| same_type)),
                })
            }
            (b, o) => o.clone().or_else(|| b.clone()),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::types::{FunctionDefaults, RoleSpec};

    fn function(yaml: serde_json::Value) -> FunctionSpec {
        serde_json::from_value(yaml).expect("valid spec")
    }

    #[test]
    fn own_beats_stack_beats_builtin() {
        let stack = StackSpec {
            region: "us-east-1".into(),
            account_id: None,
            role: RoleSpec::default(),
            defaults: FunctionDefaults {
                memory: Some(1024),
                timeout: Some(60),
                ..FunctionDefaults::default()
            },
            tags: BTreeMap::new(),
            buckets: Default::default(),
            storage_providers: Default::default(),
            failures: None,
        };
        let f = function(serde_json::json!({"image": "x", "memory": 2048}));
        let e = effective(Some(&stack), &f);
        assert_eq!((e.memory, e.timeout, e.ephemeral_storage), (2048, 60, 512));
        assert_eq!(e.execution, Execution::Lambda);
    }

    #[test]
    fn a_failure_policy_merges_field_by_field_over_lambdas_defaults() {
        let stack = StackSpec {
            defaults: crate::manifest::types::FunctionDefaults {
                on_failure: Some(OnFailureSpec {
                    retry_attempts: None,
                    max_event_age: Some(600),
                    destination: None,
                }),
                ..Default::default()
            },
            ..serde_json::from_value(
                serde_json::json!({"region": "us-east-1", "role": {"managed": true}}),
            )
            .expect("a stack spec")
        };
        let mut f: FunctionSpec =
            serde_json::from_value(serde_json::json!({"image": "alpine"})).expect("a function");
        let eff = effective(Some(&stack), &f);
        assert_eq!(
            eff.on_failure,
            OnFailure {
                retry_attempts: DEFAULT_RETRY_ATTEMPTS,
                max_event_age: 600,
                destination: Destination::Stack,
            }
        );
        f.on_failure = Some(OnFailureSpec {
            retry_attempts: Some(0),
            max_event_age: None,
            destination: None,
        });
        assert_eq!(
            effective(Some(&stack), &f).on_failure,
            OnFailure {
                retry_attempts: 0,
                max_event_age: 600,
                destination: Destination::Stack,
            }
        );
        assert_eq!(
            effective(
                None,
                &FunctionSpec {
                    on_failure: None,
                    ..f
                }
            )
            .on_failure,
            OnFailure {
                retry_attempts: DEFAULT_RETRY_ATTEMPTS,
                max_event_age: DEFAULT_MAX_EVENT_AGE,
                destination: Destination::Stack,
            },
            "on by default, with Lambda's retries and age and the stack's bucket"
        );
    }

    #[test]
    fn batch_compute_merges_field_by_field() {
        let base = BatchSpec {
            compute: Some(ComputeSpec {
                subnets: Some(vec!["subnet-1".into()]),
                security_groups: Some(vec!["sg-1".into()]),
                ..ComputeSpec::default()
            }),
            ..BatchSpec::default()
        };
        let own = BatchSpec {
            vcpus: Some(2.0),
            compute: Some(ComputeSpec {
                kind: Some(ComputeType::Spot),
                ..ComputeSpec::default()
            }),
            ..BatchSpec::default()
        };
        let m = merge_batch(Some(&base), Some(&own)).expect("merged");
        let c = m.compute.expect("compute");
        assert_eq!(c.kind, Some(ComputeType::Spot));
        assert_eq!(c.subnets, Some(vec!["subnet-1".to_owned()]));
        assert_eq!(m.vcpus, Some(2.0));
    }
}
