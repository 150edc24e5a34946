//! The manifest kinds as Rust types: the single source of truth for `schemas/*.json`.
//!
//! Field names are camelCase as in Kubernetes. Every struct denies unknown fields. Defaults that
//! depend on the Stack (`spec.defaults`) are resolved in [`crate::manifest::resolve`], not here,
//! so these types say exactly what a user wrote.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The only `apiVersion` this release reads.
pub const API_VERSION: &str = "scar/v1alpha1";

/// `apiVersion` of every scar manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ApiVersion {
    /// The first, still-alpha version of the manifest format.
    #[serde(rename = "scar/v1alpha1")]
    V1Alpha1,
}

/// Name and labels of a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// The object's name. For a Function it is also the Lambda function name.
    #[schemars(length(min = 1, max = 64))]
    pub name: String,
    /// Free-form labels; scar copies them nowhere and uses them for nothing but selection.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

macro_rules! kind_enum {
    ($name:ident, $variant:ident) => {
        #[doc = concat!("The `kind` of a ", stringify!($variant), " manifest.")]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
        pub enum $name {
            #[doc = concat!("`", stringify!($variant), "`")]
            $variant,
        }
    };
}
kind_enum!(StackKind, Stack);
kind_enum!(FunctionKind, Function);
kind_enum!(WorkflowKind, Workflow);

/// A Stack: the ownership scope, region, account guard, role and defaults of one directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(title = "scar Stack")]
pub struct StackManifest {
    /// Always `scar/v1alpha1`.
    pub api_version: ApiVersion,
    /// Always `Stack`.
    pub kind: StackKind,
    /// `name` is the stack name: the `scar:stack` tag on everything scar creates.
    pub metadata: Metadata,
    /// The stack's settings.
    pub spec: StackSpec,
}

/// Settings shared by every function of a stack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StackSpec {
    /// AWS region of every resource, such as `us-east-1`.
    #[schemars(regex(pattern = r"^[a-z]{2}(-[a-z]+)+-[0-9]+$"))]
    pub region: String,
    /// The 12-digit AWS account this stack belongs to; scar refuses to touch any other.
    #[schemars(regex(pattern = r"^[0-9]{12}$"))]
    pub account_id: Option<String>,
    /// The Lambda execution role: an existing role ARN, or `managed: true`.
    pub role: RoleSpec,
    /// Defaults for every Function of the stack; a Function's own field wins.
    #[serde(default)]
    pub defaults: FunctionDefaults,
    /// Tags added to every resource scar creates (`scar:*` and `aws:*` keys are reserved).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// What happens to buckets scar created when they leave the manifests.
    #[serde(default)]
    pub buckets: BucketPolicy,
    /// Storage providers other than the stack's own S3 account, for function outputs.
    #[serde(default)]
    pub storage_providers: StorageProviders,
    /// Where failed inputs are recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failures: Option<FailuresSpec>,
}

/// The execution role of the stack's functions. Set exactly one of `arn` and `managed`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RoleSpec {
    /// An existing IAM role ARN that scar uses as is and never modifies.
    #[schemars(regex(pattern = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}$"))]
    pub arn: Option<String>,
    /// `true`: scar creates and owns a least-privilege role derived from the functions.
    pub managed: Option<bool>,
    /// A permissions boundary ARN attached to the managed role.
    #[schemars(regex(pattern = r"^arn:aws[a-z-]*:iam::[0-9]{12}:policy/.+$"))]
    pub permissions_boundary: Option<String>,
}

/// What scar does with the buckets it created.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BucketPolicy {
    /// `Retain` (default) never deletes a bucket; `DeleteIfEmpty` deletes an owned bucket
    /// that no manifest uses any more, and only when it holds no object.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

/// Bucket deletion policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DeletionPolicy {
    /// Never delete (default): data loss is worse than an orphan.
    #[default]
    Retain,
    /// Delete an owned, unused, empty bucket.
    DeleteIfEmpty,
}

