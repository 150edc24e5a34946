//! A stack's functions as they run here: what the model plans for each (its image, Lambda
//! settings, environment, Batch job) read from the desired graph, so a local run uses the
//! same values `scar apply` sends to AWS.

use super::LocalError;
use std::time::Duration;

use indexmap::IndexMap;
use serde_json::Value;

use crate::image::build::Spec;
use crate::image::reference::ImageRef;
use crate::manifest::load::ManifestSet;
use crate::manifest::resolve;
use crate::manifest::types::{Execution, InputSpec, OutputSpec};
use crate::model::attrs::{
    Attrs, FunctionAttrs, ImageAttrs, InvokeConfigAttrs, JobDefinitionAttrs,
};
use crate::model::{Address, DesiredGraph, ResourceKind};

/// Where a function's image comes from.
#[derive(Debug, Clone)]
pub enum Image {
    /// Assembled by scar: the base, the supervisor and the function's layer.
    Assembled(Box<Spec>),
    /// A prebuilt image, run as it is, for an architecture (OCI's name).
    Prebuilt(ImageRef, String),
}

/// A function's execution role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// An existing role's ARN.
    Arn(String),
    /// The stack's managed role, by name.
    Managed(String),
}

impl Role {
    /// Its ARN in `account`.
    #[must_use]
    pub fn arn(&self, account: &str) -> String {
        match self {
            Role::Arn(a) => a.clone(),
            Role::Managed(name) => format!("arn:aws:iam::{account}:role/{name}"),
        }
    }
}

/// A Batch job that runs a function's work (`execution: batch` or `lambda-batch`).
#[derive(Debug, Clone)]
pub struct Job {
    /// The job's command (the supervisor in Batch mode).
    pub command: Vec<String>,
    /// Its environment (secret references, not values).
    pub environment: IndexMap<String, String>,
    /// Its memory in MiB (told to the job; limited where cgroups allow).
    pub memory: u32,
    /// Its definition's retry strategy: attempts are run here as Batch runs them.
    pub retry: scar_contract::records::JobRetry,
}

/// One function of the stack, ready to run here.
#[derive(Debug, Clone)]
pub struct Function {
    /// Its name in the manifests.
    pub name: String,
    /// Where its work runs.
    pub execution: Execution,
    /// Its image.
    pub image: Image,
    /// Memory in MB.
    pub memory: u32,
    /// Its timeout.
    pub timeout: Duration,
    /// `/tmp` in MB.
    pub tmp_mb: u32,
    /// Its environment as Lambda gets it (secret references, which the supervisor resolves).
    pub environment: IndexMap<String, String>,
    /// Its Batch job, when it delegates.
    pub job: Option<Job>,
    /// Its inputs.
    pub inputs: Vec<InputSpec>,
    /// Its outputs.
    pub outputs: Vec<OutputSpec>,
    /// Its execution role, as planned: an ARN, or the stack's managed role (by name) before
    /// the account is known.
    pub role: Role,
    /// True when it serves HTTP.
    pub http: bool,
    /// Times an S3 event that failed runs again (the function's `onFailure.retryAttempts`);
    /// 0 for a function with no S3 input.
    pub retry_attempts: u32,
    /// The bucket its failure records go to, when they go to one.
    pub failures_bucket: Option<String>,
    /// Its queued inputs (`input[].queue`): an event of one is run as its queue's mapping
    /// runs it.
    pub queued: Vec<Queued>,
}

/// A queued input, as a local run keeps its books: an event is received (run) up to
/// `max_receives` times, then put in the dead-letter queue.
#[derive(Debug, Clone)]
pub struct Queued {
    /// The input.
    pub input: InputSpec,
    /// Its queue's name.
    pub queue: String,
    /// Its dead-letter queue's name.
    pub dead_letter: String,
    /// Receives before the dead-letter queue.
    pub max_receives: u32,
}

fn positive(v: i32) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

