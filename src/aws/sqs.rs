//! SQS: the queues of queued inputs (and their dead-letter queues), and the event source
//! mappings by which Lambda reads them. A queue is the stack's by its tags; a mapping is the
//! stack's when its function is.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_lambda::types as lt;
use aws_sdk_sqs::types::QueueAttributeName as Qa;
use serde_json::{Value, json};

use super::kind::{Adapter, Adopt, Check, Read, Write, found, gone_is_fine, stale_tag_keys, view};
use super::{AwsCloud, classify};
use crate::cloud::retry::{PROPAGATION, until_ready};
use crate::cloud::{CloudError, ErrorKind};
use crate::model::attrs::{MappingAttrs, QueueAttrs, to_attrs};
use crate::model::live::{LiveResource, Owner};
use crate::model::{Address, DesiredGraph, ResourceKind, short_hash};
use crate::plan::Action;

/// The Sid of the one statement scar writes in a queued input's queue policy.
const SEND_SID: &str = "scar-s3-sends";

/// The policy that lets S3 send exactly `bucket`'s events (of `account`) to `queue_arn`.
fn send_policy(queue_arn: &str, bucket: &str, account: &str) -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": SEND_SID,
            "Effect": "Allow",
            "Principal": {"Service": "s3.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": {
                "ArnEquals": {"aws:SourceArn": format!("arn:aws:s3:::{bucket}")},
                "StringEquals": {"aws:SourceAccount": account}
            }
        }]
    })
    .to_string()
}

/// The bucket and account a queue policy lets send, when it is exactly the policy scar
/// writes for `queue_arn`; `("", "")` for a policy of any other shape (a change to undo).
fn read_sender(policy: &str, queue_arn: &str) -> (String, String) {
    let ours = || -> Option<(String, String)> {
        let v: Value = serde_json::from_str(policy).ok()?;
        let [s] = v.get("Statement")?.as_array()?.as_slice() else {
            return None;
        };
        let bucket = s
            .pointer("/Condition/ArnEquals/aws:SourceArn")?
            .as_str()?
            .strip_prefix("arn:aws:s3:::")?;
        let account = s
            .pointer("/Condition/StringEquals/aws:SourceAccount")?
            .as_str()?;
        let rewritten: Value =
            serde_json::from_str(&send_policy(queue_arn, bucket, account)).ok()?;
        (rewritten.get("Statement")?.get(0)? == s).then(|| (bucket.to_owned(), account.to_owned()))
    };
    ours().unwrap_or_default()
}

fn int_attr(attrs: &std::collections::HashMap<Qa, String>, name: &Qa) -> i32 {
    attrs
        .get(name)
        .and_then(|v| v.parse().ok())
        .unwrap_or_default()
}

impl AwsCloud {
    fn queue_arn(&self, account: &str, name: &str) -> String {
        format!("arn:aws:sqs:{}:{account}:{name}", self.region)
    }

    /// The URL of queue `name`; `None` when it does not exist.
    pub(super) async fn queue_url(&self, name: &str) -> Result<Option<String>, CloudError> {
        let r = self
            .call(name, "sqs:GetQueueUrl", || {
                self.sqs.get_queue_url().queue_name(name).send()
            })
            .await;
        Ok(found(r)?.and_then(|o| o.queue_url().map(str::to_owned)))
    }

    async fn queue_tags(
        &self,
        name: &str,
        url: &str,
    ) -> Result<BTreeMap<String, String>, CloudError> {
        let out = self
            .call(name, "sqs:ListQueueTags", || {
                self.sqs.list_queue_tags().queue_url(url).send()
            })
            .await?;
        Ok(out
            .tags()
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default())
    }

