//! Live reads: what the plan needs and nothing more, concurrently, inside AWS's quotas.
//!
//! Per function: `GetFunction` (configuration, image and tags in one call) and `GetPolicy`
//! (its S3 permission statements, which also name every bucket it may hold triggers in). Per
//! bucket: location, tags and notification configuration. In bulk: the tagging API for what
//! the stack owns, and `/aws/lambda/` log groups. A no-op plan of N functions makes 2N calls
//! plus a few per bucket and per page, and no write.

use std::collections::{BTreeMap, BTreeSet};

use futures::stream::{self, StreamExt};
use serde_json::{Map, Value, json};

use super::{AwsCloud, classify};
use crate::cloud::retry::with_retry;
use crate::cloud::{CloudError, ErrorKind};
use crate::manifest::names;
use crate::model::live::{LiveResource, LiveState, Owner};
use crate::model::{Address, DesiredGraph, ResourceKind, short_hash, tags};

/// A function, if it exists, and the permission statements scar wrote on it.
type FunctionRead = (String, Option<LiveResource>, Vec<(Address, LiveResource)>);

/// Marks a function fingerprint that is a Lambda RevisionId, usable as a write precondition.
pub(super) const REVISION_PREFIX: &str = "rev:";

/// Reads in flight at once.
const READ_CONCURRENCY: usize = 32;

/// The owner a tag map says.
pub(super) fn owner_of(stack: &str, t: &BTreeMap<String, String>) -> Owner {
    match t.get(tags::STACK) {
        // Both tags, or it is not ours: a hand-copied `scar:stack` tag does not make a
        // resource prunable.
        Some(s) if t.get(tags::MANAGED_BY).map(String::as_str) != Some("scar") => {
            let _ = s;
            Owner::Unowned
        }
        Some(s) if s == stack => Owner::ThisStack,
        Some(s) => Owner::OtherStack(s.clone()),
        None => Owner::Unowned,
    }
}

/// False only for a function the stack owns whose last apply recorded no S3 triggers: its
/// resource policy holds no scar statement, so `GetPolicy` is skipped.
fn may_hold_statements(f: &LiveResource) -> bool {
    let recorded = f
        .attrs
        .get("tags")
        .and_then(|t| t.get(tags::S3_INVOKE))
        .and_then(Value::as_str);
    !(f.owner == Owner::ThisStack && recorded == Some("false"))
}

