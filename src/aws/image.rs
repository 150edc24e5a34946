//! The stack's ECR repository and its functions' assembled images: reading the repository,
//! resolving base images to digests for the plan, and carrying out `image_repository` and
//! `function_image` steps (assemble through the registry API, push, record).

use std::collections::{BTreeMap, HashMap};

use aws_sdk_ecr::types as et;
use futures::{StreamExt, stream};
use serde_json::{Map, Value, json};

use super::AwsCloud;
use super::kind::{Adapter, Adopt, Check, Read, Write, found, view};
use crate::cloud::{CloudError, ErrorKind};
use crate::image::build;
use crate::image::reference::ImageRef;
use crate::manifest::names;
use crate::model::attrs::{Attrs, ImageAttrs, RepositoryAttrs, id, to_attrs};
use crate::model::live::{LiveResource, LiveState, Owner};
use crate::model::{Address, DesiredGraph, ResourceKind, tags};
use crate::plan::Action;

/// The stack repository's lifecycle: images no tag names (those replaced by a rebuild) expire
/// after a week, time enough for any apply that was cut short to be run again.
const LIFECYCLE_POLICY: &str = r#"{"rules":[{"rulePriority":1,"description":"scar: images replaced by a rebuild","selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":7},"action":{"type":"expire"}}]}"#;

/// Base images resolved at once during a plan.
const RESOLVE_CONCURRENCY: usize = 8;

fn invalid(op: &str, msg: impl Into<String>) -> CloudError {
    CloudError::new(ErrorKind::Invalid, op, msg.into())
}

impl AwsCloud {
    /// The stack's image repository, if it exists.
    pub(super) async fn read_image_repository(
        &self,
        stack: &str,
    ) -> Result<Vec<(Address, LiveResource)>, CloudError> {
        let name = crate::manifest::names::derive(stack, "x").ecr_repository;
        let Some((arn, uri)) = self.describe_repository(&name).await? else {
            return Ok(Vec::new());
        };
        let tags = self.repository_tags(&arn).await?;
        let owner = Owner::from_tags(stack, &tags);
        let attrs = to_attrs(&RepositoryAttrs {
            name: name.clone(),
            tags,
        });
        let mut outputs = BTreeMap::new();
        outputs.insert("uri".to_owned(), json!(uri));
        Ok(vec![(
            Address::new(ResourceKind::ImageRepository, name),
            LiveResource {
                attrs,
                owner,
                fingerprint: None,
                outputs,
            },
        )])
    }

    /// The repository's ARN and URI, or `None` when it does not exist.
    pub(super) async fn describe_repository(
        &self,
        name: &str,
    ) -> Result<Option<(String, String)>, CloudError> {
        let r = self
            .call(name, "ecr:DescribeRepositories", || {
                self.ecr
                    .describe_repositories()
                    .repository_names(name)
                    .send()
            })
            .await;
        Ok(found(r)?.and_then(|out| {
            out.repositories().first().map(|r| {
                (
                    r.repository_arn().unwrap_or_default().to_owned(),
                    r.repository_uri().unwrap_or_default().to_owned(),
                )
            })
        }))
    }

    pub(super) async fn repository_tags(
        &self,
        arn: &str,
    ) -> Result<BTreeMap<String, String>, CloudError> {
        let out = self
            .call(arn, "ecr:ListTagsForResource", || {
                self.ecr.list_tags_for_resource().resource_arn(arn).send()
            })
            .await?;
        Ok(out
            .tags()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect())
    }

