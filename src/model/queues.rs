//! Queued inputs (`input[].queue`): between a bucket and a function, an SQS queue S3 sends
//! the bucket's events to, its dead-letter queue, and the event source mapping by which Lambda
//! reads the queue and runs the function. Pure: names, settings and resources.

use std::collections::BTreeMap;

use serde_json::Value;

use super::grants::{ACCOUNT, Grants, Need};
use super::{Address, DesiredResource, Reference, ResourceKind, attrs, int, short_hash};
use crate::manifest::types::{FunctionSpec, InputSpec, QueueSpec, S3Input};

/// Receives before an event moves to the dead-letter queue, when the manifest says none.
pub const DEFAULT_MAX_RECEIVES: u32 = 3;
/// Seconds the queues keep an event, when the manifest says none: 14 days, SQS's most.
pub const DEFAULT_RETENTION: u32 = 1_209_600;
/// SQS's longest visibility timeout: 12 hours.
pub const MAX_VISIBILITY: u32 = 43_200;
/// What SQS's name for a dead-letter queue ends with.
pub const DEAD_LETTER_SUFFIX: &str = "-dlq";

/// The queue of function `function`'s queued input `input` in `stack`:
/// `scar-<stack>-<function>` (cut at 62 characters) and 8 hex digits of the three and the
/// input's rule, so that its dead-letter queue's name stays within SQS's 80.
#[must_use]
pub fn queue_name(stack: &str, function: &str, input: &S3Input) -> String {
    let base: String = format!("scar-{stack}-{function}")
        .chars()
        .take(62)
        .collect();
    let seed = format!(
        "{stack}|{function}|{}",
        crate::manifest::resolve::input_rule(input)
    );
    format!("{base}-{}", short_hash(&seed))
}

/// The dead-letter queue of `queue`.
#[must_use]
pub fn dead_letter_name(queue: &str) -> String {
    format!("{queue}{DEAD_LETTER_SUFFIX}")
}

/// A queue's settings with the defaults filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Invocations at once (none: as Lambda scales).
    pub max_concurrency: Option<u32>,
    /// Receives before the dead-letter queue.
    pub max_receives: u32,
    /// Seconds kept.
    pub retention: u32,
    /// Seconds a received event stays hidden.
    pub visibility_timeout: u32,
}

/// `q`'s settings for a function whose timeout is `timeout` seconds.
#[must_use]
pub fn settings(q: &QueueSpec, timeout: u32) -> Settings {
    Settings {
        max_concurrency: q.max_concurrency,
        max_receives: q.max_receives.unwrap_or(DEFAULT_MAX_RECEIVES),
        retention: q.retention.unwrap_or(DEFAULT_RETENTION),
        visibility_timeout: q
            .visibility_timeout
            .unwrap_or_else(|| timeout.saturating_mul(6).min(MAX_VISIBILITY)),
    }
}

/// The queued inputs of a function, with their queue names.
pub fn queued<'a>(
    stack: &'a str,
    function: &'a str,
    inputs: &'a [InputSpec],
) -> impl Iterator<Item = (&'a S3Input, &'a QueueSpec, String)> + 'a {
    inputs
        .iter()
        .filter_map(InputSpec::s3)
        .filter_map(move |i| {
            let q = i.queue.as_ref()?;
            Some((i, q, queue_name(stack, function, i)))
        })
}

/// What one queued input needs besides its notification entry: the queue (its policy lets
/// exactly the input's bucket send), its dead-letter queue, and the mapping that runs the
/// function; the queue's address is returned for the entry to send to.
pub(super) struct QueueInput<'a> {
    pub stack: &'a str,
    pub function_name: &'a str,
    pub function: &'a Address,
    pub timeout: u32,
    pub source_account: &'a Value,
    pub tags: &'a BTreeMap<String, String>,
    /// The managed role the mapping needs to read the queue (Lambda checks it on create).
    pub role: Option<&'a Address>,
}