/// Defaults for every Function of a stack.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FunctionDefaults {
    /// Memory in MB (128-10240). Built-in default 512.
    #[schemars(range(min = 128, max = 10240))]
    pub memory: Option<u32>,
    /// Timeout in seconds (1-900). Built-in default 300.
    #[schemars(range(min = 1, max = 900))]
    pub timeout: Option<u32>,
    /// Ephemeral storage (`/tmp`) in MB (512-10240). Built-in default 512.
    #[schemars(range(min = 512, max = 10240))]
    pub ephemeral_storage: Option<u32>,
    /// Instruction set. Built-in default `x86_64`.
    pub architecture: Option<Architecture>,
    /// Seconds kept back before the timeout to upload partial results. Built-in default 10.
    #[schemars(range(min = 0, max = 899))]
    pub timeout_threshold: Option<u32>,
    /// Execution mode. Built-in default `lambda`.
    pub execution: Option<Execution>,
    /// Log retention and level.
    pub logs: Option<LogsSpec>,
    /// VPC attachment.
    pub vpc: Option<VpcSpec>,
    /// Environment variables merged under each function's own.
    #[serde(default)]
    pub environment: BTreeMap<String, EnvValue>,
    /// Batch settings merged under each function's own (useful for shared networking).
    pub batch: Option<BatchSpec>,
    /// Deletion protection for every function that does not say otherwise.
    pub deletion_protection: Option<bool>,
    /// The failure policy of every function that does not set its own, merged field by field.
    pub on_failure: Option<OnFailureSpec>,
}

/// What Lambda does with an event whose asynchronous invocation (an S3 input's) fails.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OnFailureSpec {
    /// Times a failed invocation runs again (0-2; Lambda's default 2). Each attempt runs the
    /// whole script, and uploads what it wrote.
    #[schemars(range(max = 2))]
    pub retry_attempts: Option<u32>,
    /// Seconds an event may wait to run, throttled or between attempts, before Lambda drops
    /// it (60-21600; Lambda's default 21600, six hours).
    #[schemars(range(min = 60, max = 21600))]
    pub max_event_age: Option<u32>,
    /// Where Lambda writes the record of an event it gave up on: `default` (the stack's
    /// failures bucket, `spec.failures.bucket`), `none`, `s3://BUCKET`, or an SQS queue's ARN.
    #[schemars(regex(
        pattern = r"^(default|none|s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]|arn:aws[a-z-]*:sqs:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,80})$"
    ))]
    pub destination: Option<String>,
}

/// Where failed inputs are recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FailuresSpec {
    /// The bucket the stack keeps its failure records in (created and owned by the stack).
    /// Default: `scar-<stack>-failures-<8 hex digits of the stack, region and account>`.
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"))]
    pub bucket: Option<String>,
}

/// Storage providers besides the stack's own S3, referenced by outputs as `<type>.<id>`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StorageProviders {
    /// S3 in another account or with other credentials.
    #[serde(default)]
    pub s3: BTreeMap<String, S3Provider>,
    /// MinIO or any S3-compatible endpoint.
    #[serde(default)]
    pub minio: BTreeMap<String, MinioProvider>,
    /// WebDAV servers (dCache and the like).
    #[serde(default)]
    pub webdav: BTreeMap<String, WebdavProvider>,
    /// Onedata spaces: accepted from SCAR files, refused by `scar validate` (the supervisor
    /// does not write to Onedata; use its WebDAV or S3 interface).
    #[serde(default)]
    pub onedata: BTreeMap<String, OnedataProvider>,
}

/// A WebDAV server, written to with basic authentication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WebdavProvider {
    /// The server: `host[:port][/path]` (spoken to over `https://`, as SCAR does), or a full
    /// `https://` URL; `http://` only for a loopback address.
    #[schemars(length(min = 1))]
    pub hostname: String,
    /// The user name.
    #[schemars(length(min = 1))]
    pub login: String,
    /// The password, as a secret reference.
    pub password: SecretRef,
}

