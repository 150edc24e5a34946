//! A function's inputs as resources: for an S3 input, the permission that lets the bucket
//! invoke the function and the bucket's notification entry.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::grants::{Grants, Need};
use super::{Address, DesiredResource, Reference, ResourceKind, attrs, short_hash};
use crate::manifest::names;
use crate::manifest::resolve::DEFAULT_EVENTS;
use crate::manifest::types::{FunctionSpec, InputSpec, S3Input};

/// The notification entry Id of one input of one function.
#[must_use]
pub fn trigger_id(stack: &str, function: &str, input: &S3Input) -> String {
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

fn events(input: &S3Input) -> Vec<String> {
    input
        .events
        .clone()
        .unwrap_or_else(|| DEFAULT_EVENTS.iter().map(|s| (*s).to_owned()).collect())
}

/// For each S3 input: the permission that lets the bucket invoke the function (one per
/// bucket) and the notification entry.
pub(super) fn trigger_resources(
    stack_name: &str,
    fname: &str,
    inputs: &[InputSpec],
    function: &Address,
    source_account: &Value,
) -> Vec<DesiredResource> {
    let mut out = Vec::new();
    let mut permitted: BTreeMap<&str, Address> = BTreeMap::new();
    for input in inputs.iter().filter_map(InputSpec::s3) {
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

/// What a function's inputs and outputs need of the managed role: reading under each S3
/// input, writing under each output to the stack's own S3.
pub(super) fn grant(fs: &FunctionSpec, g: &mut Grants) {
    for i in fs.input.iter().filter_map(InputSpec::s3) {
        g.allow(
            Need::ReadInputs,
            format!(
                "arn:aws:s3:::{}/{}*",
                i.bucket,
                i.prefix.as_deref().unwrap_or("")
            ),
        );
    }
    for o in fs.output.iter().filter(|o| o.provider.is_none()) {
        g.allow(
            Need::WriteOutputs,
            format!(
                "arn:aws:s3:::{}/{}*",
                o.bucket,
                o.prefix.as_deref().unwrap_or("")
            ),
        );
    }
}
