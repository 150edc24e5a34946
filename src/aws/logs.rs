//! CloudWatch Logs: the functions' log groups.

use std::collections::{BTreeMap, BTreeSet};

use super::kind::{Adapter, Adopt, Check, Read, Write, gone_is_fine, view};
use super::page::pages;
use super::{AwsCloud, classify};
use crate::cloud::retry::with_retry;
use crate::cloud::{CloudError, ErrorKind};
use crate::manifest::names;
use crate::model::attrs::{LogGroupAttrs, id, to_attrs};
use crate::model::live::{LiveResource, Owner};
use crate::model::{Address, ResourceKind, short_hash};
use crate::plan::Action;

impl AwsCloud {
    /// `/aws/lambda/<function>` log groups, listed in bulk. A log group of a function the stack
    /// owns is the stack's (Lambda creates it on first invocation); any other one has its tags
    /// read.
    pub(super) async fn read_log_groups(
        &self,
        stack: &str,
        functions: &BTreeSet<String>,
        function_owner: &BTreeMap<String, Owner>,
    ) -> Result<Vec<(Address, LiveResource)>, CloudError> {
        let wanted: BTreeMap<String, String> = functions
            .iter()
            .map(|f| (names::derive(stack, f).log_group, f.clone()))
            .collect();
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let mut found = Vec::new();
        let pages = pages(
            "logs:DescribeLogGroups",
            |token| async move {
                with_retry(self.backoff, "log groups", || {
                    let token = token.clone();
                    async move {
                        self.logs
                            .describe_log_groups()
                            .log_group_name_prefix("/aws/lambda/")
                            .set_next_token(token)
                            .send()
                            .await
                            .map_err(|e| classify("logs:DescribeLogGroups", &e))
                    }
                })
                .await
            },
            |page| page.next_token(),
        )
        .await?;
        for page in pages {
            for g in page.log_groups() {
                let Some(name) = g.log_group_name() else {
                    continue;
                };
                let Some(function) = wanted.get(name) else {
                    continue;
                };
                let owner = match function_owner.get(function) {
                    Some(Owner::ThisStack) => Owner::ThisStack,
                    _ => self.log_group_owner(stack, g.arn()).await,
                };
                let attrs = to_attrs(&LogGroupAttrs {
                    name: name.to_owned(),
                    retention_days: g.retention_in_days(),
                    tags: BTreeMap::new(),
                });
                found.push((
                    Address::new(ResourceKind::LogGroup, function.clone()),
                    LiveResource {
                        fingerprint: Some(short_hash(&format!(
                            "{name}|{:?}",
                            g.retention_in_days()
                        ))),
                        attrs,
                        owner,
                        outputs: BTreeMap::new(),
                    },
                ));
            }
        }
        Ok(found)
    }

    /// The owner of a log group read in bulk, by its ARN as `DescribeLogGroups` gives it.
    pub(super) async fn log_group_owner(&self, stack: &str, arn: Option<&str>) -> Owner {
        let Some(arn) = arn else {
            return Owner::Unknown("the log group has no ARN".into());
        };
        match self.log_group_tags(arn.trim_end_matches(":*")).await {
            Ok(t) => Owner::from_tags(stack, &t),
            Err(e) => Owner::Unknown(e.to_string()),
        }
    }

    async fn log_group_tags(&self, arn: &str) -> Result<BTreeMap<String, String>, CloudError> {
        let out = self
            .call(arn, "logs:ListTagsForResource", || {
                self.logs.list_tags_for_resource().resource_arn(arn).send()
            })
            .await?;
        Ok(out
            .tags()
            .map(|m| m.clone().into_iter().collect())
            .unwrap_or_default())
    }

    fn log_group_arn(&self, account: &str, name: &str) -> String {
        format!("arn:aws:logs:{}:{account}:log-group:{name}", self.region)
    }

    async fn tag_log_group(
        &self,
        arn: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        self.call(arn, "logs:TagResource", || {
            self.logs
                .tag_resource()
                .resource_arn(arn)
                .set_tags(Some(tags.clone().into_iter().collect()))
                .send()
        })
        .await?;
        Ok(())
    }