    /// Queue `name` as scar sees it, its owner and its outputs (`arn`, `url`); `None` when it
    /// does not exist.
    async fn read_queue(
        &self,
        stack: &str,
        name: &str,
    ) -> Result<Option<(Address, LiveResource)>, CloudError> {
        let Some(url) = self.queue_url(name).await? else {
            return Ok(None);
        };
        let out = self
            .call(name, "sqs:GetQueueAttributes", || {
                self.sqs
                    .get_queue_attributes()
                    .queue_url(&url)
                    .attribute_names(Qa::All)
                    .send()
            })
            .await;
        let Some(out) = found(out)? else {
            return Ok(None);
        };
        let a = out.attributes().cloned().unwrap_or_default();
        let arn = a.get(&Qa::QueueArn).cloned().unwrap_or_default();
        let redrive: Option<Value> = a
            .get(&Qa::RedrivePolicy)
            .and_then(|p| serde_json::from_str(p).ok());
        let (sender_bucket, sender_account) = match a.get(&Qa::Policy).filter(|p| !p.is_empty()) {
            Some(p) => {
                let (b, acc) = read_sender(p, &arn);
                (Some(b), Some(acc))
            }
            None => (None, None),
        };
        let tags = self.queue_tags(name, &url).await?;
        let owner = Owner::from_tags(stack, &tags);
        let attrs = to_attrs(&QueueAttrs {
            name: name.to_owned(),
            visibility_timeout: int_attr(&a, &Qa::VisibilityTimeout),
            retention: int_attr(&a, &Qa::MessageRetentionPeriod),
            dead_letter_arn: redrive
                .as_ref()
                .and_then(|r| r.get("deadLetterTargetArn"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            // SQS answers the count as a number; some emulators as a string.
            max_receives: redrive.as_ref().and_then(|r| {
                let c = r.get("maxReceiveCount")?;
                c.as_i64()
                    .or_else(|| c.as_str().and_then(|s| s.parse().ok()))
                    .and_then(|n| i32::try_from(n).ok())
            }),
            sender_bucket,
            sender_account,
            tags,
        });
        Ok(Some((
            Address::new(ResourceKind::Queue, name),
            LiveResource {
                fingerprint: Some(short_hash(&Value::Object(attrs.clone()).to_string())),
                attrs,
                owner,
                outputs: [
                    ("arn".to_owned(), json!(arn)),
                    ("url".to_owned(), json!(url)),
                ]
                .into(),
            },
        )))
    }

    /// The queues the manifests name and those SQS lists under the stack's prefix
    /// (`scar-<stack>-`) that are tagged as the stack's, and the mapping that reads each.
    pub(super) async fn read_queues(
        &self,
        stack: &str,
        desired: &DesiredGraph,
    ) -> Result<Vec<(Address, LiveResource)>, CloudError> {
        let wanted: BTreeSet<String> = desired
            .resources
            .iter()
            .filter(|r| r.address.kind == ResourceKind::Queue)
            .map(|r| r.address.name.clone())
            .collect();
        let prefix = format!("scar-{stack}-");
        let mut listed = BTreeSet::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .call(&prefix, "sqs:ListQueues", || {
                    self.sqs
                        .list_queues()
                        .queue_name_prefix(&prefix)
                        .max_results(1000)
                        .set_next_token(token.clone())
                        .send()
                })
                .await?;
            for url in out.queue_urls() {
                if let Some(name) = url.rsplit('/').next() {
                    listed.insert(name.to_owned());
                }
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => break,
            }
        }
        let names: Vec<String> = wanted.union(&listed).cloned().collect();
        let reads =
            futures::future::join_all(names.iter().map(|n| self.read_queue(stack, n))).await;
        let mut out = Vec::new();
        for r in reads {
            let Some((address, q)) = r? else { continue };
            // Another stack's name may start with this one's prefix: what is not named here
            // and not tagged as this stack's is none of its business.
            if q.owner != Owner::ThisStack && !wanted.contains(&address.name) {
                continue;
            }
            if let Some(m) = self.read_mapping(&address.name, &q).await? {
                out.push(m);
            }
            out.push((address, q));
        }
        Ok(out)
    }

    /// The event source mapping reading `queue` (read as `q`), owned as the queue is.
    async fn read_mapping(
        &self,
        queue: &str,
        q: &LiveResource,
    ) -> Result<Option<(Address, LiveResource)>, CloudError> {
        let Some(arn) = q.outputs.get("arn").and_then(Value::as_str) else {
            return Ok(None);
        };
        let mappings = self.list_mappings(queue, Some(arn), None).await?;
        let Some(m) = mappings.first() else {
            return Ok(None);
        };
        let function = m
            .function_arn()
            .and_then(crate::manifest::names::function_of_arn)
            .unwrap_or_default()
            .to_owned();
        let state = m.state().unwrap_or_default();
        let attrs = to_attrs(&MappingAttrs {
            function,
            queue_arn: arn.to_owned(),
            batch_size: m.batch_size().unwrap_or_default(),
            maximum_concurrency: m.scaling_config().and_then(|s| s.maximum_concurrency()),
            report_batch_item_failures: m
                .function_response_types()
                .contains(&lt::FunctionResponseType::ReportBatchItemFailures),
            // Lambda answers a state, moto sometimes none (then the mapping is enabled).
            enabled: !matches!(state, "Disabled" | "Disabling"),
            uuid: m.uuid().unwrap_or_default().to_owned(),
        });
        Ok(Some((
            Address::new(ResourceKind::EventSourceMapping, queue),
            LiveResource {
                fingerprint: Some(short_hash(&Value::Object(attrs.clone()).to_string())),
                attrs,
                owner: q.owner.clone(),
                outputs: BTreeMap::new(),
            },
        )))
    }

    /// The SQS attributes scar sets on a queue.
    fn queue_attributes(&self, account: &str, q: &QueueAttrs) -> Vec<(Qa, String)> {
        let mut a = vec![
            (Qa::VisibilityTimeout, q.visibility_timeout.to_string()),
            (Qa::MessageRetentionPeriod, q.retention.to_string()),
        ];
        if let (Some(target), Some(n)) = (&q.dead_letter_arn, q.max_receives) {
            a.push((
                Qa::RedrivePolicy,
                json!({"deadLetterTargetArn": target, "maxReceiveCount": n}).to_string(),
            ));
        }
        let policy = match (&q.sender_bucket, &q.sender_account) {
            (Some(b), Some(acc)) => send_policy(&self.queue_arn(account, &q.name), b, acc),
            _ => String::new(),
        };
        a.push((Qa::Policy, policy));
        a
    }

    async fn create_queue(
        &self,
        account: &str,
        q: &QueueAttrs,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        let attributes: std::collections::HashMap<Qa, String> = self
            .queue_attributes(account, q)
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .collect();
        // A queue deleted a moment ago keeps its name for 60 seconds.
        until_ready(PROPAGATION, &q.name, || {
            self.call(&q.name, "sqs:CreateQueue", || {
                self.sqs
                    .create_queue()
                    .queue_name(&q.name)
                    .set_attributes(Some(attributes.clone()))
                    .set_tags(Some(tags.clone().into_iter().collect()))
                    .send()
            })
        })
        .await?;
        Ok(())
    }

    async fn update_queue(
        &self,
        account: &str,
        q: &QueueAttrs,
        w: &Write<'_>,
    ) -> Result<(), CloudError> {
        let url = self.queue_url(&q.name).await?.ok_or_else(|| {
            CloudError::new(
                ErrorKind::NotFound,
                "sqs:GetQueueUrl",
                format!("queue {} is gone; plan again", q.name),
            )
        })?;
        let attributes: std::collections::HashMap<Qa, String> =
            self.queue_attributes(account, q).into_iter().collect();
        self.call(&q.name, "sqs:SetQueueAttributes", || {
            self.sqs
                .set_queue_attributes()
                .queue_url(&url)
                .set_attributes(Some(attributes.clone()))
                .send()
        })
        .await?;
        let stale = stale_tag_keys(&w.step.address, w.before, w.tags)?;
        if !stale.is_empty() {
            self.call(&q.name, "sqs:UntagQueue", || {
                self.sqs
                    .untag_queue()
                    .queue_url(&url)
                    .set_tag_keys(Some(stale.clone()))
                    .send()
            })
            .await?;
        }
        self.tag_queue(&q.name, &url, w.tags).await
    }

    async fn tag_queue(
        &self,
        name: &str,
        url: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        self.call(name, "sqs:TagQueue", || {
            self.sqs
                .tag_queue()
                .queue_url(url)
                .set_tags(Some(tags.clone().into_iter().collect()))
                .send()
        })
        .await?;
        Ok(())
    }

    async fn delete_queue(&self, name: &str) -> Result<(), CloudError> {
        let Some(url) = self.queue_url(name).await? else {
            return Ok(());
        };
        let r = self
            .call(name, "sqs:DeleteQueue", || {
                self.sqs.delete_queue().queue_url(&url).send()
            })
            .await;
        gone_is_fine(r)
    }
}

/// A message received from a queue.
#[derive(Debug, Clone)]
pub struct Message {
    /// Its id.
    pub id: String,
    /// The receipt of this receive, which deletes it or shows it again.
    pub receipt: String,
    /// Its body.
    pub body: String,
    /// When it was first sent (seconds since the epoch; a dead-letter queue keeps it).
    pub sent: u64,
    /// Times it was received.
    pub receives: u64,
}

/// The most messages one listing of a queue takes.
const MAX_LISTED: usize = 10_000;

impl AwsCloud {
    /// Every message in queue `name` (at most 10,000), each hidden from other receivers for
    /// `hide` seconds; `None` when the queue does not exist. Give them back with
    /// [`Self::show_again`] or take them off with [`Self::delete_message`].
    ///
    /// # Errors
    /// When SQS fails.
    pub async fn receive_all(
        &self,
        name: &str,
        hide: i32,
    ) -> Result<Option<Vec<Message>>, CloudError> {
        let Some(url) = self.queue_url(name).await? else {
            return Ok(None);
        };
        let mut out: Vec<Message> = Vec::new();
        while out.len() < MAX_LISTED {
            let got = self
                .call(name, "sqs:ReceiveMessage", || {
                    self.sqs
                        .receive_message()
                        .queue_url(&url)
                        .max_number_of_messages(10)
                        .visibility_timeout(hide)
                        // A long poll asks every server: an empty answer means empty.
                        .wait_time_seconds(1)
                        .message_system_attribute_names(
                            aws_sdk_sqs::types::MessageSystemAttributeName::All,
                        )
                        .send()
                })
                .await?;
            if got.messages().is_empty() {
                break;
            }
            for m in got.messages() {
                let attr = |a: aws_sdk_sqs::types::MessageSystemAttributeName| {
                    m.attributes()
                        .and_then(|x| x.get(&a))
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or_default()
                };
                use aws_sdk_sqs::types::MessageSystemAttributeName as A;
                out.push(Message {
                    id: m.message_id().unwrap_or_default().to_owned(),
                    receipt: m.receipt_handle().unwrap_or_default().to_owned(),
                    body: m.body().unwrap_or_default().to_owned(),
                    sent: attr(A::SentTimestamp) / 1000,
                    receives: attr(A::ApproximateReceiveCount),
                });
            }
        }
        Ok(Some(out))
    }

