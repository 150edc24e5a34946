//! The desired resource graph: what a validated manifest set asks to exist in AWS.
//!
//! [`build`] expands each manifest into typed resources with addresses, attributes and
//! dependency edges. It is pure: no AWS call, no clock. Attributes are JSON values so that the
//! diff, the plan file and every renderer treat all kinds alike; the kind decides only which
//! fields force a replacement ([`replace_fields`]).

mod address;
pub mod attrs;
pub mod batch;
pub mod http;
pub mod live;
pub mod policy;

use std::collections::BTreeMap;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use self::attrs::FunctionAttrs;

pub use address::{Address, BadAddress, ResourceKind};

use crate::manifest::contract;
use crate::manifest::load::ManifestSet;
use crate::manifest::names;
use crate::manifest::resolve::{self, DEFAULT_EVENTS};
use crate::manifest::types::{EnvValue, FunctionManifest, InputSpec};

/// Tag keys scar writes on everything it creates.
pub mod tags {
    /// The stack that owns the resource.
    pub const STACK: &str = "scar:stack";
    /// Always `scar`.
    pub const MANAGED_BY: &str = "scar:managed-by";
    /// The resource's address in its stack.
    pub const ADDRESS: &str = "scar:address";
    /// On a global resource (the managed IAM role): the region of the stack that owns it. A
    /// stack of the same name in another region is another stack (its lock is another).
    pub const REGION: &str = "scar:region";
    /// On a function: `true` when it has S3 triggers or an HTTP endpoint (so its resource
    /// policy holds scar statements). A plan reads the policy (`GetPolicy`, 15 req/s) only of
    /// functions that have such statements now or had them at the last apply.
    pub const S3_INVOKE: &str = "scar:s3-invoke";
    /// On a function with `deletionProtection: true`: a plan that would delete or replace it
    /// is an error, whatever the manifests say now (the manifest may be gone).
    pub const DELETION_PROTECTION: &str = "scar:deletion-protection";
    /// On a function with an assembled image: the supervisor version inside it.
    pub const SUPERVISOR: &str = "scar:supervisor";
    /// On such a function: the base image as the manifest names it.
    pub const IMAGE_BASE: &str = "scar:image-base";
    /// The digest that base resolved to when the image was built.
    pub const IMAGE_BASE_DIGEST: &str = "scar:image-base-digest";
    /// The image's architecture (`amd64`, `arm64`).
    pub const IMAGE_ARCHITECTURE: &str = "scar:image-architecture";
    /// The digest of the script inside.
    pub const IMAGE_SCRIPT: &str = "scar:image-script";
    /// The digest of the configuration inside.
    pub const IMAGE_CONFIG: &str = "scar:image-config";
    /// The repository the image is in.
    pub const IMAGE_REPOSITORY: &str = "scar:image-repository";

    /// The image scar deployed (`<repository uri>@<digest>`): what the function must run. A
    /// function whose live image is another (an out-of-band `UpdateFunctionCode`) has drifted.
    pub const IMAGE_DEPLOYED: &str = "scar:image";

    /// The tags that record a function's assembled image, with the `function_image`
    /// attribute each one holds.
    pub const IMAGE_RECORD: [(&str, &str); 7] = [
        (IMAGE_REPOSITORY, "repository"),
        (IMAGE_BASE, "base"),
        (IMAGE_BASE_DIGEST, "base_digest"),
        (IMAGE_ARCHITECTURE, "architecture"),
        (SUPERVISOR, "supervisor"),
        (IMAGE_SCRIPT, "script_sha256"),
        (IMAGE_CONFIG, "config_sha256"),
    ];
}

/// A value in an attribute that is only known once another resource exists, such as the ARN of
/// a role scar is about to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reference {
    /// The resource referred to.
    pub address: Address,
    /// Its attribute (`arn`).
    pub attribute: String,
}

impl Reference {
    /// The JSON form of a reference to `attribute` of `address`.
    #[must_use]
    pub fn value(address: &Address, attribute: &str) -> Value {
        Reference {
            address: address.clone(),
            attribute: attribute.into(),
        }
        .to_value()
    }

    /// The JSON form kept inside attributes until the plan resolves it.
    #[must_use]
    pub fn to_value(&self) -> Value {
        json!(RefForm {
            address: self.address.to_string(),
            attribute: self.attribute.clone(),
        })
    }

