//! The IAM policy the person or pipeline running scar needs for one stack: read-only for
//! `plan`, read and write for `apply` and `destroy`. Every statement names the stack's own
//! resources (its functions, buckets, role, log groups, repository, Batch and API Gateway
//! names) where the service allows resource-level permissions; `iam:PassRole` only for the
//! roles the stack's functions and jobs use, only to the services that take them. Pure: the
//! account is given.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::attrs::{Attrs, ComputeEnvAttrs, FunctionAttrs, JobDefinitionAttrs, RoleAttrs, id};
use super::{ACCOUNT, DesiredGraph, ResourceKind};
use crate::manifest::names;

/// What the policy is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `scar plan`, `scar validate`... reads only.
    Plan,
    /// `scar apply`, `scar destroy`, `scar watch`: reads and writes.
    Apply,
    /// `scar failures`, `scar retry`, `scar pause`, `scar resume`: reads, the failure
    /// records, invoking the functions and holding them.
    Operate,
}

/// The policy document for `operation` on `desired`'s stack in `account`.
#[must_use]
pub fn policy(desired: &DesiredGraph, account: &str, operation: Operation) -> Value {
    let sc = Scope::new(desired, account);
    let mut statements = read_statements(&sc);
    if operation == Operation::Apply {
        write_statements(&sc, &mut statements);
        role_statements(desired, &sc, &mut statements);
        pass_role_and_batch_statements(desired, &sc, &mut statements);
    }
    if operation == Operation::Operate {
        operate_statements(desired, &sc, &mut statements);
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// The names and ARNs a stack's policy is scoped to.
struct Scope {
    region: String,
    account: String,
    function_arns: Vec<String>,
    log_groups: Vec<String>,
    buckets: BTreeSet<String>,
    bucket_arns: Vec<String>,
    lock_bucket: String,
    lock_objects: Vec<String>,
    role_arn: String,
    repository_arn: String,
    owned_functions: Value,
    /// The stack's queues: those of its queued inputs, and those an earlier version made
    /// (`scar-<stack>-*`, to prune them).
    queues: String,
    /// Event source mappings of the stack's functions only.
    mapped_functions: Value,
}

impl Scope {
    fn new(desired: &DesiredGraph, account: &str) -> Scope {
        let region = desired.region.as_str();
        let stack = desired.stack.as_str();
        let functions: BTreeSet<String> = desired
            .resources
            .iter()
            .filter(|r| r.address.kind == ResourceKind::Function)
            .map(|r| r.address.name.clone())
            .collect();
        let buckets = names_of(desired, ResourceKind::Bucket);
        let arn = |s: String| s.replace(ACCOUNT, account);
        let function_arns: Vec<String> = functions
            .iter()
            .map(|f| arn(format!("arn:aws:lambda:{region}:{ACCOUNT}:function:{f}")))
            .collect();
        let log_groups: Vec<String> = functions
            .iter()
            .flat_map(|f| {
                let g = names::derive(stack, f).log_group;
                [
                    arn(format!("arn:aws:logs:{region}:{ACCOUNT}:log-group:{g}")),
                    arn(format!("arn:aws:logs:{region}:{ACCOUNT}:log-group:{g}:*")),
                ]
            })
            .collect();
        let bucket_arns: Vec<String> = buckets
            .iter()
            .map(|b| format!("arn:aws:s3:::{b}"))
            .collect();
        let lock_bucket = format!("scar-locks-{account}-{region}");
        let mut lock_objects = vec![format!("arn:aws:s3:::{lock_bucket}/locks/{stack}.json")];
        lock_objects.extend(
            buckets
                .iter()
                .map(|b| format!("arn:aws:s3:::{lock_bucket}/bucket-leases/{b}.json")),
        );
        let role = names::managed_role(stack);
        let repository = names::derive(stack, "x").ecr_repository;
        let mapped_functions = json!({"ArnLike": {"lambda:FunctionArn": function_arns.clone()}});
        Scope {
            region: region.to_owned(),
            account: account.to_owned(),
            function_arns,
            log_groups,
            buckets,
            bucket_arns,
            lock_bucket,
            lock_objects,
            role_arn: arn(format!("arn:aws:iam::{ACCOUNT}:role/{role}")),
            repository_arn: arn(format!(
                "arn:aws:ecr:{region}:{ACCOUNT}:repository/{repository}"
            )),
            owned_functions: json!({"StringEquals": {"aws:ResourceTag/scar:stack": stack}}),
            queues: arn(format!("arn:aws:sqs:{region}:{ACCOUNT}:scar-{stack}-*")),
            mapped_functions,
        }
    }

    /// `s` with the account in place of [`ACCOUNT`].
    fn arn(&self, s: String) -> String {
        s.replace(ACCOUNT, &self.account)
    }
}

/// The names of `desired`'s resources of `kind` (their `name` attribute, else the address's).
fn names_of(desired: &DesiredGraph, kind: ResourceKind) -> BTreeSet<String> {
    desired
        .resources
        .iter()
        .filter(|r| r.address.kind == kind)
        .map(|r| id::Named::read(&r.attrs).map_or_else(|_| r.address.name.clone(), |n| n.name))
        .collect()
}

/// What `plan` needs: reads, scoped to the stack's names.
fn read_statements(sc: &Scope) -> Vec<Value> {
    let region = sc.region.as_str();
    let mut statements = vec![
        json!({"Sid": "WhoAmIAndWhatIsTagged", "Effect": "Allow",
            "Action": ["sts:GetCallerIdentity", "tag:GetResources", "logs:DescribeLogGroups",
                // Queued inputs: the stack's queues by their prefix, the mapping reading each.
                "sqs:ListQueues", "lambda:ListEventSourceMappings",
                "ecr:GetAuthorizationToken", "batch:DescribeComputeEnvironments",
                "batch:DescribeJobQueues", "batch:DescribeJobDefinitions",
                // The default VPC, for a compute environment that names no network.
                "ec2:DescribeVpcs", "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups"],
            "Resource": "*"}),
        json!({"Sid": "ReadFunctions", "Effect": "Allow",
            "Action": ["lambda:GetFunction", "lambda:GetPolicy", "lambda:ListTags",
                "lambda:GetFunctionEventInvokeConfig"],
            "Resource": sc.function_arns}),
        // Functions the stack owns that no manifest names any more (to prune them).
        json!({"Sid": "ReadOwnedFunctions", "Effect": "Allow",
            "Action": ["lambda:GetFunction", "lambda:GetPolicy", "lambda:ListTags",
                "lambda:GetFunctionEventInvokeConfig"],
            "Resource": sc.arn(format!("arn:aws:lambda:{region}:{ACCOUNT}:function:*")),
            "Condition": sc.owned_functions}),
        json!({"Sid": "ReadQueues", "Effect": "Allow",
            "Action": ["sqs:GetQueueUrl", "sqs:GetQueueAttributes", "sqs:ListQueueTags"],
            "Resource": sc.queues}),
        json!({"Sid": "ReadLogGroups", "Effect": "Allow",
            "Action": ["logs:ListTagsForResource"], "Resource": sc.log_groups}),
        json!({"Sid": "ReadRole", "Effect": "Allow",
            "Action": ["iam:GetRole", "iam:GetRolePolicy", "iam:ListRoleTags"],
            "Resource": sc.role_arn}),
        json!({"Sid": "ReadRepository", "Effect": "Allow",
            "Action": ["ecr:DescribeRepositories", "ecr:ListTagsForResource",
                "ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage",
                "ecr:GetDownloadUrlForLayer", "ecr:DescribeImages"],
            "Resource": sc.repository_arn}),
        json!({"Sid": "ReadApis", "Effect": "Allow", "Action": ["apigateway:GET"],
            "Resource": [format!("arn:aws:apigateway:{region}::/restapis"),
                format!("arn:aws:apigateway:{region}::/restapis/*"),
                format!("arn:aws:apigateway:{region}::/usageplans"),
                format!("arn:aws:apigateway:{region}::/usageplans/*")]}),
    ];
    if !sc.bucket_arns.is_empty() {
        statements.push(json!({"Sid": "ReadBuckets", "Effect": "Allow",
            "Action": ["s3:GetBucketLocation", "s3:GetBucketTagging",
                "s3:GetBucketNotification", "s3:ListBucket"],
            "Resource": sc.bucket_arns}));
    }
    statements
}

/// What `failures`, `retry`, `pause` and `resume` add: the failure records (read, written
/// again, marked, deleted), invoking and holding the functions, and the stack's lock.
fn operate_statements(desired: &DesiredGraph, sc: &Scope, statements: &mut Vec<Value>) {
    let record_buckets: BTreeSet<String> = desired
        .resources
        .iter()
        .filter(|r| r.address.kind == ResourceKind::InvokeConfig)
        .filter_map(|r| r.attrs.get("on_failure").and_then(Value::as_str))
        .filter_map(|arn| arn.strip_prefix("arn:aws:s3:::"))
        .map(str::to_owned)
        .collect();
    let batch = desired
        .resources
        .iter()
        .any(|r| r.address.kind == ResourceKind::BatchJobQueue);
    statements.push(json!({"Sid": "HoldAndInvokeFunctions", "Effect": "Allow",
        "Action": ["lambda:InvokeFunction", "lambda:TagResource", "lambda:UntagResource",
            "lambda:PutFunctionConcurrency", "lambda:DeleteFunctionConcurrency"],
        "Resource": sc.function_arns}));
    // `pause` turns a queued input's mapping off; `failures` reads the dead-letter queues
    // (a receive that hides nothing) and `retry` moves their events back.
    statements.push(json!({"Sid": "HoldQueuedInputs", "Effect": "Allow",
        "Action": ["lambda:UpdateEventSourceMapping"], "Resource": "*",
        "Condition": sc.mapped_functions}));
    statements.push(json!({"Sid": "RedriveQueuedInputs", "Effect": "Allow",
        "Action": ["sqs:ReceiveMessage", "sqs:ChangeMessageVisibility", "sqs:DeleteMessage",
            "sqs:SendMessage"],
        "Resource": sc.queues}));
    if !record_buckets.is_empty() {
        statements.push(json!({"Sid": "ListFailureRecords", "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": record_buckets.iter().map(|b| format!("arn:aws:s3:::{b}")).collect::<Vec<_>>()}));
        statements.push(json!({"Sid": "SettleFailureRecords", "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
            "Resource": record_buckets.iter().flat_map(|b| {
                let mut keys = vec![
                    format!("arn:aws:s3:::{b}/{}*", super::failures::RECORDS),
                    format!("arn:aws:s3:::{b}/{}*", super::failures::MARKS),
                ];
                if batch {
                    keys.push(format!("arn:aws:s3:::{b}/{}*", super::failures::SETTLED_JOBS));
                }
                keys
            }).collect::<Vec<_>>()}));
    }
    // Jobs that failed before their supervisor could write a record are read from Batch's
    // list (IAM takes no resource for either call).
    if batch {
        statements.push(json!({"Sid": "ReadFailedJobs", "Effect": "Allow",
            "Action": ["batch:ListJobs", "batch:DescribeJobs"], "Resource": "*"}));
    }
    statements.push(json!({"Sid": "Lock", "Effect": "Allow",
        "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
        "Resource": [format!("arn:aws:s3:::{}/locks/{}.json", sc.lock_bucket, desired.stack)]}));
}

/// What `apply` adds: writes to what the stack names, and the lock.
fn write_statements(sc: &Scope, statements: &mut Vec<Value>) {
    let region = sc.region.as_str();
    statements.extend([
        json!({"Sid": "WriteFunctions", "Effect": "Allow",
            "Action": ["lambda:CreateFunction", "lambda:UpdateFunctionCode",
                "lambda:UpdateFunctionConfiguration", "lambda:DeleteFunction",
                "lambda:TagResource", "lambda:UntagResource", "lambda:AddPermission",
                "lambda:RemovePermission", "lambda:InvokeFunction",
                "lambda:PutFunctionConcurrency", "lambda:PutFunctionEventInvokeConfig",
                "lambda:DeleteFunctionEventInvokeConfig"],
            "Resource": sc.function_arns}),
        json!({"Sid": "PruneOwnedFunctions", "Effect": "Allow",
            "Action": ["lambda:DeleteFunction", "lambda:RemovePermission",
                "lambda:DeleteFunctionEventInvokeConfig"],
            "Resource": sc.arn(format!("arn:aws:lambda:{region}:{ACCOUNT}:function:*")),
            "Condition": sc.owned_functions}),
        json!({"Sid": "WriteQueues", "Effect": "Allow",
            "Action": ["sqs:CreateQueue", "sqs:SetQueueAttributes", "sqs:TagQueue",
                "sqs:UntagQueue", "sqs:DeleteQueue"],
            "Resource": sc.queues}),
        json!({"Sid": "WriteQueueMappings", "Effect": "Allow",
            "Action": ["lambda:CreateEventSourceMapping", "lambda:UpdateEventSourceMapping",
                "lambda:DeleteEventSourceMapping"],
            "Resource": "*", "Condition": sc.mapped_functions}),
        json!({"Sid": "WriteLogGroups", "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:DeleteLogGroup",
                "logs:PutRetentionPolicy", "logs:TagResource", "logs:UntagResource"],
            "Resource": sc.log_groups}),
        json!({"Sid": "Lock", "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
            "Resource": sc.lock_objects}),
        json!({"Sid": "LockBucket", "Effect": "Allow",
            "Action": ["s3:CreateBucket", "s3:ListBucket", "s3:PutBucketTagging",
                "s3:GetBucketLocation"],
            "Resource": format!("arn:aws:s3:::{}", sc.lock_bucket)}),
        json!({"Sid": "WriteRepository", "Effect": "Allow",
            "Action": ["ecr:CreateRepository", "ecr:DeleteRepository",
                "ecr:PutLifecyclePolicy", "ecr:TagResource", "ecr:UntagResource",
                "ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload",
                "ecr:PutImage"],
            "Resource": sc.repository_arn}),
        json!({"Sid": "WriteApis", "Effect": "Allow",
            "Action": ["apigateway:POST", "apigateway:PUT", "apigateway:PATCH",
                "apigateway:DELETE"],
            "Resource": [format!("arn:aws:apigateway:{region}::/restapis"),
                format!("arn:aws:apigateway:{region}::/restapis/*"),
                format!("arn:aws:apigateway:{region}::/usageplans"),
                format!("arn:aws:apigateway:{region}::/usageplans/*"),
                format!("arn:aws:apigateway:{region}::/apikeys"),
                format!("arn:aws:apigateway:{region}::/apikeys/*"),
                format!("arn:aws:apigateway:{region}::/tags/*")]}),
    ]);
    if !sc.buckets.is_empty() {
        statements.push(json!({"Sid": "WriteBuckets", "Effect": "Allow",
            "Action": ["s3:CreateBucket", "s3:DeleteBucket", "s3:PutBucketTagging",
                "s3:PutBucketNotification"],
            "Resource": sc.buckets.iter().map(|b| format!("arn:aws:s3:::{b}")).collect::<Vec<_>>()}));
    }
}

/// The managed role: made, changed and deleted only under the boundary the stack names.
fn role_statements(desired: &DesiredGraph, sc: &Scope, statements: &mut Vec<Value>) {
    let boundary = desired
        .resources
        .iter()
        .find(|r| r.address.kind == ResourceKind::IamRole)
        .and_then(|r| RoleAttrs::read(&r.attrs).ok())
        .map(|r| r.permissions_boundary)
        .filter(|b| !b.is_empty());
    if desired
        .resources
        .iter()
        .any(|r| r.address.kind == ResourceKind::IamRole)
    {
        // Under a boundary, what sets the role's permissions or boundary is allowed only with
        // that boundary (iam:PermissionsBoundary), so these credentials cannot make an
        // unbounded role.
        let (bounded, rest): (Vec<&str>, Vec<&str>) = [
            "iam:CreateRole",
            "iam:PutRolePermissionsBoundary",
            "iam:PutRolePolicy",
            "iam:DeleteRole",
            "iam:DeleteRolePolicy",
            "iam:TagRole",
            "iam:UntagRole",
            "iam:UpdateAssumeRolePolicy",
        ]
        .into_iter()
        .partition(|a| {
            boundary.is_some()
                && matches!(
                    *a,
                    "iam:CreateRole" | "iam:PutRolePermissionsBoundary" | "iam:PutRolePolicy"
                )
        });
        statements.push(
            json!({"Sid": "WriteRole", "Effect": "Allow", "Action": rest,
            "Resource": sc.role_arn}),
        );
        if let Some(b) = boundary {
            statements.push(
                json!({"Sid": "WriteRoleWithinItsBoundary", "Effect": "Allow",
                "Action": bounded, "Resource": sc.role_arn,
                "Condition": {"StringEquals": {"iam:PermissionsBoundary": b}}}),
            );
        }
    }
}

/// PassRole: the roles functions run with, to Lambda; Batch's roles, to Batch and ECS; and
/// the Batch resources the stack names.
fn pass_role_and_batch_statements(desired: &DesiredGraph, sc: &Scope, statements: &mut Vec<Value>) {
    let region = sc.region.as_str();
    let mut lambda_roles = BTreeSet::new();
    let mut batch_roles = BTreeSet::new();
    for r in &desired.resources {
        // An ARN written in the manifests; not a reference to the managed role.
        let arn = |v: Option<&str>| v.filter(|s| s.starts_with("arn:")).map(str::to_owned);
        match r.address.kind {
            ResourceKind::Function => {
                let role = FunctionAttrs::<Value>::read(&r.attrs)
                    .ok()
                    .and_then(|f| arn(f.role.as_str()));
                lambda_roles.insert(role.unwrap_or_else(|| sc.role_arn.clone()));
            }
            ResourceKind::BatchJobDefinition => {
                if let Ok(d) = JobDefinitionAttrs::<Value>::read(&r.attrs) {
                    batch_roles.extend(arn(d.job_role.as_str()));
                    batch_roles.extend(arn(d.execution_role.as_str()));
                    if !d.job_role.is_string() {
                        batch_roles.insert(sc.role_arn.clone());
                    }
                }
            }
            ResourceKind::BatchComputeEnvironment => {
                if let Ok(c) = ComputeEnvAttrs::read(&r.attrs) {
                    batch_roles.extend(arn(Some(&c.service_role)));
                    batch_roles.extend(arn(c.instance_role.as_deref()));
                }
            }
            _ => {}
        }
    }
    if !lambda_roles.is_empty() {
        statements.push(json!({"Sid": "PassRolesToLambda", "Effect": "Allow",
            "Action": "iam:PassRole", "Resource": lambda_roles,
            "Condition": {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}}));
    }
    let batch: Vec<String> = [
        ResourceKind::BatchComputeEnvironment,
        ResourceKind::BatchJobQueue,
        ResourceKind::BatchJobDefinition,
    ]
    .into_iter()
    .flat_map(|k| names_of(desired, k).into_iter().map(move |n| (k, n)))
    .map(|(k, n)| match k {
        ResourceKind::BatchComputeEnvironment => sc.arn(format!(
            "arn:aws:batch:{region}:{ACCOUNT}:compute-environment/{n}"
        )),
        ResourceKind::BatchJobQueue => {
            sc.arn(format!("arn:aws:batch:{region}:{ACCOUNT}:job-queue/{n}"))
        }
        _ => sc.arn(format!(
            "arn:aws:batch:{region}:{ACCOUNT}:job-definition/{n}:*"
        )),
    })
    .collect();
    if !batch.is_empty() {
        statements.push(json!({"Sid": "WriteBatch", "Effect": "Allow",
            "Action": ["batch:CreateComputeEnvironment", "batch:UpdateComputeEnvironment",
                "batch:DeleteComputeEnvironment", "batch:CreateJobQueue", "batch:UpdateJobQueue",
                "batch:DeleteJobQueue", "batch:RegisterJobDefinition",
                "batch:DeregisterJobDefinition", "batch:TagResource", "batch:UntagResource"],
            "Resource": batch}));
        // RegisterJobDefinition is authorised against the definition name without a revision.
        statements.push(json!({"Sid": "RegisterJobDefinitions", "Effect": "Allow",
            "Action": ["batch:RegisterJobDefinition", "batch:TagResource"],
            "Resource": names_of(desired, ResourceKind::BatchJobDefinition).iter()
                .map(|n| sc.arn(format!("arn:aws:batch:{region}:{ACCOUNT}:job-definition/{n}")))
                .collect::<Vec<_>>()}));
    }
    if !batch_roles.is_empty() {
        statements.push(json!({"Sid": "PassRolesToBatch", "Effect": "Allow",
            "Action": "iam:PassRole", "Resource": batch_roles,
            "Condition": {"StringEquals": {"iam:PassedToService": [
                "batch.amazonaws.com", "ecs-tasks.amazonaws.com", "ec2.amazonaws.com"]}}}));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(text: &str) -> DesiredGraph {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("stack.yaml"),
            "apiVersion: scar/v1alpha1\nkind: Stack\nmetadata:\n  name: demo\nspec:\n  region: us-east-1\n  role:\n    managed: true\n    permissionsBoundary: arn:aws:iam::123456789012:policy/boundary\n",
        )
        .expect("write");
        std::fs::write(dir.path().join("f.yaml"), text).expect("write");
        let (set, diags) = crate::manifest::check::validate_dir(dir.path());
        assert!(!diags.has_errors(), "{diags:?}");
        crate::model::build(&set).expect("graph")
    }

    #[test]
    fn the_policy_names_the_stacks_resources_and_no_wildcard_account() {
        let g = graph(
            "apiVersion: scar/v1alpha1\nkind: Function\nmetadata:\n  name: thumbs\nspec:\n  image: grycap/cowsay\n  input:\n    - bucket: demo-in\n",
        );
        let p = policy(&g, "123456789012", Operation::Apply);
        let text = p.to_string();
        assert!(text.contains("arn:aws:lambda:us-east-1:123456789012:function:thumbs"));
        assert!(text.contains("arn:aws:s3:::demo-in"));
        assert!(text.contains("arn:aws:iam::123456789012:role/scar-demo-exec"));
        assert!(text.contains("iam:PermissionsBoundary"));
        assert!(text.contains("iam:PassedToService"));
        assert!(!text.contains(":*:"), "a wildcard account: {text}");
        assert!(!text.contains(ACCOUNT));
        let read = policy(&g, "123456789012", Operation::Plan).to_string();
        assert!(!read.contains("lambda:CreateFunction"));
        assert!(!read.contains("iam:PassRole"));
        assert!(read.contains("lambda:GetFunction"));
        // A failure policy is read on every plan, written and removed on apply.
        assert!(read.contains("lambda:GetFunctionEventInvokeConfig"));
        assert!(!read.contains("lambda:PutFunctionEventInvokeConfig"));
        assert!(text.contains("lambda:PutFunctionEventInvokeConfig"));
        assert!(text.contains("lambda:DeleteFunctionEventInvokeConfig"));
        // Failures, retry, pause and resume: the records and holding the functions, no more.
        let ops = policy(&g, "123456789012", Operation::Operate);
        let ops_text = ops.to_string();
        assert!(!ops_text.contains("lambda:CreateFunction"));
        assert!(!ops_text.contains("iam:PassRole"));
        let bucket = crate::model::failures::default_bucket("demo", "us-east-1", None);
        let sid = |sid: &str| {
            ops["Statement"]
                .as_array()
                .and_then(|a| a.iter().find(|s| s["Sid"] == sid))
                .cloned()
                .unwrap_or_default()
        };
        assert_eq!(
            sid("SettleFailureRecords")["Resource"],
            serde_json::json!([
                format!("arn:aws:s3:::{bucket}/aws/lambda/async/*"),
                format!("arn:aws:s3:::{bucket}/scar/retrying/*")
            ])
        );
        assert_eq!(
            sid("HoldAndInvokeFunctions")["Resource"],
            serde_json::json!(["arn:aws:lambda:us-east-1:123456789012:function:thumbs"])
        );
    }
}

#[cfg(test)]
mod managed_role {
    use serde_json::Value;

    use crate::model::{DesiredGraph, ResourceKind};

    fn graph(functions: &[&str]) -> DesiredGraph {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("stack.yaml"),
            "apiVersion: scar/v1alpha1\nkind: Stack\nmetadata:\n  name: demo\nspec:\n  region: us-east-1\n  role:\n    managed: true\n",
        )
        .expect("write");
        for (i, f) in functions.iter().enumerate() {
            std::fs::write(dir.path().join(format!("f{i}.yaml")), f).expect("write");
        }
        let (set, diags) = crate::manifest::check::validate_dir(dir.path());
        assert!(!diags.has_errors(), "{diags:?}");
        crate::model::build(&set).expect("graph")
    }

    fn role_policy(g: &DesiredGraph) -> String {
        g.resources
            .iter()
            .find(|r| r.address.kind == ResourceKind::IamRole)
            .and_then(|r| r.attrs.get("policy"))
            .map(Value::to_string)
            .unwrap_or_default()
    }

    #[test]
    fn managed_role_wider_than_it_says() {
        let g = graph(&[
            "apiVersion: scar/v1alpha1\nkind: Function\nmetadata:\n  name: mine\nspec:\n  image: grycap/cowsay\n  environment:\n    API_TOKEN:\n      secretRef:\n        secretsManager: prod/api\n  input:\n    - bucket: demo-mine\n",
            "apiVersion: scar/v1alpha1\nkind: Function\nmetadata:\n  name: own-role\nspec:\n  image: grycap/cowsay\n  role: arn:aws:iam::123456789012:role/their-own\n  environment:\n    DB_PASSWORD:\n      secretRef:\n        ssm: /other/db\n  input:\n    - bucket: demo-theirs\n",
        ]);
        let p = role_policy(&g);
        // No ARN in `*` accounts: the account is filled in when the plan reads it.
        assert!(!p.contains(":*:"), "{p}");
        // A Secrets Manager name with AWS's six-character suffix, not `-*`.
        assert!(p.contains("secret:prod/api-??????"), "{p}");
        assert!(!p.contains("prod/api-*"), "{p}");
        // A function that brings its own role adds nothing to the managed one.
        assert!(!p.contains("demo-theirs"), "{p}");
        assert!(!p.contains("/other/db"), "{p}");
        assert!(!p.contains("/aws/lambda/own-role"), "{p}");
        assert!(p.contains("demo-mine"), "{p}");
    }
}