    /// Makes the messages received with `receipts` visible again at once.
    ///
    /// # Errors
    /// When SQS fails.
    pub async fn show_again(&self, name: &str, receipts: &[String]) -> Result<(), CloudError> {
        let Some(url) = self.queue_url(name).await? else {
            return Ok(());
        };
        for r in receipts {
            let done = self
                .call(name, "sqs:ChangeMessageVisibility", || {
                    self.sqs
                        .change_message_visibility()
                        .queue_url(&url)
                        .receipt_handle(r)
                        .visibility_timeout(0)
                        .send()
                })
                .await;
            gone_is_fine(done)?;
        }
        Ok(())
    }

    /// Sends `body` to queue `name`.
    ///
    /// # Errors
    /// When the queue does not exist, or SQS fails.
    pub async fn send_message(&self, name: &str, body: &str) -> Result<(), CloudError> {
        let url = self.queue_url(name).await?.ok_or_else(|| {
            CloudError::new(
                ErrorKind::NotFound,
                "sqs:GetQueueUrl",
                format!("queue {name} does not exist"),
            )
        })?;
        self.call(name, "sqs:SendMessage", || {
            self.sqs
                .send_message()
                .queue_url(&url)
                .message_body(body)
                .send()
        })
        .await?;
        Ok(())
    }