    /// Resolves the base image of every desired `function_image` that exists, and sets the
    /// digest it points at now as that image's `base_digest` output: the plan then shows
    /// `~ base_digest` when the tag moved. One `HEAD` per distinct base.
    pub(super) async fn resolve_bases(
        &self,
        desired: &DesiredGraph,
        live: &mut LiveState,
    ) -> Result<(), CloudError> {
        let mut wanted: HashMap<String, Vec<Address>> = HashMap::new();
        for r in &desired.resources {
            if r.address.kind != ResourceKind::FunctionImage || live.get(&r.address).is_none() {
                continue;
            }
            let image: ImageAttrs = view(&r.address, &r.attrs)?;
            wanted
                .entry(image.base)
                .or_default()
                .push(r.address.clone());
        }
        if wanted.is_empty() {
            return Ok(());
        }
        let registry = self
            .registry()
            .map_err(|e| invalid("resolving base images", e))?;
        let registry = &registry;
        let resolved: Vec<(String, Result<String, String>)> = stream::iter(wanted.keys().cloned())
            .map(|base| async move {
                let r = match ImageRef::parse(&base) {
                    Ok(image) => registry.resolve(&image).await.map_err(|e| e.to_string()),
                    Err(e) => Err(e),
                };
                (base, r)
            })
            .buffer_unordered(RESOLVE_CONCURRENCY)
            .collect()
            .await;
        for (base, r) in resolved {
            let digest = r.map_err(|e| {
                CloudError::new(
                    ErrorKind::Other,
                    "resolving a base image",
                    format!("{base}: {e}; scar needs the base's digest to tell whether the image must be built again"),
                )
            })?;
            for address in wanted.get(&base).into_iter().flatten() {
                if let Some(l) = live.resources.get_mut(address) {
                    l.outputs.insert("base_digest".into(), json!(digest));
                }
            }
        }
        Ok(())
    }

    /// For each image about to be assembled again because its script or configuration
    /// changed, reads the ones inside the image the function runs now, so the plan shows them
    /// as diffs. Best effort: an image that cannot be read leaves the plan with the digests.
    pub(super) async fn read_image_contents(&self, desired: &DesiredGraph, live: &mut LiveState) {
        let changed: Vec<(Address, String)> = desired
            .resources
            .iter()
            .filter(|r| r.address.kind == ResourceKind::FunctionImage)
            .filter_map(|r| {
                let l = live.get(&r.address)?;
                let want = ImageAttrs::read(&r.attrs).ok()?;
                let have = id::Recorded::read(&l.attrs).ok()?;
                (want.script_sha256 != have.script_sha256
                    || want.config_sha256 != have.config_sha256)
                    .then(|| (r.address.clone(), have.image))
            })
            .collect();
        if changed.is_empty() {
            return;
        }
        let Ok(registry) = self.registry() else {
            return;
        };
        let registry = &registry;
        let read: Vec<(Address, Result<Value, String>)> = stream::iter(changed)
            .map(|(address, image)| async move {
                let r = match ImageRef::parse(&image) {
                    Ok(i) => build::function_config(registry, &i)
                        .await
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(e),
                };
                (address, r)
            })
            .buffer_unordered(RESOLVE_CONCURRENCY)
            .collect()
            .await;
        for (address, r) in read {
            match r {
                Ok(config) => {
                    if let Some(l) = live.resources.get_mut(&address) {
                        let script = config
                            .as_object()
                            .and_then(|c| id::Scripted::read(c).ok())
                            .map(|c| c.script)
                            .unwrap_or_default();
                        l.attrs.insert("script".into(), json!(script));
                        l.attrs.insert("config".into(), config);
                    }
                }
                Err(e) => {
                    tracing::debug!(%address, error = %e, "the image's old script cannot be read; the plan shows its digest");
                }
            }
        }
    }

