//! Ownership, checked again at the moment a step writes: the plan read it, but time passed
//! (and a saved plan may have been edited), so every update and delete first reads the
//! resource's tags once more and refuses to touch what the stack does not own.

use std::collections::BTreeMap;

use serde_json::Map;

use super::AwsCloud;
use super::execute::view;
use crate::cloud::{CloudError, ErrorKind};
use crate::manifest::names;
use crate::model::attrs::id;
use crate::model::live::Owner;
use crate::model::{ResourceKind, http};
use crate::plan::{Action, Step};

fn refused(step: &Step, stack: &str, owner: &Owner) -> CloudError {
    let whose = match owner {
        Owner::ThisStack => format!("stack `{stack}`"),
        Owner::OtherStack(s) => format!("scar stack `{s}`"),
        Owner::OtherRegion(r) => format!("the stack `{stack}` of region {r}"),
        Owner::Unowned => "nobody scar knows (no scar tags)".into(),
        Owner::Unknown(why) => format!("an owner scar cannot read ({why})"),
    };
    CloudError::new(
        ErrorKind::Precondition,
        "ownership check",
        format!(
            "{} belongs to {whose}, not to stack `{stack}`, when the step was about to {}; nothing was written to it",
            step.address,
            step.action.json_actions().join(" and ")
        ),
    )
}

impl AwsCloud {
    /// Refuses `step` unless the resource it updates or deletes is `stack`'s right now. A
    /// create needs no check (the resource does not exist: AWS refuses a second one); a step
    /// that another step performs (`covered_by`) makes no call.
    ///
    /// # Errors
    /// When the resource is not the stack's, or its tags cannot be read.
    pub(super) async fn check_still_owned(
        &self,
        stack: &str,
        step: &Step,
    ) -> Result<(), CloudError> {
        if matches!(step.action, Action::NoOp | Action::Create) || step.covered_by.is_some() {
            return Ok(());
        }
        let empty = Map::new();
        let before = step.before.as_ref().unwrap_or(&empty);
        let owner = match step.address.kind {
            // Not resources of their own: the image lives in the stack's repository and is
            // recorded on its function, whose own step is checked.
            ResourceKind::FunctionImage => return Ok(()),
            ResourceKind::Function => self.function_owner(stack, &step.address.name).await?,
            ResourceKind::LogGroup => {
                let function = self.function_owner(stack, &step.address.name).await?;
                if function == Owner::ThisStack {
                    Owner::ThisStack
                } else if step.adopts {
                    // Taken over only for a function of the stack: that is what made it.
                    function
                } else {
                    let g: id::Named = view(&step.address, before)?;
                    self.log_group_tags_owner(stack, &g.name).await?
                }
            }
            ResourceKind::Bucket => self.bucket_owner(stack, &step.address.name).await?,
            ResourceKind::IamRole => self.role_owner(stack, &step.address.name).await?,
            ResourceKind::LambdaPermission => {
                let p: id::Statement = view(&step.address, before)?;
                let sid = &p.statement_id;
                let ours = *sid == http::statement_id(stack)
                    || sid.starts_with(&format!("scar-{stack}-s3-"));
                if !ours {
                    return Err(refused(step, stack, &Owner::Unowned));
                }
                self.function_owner(stack, &p.function).await?
            }
            ResourceKind::S3Trigger => {
                let t: id::Trigger = view(&step.address, before)?;
                let ours = names::trigger_id_is_stacks(stack, &t.id, &t.function_arn);
                if ours {
                    Owner::ThisStack
                } else {
                    Owner::Unowned
                }
            }
            ResourceKind::BatchComputeEnvironment
            | ResourceKind::BatchJobQueue
            | ResourceKind::BatchJobDefinition => {
                let b: id::Named = view(&step.address, before)?;
                self.batch_owner(stack, step.address.kind, &b.name).await?
            }
            ResourceKind::HttpApi => {
                let a: id::Api = view(&step.address, before)?;
                self.api_owner(stack, &a.id).await?
            }
            ResourceKind::ImageRepository => self.repository_owner(stack).await?,
        };
        if owner == Owner::ThisStack {
            Ok(())
        } else {
            Err(refused(step, stack, &owner))
        }
    }

    /// The owner of function `name`; a function that is gone is nobody's.
    pub(super) async fn function_owner(
        &self,
        stack: &str,
        name: &str,
    ) -> Result<Owner, CloudError> {
        let Some(out) = self.get_function(name).await? else {
            return Ok(Owner::Unowned);
        };
        if let Some(e) = out.tags_error() {
            return Ok(Owner::Unknown(format!(
                "{}: {}",
                e.error_code(),
                e.message()
            )));
        }
        let t: BTreeMap<String, String> = out
            .tags()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        Ok(Owner::from_tags(stack, &t))
    }