/// An S3 provider with its own credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct S3Provider {
    /// Region of the provider's buckets.
    pub region: Option<String>,
    /// Access key id, as a secret reference.
    pub access_key: SecretRef,
    /// Secret access key, as a secret reference.
    pub secret_key: SecretRef,
}

/// A MinIO (S3-compatible) provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MinioProvider {
    /// Endpoint URL, such as `https://minio.example.org:9000`.
    #[schemars(regex(pattern = r"^https?://"))]
    pub endpoint: String,
    /// Verify the endpoint's TLS certificate (default true).
    pub verify: Option<bool>,
    /// Region name the endpoint expects.
    pub region: Option<String>,
    /// Access key, as a secret reference.
    pub access_key: SecretRef,
    /// Secret key, as a secret reference.
    pub secret_key: SecretRef,
}

/// A Onedata provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OnedataProvider {
    /// The Oneprovider host name.
    pub oneprovider_host: String,
    /// Access token, as a secret reference.
    pub token: SecretRef,
    /// Space name.
    pub space: String,
}

/// A reference to a secret kept in AWS; the value itself never appears in a manifest, plan or
/// log. Set exactly one of `ssm` and `secretsManager`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecretRef {
    /// An SSM Parameter Store parameter name (SecureString), such as `/team/db/password`.
    #[schemars(regex(pattern = r"^/?[a-zA-Z0-9_.\-/]+$"))]
    pub ssm: Option<String>,
    /// A Secrets Manager secret name or ARN.
    pub secrets_manager: Option<String>,
    /// With `secretsManager`: the JSON key inside the secret string.
    pub key: Option<String>,
}

impl SecretRef {
    /// The contract's form of the reference (`None` when it names no store, which validation
    /// refuses).
    #[must_use]
    pub fn to_contract(&self) -> Option<scar_contract::SecretRef> {
        match (&self.ssm, &self.secrets_manager) {
            (Some(p), _) => Some(scar_contract::SecretRef::Ssm(p.clone())),
            (None, Some(id)) => Some(scar_contract::SecretRef::SecretsManager {
                id: id.clone(),
                key: self.key.clone(),
            }),
            (None, None) => None,
        }
    }

    /// The reference as the supervisor receives it in its environment: `ssm:NAME` or
    /// `secretsmanager:NAME[#KEY]`. Never the secret itself.
    #[must_use]
    pub fn to_reference(&self) -> String {
        self.to_contract()
            .map(|r| r.to_string())
            .unwrap_or_default()
    }
}

/// An environment value: a literal string or a secret reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum EnvValue {
    /// A literal value. Quote numbers and booleans (`"8080"`, `"true"`).
    Literal(String),
    /// A secret resolved at run time by the supervisor.
    Secret(SecretEnv),
}

/// The secret form of an environment value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecretEnv {
    /// Where the secret lives.
    pub secret_ref: SecretRef,
}

/// Instruction set of a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Architecture {
    /// 64-bit x86.
    #[serde(rename = "x86_64")]
    X86_64,
    /// 64-bit ARM (Graviton).
    #[serde(rename = "arm64")]
    Arm64,
}

impl Architecture {
    /// The image architecture it stands for.
    #[must_use]
    pub fn image_arch(self) -> crate::image::Arch {
        match self {
            Architecture::X86_64 => crate::image::Arch::Amd64,
            Architecture::Arm64 => crate::image::Arch::Arm64,
        }
    }
}

/// Where a function's work runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Execution {
    /// Every event runs in Lambda.
    Lambda,
    /// Every event is delegated to AWS Batch.
    Batch,
    /// Runs in Lambda; work that does not fit is delegated to AWS Batch.
    LambdaBatch,
}

impl Execution {
    /// True when the function hands work to Batch.
    #[must_use]
    pub fn delegates(self) -> bool {
        matches!(self, Execution::Batch | Execution::LambdaBatch)
    }
}

