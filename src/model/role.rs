//! The stack's managed role: Lambda's trust policy and an inline policy derived from what the
//! functions read, write, log, decrypt and submit.

use serde_json::json;

use super::grants::{ACCOUNT, Grants, Need};
use super::tags::{self, ownership_tags};
use super::{Address, DesiredResource, attrs, batch, failures, triggers};
use crate::manifest::contract;
use crate::manifest::load::ManifestSet;
use crate::manifest::names;
use crate::manifest::resolve;
use crate::manifest::types::StackSpec;

/// The managed role: Lambda's trust policy and an inline policy derived from what the
/// functions read, write and log.
pub(super) fn managed_role(
    stack: &str,
    set: &ManifestSet,
    address: &Address,
    spec: &StackSpec,
) -> DesiredResource {
    let grants = grants(stack, set, spec);
    let principals = if !grants.has(Need::SubmitBatchJobs) {
        json!("lambda.amazonaws.com")
    } else {
        json!(["ecs-tasks.amazonaws.com", "lambda.amazonaws.com"])
    };
    let attrs = attrs::to_attrs(&attrs::RoleAttrs {
        name: address.name.clone(),
        assume_role_policy: json!({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": principals}, "Action": "sts:AssumeRole"}]}),
        policy: json!({"Version": "2012-10-17", "Statement": grants.statements()}),
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

/// [`Grants`] of the stack's functions that bring no role of their own.
fn grants(stack: &str, set: &ManifestSet, spec: &StackSpec) -> Grants {
    let mut g = Grants::default();
    for f in &set.functions {
        let fs = &f.value.spec;
        if fs.role.is_some() {
            // It brings its own role: the managed role grants it nothing.
            continue;
        }
        let name = &f.value.metadata.name;
        let eff = resolve::effective(Some(spec), fs);
        g.allow(
            Need::Logs,
            format!(
                "arn:aws:logs:{}:{ACCOUNT}:log-group:{}:*",
                spec.region,
                names::derive(stack, name).log_group
            ),
        );
        triggers::grant(fs, &mut g);
        super::queues::grant(stack, &spec.region, name, fs, &mut g);
        if let Some(p) = failures::policy(stack, spec, fs, &eff) {
            let delegates = eff.execution != crate::manifest::types::Execution::Lambda;
            failures::grant(&p, delegates.then_some(name.as_str()), &mut g);
        }
        batch::grant(stack, name, spec, &eff, &mut g);
        for r in contract::secret_refs(&eff, fs, spec) {
            match r {
                scar_contract::SecretRef::Ssm(p) => g.allow(
                    Need::ReadParameters,
                    format!(
                        "arn:aws:ssm:{}:{ACCOUNT}:parameter/{}",
                        spec.region,
                        p.trim_start_matches('/')
                    ),
                ),
                scar_contract::SecretRef::SecretsManager { id, .. } => g.allow(
                    Need::ReadSecrets,
                    if id.starts_with("arn:") {
                        id
                    } else {
                        // AWS appends `-` and six random characters to a secret's name:
                        // `-*` would also match every secret whose name starts with it.
                        format!(
                            "arn:aws:secretsmanager:{}:{ACCOUNT}:secret:{id}-??????",
                            spec.region
                        )
                    },
                ),
            }
        }
        if eff.vpc.is_some() {
            g.allow(Need::VpcNetworking, "*".into());
        }
    }
    g
}