    /// Reads the JSON form back.
    #[must_use]
    pub fn from_value(v: &Value) -> Option<Reference> {
        let form = RefForm::deserialize(v).ok()?;
        Some(Reference {
            address: form.address.parse().ok()?,
            attribute: form.attribute,
        })
    }
}

/// A reference's JSON form: `{"$ref": "role/x", "attribute": "arn"}`.
#[derive(Serialize, Deserialize)]
struct RefForm {
    #[serde(rename = "$ref")]
    address: String,
    attribute: String,
}

/// One resource the manifests ask for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesiredResource {
    /// Its address.
    pub address: Address,
    /// Attributes as scar compares them with the live resource.
    pub attrs: Map<String, Value>,
    /// Top-level attribute keys (or `key.subkey` paths) whose values are never shown.
    pub sensitive: Vec<String>,
    /// Resources that must exist before this one.
    pub depends_on: Vec<Address>,
}

/// Everything one stack asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesiredGraph {
    /// The stack name (the ownership scope).
    pub stack: String,
    /// The region.
    pub region: String,
    /// The account guard, if set.
    pub account_id: Option<String>,
    /// True when owned buckets that no manifest uses may be deleted once empty.
    pub delete_empty_buckets: bool,
    /// Resources, sorted by address.
    pub resources: Vec<DesiredResource>,
    /// Attributes whose live values a plan keeps (`ignoreChanges`), by resource.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ignore_changes: BTreeMap<Address, Vec<String>>,
}

impl DesiredGraph {
    /// What to read live state for: the graph itself, or for a destroy, the graph without its
    /// images (a destroy deletes what it finds; it needs no base image resolved).
    #[must_use]
    pub fn to_read(&self, destroy: bool) -> std::borrow::Cow<'_, DesiredGraph> {
        if !destroy {
            return std::borrow::Cow::Borrowed(self);
        }
        let mut g = self.clone();
        g.resources
            .retain(|r| r.address.kind != ResourceKind::FunctionImage);
        std::borrow::Cow::Owned(g)
    }

    /// The resource at `address`.
    #[must_use]
    pub fn get(&self, address: &Address) -> Option<&DesiredResource> {
        self.resources
            .binary_search_by(|r| r.address.cmp(address))
            .ok()
            .map(|i| &self.resources[i])
    }
}

/// Attribute keys that scar writes but does not read back on every plan (to stay within two
/// calls per function); a live resource without them is not a change. Each kind's list is
/// beside its attributes ([`attrs::Fields`]).
#[must_use]
pub fn unread_fields(kind: ResourceKind) -> &'static [&'static str] {
    attrs::fields(kind).1
}

/// Attribute keys whose change AWS cannot apply in place ([`attrs::Fields`]).
#[must_use]
pub fn replace_fields(kind: ResourceKind) -> &'static [&'static str] {
    attrs::fields(kind).0
}

/// The tags scar writes on a resource of `stack` at `address`, user tags first.
#[must_use]
pub fn ownership_tags(
    stack: &str,
    address: &Address,
    user: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut t = user.clone();
    t.insert(tags::STACK.into(), stack.into());
    t.insert(tags::MANAGED_BY.into(), "scar".into());
    t.insert(tags::ADDRESS.into(), address.to_string());
    t
}

/// A short, stable hash (FNV-1a, 32 bits, hex) used to name notification entries after their
/// rule, so reordering inputs in a manifest changes nothing in AWS.
#[must_use]
pub fn short_hash(s: &str) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in s.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("{h:08x}")
}

/// The notification entry Id of one input of one function.
#[must_use]
pub fn trigger_id(stack: &str, function: &str, input: &InputSpec) -> String {
    let rule = format!(
        "{}|{}|{}|{}",
        input.bucket,
        input.prefix.as_deref().unwrap_or(""),
        input.suffix.as_deref().unwrap_or(""),
        events(input).join(",")
    );
    format!(
        "{}{}",
        names::derive(stack, function).notification_id_prefix,
        short_hash(&rule)
    )
}

fn events(input: &InputSpec) -> Vec<String> {
    input
        .events
        .clone()
        .unwrap_or_else(|| DEFAULT_EVENTS.iter().map(|s| (*s).to_owned()).collect())
}

