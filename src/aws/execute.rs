//! Executing plan steps against AWS: references resolved, each step dispatched to its
//! service's module. Every create writes the ownership tags in the create call itself; every
//! delete tolerates "already gone".

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{AwsCloud, classify};
use crate::cloud::{CloudError, ErrorKind};
use crate::model::attrs::{Attrs, BucketAttrs, LogGroupAttrs, RoleAttrs, TriggerAttrs, id};
use crate::model::{Reference, ResourceKind};
use crate::plan::{APPLIED_TAG, Action, Step};

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
    address: &crate::model::Address,
    before: &Map<String, Value>,
    tags: &BTreeMap<String, String>,
) -> Result<Vec<String>, CloudError> {
    Ok(view::<id::Tagged>(address, before)?
        .tags
        .into_keys()
        .filter(|k| !tags.contains_key(k) && !k.starts_with("aws:"))
        .collect())
}

impl AwsCloud {
    /// Resolves references left in a step's attributes. Every ARN scar refers to is
    /// deterministic once the account is known.
    pub(super) fn resolve(&self, account: &str, attrs: &Map<String, Value>) -> Map<String, Value> {
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
        let mut tags = view::<id::Tagged>(&step.address, &after)?.tags;
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
            // Lambda cannot recreate a function in place (nor change its package type): it
            // goes, and comes again under its name; its permissions are separate steps after.
            (ResourceKind::Function, Action::Replace) => {
                self.replace_function(name, &after, &tags).await
            }
            (ResourceKind::Function, Action::Update) => {
                self.update_function(step, name, account, &after, before, &tags)
                    .await
            }
            (ResourceKind::Function, Action::Delete) => self.delete_function(name).await,
            (ResourceKind::LogGroup, Action::Delete) => {
                let g: id::Named = view(&step.address, before)?;
                self.delete_log_group(&g.name).await
            }
            (ResourceKind::LogGroup, _) => {
                let g: LogGroupAttrs = view(&step.address, &after)?;
                self.put_log_group(stack, account, &g, &tags, step.action == Action::Create)
                    .await
            }
            (ResourceKind::Bucket, Action::Delete) => self.delete_bucket(name).await,
            (ResourceKind::Bucket, Action::Create) => {
                let b: BucketAttrs = view(&step.address, &after)?;
                self.create_bucket(&b.name, &b.region, &tags).await
            }
            (ResourceKind::Bucket, _) => self.tag_bucket(name, &tags).await,
            (ResourceKind::IamRole, Action::Delete) => self.delete_role(name).await,
            (ResourceKind::IamRole, _) => {
                let r: RoleAttrs = view(&step.address, &after)?;
                self.put_role(name, account, &r, &tags, step.action == Action::Create)
                    .await
            }
            (ResourceKind::LambdaPermission, Action::Delete) => {
                let p: id::Statement = view(&step.address, before)?;
                self.remove_permission(&p.function, &p.statement_id).await
            }
            (ResourceKind::LambdaPermission, _) => {
                if step.action == Action::Replace {
                    let p: id::Statement = view(&step.address, before)?;
                    self.remove_permission(&p.function, &p.statement_id).await?;
                }
                self.add_permission(&step.address, &after).await
            }
            (ResourceKind::S3Trigger, Action::Delete) => {
                let t: id::Trigger = view(&step.address, before)?;
                self.write_trigger(&t.bucket, &t.id, None).await
            }
            (ResourceKind::S3Trigger, _) => {
                let t: TriggerAttrs = view(&step.address, &after)?;
                self.write_trigger(&t.bucket, &t.id, Some(&t)).await
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
        let ours: BTreeMap<String, String> = view::<id::Tagged>(address, &wanted.attrs)?
            .tags
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
                    view::<id::Named>(address, &wanted.attrs)?.name
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

/// `attrs` of `address` through its kind's typed view; attributes that are not what scar
/// writes for that kind stop the step, naming the resource and the field.
/// [`view`] of what refresh read (a step's `before`); `None` for a create, which read
/// nothing.
pub(super) fn view_read<T: Attrs>(
    address: &crate::model::Address,
    before: &Map<String, Value>,
) -> Result<Option<T>, CloudError> {
    if before.is_empty() {
        Ok(None)
    } else {
        view(address, before).map(Some)
    }
}

pub(super) fn view<T: Attrs>(
    address: &crate::model::Address,
    attrs: &Map<String, Value>,
) -> Result<T, CloudError> {
    T::from_attrs(address, attrs)
        .map_err(|e| CloudError::new(ErrorKind::Invalid, "plan", e.to_string()))
}