/// A Function: a container image and a script, triggered by S3 or HTTP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(title = "scar Function")]
pub struct FunctionManifest {
    /// Always `scar/v1alpha1`.
    pub api_version: ApiVersion,
    /// Always `Function`.
    pub kind: FunctionKind,
    /// `name` is the Lambda function name (letters, digits, `-` and `_`, at most 64).
    pub metadata: Metadata,
    /// The function's settings.
    pub spec: FunctionSpec,
}

/// Settings of one function.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FunctionSpec {
    /// Container image, such as `grycap/imagemagick` or an ECR URI.
    #[schemars(length(min = 1, max = 512))]
    pub image: String,
    /// `true`: the image already runs scar-supervisor as its entrypoint and is used as is.
    /// Default `false`: scar assembles an image from `image` plus the supervisor and script.
    pub prebuilt: Option<bool>,
    /// Shell script run for every event, relative to this manifest file.
    pub script: Option<String>,
    /// Description of the Lambda function (at most 256 characters).
    #[schemars(length(max = 256))]
    pub description: Option<String>,
    /// Memory in MB (128-10240).
    #[schemars(range(min = 128, max = 10240))]
    pub memory: Option<u32>,
    /// Timeout in seconds (1-900).
    #[schemars(range(min = 1, max = 900))]
    pub timeout: Option<u32>,
    /// Ephemeral storage (`/tmp`) in MB (512-10240).
    #[schemars(range(min = 512, max = 10240))]
    pub ephemeral_storage: Option<u32>,
    /// Instruction set.
    pub architecture: Option<Architecture>,
    /// Seconds kept back before the timeout to upload partial results.
    #[schemars(range(min = 0, max = 899))]
    pub timeout_threshold: Option<u32>,
    /// An execution role ARN for this function alone, instead of the stack's role.
    #[schemars(regex(pattern = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}$"))]
    pub role: Option<String>,
    /// Environment of the script (and of the Lambda function).
    #[serde(default)]
    pub environment: BTreeMap<String, EnvValue>,
    /// S3 triggers: an object created under `bucket`/`prefix` ending in `suffix` runs the function.
    #[serde(default)]
    pub input: Vec<InputSpec>,
    /// Where the files the script writes to `$TMP_OUTPUT_DIR` are uploaded.
    #[serde(default)]
    pub output: Vec<OutputSpec>,
    /// `lambda` (default), `batch` or `lambda-batch`.
    pub execution: Option<Execution>,
    /// AWS Batch settings, required for `batch` and `lambda-batch`.
    pub batch: Option<BatchSpec>,
    /// An HTTP endpoint through API Gateway.
    pub http: Option<HttpSpec>,
    /// Log retention and supervisor log level.
    pub logs: Option<LogsSpec>,
    /// VPC attachment.
    pub vpc: Option<VpcSpec>,
    /// EFS file systems (at most 1; needs `vpc`).
    #[serde(default)]
    pub file_systems: Vec<FileSystemSpec>,
    /// Tags for this function's resources, on top of the stack's.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Concurrent executions reserved for the function (0 stops it from running). Unset:
    /// scar leaves whatever is set live alone.
    #[schemars(range(min = 0, max = 100000))]
    pub reserved_concurrency: Option<u32>,
    /// What Lambda does with an S3 event whose invocation fails: how many times it runs it
    /// again and how long it keeps it. Unset: Lambda's own (2 retries, 6 hours), left as they
    /// are live.
    pub on_failure: Option<OnFailureSpec>,
    /// When true, a plan that would delete or replace the function is an error, even once its
    /// manifest is gone (the protection is recorded on the function). Turn it off and apply
    /// before deleting.
    pub deletion_protection: Option<bool>,
    /// Fields another system owns: their live values are kept (the manifest's are used only
    /// to create the function).
    #[serde(default)]
    pub ignore_changes: Vec<IgnorableField>,
}

