//! AWS Batch: live reads of compute environments, job queues and job definitions (one paged
//! Describe call per kind, never one per function), and their create, update and delete.
//!
//! Waits have deadlines. An environment or queue that turns INVALID fails the step with
//! AWS's `statusReason`; deletes disable first, wait, delete, and wait until the resource is
//! gone, queue before environment.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use aws_sdk_batch::types as bt;
use serde_json::{Map, Value, json};

use super::AwsCloud;
use super::kind::{Adapter, Adopt, Check, Read, Write, stale_tag_keys, view, view_read};
use super::lambda::{split_script, with_script};
use super::page::{pages, wait_until};
use crate::apply::ready::Readiness;
use crate::cloud::CloudError;
use crate::cloud::retry::Backoff;
use crate::model::attrs::{
    ComputeEnvAttrs, JobDefinitionAttrs, JobQueueAttrs, MultiNode, Retry, RetryRule, id, to_attrs,
};
use crate::model::batch::instance_profile_name;
use crate::model::live::{LiveResource, Owner};
use crate::model::{Address, DesiredGraph, ResourceKind, short_hash};
use crate::plan::{Action, Step};

/// A job Batch ended as FAILED, as `scar failures` reads it.
#[derive(Debug, Clone)]
pub struct FailedJob {
    /// Its id.
    pub id: String,
    /// When it stopped (seconds since the epoch; 0 when Batch does not say).
    pub stopped: u64,
    /// Attempts made.
    pub attempts: u64,
    /// Why it failed: Batch's reason, and its last attempt's.
    pub reason: String,
    /// Its container's environment (the definition's with the submission's overrides).
    pub environment: BTreeMap<String, String>,
}

