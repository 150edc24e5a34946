//! Lambda: functions (read with `GetFunction`, created and updated waiting until ready) and
//! the resource-policy statements that let S3 invoke them.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_lambda::types as lt;
use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::kind::{Adapter, Adopt, Check, Read, Write, found, gone_is_fine, stale_tag_keys, view};
use super::page::wait_until;
use super::{AwsCloud, classify};
use crate::apply::ready::{Readiness, function_readiness};
use crate::cloud::retry::{Backoff, PROPAGATION, until_ready, with_retry};
use crate::cloud::{CloudError, ErrorKind};
use crate::manifest::types::Architecture;
use crate::model::attrs::{
    FileSystem, FunctionAttrs, InvokeConfigAttrs, PermissionAttrs, Vpc, id, to_attrs,
};
use crate::model::live::{LiveResource, Owner};
use crate::model::{Address, ResourceKind, http, short_hash};
use crate::plan::{Action, Step};

/// A function, if it exists, and the permission statements scar wrote on it.
pub(super) type FunctionRead = (String, Option<LiveResource>, Vec<(Address, LiveResource)>);

/// Marks a function fingerprint that is a Lambda RevisionId, usable as a write precondition.
pub(super) const REVISION_PREFIX: &str = "rev:";

/// A read environment (a function's or a job's), sorted so that the fingerprint hash is the
/// same for the same content, and the script `SCAR_SCRIPT` carried, taken out and decoded (as
/// is when it is not base64; `""` when there is none).
pub(super) fn split_script(
    vars: impl IntoIterator<Item = (String, String)>,
) -> (IndexMap<String, String>, String) {
    let mut environment: IndexMap<String, String> = vars.into_iter().collect();
    environment.sort_keys();
    let script = environment
        .shift_remove(crate::model::SCRIPT_ENV)
        .map(|b| {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(b.as_bytes())
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                .unwrap_or(b)
        })
        .unwrap_or_default();
    (environment, script)
}

/// A function's environment as Lambda takes it: its variables, and a prebuilt image's script
/// (base64, in `SCAR_SCRIPT`).
fn environment(f: &FunctionAttrs) -> lt::Environment {
    let vars = with_script(&f.environment, f.script.as_deref().unwrap_or_default());
    lt::Environment::builder()
        .set_variables(Some(vars.into_iter().collect()))
        .build()
}

/// `vars` plus `script`, base64-encoded, in `SCAR_SCRIPT` (when there is one): how a prebuilt
/// image's function and a Batch job get their script.
pub(super) fn with_script<'a>(
    vars: impl IntoIterator<Item = (&'a String, &'a String)>,
    script: &str,
) -> BTreeMap<String, String> {
    use base64::Engine as _;
    let mut vars: BTreeMap<String, String> = vars
        .into_iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !script.is_empty() {
        vars.insert(
            crate::model::SCRIPT_ENV.to_owned(),
            base64::engine::general_purpose::STANDARD.encode(script),
        );
    }
    vars
}

/// `/tmp`'s size as Lambda takes it (`op` names the call an error would belong to).
fn ephemeral_storage(f: &FunctionAttrs, op: &str) -> Result<lt::EphemeralStorage, CloudError> {
    lt::EphemeralStorage::builder()
        .size(f.ephemeral_storage)
        .build()
        .map_err(|e| CloudError::new(ErrorKind::Invalid, op, e.to_string()))
}

fn vpc(f: &FunctionAttrs) -> Option<lt::VpcConfig> {
    let v = f.vpc.as_ref()?;
    Some(
        lt::VpcConfig::builder()
            .set_subnet_ids(Some(v.subnets.clone()))
            .set_security_group_ids(Some(v.security_groups.clone()))
            .build(),
    )
}