/// A function field `ignoreChanges` can name.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum IgnorableField {
    /// `memory`
    Memory,
    /// `timeout`
    Timeout,
    /// `ephemeralStorage`
    EphemeralStorage,
    /// `description`
    Description,
    /// `reservedConcurrency`
    ReservedConcurrency,
    /// `vpc`
    Vpc,
    /// `fileSystems`
    FileSystems,
}

impl IgnorableField {
    /// The function attribute it stands for.
    #[must_use]
    pub fn attribute(self) -> &'static str {
        match self {
            IgnorableField::Memory => "memory",
            IgnorableField::Timeout => "timeout",
            IgnorableField::EphemeralStorage => "ephemeral_storage",
            IgnorableField::Description => "description",
            IgnorableField::ReservedConcurrency => "reserved_concurrency",
            IgnorableField::Vpc => "vpc",
            IgnorableField::FileSystems => "file_systems",
        }
    }
}

/// One input of a function: a source whose events run it. A family of sources, of one member
/// today (S3 notifications); queued S3 and schedules join it as variants. The manifest's form
/// stays the same: a variant is told by its fields, and the schema of a family of one is its
/// member's. Code that needs an S3 location asks [`InputSpec::s3`], so a source without one
/// passes it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputSpec {
    /// An object created in a bucket runs the function.
    S3(S3Input),
}

impl FunctionSpec {
    /// True when an input of the function is an S3 notification that invokes it directly (not
    /// through a queue): the only way Lambda invokes it asynchronously (and so retries it, and
    /// records what it gives up on).
    #[must_use]
    pub fn has_s3_input(&self) -> bool {
        self.input
            .iter()
            .any(|i| i.s3().is_some_and(|s| s.queue.is_none()))
    }

    /// True when an input of the function is queued (`input[].queue`).
    #[must_use]
    pub fn has_queued_input(&self) -> bool {
        self.input
            .iter()
            .any(|i| i.s3().is_some_and(|s| s.queue.is_some()))
    }
}

impl InputSpec {
    /// The S3 notification this input is, if it is one.
    #[must_use]
    pub fn s3(&self) -> Option<&S3Input> {
        match self {
            InputSpec::S3(s) => Some(s),
        }
    }
}

impl Serialize for InputSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            InputSpec::S3(i) => i.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for InputSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        S3Input::deserialize(d).map(InputSpec::S3)
    }
}

impl JsonSchema for InputSpec {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "InputSpec".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        S3Input::json_schema(generator)
    }
}

/// One S3 trigger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct S3Input {
    /// Bucket name. Created (and then owned) if it does not exist.
    pub bucket: String,
    /// Key prefix, such as `input/`.
    pub prefix: Option<String>,
    /// Key suffix, such as `.jpg`.
    pub suffix: Option<String>,
    /// S3 event types. Default `[s3:ObjectCreated:*]`.
    pub events: Option<Vec<String>>,
    /// Put an SQS queue between the bucket and the function: S3 sends its events to the
    /// queue, Lambda reads them from it at most `maxConcurrency` at a time, and an event that
    /// fails `maxReceives` times moves to a dead-letter queue. For bursts bigger than the
    /// function's concurrency: nothing waits in Lambda's own queue, nothing ages out of it.
    pub queue: Option<QueueSpec>,
}

/// The queue of a queued input (`input[].queue`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct QueueSpec {
    /// Invocations of the function the queue runs at once (2-1000). Unset: as many as Lambda
    /// scales to, within the function's concurrency.
    #[schemars(range(min = 2, max = 1000))]
    pub max_concurrency: Option<u32>,
    /// Times an event is received (each a run of the script) before it moves to the
    /// dead-letter queue (1-1000, default 3).
    #[schemars(range(min = 1, max = 1000))]
    pub max_receives: Option<u32>,
    /// Seconds the queue and its dead-letter queue keep an event (60-1209600, default
    /// 1209600: 14 days).
    #[schemars(range(min = 60, max = 1_209_600))]
    pub retention: Option<u32>,
    /// Seconds an event received by a run is hidden from other runs (at least the function's
    /// timeout, at most 43200). Default: six times the function's timeout, as AWS advises, at
    /// most 43200.
    #[schemars(range(max = 43_200))]
    pub visibility_timeout: Option<u32>,
}

