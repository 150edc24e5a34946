//! One local run's session: the stack's functions as they run here, their images made ready
//! once each (on first use), the sandbox found and checked, and the functions' credentials
//! and endpoints; `scar invoke --local` runs one function with it, `scar run --local` a
//! workflow ([`super::workflow::run_all`]).

use super::LocalError;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::runner::{self, Host, Ready, RunResult};
use super::sandbox::Tool;
use super::stack::Function;
use crate::aws::{AwsCloud, LocalCredentials};
use crate::image::registry::Registry;
use crate::manifest::check::feeds;
use crate::manifest::load::ManifestSet;
use crate::manifest::types::InputSpec;
use crate::model::DesiredGraph;

/// The queued input of `f` an S3 `event` is for, if it is for one.
fn queued_input<'a>(
    f: &'a super::stack::Function,
    event: &[u8],
) -> Option<&'a super::stack::Queued> {
    let v: serde_json::Value = serde_json::from_slice(event).ok()?;
    let s3 = v.get("Records")?.get(0)?.get("s3")?;
    let bucket = s3.get("bucket")?.get("name")?.as_str()?;
    let key = s3.get("object")?.get("key")?.as_str()?;
    let decoded = crate::text::percent_decode(&key.replace('+', " "));
    f.queued.iter().find(|q| {
        crate::manifest::check::fires(&q.input, bucket, key)
            || crate::manifest::check::fires(&q.input, bucket, &decoded)
    })
}

/// At most this many invocations in one local run (`scar validate` rejects cycles; this
/// guards against what it cannot see).
const MAX_INVOCATIONS: usize = 10_000;

/// What runs here: the stack's functions, their images made ready once each, on first use.
pub struct Session {
    /// The machine the functions run on: the sandbox, the region, the environment.
    pub host: Host,
    cloud: Arc<AwsCloud>,
    registry: Arc<Registry>,
    /// The stack's functions, as they run here.
    pub functions: Vec<Function>,
    ready: Vec<tokio::sync::OnceCell<Result<Ready, LocalError>>>,
}

impl Session {
    /// Finds the sandbox tool and checks it works, reads every function, and gets the
    /// functions' credentials from `cloud` (the stack's region's), saying whose through `say`.
    ///
    /// # Errors
    /// What keeps functions from running here, as a sentence.
    pub async fn new(
        set: &ManifestSet,
        desired: &DesiredGraph,
        cloud: Arc<AwsCloud>,
        job_timeout: Duration,
        credentials: LocalCredentials,
        say: &(dyn Fn(&str) + Sync),
    ) -> Result<Session, LocalError> {
        let tool = Tool::find()?;
        tool.probe().await?;
        let functions = set
            .functions
            .iter()
            .map(|f| Function::of(set, desired, &f.value.metadata.name))
            .collect::<Result<Vec<_>, _>>()?;
        // One environment serves every function: a role is assumed only when they share one.
        let role = match functions.split_first() {
            Some((first, rest)) if rest.iter().all(|f| f.role == first.role) => {
                let account = match &first.role {
                    crate::local::stack::Role::Managed(_) => cloud.account_id().await?,
                    crate::local::stack::Role::Arn(_) => String::new(),
                };
                Some(first.role.arn(&account)).filter(|a| !a.is_empty())
            }
            _ => None,
        };
        let (env, said) = cloud
            .function_environment(
                credentials,
                role.as_deref(),
                &format!("scar-local-{}", desired.stack),
            )
            .await?;
        say(&said);
        let registry = cloud.registry().map_err(LocalError::Registry)?;
        let cache = crate::cache::dir().ok_or(LocalError::NoCache)?;
        let host = Host {
            tool,
            region: cloud.region().to_owned(),
            account: desired
                .account_id
                .clone()
                .unwrap_or_else(|| "000000000000".to_owned()),
            env,
            job_timeout,
            cache,
        };
        let ready = functions
            .iter()
            .map(|_| tokio::sync::OnceCell::new())
            .collect();
        Ok(Session {
            host,
            cloud,
            registry,
            functions,
            ready,
        })
    }