fn file_systems(f: &FunctionAttrs) -> Option<Vec<lt::FileSystemConfig>> {
    let out: Vec<lt::FileSystemConfig> = f
        .file_systems
        .iter()
        .filter_map(|m| {
            lt::FileSystemConfig::builder()
                .arn(&m.arn)
                .local_mount_path(&m.mount_path)
                .build()
                .ok()
        })
        .collect();
    (!out.is_empty()).then_some(out)
}

/// A function's resource policy, as `GetPolicy` returns it.
#[derive(Debug, Default, Deserialize)]
struct PolicyDocument {
    #[serde(rename = "Statement", default)]
    statements: Vec<Value>,
}

/// One statement of a resource policy: the parts a statement scar wrote has.
#[derive(Debug, Deserialize)]
struct PolicyStatement {
    #[serde(rename = "Sid", default)]
    sid: Option<String>,
    #[serde(rename = "Principal", default)]
    principal: Option<Principal>,
    #[serde(rename = "Condition", default)]
    condition: Value,
}

/// `{"Service": "s3.amazonaws.com"}`, the service alone, or another principal (not one scar
/// writes: the plan then replaces the statement).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Principal {
    Service {
        #[serde(rename = "Service")]
        service: String,
    },
    Plain(String),
    Other(Value),
}

/// A statement's conditions, by test.
#[derive(Debug, Default, Deserialize)]
struct Condition {
    #[serde(rename = "ArnLike", default)]
    arn_like: BTreeMap<String, Value>,
    #[serde(rename = "StringEquals", default)]
    string_equals: BTreeMap<String, Value>,
}

const SOURCE_ARN: &str = "AWS:SourceArn";
const SOURCE_ACCOUNT: &str = "AWS:SourceAccount";