    async fn log_group_tags_owner(&self, stack: &str, name: &str) -> Result<Owner, CloudError> {
        let account = self.account_id().await?;
        let arn = format!("arn:aws:logs:{}:{account}:log-group:{name}", self.region);
        let out = self
            .call(&arn, "logs:ListTagsForResource", || {
                self.logs.list_tags_for_resource().resource_arn(&arn).send()
            })
            .await?;
        let t: BTreeMap<String, String> = out
            .tags()
            .map(|m| m.clone().into_iter().collect())
            .unwrap_or_default();
        Ok(Owner::from_tags(stack, &t))
    }

    async fn bucket_owner(&self, stack: &str, bucket: &str) -> Result<Owner, CloudError> {
        let tagging = self
            .call(bucket, "s3:GetBucketTagging", || {
                self.s3.get_bucket_tagging().bucket(bucket).send()
            })
            .await;
        Ok(match tagging {
            Ok(o) => Owner::from_tags(
                stack,
                &o.tag_set()
                    .iter()
                    .map(|t| (t.key().to_owned(), t.value().to_owned()))
                    .collect(),
            ),
            Err(e) if e.kind == ErrorKind::NotFound => Owner::Unowned,
            Err(e) => return Err(e),
        })
    }

    async fn role_owner(&self, stack: &str, name: &str) -> Result<Owner, CloudError> {
        let out = self
            .call(name, "iam:GetRole", || {
                self.iam.get_role().role_name(name).send()
            })
            .await?;
        let t: BTreeMap<String, String> = out
            .role()
            .map(|r| {
                r.tags()
                    .iter()
                    .map(|t| (t.key().to_owned(), t.value().to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Owner::from_global_tags(stack, &self.region, &t))
    }

    async fn batch_owner(
        &self,
        stack: &str,
        kind: ResourceKind,
        name: &str,
    ) -> Result<Owner, CloudError> {
        let tags: Option<std::collections::HashMap<String, String>> = match kind {
            ResourceKind::BatchComputeEnvironment => self
                .call_limited(
                    Some(&self.limits.batch),
                    name,
                    "batch:DescribeComputeEnvironments",
                    || {
                        self.batch
                            .describe_compute_environments()
                            .compute_environments(name)
                            .send()
                    },
                )
                .await?
                .compute_environments()
                .first()
                .and_then(|c| c.tags().cloned()),
            ResourceKind::BatchJobQueue => self
                .call_limited(
                    Some(&self.limits.batch),
                    name,
                    "batch:DescribeJobQueues",
                    || self.batch.describe_job_queues().job_queues(name).send(),
                )
                .await?
                .job_queues()
                .first()
                .and_then(|q| q.tags().cloned()),
            _ => {
                let out = self
                    .call_limited(
                        Some(&self.limits.batch),
                        name,
                        "batch:DescribeJobDefinitions",
                        || {
                            self.batch
                                .describe_job_definitions()
                                .job_definition_name(name)
                                .status("ACTIVE")
                                .send()
                        },
                    )
                    .await?;
                out.job_definitions()
                    .iter()
                    .max_by_key(|d| d.revision().unwrap_or_default())
                    .and_then(|d| d.tags().cloned())
            }
        };
        Ok(Owner::from_tags(
            stack,
            &tags.unwrap_or_default().into_iter().collect(),
        ))
    }

    async fn api_owner(&self, stack: &str, id: &str) -> Result<Owner, CloudError> {
        let out = self
            .call_limited(
                Some(&self.limits.apigateway),
                id,
                "apigateway:GetRestApi",
                || self.apigateway.get_rest_api().rest_api_id(id).send(),
            )
            .await?;
        let t: BTreeMap<String, String> = out
            .tags()
            .map(|m| m.clone().into_iter().collect())
            .unwrap_or_default();
        Ok(Owner::from_tags(stack, &t))
    }

    async fn repository_owner(&self, stack: &str) -> Result<Owner, CloudError> {
        let name = names::derive(stack, "x").ecr_repository;
        let Some((arn, _)) = self.describe_repository(&name).await? else {
            return Ok(Owner::Unowned);
        };
        Ok(Owner::from_tags(stack, &self.repository_tags(&arn).await?))
    }
}
