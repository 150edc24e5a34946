//! scar-supervisor: the runtime inside a function's image (Lambda) and the Batch job command.
//!
//! For each input of an invocation it makes a fresh work folder, stages the input there
//! (streams the S3 object to disk, or writes the HTTP body or given bytes), runs the script
//! (or, with none, the base image's own command) with SCAR's environment contract and the
//! function's secrets, uploads every file the script wrote to `$TMP_OUTPUT_DIR` to each output
//! destination whose filters match (the function's S3, S3 with other credentials, MinIO,
//! WebDAV), and reports the script's exit status and any output it could not write. In `batch`
//! mode every invocation is submitted to AWS Batch; in `lambda-batch` mode an input that does
//! not finish in time goes to Batch.
//!
//! The configuration's types and every `SCAR_*` name are in `scar-contract`, shared with scar.

#![forbid(unsafe_code)]

pub mod event;
pub mod net;
pub mod script;
pub mod secrets;
pub mod webdav;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

pub use scar_contract::Config;
use scar_contract::{Execution, Output, Provider, env, records};

use event::{Invocation, Object, Work};
use script::{Program, ScriptResult};
use secrets::{Secret, SecretError, Stores};
use webdav::WebDav;

/// The version of the supervisor.
pub const VERSION: &str = scar_contract::VERSION;

/// Set in a Batch job's environment: the supervisor runs the work instead of delegating.
pub const IN_BATCH_ENV: &str = "AWS_BATCH_JOB_ID";

/// Lambda's limit on a synchronous response (6 MB), which an HTTP body must fit in once
/// base64-encoded: about 4.5 MiB of raw bytes.
pub const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024;

