//! Executing plan steps against AWS. Every create writes the ownership tags in the create call
//! itself; every delete tolerates "already gone"; Lambda changes wait until the function is
//! ready; notification configurations are read-merge-written under a per-bucket lock so every
//! foreign entry survives.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_lambda::types as lt;
use aws_sdk_s3::types as st;
use serde_json::{Map, Value};

use super::read::ROLE_POLICY;
use super::{AwsCloud, classify};
use crate::apply::ready::{Readiness, function_readiness};
use crate::cloud::retry::{Backoff, with_retry};
use crate::cloud::{CloudError, ErrorKind};
use crate::model::live::Owner;
use crate::model::{Reference, ResourceKind};
use crate::plan::{APPLIED_TAG, Action, Step};

pub(super) fn s(v: Option<&Value>) -> String {
    v.and_then(Value::as_str).unwrap_or_default().to_owned()
}

pub(super) fn n(v: Option<&Value>) -> i32 {
    v.and_then(Value::as_i64)
        .and_then(|x| i32::try_from(x).ok())
        .unwrap_or_default()
}

pub(super) fn map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

impl AwsCloud {
    /// Resolves references left in a step's attributes. Every ARN scar refers to is
    /// deterministic once the account is known.
    fn resolve(&self, account: &str, attrs: &Map<String, Value>) -> Map<String, Value> {
        attrs
            .iter()
            .map(|(k, v)| {
                let v = match Reference::from_value(v) {
                    Some(r) => match (r.address.kind, r.attribute.as_str()) {
                        (_, "account_id") => Value::String(account.to_owned()),
                        (ResourceKind::IamRole, _) => {
                            Value::String(format!("arn:aws:iam::{account}:role/{}", r.address.name))
                        }
                        (ResourceKind::Function, _) => Value::String(format!(
                            "arn:aws:lambda:{}:{account}:function:{}",
                            self.region, r.address.name
                        )),
                        // An API's id is AWS's choice, an image's digest its content's:
                        // known once their step ran.
                        (
                            ResourceKind::HttpApi
                            | ResourceKind::FunctionImage
                            | ResourceKind::ImageRepository,
                            attribute,
                        ) => self
                            .created_output(&r.address, attribute)
                            .unwrap_or_else(|| v.clone()),
                        _ => v.clone(),
                    },
                    None => v.clone(),
                };
                (k.clone(), v)
            })
            .collect()
    }

