//! Where a function's failed inputs go: the failure policy of a function invoked
//! asynchronously (an S3 input's), as the `invoke_config` resource, the bucket its records go
//! to, and what the managed role needs to let Lambda write them.

use super::attrs::{self, InvokeConfigAttrs};
use super::grants::{Grants, Need};
use super::{Address, DesiredResource, ResourceKind, int};
use crate::manifest::resolve::{Destination, Effective, OnFailure};
use crate::manifest::types::{FunctionSpec, StackSpec};

/// A function's failure policy with its destination resolved.
pub struct Policy {
    /// Retries, event age and where the records go.
    pub on_failure: OnFailure,
    /// The destination's ARN, or `""` for none.
    pub arn: String,
    /// The bucket the records go to, when they go to one.
    pub bucket: Option<String>,
}

/// Where `scar retry` marks the records it is retrying (then the record's key).
pub use scar_contract::records::MARKS;
pub use scar_contract::records::RECORDS;
/// Where `scar retry` marks a Batch job it settled that had failed without writing its record
/// (then the key the record would have had).
pub const SETTLED_JOBS: &str = "scar/settled/";

/// The stack's default failures bucket: `scar-<stack>-failures-` and 8 hex digits of the
/// stack, its region and its account (when the manifests name it), so that stacks of one
/// name in two regions or accounts do not meet. At most 55 characters (a stack name has at
/// most 32).
#[must_use]
pub fn default_bucket(stack: &str, region: &str, account: Option<&str>) -> String {
    let seed = format!("{stack}|{region}|{}", account.unwrap_or_default());
    format!("scar-{stack}-failures-{}", super::short_hash(&seed))
}

/// The stack's own failures bucket: `spec.failures.bucket`, or the name scar derives.
#[must_use]
pub fn stack_bucket(stack_name: &str, stack: &StackSpec) -> String {
    stack
        .failures
        .as_ref()
        .and_then(|f| f.bucket.clone())
        .unwrap_or_else(|| default_bucket(stack_name, &stack.region, stack.account_id.as_deref()))
}

/// The failure policy of a function Lambda invokes asynchronously (an S3 input's): nothing
/// else is retried or recorded by Lambda. On by default (`Effective::on_failure`).
pub fn policy(
    stack_name: &str,
    stack: &StackSpec,
    fs: &FunctionSpec,
    eff: &Effective,
) -> Option<Policy> {
    if !fs.has_s3_input() {
        return None;
    }
    let on_failure = eff.on_failure.clone();
    let bucket = match &on_failure.destination {
        Destination::Stack => Some(stack_bucket(stack_name, stack)),
        Destination::Bucket(b) => Some(b.clone()),
        Destination::Queue(_) | Destination::Nowhere => None,
    };
    let arn = match (&on_failure.destination, &bucket) {
        (_, Some(b)) => format!("arn:aws:s3:::{b}"),
        (Destination::Queue(q), None) => q.clone(),
        _ => String::new(),
    };
    Some(Policy {
        on_failure,
        arn,
        bucket,
    })
}

/// The bucket function `fs`'s failure records go to, when it keeps any there.
#[must_use]
pub fn records_bucket(stack_name: &str, stack: &StackSpec, fs: &FunctionSpec) -> Option<String> {
    let eff = crate::manifest::resolve::effective(Some(stack), fs);
    policy(stack_name, stack, fs, &eff).and_then(|p| p.bucket)
}

/// The function's `invoke_config`, after the function, its bucket and the role that lets
/// Lambda write there (Lambda checks that permission when the configuration is put).
pub(super) fn invoke_config(
    fname: &str,
    p: &Policy,
    function: &Address,
    role: Option<&Address>,
) -> DesiredResource {
    let mut depends_on = vec![function.clone()];
    depends_on.extend(
        p.bucket
            .iter()
            .map(|b| Address::new(ResourceKind::Bucket, b.clone())),
    );
    depends_on.extend(role.cloned());
    DesiredResource {
        address: Address::new(ResourceKind::InvokeConfig, fname),
        attrs: attrs::to_attrs(&InvokeConfigAttrs {
            function: fname.to_owned(),
            maximum_retry_attempts: int(p.on_failure.retry_attempts),
            maximum_event_age: int(p.on_failure.max_event_age),
            on_failure: p.arn.clone(),
        }),
        sensitive: Vec::new(),
        depends_on,
    }
}

/// What the managed role needs so that Lambda may write a function's failure records: put
/// and list in the bucket, or send to the queue. A function that `delegates` (its name, when
/// it hands work to Batch) has jobs that delete the record an earlier attempt wrote, once a
/// later one succeeds: its own records only.
pub(super) fn grant(p: &Policy, delegates: Option<&str>, g: &mut Grants) {
    match &p.bucket {
        Some(b) => {
            g.allow(Need::WriteFailures, format!("arn:aws:s3:::{b}/*"));
            g.allow(Need::ListFailures, format!("arn:aws:s3:::{b}"));
            if let Some(name) = delegates {
                g.allow(
                    Need::SettleJobFailures,
                    format!("arn:aws:s3:::{b}/{}*", scar_contract::records::prefix(name)),
                );
            }
        }
        None if !p.arn.is_empty() => g.allow(Need::SendFailures, p.arn.clone()),
        None => {}
    }
}