fn failed_job(j: &bt::JobDetail) -> FailedJob {
    let last = j.attempts().last();
    let exit = last.and_then(|a| a.container()).map(|c| {
        let code = c.exit_code().map_or_else(
            || "no exit status".to_owned(),
            |n| format!("exit status {n}"),
        );
        match c.reason() {
            Some(r) => format!("{code}, {r}"),
            None => code,
        }
    });
    let reason = [
        j.status_reason().map(str::to_owned),
        last.and_then(|a| a.status_reason()).map(str::to_owned),
        exit,
    ]
    .into_iter()
    .flatten()
    .filter(|s| !s.is_empty())
    .collect::<Vec<_>>()
    .join("; ");
    FailedJob {
        id: j.job_id().unwrap_or_default().to_owned(),
        stopped: j
            .stopped_at()
            .and_then(|ms| u64::try_from(ms / 1000).ok())
            .unwrap_or_default(),
        attempts: u64::try_from(j.attempts().len()).unwrap_or_default(),
        reason,
        environment: j
            .container()
            .map(|c| {
                c.environment()
                    .iter()
                    .filter_map(|kv| Some((kv.name()?.to_owned(), kv.value()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// The service-linked role Batch uses when a compute environment names none.
const SERVICE_LINKED_ROLE: &str = "AWSServiceRoleForBatch";

/// Where a live Batch resource belongs: at the address its `scar:address` tag names when the
/// stack owns it, or at the desired address of the same name (a name collision to report).
fn place(
    kind: ResourceKind,
    name: &str,
    owner: &Owner,
    tags: &BTreeMap<String, String>,
    by_name: &HashMap<(ResourceKind, String), Address>,
) -> Option<Address> {
    if *owner == Owner::ThisStack
        && let Some(a) = tags
            .get(crate::model::tags::ADDRESS)
            .and_then(|a| a.parse::<Address>().ok())
            .filter(|a| a.kind == kind)
    {
        return Some(a);
    }
    by_name.get(&(kind, name.to_owned())).cloned()
}

/// A described compute environment or queue as a live resource: a hash of everything read
/// as its fingerprint, its ARN as output.
fn described(attrs: Map<String, Value>, owner: Owner, arn: Option<&str>) -> LiveResource {
    let fingerprint = Some(format!(
        "sha:{}",
        short_hash(&Value::Object(attrs.clone()).to_string())
    ));
    LiveResource {
        fingerprint,
        attrs,
        owner,
        outputs: [("arn".to_owned(), json!(arn))].into(),
    }
}

fn last_segment(arn: &str) -> String {
    arn.rsplit('/').next().unwrap_or(arn).to_owned()
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v
}

/// What a Batch wait is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settled {
    /// Status `VALID`, enabled (`true`) or disabled.
    Valid(bool),
    /// Deleted.
    Gone,
}

/// Where AWS is with a compute environment or job queue (`status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// `VALID`.
    Valid,
    /// `INVALID`: it will not become valid by itself.
    Invalid,
    /// `CREATING`, `UPDATING` or `DELETING`.
    Changing,
}

impl Status {
    /// From AWS's word; `None` for `DELETED` (gone).
    fn parse(s: &str) -> Option<Status> {
        match s {
            "VALID" => Some(Status::Valid),
            "INVALID" => Some(Status::Invalid),
            "DELETED" => None,
            _ => Some(Status::Changing),
        }
    }
}

/// One look at a compute environment or job queue that exists.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Observed {
    /// `state` is `ENABLED`.
    enabled: bool,
    /// Its status.
    status: Status,
    /// AWS's words, as seen: state and status (for a timeout's message).
    seen: String,
    /// AWS's reason for the status.
    reason: String,
}

impl Observed {
    /// From the `state`, `status` and `statusReason` AWS reported; `None` once deleted.
    fn new(state: &str, status: &str, reason: &str) -> Option<Observed> {
        Some(Observed {
            enabled: state == "ENABLED",
            status: Status::parse(status)?,
            seen: format!("{state}, {status}"),
            reason: reason.to_owned(),
        })
    }
}

impl AwsCloud {
    /// Every Batch resource the stack owns, and any whose name a desired resource needs.
    pub(super) async fn read_batch(
        &self,
        stack: &str,
        desired: &DesiredGraph,
    ) -> Result<Vec<(Address, LiveResource)>, CloudError> {
        let by_name: HashMap<(ResourceKind, String), Address> = desired
            .resources
            .iter()
            .filter(|r| {
                matches!(
                    r.address.kind,
                    ResourceKind::BatchComputeEnvironment
                        | ResourceKind::BatchJobQueue
                        | ResourceKind::BatchJobDefinition
                )
            })
            .map(|r| {
                let n: id::Named = view(&r.address, &r.attrs)?;
                Ok(((r.address.kind, n.name), r.address.clone()))
            })
            .collect::<Result<_, CloudError>>()?;
        let mut out = Vec::new();
        self.read_compute_environments(stack, &by_name, &mut out)
            .await?;
        self.read_job_queues(stack, &by_name, &mut out).await?;
        self.read_job_definitions(stack, &by_name, &mut out).await?;
        Ok(out)
    }

    async fn read_compute_environments(
        &self,
        stack: &str,
        by_name: &HashMap<(ResourceKind, String), Address>,
        out: &mut Vec<(Address, LiveResource)>,
    ) -> Result<(), CloudError> {
        let pages = pages(
            "batch:DescribeComputeEnvironments",
            |token| async move {
                self.call_limited(
                    Some(&self.limits.batch),
                    "compute environments",
                    "batch:DescribeComputeEnvironments",
                    || {
                        self.batch
                            .describe_compute_environments()
                            .set_next_token(token.clone())
                            .send()
                    },
                )
                .await
            },
            |page| page.next_token(),
        )
        .await?;
        for page in pages {
            for ce in page.compute_environments() {
                let Some(name) = ce.compute_environment_name() else {
                    continue;
                };
                if ce.status().is_some_and(|s| s.as_str() == "DELETED") {
                    continue;
                }
                let t: BTreeMap<String, String> = ce
                    .tags()
                    .map(|m| m.clone().into_iter().collect())
                    .unwrap_or_default();
                let owner = Owner::from_tags(stack, &t);
                let Some(address) = place(
                    ResourceKind::BatchComputeEnvironment,
                    name,
                    &owner,
                    &t,
                    by_name,
                ) else {
                    continue;
                };
                let service_role = ce.service_role().unwrap_or_default();
                let cr = ce.compute_resources();
                let kind = cr
                    .and_then(|c| c.r#type())
                    .map(|t| t.as_str())
                    .unwrap_or_default();
                let ec2 = cr.filter(|_| !kind.starts_with("FARGATE"));
                let a = to_attrs(&ComputeEnvAttrs {
                    name: name.to_owned(),
                    kind: kind.to_owned(),
                    max_vcpus: cr.and_then(|c| c.maxv_cpus()).unwrap_or(0),
                    subnets: cr.map(|c| sorted(c.subnets())).unwrap_or_default(),
                    security_groups: cr
                        .map(|c| sorted(c.security_group_ids()))
                        .unwrap_or_default(),
                    service_role: if service_role.contains(SERVICE_LINKED_ROLE) {
                        String::new()
                    } else {
                        service_role.to_owned()
                    },
                    state: ce
                        .state()
                        .map(|s| s.as_str())
                        .unwrap_or_default()
                        .to_owned(),
                    min_vcpus: ec2.map(|c| c.minv_cpus().unwrap_or(0)),
                    // Batch scales it: not read (`ComputeEnvAttrs::UNREAD`).
                    desired_vcpus: None,
                    allocation_strategy: ec2.map(|c| {
                        c.allocation_strategy()
                            .map_or("BEST_FIT", |s| s.as_str())
                            .to_owned()
                    }),
                    instance_types: ec2.map(|c| sorted(c.instance_types())),
                    instance_role: ec2
                        .map(|c| instance_profile_name(c.instance_role().unwrap_or_default())),
                    bid_percentage: cr
                        .filter(|_| kind == "SPOT")
                        .map(|c| c.bid_percentage().unwrap_or(100)),
                    tags: t,
                });
                out.push((address, described(a, owner, ce.compute_environment_arn())));
            }
        }
        Ok(())
    }

    async fn read_job_queues(
        &self,
        stack: &str,
        by_name: &HashMap<(ResourceKind, String), Address>,
        out: &mut Vec<(Address, LiveResource)>,
    ) -> Result<(), CloudError> {
        let pages = pages(
            "batch:DescribeJobQueues",
            |token| async move {
                self.call_limited(
                    Some(&self.limits.batch),
                    "job queues",
                    "batch:DescribeJobQueues",
                    || {
                        self.batch
                            .describe_job_queues()
                            .set_next_token(token.clone())
                            .send()
                    },
                )
                .await
            },
            |page| page.next_token(),
        )
        .await?;
        for page in pages {
            for q in page.job_queues() {
                let Some(name) = q.job_queue_name() else {
                    continue;
                };
                if q.status().is_some_and(|s| s.as_str() == "DELETED") {
                    continue;
                }
                let t: BTreeMap<String, String> = q
                    .tags()
                    .map(|m| m.clone().into_iter().collect())
                    .unwrap_or_default();
                let owner = Owner::from_tags(stack, &t);
                let Some(address) = place(ResourceKind::BatchJobQueue, name, &owner, &t, by_name)
                else {
                    continue;
                };
                let mut order: Vec<(i32, String)> = q
                    .compute_environment_order()
                    .iter()
                    .map(|o| {
                        (
                            o.order().unwrap_or_default(),
                            last_segment(o.compute_environment().unwrap_or_default()),
                        )
                    })
                    .collect();
                order.sort();
                let a = to_attrs(&JobQueueAttrs {
                    name: name.to_owned(),
                    priority: q.priority().unwrap_or_default(),
                    state: q.state().map(|s| s.as_str()).unwrap_or_default().to_owned(),
                    compute_environments: order.into_iter().map(|(_, n)| n).collect(),
                    tags: t,
                });
                out.push((address, described(a, owner, q.job_queue_arn())));
            }
        }
        Ok(())
    }

    async fn read_job_definitions(
        &self,
        stack: &str,
        by_name: &HashMap<(ResourceKind, String), Address>,
        out: &mut Vec<(Address, LiveResource)>,
    ) -> Result<(), CloudError> {
        // Every active revision, grouped by name: the newest is the live definition, and
        // all of them are deregistered when it is replaced or deleted.
        let mut by_def: BTreeMap<String, Vec<bt::JobDefinition>> = BTreeMap::new();
        let pages = pages(
            "batch:DescribeJobDefinitions",
            |token| async move {
                self.call_limited(
                    Some(&self.limits.batch),
                    "job definitions",
                    "batch:DescribeJobDefinitions",
                    || {
                        self.batch
                            .describe_job_definitions()
                            .status("ACTIVE")
                            .set_next_token(token.clone())
                            .send()
                    },
                )
                .await
            },
            |page| page.next_token(),
        )
        .await?;
        for d in pages.iter().flat_map(|p| p.job_definitions()) {
            if let Some(name) = d.job_definition_name() {
                by_def.entry(name.to_owned()).or_default().push(d.clone());
            }
        }
        for (name, mut revisions) in by_def {
            revisions.sort_by_key(|d| d.revision().unwrap_or_default());
            let Some(latest) = revisions.last() else {
                continue;
            };
            let t: BTreeMap<String, String> = latest
                .tags()
                .map(|m| m.clone().into_iter().collect())
                .unwrap_or_default();
            let owner = Owner::from_tags(stack, &t);
            let Some(address) = place(ResourceKind::BatchJobDefinition, &name, &owner, &t, by_name)
            else {
                continue;
            };
            let mut d = job_definition_attrs(latest);
            d.active_revisions = i32::try_from(revisions.len()).unwrap_or(i32::MAX);
            d.revisions = revisions
                .iter()
                .filter_map(bt::JobDefinition::revision)
                .map(i64::from)
                .collect();
            d.tags = t;
            let a = to_attrs(&d);
            let mut outputs = BTreeMap::new();
            outputs.insert("arn".into(), json!(latest.job_definition_arn()));
            out.push((
                address,
                LiveResource {
                    fingerprint: Some(format!(
                        "revision:{}",
                        latest.revision().unwrap_or_default()
                    )),
                    attrs: a,
                    owner,
                    outputs,
                },
            ));
        }
        Ok(())
    }

    async fn create_compute_environment(
        &self,
        a: &ComputeEnvAttrs,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        let name = a.name.clone();
        let kind = a.kind.clone();
        let mut cr = bt::ComputeResource::builder()
            .r#type(bt::CrType::from(kind.as_str()))
            .maxv_cpus(a.max_vcpus)
            .set_subnets(Some(a.subnets.clone()))
            .set_security_group_ids(Some(a.security_groups.clone()));
        if !kind.starts_with("FARGATE") {
            cr = cr
                .minv_cpus(a.min_vcpus.unwrap_or(0))
                .desiredv_cpus(a.desired_vcpus.unwrap_or(0))
                .allocation_strategy(bt::CrAllocationStrategy::from(
                    a.allocation_strategy.as_deref().unwrap_or_default(),
                ))
                .set_instance_types(Some(a.instance_types.clone().unwrap_or_default()))
                .instance_role(a.instance_role.clone().unwrap_or_default());
        }
        if kind == "SPOT" {
            cr = cr.bid_percentage(a.bid_percentage.unwrap_or(0));
        }
        let service_role = a.service_role.clone();
        let cr = cr.build();
        let r = self
            .call_limited(
                Some(&self.limits.batch),
                &name,
                "batch:CreateComputeEnvironment",
                || {
                    self.batch
                        .create_compute_environment()
                        .compute_environment_name(&name)
                        .r#type(bt::CeType::Managed)
                        .state(bt::CeState::Enabled)
                        .compute_resources(cr.clone())
                        .set_service_role((!service_role.is_empty()).then(|| service_role.clone()))
                        .set_tags(Some(tags.clone().into_iter().collect()))
                        .send()
                },
            )
            .await;
        match r {
            Ok(_) => {}
            // Left by an interrupted run (the plan saw nothing): settle it and update it.
            Err(e) if e.message.contains("already exists") => {
                tracing::info!(
                    compute_environment = name,
                    "it exists already (an interrupted run); updating it instead"
                );
            }
            Err(e) => return Err(e),
        }
        self.wait_compute_environment(&name, Settled::Valid(true))
            .await?;
        Ok(())
    }

    async fn update_compute_environment(
        &self,
        step: &Step,
        account: &str,
        a: &ComputeEnvAttrs,
        before: &Map<String, Value>,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        let name = a.name.clone();
        let changed = |f: &str| step.changes.iter().any(|c| c.field == f);
        let kind = a.kind.clone();
        let mut cr = bt::ComputeResourceUpdate::builder();
        let mut any = false;
        if changed("max_vcpus") || changed("min_vcpus") {
            cr = cr.maxv_cpus(a.max_vcpus);
            if !kind.starts_with("FARGATE") {
                cr = cr.minv_cpus(a.min_vcpus.unwrap_or(0));
            }
            any = true;
        }
        if changed("subnets") {
            cr = cr.set_subnets(Some(a.subnets.clone()));
            any = true;
        }
        if changed("security_groups") {
            cr = cr.set_security_group_ids(Some(a.security_groups.clone()));
            any = true;
        }
        if changed("type") || changed("allocation_strategy") {
            cr = cr
                .r#type(bt::CrType::from(kind.as_str()))
                .allocation_strategy(bt::CrUpdateAllocationStrategy::from(
                    a.allocation_strategy.as_deref().unwrap_or_default(),
                ));
            any = true;
        }
        if changed("instance_types") {
            cr = cr.set_instance_types(Some(a.instance_types.clone().unwrap_or_default()));
            any = true;
        }
        if changed("instance_role") {
            cr = cr.instance_role(a.instance_role.clone().unwrap_or_default());
            any = true;
        }
        if changed("bid_percentage") {
            cr = cr.bid_percentage(a.bid_percentage.unwrap_or(0));
            any = true;
        }
        let service_role = a.service_role.clone();
        if any || changed("state") || changed("service_role") {
            let cr = any.then(|| cr.build());
            self.call_limited(
                Some(&self.limits.batch),
                &name,
                "batch:UpdateComputeEnvironment",
                || {
                    self.batch
                        .update_compute_environment()
                        .compute_environment(&name)
                        .state(bt::CeState::Enabled)
                        .set_compute_resources(cr.clone())
                        .set_service_role(
                            (changed("service_role") && !service_role.is_empty())
                                .then(|| service_role.clone()),
                        )
                        .send()
                },
            )
            .await?;
            self.wait_compute_environment(&name, Settled::Valid(true))
                .await?;
        }
        if changed("tags") {
            let arn = format!(
                "arn:aws:batch:{}:{account}:compute-environment/{name}",
                self.region
            );
            self.retag(&step.address, &arn, before, tags).await?;
        }
        Ok(())
    }

    async fn delete_compute_environment(&self, name: &str) -> Result<(), CloudError> {
        if self.batch_state(name, true).await?.is_none() {
            return Ok(());
        }
        self.call_limited(
            Some(&self.limits.batch),
            name,
            "batch:UpdateComputeEnvironment",
            || {
                self.batch
                    .update_compute_environment()
                    .compute_environment(name)
                    .state(bt::CeState::Disabled)
                    .send()
            },
        )
        .await?;
        self.wait_compute_environment(name, Settled::Valid(false))
            .await?;
        self.call_limited(
            Some(&self.limits.batch),
            name,
            "batch:DeleteComputeEnvironment",
            || {
                self.batch
                    .delete_compute_environment()
                    .compute_environment(name)
                    .send()
            },
        )
        .await?;
        self.wait_compute_environment(name, Settled::Gone).await?;
        Ok(())
    }

    async fn put_job_queue(
        &self,
        step: &Step,
        account: &str,
        a: &JobQueueAttrs,
        before: &Map<String, Value>,
        tags: &BTreeMap<String, String>,
        create: bool,
    ) -> Result<(), CloudError> {
        let name = a.name.clone();
        let order: Vec<bt::ComputeEnvironmentOrder> = a
            .compute_environments
            .iter()
            .zip(1..)
            .map(|(ce, i)| {
                bt::ComputeEnvironmentOrder::builder()
                    .order(i)
                    .compute_environment(format!(
                        "arn:aws:batch:{}:{account}:compute-environment/{ce}",
                        self.region
                    ))
                    .build()
            })
            .collect();
        let priority = a.priority;
        let state = bt::JqState::from(a.state.as_str());
        let mut update = !create;
        if create {
            let r = self
                .call_limited(
                    Some(&self.limits.batch),
                    &name,
                    "batch:CreateJobQueue",
                    || {
                        self.batch
                            .create_job_queue()
                            .job_queue_name(&name)
                            .priority(priority)
                            .state(state.clone())
                            .set_compute_environment_order(Some(order.clone()))
                            .set_tags(Some(tags.clone().into_iter().collect()))
                            .send()
                    },
                )
                .await;
            match r {
                Ok(_) => {}
                Err(e) if e.message.contains("already exists") => update = true,
                Err(e) => return Err(e),
            }
        }
        if update {
            self.call_limited(
                Some(&self.limits.batch),
                &name,
                "batch:UpdateJobQueue",
                || {
                    self.batch
                        .update_job_queue()
                        .job_queue(&name)
                        .priority(priority)
                        .state(state.clone())
                        .set_compute_environment_order(Some(order.clone()))
                        .send()
                },
            )
            .await?;
            let arn = format!("arn:aws:batch:{}:{account}:job-queue/{name}", self.region);
            self.retag(&step.address, &arn, before, tags).await?;
        }
        self.wait_job_queue(&name, Settled::Valid(true)).await?;
        Ok(())
    }

    async fn delete_job_queue(&self, name: &str) -> Result<(), CloudError> {
        if self.batch_state(name, false).await?.is_none() {
            return Ok(());
        }
        self.call_limited(
            Some(&self.limits.batch),
            name,
            "batch:UpdateJobQueue",
            || {
                self.batch
                    .update_job_queue()
                    .job_queue(name)
                    .state(bt::JqState::Disabled)
                    .send()
            },
        )
        .await?;
        self.wait_job_queue(name, Settled::Valid(false)).await?;
        self.call_limited(
            Some(&self.limits.batch),
            name,
            "batch:DeleteJobQueue",
            || self.batch.delete_job_queue().job_queue(name).send(),
        )
        .await?;
        self.wait_job_queue(name, Settled::Gone).await?;
        Ok(())
    }

    async fn register_job_definition(
        &self,
        a: &JobDefinitionAttrs,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        let name = a.name.clone();
        let fargate = a.platform == "FARGATE";
        let mut requirements = vec![
            requirement(bt::ResourceType::Vcpu, format_vcpus(a.vcpus)),
            requirement(bt::ResourceType::Memory, a.memory.to_string()),
        ];
        let gpu = a.gpu;
        if gpu > 0 {
            requirements.push(requirement(bt::ResourceType::Gpu, gpu.to_string()));
        }
        let env: Vec<bt::KeyValuePair> = with_script(&a.environment, &a.script)
            .into_iter()
            .map(|(k, v)| bt::KeyValuePair::builder().name(k).value(v).build())
            .collect();
        let job_role = a.job_role.clone();
        let execution_role = a.execution_role.clone();
        let mut container = bt::ContainerProperties::builder()
            .image(&a.image)
            .set_command(Some(a.command.clone()))
            .set_environment(Some(env))
            .set_resource_requirements(Some(requirements))
            .set_job_role_arn((!job_role.is_empty()).then_some(job_role))
            .set_execution_role_arn((!execution_role.is_empty()).then_some(execution_role));
        if fargate {
            // Public subnets need a public IP to pull images from public registries.
            container = container.network_configuration(
                bt::NetworkConfiguration::builder()
                    .assign_public_ip(bt::AssignPublicIp::Enabled)
                    .build(),
            );
        }
        let container = container.build();
        let multi = a.multi_node.as_ref().map(|m| {
            bt::NodeProperties::builder()
                .num_nodes(m.nodes)
                .main_node(m.main_node)
                .node_range_properties(
                    bt::NodeRangeProperty::builder()
                        .target_nodes("0:")
                        .container(container.clone())
                        .build(),
                )
                .build()
        });
        self.call_limited(
            Some(&self.limits.batch),
            &name,
            "batch:RegisterJobDefinition",
            || {
                let mut req = self
                    .batch
                    .register_job_definition()
                    .job_definition_name(&name)
                    .propagate_tags(true)
                    .set_tags(Some(tags.clone().into_iter().collect()));
                req = match &multi {
                    Some(m) => req
                        .r#type(bt::JobDefinitionType::Multinode)
                        .node_properties(m.clone()),
                    None => req
                        .r#type(bt::JobDefinitionType::Container)
                        .container_properties(container.clone()),
                };
                if fargate {
                    req = req.platform_capabilities(bt::PlatformCapability::Fargate);
                }
                if let Some(t) = a.timeout {
                    req = req.timeout(
                        bt::JobTimeout::builder()
                            .attempt_duration_seconds(t)
                            .build(),
                    );
                }
                req.retry_strategy(retry_strategy(&a.retry)).send()
            },
        )
        .await?;
        Ok(())
    }

    /// Deregisters every active revision of `name` that `before` listed.
    async fn deregister_revisions(&self, name: &str, revisions: &[i64]) -> Result<(), CloudError> {
        for r in revisions {
            let id = format!("{name}:{r}");
            self.call_limited(
                Some(&self.limits.batch),
                &id,
                "batch:DeregisterJobDefinition",
                || {
                    self.batch
                        .deregister_job_definition()
                        .job_definition(&id)
                        .send()
                },
            )
            .await?;
        }
        Ok(())
    }

    /// Sets exactly `tags` on a Batch resource: stale keys removed, the rest written.
    async fn retag(
        &self,
        address: &Address,
        arn: &str,
        before: &Map<String, Value>,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        let stale = stale_tag_keys(address, before, tags)?;
        if !stale.is_empty() {
            self.call_limited(Some(&self.limits.batch), arn, "batch:UntagResource", || {
                self.batch
                    .untag_resource()
                    .resource_arn(arn)
                    .set_tag_keys(Some(stale.clone()))
                    .send()
            })
            .await?;
        }
        self.call_limited(Some(&self.limits.batch), arn, "batch:TagResource", || {
            self.batch
                .tag_resource()
                .resource_arn(arn)
                .set_tags(Some(tags.clone().into_iter().collect()))
                .send()
        })
        .await?;
        Ok(())
    }

    /// The compute environment `name`, described now; `None` once it is gone.
    async fn describe_compute_environment(
        &self,
        name: &str,
    ) -> Result<Option<bt::ComputeEnvironmentDetail>, CloudError> {
        let out = self
            .call_limited(
                Some(&self.limits.batch),
                name,
                "batch:DescribeComputeEnvironments",
                || {
                    self.batch
                        .describe_compute_environments()
                        .compute_environments(name)
                        .send()
                },
            )
            .await?;
        Ok(out.compute_environments().first().cloned())
    }

    /// The job queue `name`, described now; `None` once it is gone.
    async fn describe_job_queue(
        &self,
        name: &str,
    ) -> Result<Option<bt::JobQueueDetail>, CloudError> {
        let out = self
            .call_limited(
                Some(&self.limits.batch),
                name,
                "batch:DescribeJobQueues",
                || self.batch.describe_job_queues().job_queues(name).send(),
            )
            .await?;
        Ok(out.job_queues().first().cloned())
    }

    /// The jobs of queue `name` that Batch ended as FAILED (Batch keeps a finished job for
    /// at least seven days); none when the queue does not exist.
    ///
    /// # Errors
    /// When Batch fails.
    pub async fn failed_jobs(&self, name: &str) -> Result<Vec<FailedJob>, CloudError> {
        if self.describe_job_queue(name).await?.is_none() {
            return Ok(Vec::new());
        }
        let mut ids = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .call_limited(Some(&self.limits.batch), name, "batch:ListJobs", || {
                    self.batch
                        .list_jobs()
                        .job_queue(name)
                        .job_status(bt::JobStatus::Failed)
                        .set_next_token(token.clone())
                        .send()
                })
                .await?;
            ids.extend(
                out.job_summary_list()
                    .iter()
                    .filter_map(|j| j.job_id().map(str::to_owned)),
            );
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => break,
            }
        }
        let mut jobs = Vec::new();
        for chunk in ids.chunks(100) {
            let out = self
                .call_limited(Some(&self.limits.batch), name, "batch:DescribeJobs", || {
                    self.batch
                        .describe_jobs()
                        .set_jobs(Some(chunk.to_vec()))
                        .send()
                })
                .await?;
            jobs.extend(out.jobs().iter().map(failed_job));
        }
        Ok(jobs)
    }

    /// The newest active revision of job definition `name`.
    async fn latest_job_definition(
        &self,
        name: &str,
    ) -> Result<Option<bt::JobDefinition>, CloudError> {
        let out = self
            .call_limited(
                Some(&self.limits.batch),
                name,
                "batch:DescribeJobDefinitions",
                || {
                    self.batch
                        .describe_job_definitions()
                        .job_definition_name(name)
                        .status("ACTIVE")
                        .send()
                },
            )
            .await?;
        Ok(out
            .job_definitions()
            .iter()
            .max_by_key(|d| d.revision().unwrap_or_default())
            .cloned())
    }

    /// `(state, status, statusReason)` of a compute environment (`ce`) or job queue, or
    /// `None` once it is gone.
    async fn batch_state(&self, name: &str, ce: bool) -> Result<Option<Observed>, CloudError> {
        let text = |s: Option<&str>| s.unwrap_or_default().to_owned();
        let (state, status, reason) = if ce {
            let Some(c) = self.describe_compute_environment(name).await? else {
                return Ok(None);
            };
            (
                text(c.state().map(|s| s.as_str())),
                text(c.status().map(|s| s.as_str())),
                text(c.status_reason()),
            )
        } else {
            let Some(q) = self.describe_job_queue(name).await? else {
                return Ok(None);
            };
            (
                text(q.state().map(|s| s.as_str())),
                text(q.status().map(|s| s.as_str())),
                text(q.status_reason()),
            )
        };
        Ok(Observed::new(&state, &status, &reason))
    }

    async fn wait_compute_environment(&self, name: &str, until: Settled) -> Result<(), CloudError> {
        self.wait_batch(name, true, until).await
    }

    async fn wait_job_queue(&self, name: &str, until: Settled) -> Result<(), CloudError> {
        self.wait_batch(name, false, until).await
    }

    /// Polls with backoff until the resource is settled as asked, it turns INVALID (an error
    /// carrying AWS's reason), or the deadline passes.
    async fn wait_batch(&self, name: &str, ce: bool, until: Settled) -> Result<(), CloudError> {
        let what = if ce {
            "compute environment"
        } else {
            "job queue"
        };
        let poll = Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(10),
            attempts: u32::MAX,
        };
        let look = || async move {
            let seen = self.batch_state(name, ce).await?;
            Ok(match batch_readiness(seen.as_ref(), until) {
                Readiness::Failed(why) => {
                    Readiness::Failed(format!("{what} {name} is INVALID: {why}"))
                }
                r => r,
            })
        };
        let timeout = self.batch_timeout;
        wait_until("batch:wait", timeout, poll, look, |seen| {
            format!("{what} {name} did not settle within {timeout:?} (last seen: {seen})")
        })
        .await
    }
}

/// Whether a look at a Batch resource (`None`: it does not exist) ends a wait for `until`.
/// The owner that tags `t` (a Batch resource's, if it was found) name.
fn owner_of(stack: &str, t: Option<&HashMap<String, String>>) -> Owner {
    Owner::from_tags(stack, &t.cloned().unwrap_or_default().into_iter().collect())
}

/// The `batch_compute_environment` kind.
pub(super) struct ComputeEnvironment;

impl Adapter for ComputeEnvironment {
    const READ: Read = Read::Batch;

    async fn write(cloud: &AwsCloud, w: &Write<'_>) -> Result<(), CloudError> {
        match w.step.action {
            Action::Delete => {
                let c: id::Named = view(&w.step.address, w.before)?;
                cloud.delete_compute_environment(&c.name).await
            }
            Action::Create => {
                let c: ComputeEnvAttrs = view(&w.step.address, w.after)?;
                cloud.create_compute_environment(&c, w.tags).await
            }
            Action::Update | Action::Replace => {
                let c: ComputeEnvAttrs = view(&w.step.address, w.after)?;
                cloud
                    .update_compute_environment(w.step, w.account, &c, w.before, w.tags)
                    .await
            }
            Action::NoOp => Ok(()),
        }
    }

    async fn owner(cloud: &AwsCloud, c: &Check<'_>) -> Result<Owner, CloudError> {
        let e: id::Named = view(&c.step.address, c.before)?;
        let found = cloud.describe_compute_environment(&e.name).await?;
        Ok(owner_of(c.stack, found.as_ref().and_then(|e| e.tags())))
    }

    async fn adopt(_: &AwsCloud, a: &Adopt<'_>) -> Result<(), CloudError> {
        Err(a.never())
    }
}

/// The `batch_job_queue` kind.
pub(super) struct JobQueue;

impl Adapter for JobQueue {
    const READ: Read = Read::Batch;

    async fn write(cloud: &AwsCloud, w: &Write<'_>) -> Result<(), CloudError> {
        if w.step.action == Action::Delete {
            let q: id::Named = view(&w.step.address, w.before)?;
            return cloud.delete_job_queue(&q.name).await;
        }
        let q: JobQueueAttrs = view(&w.step.address, w.after)?;
        cloud
            .put_job_queue(
                w.step,
                w.account,
                &q,
                w.before,
                w.tags,
                w.step.action == Action::Create,
            )
            .await
    }

    async fn owner(cloud: &AwsCloud, c: &Check<'_>) -> Result<Owner, CloudError> {
        let q: id::Named = view(&c.step.address, c.before)?;
        let found = cloud.describe_job_queue(&q.name).await?;
        Ok(owner_of(c.stack, found.as_ref().and_then(|q| q.tags())))
    }

    async fn adopt(_: &AwsCloud, a: &Adopt<'_>) -> Result<(), CloudError> {
        Err(a.never())
    }
}

/// The `batch_job_definition` kind: its active revisions, the newest one the live definition.
pub(super) struct JobDefinition;

impl Adapter for JobDefinition {
    const READ: Read = Read::Batch;

    async fn write(cloud: &AwsCloud, w: &Write<'_>) -> Result<(), CloudError> {
        match w.step.action {
            Action::Delete => {
                let d: id::Revisions = view(&w.step.address, w.before)?;
                cloud.deregister_revisions(&d.name, &d.revisions).await
            }
            Action::Update => {
                let d: id::Revisions = view(&w.step.address, w.before)?;
                let name = &d.name;
                let latest = d.revisions.iter().copied().max().unwrap_or(1);
                if w.step.changes.iter().any(|c| c.field == "active_revisions") {
                    let older: Vec<i64> = d
                        .revisions
                        .iter()
                        .copied()
                        .filter(|r| *r != latest)
                        .collect();
                    cloud.deregister_revisions(name, &older).await?;
                }
                if w.step.changes.iter().any(|c| c.field == "tags") {
                    let arn = format!(
                        "arn:aws:batch:{}:{}:job-definition/{name}:{latest}",
                        cloud.region, w.account
                    );
                    cloud.retag(&w.step.address, &arn, w.before, w.tags).await?;
                }
                Ok(())
            }
            Action::Create | Action::Replace => {
                let d: JobDefinitionAttrs = view(&w.step.address, w.after)?;
                cloud.register_job_definition(&d, w.tags).await?;
                // Create before destroy: the old revisions go once the new one exists.
                let old = view_read::<id::Revisions>(&w.step.address, w.before)?
                    .map(|r| r.revisions)
                    .unwrap_or_default();
                cloud.deregister_revisions(&d.name, &old).await
            }
            Action::NoOp => Ok(()),
        }
    }

    async fn owner(cloud: &AwsCloud, c: &Check<'_>) -> Result<Owner, CloudError> {
        let d: id::Named = view(&c.step.address, c.before)?;
        let found = cloud.latest_job_definition(&d.name).await?;
        Ok(owner_of(c.stack, found.as_ref().and_then(|d| d.tags())))
    }

    async fn adopt(_: &AwsCloud, a: &Adopt<'_>) -> Result<(), CloudError> {
        Err(a.never())
    }
}

fn batch_readiness(seen: Option<&Observed>, until: Settled) -> Readiness {
    match (seen, until) {
        (None, Settled::Gone) => Readiness::Ready,
        (None, Settled::Valid(_)) => Readiness::Pending("not found".into()),
        (Some(o), _) if o.status == Status::Invalid => Readiness::Failed(o.reason.clone()),
        (Some(o), Settled::Valid(enabled)) if o.status == Status::Valid && o.enabled == enabled => {
            Readiness::Ready
        }
        (Some(o), _) => Readiness::Pending(o.seen.clone()),
    }
}

fn requirement(kind: bt::ResourceType, value: String) -> bt::ResourceRequirement {
    bt::ResourceRequirement::builder()
        .r#type(kind)
        .value(value)
        .build()
}

/// Batch wants whole vCPUs as `"1"` and Fargate fractions as `"0.25"`.
fn format_vcpus(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        v.to_string()
    }
}

/// A revision's attributes in the model's shape: tags, the count of active revisions and
/// their numbers are the caller's.
fn job_definition_attrs(d: &bt::JobDefinition) -> JobDefinitionAttrs {
    let (container, multi_node) = match d.node_properties() {
        Some(np) => (
            np.node_range_properties()
                .first()
                .and_then(|r| r.container()),
            Some(MultiNode {
                nodes: np.num_nodes().unwrap_or(0),
                main_node: np.main_node().unwrap_or(0),
            }),
        ),
        None => (d.container_properties(), None),
    };
    let requirement = |kind: bt::ResourceType| {
        container.and_then(|c| {
            c.resource_requirements()
                .iter()
                .find(|r| r.r#type() == Some(&kind))
                .and_then(|r| r.value())
        })
    };
    let number =
        |kind: bt::ResourceType| requirement(kind).and_then(|v| v.parse().ok()).unwrap_or(0);
    let (environment, script) = split_script(container.into_iter().flat_map(|c| {
        c.environment().iter().map(|kv| {
            (
                kv.name().unwrap_or_default().to_owned(),
                kv.value().unwrap_or_default().to_owned(),
            )
        })
    }));
    let fargate = d
        .platform_capabilities()
        .iter()
        .any(|p| p.as_str() == "FARGATE");
    let text = |v: Option<&str>| v.unwrap_or_default().to_owned();
    JobDefinitionAttrs {
        name: text(d.job_definition_name()),
        platform: if fargate { "FARGATE" } else { "EC2" }.to_owned(),
        kind: text(d.r#type()),
        image: text(container.and_then(|c| c.image())),
        script,
        vcpus: requirement(bt::ResourceType::Vcpu)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0),
        memory: number(bt::ResourceType::Memory),
        gpu: number(bt::ResourceType::Gpu),
        command: container.map(|c| c.command().to_vec()).unwrap_or_default(),
        environment,
        job_role: text(container.and_then(|c| c.job_role_arn())),
        execution_role: text(container.and_then(|c| c.execution_role_arn())),
        multi_node,
        retry: d.retry_strategy().map(read_retry).unwrap_or_default(),
        timeout: d
            .timeout()
            .and_then(bt::JobTimeout::attempt_duration_seconds),
        active_revisions: 1,
        tags: BTreeMap::new(),
        revisions: Vec::new(),
    }
}

/// The retry strategy Batch takes for `r`.
fn retry_strategy(r: &Retry) -> bt::RetryStrategy {
    bt::RetryStrategy::builder()
        .attempts(r.attempts)
        .set_evaluate_on_exit(Some(
            r.evaluate_on_exit
                .iter()
                .map(|e| {
                    bt::EvaluateOnExit::builder()
                        .set_on_status_reason(e.on_status_reason.clone())
                        .set_on_reason(e.on_reason.clone())
                        .set_on_exit_code(e.on_exit_code.clone())
                        .action(bt::RetryAction::from(e.action.as_str()))
                        .build()
                })
                .collect(),
        ))
        .build()
}

/// A retry strategy as read. The action is compared in Batch's spelling (`RETRY`): moto
/// stores it lower-cased.
fn read_retry(r: &bt::RetryStrategy) -> Retry {
    Retry {
        attempts: r.attempts().unwrap_or(0),
        evaluate_on_exit: r
            .evaluate_on_exit()
            .iter()
            .map(|e| RetryRule {
                on_status_reason: e.on_status_reason().map(str::to_owned),
                on_reason: e.on_reason().map(str::to_owned),
                on_exit_code: e.on_exit_code().map(str::to_owned),
                action: e
                    .action()
                    .map(|a| a.as_str().to_ascii_uppercase())
                    .unwrap_or_default(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(state: &str, status: &str) -> Option<Observed> {
        Observed::new(state, status, "capacity: no subnet")
    }

    #[test]
    fn waits_end_on_the_asked_state_or_invalid() {
        let enabled = Settled::Valid(true);
        let pending = |r: Readiness| matches!(r, Readiness::Pending(_));
        assert!(pending(batch_readiness(
            seen("ENABLED", "CREATING").as_ref(),
            enabled
        )));
        assert_eq!(
            batch_readiness(seen("ENABLED", "VALID").as_ref(), enabled),
            Readiness::Ready
        );
        assert_eq!(
            batch_readiness(seen("ENABLED", "VALID").as_ref(), Settled::Valid(false)),
            Readiness::Pending("ENABLED, VALID".into())
        );
        assert_eq!(
            batch_readiness(seen("ENABLED", "INVALID").as_ref(), enabled),
            Readiness::Failed("capacity: no subnet".into())
        );
        assert_eq!(batch_readiness(None, Settled::Gone), Readiness::Ready);
        assert!(pending(batch_readiness(None, enabled)));
        assert!(pending(batch_readiness(
            seen("DISABLED", "DELETING").as_ref(),
            Settled::Gone
        )));
        assert_eq!(seen("DISABLED", "DELETED"), None, "deleted is gone");
    }

    #[test]
    fn vcpus_format_as_batch_wants() {
        assert_eq!(format_vcpus(1.0), "1");
        assert_eq!(format_vcpus(0.25), "0.25");
        assert_eq!(format_vcpus(16.0), "16");
    }
}
