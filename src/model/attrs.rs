//! Typed attributes: one struct per resource kind. The model builds each resource's
//! attributes from its kind's struct, the live readers build what they read from AWS from
//! the same struct, and the writer reads a step's attributes back through it; the plan in
//! between carries them as a JSON map (what it diffs, renders and saves, in the struct's
//! field order), so plan, diff and renderers stay generic. A key renamed on one side only, or
//! a value of the wrong type, is then a compile error or an error that names the resource and
//! the field, never a plan that does not converge or a function created with 0 MB.
//!
//! Fields that may hold a reference to a resource not made yet (an image URI, a role ARN)
//! are a type parameter `R`: [`Value`] in the model's, `String` once apply resolved them.
//! Each kind's fields that force a replacement or are not read back ([`Fields`]) are listed
//! beside its struct. Partial views of what a step's `before` holds (names and ids for
//! deletes and ownership checks) are in [`id`].

use std::collections::BTreeMap;

use indexmap::IndexMap;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Address, ResourceKind};
use crate::manifest::types::Architecture;

/// Attributes that are not what their kind needs.
#[derive(Debug, thiserror::Error)]
#[error("the attributes of {address} are not what scar writes for it: {source}")]
pub struct AttrError {
    /// The resource.
    pub address: String,
    /// What serde found wrong (the field, and what it expected).
    #[source]
    pub source: serde_json::Error,
}

/// `attrs` as the JSON map the plan carries, fields in their declared order.
#[must_use]
pub fn to_attrs<T: Serialize>(attrs: &T) -> Map<String, Value> {
    match serde_json::to_value(attrs) {
        Ok(Value::Object(m)) => m,
        // Every view is a struct of strings, numbers, lists and string-keyed maps.
        _ => Map::new(),
    }
}

/// A typed view of one kind's attributes.
pub trait Attrs: Sized + for<'de> Deserialize<'de> {
    /// Reads `attrs` of `address` as this kind's view.
    ///
    /// # Errors
    /// A missing field, an unknown one, or one of the wrong type.
    fn from_attrs(address: &Address, attrs: &Map<String, Value>) -> Result<Self, AttrError> {
        Self::read(attrs).map_err(|source| AttrError {
            address: address.to_string(),
            source,
        })
    }

    /// Reads `attrs` as this kind's view, where no address is at hand.
    ///
    /// # Errors
    /// A missing field, an unknown one, or one of the wrong type.
    fn read(attrs: &Map<String, Value>) -> Result<Self, serde_json::Error> {
        Self::deserialize(Value::Object(attrs.clone()))
    }
}

/// What the plan needs to know of a kind's fields beyond their values.
pub trait Fields {
    /// Fields whose change AWS cannot apply in place: the plan replaces the resource.
    const REPLACE: &'static [&'static str] = &[];
    /// Fields scar writes but does not read back on every plan (to stay within two calls
    /// per function): a live resource without them is not a change.
    const UNREAD: &'static [&'static str] = &[];
}

impl<R> Fields for FunctionAttrs<R> {}
impl Fields for BucketAttrs {}
impl Fields for RoleAttrs {}
impl Fields for RepositoryAttrs {}
impl Fields for ApiAttrs {}
impl Fields for JobQueueAttrs {}
impl<R> Fields for TriggerAttrs<R> {}

impl Fields for LogGroupAttrs {
    const UNREAD: &'static [&'static str] = &["tags"];
}

impl Fields for ComputeEnvAttrs {
    // Batch scales it; set on create only.
    const UNREAD: &'static [&'static str] = &["desired_vcpus"];
}

impl Fields for ImageAttrs {
    // Compared through their digests (`script_sha256`, `config_sha256`); carried in the
    // plan so that apply builds exactly what was planned.
    const UNREAD: &'static [&'static str] = &["script", "config"];
}

impl<R> Fields for PermissionAttrs<R> {
    // A resource-policy statement cannot be edited: remove it and add the new one.
    const REPLACE: &'static [&'static str] =
        &["function", "principal", "source_arn", "source_account"];
}

impl<R> Fields for JobDefinitionAttrs<R> {
    // Job definitions are immutable: any change but tags registers a new revision.
    const REPLACE: &'static [&'static str] = &[
        "platform",
        "type",
        "image",
        "script",
        "vcpus",
        "memory",
        "gpu",
        "command",
        "environment",
        "job_role",
        "execution_role",
        "multi_node",
        "retry",
        "timeout",
    ];
}

