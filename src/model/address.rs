//! Resource addresses: `<kind>/<name>`, the one string used for a resource in plans, logs,
//! errors and the `scar:address` ownership tag.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The kinds of resource scar manages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    /// The stack's managed execution role.
    IamRole,
    /// An S3 bucket scar creates when it is missing.
    Bucket,
    /// A Lambda function.
    Function,
    /// The function's CloudWatch log group.
    LogGroup,
    /// A statement in a function's resource policy letting S3 invoke it.
    LambdaPermission,
    /// One entry of a bucket's notification configuration.
    S3Trigger,
    /// A managed AWS Batch compute environment of a delegating function.
    BatchComputeEnvironment,
    /// The Batch job queue a delegating function submits to.
    BatchJobQueue,
    /// The Batch job definition a delegating function submits (its latest active revision).
    BatchJobDefinition,
    /// A REST API in API Gateway in front of a function.
    HttpApi,
    /// The stack's ECR repository, holding the images scar assembles for its functions.
    ImageRepository,
    /// A function's assembled image (its base, the supervisor, its script and configuration).
    FunctionImage,
    /// What Lambda does with a function's failed asynchronous invocations (retries, event age).
    InvokeConfig,
    /// An SQS queue of a queued input, or its dead-letter queue.
    Queue,
    /// The mapping by which Lambda reads a queued input's queue and runs the function.
    EventSourceMapping,
}

impl ResourceKind {
    /// Every kind, in the order creates happen when nothing else decides.
    pub const ALL: [ResourceKind; 15] = [
        ResourceKind::IamRole,
        ResourceKind::Bucket,
        ResourceKind::Queue,
        ResourceKind::LogGroup,
        ResourceKind::ImageRepository,
        ResourceKind::FunctionImage,
        ResourceKind::BatchComputeEnvironment,
        ResourceKind::BatchJobQueue,
        ResourceKind::BatchJobDefinition,
        ResourceKind::Function,
        ResourceKind::InvokeConfig,
        ResourceKind::EventSourceMapping,
        ResourceKind::HttpApi,
        ResourceKind::LambdaPermission,
        ResourceKind::S3Trigger,
    ];

    /// The snake_case name used in addresses.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::IamRole => "iam_role",
            ResourceKind::Bucket => "bucket",
            ResourceKind::Function => "function",
            ResourceKind::LogGroup => "log_group",
            ResourceKind::LambdaPermission => "lambda_permission",
            ResourceKind::S3Trigger => "s3_trigger",
            ResourceKind::BatchComputeEnvironment => "batch_compute_environment",
            ResourceKind::BatchJobQueue => "batch_job_queue",
            ResourceKind::BatchJobDefinition => "batch_job_definition",
            ResourceKind::HttpApi => "http_api",
            ResourceKind::ImageRepository => "image_repository",
            ResourceKind::FunctionImage => "function_image",
            ResourceKind::InvokeConfig => "invoke_config",
            ResourceKind::Queue => "queue",
            ResourceKind::EventSourceMapping => "event_source_mapping",
        }
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A resource address such as `function/split` or `s3_trigger/media:scar-demo-split-1a2b3c4d`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Address {
    /// The kind.
    pub kind: ResourceKind,
    /// The name within the kind.
    pub name: String,
}

impl Address {
    /// Builds an address.
    #[must_use]
    pub fn new(kind: ResourceKind, name: impl Into<String>) -> Self {
        Self {
            kind,
            name: name.into(),
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

/// An address string that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a resource address (expected KIND/NAME, such as function/split)")]
pub struct BadAddress(pub String);

impl FromStr for Address {
    type Err = BadAddress;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (kind, name) = s.split_once('/').ok_or_else(|| BadAddress(s.to_owned()))?;
        let kind = ResourceKind::ALL
            .into_iter()
            .find(|k| k.as_str() == kind)
            .ok_or_else(|| BadAddress(s.to_owned()))?;
        if name.is_empty() {
            return Err(BadAddress(s.to_owned()));
        }
        Ok(Address::new(kind, name))
    }
}

impl Serialize for Address {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip() {
        let a: Address = "lambda_permission/split/s3:media".parse().expect("parses");
        assert_eq!(a.kind, ResourceKind::LambdaPermission);
        assert_eq!(a.name, "split/s3:media");
        assert_eq!(a.to_string(), "lambda_permission/split/s3:media");
        assert!("nothing".parse::<Address>().is_err());
        assert!("gizmo/x".parse::<Address>().is_err());
    }
}