    /// Deletes the message received with `receipt` from queue `name`.
    ///
    /// # Errors
    /// When SQS fails.
    pub async fn delete_message(&self, name: &str, receipt: &str) -> Result<(), CloudError> {
        let Some(url) = self.queue_url(name).await? else {
            return Ok(());
        };
        let r = self
            .call(name, "sqs:DeleteMessage", || {
                self.sqs
                    .delete_message()
                    .queue_url(&url)
                    .receipt_handle(receipt)
                    .send()
            })
            .await;
        gone_is_fine(r)
    }
}

/// The `queue` kind.
pub(super) struct Queue;

impl Adapter for Queue {
    const READ: Read = Read::Queues;

    async fn write(cloud: &AwsCloud, w: &Write<'_>) -> Result<(), CloudError> {
        match w.step.action {
            Action::Delete => cloud.delete_queue(w.name()).await,
            Action::Create => {
                let q: QueueAttrs = view(&w.step.address, w.after)?;
                cloud.create_queue(w.account, &q, w.tags).await
            }
            Action::Update | Action::Replace => {
                let q: QueueAttrs = view(&w.step.address, w.after)?;
                cloud.update_queue(w.account, &q, w).await
            }
            Action::NoOp => Ok(()),
        }
    }

    async fn owner(cloud: &AwsCloud, c: &Check<'_>) -> Result<Owner, CloudError> {
        let name = &c.step.address.name;
        match cloud.queue_url(name).await? {
            Some(url) => Ok(Owner::from_tags(
                c.stack,
                &cloud.queue_tags(name, &url).await?,
            )),
            None => Ok(Owner::Unowned),
        }
    }

