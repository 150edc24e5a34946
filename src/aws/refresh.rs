//! Live reads: what the plan needs and nothing more, concurrently, inside AWS's quotas.
//!
//! Per function: `GetFunction` (configuration, image and tags in one call) and `GetPolicy`
//! (its S3 permission statements, which also name every bucket it may hold triggers in). Per
//! bucket: location, tags and notification configuration. In bulk: the tagging API for what
//! the stack owns, and `/aws/lambda/` log groups. A no-op plan of N functions makes 2N calls
//! plus a few per bucket and per page, and no write. Each service's reads live with its
//! writes (`lambda`, `s3`, `iam`, `logs`, `batch`, `http`, `image`); this module orders them.

use std::collections::{BTreeMap, BTreeSet};

use futures::stream::{self, StreamExt};

use super::kind::{Read, read_of, view};
use super::lambda::FunctionRead;
use super::page::pages;
use super::{AwsCloud, classify};
use crate::cloud::retry::with_retry;
use crate::cloud::{CloudError, ErrorKind};
use crate::model::attrs::{Attrs, ComputeEnvAttrs, PermissionAttrs, id};
use crate::model::live::{DefaultNetwork, LiveResource, LiveState, Owner};
use crate::model::{Address, DesiredGraph, ResourceKind, tags};

/// Reads in flight at once.
pub(super) const READ_CONCURRENCY: usize = 32;

/// True for a function whose last apply recorded a failure policy (one scar may have to
/// remove).
fn records_invoke_config(f: &LiveResource) -> bool {
    id::Tagged::read(&f.attrs)
        .ok()
        .is_some_and(|t| t.tags.get(tags::INVOKE_CONFIG).map(String::as_str) == Some("true"))
}

/// False only for a function the stack owns whose last apply recorded no S3 triggers: its
/// resource policy holds no scar statement, so `GetPolicy` is skipped.
pub(super) fn may_hold_statements(f: &LiveResource) -> bool {
    let recorded = id::Tagged::read(&f.attrs)
        .ok()
        .and_then(|t| t.tags.get(tags::S3_INVOKE).cloned());
    !(f.owner == Owner::ThisStack && recorded.as_deref() == Some("false"))
}

/// Whether the manifests want anything `read` finds.
fn wants(desired: &DesiredGraph, read: Read) -> bool {
    desired
        .resources
        .iter()
        .any(|r| read_of(r.address.kind) == read)
}

/// A service the manifests may not use at all: when they do not, and the credentials may not
/// list it, the plan goes on without it (a warning says what it cannot see: resources a
/// former version of the stack made there are then neither seen nor pruned, never harmed).
pub(super) fn optional_read<T: Default>(
    read: Read,
    wanted: bool,
    found: Result<T, CloudError>,
) -> Result<T, CloudError> {
    match found {
        Err(e) if !wanted && e.kind == ErrorKind::AccessDenied => {
            let (service, permissions) = read.service();
            tracing::warn!(
                service,
                error = %e,
                "cannot list {service} resources; the manifests use none, so the plan goes on without them. Grant {permissions} so scar can prune what an earlier version of the stack made there"
            );
            Ok(T::default())
        }
        other => other,
    }
}

impl crate::apply::Reader for AwsCloud {
    async fn refresh(&self, desired: &DesiredGraph) -> Result<LiveState, CloudError> {
        AwsCloud::refresh(self, desired).await
    }
}