impl QueueInput<'_> {
    pub(super) fn resources(
        &self,
        input: &S3Input,
        q: &QueueSpec,
        out: &mut Vec<DesiredResource>,
    ) -> Address {
        let s = settings(q, self.timeout);
        let name = queue_name(self.stack, self.function_name, input);
        let dlq = Address::new(ResourceKind::Queue, dead_letter_name(&name));
        let queue = Address::new(ResourceKind::Queue, name.clone());
        let tags = |a: &Address| super::tags::ownership_tags(self.stack, a, self.tags);
        out.push(DesiredResource {
            attrs: attrs::to_attrs(&attrs::QueueAttrs::<Value> {
                name: dlq.name.clone(),
                visibility_timeout: 30,
                retention: int(s.retention),
                dead_letter_arn: None,
                max_receives: None,
                sender_bucket: None,
                sender_account: None,
                tags: tags(&dlq),
            }),
            address: dlq.clone(),
            sensitive: Vec::new(),
            depends_on: Vec::new(),
        });
        out.push(DesiredResource {
            attrs: attrs::to_attrs(&attrs::QueueAttrs::<Value> {
                name: name.clone(),
                visibility_timeout: int(s.visibility_timeout),
                retention: int(s.retention),
                dead_letter_arn: Some(Reference::value(&dlq, "arn")),
                max_receives: Some(int(s.max_receives)),
                sender_bucket: Some(input.bucket.clone()),
                sender_account: Some(self.source_account.clone()),
                tags: tags(&queue),
            }),
            address: queue.clone(),
            sensitive: Vec::new(),
            depends_on: vec![dlq],
        });
        let mut depends_on = vec![self.function.clone(), queue.clone()];
        depends_on.extend(self.role.cloned());
        out.push(DesiredResource {
            address: Address::new(ResourceKind::EventSourceMapping, name),
            attrs: attrs::to_attrs(&attrs::MappingAttrs::<Value> {
                function: self.function_name.to_owned(),
                queue_arn: Reference::value(&queue, "arn"),
                batch_size: 1,
                maximum_concurrency: s.max_concurrency.map(int),
                report_batch_item_failures: true,
                enabled: true,
                uuid: String::new(),
            }),
            sensitive: Vec::new(),
            depends_on,
        });
        queue
    }
}

/// The ARN of queue `name` in `region`, the account written as the managed role's policy
/// writes it.
fn arn(region: &str, name: &str) -> String {
    format!("arn:aws:sqs:{region}:{ACCOUNT}:{name}")
}

/// What the managed role needs for a function's queued inputs: Lambda reads, hides and
/// deletes their messages with the function's role.
pub(super) fn grant(stack: &str, region: &str, function: &str, fs: &FunctionSpec, g: &mut Grants) {
    for (_, _, name) in queued(stack, function, &fs.input) {
        g.allow(Need::ReadQueues, arn(region, &name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(prefix: &str) -> S3Input {
        S3Input {
            bucket: "in".into(),
            prefix: Some(prefix.into()),
            suffix: None,
            events: None,
            queue: Some(QueueSpec::default()),
        }
    }

    #[test]
    fn names_fit_sqs_and_tell_inputs_apart() {
        let long = "f".repeat(64);
        let a = queue_name(&"s".repeat(32), &long, &input("a/"));
        assert_eq!(a.len(), 71);
        assert!(dead_letter_name(&a).len() <= 80);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_ne!(
            queue_name("demo", "f", &input("a/")),
            queue_name("demo", "f", &input("b/"))
        );
        assert!(queue_name("demo", "f", &input("a/")).starts_with("scar-demo-f-"));
    }

    #[test]
    fn defaults_follow_the_function_timeout() {
        let s = settings(&QueueSpec::default(), 300);
        assert_eq!(
            (s.max_receives, s.retention, s.visibility_timeout),
            (3, 1_209_600, 1800)
        );
        assert_eq!(
            settings(&QueueSpec::default(), 900).visibility_timeout,
            5400
        );
        let set = QueueSpec {
            visibility_timeout: Some(100),
            max_receives: Some(5),
            ..QueueSpec::default()
        };
        assert_eq!(settings(&set, 900).visibility_timeout, 100);
        assert_eq!(settings(&set, 900).max_receives, 5);
        assert_eq!(
            settings(&QueueSpec::default(), 9000).visibility_timeout,
            MAX_VISIBILITY
        );
    }
}