/// The environment variable that carries a prebuilt image's script to the supervisor (base64).
pub const SCRIPT_ENV: &str = scar_contract::env::SCRIPT;

/// Builds the desired graph of a validated set. Reads the functions' script files (local files
/// only, no network).
///
/// # Caveats
/// Call it only on a set that validated without errors: it assumes one Stack and resolvable
/// references, and skips what it cannot expand rather than reporting it again.
#[must_use]
pub fn build(set: &ManifestSet) -> Option<DesiredGraph> {
    let stack_doc = set.stack()?;
    let stack = &stack_doc.value;
    let name = stack.metadata.name.clone();
    let spec = &stack.spec;
    let mut out: Vec<DesiredResource> = Vec::new();
    let role_ref = if spec.role.managed == Some(true) {
        let address = Address::new(ResourceKind::IamRole, names::managed_role(&name));
        out.push(managed_role(&name, set, &address, spec));
        Some(address)
    } else {
        None
    };
    let mut buckets: BTreeMap<String, ()> = BTreeMap::new();
    for f in &set.functions {
        let fm = &f.value;
        for i in &fm.spec.input {
            buckets.insert(i.bucket.clone(), ());
        }
        for o in fm.spec.output.iter().filter(|o| o.provider.is_none()) {
            buckets.insert(o.bucket.clone(), ());
        }
        let script = set.script_of(f).to_owned();
        out.extend(function_resources(
            &name,
            spec,
            fm,
            &script,
            role_ref.as_ref(),
        ));
    }
    if set
        .functions
        .iter()
        .any(|f| f.value.spec.prebuilt != Some(true))
    {
        out.push(image_repository(&name, spec));
    }
    for bucket in buckets.keys() {
        let address = Address::new(ResourceKind::Bucket, bucket.clone());
        let attrs = attrs::to_attrs(&attrs::BucketAttrs {
            name: bucket.clone(),
            region: spec.region.clone(),
            tags: ownership_tags(&name, &address, &spec.tags),
            empty: None,
        });
        out.push(DesiredResource {
            address,
            attrs,
            sensitive: Vec::new(),
            depends_on: Vec::new(),
        });
    }
    out.sort_by(|a, b| a.address.cmp(&b.address));
    Some(DesiredGraph {
        stack: name,
        region: spec.region.clone(),
        account_id: spec.account_id.clone(),
        delete_empty_buckets: spec.buckets.deletion_policy
            == crate::manifest::types::DeletionPolicy::DeleteIfEmpty,
        resources: out,
        ignore_changes: set
            .functions
            .iter()
            .filter(|f| !f.value.spec.ignore_changes.is_empty())
            .map(|f| {
                let mut fields: Vec<String> = f
                    .value
                    .spec
                    .ignore_changes
                    .iter()
                    .map(|i| i.attribute().to_owned())
                    .collect();
                fields.sort();
                fields.dedup();
                (
                    Address::new(ResourceKind::Function, f.value.metadata.name.clone()),
                    fields,
                )
            })
            .collect(),
    })
}

fn merged_tags(
    stack: &crate::manifest::types::StackSpec,
    own: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut t = stack.tags.clone();
    t.extend(own.clone());
    t
}

/// The image scar assembles for function `fm`: what decides its content (the base and its
/// digest, the architecture, the supervisor version, the script, the configuration) is compared;
/// the script and configuration themselves travel in the plan for apply to build from.
#[must_use]
pub fn function_image(
    stack_name: &str,
    stack: &crate::manifest::types::StackSpec,
    fm: &FunctionManifest,
    script: &str,
    address: &Address,
) -> DesiredResource {
    let config = contract::config(stack_name, Some(stack), fm, script.to_owned());
    let config = serde_json::to_value(&config).unwrap_or(Value::Null);
    let eff = resolve::effective(Some(stack), &fm.spec);
    let arch = eff.architecture.image_arch();
    let repository = Address::new(
        ResourceKind::ImageRepository,
        names::derive(stack_name, &fm.metadata.name).ecr_repository,
    );
    let attrs = attrs::to_attrs(&attrs::ImageAttrs {
        repository: repository.name.clone(),
        base: fm.spec.image.clone(),
        // Refresh resolves it; a plan made before the image exists shows it known after apply.
        base_digest: Reference::value(address, "base_digest"),
        architecture: arch.oci().to_owned(),
        supervisor: scar_contract::VERSION.to_owned(),
        script_sha256: crate::image::digest(script.as_bytes()),
        config_sha256: crate::image::digest(config.to_string().as_bytes()),
        script: script.to_owned(),
        config,
    });
    DesiredResource {
        address: address.clone(),
        attrs,
        sensitive: Vec::new(),
        depends_on: vec![repository],
    }
}