impl AwsCloud {
    /// Reads everything `desired` names and everything its stack owns.
    ///
    /// # Errors
    /// A failed read that retries did not cure, or an account that is not the stack's.
    pub async fn refresh(&self, desired: &DesiredGraph) -> Result<LiveState, CloudError> {
        let account = self.account_id().await?;
        if let Some(want) = &desired.account_id
            && *want != account
        {
            return Err(CloudError::new(
                ErrorKind::AccessDenied,
                "account guard",
                format!(
                    "the credentials are for account {account}, but stack `{}` is guarded to {want}; nothing was read or written",
                    desired.stack
                ),
            ));
        }
        let stack = desired.stack.as_str();
        let account = account.as_str();
        // The services are independent of each other: read at once. Lambda's reads lead to
        // the buckets (a permission names its bucket) and the log groups.
        let (lambda, role, batch, apis, repository, network, queues) = futures::join!(
            self.read_functions_and_buckets(desired, account),
            self.read_role(stack),
            self.read_batch(stack, desired),
            self.read_apis(stack, account, desired),
            self.read_image_repository(stack),
            self.default_network_if_needed(desired),
            self.read_queues(stack, desired),
        );
        let mut live = lambda?;
        live.account = Some(account.to_owned());
        if let Some(role) = role? {
            live.resources.insert(role.0, role.1);
        }
        live.default_network = network?;
        for (read, found) in [
            (Read::Batch, batch),
            (Read::Apis, apis),
            (Read::Repository, repository),
            (Read::Queues, queues),
        ] {
            live.resources
                .extend(optional_read(read, wants(desired, read), found)?);
        }
        self.resolve_bases(desired, &mut live).await?;
        self.read_image_contents(desired, &mut live).await;
        Ok(live)
    }

    /// The stack's functions, their permission statements and log groups, and the buckets
    /// they or the manifests name, with those buckets' triggers.
    async fn read_functions_and_buckets(
        &self,
        desired: &DesiredGraph,
        account: &str,
    ) -> Result<LiveState, CloudError> {
        let stack = desired.stack.as_str();
        let (owned_functions, owned_buckets) = self.discover(stack).await?;
        let mut functions: BTreeSet<String> = owned_functions;
        let mut buckets: BTreeSet<String> = owned_buckets;
        for r in &desired.resources {
            match r.address.kind {
                ResourceKind::Function => {
                    functions.insert(r.address.name.clone());
                }
                ResourceKind::Bucket => {
                    buckets.insert(r.address.name.clone());
                }
                _ => {}
            }
        }
        let with_triggers: BTreeSet<String> = desired
            .resources
            .iter()
            .filter(|r| r.address.kind == ResourceKind::LambdaPermission)
            .map(|r| Ok(view::<id::Statement>(&r.address, &r.attrs)?.function))
            .collect::<Result<_, CloudError>>()?;
        let with_triggers = &with_triggers;
        let with_policy: BTreeSet<&str> = desired
            .resources
            .iter()
            .filter(|r| r.address.kind == ResourceKind::InvokeConfig)
            .map(|r| r.address.name.as_str())
            .collect();
        let with_policy = &with_policy;
        let mut live = LiveState::default();
        let reads: Vec<Result<FunctionRead, CloudError>> = stream::iter(functions.iter().cloned())
            .map(|name| async move {
                let f = self.read_function(stack, account, &name).await?;
                let mut perms = match &f {
                    Some(f) if with_triggers.contains(&name) || may_hold_statements(f) => {
                        self.read_permissions(stack, &name).await?
                    }
                    _ => Vec::new(),
                };
                if let Some(f) = &f
                    && (with_policy.contains(name.as_str()) || records_invoke_config(f))
                {
                    perms.extend(self.read_invoke_config(&name, &f.owner).await?);
                }
                Ok((name, f, perms))
            })
            .buffer_unordered(READ_CONCURRENCY)
            .collect()
            .await;
        let mut function_owner: BTreeMap<String, Owner> = BTreeMap::new();
        for r in reads {
            let (name, f, perms) = r?;
            if let Some(f) = f {
                function_owner.insert(name.clone(), f.owner.clone());
                live.resources
                    .insert(Address::new(ResourceKind::Function, name), f);
            }
            for (address, p) in perms {
                if address.kind == ResourceKind::LambdaPermission {
                    let read: PermissionAttrs = view(&address, &p.attrs)?;
                    if let Some(bucket) = read.source_arn.strip_prefix("arn:aws:s3:::") {
                        buckets.insert(bucket.to_owned());
                    }
                }
                live.resources.insert(address, p);
            }
        }
        live.split_image_records();
        let buckets = &buckets;
        let (groups, bucket_reads) = futures::join!(
            self.read_log_groups(stack, &functions, &function_owner),
            stream::iter(buckets.iter().cloned())
                .map(|b| async move { self.read_bucket(stack, &b, desired).await })
                .buffer_unordered(READ_CONCURRENCY)
                .collect::<Vec<_>>(),
        );
        live.resources.extend(groups?);
        for r in bucket_reads {
            live.resources.extend(r?);
        }
        Ok(live)
    }