/// The [`Fields`] of `kind`.
#[must_use]
pub fn fields(kind: ResourceKind) -> (&'static [&'static str], &'static [&'static str]) {
    fn of<T: Fields>() -> (&'static [&'static str], &'static [&'static str]) {
        (T::REPLACE, T::UNREAD)
    }
    match kind {
        ResourceKind::Function => of::<FunctionAttrs>(),
        ResourceKind::LogGroup => of::<LogGroupAttrs>(),
        ResourceKind::Bucket => of::<BucketAttrs>(),
        ResourceKind::IamRole => of::<RoleAttrs>(),
        ResourceKind::LambdaPermission => of::<PermissionAttrs>(),
        ResourceKind::S3Trigger => of::<TriggerAttrs>(),
        ResourceKind::HttpApi => of::<ApiAttrs>(),
        ResourceKind::BatchComputeEnvironment => of::<ComputeEnvAttrs>(),
        ResourceKind::BatchJobQueue => of::<JobQueueAttrs>(),
        ResourceKind::BatchJobDefinition => of::<JobDefinitionAttrs>(),
        ResourceKind::ImageRepository => of::<RepositoryAttrs>(),
        ResourceKind::FunctionImage => of::<ImageAttrs>(),
        ResourceKind::InvokeConfig => of::<InvokeConfigAttrs>(),
        ResourceKind::Queue => of::<QueueAttrs>(),
        ResourceKind::EventSourceMapping => of::<MappingAttrs>(),
    }
}

impl<R: DeserializeOwned> Attrs for FunctionAttrs<R> {}
impl<R: DeserializeOwned> Attrs for PermissionAttrs<R> {}
impl<R: DeserializeOwned> Attrs for TriggerAttrs<R> {}
impl Attrs for LogGroupAttrs {}
impl Attrs for BucketAttrs {}
impl Attrs for RoleAttrs {}
impl Attrs for ApiAttrs {}
impl Attrs for JobQueueAttrs {}
impl Attrs for ComputeEnvAttrs {}
impl Attrs for ImageAttrs {}
impl Attrs for RepositoryAttrs {}

/// A managed Batch compute environment. Fields marked EC2 are absent for Fargate; the bid
/// only for Spot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComputeEnvAttrs {
    /// Its name.
    pub name: String,
    /// `EC2`, `SPOT`, `FARGATE` or `FARGATE_SPOT`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The most vCPUs it scales to.
    pub max_vcpus: i32,
    /// Subnet ids, sorted.
    pub subnets: Vec<String>,
    /// Security group ids, sorted.
    pub security_groups: Vec<String>,
    /// Batch's service role ARN, or `""` for the service-linked role.
    pub service_role: String,
    /// `ENABLED`.
    pub state: String,
    /// EC2: the fewest vCPUs it keeps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_vcpus: Option<i32>,
    /// EC2: the vCPUs it starts with (set on create only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_vcpus: Option<i32>,
    /// EC2: how it picks instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocation_strategy: Option<String>,
    /// EC2: instance types, sorted (`optimal` when none are named).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_types: Option<Vec<String>>,
    /// EC2: the instance profile's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_role: Option<String>,
    /// Spot: the highest price, as a percentage of on-demand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bid_percentage: Option<i32>,
    /// Tags, ownership tags included.
    pub tags: BTreeMap<String, String>,
}
impl<R: DeserializeOwned> Attrs for JobDefinitionAttrs<R> {}

/// A Batch job queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobQueueAttrs {
    /// Its name.
    pub name: String,
    /// Its priority.
    pub priority: i32,
    /// `ENABLED` or `DISABLED`.
    pub state: String,
    /// Compute environment names, in order.
    pub compute_environments: Vec<String>,
    /// Tags, ownership tags included.
    pub tags: BTreeMap<String, String>,
}

