//! One adapter per kind of resource. Each kind's unit type lives in its service's module
//! (`lambda`, `logs`, `s3`, `iam`, `batch`, `http`, `image`) and implements [`Adapter`]:
//! how it is written, whose it is right now, how it is adopted, and which of refresh's reads
//! finds it, in one place. The verb modules (`execute`, `owner`, `refresh`) only dispatch,
//! through [`adapter!`], whose `match` the compiler checks: a kind added to
//! [`ResourceKind`] without an adapter does not compile, and an adapter without one of the
//! four does not either.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::AwsCloud;
use crate::cloud::{CloudError, ErrorKind};
use crate::model::Address;
use crate::model::attrs::{Attrs, id};
use crate::model::live::Owner;
use crate::plan::Step;

/// One step about to be written, its references resolved.
pub(super) struct Write<'a> {
    pub step: &'a Step,
    pub account: &'a str,
    pub stack: &'a str,
    /// What the step wants (empty for a delete).
    pub after: &'a Map<String, Value>,
    /// What refresh read (empty for a create).
    pub before: &'a Map<String, Value>,
    /// Every tag the resource must carry afterwards.
    pub tags: &'a BTreeMap<String, String>,
}

impl Write<'_> {
    pub fn name(&self) -> &str {
        &self.step.address.name
    }
}

/// A step about to update or delete a resource, as the ownership check sees it.
pub(super) struct Check<'a> {
    /// The stack that must own the resource.
    pub stack: &'a str,
    pub step: &'a Step,
    /// What refresh read.
    pub before: &'a Map<String, Value>,
}

/// An existing resource the stack takes over.
pub(super) struct Adopt<'a> {
    pub address: &'a Address,
    /// What the stack wants of it.
    pub wanted: &'a Map<String, Value>,
    pub account: &'a str,
    /// The stack's own tags (`scar:*`), and only those: the resource keeps the rest.
    pub ours: &'a BTreeMap<String, String>,
}

impl Adopt<'_> {
    pub fn name(&self) -> &str {
        &self.address.name
    }

    /// The refusal of a kind that carries no tags of its own.
    pub fn untagged(&self) -> CloudError {
        CloudError::new(
            ErrorKind::Invalid,
            "adopt",
            format!(
                "{} carries no tags; scar owns it by its Id prefix",
                self.address
            ),
        )
    }

    /// The refusal of a kind scar only ever makes itself.
    pub fn never(&self) -> CloudError {
        CloudError::new(
            ErrorKind::Invalid,
            "adopt",
            format!(
                "{} cannot be adopted: delete it or rename the function; scar creates its own",
                self.address
            ),
        )
    }
}

/// The reads refresh makes; each kind names the one that finds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Read {
    /// `GetFunction` per function: its configuration, tags and the image it records.
    Functions,
    /// `GetPolicy` per function: the stack's permission statements.
    Policies,
    /// `GetFunctionEventInvokeConfig` per function that has (or had) a failure policy.
    InvokeConfigs,
    /// `/aws/lambda/` log groups in bulk.
    LogGroups,
    /// Per bucket: location, tags and notification configuration.
    Buckets,
    /// The managed role.
    Role,
    /// Batch's three describes.
    Batch,
    /// API Gateway's REST APIs.
    Apis,
    /// The stack's ECR repository.
    Repository,
    /// SQS queues (the manifests' and those under the stack's prefix), and the mapping
    /// reading each.
    Queues,
}

impl Read {
    /// Every read [`AwsCloud::refresh`](super::AwsCloud::refresh) makes.
    #[cfg(test)]
    pub const ALL: [Read; 10] = [
        Read::Functions,
        Read::Policies,
        Read::InvokeConfigs,
        Read::LogGroups,
        Read::Buckets,
        Read::Role,
        Read::Batch,
        Read::Apis,
        Read::Repository,
        Read::Queues,
    ];
}

impl Read {
    /// The service it lists, and the permissions that listing takes.
    pub fn service(self) -> (&'static str, &'static str) {
        match self {
            Read::Functions | Read::Policies => (
                "Lambda",
                "lambda:GetFunction and lambda:GetPolicy, and tag:GetResources",
            ),
            Read::InvokeConfigs => ("Lambda", "lambda:GetFunctionEventInvokeConfig"),
            Read::LogGroups => ("CloudWatch Logs", "logs:DescribeLogGroups"),
            Read::Buckets => (
                "S3",
                "s3:GetBucketLocation, s3:GetBucketTagging and s3:GetBucketNotification",
            ),
            Read::Role => ("IAM", "iam:GetRole and iam:GetRolePolicy"),
            Read::Batch => (
                "Batch",
                "batch:DescribeComputeEnvironments, batch:DescribeJobQueues and batch:DescribeJobDefinitions",
            ),
            Read::Apis => ("API Gateway", "apigateway:GET on /restapis"),
            Read::Repository => (
                "ECR",
                "ecr:DescribeRepositories and ecr:ListTagsForResource",
            ),
            Read::Queues => (
                "SQS",
                "sqs:ListQueues, sqs:GetQueueUrl, sqs:GetQueueAttributes, sqs:ListQueueTags and lambda:ListEventSourceMappings",
            ),
        }
    }
}