/// One output destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OutputSpec {
    /// Bucket name.
    pub bucket: String,
    /// Key prefix the files are uploaded under.
    pub prefix: Option<String>,
    /// A storage provider `<type>.<id>` from the stack's `storageProviders`; default: the
    /// stack's own S3 through the function's role.
    pub provider: Option<String>,
    /// Which output files go here; default all.
    pub filter: Option<OutputFilter>,
}

/// A filter on the names of output files.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OutputFilter {
    /// Upload only files whose name starts with one of these.
    #[serde(default)]
    pub prefix: Vec<String>,
    /// Upload only files whose name ends with one of these.
    #[serde(default)]
    pub suffix: Vec<String>,
}

/// AWS Batch settings of a function.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BatchSpec {
    /// vCPUs per job (default 1; Fargate: 0.25, 0.5, 1, 2, 4, 8 or 16).
    #[schemars(range(min = 0.25, max = 256))]
    pub vcpus: Option<f64>,
    /// Memory per job in MiB (default 2048).
    #[schemars(range(min = 4))]
    pub memory: Option<u32>,
    /// GPUs per job (default 0; not on Fargate).
    #[schemars(range(max = 16))]
    pub gpu: Option<u32>,
    /// Extra environment of the Batch job, on top of the function's.
    #[serde(default)]
    pub environment: BTreeMap<String, EnvValue>,
    /// Run each job on several nodes (EC2 only).
    pub multi_node: Option<MultiNodeSpec>,
    /// The compute environment scar creates for this function.
    pub compute: Option<ComputeSpec>,
    /// Which failed jobs Batch runs again. Default: up to 3 attempts when the job's host went
    /// away (a Spot reclaim, a lost agent), none when the script failed.
    pub retry: Option<BatchRetrySpec>,
    /// Seconds an attempt may run before Batch stops it (at least 60). Unset, a hung job runs,
    /// and bills, until someone stops it: `scar validate` warns.
    #[schemars(range(min = 60))]
    pub timeout: Option<u32>,
}

/// A Batch job's retry strategy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BatchRetrySpec {
    /// Attempts in all, the first one included (1-10).
    #[schemars(range(min = 1, max = 10))]
    pub attempts: u32,
    /// Rules for a failed attempt, the first that matches deciding (at most 5). An attempt
    /// that matches none is retried, as Batch does; with no rules every failure is.
    #[serde(default)]
    #[schemars(length(max = 5))]
    pub evaluate_on_exit: Vec<ExitRule>,
}

/// One rule of a retry strategy: what to do when an attempt ends as it says. Each pattern
/// matches the whole text, or its start when it ends with `*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExitRule {
    /// The job's status reason, such as `Host EC2*` (the instance went away).
    #[schemars(regex(pattern = r"^[A-Za-z0-9.: \t]{0,511}\*?$"))]
    pub on_status_reason: Option<String>,
    /// The container's reason, such as `AGENT`.
    #[schemars(regex(pattern = r"^[A-Za-z0-9.: \t]{0,511}\*?$"))]
    pub on_reason: Option<String>,
    /// The container's exit code, such as `137` or `1*`.
    #[schemars(regex(pattern = r"^[0-9]{0,511}\*?$"))]
    pub on_exit_code: Option<String>,
    /// `retry` or `exit`.
    pub action: ExitAction,
}

/// What a matching rule of a retry strategy does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExitAction {
    /// Run the job again, while attempts are left.
    Retry,
    /// Fail the job now.
    Exit,
}