/// A Batch job definition (its latest revision); `R` as for [`FunctionAttrs`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobDefinitionAttrs<R = String> {
    /// Its name.
    pub name: String,
    /// `EC2` or `FARGATE`.
    pub platform: String,
    /// `container` or `multinode`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The image URI.
    pub image: R,
    /// The function's script (sent base64 in `SCAR_SCRIPT`).
    pub script: String,
    /// vCPUs (Fargate takes fractions).
    pub vcpus: f64,
    /// Memory in MiB.
    pub memory: i32,
    /// GPUs.
    pub gpu: i32,
    /// The container's command (the supervisor in Batch mode).
    pub command: Vec<String>,
    /// Environment variables (secret references, not values), the function's first.
    pub environment: IndexMap<String, String>,
    /// The job's role ARN.
    pub job_role: R,
    /// The execution role ARN (Fargate), or `""`.
    pub execution_role: R,
    /// Nodes of a multi-node job, or none.
    pub multi_node: Option<MultiNode>,
    /// The retry strategy (none read from a definition without one).
    #[serde(default)]
    pub retry: Retry,
    /// Seconds an attempt may run, or none.
    #[serde(default)]
    pub timeout: Option<i32>,
    /// Active revisions wanted (1).
    pub active_revisions: i32,
    /// Tags, ownership tags included.
    pub tags: BTreeMap<String, String>,
    /// Read only: the numbers of the active revisions (each one is deregistered when the
    /// definition is replaced or deleted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revisions: Vec<i64>,
}

/// What Lambda does with a function's failed asynchronous invocations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvokeConfigAttrs {
    /// The function.
    pub function: String,
    /// Times a failed invocation runs again.
    pub maximum_retry_attempts: i32,
    /// Seconds an event may wait.
    pub maximum_event_age: i32,
    /// Where the record of an event Lambda gave up on goes (an ARN), or `""`.
    #[serde(default)]
    pub on_failure: String,
}

impl Fields for InvokeConfigAttrs {}
impl Attrs for InvokeConfigAttrs {}

/// A job definition's retry strategy as Batch holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    /// Attempts in all (0: the definition has no strategy, which Batch runs once).
    pub attempts: i32,
    /// The rules, in order.
    #[serde(default)]
    pub evaluate_on_exit: Vec<RetryRule>,
}

/// One rule of a [`Retry`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryRule {
    /// Pattern of the job's status reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_status_reason: Option<String>,
    /// Pattern of the container's reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_reason: Option<String>,
    /// Pattern of the container's exit code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_exit_code: Option<String>,
    /// `RETRY` or `EXIT`.
    pub action: String,
}

/// A multi-node job's nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultiNode {
    /// How many.
    pub nodes: i32,
    /// The main node's index.
    pub main_node: i32,
}

/// A function's REST API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiAttrs {
    /// Its name.
    pub name: String,
    /// Its description.
    pub description: String,
    /// `REGIONAL`.
    pub endpoint_type: String,
    /// Media types passed as bytes.
    pub binary_media_types: Vec<String>,
    /// The stage deployed.
    pub stage: String,
    /// The function it proxies to.
    pub function: String,
    /// `none`, `iam` or `api_key`.
    pub auth: String,
    /// The usage plan's limits, or none.
    pub throttle: Option<Throttle>,
    /// Its invoke URL: a reference to the API itself until it exists, which apply does not
    /// resolve (the URL is the API's own output).
    pub url: Value,
    /// Tags, ownership tags included.
    pub tags: BTreeMap<String, String>,
}

/// An API key's usage plan limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Throttle {
    /// Requests per second.
    pub rate_limit: u32,
    /// Requests at once.
    pub burst_limit: u32,
}

/// A function's log group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogGroupAttrs {
    /// `/aws/lambda/<function>`.
    pub name: String,
    /// Days kept (none: forever, as a group scar did not make may be).
    pub retention_days: Option<i32>,
    /// Tags, ownership tags included (not read back: see [`LogGroupAttrs::UNREAD`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

/// A bucket the stack's functions read or write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BucketAttrs {
    /// Its name.
    pub name: String,
    /// Its region.
    pub region: String,
    /// Tags, ownership tags included.
    pub tags: BTreeMap<String, String>,
    /// Read only, for a bucket of the stack no manifest names any more: whether it holds no
    /// objects (a bucket with objects is kept, not pruned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty: Option<bool>,
}

/// The stack's image repository.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepositoryAttrs {
    /// Its name.
    pub name: String,
    /// Tags, ownership tags included.
    pub tags: BTreeMap<String, String>,
}