    /// A compute environment that names no network gets the default VPC's, as the Batch
    /// console offers it: read here, filled in by the plan, shown there.
    async fn default_network_if_needed(
        &self,
        desired: &DesiredGraph,
    ) -> Result<Option<DefaultNetwork>, CloudError> {
        let mut needs_network = false;
        for r in &desired.resources {
            if r.address.kind == ResourceKind::BatchComputeEnvironment {
                let c: ComputeEnvAttrs = view(&r.address, &r.attrs)?;
                needs_network |= c.subnets.is_empty() || c.security_groups.is_empty();
            }
        }
        if needs_network {
            self.default_network().await
        } else {
            Ok(None)
        }
    }

    /// Functions and buckets tagged `scar:stack=<stack>`, through the Resource Groups Tagging
    /// API. Failing to list is an error: without it, prune could miss what the stack owns.
    pub(super) async fn discover(
        &self,
        stack: &str,
    ) -> Result<(BTreeSet<String>, BTreeSet<String>), CloudError> {
        let mut functions = BTreeSet::new();
        let mut buckets = BTreeSet::new();
        let pages = pages(
            "tag:GetResources",
            |token| async move {
                with_retry(self.backoff, "owned resources", || {
                    let token = token.clone();
                    async move {
                        self.tagging
                            .get_resources()
                            .tag_filters(
                                aws_sdk_resourcegroupstagging::types::TagFilter::builder()
                                    .key(tags::STACK)
                                    .values(stack)
                                    .build(),
                            )
                            .resource_type_filters("lambda:function")
                            .resource_type_filters("s3")
                            // A page is cut at this many tags (100 by default), and a function
                            // carries up to a dozen of scar's: the most per page means the
                            // fewest pages.
                            .tags_per_page(500)
                            .set_pagination_token(token)
                            .send()
                            .await
                            .map_err(|e| classify("tag:GetResources", &e))
                    }
                })
                .await
            },
            |page| page.pagination_token().filter(|t| !t.is_empty()),
        )
        .await?;
        for page in pages {
            for m in page.resource_tag_mapping_list() {
                let Some(arn) = m.resource_arn() else {
                    continue;
                };
                if let Some(name) = crate::manifest::names::function_of_arn(arn) {
                    functions.insert(name.to_owned());
                } else if let Some(b) = arn.strip_prefix("arn:aws:s3:::") {
                    buckets.insert(b.to_owned());
                }
            }
        }
        Ok((functions, buckets))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unused_service_may_be_unreadable_a_used_one_may_not() {
        let denied = || -> Result<Vec<u8>, CloudError> {
            Err(CloudError::new(
                ErrorKind::AccessDenied,
                "batch:Describe",
                "no",
            ))
        };
        assert_eq!(optional_read(Read::Batch, false, denied()), Ok(Vec::new()));
        assert!(optional_read(Read::Batch, true, denied()).is_err());
        let broken = Err(CloudError::new(
            ErrorKind::Transient,
            "batch:Describe",
            "503",
        ));
        assert!(optional_read::<Vec<u8>>(Read::Batch, false, broken).is_err());
    }
}