/// The statements of `function`'s resource policy (`GetPolicy`'s JSON text) that stack
/// `stack` wrote: the API's and one per bucket (Sid `scar-<stack>-s3-<bucket>`). A policy
/// that is not JSON holds none; a statement of another shape (someone else's) is skipped, not
/// the policy. A statement of the stack's whose principal or conditions are not what scar
/// writes reads with those fields empty, so the plan replaces it.
fn scar_statements(policy: &str, stack: &str, function: &str) -> Vec<(Address, PermissionAttrs)> {
    let policy: PolicyDocument = serde_json::from_str(policy).unwrap_or_default();
    let prefix = format!("scar-{stack}-s3-");
    let api_sid = crate::model::http::statement_id(stack);
    let condition = |test: &BTreeMap<String, Value>, key: &str| {
        test.get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let mut found = Vec::new();
    for st in policy
        .statements
        .into_iter()
        .filter_map(|s| serde_json::from_value::<PolicyStatement>(s).ok())
    {
        let Some(sid) = st.sid else {
            continue;
        };
        let name = if sid == api_sid {
            format!("{function}/apigateway")
        } else if let Some(bucket) = sid.strip_prefix(&prefix) {
            format!("{function}/s3:{bucket}")
        } else {
            continue;
        };
        let principal = match st.principal {
            Some(Principal::Service { service } | Principal::Plain(service)) => service,
            Some(Principal::Other(p)) => {
                tracing::debug!(function, %sid, principal = %p, "a statement of the stack names a principal scar does not write");
                String::new()
            }
            None => String::new(),
        };
        // Conditions of another shape read as none: the plan then replaces the statement.
        let conditions: Condition = serde_json::from_value(st.condition).unwrap_or_default();
        found.push((
            Address::new(ResourceKind::LambdaPermission, name),
            PermissionAttrs {
                function: function.to_owned(),
                statement_id: sid,
                principal,
                source_arn: condition(&conditions.arn_like, SOURCE_ARN),
                source_account: condition(&conditions.string_equals, SOURCE_ACCOUNT),
            },
        ));
    }
    found
}

/// The typed view of a function's resolved attributes; an invalid one stops the step.
fn function_attrs(name: &str, a: &Map<String, Value>) -> Result<FunctionAttrs, CloudError> {
    view(&Address::new(ResourceKind::Function, name), a)
}

impl AwsCloud {
    pub(super) async fn read_function(
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
            None => Owner::from_tags(stack, &t),
        };
        let (environment, script) = split_script(
            c.environment()
                .and_then(|e| e.variables())
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        let vpc = c
            .vpc_config()
            .filter(|v| !v.subnet_ids().is_empty())
            .map(|v| Vpc::sorted(v.subnet_ids().to_vec(), v.security_group_ids().to_vec()));
        let attrs = to_attrs(&FunctionAttrs {
            image: out
                .code()
                .and_then(|c| c.image_uri())
                .unwrap_or_default()
                .to_owned(),
            script: Some(script),
            memory: c.memory_size().unwrap_or_default(),
            timeout: c.timeout().unwrap_or_default(),
            ephemeral_storage: c.ephemeral_storage().map_or(512, |e| e.size()),
            architecture: match c.architectures().first() {
                Some(lt::Architecture::Arm64) => Architecture::Arm64,
                _ => Architecture::X86_64,
            },
            role: c.role().unwrap_or_default().to_owned(),
            description: c.description().unwrap_or_default().to_owned(),
            environment,
            vpc,
            file_systems: c
                .file_system_configs()
                .iter()
                .map(|f| FileSystem {
                    arn: f.arn().to_owned(),
                    mount_path: f.local_mount_path().to_owned(),
                })
                .collect(),
            tags: t,
            reserved_concurrency: out
                .concurrency()
                .and_then(|c| c.reserved_concurrent_executions()),
            package_type: (c.package_type() == Some(&lt::PackageType::Zip)).then(|| "Zip".into()),
        });
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

    /// The owner of function `name`; a function that is gone is nobody's.
    pub(super) async fn function_owner(
        &self,
        stack: &str,
        name: &str,
    ) -> Result<Owner, CloudError> {
        Ok(self
            .deployed_function(stack, name)
            .await?
            .map_or(Owner::Unowned, |d| d.owner))
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
        found(out)
    }

    /// The function's resource-policy statements that scar wrote (Sid `scar-<stack>-s3-...`).
    pub(super) async fn read_permissions(
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
        let revision = out.revision_id().map(str::to_owned);
        Ok(
            scar_statements(out.policy().unwrap_or_default(), stack, function)
                .into_iter()
                .map(|(address, p)| {
                    let live = LiveResource {
                        attrs: to_attrs(&p),
                        owner: Owner::ThisStack,
                        fingerprint: revision.clone(),
                        outputs: BTreeMap::new(),
                    };
                    (address, live)
                })
                .collect(),
        )
    }

    /// Polls until the function is ready for the next change, with backoff and a deadline.
    pub(super) async fn wait_ready(&self, name: &str) -> Result<(), CloudError> {
        let poll = Backoff {
            initial: Duration::from_millis(250),
            max: Duration::from_secs(5),
            attempts: u32::MAX,
        };
        let look = || async {
            self.limits.get_function.acquire().await;
            let out = self
                .call(name, "lambda:GetFunctionConfiguration", || {
                    self.lambda
                        .get_function_configuration()
                        .function_name(name)
                        .send()
                })
                .await?;
            Ok(
                match function_readiness(
                    out.state().map(|s| s.as_str()),
                    out.last_update_status().map(|s| s.as_str()),
                    out.state_reason().or(out.last_update_status_reason()),
                ) {
                    Readiness::Failed(why) => {
                        Readiness::Failed(format!("function {name} failed: {why}"))
                    }
                    r => r,
                },
            )
        };
        let timeout = self.ready_timeout;
        wait_until("lambda:wait", timeout, poll, look, |_| {
            format!("function {name} was not ready within {timeout:?}")
        })
        .await
    }

    /// Runs a mutating Lambda call: rate limited, retried on throttling, and on
    /// `ResourceConflictException` (an update in progress) retried after the function is ready.
    pub(super) async fn lambda_call<T, F, Fut>(
        &self,
        function: &str,
        call: F,
    ) -> Result<T, CloudError>
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

    pub(super) async fn create_function(
        &self,
        name: &str,
        a: &Map<String, Value>,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        let f = function_attrs(name, a)?;
        let storage = ephemeral_storage(&f, "lambda:CreateFunction")?;
        // A role created a moment ago may not be assumable yet: retried until it is.
        until_ready(PROPAGATION, name, || {
            self.lambda_call(name, || async {
                self.lambda
                    .create_function()
                    .function_name(name)
                    .package_type(lt::PackageType::Image)
                    .code(lt::FunctionCode::builder().image_uri(&f.image).build())
                    .role(&f.role)
                    .memory_size(f.memory)
                    .timeout(f.timeout)
                    .ephemeral_storage(storage.clone())
                    .architectures(lt::Architecture::from(f.lambda_architecture()))
                    .description(&f.description)
                    .environment(environment(&f))
                    .set_vpc_config(vpc(&f))
                    .set_file_system_configs(file_systems(&f))
                    .set_tags(Some(tags.clone().into_iter().collect()))
                    .send()
                    .await
                    .map_err(|e| classify("lambda:CreateFunction", &e))
            })
        })
        .await?;
        self.wait_ready(name).await?;
        if let Some(n) = f.reserved_concurrency {
            self.put_concurrency(name, n).await?;
        }
        Ok(())
    }

    /// Sets the function's reserved concurrency.
    pub(super) async fn put_concurrency(&self, name: &str, n: i32) -> Result<(), CloudError> {
        self.lambda_call(name, || async {
            self.lambda
                .put_function_concurrency()
                .function_name(name)
                .reserved_concurrent_executions(n)
                .send()
                .await
                .map_err(|e| classify("lambda:PutFunctionConcurrency", &e))
        })
        .await?;
        Ok(())
    }

    pub(super) async fn update_function(
        &self,
        step: &Step,
        name: &str,
        account: &str,
        a: &Map<String, Value>,
        before: &Map<String, Value>,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        let f = function_attrs(name, a)?;
        let storage = ephemeral_storage(&f, "lambda:UpdateFunctionConfiguration")?;
        let changed = |field: &str| step.changes.iter().any(|c| c.field == field);
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
            .and_then(|f| f.strip_prefix(super::lambda::REVISION_PREFIX))
            .map(str::to_owned);
        if config_fields.iter().any(|field| changed(field)) {
            let out = self
                .lambda_call(name, || async {
                    self.lambda
                        .update_function_configuration()
                        .function_name(name)
                        .set_revision_id(revision.clone())
                        .role(&f.role)
                        .memory_size(f.memory)
                        .timeout(f.timeout)
                        .ephemeral_storage(storage.clone())
                        .description(&f.description)
                        .environment(environment(&f))
                        .vpc_config(vpc(&f).unwrap_or_else(|| {
                            lt::VpcConfig::builder()
                                .set_subnet_ids(Some(vec![]))
                                .set_security_group_ids(Some(vec![]))
                                .build()
                        }))
                        .set_file_system_configs(Some(file_systems(&f).unwrap_or_default()))
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
                    .image_uri(&f.image)
                    .architectures(lt::Architecture::from(f.lambda_architecture()))
                    .send()
                    .await
                    .map_err(|e| classify("lambda:UpdateFunctionCode", &e))
            })
            .await?;
            self.wait_ready(name).await?;
        }
        if changed("reserved_concurrency")
            && let Some(n) = f.reserved_concurrency
        {
            self.put_concurrency(name, n).await?;
        }
        let arn = format!("arn:aws:lambda:{}:{account}:function:{name}", self.region);
        let stale = stale_tag_keys(&step.address, before, tags)?;
        if !stale.is_empty() {
            self.untag_function(name, &arn, &stale).await?;
        }
        self.tag_function(name, &arn, tags).await
    }

    /// Puts `tags` on function `name` (whose ARN is `arn`).
    pub(super) async fn tag_function(
        &self,
        name: &str,
        arn: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        self.lambda_call(name, || async {
            self.lambda
                .tag_resource()
                .resource(arn)
                .set_tags(Some(tags.clone().into_iter().collect()))
                .send()
                .await
                .map_err(|e| classify("lambda:TagResource", &e))
        })
        .await?;
        Ok(())
    }

    /// Takes the tags `keys` off function `name` (whose ARN is `arn`).
    pub(super) async fn untag_function(
        &self,
        name: &str,
        arn: &str,
        keys: &[String],
    ) -> Result<(), CloudError> {
        self.lambda_call(name, || async {
            self.lambda
                .untag_resource()
                .resource(arn)
                .set_tag_keys(Some(keys.to_vec()))
                .send()
                .await
                .map_err(|e| classify("lambda:UntagResource", &e))
        })
        .await?;
        Ok(())
    }

    /// Deletes the function and creates it again under its name (`--replace`, or a change
    /// of package type). The record of its assembled image (tags the function step does not
    /// write unless the image was built in this run) moves to the new function.
    pub(super) async fn replace_function(
        &self,
        name: &str,
        a: &Map<String, Value>,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        let mut tags = tags.clone();
        if let Some(old) = self.get_function(name).await? {
            let record = crate::model::tags::IMAGE_RECORD
                .iter()
                .map(|(t, _)| *t)
                .chain([crate::model::tags::IMAGE_DEPLOYED]);
            for key in record {
                if let Some(v) = old.tags().and_then(|t| t.get(key)) {
                    tags.entry(key.to_owned()).or_insert_with(|| v.clone());
                }
            }
        }
        self.delete_function(name).await?;
        self.create_function(name, a, &tags).await
    }

    pub(super) async fn delete_function(&self, name: &str) -> Result<(), CloudError> {
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

    pub(super) async fn add_permission(
        &self,
        address: &Address,
        a: &Map<String, Value>,
    ) -> Result<(), CloudError> {
        let p: PermissionAttrs = view(address, a)?;
        let (function, sid) = (&p.function, &p.statement_id);
        let call = || async {
            self.lambda
                .add_permission()
                .function_name(function)
                .statement_id(sid)
                .action("lambda:InvokeFunction")
                .principal(&p.principal)
                .source_arn(&p.source_arn)
                .source_account(&p.source_account)
                .send()
                .await
                .map_err(|e| classify("lambda:AddPermission", &e))
        };
        match self.lambda_call(function, call).await {
            Ok(_) => Ok(()),
            // Left by an interrupted run: replace it so it says what the plan says.
            Err(e) if e.kind == ErrorKind::AlreadyExists => {
                self.remove_permission(function, sid).await?;
                self.lambda_call(function, call).await?;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    pub(super) async fn remove_permission(
        &self,
        function: &str,
        sid: &str,
    ) -> Result<(), CloudError> {
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
}

/// The `function` kind.
pub(super) struct Function;

impl Adapter for Function {
    const READ: Read = Read::Functions;

    async fn write(cloud: &AwsCloud, w: &Write<'_>) -> Result<(), CloudError> {
        let name = w.name();
        let mut tags = w.tags.clone();
        if let Some(Value::Object(record)) =
            cloud.created_output(&Address::new(ResourceKind::FunctionImage, name), "record")
        {
            // The image built in this run: the function records what it was built from.
            tags.extend(
                record
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())),
            );
        }
        match w.step.action {
            Action::Create => cloud.create_function(name, w.after, &tags).await,
            // Lambda cannot recreate a function in place (nor change its package type): it
            // goes, and comes again under its name; its permissions are separate steps after.
            Action::Replace => cloud.replace_function(name, w.after, &tags).await,
            Action::Update => {
                cloud
                    .update_function(w.step, name, w.account, w.after, w.before, &tags)
                    .await
            }
            Action::Delete => cloud.delete_function(name).await,
            Action::NoOp => Ok(()),
        }
    }

    async fn owner(cloud: &AwsCloud, c: &Check<'_>) -> Result<Owner, CloudError> {
        cloud.function_owner(c.stack, &c.step.address.name).await
    }

    async fn adopt(cloud: &AwsCloud, a: &Adopt<'_>) -> Result<(), CloudError> {
        let name = a.name();
        let arn = format!(
            "arn:aws:lambda:{}:{}:function:{name}",
            cloud.region, a.account
        );
        cloud.tag_function(name, &arn, a.ours).await
    }

    fn resolve(cloud: &AwsCloud, name: &str, _: &str, account: &str) -> Option<Value> {
        Some(Value::String(format!(
            "arn:aws:lambda:{}:{account}:function:{name}",
            cloud.region
        )))
    }
}

/// The `lambda_permission` kind: a statement of a function's resource policy, the stack's by
/// its Sid.
pub(super) struct Permission;

impl Adapter for Permission {
    const READ: Read = Read::Policies;

    async fn write(cloud: &AwsCloud, w: &Write<'_>) -> Result<(), CloudError> {
        if matches!(w.step.action, Action::Delete | Action::Replace) {
            let p: id::Statement = view(&w.step.address, w.before)?;
            cloud
                .remove_permission(&p.function, &p.statement_id)
                .await?;
        }
        match w.step.action {
            Action::Delete | Action::NoOp => Ok(()),
            Action::Create | Action::Update | Action::Replace => {
                cloud.add_permission(&w.step.address, w.after).await
            }
        }
    }

    async fn owner(cloud: &AwsCloud, c: &Check<'_>) -> Result<Owner, CloudError> {
        let p: id::Statement = view(&c.step.address, c.before)?;
        let sid = &p.statement_id;
        if *sid == http::statement_id(c.stack) || sid.starts_with(&format!("scar-{}-s3-", c.stack))
        {
            cloud.function_owner(c.stack, &p.function).await
        } else {
            Ok(Owner::Unowned)
        }
    }

    async fn adopt(_: &AwsCloud, a: &Adopt<'_>) -> Result<(), CloudError> {
        Err(a.untagged())
    }
}

/// The `invoke_config` kind: what Lambda does with the function's failed asynchronous
/// invocations. It has no tags: it is the stack's when its function is.
pub(super) struct InvokeConfig;

impl Adapter for InvokeConfig {
    const READ: Read = Read::InvokeConfigs;

    async fn write(cloud: &AwsCloud, w: &Write<'_>) -> Result<(), CloudError> {
        match w.step.action {
            Action::Delete => {
                let c: InvokeConfigAttrs = view(&w.step.address, w.before)?;
                let function = c.function.as_str();
                let r = cloud
                    .lambda_call(function, || async {
                        cloud
                            .lambda
                            .delete_function_event_invoke_config()
                            .function_name(function)
                            .send()
                            .await
                            .map_err(|e| classify("lambda:DeleteFunctionEventInvokeConfig", &e))
                    })
                    .await;
                gone_is_fine(r)
            }
            Action::Create | Action::Update | Action::Replace => {
                let c: InvokeConfigAttrs = view(&w.step.address, w.after)?;
                let function = c.function.as_str();
                // A put replaces the whole configuration: what the manifest does not say
                // is Lambda's default again.
                cloud
                    .lambda_call(function, || async {
                        cloud
                            .lambda
                            .put_function_event_invoke_config()
                            .function_name(function)
                            .maximum_retry_attempts(c.maximum_retry_attempts)
                            .maximum_event_age_in_seconds(c.maximum_event_age)
                            .set_destination_config((!c.on_failure.is_empty()).then(|| {
                                lt::DestinationConfig::builder()
                                    .on_failure(
                                        lt::OnFailure::builder().destination(&c.on_failure).build(),
                                    )
                                    .build()
                            }))
                            .send()
                            .await
                            .map_err(|e| classify("lambda:PutFunctionEventInvokeConfig", &e))
                    })
                    .await?;
                Ok(())
            }
            Action::NoOp => Ok(()),
        }
    }

    async fn owner(cloud: &AwsCloud, c: &Check<'_>) -> Result<Owner, CloudError> {
        let config: InvokeConfigAttrs = view(&c.step.address, c.before)?;
        cloud.function_owner(c.stack, &config.function).await
    }

    async fn adopt(_: &AwsCloud, a: &Adopt<'_>) -> Result<(), CloudError> {
        Err(a.untagged())
    }
}

impl AwsCloud {
    /// The failure policy of `function`, whose owner is `owner`; `None` when it has none.
    pub(super) async fn read_invoke_config(
        &self,
        function: &str,
        owner: &Owner,
    ) -> Result<Option<(Address, LiveResource)>, CloudError> {
        let out = self
            .lambda_call(function, || async {
                self.lambda
                    .get_function_event_invoke_config()
                    .function_name(function)
                    .send()
                    .await
                    .map_err(|e| classify("lambda:GetFunctionEventInvokeConfig", &e))
            })
            .await;
        let Some(out) = found(out)? else {
            return Ok(None);
        };
        let attrs = to_attrs(&InvokeConfigAttrs {
            function: function.to_owned(),
            // What Lambda does when the configuration leaves them out.
            maximum_retry_attempts: out.maximum_retry_attempts().unwrap_or(2),
            maximum_event_age: out.maximum_event_age_in_seconds().unwrap_or(21_600),
            on_failure: out
                .destination_config()
                .and_then(|d| d.on_failure())
                .and_then(|f| f.destination())
                .unwrap_or_default()
                .to_owned(),
        });
        Ok(Some((
            Address::new(ResourceKind::InvokeConfig, function),
            LiveResource {
                fingerprint: Some(format!(
                    "sha:{}",
                    short_hash(&Value::Object(attrs.clone()).to_string())
                )),
                attrs,
                owner: owner.clone(),
                outputs: BTreeMap::new(),
            },
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_stacks_statements_are_read_and_a_foreign_shape_is_skipped() {
        let api = crate::model::http::statement_id("demo");
        let policy = serde_json::json!({"Version": "2012-10-17", "Statement": [
            {"Sid": "scar-demo-s3-in", "Effect": "Allow",
             "Principal": {"Service": "s3.amazonaws.com"}, "Action": "lambda:InvokeFunction",
             "Condition": {"ArnLike": {"AWS:SourceArn": "arn:aws:s3:::in"},
                           "StringEquals": {"AWS:SourceAccount": "123456789012"}}},
            {"Sid": api, "Principal": "apigateway.amazonaws.com"},
            {"Sid": "scar-other-s3-in", "Principal": {"Service": "s3.amazonaws.com"}},
            {"Sid": "scar-demo-s3-odd", "Principal": {"AWS": ["arn:a", "arn:b"]},
             "Condition": {"ArnLike": "not a map"}},
            {"Sid": 7, "Effect": "Allow"},
            {"Effect": "Allow"}
        ]});
        let found = scar_statements(&policy.to_string(), "demo", "f");
        let names: Vec<String> = found.iter().map(|(a, _)| a.name.clone()).collect();
        assert_eq!(names, ["f/s3:in", "f/apigateway", "f/s3:odd"]);
        let odd = &found[2].1;
        assert_eq!((odd.principal.as_str(), odd.source_arn.as_str()), ("", ""));
        let (_, s3) = &found[0];
        assert_eq!(s3.principal, "s3.amazonaws.com");
        assert_eq!(s3.source_arn, "arn:aws:s3:::in");
        assert_eq!(s3.source_account, "123456789012");
        assert_eq!(found[1].1.principal, "apigateway.amazonaws.com");
        assert!(scar_statements("not json", "demo", "f").is_empty());
    }
}
