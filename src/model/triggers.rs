//! A function's inputs as resources: for an S3 input, the permission that lets the bucket
//! invoke the function and the bucket's notification entry.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::grants::{Grants, Need};
use super::queues::QueueInput;
use super::{Address, DesiredResource, Reference, ResourceKind, attrs, short_hash};
use crate::manifest::names;
use crate::manifest::resolve::{input_events, input_rule};
use crate::manifest::types::{FunctionSpec, InputSpec, S3Input};

/// The notification entry Id of one input of one function.
#[must_use]
pub fn trigger_id(stack: &str, function: &str, input: &S3Input) -> String {
    format!(
        "{}{}",
        names::derive(stack, function).notification_id_prefix,
        short_hash(&input_rule(input))
    )
}

/// For each S3 input: the notification entry, and the permission that lets the bucket invoke
/// the function (one per bucket), or, for a queued input, its queue, dead-letter queue and
/// mapping (the entry then sends to the queue).
pub(super) fn trigger_resources(inputs: &[InputSpec], q: &QueueInput<'_>) -> Vec<DesiredResource> {
    let (stack_name, fname, function) = (q.stack, q.function_name, q.function);
    let mut out = Vec::new();
    let mut permitted: BTreeMap<&str, Address> = BTreeMap::new();
    for input in inputs.iter().filter_map(InputSpec::s3) {
        let bucket = Address::new(ResourceKind::Bucket, input.bucket.clone());
        let id = trigger_id(stack_name, fname, input);
        let address = Address::new(ResourceKind::S3Trigger, format!("{}:{id}", input.bucket));
        let mut trigger = attrs::TriggerAttrs::<Value> {
            bucket: input.bucket.clone(),
            id,
            function_arn: None,
            queue_arn: None,
            events: input_events(input),
            prefix: input.prefix.clone().unwrap_or_default(),
            suffix: input.suffix.clone().unwrap_or_default(),
        };
        let depends_on = if let Some(spec) = &input.queue {
            let queue = q.resources(input, spec, &mut out);
            trigger.queue_arn = Some(Reference::value(&queue, "arn"));
            vec![bucket, queue]
        } else {
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
                        source_account: q.source_account.clone(),
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
            trigger.function_arn = Some(Reference::value(function, "arn"));
            vec![bucket, permission, function.clone()]
        };
        out.push(DesiredResource {
            address,
            attrs: attrs::to_attrs(&trigger),
            sensitive: Vec::new(),
            depends_on,
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