/// The stack's managed role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleAttrs {
    /// Its name.
    pub name: String,
    /// Its trust policy (a JSON document).
    pub assume_role_policy: Value,
    /// Its inline policy (a JSON document; the account may be [`super::ACCOUNT`] until sent).
    pub policy: Value,
    /// The permissions boundary's ARN (`""`: none).
    pub permissions_boundary: String,
    /// Tags, ownership tags included.
    pub tags: BTreeMap<String, String>,
}

/// A Lambda function, as the model writes it (`R` = [`Value`]: the image and the role may be
/// references to resources not made yet) and as the writer and the live reader see it (`R` =
/// `String`: references resolved).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionAttrs<R = String> {
    /// The image URI.
    pub image: R,
    /// A prebuilt image's script (an assembled image holds its own); the live function's
    /// always (`""`: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    /// Memory in MB.
    pub memory: i32,
    /// Timeout in seconds.
    pub timeout: i32,
    /// `/tmp` in MB.
    pub ephemeral_storage: i32,
    /// The instruction set.
    pub architecture: Architecture,
    /// The execution role's ARN.
    pub role: R,
    /// The description.
    pub description: String,
    /// Environment variables (secret references, not values), in the order the model sets
    /// them: the manifest's, sorted, then the supervisor's.
    pub environment: IndexMap<String, String>,
    /// The VPC, if any.
    pub vpc: Option<Vpc>,
    /// EFS mounts.
    pub file_systems: Vec<FileSystem>,
    /// Tags, ownership tags included.
    pub tags: BTreeMap<String, String>,
    /// Reserved concurrency; none in a desired function: not managed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved_concurrency: Option<i32>,
    /// `Zip` for a live function deployed as a zip (SCAR 4.x's default); none for an image
    /// function, which every desired function is. A zip function is replaced: Lambda cannot
    /// change a package type in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_type: Option<String>,
}

impl<R> FunctionAttrs<R> {
    /// Lambda's name for the architecture.
    #[must_use]
    pub fn lambda_architecture(&self) -> &'static str {
        match self.architecture {
            Architecture::X86_64 => "x86_64",
            Architecture::Arm64 => "arm64",
        }
    }
}

/// The resource-policy statement that lets S3 invoke a function.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermissionAttrs<R = String> {
    /// The function's name.
    pub function: String,
    /// The statement's id.
    pub statement_id: String,
    /// Who may invoke (`s3.amazonaws.com`, `apigateway.amazonaws.com`).
    pub principal: String,
    /// The bucket's or the API's ARN (the API's: a reference until it exists).
    pub source_arn: R,
    /// The caller's account (a reference to the credentials' until known).
    pub source_account: R,
}

/// One entry of a bucket's notification configuration: objects that invoke a function.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerAttrs<R = String> {
    /// The bucket.
    pub bucket: String,
    /// The entry's id.
    pub id: String,
    /// The function's ARN (a reference in the model's), for an entry that invokes it.
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    pub function_arn: Option<R>,
    /// The queue's ARN (a reference in the model's), for an entry that sends to a queued
    /// input's queue.
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    pub queue_arn: Option<R>,
    /// The S3 events.
    pub events: Vec<String>,
    /// Keys start with this (`""`: any).
    pub prefix: String,
    /// Keys end with this (`""`: any).
    pub suffix: String,
}

fn none<R>() -> Option<R> {
    None
}

/// An SQS queue: a queued input's, or its dead-letter queue. References are top-level
/// fields (as apply resolves them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueAttrs<R = String> {
    /// The queue's name.
    pub name: String,
    /// Seconds a received message stays hidden.
    pub visibility_timeout: i32,
    /// Seconds a message is kept.
    pub retention: i32,
    /// The dead-letter queue's ARN (a reference in the model's); none for a dead-letter
    /// queue.
    pub dead_letter_arn: Option<R>,
    /// Receives before a message moves to the dead-letter queue.
    pub max_receives: Option<i32>,
    /// The one statement of the queue's policy scar writes: S3 may send the events of this
    /// bucket (none: the queue has no policy; `""`: a policy of another shape).
    pub sender_bucket: Option<String>,
    /// The sending bucket's account (a reference in the model's when the stack names none).
    pub sender_account: Option<R>,
    /// Tags, ownership tags included.
    pub tags: BTreeMap<String, String>,
}