/// A failure that is not the script's.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    /// The event has no known shape.
    #[error(transparent)]
    Event(#[from] event::UnknownEvent),
    /// A secret could not be read; the invocation does not run without it.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The function's configuration is not usable.
    #[error("{0}")]
    Config(String),
    /// S3 or Batch failed.
    #[error("{0}")]
    Aws(String),
    /// The work folder or the script failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// What happened to one input.
#[derive(Debug, Clone, PartialEq)]
pub struct InputResult {
    /// `s3://bucket/key`, `http`, `data` or `none`.
    pub input: String,
    /// The script's result.
    pub script: ScriptResult,
    /// Every file uploaded (`s3://...`, `https://...`).
    pub uploaded: Vec<String>,
    /// Every upload that failed, naming the output and the file.
    pub upload_errors: Vec<String>,
    /// A Batch job id when the input went to Batch instead.
    pub delegated: Option<String>,
}

impl InputResult {
    /// True when the script succeeded (or the work went to Batch) and every output was written.
    #[must_use]
    pub fn ok(&self) -> bool {
        (self.script.ok() || self.delegated.is_some()) && self.upload_errors.is_empty()
    }
}

/// Where one output provider's files go.
#[derive(Debug)]
enum Destination {
    S3(aws_sdk_s3::Client),
    WebDav(Box<WebDav>),
}

/// What a cold start resolves once: the secret variables and the providers' clients.
#[derive(Debug)]
struct Prepared {
    env: Vec<(String, Secret)>,
    destinations: BTreeMap<String, Destination>,
}

/// The supervisor of one function.
#[derive(Debug)]
pub struct Supervisor {
    config: Config,
    shared: aws_config::SdkConfig,
    s3: aws_sdk_s3::Client,
    /// Made at first use: most functions never delegate or hold secrets, and each client costs
    /// a cold start a millisecond or more.
    batch: std::sync::OnceLock<aws_sdk_batch::Client>,
    stores: std::sync::OnceLock<Stores>,
    in_batch: bool,
    prepared: tokio::sync::Mutex<Option<Arc<Prepared>>>,
    /// The function's ARN, as Lambda's first invocation named it: what a Batch job's
    /// failure record names.
    function_arn: std::sync::OnceLock<String>,
}

fn s3_client(
    shared: &aws_config::SdkConfig,
    edit: impl FnOnce(aws_sdk_s3::config::Builder) -> aws_sdk_s3::config::Builder,
) -> aws_sdk_s3::Client {
    let builder =
        aws_sdk_s3::config::Builder::from(shared).force_path_style(shared.endpoint_url().is_some());
    aws_sdk_s3::Client::from_conf(edit(builder).build())
}

impl Supervisor {
    /// Connects with the standard AWS configuration (`AWS_ENDPOINT_URL` included), through
    /// the supervisor's own HTTP stack ([`net`]).
    pub async fn connect(config: Config) -> Self {
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(net::SdkHttp::new(true))
            .load()
            .await;
        Self {
            config,
            s3: s3_client(&shared, |b| b),
            batch: std::sync::OnceLock::new(),
            stores: std::sync::OnceLock::new(),
            shared,
            in_batch: std::env::var_os(IN_BATCH_ENV).is_some(),
            prepared: tokio::sync::Mutex::new(None),
            function_arn: std::sync::OnceLock::new(),
        }
    }

    /// Takes note of the function's ARN (Lambda's invocation context names it).
    pub fn invoked_as(&self, function_arn: &str) {
        if !function_arn.is_empty() {
            let _ = self.function_arn.set(function_arn.to_owned());
        }
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Resolves the function's secrets and makes its providers' clients: once per process
    /// (a cold start), before the first script runs; a failure is tried again at the next
    /// invocation.
    ///
    /// # Errors
    /// When a secret cannot be read (the error names its reference), or a provider cannot be
    /// set up.
    pub async fn prepare(&self) -> Result<(), SupervisorError> {
        self.prepared().await.map(|_| ())
    }

    async fn prepared(&self) -> Result<Arc<Prepared>, SupervisorError> {
        let mut slot = self.prepared.lock().await;
        if let Some(p) = slot.as_ref() {
            return Ok(p.clone());
        }
        let vars = scar_contract::secret_vars(|k| std::env::var(k).ok())
            .map_err(|e| SupervisorError::Config(e.to_string()))?;
        let used: Vec<(&String, &Provider)> = self
            .config
            .providers
            .iter()
            .filter(|(id, _)| {
                self.config
                    .outputs
                    .iter()
                    .any(|o| o.provider.as_ref() == Some(*id))
            })
            .collect();
        let refs = vars.values().chain(
            used.iter()
                .flat_map(|(_, p)| p.secrets().into_iter().map(|(_, r)| r)),
        );
        let refs: Vec<&scar_contract::SecretRef> = refs.collect();
        let values = if refs.is_empty() {
            BTreeMap::new()
        } else {
            let stores = self.stores.get_or_init(|| Stores {
                ssm: aws_sdk_ssm::Client::new(&self.shared),
                secrets_manager: aws_sdk_secretsmanager::Client::new(&self.shared),
            });
            secrets::resolve(stores, refs).await?
        };
        let value = |r: &scar_contract::SecretRef| {
            values
                .get(r)
                .cloned()
                .unwrap_or_else(|| Secret::from(String::new()))
        };
        let mut destinations = BTreeMap::new();
        for (id, p) in used {
            let d = match p {
                Provider::S3 {
                    region,
                    access_key,
                    secret_key,
                } => Destination::S3(s3_client(&self.shared, |b| {
                    let b = b.credentials_provider(aws_sdk_s3::config::Credentials::new(
                        value(access_key).expose(),
                        value(secret_key).expose(),
                        None,
                        None,
                        "scar-storage-provider",
                    ));
                    match region {
                        Some(r) => b.region(aws_sdk_s3::config::Region::new(r.clone())),
                        None => b,
                    }
                })),
                Provider::Minio {
                    endpoint,
                    verify,
                    region,
                    access_key,
                    secret_key,
                } => Destination::S3(s3_client(&self.shared, |b| {
                    b.endpoint_url(endpoint)
                        .force_path_style(true)
                        .region(aws_sdk_s3::config::Region::new(region.clone()))
                        .http_client(net::SdkHttp::new(*verify))
                        .credentials_provider(aws_sdk_s3::config::Credentials::new(
                            value(access_key).expose(),
                            value(secret_key).expose(),
                            None,
                            None,
                            "scar-storage-provider",
                        ))
                })),
                Provider::Webdav {
                    url,
                    login,
                    password,
                } => Destination::WebDav(Box::new(
                    WebDav::new(
                        net::client(true, Some(Duration::from_secs(5))),
                        url,
                        login,
                        &value(password),
                    )
                    .map_err(|e| SupervisorError::Aws(format!("storage provider {id}: {e}")))?,
                )),
            };
            destinations.insert(id.clone(), d);
        }
        let env = vars.iter().map(|(k, r)| (k.clone(), value(r))).collect();
        tracing::debug!(
            secrets = vars.len(),
            providers = destinations.len(),
            "cold start: secrets and storage providers ready"
        );
        let p = Arc::new(Prepared { env, destinations });
        *slot = Some(p.clone());
        Ok(p)
    }

    /// Handles one event: `request_id` names it; `remaining` is the time the platform gives
    /// (Lambda's deadline), of which the timeout threshold is kept back for uploads.
    ///
    /// # Errors
    /// When the event has no known shape, a secret cannot be read, or S3 or Batch fail (a
    /// failing script or output is not an error: it is in the result).
    pub async fn handle(
        &self,
        event: &Value,
        request_id: &str,
        remaining: Duration,
    ) -> Result<Value, SupervisorError> {
        if event.get(records::SWEEP).is_some_and(Value::is_object) {
            return self.sweep(request_id, remaining).await;
        }
        if self.config.execution == Execution::Batch && !self.in_batch {
            let job = self.submit(event, request_id).await?;
            return Ok(
                json!({"delegated": {"job_id": job, "job_queue": self.config.batch_job_queue}}),
            );
        }
        let inv = event::parse(event)?;
        let prepared = self.prepared().await?;
        let limit = remaining
            .saturating_sub(Duration::from_secs(u64::from(
                self.config.timeout_threshold,
            )))
            .max(Duration::from_secs(1));
        let ctx = Context {
            inv: &inv,
            prepared: &prepared,
            request_id,
            limit,
            event,
        };
        let mut results = Vec::new();
        match &inv.work {
            Work::Objects(objects) => {
                for o in objects {
                    results.push(self.one(&ctx, Staged::Object(o)).await?);
                }
            }
            Work::Http { body, method, path } => {
                let r = self.one(&ctx, Staged::Http { body, method, path }).await?;
                return Ok(http_response(
                    &r,
                    request_id,
                    self.config.http_expose_errors,
                ));
            }
            Work::Queued(messages) => return self.queued(&ctx, messages).await,
            Work::Data(bytes) => results.push(self.one(&ctx, Staged::Data(bytes)).await?),
            Work::Nothing => results.push(self.one(&ctx, Staged::Nothing).await?),
            // Taken above, before any delegation.
            Work::Sweep => return self.sweep(request_id, remaining).await,
        }
        Ok(report(&results))
    }

    /// Runs one failure record's event `payload` again, as an S3 event is run (submitted to
    /// Batch, for a function that delegates everything): the report, whose `ok` says how it
    /// went.
    async fn run_again(
        &self,
        payload: &Value,
        request_id: &str,
        remaining: Duration,
    ) -> Result<Value, SupervisorError> {
        let inv = event::parse(payload)?;
        let Work::Objects(objects) = &inv.work else {
            return Err(SupervisorError::Event(event::UnknownEvent(
                "a failure record whose event is not an S3 event".into(),
            )));
        };
        if self.config.execution == Execution::Batch && !self.in_batch {
            let job = self.submit(payload, request_id).await?;
            return Ok(json!({"ok": true, "delegated": {"job_id": job}}));
        }
        let prepared = self.prepared().await?;
        let ctx = Context {
            inv: &inv,
            prepared: &prepared,
            request_id,
            limit: remaining
                .saturating_sub(Duration::from_secs(u64::from(
                    self.config.timeout_threshold,
                )))
                .max(Duration::from_secs(1)),
            event: payload,
        };
        let mut results = Vec::new();
        for o in objects {
            results.push(self.one(&ctx, Staged::Object(o)).await?);
        }
        Ok(report(&results))
    }

    /// A queued input's SQS messages, each processed as its S3 event's objects: the answer
    /// is the report with `batchItemFailures`, the ids of the messages that failed (one whose
    /// body is no S3 event among them), which the event source mapping puts back in the queue
    /// and, after `maxReceives`, into its dead-letter queue. The invocation itself succeeds.
    async fn queued(
        &self,
        ctx: &Context<'_>,
        messages: &[event::Message],
    ) -> Result<Value, SupervisorError> {
        let mut results = Vec::new();
        let mut failed = Vec::new();
        for m in messages {
            let ok = match &m.objects {
                Ok(objects) => {
                    let mut ok = true;
                    for o in objects {
                        // A message's own trouble (its object gone, say) is its failure
                        // alone: the batch's other messages stand.
                        match self.one(ctx, Staged::Object(o)).await {
                            Ok(r) => {
                                ok &= r.ok();
                                results.push(r);
                            }
                            Err(e) => {
                                tracing::error!(message = m.id, "s3://{}/{}: {e}", o.bucket, o.key);
                                ok = false;
                            }
                        }
                    }
                    ok
                }
                Err(why) => {
                    tracing::error!(message = m.id, "not an S3 event: {why}");
                    false
                }
            };
            if !ok {
                failed.push(m.id.clone());
            }
        }
        let mut answer = report(&results);
        answer["ok"] = json!(failed.is_empty());
        answer["batchItemFailures"] = failed
            .iter()
            .map(|id| json!({"itemIdentifier": id}))
            .collect();
        Ok(answer)
    }

    /// What runs: the invocation's script, else the function's, else the image's command.
    fn program(&self, inv: &Invocation) -> Program {
        match inv.script.as_deref().filter(|s| !s.is_empty()) {
            Some(s) => Program::Script(s.to_owned()),
            None if !self.config.script.is_empty() => Program::Script(self.config.script.clone()),
            None => {
                let command = self.config.command.clone().unwrap_or_default();
                Program::Command {
                    argv: command.argv(&inv.args),
                    working_dir: command.working_dir.filter(|d| !d.is_empty()),
                }
            }
        }
    }

    async fn one(
        &self,
        ctx: &Context<'_>,
        input: Staged<'_>,
    ) -> Result<InputResult, SupervisorError> {
        let work = tempfile::Builder::new().prefix("scar-").tempdir()?;
        let output_dir = work.path().join("output");
        tokio::fs::create_dir_all(&output_dir).await?;
        let mut vars = vec![
            (
                env::TMP_OUTPUT_DIR.to_owned(),
                output_dir.display().to_string(),
            ),
            (env::REQUEST_ID.to_owned(), ctx.request_id.to_owned()),
            (env::STACK.to_owned(), self.config.stack.clone()),
            (env::FUNCTION.to_owned(), self.config.function.clone()),
        ];
        let name = match &input {
            Staged::Object(o) => {
                let file = self.download(o, work.path()).await?;
                vars.push((env::INPUT_FILE_PATH.into(), file.display().to_string()));
                vars.push((env::INPUT_BUCKET.into(), o.bucket.clone()));
                vars.push((env::INPUT_KEY.into(), o.key.clone()));
                format!("s3://{}/{}", o.bucket, o.key)
            }
            Staged::Http { body, method, path } => {
                let file = work.path().join("input").join("request");
                stage(&file, body).await?;
                vars.push((env::INPUT_FILE_PATH.into(), file.display().to_string()));
                vars.push((env::HTTP_METHOD.into(), (*method).clone()));
                vars.push((env::HTTP_PATH.into(), (*path).clone()));
                "http".into()
            }
            Staged::Data(bytes) => {
                let file = work.path().join("input").join("data");
                stage(&file, bytes).await?;
                vars.push((env::INPUT_FILE_PATH.into(), file.display().to_string()));
                "data".into()
            }
            Staged::Nothing => "none".into(),
        };
        // The secrets' values replace the references the function's environment holds.
        vars.extend(
            ctx.prepared
                .env
                .iter()
                .map(|(k, v)| (k.clone(), v.expose().to_owned())),
        );
        let program = self.program(ctx.inv);
        tracing::info!(
            input = name,
            request_id = ctx.request_id,
            "running the script"
        );
        let result = script::run(&program, &ctx.inv.args, work.path(), &vars, ctx.limit).await?;
        let (uploaded, upload_errors) = self
            .upload_outputs(ctx.prepared, &output_dir, &name)
            .await?;
        let delegated = if result.timed_out
            && self.config.execution == Execution::LambdaBatch
            && !self.in_batch
        {
            tracing::warn!(
                input = name,
                "the work did not fit in Lambda: submitting it to Batch"
            );
            Some(self.submit(ctx.event, ctx.request_id).await?)
        } else {
            None
        };
        tracing::info!(input = name, status = ?result.status, timed_out = result.timed_out, uploads = uploaded.len(), failed_uploads = upload_errors.len(), "input done");
        Ok(InputResult {
            input: name,
            script: result,
            uploaded,
            upload_errors,
            delegated,
        })
    }

    async fn download(&self, o: &Object, work: &Path) -> Result<PathBuf, SupervisorError> {
        let base = o
            .key
            .rsplit('/')
            .next()
            .filter(|b| !b.is_empty() && *b != "." && *b != "..")
            .unwrap_or("input");
        let dir = work.join("input");
        tokio::fs::create_dir_all(&dir).await?;
        let file = dir.join(base);
        scar_transfer::download(
            &self.s3,
            &o.bucket,
            &o.key,
            &file,
            scar_transfer::Settings::default(),
        )
        .await
        .map_err(|e| SupervisorError::Aws(e.to_string()))?;
        Ok(file)
    }

    /// Uploads every file under `dir` (relative paths kept) to each destination whose filters
    /// accept its path. Returns what was written and what could not be.
    async fn upload_outputs(
        &self,
        prepared: &Prepared,
        dir: &Path,
        input: &str,
    ) -> Result<(Vec<String>, Vec<String>), SupervisorError> {
        let mut uploaded = Vec::new();
        let mut failed = Vec::new();
        for file in files_under(dir)? {
            let rel = file
                .strip_prefix(dir)
                .unwrap_or(&file)
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            let outside = outside_its_folder(&rel);
            for out in self
                .config
                .outputs
                .iter()
                .filter(|o| o.filter.accepts(&rel))
            {
                if let Some(why) = &outside {
                    let e = format!("output {} ({rel}): {why}; not uploaded", out.describe());
                    tracing::error!("{e}");
                    failed.push(e);
                    continue;
                }
                match self.upload(prepared, out, &rel, &file, input).await {
                    Ok(url) => {
                        tracing::info!(output = out.describe(), file = rel, url, "uploaded");
                        uploaded.push(url);
                    }
                    Err(e) => {
                        let e = format!("output {} ({rel}): {e}", out.describe());
                        tracing::error!("{e}");
                        failed.push(e);
                    }
                }
            }
        }
        Ok((uploaded, failed))
    }

    async fn upload(
        &self,
        prepared: &Prepared,
        out: &Output,
        rel: &str,
        file: &Path,
        input: &str,
    ) -> Result<String, String> {
        let key = format!("{}{rel}", out.prefix);
        let s3 = match &out.provider {
            None => &self.s3,
            Some(id) => match prepared.destinations.get(id) {
                Some(Destination::S3(c)) => c,
                Some(Destination::WebDav(d)) => {
                    return d.put(&format!("{}/{key}", out.bucket), file).await;
                }
                None => return Err(format!("storage provider `{id}` is not configured")),
            },
        };
        scar_transfer::upload(
            s3,
            &out.bucket,
            &key,
            file,
            &[("scar-input", input)],
            scar_transfer::Settings::default(),
        )
        .await
        .map_err(|e| e.to_string())?;
        Ok(format!("s3://{}/{key}", out.bucket))
    }

    /// Submits the event to the function's Batch queue; returns the job id. A multi-node job
    /// gets the event through `nodeOverrides` (all nodes), as a multi-node job requires.
    async fn submit(&self, event: &Value, request_id: &str) -> Result<String, SupervisorError> {
        if let Ok(here) = std::env::var(env::DELEGATE_HERE) {
            // Run here (`scar invoke --local`): scar runs the job command itself.
            tracing::info!(job_id = here, "delegated: the job runs here");
            return Ok(here);
        }
        use aws_sdk_batch::types::{
            ContainerOverrides, KeyValuePair, NodeOverrides, NodePropertyOverride,
        };
        let pair =
            |name: &str, value: String| KeyValuePair::builder().name(name).value(value).build();
        let mut overrides = ContainerOverrides::builder()
            .environment(pair(env::EVENT, event.to_string()))
            .environment(pair(env::REQUEST_ID, request_id.to_owned()));
        if self.config.batch_failures.is_some() {
            // Chosen now, so that every attempt of the job writes (or deletes) the same one.
            let key = records::record_key(&self.config.function, now_secs(), request_id);
            overrides = overrides.environment(pair(env::FAILURE_RECORD, key));
            if let Some(arn) = self.function_arn.get() {
                overrides = overrides.environment(pair(env::FUNCTION_ARN, arn.clone()));
            }
        }
        let overrides = overrides.build();
        let name: String = format!("{}-{request_id}", self.config.function)
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .take(128)
            .collect();
        let submit = self
            .batch
            .get_or_init(|| aws_sdk_batch::Client::new(&self.shared))
            .submit_job()
            .job_name(name)
            .job_queue(&self.config.batch_job_queue)
            .job_definition(&self.config.batch_job_definition);
        let submit = if self.config.batch_multi_node {
            submit.node_overrides(
                NodeOverrides::builder()
                    .node_property_overrides(
                        NodePropertyOverride::builder()
                            .target_nodes("0:")
                            .container_overrides(overrides)
                            .build(),
                    )
                    .build(),
            )
        } else {
            submit.container_overrides(overrides)
        };
        let out = submit.send().await.map_err(|e| {
            SupervisorError::Aws(format!(
                "submitting to Batch queue {}: {}",
                self.config.batch_job_queue,
                aws_sdk_batch::error::DisplayErrorContext(&e)
            ))
        })?;
        let id = out.job_id().unwrap_or_default().to_owned();
        tracing::info!(
            job_id = id,
            queue = self.config.batch_job_queue,
            "submitted to Batch"
        );
        Ok(id)
    }
}

/// Seconds since the epoch.
fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Where a Batch job is: its id, which attempt this is (1 for the first) and what its
/// submitter chose (the record's key, the function's ARN), from the job's environment.
#[derive(Debug, Clone)]
pub struct JobAttempt {
    /// `AWS_BATCH_JOB_ID`.
    pub job_id: String,
    /// `AWS_BATCH_JOB_ATTEMPT` (1 when unset).
    pub attempt: u32,
    /// [`env::FAILURE_RECORD`], when the submitter chose one.
    pub record_key: Option<String>,
    /// [`env::FUNCTION_ARN`], when the submitter gave it.
    pub function_arn: Option<String>,
}

impl JobAttempt {
    /// From the environment `var` reads.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> JobAttempt {
        JobAttempt {
            job_id: var("AWS_BATCH_JOB_ID").unwrap_or_else(|| "batch".into()),
            attempt: var("AWS_BATCH_JOB_ATTEMPT")
                .and_then(|a| a.trim().parse().ok())
                .filter(|a| *a >= 1)
                .unwrap_or(1),
            record_key: var(env::FAILURE_RECORD).filter(|k| k.starts_with(records::RECORDS)),
            function_arn: var(env::FUNCTION_ARN),
        }
    }
}

mod sweep;

impl Supervisor {
    /// Keeps the books of a Batch job attempt that ended with `result` (the job command then
    /// exits with `code`): one that failed and that Batch will not run again writes its
    /// failure record, in Lambda's format, where the function's records go; one that
    /// succeeded after an earlier attempt deletes the record that attempt may have written.
    /// What happened is added to `result` (`failure_record`, or `failure_record_error`).
    pub async fn settle_job(&self, event: &Value, result: &mut Value, job: &JobAttempt, code: i32) {
        let Some(books) = &self.config.batch_failures else {
            return;
        };
        let ok = code == 0;
        if ok && job.attempt == 1 {
            return;
        }
        if !ok && books.retry.runs_again(job.attempt, code) {
            tracing::info!(
                attempt = job.attempt,
                "Batch runs the job again: no failure record yet"
            );
            return;
        }
        let key = job
            .record_key
            .clone()
            .unwrap_or_else(|| records::record_key(&self.config.function, now_secs(), &job.job_id));
        let address = format!("s3://{}/{key}", books.bucket);
        let done = if ok {
            self.s3
                .delete_object()
                .bucket(&books.bucket)
                .key(&key)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| aws_sdk_s3::error::DisplayErrorContext(e).to_string())
        } else {
            let arn = job
                .function_arn
                .clone()
                .unwrap_or_else(|| format!("arn:aws:lambda:::function:{}", self.config.function));
            let last = records::LastAttempt {
                request_id: job.job_id.clone(),
                response: json!({"errorType": "ScarInvocationFailed",
                    "errorMessage": format!("the invocation failed: {result}")}),
            };
            let body = records::record(&arn, job.attempt, event, &last, now_secs());
            self.s3
                .put_object()
                .bucket(&books.bucket)
                .key(&key)
                .content_type("application/json")
                .body(body.into())
                .send()
                .await
                .map(|_| ())
                .map_err(|e| aws_sdk_s3::error::DisplayErrorContext(e).to_string())
        };
        match done {
            Ok(()) if ok => tracing::info!(
                record = address,
                "an earlier attempt's failure record deleted"
            ),
            Ok(()) => {
                tracing::warn!(
                    record = address,
                    attempt = job.attempt,
                    "the job failed for good: failure record written"
                );
                result["failure_record"] = json!(address);
            }
            Err(e) => {
                tracing::error!(record = address, "the failure record: {e}");
                result["failure_record_error"] = json!(format!("{address}: {e}"));
            }
        }
    }
}