/// The stack's image repository, when any function has an assembled image.
fn image_repository(
    stack_name: &str,
    stack: &crate::manifest::types::StackSpec,
) -> DesiredResource {
    let name = names::derive(stack_name, "x").ecr_repository;
    let address = Address::new(ResourceKind::ImageRepository, name.clone());
    let attrs = attrs::to_attrs(&attrs::RepositoryAttrs {
        tags: ownership_tags(stack_name, &address, &stack.tags),
        name,
    });
    DesiredResource {
        address,
        attrs,
        sensitive: Vec::new(),
        depends_on: Vec::new(),
    }
}

fn function_resources(
    stack_name: &str,
    stack: &crate::manifest::types::StackSpec,
    fm: &FunctionManifest,
    script: &str,
    role_ref: Option<&Address>,
) -> Vec<DesiredResource> {
    let fname = &fm.metadata.name;
    let spec = &fm.spec;
    let eff = resolve::effective(Some(stack), spec);
    let user_tags = merged_tags(stack, &spec.tags);
    let function = Address::new(ResourceKind::Function, fname.clone());
    let log_group = Address::new(ResourceKind::LogGroup, fname.clone());
    let mut out = Vec::new();

    let (mut env, sensitive) = function_environment(stack_name, stack, fm, &eff);
    let role = match (&spec.role, &stack.role.arn, role_ref) {
        (Some(arn), _, _) | (None, Some(arn), _) => json!(arn),
        (None, None, Some(r)) => Reference::value(r, "arn"),
        (None, None, None) => Value::Null,
    };
    let assembled = spec.prebuilt != Some(true);
    let image_address = Address::new(ResourceKind::FunctionImage, fname.clone());
    let image = if assembled {
        Reference::value(&image_address, "uri")
    } else {
        json!(spec.image)
    };
    let delegation = batch::delegation(&batch::BatchInput {
        stack: stack_name,
        function: fname,
        eff: &eff,
        image: &image,
        script,
        role: &role,
        user_tags: &user_tags,
        function_env: &env,
    });
    if let Some(d) = &delegation {
        for (k, v) in &d.function_env {
            env.insert((*k).to_owned(), v.clone());
        }
    }
    let source_account = stack
        .account_id
        .as_ref()
        .map_or_else(|| Reference::value(&function, "account_id"), |a| json!(a));
    let mut function_tags = ownership_tags(stack_name, &function, &user_tags);
    function_tags.insert(
        tags::S3_INVOKE.into(),
        (!spec.input.is_empty() || spec.http.is_some()).to_string(),
    );
    if eff.deletion_protection {
        function_tags.insert(tags::DELETION_PROTECTION.into(), "true".into());
    }
    let attrs = attrs::to_attrs(&FunctionAttrs::<Value> {
        image,
        // A prebuilt image gets its script through the environment; an assembled one has it
        // inside (`function_image`).
        script: (!assembled).then(|| script.to_owned()),
        memory: int(eff.memory),
        timeout: int(eff.timeout),
        ephemeral_storage: int(eff.ephemeral_storage),
        architecture: eff.architecture,
        role,
        description: spec.description.clone().unwrap_or_default(),
        environment: env,
        vpc: eff
            .vpc
            .as_ref()
            .map(|v| attrs::Vpc::sorted(v.subnets.clone(), v.security_groups.clone())),
        file_systems: spec
            .file_systems
            .iter()
            .map(|f| attrs::FileSystem {
                arn: f.arn.clone(),
                mount_path: f.mount_path.clone(),
            })
            .collect(),
        tags: function_tags,
        reserved_concurrency: spec.reserved_concurrency.map(int),
        package_type: None,
    });
    let mut depends_on = vec![log_group.clone()];
    if assembled {
        depends_on.push(image_address.clone());
        out.push(function_image(
            stack_name,
            stack,
            fm,
            script,
            &image_address,
        ));
    }
    if let Some(r) = role_ref.filter(|_| spec.role.is_none()) {
        depends_on.push(r.clone());
    }
    if let Some(d) = delegation {
        depends_on.extend(d.function_depends_on);
        out.extend(d.resources.into_iter().map(|mut r| {
            if let Some(role) = role_ref.filter(|_| spec.role.is_none()) {
                r.depends_on.push(role.clone());
            }
            if assembled && r.address.kind == ResourceKind::BatchJobDefinition {
                // Its jobs run the function's assembled image.
                r.depends_on.push(image_address.clone());
            }
            r
        }));
    }
    out.push(DesiredResource {
        address: function.clone(),
        attrs,
        sensitive,
        depends_on,
    });
    if let Some(h) = &spec.http {
        out.extend(http::resources(
            stack_name,
            fname,
            h,
            source_account.clone(),
            &user_tags,
        ));
    }

    out.push(log_group_resource(
        stack_name,
        fname,
        log_group,
        eff.retention_days,
        &user_tags,
    ));

    out.extend(trigger_resources(
        stack_name,
        fname,
        &spec.input,
        &function,
        &source_account,
    ));
    out
}