/// A Lambda event source mapping: the function reads a queued input's queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingAttrs<R = String> {
    /// The function.
    pub function: String,
    /// The queue's ARN (a reference in the model's).
    pub queue_arn: R,
    /// Messages per invocation.
    pub batch_size: i32,
    /// Invocations at once (none: as Lambda scales).
    pub maximum_concurrency: Option<i32>,
    /// The function answers which messages failed (`batchItemFailures`).
    pub report_batch_item_failures: bool,
    /// Lambda reads the queue (false while the function is paused).
    pub enabled: bool,
    /// Read only: the mapping's id, which updates and deletes name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uuid: String,
}

impl<R> Fields for QueueAttrs<R> {}
impl<R> Fields for MappingAttrs<R> {
    // A mapping cannot move to another queue or function.
    const REPLACE: &'static [&'static str] = &["function", "queue_arn"];
}
impl<R: DeserializeOwned> Attrs for QueueAttrs<R> {}
impl<R: DeserializeOwned> Attrs for MappingAttrs<R> {}

/// A function's VPC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vpc {
    /// Subnet ids, sorted.
    pub subnets: Vec<String>,
    /// Security group ids, sorted.
    pub security_groups: Vec<String>,
}

impl Vpc {
    /// A VPC from ids in any order (AWS answers in its own): compared as sets.
    #[must_use]
    pub fn sorted(mut subnets: Vec<String>, mut security_groups: Vec<String>) -> Vpc {
        subnets.sort();
        security_groups.sort();
        Vpc {
            subnets,
            security_groups,
        }
    }
}

/// An EFS mount.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSystem {
    /// The access point's ARN.
    pub arn: String,
    /// Where it is mounted (`/mnt/...`).
    pub mount_path: String,
}

/// The function image scar assembles: the base, the supervisor and the function's script
/// and configuration, pushed to the stack's repository.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageAttrs {
    /// The repository's name.
    pub repository: String,
    /// The base image reference, as the manifest names it.
    pub base: String,
    /// The digest the base resolved to when planned: a reference to the image itself until
    /// refresh resolves it (apply then resolves the base again).
    pub base_digest: Value,
    /// `amd64` or `arm64` (OCI's names).
    pub architecture: String,
    /// The supervisor's version.
    pub supervisor: String,
    /// The script's digest.
    pub script_sha256: String,
    /// The configuration's digest.
    pub config_sha256: String,
    /// The script (`/opt/scar/script.sh`).
    pub script: String,
    /// The function's configuration (`/opt/scar/function.json`).
    pub config: Value,
}

impl ImageAttrs {
    /// The build these attributes stand for, pushed to `target`; the base pinned to the
    /// digest planned, when refresh resolved one.
    ///
    /// # Errors
    /// When the base is not a valid reference, or there is no supervisor for the architecture.
    pub fn spec(
        &self,
        target: crate::image::reference::ImageRef,
    ) -> Result<crate::image::build::Spec, String> {
        let planned = self
            .base_digest
            .as_str()
            .filter(|d| d.starts_with("sha256:"));
        crate::image::build::Spec::new(
            &self.base,
            planned,
            &self.architecture,
            &self.config,
            &self.script,
            target,
        )
    }
}

/// Partial views of what refresh read (a step's `before`) and of what a step carries: the
/// fields a delete, an in-place update or an ownership check needs, and nothing else. Other
/// fields are allowed: the whole resource is its kind's view's, not these.
pub mod id {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::Attrs;

    /// A resource known by its name (log groups, Batch resources).
    #[derive(Debug, Clone, Deserialize)]
    pub struct Named {
        /// Its name.
        pub name: String,
    }

    /// The tags a resource carries (none when it carries none, or they are not read).
    #[derive(Debug, Clone, Default, Deserialize)]
    pub struct Tagged {
        /// Tags, ownership tags included.
        #[serde(default)]
        pub tags: BTreeMap<String, String>,
    }

    /// A function's environment variables as read (none when it has none).
    #[derive(Debug, Clone, Default, Deserialize)]
    pub struct Configured {
        /// Its variables.
        #[serde(default)]
        pub environment: BTreeMap<String, String>,
    }

