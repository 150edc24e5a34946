//! CloudWatch Logs: the functions' log groups.

use std::collections::{BTreeMap, BTreeSet};

use super::execute::gone_is_fine;
use super::page::pages;
use super::{AwsCloud, classify};
use crate::cloud::retry::with_retry;
use crate::cloud::{CloudError, ErrorKind};
use crate::manifest::names;
use crate::model::attrs::{LogGroupAttrs, to_attrs};
use crate::model::live::{LiveResource, LiveState, Owner};
use crate::model::{Address, ResourceKind, short_hash};

impl AwsCloud {
    /// `/aws/lambda/<function>` log groups, listed in bulk. A log group of a function the stack
    /// owns is the stack's (Lambda creates it on first invocation); any other one has its tags
    /// read.
    pub(super) async fn read_log_groups(
        &self,
        stack: &str,
        functions: &BTreeSet<String>,
        function_owner: &BTreeMap<String, Owner>,
        live: &mut LiveState,
    ) -> Result<(), CloudError> {
        let wanted: BTreeMap<String, String> = functions
            .iter()
            .map(|f| (names::derive(stack, f).log_group, f.clone()))
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
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
                live.resources.insert(
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
                );
            }
        }
        Ok(())
    }

    pub(super) async fn log_group_owner(&self, stack: &str, arn: Option<&str>) -> Owner {
        let Some(arn) = arn else {
            return Owner::Unknown("the log group has no ARN".into());
        };
        let arn = arn.trim_end_matches(":*");
        let out = self
            .call(arn, "logs:ListTagsForResource", || {
                self.logs.list_tags_for_resource().resource_arn(arn).send()
            })
            .await;
        match out {
            Ok(o) => {
                let t: BTreeMap<String, String> = o
                    .tags()
                    .map(|m| m.clone().into_iter().collect())
                    .unwrap_or_default();
                Owner::from_tags(stack, &t)
            }
            Err(e) => Owner::Unknown(e.to_string()),
        }
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
            let arn = format!("arn:aws:logs:{}:{account}:log-group:{name}", self.region);
            self.call(&name, "logs:TagResource", || {
                self.logs
                    .tag_resource()
                    .resource_arn(&arn)
                    .set_tags(Some(tags.clone().into_iter().collect()))
                    .send()
            })
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