    /// The index of the function named `name`.
    #[must_use]
    pub fn index(&self, name: &str) -> Option<usize> {
        self.functions.iter().position(|f| f.name == name)
    }

    /// Function `i`'s image, made ready on first use.
    async fn ready(&self, i: usize) -> Result<&Ready, LocalError> {
        let f = &self.functions[i];
        self.ready[i]
            .get_or_init(|| async {
                let name = f.name.clone();
                let says = move |line: &str| eprintln!("  {name}: {line}");
                runner::ready(&self.host, &self.registry, f.clone(), &says).await
            })
            .await
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Runs function `i` on `event`.
    ///
    /// # Errors
    /// When its image cannot be made ready or the sandbox cannot start.
    pub async fn run(&self, i: usize, event: Vec<u8>) -> Result<RunResult, LocalError> {
        let ready = self.ready(i).await?;
        let mut r = runner::run(&self.host, ready, &event).await?;
        r.attempts = 1;
        Ok(r)
    }

    /// Runs function `i` on `event` as Lambda runs an S3 event: a failed run is run again,
    /// up to the function's `retryAttempts` times (at once: Lambda waits a minute, then
    /// two), and when every attempt failed, its record is written where Lambda would write
    /// it. Every attempt's uploads count, as S3 notifies each.
    ///
    /// # Errors
    /// When its image cannot be made ready, or the sandbox cannot start.
    pub async fn run_event(&self, i: usize, event: Vec<u8>) -> Result<RunResult, LocalError> {
        let f = &self.functions[i];
        if let Some(q) = queued_input(f, &event) {
            return self.run_queued(i, q, event).await;
        }
        let mut uploaded = Vec::new();
        let mut attempts = 0;
        let mut r = loop {
            attempts += 1;
            let r = self.run(i, event.clone()).await?;
            uploaded.extend(r.uploaded.iter().cloned());
            // A job that ran was submitted: Lambda's part worked, and Batch's attempts (made
            // by the run) and the job's record are the job's.
            if r.failure.is_none() || r.job.is_some() || attempts > f.retry_attempts {
                break r;
            }
        };
        r.uploaded = uploaded;
        if r.job.is_some() {
            return Ok(r);
        }
        r.attempts = attempts;
        if r.failure.is_some()
            && let Some(bucket) = &f.failures_bucket
        {
            let last = crate::failures::LastAttempt {
                request_id: r.request_id(),
                response: r.answer(),
            };
            let event: serde_json::Value =
                serde_json::from_slice(&event).unwrap_or(serde_json::Value::Null);
            let arn = self.host.function_arn(&f.name);
            let written = crate::failures::store::write(
                &self.cloud,
                bucket,
                &f.name,
                &arn,
                attempts,
                &event,
                &last,
            )
            .await;
            r.recorded = Some(written.map_err(|e| {
                format!("its failure record was not written to s3://{bucket} ({e}); `scar apply` makes the stack's failures bucket")
            }));
        }
        Ok(r)
    }

    /// Runs function `i` on an S3 `event` of its queued input `q` as the queue's mapping runs
    /// it: wrapped in an SQS message, received up to `maxReceives` times while the function
    /// names it in `batchItemFailures`, then put in the dead-letter queue (the one `scar
    /// apply` made), where `scar failures` lists it.
    async fn run_queued(
        &self,
        i: usize,
        q: &super::stack::Queued,
        event: Vec<u8>,
    ) -> Result<RunResult, LocalError> {
        let body = String::from_utf8_lossy(&event).into_owned();
        let mut uploaded = Vec::new();
        let mut receives = 0;
        let mut r = loop {
            receives += 1;
            let message = serde_json::json!({"Records": [{
                "messageId": format!("local-{receives}"),
                "receiptHandle": "local",
                "body": body,
                "attributes": {"ApproximateReceiveCount": receives.to_string()},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": format!("arn:aws:sqs:{}:{}:{}", self.host.region, self.host.account, q.queue),
                "awsRegion": self.host.region,
            }]});
            let r = self.run(i, message.to_string().into_bytes()).await?;
            uploaded.extend(r.uploaded.iter().cloned());
            if r.failure.is_none() || r.job.is_some() || receives >= q.max_receives {
                break r;
            }
        };
        r.uploaded = uploaded;
        if r.job.is_some() {
            return Ok(r);
        }
        r.attempts = receives;
        if r.failure.is_some() {
            let dlq = &q.dead_letter;
            r.recorded = Some(match self.cloud.send_message(dlq, &body).await {
                Ok(()) => Ok(format!("sqs://{dlq}")),
                Err(e) => Err(format!(
                    "it was not put in its dead-letter queue {dlq} ({e}); `scar apply` makes it"
                )),
            });
        }
        Ok(r)
    }

    /// Runs `starts` and every invocation their uploads start (S3 events, as
    /// [`Session::run_event`] runs them), `concurrency` at once; `seen` hears each as it ends.
    pub async fn run_workflow(
        &self,
        starts: Vec<super::workflow::Start>,
        concurrency: usize,
        seen: &(dyn Fn(&super::workflow::Step) + Sync),
    ) -> Vec<super::workflow::Step> {
        super::workflow::run_all(
            &self.functions,
            starts,
            concurrency,
            MAX_INVOCATIONS,
            &self.host.region,
            |i, event| self.run_event(i, event),
            seen,
        )
        .await
    }

    /// The S3 objects an `--input` names: `s3://BUCKET/KEY` as it is, or local files (a
    /// folder's, relative paths kept) uploaded to function `into`'s first input.
    ///
    /// # Errors
    /// A malformed `s3://` address, or a file that cannot be read or uploaded.
    pub async fn objects(
        &self,
        input: &str,
        into: usize,
    ) -> Result<Vec<(String, String)>, LocalError> {
        if let Some(rest) = input.strip_prefix("s3://") {
            return match rest.split_once('/') {
                Some((b, k)) if !b.is_empty() && !k.is_empty() => {
                    Ok(vec![(b.to_owned(), k.to_owned())])
                }
                _ => Err(LocalError::NotAnObject(input.to_owned())),
            };
        }
        let f = &self.functions[into];
        let target =
            f.inputs
                .iter()
                .find_map(InputSpec::s3)
                .ok_or_else(|| LocalError::NoS3Input {
                    function: f.name.clone(),
                    input: input.to_owned(),
                })?;
        let files =
            crate::aws::files_to_put(Path::new(input)).map_err(|e| LocalError::Unreadable {
                input: input.to_owned(),
                why: e.to_string(),
            })?;
        let keys = crate::aws::upload_files(&self.cloud, target, &files, |_, path, uri| {
            eprintln!("uploaded {} to {uri}", path.display());
        })
        .await
        .map_err(|(path, source)| LocalError::Upload { path, source })?;
        Ok(keys
            .into_iter()
            .map(|k| (target.bucket.clone(), k))
            .collect())
    }

    /// The function a local run's files go to: the one named, else the only function with an S3
    /// input that no function's output feeds.
    ///
    /// # Errors
    /// When there is no such function, or none or several start a workflow.
    pub fn entry(&self, set: &ManifestSet, named: Option<&str>) -> Result<usize, LocalError> {
        let local = self;
        if let Some(n) = named {
            return local
                .index(n)
                .ok_or_else(|| LocalError::NoFunction(n.to_owned()));
        }
        let firsts: Vec<usize> = local
            .functions
            .iter()
            .enumerate()
            .filter(|(_, f)| {
                !f.inputs.is_empty()
                    && !f.inputs.iter().any(|i| {
                        set.functions
                            .iter()
                            .any(|g| g.value.spec.output.iter().any(|o| feeds(o, i)))
                    })
            })
            .map(|(i, _)| i)
            .collect();
        match firsts.as_slice() {
            [one] => Ok(*one),
            [] => Err(LocalError::NoEntry),
            many => Err(LocalError::Entries(
                many.iter()
                    .map(|i| local.functions[*i].name.clone())
                    .collect(),
            )),
        }
    }
}
