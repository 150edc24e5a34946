//! S3: buckets, and their notification configurations, read-merged-written under a
//! per-bucket lock and lease so every foreign entry survives.

use std::collections::BTreeMap;

use aws_sdk_s3::types as st;
use serde_json::Value;

use super::kind::{Adapter, Adopt, Check, Read, Write, gone_is_fine, view};
use super::{AwsCloud, classify};
use crate::cloud::retry::with_retry;
use crate::cloud::{CloudError, ErrorKind};
use crate::manifest::names;
use crate::model::attrs::{BucketAttrs, TriggerAttrs, id, to_attrs};
use crate::model::live::{LiveResource, Owner};
use crate::model::{Address, DesiredGraph, ResourceKind, short_hash};
use crate::plan::Action;

impl AwsCloud {
    /// A bucket (exists? where? whose?) and the stack's own entries in its notification
    /// configuration.
    pub(super) async fn read_bucket(
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
        let (t, owner) = match self.bucket_tags(bucket).await {
            Ok(t) => {
                let owner = Owner::from_tags(stack, &t);
                (t, owner)
            }
            Err(e) => (BTreeMap::new(), Owner::Unknown(e.to_string())),
        };
        let mut out = Vec::new();
        let address = Address::new(ResourceKind::Bucket, bucket);
        let empty = if owner == Owner::ThisStack && desired.get(&address).is_none() {
            Some(self.is_empty(bucket).await?)
        } else {
            None
        };
        let attrs = to_attrs(&BucketAttrs {
            name: bucket.to_owned(),
            region: region.to_owned(),
            tags: t,
            empty,
        });
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

    /// The bucket's tags; none when it has none (S3 answers "no such tag set").
    async fn bucket_tags(&self, bucket: &str) -> Result<BTreeMap<String, String>, CloudError> {
        let tagging = self
            .call(bucket, "s3:GetBucketTagging", || {
                self.s3.get_bucket_tagging().bucket(bucket).send()
            })
            .await;
        match tagging {
            Ok(o) => Ok(o
                .tag_set()
                .iter()
                .map(|t| (t.key().to_owned(), t.value().to_owned()))
                .collect()),
            Err(e) if e.kind == ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(e),
        }
    }

    pub(super) async fn is_empty(&self, bucket: &str) -> Result<bool, CloudError> {
        let o = self
            .call(bucket, "s3:ListObjectsV2", || {
                self.s3.list_objects_v2().bucket(bucket).max_keys(1).send()
            })
            .await?;
        Ok(o.key_count().unwrap_or(0) == 0 && o.contents().is_empty())
    }

    pub(super) async fn read_triggers(
        &self,
        stack: &str,
        bucket: &str,
    ) -> Result<Vec<(Address, LiveResource)>, CloudError> {
        let Some(config) = self.notifications(bucket).await? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let lambdas = config.lambda_function_configurations().iter().map(|c| {
            let target = (Some(c.lambda_function_arn().to_owned()), None);
            (c.id(), target, c.events(), c.filter())
        });
        // A queued input's entry sends to its queue; its Id names the stack as a function's
        // does (`scar.<stack>.<function>.<hash>`).
        let queues = config.queue_configurations().iter().map(|c| {
            let target = (None, Some(c.queue_arn().to_owned()));
            (c.id(), target, c.events(), c.filter())
        });
        for (id, (function_arn, queue_arn), events, filter) in lambdas.chain(queues) {
            let Some(id) = id.filter(|id| {
                names::trigger_id_is_stacks(stack, id, function_arn.as_deref().unwrap_or(""))
            }) else {
                continue;
            };
            let mut events: Vec<String> = events.iter().map(|e| e.as_str().to_owned()).collect();
            events.sort();
            let rule =
                |name: st::FilterRuleName| rule(filter, &name).unwrap_or_default().to_owned();
            let attrs = to_attrs(&TriggerAttrs {
                bucket: bucket.to_owned(),
                id: id.to_owned(),
                function_arn,
                queue_arn,
                events,
                prefix: rule(st::FilterRuleName::Prefix),
                suffix: rule(st::FilterRuleName::Suffix),
            });
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

    /// One `CreateBucket` of `name` in `region`.
    async fn send_create_bucket(&self, name: &str, region: &str) -> Result<(), CloudError> {
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
            .map(|_| ())
            .map_err(|e| classify("s3:CreateBucket", &e))
    }

    pub(super) async fn create_bucket(
        &self,
        name: &str,
        region: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        let r = with_retry(self.backoff, name, || self.send_create_bucket(name, region)).await;
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

    /// Whether the bucket `name` is in this account, as S3 answers a `CreateBucket` of it: a
    /// bucket of this account's already exists (or, in us-east-1, the call succeeds: S3 answers
    /// so for the owner), another account's is refused. [`Owner::ThisStack`] or
    /// [`Owner::Unowned`].
    async fn bucket_is_this_accounts(&self, name: &str, region: &str) -> Result<Owner, CloudError> {
        match self.send_create_bucket(name, region).await {
            Ok(_) => Ok(Owner::ThisStack),
            Err(e) if e.kind == ErrorKind::AlreadyExists => Ok(Owner::ThisStack),
            Err(e) if e.message.contains("BucketAlreadyExists") => Ok(Owner::Unowned),
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

    pub(super) async fn delete_bucket(&self, name: &str) -> Result<(), CloudError> {
        let r = self
            .call(name, "s3:DeleteBucket", || {
                self.s3.delete_bucket().bucket(name).send()
            })
            .await;
        gone_is_fine(r)
    }

    /// Writes one notification entry: `entry` replaces (or adds) the entry with Id `id`, or
    /// `None` removes it. Every other entry, of any kind, is written back as read. Holding
    /// the bucket's notification lease (no other scar writes the configuration meanwhile),
    /// it reads, merges, writes, then reads back: success only once the entry is there (or
    /// gone), so a writer outside scar that overwrote it is caught, and merged again.
    pub(super) async fn write_trigger(
        &self,
        bucket: &str,
        id: &str,
        entry: Option<&TriggerAttrs>,
    ) -> Result<(), CloudError> {
        self.write_entries(bucket, id, &|c| c.id() == Some(id), entry)
            .await
    }

    /// [`Self::write_trigger`], dropping every Lambda entry `drop` picks (the entry `id`
    /// among them) in the same write.
    async fn write_entries(
        &self,
        bucket: &str,
        id: &str,
        drop: &(dyn Fn(&st::LambdaFunctionConfiguration) -> bool + Sync),
        entry: Option<&TriggerAttrs>,
    ) -> Result<(), CloudError> {
        let lock = self.bucket_lock(bucket);
        let _guard = lock.lock().await;
        self.with_bucket_lease(bucket, || async {
            for _ in 0..3 {
                self.merge_entries(bucket, id, drop, entry).await?;
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
    pub(super) async fn trigger_is_written(
        &self,
        bucket: &str,
        id: &str,
        entry: Option<&TriggerAttrs>,
    ) -> Result<bool, CloudError> {
        let current = match self.notifications(bucket).await {
            Ok(c) => c,
            Err(e) if e.kind == ErrorKind::NotFound && entry.is_none() => return Ok(true),
            Err(e) => return Err(e),
        };
        let lambda = current
            .as_ref()
            .map(|c| c.lambda_function_configurations())
            .unwrap_or_default()
            .iter()
            .find(|c| c.id() == Some(id))
            .map(|c| c.lambda_function_arn().to_owned());
        let queue = current
            .as_ref()
            .map(|c| c.queue_configurations())
            .unwrap_or_default()
            .iter()
            .find(|c| c.id() == Some(id))
            .map(|c| c.queue_arn().to_owned());
        Ok(match entry {
            None => lambda.is_none() && queue.is_none(),
            Some(t) => lambda == t.function_arn && queue == t.queue_arn,
        })
    }

    /// Takes over the notification entries of the function `name`, which the stack has just
    /// adopted: in each bucket the stack's manifests give it an input in, the entries SCAR 4.x
    /// wrote for it are replaced by the stack's in the same write that adds it, so that S3 never
    /// holds two overlapping entries (it would refuse them) and the function is never without
    /// its trigger. An entry is SCAR's by its shape: SCAR writes `s3:ObjectCreated:*` with at
    /// most a prefix ending in `/`, and no suffix. Entries other tools wrote for the function
    /// (another event, a suffix) are kept as they are. What was replaced, one line per entry
    /// (`bucket: entry ID (prefix P)`).
    ///
    /// # Errors
    /// The first S3 error (S3 refuses the write when a kept entry overlaps the stack's).
    pub async fn take_over_triggers(
        &self,
        desired: &crate::model::DesiredGraph,
        name: &str,
        account: &str,
    ) -> Result<Vec<String>, CloudError> {
        let arn = format!("arn:aws:lambda:{}:{account}:function:{name}", self.region);
        let replaced = std::sync::Mutex::new(Vec::<String>::new());
        for d in desired
            .resources
            .iter()
            .filter(|d| d.address.kind == ResourceKind::S3Trigger)
        {
            let resolved = self.resolve(account, &d.attrs);
            let t: TriggerAttrs = super::kind::view(&d.address, &resolved)?;
            if t.function_arn.as_deref() != Some(arn.as_str()) {
                continue;
            }
            let stack = desired.stack.as_str();
            let scars = |c: &st::LambdaFunctionConfiguration| {
                c.lambda_function_arn() == arn
                    && !c
                        .id()
                        .is_some_and(|id| names::trigger_id_is_stacks(stack, id, &arn))
                    && written_by_scar4(c)
            };
            let drop = |c: &st::LambdaFunctionConfiguration| {
                let goes = scars(c);
                if goes && let Ok(mut r) = replaced.lock() {
                    let line = format!(
                        "{}: entry {} (prefix {})",
                        t.bucket,
                        c.id().unwrap_or("without an id"),
                        rule(c.filter(), &st::FilterRuleName::Prefix).unwrap_or("none")
                    );
                    if !r.contains(&line) {
                        r.push(line);
                    }
                }
                goes || c.id() == Some(t.id.as_str())
            };
            self.write_entries(&t.bucket, &t.id, &drop, Some(&t))
                .await?;
        }
        Ok(replaced.into_inner().unwrap_or_default())
    }

    /// One read-merge-write of `bucket`'s notification configuration: the Lambda entries
    /// `drop` picks and the queue entry of Id `dropped` go, `entry` (if any) comes; the rest
    /// (other tools' entries, queues, topics, EventBridge) stays as it was.
    async fn merge_entries(
        &self,
        bucket: &str,
        dropped: &str,
        drop: &(dyn Fn(&st::LambdaFunctionConfiguration) -> bool + Sync),
        entry: Option<&TriggerAttrs>,
    ) -> Result<(), CloudError> {
        let id = entry.map(|e| e.id.as_str()).unwrap_or_default();
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
        let mut lambdas: Vec<st::LambdaFunctionConfiguration> =
            existing.iter().filter(|c| !drop(c)).cloned().collect();
        let existing_queues = current
            .as_ref()
            .map(|c| c.queue_configurations())
            .unwrap_or_default();
        let mut queues: Vec<st::QueueConfiguration> = existing_queues
            .iter()
            .filter(|c| c.id() != Some(dropped))
            .cloned()
            .collect();
        let had = lambdas.len() != existing.len() || queues.len() != existing_queues.len();
        if entry.is_none() && !had {
            return Ok(());
        }
        if let Some(a) = entry {
            let mut rules = Vec::new();
            for (name, v) in [
                (st::FilterRuleName::Prefix, &a.prefix),
                (st::FilterRuleName::Suffix, &a.suffix),
            ] {
                if !v.is_empty() {
                    rules.push(st::FilterRule::builder().name(name).value(v).build());
                }
            }
            let filter = (!rules.is_empty()).then(|| {
                st::NotificationConfigurationFilter::builder()
                    .key(
                        st::S3KeyFilter::builder()
                            .set_filter_rules(Some(rules))
                            .build(),
                    )
                    .build()
            });
            let events: Vec<st::Event> = a
                .events
                .iter()
                .map(|e| st::Event::from(e.as_str()))
                .collect();
            let invalid = |e: aws_sdk_s3::error::BuildError| {
                CloudError::new(
                    ErrorKind::Invalid,
                    "s3:PutBucketNotificationConfiguration",
                    e.to_string(),
                )
            };
            match (&a.function_arn, &a.queue_arn) {
                (_, Some(queue)) => queues.push(
                    st::QueueConfiguration::builder()
                        .id(id)
                        .queue_arn(queue)
                        .set_events(Some(events))
                        .set_filter(filter)
                        .build()
                        .map_err(invalid)?,
                ),
                (Some(function), None) => lambdas.push(
                    st::LambdaFunctionConfiguration::builder()
                        .id(id)
                        .lambda_function_arn(function)
                        .set_events(Some(events))
                        .set_filter(filter)
                        .build()
                        .map_err(invalid)?,
                ),
                (None, None) => {
                    return Err(CloudError::new(
                        ErrorKind::Invalid,
                        "s3:PutBucketNotificationConfiguration",
                        format!("the notification entry {id} names neither a function nor a queue"),
                    ));
                }
            }
        }
        let config = st::NotificationConfiguration::builder()
            .set_lambda_function_configurations(Some(lambdas))
            .set_queue_configurations(Some(queues))
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

/// The value of `c`'s filter rule `name`, when it has one.
/// The `bucket` kind.
pub(super) struct Bucket;

impl Adapter for Bucket {
    const READ: Read = Read::Buckets;

    async fn write(cloud: &AwsCloud, w: &Write<'_>) -> Result<(), CloudError> {
        match w.step.action {
            Action::Delete => cloud.delete_bucket(w.name()).await,
            Action::Create => {
                let b: BucketAttrs = view(&w.step.address, w.after)?;
                cloud.create_bucket(&b.name, &b.region, w.tags).await
            }
            Action::Update | Action::Replace => cloud.tag_bucket(w.name(), w.tags).await,
            Action::NoOp => Ok(()),
        }
    }

    async fn owner(cloud: &AwsCloud, c: &Check<'_>) -> Result<Owner, CloudError> {
        let owner = Owner::from_tags(c.stack, &cloud.bucket_tags(&c.step.address.name).await?);
        if owner == Owner::Unowned && c.step.adopts {
            let b: BucketAttrs = view(&c.step.address, c.step.after.as_ref().unwrap_or(c.before))?;
            return cloud.bucket_is_this_accounts(&b.name, &b.region).await;
        }
        Ok(owner)
    }

    async fn adopt(cloud: &AwsCloud, a: &Adopt<'_>) -> Result<(), CloudError> {
        let mut all = cloud.bucket_tags(a.name()).await?;
        all.extend(a.ours.clone());
        cloud.tag_bucket(a.name(), &all).await
    }
}

/// The `s3_trigger` kind: one entry of a bucket's notification configuration, the stack's by
/// its Id.
pub(super) struct Trigger;

impl Adapter for Trigger {
    const READ: Read = Read::Buckets;

    async fn write(cloud: &AwsCloud, w: &Write<'_>) -> Result<(), CloudError> {
        if w.step.action == Action::Delete {
            let t: id::Trigger = view(&w.step.address, w.before)?;
            return cloud.write_trigger(&t.bucket, &t.id, None).await;
        }
        let t: TriggerAttrs = view(&w.step.address, w.after)?;
        cloud.write_trigger(&t.bucket, &t.id, Some(&t)).await
    }

    async fn owner(_: &AwsCloud, c: &Check<'_>) -> Result<Owner, CloudError> {
        let t: id::Trigger = view(&c.step.address, c.before)?;
        Ok(
            if names::trigger_id_is_stacks(c.stack, &t.id, &t.function_arn) {
                Owner::ThisStack
            } else {
                Owner::Unowned
            },
        )
    }

    async fn adopt(_: &AwsCloud, a: &Adopt<'_>) -> Result<(), CloudError> {
        Err(a.untagged())
    }
}

fn rule<'a>(
    filter: Option<&'a st::NotificationConfigurationFilter>,
    name: &st::FilterRuleName,
) -> Option<&'a str> {
    filter
        .and_then(|f| f.key())
        .into_iter()
        .flat_map(|k| k.filter_rules())
        // AWS answers `Prefix`; moto as sent (`prefix`).
        .filter(|r| {
            r.name()
                .is_some_and(|n| n.as_str().eq_ignore_ascii_case(name.as_str()))
        })
        .filter_map(|r| r.value())
        .next_back()
}

/// True for an entry of the shape SCAR 4.x writes (scar.md, 4.1): `s3:ObjectCreated:*` alone,
/// and at most a prefix rule ending in `/`; never a suffix.
fn written_by_scar4(c: &st::LambdaFunctionConfiguration) -> bool {
    let events: Vec<&str> = c.events().iter().map(st::Event::as_str).collect();
    let rules = c
        .filter()
        .and_then(|f| f.key())
        .map_or(0, |k| k.filter_rules().len());
    let prefix = rule(c.filter(), &st::FilterRuleName::Prefix);
    events == ["s3:ObjectCreated:*"]
        && rule(c.filter(), &st::FilterRuleName::Suffix).is_none()
        && rules <= 1
        && prefix.is_none_or(|p| p.ends_with('/'))
}
