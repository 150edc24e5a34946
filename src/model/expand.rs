//! Expansion: each manifest into the typed resources it asks for.

use std::collections::BTreeMap;

use indexmap::IndexMap;
use serde_json::{Value, json};

use super::attrs::{self, FunctionAttrs};
use super::tags::{self, ownership_tags};
use super::{
    Address, DesiredGraph, DesiredResource, Reference, ResourceKind, batch, failures, http, role,
    triggers,
};
use crate::manifest::contract;
use crate::manifest::load::ManifestSet;
use crate::manifest::names;
use crate::manifest::resolve;
use crate::manifest::types::{EnvValue, FunctionManifest, InputSpec};

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
        out.push(role::managed_role(&name, set, &address, spec));
        Some(address)
    } else {
        None
    };
    let mut buckets: BTreeMap<String, ()> = BTreeMap::new();
    let stack_failures = failures::stack_bucket(&name, spec);
    let mut failures_bucket = None;
    for f in &set.functions {
        let fm = &f.value;
        for i in fm.spec.input.iter().filter_map(InputSpec::s3) {
            buckets.insert(i.bucket.clone(), ());
        }
        let eff = resolve::effective(Some(spec), &fm.spec);
        let failure = failures::policy(&name, spec, &fm.spec, &eff);
        if let Some(b) = failure.as_ref().and_then(|p| p.bucket.clone()) {
            if b == stack_failures {
                failures_bucket = Some(b.clone());
            }
            buckets.insert(b, ());
        }
        for o in fm.spec.output.iter().filter(|o| o.provider.is_none()) {
            buckets.insert(o.bucket.clone(), ());
        }
        let script = set.script_of(f).to_owned();
        out.extend(function_resources(
            &name,
            spec,
            fm,
            &eff,
            failure.as_ref(),
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
        failures_bucket,
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
    let records = super::failures::records_bucket(stack_name, stack, &fm.spec);
    let config = contract::config(
        stack_name,
        Some(stack),
        fm,
        script.to_owned(),
        records.as_deref(),
    );
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

/// The resources of function `fm`, whose effective settings are `eff` and failure policy
/// `on_failure`.
fn function_resources(
    stack_name: &str,
    stack: &crate::manifest::types::StackSpec,
    fm: &FunctionManifest,
    eff: &resolve::Effective,
    on_failure: Option<&failures::Policy>,
    script: &str,
    role_ref: Option<&Address>,
) -> Vec<DesiredResource> {
    let fname = &fm.metadata.name;
    let spec = &fm.spec;
    let user_tags = tags::merged(stack, &spec.tags);
    let function = Address::new(ResourceKind::Function, fname.clone());
    let log_group = Address::new(ResourceKind::LogGroup, fname.clone());
    let mut out = Vec::new();

    let (mut env, sensitive) = function_environment(stack_name, stack, fm, eff);
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
        eff,
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
        (spec.has_s3_input() || spec.http.is_some()).to_string(),
    );
    if eff.deletion_protection {
        function_tags.insert(tags::DELETION_PROTECTION.into(), "true".into());
    }
    // Only asynchronous invocations (an S3 input's) are retried and kept by Lambda.
    if on_failure.is_some() {
        function_tags.insert(tags::INVOKE_CONFIG.into(), "true".into());
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
    if let Some(p) = on_failure {
        out.push(failures::invoke_config(
            fname,
            p,
            &function,
            role_ref.filter(|_| spec.role.is_none()),
        ));
    }
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

    out.extend(triggers::trigger_resources(
        &spec.input,
        &super::queues::QueueInput {
            stack: stack_name,
            function_name: fname,
            function: &function,
            timeout: eff.timeout,
            source_account: &source_account,
            tags: &user_tags,
            role: role_ref.filter(|_| spec.role.is_none()),
        },
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
        let records = super::failures::records_bucket(stack_name, stack, spec);
        let config = contract::config(
            stack_name,
            Some(stack),
            fm,
            String::new(),
            records.as_deref(),
        );
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