struct Context<'a> {
    inv: &'a Invocation,
    prepared: &'a Prepared,
    request_id: &'a str,
    limit: Duration,
    event: &'a Value,
}

enum Staged<'a> {
    Object(&'a Object),
    Http {
        body: &'a Vec<u8>,
        method: &'a String,
        path: &'a String,
    },
    Data(&'a Vec<u8>),
    Nothing,
}

async fn stage(file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = file.parent() {
        tokio::fs::create_dir_all(dir).await?;
    }
    tokio::fs::write(file, bytes).await
}

/// Why a file's path below the output folder (an input's name may have made it: a key
/// `..\..\x` becomes a file of that name) would land outside the destination's folder,
/// if it would: a `.`, `..` or empty segment, with `/` or a backslash as the separator (a
/// Windows server, and some WebDAV ones, take a backslash for one).
#[must_use]
pub fn outside_its_folder(rel: &str) -> Option<String> {
    rel.split(['/', '\\'])
        .any(|s| s.is_empty() || s == "." || s == "..")
        .then(|| {
            "its name has a `.`, `..` or empty path segment, which could leave the output's folder"
                .to_owned()
        })
}

fn files_under(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            let t = e.file_type()?;
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() {
                out.push(e.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

fn input_json(r: &InputResult) -> Value {
    json!({
        "input": r.input,
        "exit_status": r.script.status,
        "timed_out": r.script.timed_out,
        "ok": r.ok(),
        "uploaded": r.uploaded,
        "upload_errors": r.upload_errors,
        "delegated_job_id": r.delegated,
        "stderr_tail": if r.script.ok() { Vec::new() } else { r.script.stderr_tail.clone() },
    })
}

/// The result of an invocation that is not an HTTP request.
fn report(results: &[InputResult]) -> Value {
    json!({
        "ok": results.iter().all(InputResult::ok),
        "results": results.iter().map(input_json).collect::<Vec<_>>(),
    })
}

/// API Gateway's proxy response: the script's stdout as the body, base64 so any bytes pass
/// (the API lists `*/*` as binary, so API Gateway sends the raw bytes on). A failure says what
/// failed and the request id; the script's stderr and the output errors (which may name
/// paths, hosts or worse) only when the manifest asks for them (`expose`): the caller of a
/// public endpoint is anyone.
fn http_response(r: &InputResult, request_id: &str, expose: bool) -> Value {
    use base64::Engine as _;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let failure = |what: String| {
        let head = format!(
            "{what} (exit status {:?}{}; request id {request_id})",
            r.script.status,
            if r.script.timed_out {
                ", timed out"
            } else {
                ""
            },
        );
        if expose {
            format!(
                "{head}:\n{}\n{}\n",
                r.upload_errors.join("\n"),
                r.script.stderr_tail.join("\n")
            )
        } else {
            format!("{head}; the details are in the function's logs\n")
        }
    };
    let (status, body, error) = if r.delegated.is_some() {
        (202, b64(&r.script.stdout), None)
    } else if !r.script.ok() {
        (
            500,
            b64(failure("the script failed".into()).as_bytes()),
            Some("script"),
        )
    } else if !r.upload_errors.is_empty() {
        (
            500,
            b64(failure("an output could not be written".into()).as_bytes()),
            Some("output"),
        )
    } else {
        (200, b64(&r.script.stdout), None)
    };
    let (status, body, error) = if body.len() + 1024 > MAX_RESPONSE_BYTES {
        let text = format!(
            "the response body is {} bytes, over what Lambda returns (6 MB once base64-encoded, about 4.5 MiB of bytes): write large results to $TMP_OUTPUT_DIR, which goes to the function's outputs\n",
            r.script.stdout.len()
        );
        (502, b64(text.as_bytes()), Some("response-too-large"))
    } else {
        (status, body, error)
    };
    let mut headers = json!({
        "Content-Type": "application/octet-stream",
        "amz-lambda-request-id": request_id,
        "x-scar-exit-status": r.script.status.map_or_else(|| "none".to_owned(), |s| s.to_string()),
    });
    if let Some(e) = error {
        headers["x-scar-error"] = json!(e);
    }
    json!({
        "statusCode": status,
        "headers": headers,
        "body": body,
        "isBase64Encoded": true,
    })
}

/// True when a handled event's result says everything worked.
#[must_use]
pub fn succeeded(result: &Value) -> bool {
    result
        .get("ok")
        .and_then(Value::as_bool)
        .unwrap_or_else(|| {
            result
                .get("statusCode")
                .and_then(Value::as_u64)
                .is_none_or(|s| s < 400)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(stdout: Vec<u8>, status: Option<i32>, upload_errors: Vec<String>) -> InputResult {
        InputResult {
            input: "http".into(),
            script: ScriptResult {
                status,
                timed_out: false,
                stdout,
                stderr_tail: vec!["boom".into()],
            },
            uploaded: Vec::new(),
            upload_errors,
            delegated: None,
        }
    }

    fn body(v: &Value) -> Vec<u8> {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(v["body"].as_str().expect("body"))
            .expect("base64")
    }

    #[test]
    fn http_answers_carry_any_bytes_and_say_what_failed() {
        let all: Vec<u8> = (0..=255u8).collect();
        let ok = http_response(&result(all.clone(), Some(0), Vec::new()), "r", true);
        assert_eq!(
            (ok["statusCode"].as_u64(), ok["isBase64Encoded"].as_bool()),
            (Some(200), Some(true))
        );
        assert_eq!(body(&ok), all);
        let failed = http_response(&result(Vec::new(), Some(3), Vec::new()), "r", true);
        assert_eq!(failed["statusCode"], 500);
        assert_eq!(failed["headers"]["x-scar-error"], "script");
        assert!(String::from_utf8_lossy(&body(&failed)).contains("boom"));
        // public_http_endpoints_with_no_choice: an anonymous caller gets no stderr unless the
        // manifest asks for it.
        let quiet = http_response(&result(Vec::new(), Some(3), Vec::new()), "req-9", false);
        let text = String::from_utf8_lossy(&body(&quiet)).into_owned();
        assert_eq!(quiet["statusCode"], 500);
        assert!(!text.contains("boom"), "{text}");
        assert!(text.contains("req-9"), "{text}");
        let lost = http_response(
            &result(
                b"fine".to_vec(),
                Some(0),
                vec!["output minio.lab:b/ (a.txt): refused".into()],
            ),
            "r",
            true,
        );
        assert_eq!(lost["statusCode"], 500);
        assert!(String::from_utf8_lossy(&body(&lost)).contains("minio.lab"));
        let big = http_response(
            &result(vec![7; MAX_RESPONSE_BYTES], Some(0), Vec::new()),
            "r",
            false,
        );
        assert_eq!(big["statusCode"], 502);
        assert_eq!(big["headers"]["x-scar-error"], "response-too-large");
        assert!(!succeeded(&big));
        assert!(succeeded(&ok));
    }

    #[test]
    fn a_lost_output_fails_the_input() {
        let r = result(Vec::new(), Some(0), vec!["output s3:b/ (a): denied".into()]);
        assert!(!r.ok());
        let v = report(&[r]);
        assert_eq!(v["ok"], false);
        assert_eq!(
            v["results"][0]["upload_errors"][0],
            "output s3:b/ (a): denied"
        );
    }
}