    async fn adopt(cloud: &AwsCloud, a: &Adopt<'_>) -> Result<(), CloudError> {
        let url = cloud.queue_url(a.name()).await?.ok_or_else(|| {
            CloudError::new(
                ErrorKind::NotFound,
                "adopt",
                format!("queue {} does not exist", a.name()),
            )
        })?;
        cloud.tag_queue(a.name(), &url, a.ours).await
    }

    fn resolve(cloud: &AwsCloud, name: &str, _: &str, account: &str) -> Option<Value> {
        Some(Value::String(cloud.queue_arn(account, name)))
    }
}

/// The `event_source_mapping` kind: Lambda reading a queued input's queue. It has no tags
/// scar relies on: it is the stack's when its function is.
pub(super) struct Mapping;

impl AwsCloud {
    async fn create_mapping(&self, m: &MappingAttrs) -> Result<(), CloudError> {
        let function = m.function.as_str();
        // Lambda checks that the function's role may read the queue: a role given that right
        // a moment ago may not have it everywhere yet.
        let r = until_ready(PROPAGATION, function, || async {
            self.lambda_call(function, || async {
                self.lambda
                    .create_event_source_mapping()
                    .function_name(function)
                    .event_source_arn(&m.queue_arn)
                    .batch_size(m.batch_size)
                    .enabled(m.enabled)
                    .function_response_types(lt::FunctionResponseType::ReportBatchItemFailures)
                    .set_scaling_config(
                        m.maximum_concurrency
                            .map(|n| lt::ScalingConfig::builder().maximum_concurrency(n).build()),
                    )
                    .send()
                    .await
                    .map_err(|e| {
                        let mut e = classify("lambda:CreateEventSourceMapping", &e);
                        if e.kind == ErrorKind::Invalid
                            && e.message
                                .contains("execution role does not have permissions")
                        {
                            e.kind = ErrorKind::NotReady;
                        }
                        e
                    })
            })
            .await
        })
        .await;
        match r {
            Ok(_) => Ok(()),
            // A create cut short after Lambda made it: the mapping is there, make it what the
            // plan says.
            Err(e) if e.kind == ErrorKind::AlreadyExists => {
                let uuid = self.mapping_uuid(m).await?;
                self.update_mapping(&uuid, m).await
            }
            Err(e) => Err(e),
        }
    }

    /// The event source mappings reading `queue_arn`, of `function`, or both; every page.
    async fn list_mappings(
        &self,
        what: &str,
        queue_arn: Option<&str>,
        function: Option<&str>,
    ) -> Result<Vec<lt::EventSourceMappingConfiguration>, CloudError> {
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = self
                .lambda_call(what, || async {
                    self.lambda
                        .list_event_source_mappings()
                        .set_event_source_arn(queue_arn.map(str::to_owned))
                        .set_function_name(function.map(str::to_owned))
                        .set_marker(marker.clone())
                        .send()
                        .await
                        .map_err(|e| classify("lambda:ListEventSourceMappings", &e))
                })
                .await?;
            out.extend(page.event_source_mappings().iter().cloned());
            match page.next_marker() {
                Some(m) if !m.is_empty() => marker = Some(m.to_owned()),
                _ => return Ok(out),
            }
        }
    }

    async fn mapping_uuid(&self, m: &MappingAttrs) -> Result<String, CloudError> {
        self.list_mappings(&m.function, Some(&m.queue_arn), Some(&m.function))
            .await?
            .iter()
            .find_map(|m| m.uuid().map(str::to_owned))
            .ok_or_else(|| {
                CloudError::new(
                    ErrorKind::NotFound,
                    "lambda:ListEventSourceMappings",
                    format!("no mapping of {} reads {}", m.function, m.queue_arn),
                )
            })
    }