/// What scar does with one kind of resource.
pub(super) trait Adapter {
    /// The read of refresh that finds this kind's live resources.
    const READ: Read;

    /// Carries out a create, update, replace or delete.
    async fn write(cloud: &AwsCloud, w: &Write<'_>) -> Result<(), CloudError>;

    /// Who owns the resource a step is about to update or delete, read now.
    async fn owner(cloud: &AwsCloud, c: &Check<'_>) -> Result<Owner, CloudError>;

    /// Writes the stack's tags on an existing resource, or refuses with why it cannot be
    /// adopted.
    async fn adopt(cloud: &AwsCloud, a: &Adopt<'_>) -> Result<(), CloudError>;

    /// `attribute` of the resource of this kind named `name`, when it is known before
    /// anything reads it: an ARN scar can write down once the account is known, or what a
    /// step of this run recorded. `None` (a kind nothing refers to) leaves the reference as it
    /// is, which a step that needs it refuses to send.
    fn resolve(_cloud: &AwsCloud, _name: &str, _attribute: &str, _account: &str) -> Option<Value> {
        None
    }
}

/// `$body` with `$A` the adapter of `$kind`. The one table of kinds to adapters.
macro_rules! adapter {
    ($kind:expr, $A:ident => $body:expr) => {{
        use crate::model::ResourceKind as K;
        match $kind {
            K::IamRole => {
                type $A = super::iam::Role;
                $body
            }
            K::Bucket => {
                type $A = super::s3::Bucket;
                $body
            }
            K::LogGroup => {
                type $A = super::logs::LogGroup;
                $body
            }
            K::ImageRepository => {
                type $A = super::image::Repository;
                $body
            }
            K::FunctionImage => {
                type $A = super::image::FunctionImage;
                $body
            }
            K::BatchComputeEnvironment => {
                type $A = super::batch::ComputeEnvironment;
                $body
            }
            K::BatchJobQueue => {
                type $A = super::batch::JobQueue;
                $body
            }
            K::BatchJobDefinition => {
                type $A = super::batch::JobDefinition;
                $body
            }
            K::Function => {
                type $A = super::lambda::Function;
                $body
            }
            K::HttpApi => {
                type $A = super::http::Api;
                $body
            }
            K::LambdaPermission => {
                type $A = super::lambda::Permission;
                $body
            }
            K::S3Trigger => {
                type $A = super::s3::Trigger;
                $body
            }
            K::InvokeConfig => {
                type $A = super::lambda::InvokeConfig;
                $body
            }
            K::Queue => {
                type $A = super::sqs::Queue;
                $body
            }
            K::EventSourceMapping => {
                type $A = super::sqs::Mapping;
                $body
            }
        }
    }};
}
pub(super) use adapter;

/// The read of refresh that finds `kind`.
pub(super) fn read_of(kind: crate::model::ResourceKind) -> Read {
    adapter!(kind, A => <A as Adapter>::READ)
}

/// A read's answer, `None` when what it asked for does not exist.
pub fn found<T>(r: Result<T, CloudError>) -> Result<Option<T>, CloudError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

pub(super) fn gone_is_fine<T>(r: Result<T, CloudError>) -> Result<(), CloudError> {
    match r {
        Ok(_) => Ok(()),
        Err(e) if e.kind == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Tag keys on the live resource that the wanted tags no longer have (AWS's own `aws:` keys
/// aside): what an update must remove before it writes the rest.
pub(super) fn stale_tag_keys(
    address: &Address,
    before: &Map<String, Value>,
    tags: &BTreeMap<String, String>,
) -> Result<Vec<String>, CloudError> {
    Ok(view::<id::Tagged>(address, before)?
        .tags
        .into_keys()
        .filter(|k| !tags.contains_key(k) && !k.starts_with("aws:"))
        .collect())
}

/// [`view`] of what refresh read (a step's `before`); `None` for a create, which read
/// nothing.
pub(super) fn view_read<T: Attrs>(
    address: &Address,
    before: &Map<String, Value>,
) -> Result<Option<T>, CloudError> {
    if before.is_empty() {
        Ok(None)
    } else {
        view(address, before).map(Some)
    }
}

/// `attrs` of `address` through its kind's typed view; attributes that are not what scar
/// writes for that kind stop the step, naming the resource and the field.
pub(super) fn view<T: Attrs>(
    address: &Address,
    attrs: &Map<String, Value>,
) -> Result<T, CloudError> {
    T::from_attrs(address, attrs)
        .map_err(|e| CloudError::new(ErrorKind::Invalid, "plan", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ResourceKind;

    /// Every kind names a read, and every read is one refresh makes: a kind whose live
    /// resources nothing reads would be planned as a create forever.
    #[test]
    fn every_kind_is_read_by_one_of_refreshs_reads() {
        for kind in ResourceKind::ALL {
            assert!(Read::ALL.contains(&read_of(kind)), "{kind}");
        }
        for read in Read::ALL {
            assert!(
                ResourceKind::ALL.iter().any(|k| read_of(*k) == read),
                "{read:?} reads no kind"
            );
        }
    }
}