    /// Creates the repository with its tags, or, when it exists and is the stack's, sets them.
    async fn put_repository(
        &self,
        name: &str,
        wanted: &BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        let ecr_tags: Vec<et::Tag> = wanted
            .iter()
            .filter_map(|(k, v)| et::Tag::builder().key(k).value(v).build().ok())
            .collect();
        let created = self
            .call(name, "ecr:CreateRepository", || {
                self.ecr
                    .create_repository()
                    .repository_name(name)
                    .image_tag_mutability(et::ImageTagMutability::Mutable)
                    .set_tags(Some(ecr_tags.clone()))
                    .send()
            })
            .await;
        let uri = match created {
            Ok(out) => out
                .repository()
                .and_then(|r| r.repository_uri())
                .unwrap_or_default()
                .to_owned(),
            Err(e) if e.kind == ErrorKind::AlreadyExists => {
                let Some((arn, uri)) = self.describe_repository(name).await? else {
                    return Err(e);
                };
                let have = self.repository_tags(&arn).await?;
                let stack = wanted.get(tags::STACK).map_or("", String::as_str);
                if Owner::from_tags(stack, &have) != Owner::ThisStack {
                    return Err(CloudError::new(
                        ErrorKind::AlreadyExists,
                        "ecr:CreateRepository",
                        format!(
                            "the repository {name} exists and is not this stack's; scar leaves it alone"
                        ),
                    ));
                }
                let stale: Vec<String> = have
                    .keys()
                    .filter(|k| !wanted.contains_key(*k) && !k.starts_with("aws:"))
                    .cloned()
                    .collect();
                if !stale.is_empty() {
                    self.call(name, "ecr:UntagResource", || {
                        self.ecr
                            .untag_resource()
                            .resource_arn(&arn)
                            .set_tag_keys(Some(stale.clone()))
                            .send()
                    })
                    .await?;
                }
                self.call(name, "ecr:TagResource", || {
                    self.ecr
                        .tag_resource()
                        .resource_arn(&arn)
                        .set_tags(Some(ecr_tags.clone()))
                        .send()
                })
                .await?;
                uri
            }
            Err(e) => return Err(e),
        };
        // A rebuilt image takes the function's tag from the one before, which is then
        // untagged and used by nothing once the function moved: ECR expires it.
        self.call(name, "ecr:PutLifecyclePolicy", || {
            self.ecr
                .put_lifecycle_policy()
                .repository_name(name)
                .lifecycle_policy_text(LIFECYCLE_POLICY)
                .send()
        })
        .await?;
        let mut o = Map::new();
        o.insert("uri".into(), json!(uri));
        self.record(
            Address::new(ResourceKind::ImageRepository, name.to_owned()),
            o,
        );
        Ok(())
    }