impl ExitAction {
    /// The name Batch uses.
    #[must_use]
    pub fn batch(self) -> &'static str {
        match self {
            ExitAction::Retry => "RETRY",
            ExitAction::Exit => "EXIT",
        }
    }
}

/// Multi-node parallel jobs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MultiNodeSpec {
    /// Number of nodes (2-1000).
    #[schemars(range(min = 2, max = 1000))]
    pub nodes: u32,
    /// Index of the main node (default 0).
    pub main_node: Option<u32>,
}

/// A managed Batch compute environment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ComputeSpec {
    /// `EC2` (default), `SPOT`, `FARGATE` or `FARGATE_SPOT`.
    #[serde(rename = "type")]
    pub kind: Option<ComputeType>,
    /// Minimum vCPUs kept running (default 0).
    pub min_vcpus: Option<u32>,
    /// Maximum vCPUs (default 2).
    #[schemars(range(min = 1))]
    pub max_vcpus: Option<u32>,
    /// Desired vCPUs (default 0).
    pub desired_vcpus: Option<u32>,
    /// EC2 instance types (default `[optimal]`; not for Fargate).
    pub instance_types: Option<Vec<String>>,
    /// Subnet ids (required).
    pub subnets: Option<Vec<String>>,
    /// Security group ids (required).
    pub security_groups: Option<Vec<String>>,
    /// Instance profile ARN or name for EC2/SPOT (default `ecsInstanceRole`).
    pub instance_role: Option<String>,
    /// Batch service role ARN (default: the service-linked role).
    pub service_role: Option<String>,
    /// SPOT: the highest percentage of the On-Demand price to pay (default 100).
    #[schemars(range(min = 1, max = 100))]
    pub bid_percentage: Option<u32>,
}

impl ComputeType {
    /// The name AWS and manifests use.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ComputeType::Ec2 => "EC2",
            ComputeType::Spot => "SPOT",
            ComputeType::Fargate => "FARGATE",
            ComputeType::FargateSpot => "FARGATE_SPOT",
        }
    }
}

/// Batch compute types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ComputeType {
    /// On-Demand EC2 instances.
    Ec2,
    /// Spot EC2 instances.
    Spot,
    /// Fargate.
    Fargate,
    /// Fargate Spot.
    FargateSpot,
}

/// An HTTP endpoint through API Gateway (REST API, `{proxy+}` ANY, Lambda proxy integration).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpSpec {
    /// API name (default `scar-<stack>-<function>`).
    #[schemars(length(min = 1, max = 128))]
    pub name: Option<String>,
    /// Stage name (default `scar`).
    #[schemars(regex(pattern = r"^[a-zA-Z0-9_]{1,128}$"))]
    pub stage: Option<String>,
    /// Description of the API.
    pub description: Option<String>,
    /// Who may call the endpoint: `none` (anyone; the default), `iam` (requests signed with
    /// AWS credentials allowed `execute-api:Invoke`), `apiKey` (requests with an API key of
    /// the function's usage plan in `x-api-key`).
    pub auth: Option<HttpAuth>,
    /// With `auth: apiKey`: the usage plan's throttling (requests per second, and burst).
    pub throttle: Option<HttpThrottle>,
    /// Answer a failed request with the script's last stderr lines (default `false`: the
    /// caller gets the status and the request id only, the details go to the logs).
    pub expose_errors: Option<bool>,
}

/// Who may call an HTTP endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum HttpAuth {
    /// Anyone.
    None,
    /// Requests signed with AWS Signature Version 4.
    Iam,
    /// Requests carrying an API key of the function's usage plan.
    ApiKey,
}

/// A usage plan's throttling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpThrottle {
    /// Steady-state requests per second.
    #[schemars(range(min = 1))]
    pub rate_limit: u32,
    /// Requests allowed in a burst.
    #[schemars(range(min = 0))]
    pub burst_limit: u32,
}