/// A size or a duration the schema bounds far below `i32::MAX`, as AWS takes it.
pub(super) fn int(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

/// A function's environment variables (a secret as its reference, listed as sensitive), the
/// supervisor's, and a prebuilt image's configuration.
fn function_environment(
    stack_name: &str,
    stack: &crate::manifest::types::StackSpec,
    fm: &FunctionManifest,
    eff: &resolve::Effective,
) -> (IndexMap<String, String>, Vec<String>) {
    let (fname, spec) = (&fm.metadata.name, &fm.spec);
    let mut env = IndexMap::new();
    let mut sensitive = Vec::new();
    for (k, v) in &eff.environment {
        match v {
            EnvValue::Literal(s) => {
                env.insert(k.clone(), s.clone());
            }
            EnvValue::Secret(s) => {
                env.insert(k.clone(), s.secret_ref.to_reference());
                sensitive.push(format!("environment.{k}"));
            }
        }
    }
    for (k, v) in names::supervisor_env(stack_name, fname)
        .into_iter()
        .chain(contract::secrets_env(&eff.environment))
    {
        env.insert(k.to_owned(), v.to_string());
    }
    if spec.prebuilt == Some(true) {
        // No image of scar's holds the configuration: the environment does.
        let config = contract::config(stack_name, Some(stack), fm, String::new());
        for (k, v) in config.env() {
            env.insert(k.to_owned(), v.to_string());
        }
    }
    (env, sensitive)
}

/// A function's log group.
fn log_group_resource(
    stack_name: &str,
    fname: &str,
    log_group: Address,
    retention_days: u32,
    user_tags: &BTreeMap<String, String>,
) -> DesiredResource {
    let attrs = attrs::to_attrs(&attrs::LogGroupAttrs {
        name: names::derive(stack_name, fname).log_group,
        retention_days: Some(int(retention_days)),
        tags: ownership_tags(stack_name, &log_group, user_tags),
    });
    DesiredResource {
        address: log_group,
        attrs,
        sensitive: Vec::new(),
        depends_on: Vec::new(),
    }
}

/// For each S3 input: the permission that lets the bucket invoke the function (one per
/// bucket) and the notification entry.
fn trigger_resources(
    stack_name: &str,
    fname: &str,
    inputs: &[InputSpec],
    function: &Address,
    source_account: &Value,
) -> Vec<DesiredResource> {
    let mut out = Vec::new();
    let mut permitted: BTreeMap<&str, Address> = BTreeMap::new();
    for input in inputs {
        let bucket = Address::new(ResourceKind::Bucket, input.bucket.clone());
        let permission = permitted
            .entry(input.bucket.as_str())
            .or_insert_with(|| {
                let address = Address::new(
                    ResourceKind::LambdaPermission,
                    format!("{fname}/s3:{}", input.bucket),
                );
                let attrs = attrs::to_attrs(&attrs::PermissionAttrs::<Value> {
                    function: fname.to_owned(),
                    statement_id: format!("scar-{stack_name}-s3-{}", input.bucket),
                    principal: "s3.amazonaws.com".to_owned(),
                    source_arn: json!(format!("arn:aws:s3:::{}", input.bucket)),
                    source_account: source_account.clone(),
                });
                out.push(DesiredResource {
                    address: address.clone(),
                    attrs,
                    sensitive: Vec::new(),
                    depends_on: vec![function.clone(), bucket.clone()],
                });
                address
            })
            .clone();
        let id = trigger_id(stack_name, fname, input);
        let address = Address::new(ResourceKind::S3Trigger, format!("{}:{id}", input.bucket));
        let attrs = attrs::to_attrs(&attrs::TriggerAttrs::<Value> {
            bucket: input.bucket.clone(),
            id,
            function_arn: Reference::value(function, "arn"),
            events: events(input),
            prefix: input.prefix.clone().unwrap_or_default(),
            suffix: input.suffix.clone().unwrap_or_default(),
        });
        out.push(DesiredResource {
            address,
            attrs,
            sensitive: Vec::new(),
            depends_on: vec![bucket, permission, function.clone()],
        });
    }
    out
}

/// Stands for the account id in the managed role's policy: written as the credentials'
/// account by apply, and read back as this, so the plan compares like with like. Nothing in
/// the policy is granted in `*` accounts.
pub const ACCOUNT: &str = "<account>";

/// The managed role: Lambda's trust policy and an inline policy derived from what the
/// functions read, write and log.
fn managed_role(
    stack: &str,
    set: &ManifestSet,
    address: &Address,
    spec: &crate::manifest::types::StackSpec,
) -> DesiredResource {
    let needs = role_needs(stack, set, spec);
    let statements = role_statements(stack, spec, &needs);
    let principals = if needs.submit.is_empty() {
        json!("lambda.amazonaws.com")
    } else {
        json!(["ecs-tasks.amazonaws.com", "lambda.amazonaws.com"])
    };
    let attrs = attrs::to_attrs(&attrs::RoleAttrs {
        name: address.name.clone(),
        assume_role_policy: json!({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": principals}, "Action": "sts:AssumeRole"}]}),
        policy: json!({"Version": "2012-10-17", "Statement": statements}),
        permissions_boundary: spec.role.permissions_boundary.clone().unwrap_or_default(),
        tags: {
            // IAM is global: the region says which of two same-named stacks owns the role.
            let mut t = ownership_tags(stack, address, &spec.tags);
            t.insert(tags::REGION.into(), spec.region.clone());
            t
        },
    });
    DesiredResource {
        address: address.clone(),
        attrs,
        sensitive: Vec::new(),
        depends_on: Vec::new(),
    }
}

/// What the functions that run with the managed role read, write, log, decrypt and submit.
#[derive(Debug, Default)]
struct RoleNeeds {
    read: Vec<String>,
    write: Vec<String>,
    logs: Vec<String>,
    ssm: Vec<String>,
    secrets: Vec<String>,
    submit: Vec<String>,
    vpc: bool,
    fargate: bool,
}

/// [`RoleNeeds`] of the stack's functions that bring no role of their own, sorted.
fn role_needs(
    stack: &str,
    set: &ManifestSet,
    spec: &crate::manifest::types::StackSpec,
) -> RoleNeeds {
    let mut read: Vec<String> = Vec::new();
    let mut write: Vec<String> = Vec::new();
    let mut logs: Vec<String> = Vec::new();
    let mut ssm: Vec<String> = Vec::new();
    let mut secrets: Vec<String> = Vec::new();
    let mut vpc = false;
    let mut submit: Vec<String> = Vec::new();
    let mut fargate = false;
    for f in &set.functions {
        let fs = &f.value.spec;
        if fs.role.is_some() {
            // It brings its own role: the managed role grants it nothing.
            continue;
        }
        let eff = resolve::effective(Some(spec), fs);
        if eff.execution.delegates() {
            let base = names::derive(stack, &f.value.metadata.name).batch;
            submit.push(format!(
                "arn:aws:batch:{}:{ACCOUNT}:job-queue/{base}",
                spec.region
            ));
            submit.push(format!(
                "arn:aws:batch:{}:{ACCOUNT}:job-definition/{base}:*",
                spec.region
            ));
            fargate |= eff
                .batch
                .as_ref()
                .and_then(|b| b.compute.as_ref())
                .and_then(|c| c.kind)
                .is_some_and(batch::is_fargate);
        }
        for i in &fs.input {
            read.push(format!(
                "arn:aws:s3:::{}/{}*",
                i.bucket,
                i.prefix.as_deref().unwrap_or("")
            ));
        }
        for o in fs.output.iter().filter(|o| o.provider.is_none()) {
            write.push(format!(
                "arn:aws:s3:::{}/{}*",
                o.bucket,
                o.prefix.as_deref().unwrap_or("")
            ));
        }
        logs.push(format!(
            "arn:aws:logs:{}:{ACCOUNT}:log-group:{}:*",
            spec.region,
            names::derive(stack, &f.value.metadata.name).log_group
        ));
        for r in contract::secret_refs(&eff, fs, spec) {
            match r {
                scar_contract::SecretRef::Ssm(p) => ssm.push(format!(
                    "arn:aws:ssm:{}:{ACCOUNT}:parameter/{}",
                    spec.region,
                    p.trim_start_matches('/')
                )),
                scar_contract::SecretRef::SecretsManager { id, .. } => {
                    secrets.push(if id.starts_with("arn:") {
                        id
                    } else {
                        // AWS appends `-` and six random characters to a secret's name:
                        // `-*` would also match every secret whose name starts with it.
                        format!(
                            "arn:aws:secretsmanager:{}:{ACCOUNT}:secret:{id}-??????",
                            spec.region
                        )
                    });
                }
            }
        }
        vpc |= eff.vpc.is_some();
    }
    if !submit.is_empty() {
        // Batch jobs run with the same role and log to Batch's own group.
        logs.push(format!(
            "arn:aws:logs:{}:{ACCOUNT}:log-group:/aws/batch/job:*",
            spec.region
        ));
    }
    for v in [
        &mut read,
        &mut write,
        &mut logs,
        &mut ssm,
        &mut secrets,
        &mut submit,
    ] {
        v.sort();
        v.dedup();
    }
    RoleNeeds {
        read,
        write,
        logs,
        ssm,
        secrets,
        submit,
        vpc,
        fargate,
    }
}

/// The managed role's inline policy statements for `needs`.
fn role_statements(
    stack: &str,
    spec: &crate::manifest::types::StackSpec,
    needs: &RoleNeeds,
) -> Vec<Value> {
    let RoleNeeds {
        read,
        write,
        logs,
        ssm,
        secrets,
        submit,
        vpc,
        fargate,
    } = needs;
    let mut statements = vec![json!({
        "Sid": "Logs", "Effect": "Allow",
        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": logs,
    })];
    if !read.is_empty() {
        statements.push(json!({"Sid": "ReadInputs", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": read}));
    }
    if !write.is_empty() {
        // Multipart uploads (large outputs) need the abort when a part fails.
        statements.push(json!({"Sid": "WriteOutputs", "Effect": "Allow", "Action": ["s3:PutObject", "s3:AbortMultipartUpload"], "Resource": write}));
    }
    if !ssm.is_empty() {
        statements.push(json!({"Sid": "ReadParameters", "Effect": "Allow", "Action": ["ssm:GetParameter"], "Resource": ssm}));
    }
    if !secrets.is_empty() {
        statements.push(json!({"Sid": "ReadSecrets", "Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"], "Resource": secrets}));
    }
    if !submit.is_empty() {
        statements.push(json!({"Sid": "SubmitBatchJobs", "Effect": "Allow", "Action": ["batch:SubmitJob"], "Resource": submit}));
    }
    if *fargate {
        // Fargate pulls the image and ships logs with the job's execution role. Only the
        // token is account-wide (AWS allows no resource there); pulls are from the stack's
        // own repository.
        statements.push(json!({"Sid": "EcrToken", "Effect": "Allow", "Action": [
            "ecr:GetAuthorizationToken"], "Resource": "*"}));
        statements.push(json!({"Sid": "PullImages", "Effect": "Allow", "Action": [
        "ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"],
        "Resource": format!(
            "arn:aws:ecr:{}:{ACCOUNT}:repository/{}",
            spec.region,
            names::derive(stack, "x").ecr_repository
        )}));
    }
    if *vpc {
        statements.push(json!({"Sid": "VpcNetworking", "Effect": "Allow", "Action": [
            "ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DeleteNetworkInterface",
            "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"], "Resource": "*"}));
    }
    statements
}
