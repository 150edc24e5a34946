//! What the managed role allows: each part of a function that needs it adds its own grants.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

/// Stands for the account id in the managed role's policy: written as the credentials'
/// account by apply, and read back as this, so the plan compares like with like. Nothing in
/// the policy is granted in `*` accounts.
pub const ACCOUNT: &str = "<account>";

/// What the managed role allows, one statement each, in the order the policy lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Need {
    /// Writing to the functions' (and Batch jobs') log groups. Always present.
    Logs,
    /// Reading the objects an input names.
    ReadInputs,
    /// Writing outputs (multipart uploads, of large outputs, need the abort when a part fails).
    WriteOutputs,
    /// Reading SSM parameters the environment refers to.
    ReadParameters,
    /// Reading Secrets Manager secrets the environment refers to.
    ReadSecrets,
    /// Submitting jobs to the functions' queues.
    SubmitBatchJobs,
    /// ECR's token, account-wide (AWS allows no resource there).
    EcrToken,
    /// Pulling from the stack's own repository.
    PullImages,
    /// Lambda's network interfaces in a VPC.
    VpcNetworking,
    /// Lambda writing a failed input's record into the failures bucket.
    WriteFailures,
    /// Lambda checking the failures bucket (it lists it before writing).
    ListFailures,
    /// Lambda sending a failed input's record to a queue.
    SendFailures,
    /// A Batch job deleting the record an earlier attempt of it wrote, once one succeeds.
    SettleJobFailures,
    /// Lambda reading a queued input's queue for the function (its event source mapping).
    ReadQueues,
}

impl Need {
    fn sid(self) -> &'static str {
        match self {
            Need::Logs => "Logs",
            Need::ReadInputs => "ReadInputs",
            Need::WriteOutputs => "WriteOutputs",
            Need::ReadParameters => "ReadParameters",
            Need::ReadSecrets => "ReadSecrets",
            Need::SubmitBatchJobs => "SubmitBatchJobs",
            Need::EcrToken => "EcrToken",
            Need::PullImages => "PullImages",
            Need::VpcNetworking => "VpcNetworking",
            Need::WriteFailures => "WriteFailureRecords",
            Need::ListFailures => "ListFailureRecords",
            Need::SendFailures => "SendFailureRecords",
            Need::SettleJobFailures => "SettleJobFailureRecords",
            Need::ReadQueues => "ReadQueuedInputs",
        }
    }

    fn actions(self) -> &'static [&'static str] {
        match self {
            Need::Logs => &["logs:CreateLogStream", "logs:PutLogEvents"],
            Need::ReadInputs => &["s3:GetObject"],
            Need::WriteOutputs => &["s3:PutObject", "s3:AbortMultipartUpload"],
            Need::ReadParameters => &["ssm:GetParameter"],
            Need::ReadSecrets => &["secretsmanager:GetSecretValue"],
            Need::SubmitBatchJobs => &["batch:SubmitJob"],
            Need::EcrToken => &["ecr:GetAuthorizationToken"],
            Need::PullImages => &[
                "ecr:BatchCheckLayerAvailability",
                "ecr:GetDownloadUrlForLayer",
                "ecr:BatchGetImage",
            ],
            Need::VpcNetworking => &[
                "ec2:CreateNetworkInterface",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DeleteNetworkInterface",
                "ec2:AssignPrivateIpAddresses",
                "ec2:UnassignPrivateIpAddresses",
            ],
            Need::WriteFailures => &["s3:PutObject"],
            Need::ListFailures => &["s3:ListBucket"],
            Need::SendFailures => &["sqs:SendMessage"],
            Need::SettleJobFailures => &["s3:DeleteObject"],
            Need::ReadQueues => &[
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
                "sqs:ChangeMessageVisibility",
            ],
        }
    }

    /// A statement of one resource names it alone, not as a list.
    fn single(self) -> bool {
        matches!(
            self,
            Need::EcrToken | Need::PullImages | Need::VpcNetworking
        )
    }
}

/// The resources each [`Need`] is granted on, sorted and once each. Every part of a function
/// that needs the role adds its own ([`Grants::allow`]): its inputs, outputs and log group
/// (`triggers`, here), its Batch delegation (`batch`), its secrets and its network.
#[derive(Debug, Default)]
pub struct Grants(BTreeMap<Need, BTreeSet<String>>);

impl Grants {
    /// Allows `need` on `resource`.
    pub fn allow(&mut self, need: Need, resource: String) {
        self.0.entry(need).or_default().insert(resource);
    }

    pub fn has(&self, need: Need) -> bool {
        self.0.contains_key(&need)
    }

    /// The inline policy's statements, in [`Need`]'s order; `Logs` always.
    pub fn statements(&self) -> Vec<Value> {
        let mut out = Vec::new();
        if !self.has(Need::Logs) {
            out.push(statement(Need::Logs, json!([])));
        }
        for (need, resources) in &self.0 {
            let resource = match resources.iter().next() {
                Some(one) if need.single() && resources.len() == 1 => json!(one),
                _ => json!(resources),
            };
            out.push(statement(*need, resource));
        }
        out
    }
}

fn statement(need: Need, resource: Value) -> Value {
    json!({"Sid": need.sid(), "Effect": "Allow", "Action": need.actions(), "Resource": resource})
}