    pub(super) async fn put_log_group(
        &self,
        stack: &str,
        account: &str,
        a: &LogGroupAttrs,
        tags: &BTreeMap<String, String>,
        create: bool,
    ) -> Result<(), CloudError> {
        let name = a.name.clone();
        let mut tag_after = !create;
        if create {
            let r = self
                .call(&name, "logs:CreateLogGroup", || {
                    self.logs
                        .create_log_group()
                        .log_group_name(&name)
                        .set_tags(Some(tags.clone().into_iter().collect()))
                        .send()
                })
                .await;
            match r {
                Ok(_) => {}
                // Lambda creates the group on first invocation: it belongs to our function,
                // and is taken over only when that function exists and is the stack's.
                Err(e) if e.kind == ErrorKind::AlreadyExists => {
                    let function = name.strip_prefix("/aws/lambda/").unwrap_or(&name);
                    if self.function_owner(stack, function).await? != Owner::ThisStack {
                        return Err(CloudError::new(
                            ErrorKind::AlreadyExists,
                            "logs:CreateLogGroup",
                            format!(
                                "log group {name} appeared since the plan, and its function is not stack `{stack}`'s: it is someone else's, and was left as it is"
                            ),
                        ));
                    }
                    tag_after = true;
                }
                Err(e) => return Err(e),
            }
        }
        if tag_after {
            self.tag_log_group(&self.log_group_arn(account, &name), tags)
                .await?;
        }
        match a.retention_days {
            Some(days) => {
                self.call(&name, "logs:PutRetentionPolicy", || {
                    self.logs
                        .put_retention_policy()
                        .log_group_name(&name)
                        .retention_in_days(days)
                        .send()
                })
                .await?;
            }
            // Kept forever: what a group without a retention policy does.
            None => {
                self.call(&name, "logs:DeleteRetentionPolicy", || {
                    self.logs
                        .delete_retention_policy()
                        .log_group_name(&name)
                        .send()
                })
                .await?;
            }
        }
        Ok(())
    }

    pub(super) async fn delete_log_group(&self, name: &str) -> Result<(), CloudError> {
        let r = self
            .call(name, "logs:DeleteLogGroup", || {
                self.logs.delete_log_group().log_group_name(name).send()
            })
            .await;
        gone_is_fine(r)
    }
}

/// The `log_group` kind: `/aws/lambda/<function>`, which Lambda also makes on a first
/// invocation.
pub(super) struct LogGroup;

impl Adapter for LogGroup {
    const READ: Read = Read::LogGroups;

    async fn write(cloud: &AwsCloud, w: &Write<'_>) -> Result<(), CloudError> {
        if w.step.action == Action::Delete {
            let g: id::Named = view(&w.step.address, w.before)?;
            return cloud.delete_log_group(&g.name).await;
        }
        let g: LogGroupAttrs = view(&w.step.address, w.after)?;
        cloud
            .put_log_group(
                w.stack,
                w.account,
                &g,
                w.tags,
                w.step.action == Action::Create,
            )
            .await
    }

    async fn owner(cloud: &AwsCloud, c: &Check<'_>) -> Result<Owner, CloudError> {
        let function = cloud.function_owner(c.stack, &c.step.address.name).await?;
        if function == Owner::ThisStack {
            Ok(Owner::ThisStack)
        } else if c.step.adopts {
            // Taken over only for a function of the stack: that is what made it.
            Ok(function)
        } else {
            let g: id::Named = view(&c.step.address, c.before)?;
            let account = cloud.account_id().await?;
            let t = cloud
                .log_group_tags(&cloud.log_group_arn(&account, &g.name))
                .await?;
            Ok(Owner::from_tags(c.stack, &t))
        }
    }

    async fn adopt(cloud: &AwsCloud, a: &Adopt<'_>) -> Result<(), CloudError> {
        let g: id::Named = view(a.address, a.wanted)?;
        cloud
            .tag_log_group(&cloud.log_group_arn(a.account, &g.name), a.ours)
            .await
    }
}