    /// Deletes the repository with its images, after checking it is still the stack's.
    async fn delete_repository(&self, name: &str) -> Result<(), CloudError> {
        let Some((arn, _)) = self.describe_repository(name).await? else {
            return Ok(());
        };
        let have = self.repository_tags(&arn).await?;
        if have.get(tags::MANAGED_BY).map(String::as_str) != Some("scar") {
            return Err(CloudError::new(
                ErrorKind::Conflict,
                "ecr:DeleteRepository",
                format!("the repository {name} no longer carries scar's tags; it was left alone"),
            ));
        }
        let r = self
            .call(name, "ecr:DeleteRepository", || {
                self.ecr
                    .delete_repository()
                    .repository_name(name)
                    .force(true)
                    .send()
            })
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if e.kind == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Deletes one function's image from the repository (by digest); gone is fine.
    async fn delete_image(&self, repository: &str, image: &str) -> Result<(), CloudError> {
        let Some(digest) = image.split_once('@').map(|(_, d)| d.to_owned()) else {
            return Ok(());
        };
        let id = et::ImageIdentifier::builder().image_digest(&digest).build();
        let r = self
            .call(repository, "ecr:BatchDeleteImage", || {
                self.ecr
                    .batch_delete_image()
                    .repository_name(repository)
                    .image_ids(id.clone())
                    .send()
            })
            .await;
        match r {
            Ok(out) if out.image_ids().is_empty() => Ok(()),
            Ok(_) => Ok(()),
            Err(e) if e.kind == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Assembles and pushes function `name`'s image, tagged with the function's name, and
    /// records its URI and the tags that the function step writes.
    async fn build_image(&self, name: &str, after: &Map<String, Value>) -> Result<(), CloudError> {
        const OP: &str = "building the image";
        let want: ImageAttrs = view(&Address::new(ResourceKind::FunctionImage, name), after)?;
        let repository = want.repository.clone();
        let uri = match self.created_output(
            &Address::new(ResourceKind::ImageRepository, repository.clone()),
            "uri",
        ) {
            Some(Value::String(u)) => u,
            _ => {
                self.describe_repository(&repository)
                    .await?
                    .ok_or_else(|| {
                        CloudError::new(
                            ErrorKind::NotFound,
                            "ecr:DescribeRepositories",
                            format!(
                                "the repository {repository} is gone; the next plan creates it"
                            ),
                        )
                    })?
                    .1
            }
        };
        let mut target = ImageRef::parse(&uri).map_err(|e| invalid(OP, e))?;
        target.tag = Some(name.to_owned());
        let spec = want.spec(target).map_err(|e| invalid(OP, e))?;
        let registry = self.registry().map_err(|e| invalid(OP, e))?;
        let built = build::build(&registry, &spec, &|line| {
            tracing::info!(function = name, "{line}");
        })
        .await
        .map_err(|e| CloudError::new(ErrorKind::Other, OP, e.to_string()))?;
        tracing::info!(
            function = name,
            digest = built.digest,
            uploaded_blobs = built.uploaded_blobs,
            uploaded_bytes = built.uploaded_bytes,
            "image pushed"
        );
        let image = format!("{uri}@{}", built.digest);
        let mut record = Map::new();
        for (tag, attribute) in tags::IMAGE_RECORD {
            let v = match attribute {
                "base_digest" => json!(built.base_digest),
                other => after.get(other).cloned().unwrap_or(Value::Null),
            };
            record.insert(tag.to_owned(), v);
        }
        record.insert(tags::IMAGE_DEPLOYED.to_owned(), json!(image));
        let mut o = Map::new();
        o.insert("uri".into(), json!(image));
        o.insert("record".into(), Value::Object(record));
        self.record(
            Address::new(ResourceKind::FunctionImage, name.to_owned()),
            o,
        );
        Ok(())
    }
}

/// The `image_repository` kind: the stack's one ECR repository.
pub(super) struct Repository;

impl Adapter for Repository {
    const READ: Read = Read::Repository;

    async fn write(cloud: &AwsCloud, w: &Write<'_>) -> Result<(), CloudError> {
        match w.step.action {
            Action::Delete => cloud.delete_repository(w.name()).await,
            Action::NoOp => Ok(()),
            Action::Create | Action::Update | Action::Replace => {
                cloud.put_repository(w.name(), w.tags).await
            }
        }
    }

    async fn owner(cloud: &AwsCloud, c: &Check<'_>) -> Result<Owner, CloudError> {
        let name = names::derive(c.stack, "x").ecr_repository;
        let Some((arn, _)) = cloud.describe_repository(&name).await? else {
            return Ok(Owner::Unowned);
        };
        Ok(Owner::from_tags(
            c.stack,
            &cloud.repository_tags(&arn).await?,
        ))
    }

    async fn adopt(_: &AwsCloud, a: &Adopt<'_>) -> Result<(), CloudError> {
        Err(a.never())
    }

    /// Its URI: known once its step ran.
    fn resolve(cloud: &AwsCloud, name: &str, attribute: &str, _: &str) -> Option<Value> {
        cloud.created_output(
            &Address::new(ResourceKind::ImageRepository, name),
            attribute,
        )
    }
}

/// The `function_image` kind: a function's assembled image, recorded on the function (read
/// with it) and kept in the stack's repository.
pub(super) struct FunctionImage;

impl Adapter for FunctionImage {
    const READ: Read = Read::Functions;

    async fn write(cloud: &AwsCloud, w: &Write<'_>) -> Result<(), CloudError> {
        match w.step.action {
            Action::Delete => {
                let i: id::Recorded = view(&w.step.address, w.before)?;
                cloud.delete_image(&i.repository, &i.image).await
            }
            Action::NoOp => Ok(()),
            Action::Create | Action::Update | Action::Replace => {
                cloud.build_image(w.name(), w.after).await
            }
        }
    }

    /// Not a resource of its own: the image lives in the stack's repository and is recorded
    /// on its function, whose own step is checked. Nothing to read.
    async fn owner(_: &AwsCloud, _: &Check<'_>) -> Result<Owner, CloudError> {
        Ok(Owner::ThisStack)
    }

    async fn adopt(_: &AwsCloud, a: &Adopt<'_>) -> Result<(), CloudError> {
        Err(a.never())
    }

    /// Its digest is its content's: known once its step ran.
    fn resolve(cloud: &AwsCloud, name: &str, attribute: &str, _: &str) -> Option<Value> {
        cloud.created_output(&Address::new(ResourceKind::FunctionImage, name), attribute)
    }
}