    /// A resource-policy statement on a function.
    #[derive(Debug, Clone, Deserialize)]
    pub struct Statement {
        /// The function's name.
        pub function: String,
        /// The statement's id.
        pub statement_id: String,
    }

    /// An entry of a bucket's notification configuration.
    #[derive(Debug, Clone, Deserialize)]
    pub struct Trigger {
        /// The bucket.
        pub bucket: String,
        /// The entry's id.
        pub id: String,
        /// The function it invokes (`""`: it sends to a queue).
        #[serde(default)]
        pub function_arn: String,
    }

    /// A REST API as read: its id and what an update compares against.
    #[derive(Debug, Clone, Deserialize)]
    pub struct Api {
        /// Its id.
        pub id: String,
        /// The stage deployed (`""`: none).
        #[serde(default)]
        pub stage: String,
        /// `none`, `iam` or `api_key`.
        #[serde(default)]
        pub auth: String,
        /// Media types passed as bytes.
        #[serde(default)]
        pub binary_media_types: Vec<String>,
    }

    /// A job definition's active revisions.
    #[derive(Debug, Clone, Deserialize)]
    pub struct Revisions {
        /// Its name.
        pub name: String,
        /// Active revision numbers.
        #[serde(default)]
        pub revisions: Vec<i64>,
    }

    /// A function image as its function's tags record it.
    #[derive(Debug, Clone, Deserialize)]
    pub struct Recorded {
        /// The repository's name.
        pub repository: String,
        /// `registry/repository@sha256:...`: the image the function was given.
        pub image: String,
        /// The script's digest.
        pub script_sha256: String,
        /// The configuration's digest.
        pub config_sha256: String,
    }

    /// The script in an image's configuration (`/opt/scar/function.json`), as any version of
    /// scar wrote it.
    #[derive(Debug, Clone, Deserialize)]
    pub struct Scripted {
        /// The script's text (`""`: the image's own command).
        #[serde(default)]
        pub script: String,
    }

    /// Where a resource lives, and whether it is empty (a bucket as read).
    #[derive(Debug, Clone, Default, Deserialize)]
    pub struct Located {
        /// Its region (`""`: not known).
        #[serde(default)]
        pub region: String,
        /// Whether it holds nothing (a bucket; not known: not empty).
        #[serde(default)]
        pub empty: Option<bool>,
    }

    /// How a function's code is packaged (`Zip`: SCAR 4.x's; not read: an image).
    #[derive(Debug, Clone, Default, Deserialize)]
    pub struct Packaged {
        /// `Image` or `Zip`.
        #[serde(default)]
        pub package_type: Option<String>,
    }

    impl Packaged {
        /// True for a zip function.
        #[must_use]
        pub fn is_zip(&self) -> bool {
            self.package_type.as_deref() == Some("Zip")
        }
    }