    async fn update_mapping(&self, uuid: &str, m: &MappingAttrs) -> Result<(), CloudError> {
        self.lambda_call(&m.function, || async {
            self.lambda
                .update_event_source_mapping()
                .uuid(uuid)
                .batch_size(m.batch_size)
                .enabled(m.enabled)
                .function_response_types(lt::FunctionResponseType::ReportBatchItemFailures)
                .scaling_config(
                    lt::ScalingConfig::builder()
                        .set_maximum_concurrency(m.maximum_concurrency)
                        .build(),
                )
                .send()
                .await
                .map_err(|e| classify("lambda:UpdateEventSourceMapping", &e))
        })
        .await?;
        Ok(())
    }

    async fn delete_mapping(&self, function: &str, uuid: &str) -> Result<(), CloudError> {
        let r = self
            .lambda_call(function, || async {
                self.lambda
                    .delete_event_source_mapping()
                    .uuid(uuid)
                    .send()
                    .await
                    .map_err(|e| classify("lambda:DeleteEventSourceMapping", &e))
            })
            .await;
        gone_is_fine(r)
    }

    /// Turns every mapping of `function` on or off (`scar pause` and `resume`); how many.
    pub(super) async fn enable_mappings(
        &self,
        function: &str,
        enabled: bool,
    ) -> Result<usize, CloudError> {
        let mut n = 0;
        for m in self.list_mappings(function, None, Some(function)).await? {
            let Some(uuid) = m.uuid() else { continue };
            self.lambda_call(function, || async {
                self.lambda
                    .update_event_source_mapping()
                    .uuid(uuid)
                    .enabled(enabled)
                    .send()
                    .await
                    .map_err(|e| classify("lambda:UpdateEventSourceMapping", &e))
            })
            .await?;
            n += 1;
        }
        Ok(n)
    }
}

impl Adapter for Mapping {
    const READ: Read = Read::Queues;

    async fn write(cloud: &AwsCloud, w: &Write<'_>) -> Result<(), CloudError> {
        if matches!(w.step.action, Action::Delete | Action::Replace) {
            let m: MappingAttrs = view(&w.step.address, w.before)?;
            cloud.delete_mapping(&m.function, &m.uuid).await?;
        }
        match w.step.action {
            Action::Create | Action::Replace => {
                cloud.create_mapping(&view(&w.step.address, w.after)?).await
            }
            Action::Update => {
                let before: MappingAttrs = view(&w.step.address, w.before)?;
                cloud
                    .update_mapping(&before.uuid, &view(&w.step.address, w.after)?)
                    .await
            }
            Action::Delete | Action::NoOp => Ok(()),
        }
    }

    async fn owner(cloud: &AwsCloud, c: &Check<'_>) -> Result<Owner, CloudError> {
        let m: MappingAttrs = view(&c.step.address, c.before)?;
        cloud.function_owner(c.stack, &m.function).await
    }

    async fn adopt(_: &AwsCloud, a: &Adopt<'_>) -> Result<(), CloudError> {
        Err(a.never())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_policy_scar_writes_reads_as_its_sender() {
        let arn = "arn:aws:sqs:us-east-1:123456789012:scar-demo-f-1a2b3c4d";
        let ours = send_policy(arn, "in", "123456789012");
        assert_eq!(
            read_sender(&ours, arn),
            ("in".to_owned(), "123456789012".to_owned())
        );
        // Widened by hand: any bucket may send.
        let widened = ours.replace("arn:aws:s3:::in", "arn:aws:s3:::*");
        assert_eq!(read_sender(&widened, arn).0, "*");
        let mut v: Value = serde_json::from_str(&ours).expect("json");
        v["Statement"][0]["Principal"] = json!("*");
        assert_eq!(read_sender(&v.to_string(), arn), Default::default());
        v["Statement"] = json!([]);
        assert_eq!(read_sender(&v.to_string(), arn), Default::default());
        assert_eq!(read_sender("not json", arn), Default::default());
        // Another queue's policy.
        assert_eq!(
            read_sender(&ours, "arn:aws:sqs:us-east-1:1:other"),
            Default::default()
        );
    }
}