pub(super) fn tag_value(t: &BTreeMap<String, String>) -> Value {
    json!(t)
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
        let with_triggers: BTreeSet<&str> = desired
            .resources
            .iter()
            .filter(|r| r.address.kind == ResourceKind::LambdaPermission)
            .filter_map(|r| r.attrs.get("function").and_then(Value::as_str))
            .collect();
        let with_triggers = &with_triggers;
        let mut live = LiveState {
            account: Some(account.to_owned()),
            ..LiveState::default()
        };
        let reads: Vec<Result<FunctionRead, CloudError>> = stream::iter(functions.iter().cloned())
            .map(|name| async move {
                let f = self.read_function(stack, account, &name).await?;
                let perms = match &f {
                    Some(f) if with_triggers.contains(name.as_str()) || may_hold_statements(f) => {
                        self.read_permissions(stack, &name).await?
                    }
                    _ => Vec::new(),
                };
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
                if let Some(bucket) = p
                    .attrs
                    .get("source_arn")
                    .and_then(Value::as_str)
                    .and_then(|a| a.strip_prefix("arn:aws:s3:::"))
                {
                    buckets.insert(bucket.to_owned());
                }
                live.resources.insert(address, p);
            }
        }
        live.split_image_records();
        self.read_log_groups(stack, &functions, &function_owner, &mut live)
            .await?;
        let bucket_reads: Vec<Result<Vec<(Address, LiveResource)>, CloudError>> =
            stream::iter(buckets.iter().cloned())
                .map(|b| async move { self.read_bucket(stack, &b, desired).await })
                .buffer_unordered(READ_CONCURRENCY)
                .collect()
                .await;
        for r in bucket_reads {
            live.resources.extend(r?);
        }
        if let Some(role) = self.read_role(stack).await? {
            live.resources.insert(role.0, role.1);
        }
        let wants = |kinds: &[ResourceKind]| {
            desired
                .resources
                .iter()
                .any(|r| kinds.contains(&r.address.kind))
        };
        let batch = self.read_batch(stack, desired).await;
        live.resources.extend(optional_read(
            "Batch",
            "batch:DescribeComputeEnvironments, batch:DescribeJobQueues and batch:DescribeJobDefinitions",
            wants(&[
                ResourceKind::BatchComputeEnvironment,
                ResourceKind::BatchJobQueue,
                ResourceKind::BatchJobDefinition,
            ]),
            batch,
        )?);
        let apis = self.read_apis(stack, account, desired).await;
        live.resources.extend(optional_read(
            "API Gateway",
            "apigateway:GET on /restapis",
            wants(&[ResourceKind::HttpApi]),
            apis,
        )?);
        let repository = self.read_image_repository(stack).await;
        live.resources.extend(optional_read(
            "ECR",
            "ecr:DescribeRepositories and ecr:ListTagsForResource",
            wants(&[ResourceKind::ImageRepository]),
            repository,
        )?);
        self.resolve_bases(desired, &mut live).await?;
        self.read_image_contents(desired, &mut live).await;
        Ok(live)
    }

    /// Functions and buckets tagged `scar:stack=<stack>`, through the Resource Groups Tagging
    /// API. Failing to list is an error: without it, prune could miss what the stack owns.
    async fn discover(
        &self,
        stack: &str,
    ) -> Result<(BTreeSet<String>, BTreeSet<String>), CloudError> {
        let mut functions = BTreeSet::new();
        let mut buckets = BTreeSet::new();
        let mut token: Option<String> = None;
        loop {
            let page = with_retry(self.backoff, "owned resources", || {
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
            .await?;
            for m in page.resource_tag_mapping_list() {
                let Some(arn) = m.resource_arn() else {
                    continue;
                };
                if let Some(name) = arn.split(":function:").nth(1) {
                    functions.insert(name.split(':').next().unwrap_or(name).to_owned());
                } else if let Some(b) = arn.strip_prefix("arn:aws:s3:::") {
                    buckets.insert(b.to_owned());
                }
            }
            token = page
                .pagination_token()
                .filter(|t| !t.is_empty())
                .map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        Ok((functions, buckets))
    }

    async fn read_function(
        &self,
        stack: &str,
        account: &str,
        name: &str,
    ) -> Result<Option<LiveResource>, CloudError> {
        let Some(out) = self.get_function(name).await? else {
            return Ok(None);
        };
        let Some(c) = out.configuration() else {
            return Ok(None);
        };
        let t: BTreeMap<String, String> = out
            .tags()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        let owner = match out.tags_error() {
            Some(e) => Owner::Unknown(format!("{}: {}", e.error_code(), e.message())),
            None => owner_of(stack, &t),
        };
        // Sorted, so the fingerprint hash is the same for the same content.
        let env: BTreeMap<String, Value> = c
            .environment()
            .and_then(|e| e.variables())
            .map(|m| m.iter().map(|(k, v)| (k.clone(), json!(v))).collect())
            .unwrap_or_default();
        let mut env: Map<String, Value> = env.into_iter().collect();
        let script = take_script(&mut env);
        let vpc = c.vpc_config().and_then(|v| {
            let mut subnets: Vec<String> = v.subnet_ids().to_vec();
            let mut groups: Vec<String> = v.security_group_ids().to_vec();
            subnets.sort();
            groups.sort();
            (!subnets.is_empty()).then(|| json!({"subnets": subnets, "security_groups": groups}))
        });
        let file_systems: Vec<Value> = c
            .file_system_configs()
            .iter()
            .map(|f| json!({"arn": f.arn(), "mount_path": f.local_mount_path()}))
            .collect();
        let mut attrs = Map::new();
        attrs.insert(
            "image".into(),
            json!(out.code().and_then(|c| c.image_uri()).unwrap_or_default()),
        );
        attrs.insert("script".into(), json!(script));
        attrs.insert("memory".into(), json!(c.memory_size().unwrap_or_default()));
        attrs.insert("timeout".into(), json!(c.timeout().unwrap_or_default()));
        attrs.insert(
            "ephemeral_storage".into(),
            json!(c.ephemeral_storage().map_or(512, |e| e.size())),
        );
        attrs.insert(
            "architecture".into(),
            json!(c.architectures().first().map_or("x86_64", |a| a.as_str())),
        );
        attrs.insert("role".into(), json!(c.role().unwrap_or_default()));
        attrs.insert(
            "description".into(),
            json!(c.description().unwrap_or_default()),
        );
        attrs.insert("environment".into(), Value::Object(env));
        attrs.insert("vpc".into(), vpc.unwrap_or(Value::Null));
        attrs.insert("file_systems".into(), json!(file_systems));
        attrs.insert("tags".into(), tag_value(&t));
        let arn = c.function_arn().unwrap_or_default().to_owned();
        let mut outputs = BTreeMap::new();
        outputs.insert("arn".into(), json!(arn));
        outputs.insert(
            "account_id".into(),
            json!(arn.split(':').nth(4).unwrap_or(account)),
        );
        // Lambda's RevisionId when the server gives one (moto 5.2.5 does not), else a hash of
        // everything read: either way, a change between plan and apply shows.
        let fingerprint = match c.revision_id() {
            Some(r) => format!("{REVISION_PREFIX}{r}"),
            None => format!(
                "sha:{}",
                short_hash(&Value::Object(attrs.clone()).to_string())
            ),
        };
        Ok(Some(LiveResource {
            attrs,
            owner,
            fingerprint: Some(fingerprint),
            outputs,
        }))
    }

    /// `GetFunction` (configuration, image and tags in one call) within its quota; `None` when
    /// the function does not exist.
    pub(super) async fn get_function(
        &self,
        name: &str,
    ) -> Result<Option<aws_sdk_lambda::operation::get_function::GetFunctionOutput>, CloudError>
    {
        let out = self
            .call_limited(
                Some(&self.limits.get_function),
                name,
                "lambda:GetFunction",
                || self.lambda.get_function().function_name(name).send(),
            )
            .await;
        match out {
            Ok(o) => Ok(Some(o)),
            Err(e) if e.kind == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The function's resource-policy statements that scar wrote (Sid `scar-<stack>-s3-...`).
    async fn read_permissions(
        &self,
        stack: &str,
        function: &str,
    ) -> Result<Vec<(Address, LiveResource)>, CloudError> {
        let out = with_retry(self.backoff, function, || async {
            self.limits.get_policy.acquire().await;
            self.lambda
                .get_policy()
                .function_name(function)
                .send()
                .await
                .map_err(|e| classify("lambda:GetPolicy", &e))
        })
        .await;
        let out = match out {
            Ok(o) => o,
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let policy: Value = out
            .policy()
            .and_then(|p| serde_json::from_str(p).ok())
            .unwrap_or(Value::Null);
        let prefix = format!("scar-{stack}-s3-");
        let api_sid = crate::model::http::statement_id(stack);
        let mut found = Vec::new();
        for st in policy
            .get("Statement")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(sid) = st.get("Sid").and_then(Value::as_str) else {
                continue;
            };
            let name = if sid == api_sid {
                format!("{function}/apigateway")
            } else if let Some(bucket) = sid.strip_prefix(&prefix) {
                format!("{function}/s3:{bucket}")
            } else {
                continue;
            };
            let principal = st
                .get("Principal")
                .and_then(|p| p.get("Service").or(Some(p)))
                .and_then(Value::as_str)
                .unwrap_or_default();
            let cond = st.get("Condition").cloned().unwrap_or(Value::Null);
            let source_arn = cond
                .pointer("/ArnLike/AWS:SourceArn")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let source_account = cond
                .pointer("/StringEquals/AWS:SourceAccount")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let mut attrs = Map::new();
            attrs.insert("function".into(), json!(function));
            attrs.insert("statement_id".into(), json!(sid));
            attrs.insert("principal".into(), json!(principal));
            attrs.insert("source_arn".into(), json!(source_arn));
            attrs.insert("source_account".into(), json!(source_account));
            found.push((
                Address::new(ResourceKind::LambdaPermission, name),
                LiveResource {
                    attrs,
                    owner: Owner::ThisStack,
                    fingerprint: out.revision_id().map(str::to_owned),
                    outputs: BTreeMap::new(),
                },
            ));
        }
        Ok(found)
    }

    /// `/aws/lambda/<function>` log groups, listed in bulk. A log group of a function the stack
    /// owns is the stack's (Lambda creates it on first invocation); any other one has its tags
    /// read.
    async fn read_log_groups(
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
        let mut token: Option<String> = None;
        loop {
            let page = with_retry(self.backoff, "log groups", || {
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
            .await?;
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
                let mut attrs = Map::new();
                attrs.insert("name".into(), json!(name));
                attrs.insert("retention_days".into(), json!(g.retention_in_days()));
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
            token = page.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        Ok(())
    }

    async fn log_group_owner(&self, stack: &str, arn: Option<&str>) -> Owner {
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
                owner_of(stack, &t)
            }
            Err(e) => Owner::Unknown(e.to_string()),
        }
    }

    /// A bucket (exists? where? whose?) and the stack's own entries in its notification
    /// configuration.
    async fn read_bucket(
        &self,
        stack: &str,
        bucket: &str,
        desired: &DesiredGraph,
    ) -> Result<Vec<(Address, LiveResource)>, CloudError> {
        let location = self
            .call(bucket, "s3:GetBucketLocation", || {
                self.s3.get_bucket_location().bucket(bucket).send()
            })
            .await;
        let region = match location {
            Ok(o) => match o.location_constraint().map(|l| l.as_str().to_owned()) {
                Some(r) if !r.is_empty() => r,
                _ => "us-east-1".to_owned(),
            },
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let tagging = self
            .call(bucket, "s3:GetBucketTagging", || {
                self.s3.get_bucket_tagging().bucket(bucket).send()
            })
            .await;
        let (t, owner) = match tagging {
            Ok(o) => {
                let t: BTreeMap<String, String> = o
                    .tag_set()
                    .iter()
                    .map(|t| (t.key().to_owned(), t.value().to_owned()))
                    .collect();
                let owner = owner_of(stack, &t);
                (t, owner)
            }
            Err(e) if e.kind == ErrorKind::NotFound => (BTreeMap::new(), Owner::Unowned),
            Err(e) => (BTreeMap::new(), Owner::Unknown(e.to_string())),
        };
        let mut out = Vec::new();
        let mut attrs = Map::new();
        attrs.insert("name".into(), json!(bucket));
        attrs.insert("region".into(), json!(region));
        attrs.insert("tags".into(), tag_value(&t));
        let address = Address::new(ResourceKind::Bucket, bucket);
        if owner == Owner::ThisStack && desired.get(&address).is_none() {
            attrs.insert("empty".into(), json!(self.is_empty(bucket).await?));
        }
        out.push((
            address,
            LiveResource {
                attrs,
                owner,
                fingerprint: None,
                outputs: BTreeMap::new(),
            },
        ));
        out.extend(self.read_triggers(stack, bucket).await?);
        Ok(out)
    }

    async fn is_empty(&self, bucket: &str) -> Result<bool, CloudError> {
        let o = self
            .call(bucket, "s3:ListObjectsV2", || {
                self.s3.list_objects_v2().bucket(bucket).max_keys(1).send()
            })
            .await?;
        Ok(o.key_count().unwrap_or(0) == 0 && o.contents().is_empty())
    }

    async fn read_triggers(
        &self,
        stack: &str,
        bucket: &str,
    ) -> Result<Vec<(Address, LiveResource)>, CloudError> {
        let Some(config) = self.notifications(bucket).await? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for c in config.lambda_function_configurations() {
            let Some(id) = c
                .id()
                .filter(|id| names::trigger_id_is_stacks(stack, id, c.lambda_function_arn()))
            else {
                continue;
            };
            let mut events: Vec<String> =
                c.events().iter().map(|e| e.as_str().to_owned()).collect();
            events.sort();
            let rules: BTreeMap<String, String> = c
                .filter()
                .and_then(|f| f.key())
                .map(|k| {
                    k.filter_rules()
                        .iter()
                        .map(|r| {
                            (
                                r.name()
                                    .map(|n| n.as_str().to_lowercase())
                                    .unwrap_or_default(),
                                r.value().unwrap_or_default().to_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let mut attrs = Map::new();
            attrs.insert("bucket".into(), json!(bucket));
            attrs.insert("id".into(), json!(id));
            attrs.insert("function_arn".into(), json!(c.lambda_function_arn()));
            attrs.insert("events".into(), json!(events));
            attrs.insert(
                "prefix".into(),
                json!(rules.get("prefix").cloned().unwrap_or_default()),
            );
            attrs.insert(
                "suffix".into(),
                json!(rules.get("suffix").cloned().unwrap_or_default()),
            );
            let fingerprint = short_hash(&Value::Object(attrs.clone()).to_string());
            out.push((
                Address::new(ResourceKind::S3Trigger, format!("{bucket}:{id}")),
                LiveResource {
                    attrs,
                    owner: Owner::ThisStack,
                    fingerprint: Some(fingerprint),
                    outputs: BTreeMap::new(),
                },
            ));
        }
        Ok(out)
    }

    /// The stack's managed role, `scar-<stack>-exec`, with its inline policy.
    async fn read_role(&self, stack: &str) -> Result<Option<(Address, LiveResource)>, CloudError> {
        let name = crate::manifest::names::managed_role(stack);
        let role = self
            .call(&name, "iam:GetRole", || {
                self.iam.get_role().role_name(&name).send()
            })
            .await;
        let role = match role {
            Ok(o) => o,
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let Some(r) = role.role() else {
            return Ok(None);
        };
        let t: BTreeMap<String, String> = r
            .tags()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect();
        let policy = self
            .call(&name, "iam:GetRolePolicy", || {
                self.iam
                    .get_role_policy()
                    .role_name(&name)
                    .policy_name(ROLE_POLICY)
                    .send()
            })
            .await;
        let policy = match policy {
            Ok(p) => decode_policy(p.policy_document()),
            Err(e) if e.kind == ErrorKind::NotFound => Value::Null,
            Err(e) => return Err(e),
        };
        let mut attrs = Map::new();
        attrs.insert("name".into(), json!(name));
        attrs.insert(
            "assume_role_policy".into(),
            decode_policy(r.assume_role_policy_document().unwrap_or_default()),
        );
        attrs.insert("policy".into(), policy);
        attrs.insert(
            "permissions_boundary".into(),
            json!(
                r.permissions_boundary()
                    .and_then(|b| b.permissions_boundary_arn())
                    .unwrap_or_default()
            ),
        );
        attrs.insert("tags".into(), tag_value(&t));
        let mut outputs = BTreeMap::new();
        outputs.insert("arn".into(), json!(r.arn()));
        Ok(Some((
            Address::new(ResourceKind::IamRole, name),
            LiveResource {
                attrs,
                owner: owner_of(stack, &t),
                fingerprint: None,
                outputs,
            },
        )))
    }
}

/// A service the manifests may not use at all: when they do not, and the credentials may not
/// list it, the plan goes on without it (a warning says what it cannot see: resources a
/// former version of the stack made there are then neither seen nor pruned, never harmed).
fn optional_read<T: Default>(
    service: &str,
    permissions: &str,
    wanted: bool,
    read: Result<T, CloudError>,
) -> Result<T, CloudError> {
    match read {
        Err(e) if !wanted && e.kind == ErrorKind::AccessDenied => {
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

/// Removes `SCAR_SCRIPT` from a read environment and decodes it.
pub(super) fn take_script(env: &mut Map<String, Value>) -> String {
    env.remove(crate::model::SCRIPT_ENV)
        .and_then(|v| v.as_str().map(str::to_owned))
        .map(|b| {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(b.as_bytes())
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                .unwrap_or(b)
        })
        .unwrap_or_default()
}

/// The name of the inline policy scar writes on its managed role.
pub(super) const ROLE_POLICY: &str = "scar";

/// IAM returns policy documents URL-encoded.
fn decode_policy(doc: &str) -> Value {
    let decoded = crate::text::percent_decode(doc);
    serde_json::from_str(&decoded).unwrap_or(Value::String(decoded))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_decode_from_url_encoding_or_plain_json() {
        assert_eq!(decode_policy("%7B%22a%22%3A1%7D"), json!({"a": 1}));
        assert_eq!(decode_policy("{\"a\":1}"), json!({"a": 1}));
        assert_eq!(crate::text::percent_decode("100%"), "100%");
    }

    #[test]
    fn an_unused_service_may_be_unreadable_a_used_one_may_not() {
        let denied = || -> Result<Vec<u8>, CloudError> {
            Err(CloudError::new(
                ErrorKind::AccessDenied,
                "batch:Describe",
                "no",
            ))
        };
        assert_eq!(optional_read("Batch", "x", false, denied()), Ok(Vec::new()));
        assert!(optional_read("Batch", "x", true, denied()).is_err());
        let broken = Err(CloudError::new(
            ErrorKind::Transient,
            "batch:Describe",
            "503",
        ));
        assert!(optional_read::<Vec<u8>>("Batch", "x", false, broken).is_err());
    }

    #[test]
    fn owners_come_from_both_tags() {
        let mut t = BTreeMap::new();
        assert_eq!(owner_of("demo", &t), Owner::Unowned);
        t.insert(tags::STACK.to_owned(), "demo".to_owned());
        assert_eq!(
            owner_of("demo", &t),
            Owner::Unowned,
            "scar:managed-by is required too"
        );
        t.insert(tags::MANAGED_BY.to_owned(), "scar".to_owned());
        assert_eq!(owner_of("demo", &t), Owner::ThisStack);
        assert_eq!(owner_of("other", &t), Owner::OtherStack("demo".into()));
    }
}