    impl Attrs for Named {}
    impl Attrs for Located {}
    impl Attrs for Packaged {}
    impl Attrs for Tagged {}
    impl Attrs for Configured {}
    impl Attrs for Statement {}
    impl Attrs for Trigger {}
    impl Attrs for Api {}
    impl Attrs for Revisions {}
    impl Attrs for Recorded {}
    impl Attrs for Scripted {}
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The field names serde knows for `T`, asked through a deserializer that only listens.
    fn names<T: for<'de> Deserialize<'de>>() -> Vec<&'static str> {
        use serde::de::value::Error;
        struct Listen(Vec<&'static str>);
        impl<'de> serde::Deserializer<'de> for &mut Listen {
            type Error = Error;
            fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Error> {
                Err(serde::de::Error::custom("only listening"))
            }
            fn deserialize_struct<V: serde::de::Visitor<'de>>(
                self,
                _: &'static str,
                fields: &'static [&'static str],
                _: V,
            ) -> Result<V::Value, Error> {
                self.0 = fields.to_vec();
                Err(serde::de::Error::custom("only listening"))
            }
            serde::forward_to_deserialize_any! {
                bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
                byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
                identifier ignored_any
            }
        }
        let mut listen = Listen(Vec::new());
        let _ = T::deserialize(&mut listen);
        listen.0
    }

    #[test]
    fn every_replace_and_unread_name_is_a_field_of_its_kind() {
        for kind in ResourceKind::ALL {
            let known = match kind {
                ResourceKind::Function => names::<FunctionAttrs>(),
                ResourceKind::LogGroup => names::<LogGroupAttrs>(),
                ResourceKind::Bucket => names::<BucketAttrs>(),
                ResourceKind::IamRole => names::<RoleAttrs>(),
                ResourceKind::LambdaPermission => names::<PermissionAttrs>(),
                ResourceKind::S3Trigger => names::<TriggerAttrs>(),
                ResourceKind::HttpApi => names::<ApiAttrs>(),
                ResourceKind::BatchComputeEnvironment => names::<ComputeEnvAttrs>(),
                ResourceKind::BatchJobQueue => names::<JobQueueAttrs>(),
                ResourceKind::BatchJobDefinition => names::<JobDefinitionAttrs>(),
                ResourceKind::ImageRepository => names::<RepositoryAttrs>(),
                ResourceKind::FunctionImage => names::<ImageAttrs>(),
                ResourceKind::InvokeConfig => names::<InvokeConfigAttrs>(),
                ResourceKind::Queue => names::<QueueAttrs>(),
                ResourceKind::EventSourceMapping => names::<MappingAttrs>(),
            };
            assert!(!known.is_empty(), "{kind:?}: no fields heard");
            let (replace, unread) = fields(kind);
            for f in replace.iter().chain(unread) {
                assert!(
                    known.contains(f),
                    "{kind:?} lists `{f}`, which is none of {known:?}"
                );
            }
        }
        // The listener hears what it should.
        assert!(names::<LogGroupAttrs>().contains(&"retention_days"));
    }

    /// `v` with every reference (`{"$ref": ...}`) to another resource replaced by a string,
    /// as apply resolves them; a reference to `own` (the resource itself) stays, as in apply.
    fn resolved(v: &Value, own: &str) -> Value {
        match v {
            Value::Object(m) if m.get("$ref").is_some_and(|r| r.as_str() != Some(own)) => {
                Value::String("resolved".into())
            }
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| (k.clone(), resolved(v, own)))
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.iter().map(|v| resolved(v, own)).collect()),
            v => v.clone(),
        }
    }

    #[test]
    fn every_resource_of_a_typed_kind_the_model_builds_reads_as_its_view() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests");
        let mut seen = std::collections::BTreeSet::new();
        let mut keys: BTreeMap<ResourceKind, std::collections::BTreeSet<String>> = BTreeMap::new();
        for stack in std::fs::read_dir(&root).expect("manifests/") {
            let dir = stack.expect("entry").path();
            let (set, diags) = crate::manifest::check::validate_dir(&dir);
            assert!(!diags.has_errors(), "{}", dir.display());
            let graph = crate::model::build(&set).expect("a graph");
            for r in &graph.resources {
                let own = r.address.to_string();
                let Value::Object(attrs) = resolved(&Value::Object(r.attrs.clone()), &own) else {
                    unreachable!("an object stays an object");
                };
                let read = match r.address.kind {
                    ResourceKind::Function => <FunctionAttrs>::from_attrs(&r.address, &attrs)
                        .map(|f| assert!(f.memory >= 128 && f.timeout >= 1, "{}", r.address)),
                    ResourceKind::LambdaPermission => {
                        <PermissionAttrs>::from_attrs(&r.address, &attrs).map(|_| ())
                    }
                    ResourceKind::S3Trigger => {
                        <TriggerAttrs>::from_attrs(&r.address, &attrs).map(|t| {
                            assert!(!t.events.is_empty(), "{}", r.address);
                            assert!(
                                t.function_arn.is_some() != t.queue_arn.is_some(),
                                "{}",
                                r.address
                            );
                        })
                    }
                    ResourceKind::LogGroup => LogGroupAttrs::from_attrs(&r.address, &attrs)
                        .map(|g| assert!(g.retention_days.is_some_and(|d| d > 0), "{}", r.address)),
                    ResourceKind::Bucket => BucketAttrs::from_attrs(&r.address, &attrs).map(|_| ()),
                    ResourceKind::BatchComputeEnvironment => {
                        ComputeEnvAttrs::from_attrs(&r.address, &attrs)
                            .map(|c| assert!(c.max_vcpus > 0, "{}", r.address))
                    }
                    ResourceKind::BatchJobQueue => JobQueueAttrs::from_attrs(&r.address, &attrs)
                        .map(|q| assert!(!q.compute_environments.is_empty(), "{}", r.address)),
                    ResourceKind::BatchJobDefinition => {
                        <JobDefinitionAttrs>::from_attrs(&r.address, &attrs)
                            .map(|d| assert!(d.memory > 0, "{}", r.address))
                    }
                    ResourceKind::HttpApi => ApiAttrs::from_attrs(&r.address, &attrs)
                        .map(|a| assert!(!a.stage.is_empty(), "{}", r.address)),
                    ResourceKind::IamRole => RoleAttrs::from_attrs(&r.address, &attrs)
                        .map(|role| assert!(role.policy.is_object(), "{}", r.address)),
                    ResourceKind::FunctionImage => ImageAttrs::from_attrs(&r.address, &attrs)
                        .map(|i| assert!(i.script_sha256.starts_with("sha256:"), "{}", r.address)),
                    ResourceKind::ImageRepository => {
                        RepositoryAttrs::from_attrs(&r.address, &attrs).map(|_| ())
                    }
                    ResourceKind::InvokeConfig => InvokeConfigAttrs::from_attrs(&r.address, &attrs)
                        .map(|c| {
                            assert!((0..=2).contains(&c.maximum_retry_attempts), "{}", r.address)
                        }),
                    ResourceKind::Queue => <QueueAttrs>::from_attrs(&r.address, &attrs)
                        .map(|q| assert!(q.retention >= 60, "{}", r.address)),
                    ResourceKind::EventSourceMapping => {
                        <MappingAttrs>::from_attrs(&r.address, &attrs)
                            .map(|m| assert!(m.batch_size == 1, "{}", r.address))
                    }
                };
                read.unwrap_or_else(|e| panic!("{e}"));
                seen.insert(r.address.kind);
                keys.entry(r.address.kind)
                    .or_default()
                    .extend(r.attrs.keys().cloned());
            }
        }
        // A field renamed in its struct but not in its kind's lists would never force a
        // replacement, or would show as a change on every plan.
        for (kind, keys) in &keys {
            let (replace, unread) = fields(*kind);
            for f in replace.iter().chain(unread) {
                assert!(keys.contains(*f), "{kind:?} lists `{f}`, which it has not");
            }
        }
        assert_eq!(
            seen.len(),
            ResourceKind::ALL.len(),
            "the examples hold every typed kind: {seen:?}"
        );
    }

    #[test]
    fn a_renamed_or_mistyped_field_is_an_error_naming_it() {
        let address = Address::new(ResourceKind::Function, "f");
        let good = serde_json::json!({
            "image": "i", "memory": 256, "timeout": 60, "ephemeral_storage": 512,
            "architecture": "x86_64", "role": "r", "description": "", "environment": {},
            "vpc": null, "file_systems": [], "tags": {}
        });
        let Value::Object(good) = good else {
            unreachable!()
        };
        assert!(<FunctionAttrs>::from_attrs(&address, &good).is_ok());
        let mut renamed = good.clone();
        let memory = renamed.remove("memory").expect("memory");
        renamed.insert("memory_mb".into(), memory);
        let e = <FunctionAttrs>::from_attrs(&address, &renamed)
            .expect_err("renamed")
            .to_string();
        assert!(e.contains("function/f") && e.contains("memory"), "{e}");
        let mut mistyped = good;
        mistyped.insert("memory".into(), Value::String("256".into()));
        let e = <FunctionAttrs>::from_attrs(&address, &mistyped)
            .expect_err("mistyped")
            .to_string();
        assert!(e.contains("invalid type"), "{e}");
    }

    #[test]
    fn a_step_whose_before_lacks_what_names_it_is_an_error_not_an_empty_name() {
        let address = Address::new(ResourceKind::BatchJobQueue, "q");
        let e = id::Named::from_attrs(&address, &Map::new())
            .expect_err("no name")
            .to_string();
        assert!(
            e.contains("batch_job_queue/q") && e.contains("`name`"),
            "{e}"
        );
        let mut read = Map::new();
        read.insert("name".into(), Value::String("q".into()));
        read.insert("priority".into(), Value::from(1));
        assert_eq!(
            id::Named::from_attrs(&address, &read).expect("named").name,
            "q"
        );
    }
}