/// Logging settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LogsSpec {
    /// Days CloudWatch keeps the log group's events (default 30). One of CloudWatch's values.
    pub retention_days: Option<u32>,
    /// Supervisor log level (default `INFO`).
    pub level: Option<LogLevel>,
}

/// Supervisor log levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum LogLevel {
    /// Only critical failures.
    Critical,
    /// Errors.
    Error,
    /// Warnings.
    Warning,
    /// Informational (default).
    Info,
    /// Everything.
    Debug,
}

/// A VPC attachment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VpcSpec {
    /// Subnet ids (`subnet-...`).
    #[schemars(length(min = 1, max = 16))]
    pub subnets: Vec<String>,
    /// Security group ids (`sg-...`).
    #[schemars(length(min = 1, max = 5))]
    pub security_groups: Vec<String>,
}

/// An EFS access point mounted into the function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FileSystemSpec {
    /// EFS access point ARN.
    #[schemars(regex(
        pattern = r"^arn:aws[a-z-]*:elasticfilesystem:[a-z0-9-]+:[0-9]{12}:access-point/fsap-[a-f0-9]{17}$"
    ))]
    pub arn: String,
    /// Mount path, under `/mnt/`.
    #[schemars(regex(pattern = r"^/mnt/[a-zA-Z0-9-_.]+$"))]
    pub mount_path: String,
}

/// A Workflow: a named pipeline over functions, checked against their inputs and outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(title = "scar Workflow")]
pub struct WorkflowManifest {
    /// Always `scar/v1alpha1`.
    pub api_version: ApiVersion,
    /// Always `Workflow`.
    pub kind: WorkflowKind,
    /// `name` names the pipeline.
    pub metadata: Metadata,
    /// Stages and edges.
    pub spec: WorkflowSpec,
}

/// Stages and the edges expected between them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorkflowSpec {
    /// Function names in pipeline order.
    #[schemars(length(min = 1))]
    pub stages: Vec<String>,
    /// Edges `from -> to`, each backed by an output of `from` that triggers an input of `to`.
    /// Default: each stage feeds the next.
    pub edges: Option<Vec<EdgeSpec>>,
}

/// One expected edge of a workflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EdgeSpec {
    /// Upstream function.
    pub from: String,
    /// Downstream function.
    pub to: String,
    /// The bucket the edge must go through, when it matters.
    pub bucket: Option<String>,
}

kind_enum!(OverlayKind, Overlay);

/// An Overlay: one environment of a stack, in the Kustomize way. It lives in a file named
/// `overlay.yaml` at the top of its directory; the other manifests there are partial
/// manifests merged into the base's documents of the same kind and name (a JSON merge patch:
/// mappings merge, anything else replaces, `null` removes), or whole new documents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(title = "scar Overlay")]
pub struct OverlayManifest {
    /// Always `scar/v1alpha1`.
    pub api_version: ApiVersion,
    /// Always `Overlay`.
    pub kind: OverlayKind,
    /// `name` names the environment (shown in messages).
    pub metadata: Metadata,
    /// The base and the names of this environment.
    pub spec: OverlaySpec,
}

/// What an Overlay builds on and how it renames.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OverlaySpec {
    /// The base: a stack directory (or another overlay's), relative to this file.
    #[schemars(length(min = 1))]
    pub base: String,
    /// Put before the name of the stack, every function and workflow, and every S3 bucket
    /// (those with no `provider`), so environments never share one.
    #[serde(default)]
    #[schemars(regex(pattern = r"^[a-z0-9-]*$"))]
    pub name_prefix: String,
    /// Put after those names.
    #[serde(default)]
    #[schemars(regex(pattern = r"^[a-z0-9-]*$"))]
    pub name_suffix: String,
    /// Buckets named outright in this environment (base name: this environment's name),
    /// instead of prefixed and suffixed: a bucket that already exists, or one shared.
    #[serde(default)]
    pub buckets: BTreeMap<String, String>,
}