    /// Executes one step.
    ///
    /// # Errors
    /// The first AWS error that retries and waits did not cure.
    pub async fn execute(&self, step: &Step, account: &str, stack: &str) -> Result<(), CloudError> {
        if step.action == Action::NoOp || step.covered_by.is_some() {
            return Ok(());
        }
        let name = step.address.name.as_str();
        let empty = Map::new();
        let after = step
            .after
            .as_ref()
            .map(|a| self.resolve(account, a))
            .unwrap_or_default();
        let before = step.before.as_ref().unwrap_or(&empty);
        let mut tags = map(after.get("tags"));
        if let Some(h) = &step.applied {
            tags.insert(APPLIED_TAG.to_owned(), h.clone());
        }
        if step.address.kind == ResourceKind::Function
            && let Some(Value::Object(record)) = self.created_output(
                &crate::model::Address::new(ResourceKind::FunctionImage, name),
                "record",
            )
        {
            // The image built in this run: the function records what it was built from.
            tags.extend(
                record
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())),
            );
        }
        match (step.address.kind, step.action) {
            (ResourceKind::ImageRepository | ResourceKind::FunctionImage, _) => {
                self.execute_image(step, &tags, &after, before).await
            }
            (ResourceKind::Function, Action::Create) => {
                self.create_function(name, &after, &tags).await
            }
            (ResourceKind::Function, Action::Update | Action::Replace) => {
                self.update_function(step, name, account, &after, before, &tags)
                    .await
            }
            (ResourceKind::Function, Action::Delete) => self.delete_function(name).await,
            (ResourceKind::LogGroup, Action::Delete) => {
                self.delete_log_group(&s(before.get("name"))).await
            }
            (ResourceKind::LogGroup, _) => {
                self.put_log_group(stack, account, &after, &tags, step.action == Action::Create)
                    .await
            }
            (ResourceKind::Bucket, Action::Delete) => self.delete_bucket(name).await,
            (ResourceKind::Bucket, Action::Create) => {
                self.create_bucket(name, &s(after.get("region")), &tags)
                    .await
            }
            (ResourceKind::Bucket, _) => self.tag_bucket(name, &tags).await,
            (ResourceKind::IamRole, Action::Delete) => self.delete_role(name).await,
            (ResourceKind::IamRole, _) => {
                self.put_role(name, account, &after, &tags, step.action == Action::Create)
                    .await
            }
            (ResourceKind::LambdaPermission, Action::Delete) => {
                self.remove_permission(&s(before.get("function")), &s(before.get("statement_id")))
                    .await
            }
            (ResourceKind::LambdaPermission, _) => {
                if step.action == Action::Replace {
                    self.remove_permission(
                        &s(before.get("function")),
                        &s(before.get("statement_id")),
                    )
                    .await?;
                }
                self.add_permission(&after).await
            }
            (ResourceKind::S3Trigger, Action::Delete) => {
                self.write_trigger(&s(before.get("bucket")), &s(before.get("id")), None)
                    .await
            }
            (ResourceKind::S3Trigger, _) => {
                self.write_trigger(&s(after.get("bucket")), &s(after.get("id")), Some(&after))
                    .await
            }
            (
                ResourceKind::BatchComputeEnvironment
                | ResourceKind::BatchJobQueue
                | ResourceKind::BatchJobDefinition,
                _,
            ) => {
                self.execute_batch(step, account, &after, before, &tags)
                    .await
            }
            (ResourceKind::HttpApi, _) => {
                self.execute_api(step, account, &after, before, &tags).await
            }
            (_, Action::NoOp) => Ok(()),
        }
    }

    /// Polls until the function is ready for the next change, with backoff and a deadline.
    async fn wait_ready(&self, name: &str) -> Result<(), CloudError> {
        let deadline = tokio::time::Instant::now() + self.ready_timeout;
        let poll = Backoff {
            initial: Duration::from_millis(250),
            max: Duration::from_secs(5),
            attempts: u32::MAX,
        };
        let mut n = 1;
        loop {
            self.limits.get_function.acquire().await;
            let out = self
                .call(name, "lambda:GetFunctionConfiguration", || {
                    self.lambda
                        .get_function_configuration()
                        .function_name(name)
                        .send()
                })
                .await?;
            let readiness = function_readiness(
                out.state().map(|s| s.as_str()),
                out.last_update_status().map(|s| s.as_str()),
                out.state_reason().or(out.last_update_status_reason()),
            );
            match readiness {
                Readiness::Ready => return Ok(()),
                Readiness::Failed(why) => {
                    return Err(CloudError::new(
                        ErrorKind::Other,
                        "lambda:wait",
                        format!("function {name} failed: {why}"),
                    ));
                }
                Readiness::Pending if tokio::time::Instant::now() >= deadline => {
                    return Err(CloudError::new(
                        ErrorKind::Other,
                        "lambda:wait",
                        format!(
                            "function {name} was not ready within {:?}",
                            self.ready_timeout
                        ),
                    ));
                }
                Readiness::Pending => {
                    tracing::debug!(function = name, "waiting for the function to be ready");
                    tokio::time::sleep(poll.delay(n)).await;
                    n += 1;
                }
            }
        }
    }

    /// Runs a mutating Lambda call: rate limited, retried on throttling, and on
    /// `ResourceConflictException` (an update in progress) retried after the function is ready.
    async fn lambda_call<T, F, Fut>(&self, function: &str, call: F) -> Result<T, CloudError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, CloudError>>,
    {
        for _ in 0..10 {
            let r = with_retry(self.backoff, function, || async {
                self.limits.lambda_control.acquire().await;
                call().await
            })
            .await;
            match r {
                Err(e) if e.kind == ErrorKind::Conflict => {
                    tracing::info!(
                        function,
                        "an update is in progress; waiting before retrying"
                    );
                    self.wait_ready(function).await?;
                }
                other => return other,
            }
        }
        Err(CloudError::new(
            ErrorKind::Conflict,
            "lambda",
            format!("{function} stayed busy through 10 waits"),
        ))
    }

    async fn create_function(
        &self,
        name: &str,
        a: &Map<String, Value>,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        let role = s(a.get("role"));
        let mut attempt = 0;
        loop {
            let r = self
                .lambda_call(name, || async {
                    self.lambda
                        .create_function()
                        .function_name(name)
                        .package_type(lt::PackageType::Image)
                        .code(
                            lt::FunctionCode::builder()
                                .image_uri(s(a.get("image")))
                                .build(),
                        )
                        .role(&role)
                        .memory_size(n(a.get("memory")))
                        .timeout(n(a.get("timeout")))
                        .ephemeral_storage(
                            lt::EphemeralStorage::builder()
                                .size(n(a.get("ephemeral_storage")))
                                .build()
                                .map_err(|e| {
                                    CloudError::new(
                                        ErrorKind::Invalid,
                                        "lambda:CreateFunction",
                                        e.to_string(),
                                    )
                                })?,
                        )
                        .architectures(lt::Architecture::from(s(a.get("architecture")).as_str()))
                        .description(s(a.get("description")))
                        .environment(environment(a))
                        .set_vpc_config(vpc(a))
                        .set_file_system_configs(file_systems(a))
                        .set_tags(Some(tags.clone().into_iter().collect()))
                        .send()
                        .await
                        .map_err(|e| classify("lambda:CreateFunction", &e))
                })
                .await;
            match r {
                Ok(_) => break,
                // A role created a moment ago is not assumable everywhere yet (IAM is
                // eventually consistent): retry for about a minute.
                Err(e)
                    if e.kind == ErrorKind::Invalid
                        && e.message.contains("cannot be assumed")
                        && attempt < 12 =>
                {
                    attempt += 1;
                    tracing::warn!(
                        function = name,
                        attempt,
                        "the role is not assumable yet; retrying"
                    );
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
                Err(e) => return Err(e),
            }
        }
        self.wait_ready(name).await?;
        Ok(())
    }

    async fn update_function(
        &self,
        step: &Step,
        name: &str,
        account: &str,
        a: &Map<String, Value>,
        before: &Map<String, Value>,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        let changed = |f: &str| step.changes.iter().any(|c| c.field == f);
        let config_fields = [
            "memory",
            "timeout",
            "ephemeral_storage",
            "role",
            "description",
            "environment",
            "script",
            "vpc",
            "file_systems",
        ];
        // The RevisionId read at plan time makes the first write conditional: if the function
        // changed since, Lambda refuses instead of overwriting.
        let mut revision = step
            .expected_fingerprint
            .as_deref()
            .and_then(|f| f.strip_prefix(super::read::REVISION_PREFIX))
            .map(str::to_owned);
        if config_fields.iter().any(|f| changed(f)) {
            let out = self
                .lambda_call(name, || async {
                    self.lambda
                        .update_function_configuration()
                        .function_name(name)
                        .set_revision_id(revision.clone())
                        .role(s(a.get("role")))
                        .memory_size(n(a.get("memory")))
                        .timeout(n(a.get("timeout")))
                        .ephemeral_storage(
                            lt::EphemeralStorage::builder()
                                .size(n(a.get("ephemeral_storage")))
                                .build()
                                .map_err(|e| {
                                    CloudError::new(
                                        ErrorKind::Invalid,
                                        "lambda:UpdateFunctionConfiguration",
                                        e.to_string(),
                                    )
                                })?,
                        )
                        .description(s(a.get("description")))
                        .environment(environment(a))
                        .vpc_config(vpc(a).unwrap_or_else(|| {
                            lt::VpcConfig::builder()
                                .set_subnet_ids(Some(vec![]))
                                .set_security_group_ids(Some(vec![]))
                                .build()
                        }))
                        .set_file_system_configs(Some(file_systems(a).unwrap_or_default()))
                        .send()
                        .await
                        .map_err(|e| classify("lambda:UpdateFunctionConfiguration", &e))
                })
                .await?;
            revision = out.revision_id().map(str::to_owned);
            self.wait_ready(name).await?;
        }
        if changed("image") || changed("architecture") {
            self.lambda_call(name, || async {
                self.lambda
                    .update_function_code()
                    .function_name(name)
                    .set_revision_id(revision.clone())
                    .image_uri(s(a.get("image")))
                    .architectures(lt::Architecture::from(s(a.get("architecture")).as_str()))
                    .send()
                    .await
                    .map_err(|e| classify("lambda:UpdateFunctionCode", &e))
            })
            .await?;
            self.wait_ready(name).await?;
        }
        let arn = format!("arn:aws:lambda:{}:{account}:function:{name}", self.region);
        let stale = stale_tag_keys(before, tags);
        if !stale.is_empty() {
            self.lambda_call(name, || async {
                self.lambda
                    .untag_resource()
                    .resource(&arn)
                    .set_tag_keys(Some(stale.clone()))
                    .send()
                    .await
                    .map_err(|e| classify("lambda:UntagResource", &e))
            })
            .await?;
        }
        self.lambda_call(name, || async {
            self.lambda
                .tag_resource()
                .resource(&arn)
                .set_tags(Some(tags.clone().into_iter().collect()))
                .send()
                .await
                .map_err(|e| classify("lambda:TagResource", &e))
        })
        .await?;
        Ok(())
    }

    async fn delete_function(&self, name: &str) -> Result<(), CloudError> {
        let r = self
            .lambda_call(name, || async {
                self.lambda
                    .delete_function()
                    .function_name(name)
                    .send()
                    .await
                    .map_err(|e| classify("lambda:DeleteFunction", &e))
            })
            .await;
        gone_is_fine(r)
    }

    async fn put_log_group(
        &self,
        stack: &str,
        account: &str,
        a: &Map<String, Value>,
        tags: &BTreeMap<String, String>,
        create: bool,
    ) -> Result<(), CloudError> {
        let name = s(a.get("name"));
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
        let days = n(a.get("retention_days"));
        self.call(&name, "logs:PutRetentionPolicy", || {
            self.logs
                .put_retention_policy()
                .log_group_name(&name)
                .retention_in_days(days)
                .send()
        })
        .await?;
        Ok(())
    }

    async fn delete_log_group(&self, name: &str) -> Result<(), CloudError> {
        let r = self
            .call(name, "logs:DeleteLogGroup", || {
                self.logs.delete_log_group().log_group_name(name).send()
            })
            .await;
        gone_is_fine(r)
    }

    pub(super) async fn create_bucket(
        &self,
        name: &str,
        region: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        let r = with_retry(self.backoff, name, || async {
            let mut req = self.s3.create_bucket().bucket(name);
            // us-east-1 takes no location constraint; every other region needs one (SCAR
            // omitted it and failed outside us-east-1).
            if region != "us-east-1" {
                req = req.create_bucket_configuration(
                    st::CreateBucketConfiguration::builder()
                        .location_constraint(st::BucketLocationConstraint::from(region))
                        .build(),
                );
            }
            req.send()
                .await
                .map_err(|e| classify("s3:CreateBucket", &e))
        })
        .await;
        match r {
            Ok(_) => self.tag_bucket(name, tags).await,
            Err(e) if e.kind == ErrorKind::AlreadyExists => {
                // Created by someone else since the plan was made: use it as is, never claim it.
                tracing::warn!(
                    bucket = name,
                    "the bucket appeared since the plan; it is used as is and not tagged"
                );
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    pub(super) async fn tag_bucket(
        &self,
        name: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        let tag_set: Vec<st::Tag> = tags
            .iter()
            .filter_map(|(k, v)| st::Tag::builder().key(k).value(v).build().ok())
            .collect();
        let tagging = st::Tagging::builder()
            .set_tag_set(Some(tag_set))
            .build()
            .map_err(|e| {
                CloudError::new(ErrorKind::Invalid, "s3:PutBucketTagging", e.to_string())
            })?;
        self.call(name, "s3:PutBucketTagging", || {
            self.s3
                .put_bucket_tagging()
                .bucket(name)
                .tagging(tagging.clone())
                .send()
        })
        .await?;
        Ok(())
    }

    async fn delete_bucket(&self, name: &str) -> Result<(), CloudError> {
        let r = self
            .call(name, "s3:DeleteBucket", || {
                self.s3.delete_bucket().bucket(name).send()
            })
            .await;
        gone_is_fine(r)
    }

    async fn put_role(
        &self,
        name: &str,
        account: &str,
        a: &Map<String, Value>,
        tags: &BTreeMap<String, String>,
        create: bool,
    ) -> Result<(), CloudError> {
        let trust = a
            .get("assume_role_policy")
            .map(Value::to_string)
            .unwrap_or_default();
        // A plan made without reading the account leaves its mark; never sent as is.
        let policy = a
            .get("policy")
            .map(Value::to_string)
            .unwrap_or_default()
            .replace(crate::model::ACCOUNT, account);
        let boundary = s(a.get("permissions_boundary"));
        let iam_tags: Vec<aws_sdk_iam::types::Tag> = tags
            .iter()
            .filter_map(|(k, v)| {
                aws_sdk_iam::types::Tag::builder()
                    .key(k)
                    .value(v)
                    .build()
                    .ok()
            })
            .collect();
        if create {
            self.call(name, "iam:CreateRole", || {
                self.iam
                    .create_role()
                    .role_name(name)
                    .assume_role_policy_document(&trust)
                    .set_permissions_boundary((!boundary.is_empty()).then(|| boundary.clone()))
                    .set_tags(Some(iam_tags.clone()))
                    .send()
            })
            .await?;
        } else {
            self.call(name, "iam:UpdateAssumeRolePolicy", || {
                self.iam
                    .update_assume_role_policy()
                    .role_name(name)
                    .policy_document(&trust)
                    .send()
            })
            .await?;
            self.call(name, "iam:TagRole", || {
                self.iam
                    .tag_role()
                    .role_name(name)
                    .set_tags(Some(iam_tags.clone()))
                    .send()
            })
            .await?;
            if boundary.is_empty() {
                let r = self
                    .call(name, "iam:DeleteRolePermissionsBoundary", || {
                        self.iam
                            .delete_role_permissions_boundary()
                            .role_name(name)
                            .send()
                    })
                    .await;
                gone_is_fine(r)?;
            } else {
                self.call(name, "iam:PutRolePermissionsBoundary", || {
                    self.iam
                        .put_role_permissions_boundary()
                        .role_name(name)
                        .permissions_boundary(&boundary)
                        .send()
                })
                .await?;
            }
        }
        self.call(name, "iam:PutRolePolicy", || {
            self.iam
                .put_role_policy()
                .role_name(name)
                .policy_name(ROLE_POLICY)
                .policy_document(&policy)
                .send()
        })
        .await?;
        Ok(())
    }

    async fn delete_role(&self, name: &str) -> Result<(), CloudError> {
        let r = self
            .call(name, "iam:DeleteRolePolicy", || {
                self.iam
                    .delete_role_policy()
                    .role_name(name)
                    .policy_name(ROLE_POLICY)
                    .send()
            })
            .await;
        gone_is_fine(r)?;
        let r = self
            .call(name, "iam:DeleteRole", || {
                self.iam.delete_role().role_name(name).send()
            })
            .await;
        gone_is_fine(r)
    }

    async fn add_permission(&self, a: &Map<String, Value>) -> Result<(), CloudError> {
        let function = s(a.get("function"));
        let sid = s(a.get("statement_id"));
        let call = || async {
            self.lambda
                .add_permission()
                .function_name(&function)
                .statement_id(&sid)
                .action("lambda:InvokeFunction")
                .principal(s(a.get("principal")))
                .source_arn(s(a.get("source_arn")))
                .source_account(s(a.get("source_account")))
                .send()
                .await
                .map_err(|e| classify("lambda:AddPermission", &e))
        };
        match self.lambda_call(&function, call).await {
            Ok(_) => Ok(()),
            // Left by an interrupted run: replace it so it says what the plan says.
            Err(e) if e.kind == ErrorKind::AlreadyExists => {
                self.remove_permission(&function, &sid).await?;
                self.lambda_call(&function, call).await?;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    async fn remove_permission(&self, function: &str, sid: &str) -> Result<(), CloudError> {
        let r = self
            .lambda_call(function, || async {
                self.lambda
                    .remove_permission()
                    .function_name(function)
                    .statement_id(sid)
                    .send()
                    .await
                    .map_err(|e| classify("lambda:RemovePermission", &e))
            })
            .await;
        gone_is_fine(r)
    }

    /// Writes one notification entry: `entry` replaces (or adds) the entry with Id `id`, or
    /// `None` removes it. Every other entry, of any kind, is written back as read. Holding
    /// the bucket's notification lease (no other scar writes the configuration meanwhile),
    /// it reads, merges, writes, then reads back: success only once the entry is there (or
    /// gone), so a writer outside scar that overwrote it is caught, and merged again.
    async fn write_trigger(
        &self,
        bucket: &str,
        id: &str,
        entry: Option<&Map<String, Value>>,
    ) -> Result<(), CloudError> {
        let lock = self.bucket_lock(bucket);
        let _guard = lock.lock().await;
        self.with_bucket_lease(bucket, || async {
            for _ in 0..3 {
                self.merge_trigger(bucket, id, entry).await?;
                if self.trigger_is_written(bucket, id, entry).await? {
                    return Ok(());
                }
                tracing::warn!(
                    bucket,
                    id,
                    "the notification entry was not as written when read back; merging again"
                );
            }
            Err(CloudError::new(
                ErrorKind::Conflict,
                "s3:PutBucketNotificationConfiguration",
                format!(
                    "the notification entry {id} of bucket {bucket} was not as written when read back, three times: something outside scar keeps rewriting the bucket's notification configuration"
                ),
            ))
        })
        .await
    }

    /// True when the entry `id` is in `bucket`'s configuration invoking `entry`'s function (or
    /// absent, for `None`).
    async fn trigger_is_written(
        &self,
        bucket: &str,
        id: &str,
        entry: Option<&Map<String, Value>>,
    ) -> Result<bool, CloudError> {
        let current = match self.notifications(bucket).await {
            Ok(c) => c,
            Err(e) if e.kind == ErrorKind::NotFound && entry.is_none() => return Ok(true),
            Err(e) => return Err(e),
        };
        let found = current
            .as_ref()
            .map(|c| c.lambda_function_configurations())
            .unwrap_or_default()
            .iter()
            .find(|c| c.id() == Some(id))
            .map(|c| c.lambda_function_arn().to_owned());
        Ok(match entry {
            None => found.is_none(),
            Some(a) => found.is_some_and(|arn| arn == s(a.get("function_arn"))),
        })
    }

    /// One read-merge-write of the entry `id`.
    async fn merge_trigger(
        &self,
        bucket: &str,
        id: &str,
        entry: Option<&Map<String, Value>>,
    ) -> Result<(), CloudError> {
        let current = match self.notifications(bucket).await {
            Ok(c) => c,
            Err(e) if e.kind == ErrorKind::NotFound && entry.is_none() => {
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let existing = current
            .as_ref()
            .map(|c| c.lambda_function_configurations())
            .unwrap_or_default();
        let mut lambdas: Vec<st::LambdaFunctionConfiguration> = existing
            .iter()
            .filter(|c| c.id() != Some(id))
            .cloned()
            .collect();
        let had = lambdas.len() != existing.len();
        if entry.is_none() && !had {
            return Ok(());
        }
        if let Some(a) = entry {
            let mut rules = Vec::new();
            for (name, key) in [
                (st::FilterRuleName::Prefix, "prefix"),
                (st::FilterRuleName::Suffix, "suffix"),
            ] {
                let v = s(a.get(key));
                if !v.is_empty() {
                    rules.push(st::FilterRule::builder().name(name).value(v).build());
                }
            }
            let mut b = st::LambdaFunctionConfiguration::builder()
                .id(id)
                .lambda_function_arn(s(a.get("function_arn")))
                .set_events(Some(
                    strings(a.get("events"))
                        .iter()
                        .map(|e| st::Event::from(e.as_str()))
                        .collect(),
                ));
            if !rules.is_empty() {
                b = b.filter(
                    st::NotificationConfigurationFilter::builder()
                        .key(
                            st::S3KeyFilter::builder()
                                .set_filter_rules(Some(rules))
                                .build(),
                        )
                        .build(),
                );
            }
            lambdas.push(b.build().map_err(|e| {
                CloudError::new(
                    ErrorKind::Invalid,
                    "s3:PutBucketNotificationConfiguration",
                    e.to_string(),
                )
            })?);
        }
        let config = st::NotificationConfiguration::builder()
            .set_lambda_function_configurations(Some(lambdas))
            .set_queue_configurations(current.as_ref().map(|c| c.queue_configurations().to_vec()))
            .set_topic_configurations(current.as_ref().map(|c| c.topic_configurations().to_vec()))
            .set_event_bridge_configuration(
                current
                    .as_ref()
                    .and_then(|c| c.event_bridge_configuration().cloned()),
            )
            .build();
        self.call(bucket, "s3:PutBucketNotificationConfiguration", || {
            self.s3
                .put_bucket_notification_configuration()
                .bucket(bucket)
                .notification_configuration(config.clone())
                .send()
        })
        .await?;
        Ok(())
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
    before: &Map<String, Value>,
    tags: &BTreeMap<String, String>,
) -> Vec<String> {
    map(before.get("tags"))
        .into_keys()
        .filter(|k| !tags.contains_key(k) && !k.starts_with("aws:"))
        .collect()
}

/// The function's environment as sent to Lambda: the manifest's variables, and the script,
/// base64-encoded, in `SCAR_SCRIPT`.
fn environment(a: &Map<String, Value>) -> lt::Environment {
    lt::Environment::builder()
        .set_variables(Some(env_with_script(a).into_iter().collect()))
        .build()
}

/// The `environment` attribute plus the script, base64-encoded, in `SCAR_SCRIPT`.
pub(super) fn env_with_script(a: &Map<String, Value>) -> BTreeMap<String, String> {
    use base64::Engine as _;
    let mut vars = map(a.get("environment"));
    let script = s(a.get("script"));
    if !script.is_empty() {
        vars.insert(
            crate::model::SCRIPT_ENV.to_owned(),
            base64::engine::general_purpose::STANDARD.encode(script),
        );
    }
    vars
}

fn vpc(a: &Map<String, Value>) -> Option<lt::VpcConfig> {
    let v = a.get("vpc").filter(|v| !v.is_null())?;
    Some(
        lt::VpcConfig::builder()
            .set_subnet_ids(Some(strings(v.get("subnets"))))
            .set_security_group_ids(Some(strings(v.get("security_groups"))))
            .build(),
    )
}

fn file_systems(a: &Map<String, Value>) -> Option<Vec<lt::FileSystemConfig>> {
    let list = a.get("file_systems")?.as_array()?;
    let out: Vec<lt::FileSystemConfig> = list
        .iter()
        .filter_map(|f| {
            lt::FileSystemConfig::builder()
                .arn(s(f.get("arn")))
                .local_mount_path(s(f.get("mount_path")))
                .build()
                .ok()
        })
        .collect();
    (!out.is_empty()).then_some(out)
}

impl AwsCloud {
    /// Writes the stack's ownership tags (and only those) on an existing resource.
    ///
    /// # Errors
    /// For kinds that carry no tags, or when AWS refuses.
    pub async fn adopt(
        &self,
        address: &crate::model::Address,
        wanted: &crate::model::DesiredResource,
        account: &str,
    ) -> Result<(), CloudError> {
        let ours: BTreeMap<String, String> = map(wanted.attrs.get("tags"))
            .into_iter()
            .filter(|(k, _)| k.starts_with("scar:"))
            .collect();
        let name = address.name.as_str();
        match address.kind {
            ResourceKind::Function => {
                let arn = format!("arn:aws:lambda:{}:{account}:function:{name}", self.region);
                self.lambda_call(name, || async {
                    self.lambda
                        .tag_resource()
                        .resource(&arn)
                        .set_tags(Some(ours.clone().into_iter().collect()))
                        .send()
                        .await
                        .map_err(|e| classify("lambda:TagResource", &e))
                })
                .await?;
            }
            ResourceKind::LogGroup => {
                let arn = format!(
                    "arn:aws:logs:{}:{account}:log-group:{}",
                    self.region,
                    s(wanted.attrs.get("name"))
                );
                self.call(name, "logs:TagResource", || {
                    self.logs
                        .tag_resource()
                        .resource_arn(&arn)
                        .set_tags(Some(ours.clone().into_iter().collect()))
                        .send()
                })
                .await?;
            }
            ResourceKind::IamRole => {
                let t: Vec<aws_sdk_iam::types::Tag> = ours
                    .iter()
                    .filter_map(|(k, v)| {
                        aws_sdk_iam::types::Tag::builder()
                            .key(k)
                            .value(v)
                            .build()
                            .ok()
                    })
                    .collect();
                self.call(name, "iam:TagRole", || {
                    self.iam
                        .tag_role()
                        .role_name(name)
                        .set_tags(Some(t.clone()))
                        .send()
                })
                .await?;
            }
            ResourceKind::Bucket => {
                let existing = self
                    .call(name, "s3:GetBucketTagging", || {
                        self.s3.get_bucket_tagging().bucket(name).send()
                    })
                    .await;
                let mut all: BTreeMap<String, String> = match existing {
                    Ok(o) => o
                        .tag_set()
                        .iter()
                        .map(|t| (t.key().to_owned(), t.value().to_owned()))
                        .collect(),
                    Err(e) if e.kind == ErrorKind::NotFound => BTreeMap::new(),
                    Err(e) => return Err(e),
                };
                all.extend(ours);
                self.tag_bucket(name, &all).await?;
            }
            ResourceKind::LambdaPermission | ResourceKind::S3Trigger => {
                return Err(CloudError::new(
                    ErrorKind::Invalid,
                    "adopt",
                    format!("{address} carries no tags; scar owns it by its Id prefix"),
                ));
            }
            ResourceKind::BatchComputeEnvironment
            | ResourceKind::BatchJobQueue
            | ResourceKind::BatchJobDefinition
            | ResourceKind::HttpApi
            | ResourceKind::ImageRepository
            | ResourceKind::FunctionImage => {
                return Err(CloudError::new(
                    ErrorKind::Invalid,
                    "adopt",
                    format!(
                        "{address} cannot be adopted: delete it or rename the function; scar creates its own"
                    ),
                ));
            }
        }
        Ok(())
    }
}