impl Function {
    /// The function `name` of the stack `set` plans as `desired`.
    ///
    /// # Errors
    /// When the stack has no such function, its planned attributes cannot be read, or it is a
    /// multi-node Batch job (which does not run here).
    pub fn of(
        set: &ManifestSet,
        desired: &DesiredGraph,
        name: &str,
    ) -> Result<Function, LocalError> {
        let doc = set
            .functions
            .iter()
            .find(|f| f.value.metadata.name == name)
            .ok_or_else(|| LocalError::NoFunction(name.to_owned()))?;
        let spec = &doc.value.spec;
        let eff = resolve::effective(set.stack().map(|s| &s.value.spec), spec);
        let planned = |kind: ResourceKind| {
            let address = Address::new(kind, name);
            desired.get(&address).map(|r| (address, &r.attrs))
        };
        let (address, attrs) = planned(ResourceKind::Function)
            .ok_or_else(|| LocalError::NotPlanned(name.to_owned()))?;
        let planned_wrong = |e: String| LocalError::Planned(e);
        let f = FunctionAttrs::<Value>::from_attrs(&address, attrs)
            .map_err(|e| planned_wrong(e.to_string()))?;
        let architecture = f.architecture.image_arch().oci();
        let image = match planned(ResourceKind::FunctionImage) {
            Some((address, attrs)) => {
                let image = ImageAttrs::from_attrs(&address, attrs)
                    .map_err(|e| planned_wrong(e.to_string()))?;
                // Nothing is pushed: the target only names the image in messages.
                let target =
                    ImageRef::parse(&format!("local/{name}:local")).map_err(planned_wrong)?;
                Image::Assembled(Box::new(image.spec(target).map_err(planned_wrong)?))
            }
            None => {
                let reference = f
                    .image
                    .as_str()
                    .ok_or_else(|| LocalError::ImageUnknown(name.to_owned()))?;
                Image::Prebuilt(
                    ImageRef::parse(reference).map_err(planned_wrong)?,
                    architecture.to_owned(),
                )
            }
        };
        let job = match planned(ResourceKind::BatchJobDefinition) {
            Some((address, attrs)) => {
                let j = JobDefinitionAttrs::<Value>::from_attrs(&address, attrs)
                    .map_err(|e| planned_wrong(e.to_string()))?;
                if j.multi_node.is_some() {
                    return Err(LocalError::MultiNode(name.to_owned()));
                }
                Some(Job {
                    command: j.command,
                    environment: j.environment,
                    memory: positive(j.memory),
                    retry: scar_contract::records::JobRetry {
                        attempts: positive(j.retry.attempts).max(1),
                        rules: j
                            .retry
                            .evaluate_on_exit
                            .into_iter()
                            .map(|r| scar_contract::records::ExitRule {
                                retry: r.action == "RETRY",
                                on_status_reason: r.on_status_reason,
                                on_reason: r.on_reason,
                                on_exit_code: r.on_exit_code,
                            })
                            .collect(),
                    },
                })
            }
            None => None,
        };
        // What apply puts as the function's invoke config: its retries and destination.
        let (retry_attempts, failures_bucket) = match planned(ResourceKind::InvokeConfig) {
            Some((address, attrs)) => {
                let c = InvokeConfigAttrs::from_attrs(&address, attrs)
                    .map_err(|e| planned_wrong(e.to_string()))?;
                (
                    positive(c.maximum_retry_attempts),
                    c.on_failure
                        .strip_prefix("arn:aws:s3:::")
                        .map(str::to_owned),
                )
            }
            None => (0, None),
        };
        let stack = set
            .stack()
            .map(|s| s.value.metadata.name.as_str())
            .unwrap_or_default();
        let queued = crate::model::queues::queued(stack, name, &spec.input)
            .map(|(i, q, queue)| Queued {
                input: InputSpec::S3(i.clone()),
                dead_letter: crate::model::queues::dead_letter_name(&queue),
                queue,
                max_receives: crate::model::queues::settings(q, eff.timeout).max_receives,
            })
            .collect();
        Ok(Function {
            retry_attempts,
            failures_bucket,
            queued,
            name: name.to_owned(),
            execution: eff.execution,
            image,
            memory: positive(f.memory),
            timeout: Duration::from_secs(u64::from(positive(f.timeout))),
            tmp_mb: positive(f.ephemeral_storage),
            environment: f.environment,
            job,
            inputs: spec.input.clone(),
            outputs: spec.output.clone(),
            http: spec.http.is_some(),
            role: match crate::model::Reference::from_value(&f.role) {
                Some(r) => Role::Managed(r.address.name),
                None => Role::Arn(f.role.as_str().unwrap_or_default().to_owned()),
            },
        })
    }

    /// The architecture its image is for (OCI's name).
    #[must_use]
    pub fn architecture(&self) -> &str {
        match &self.image {
            Image::Assembled(s) => &s.architecture,
            Image::Prebuilt(_, arch) => arch,
        }
    }
}
