//! scar-supervisor: the runtime inside a function's image (Lambda) and the Batch job command.
//!
//! For each input of an invocation it makes a fresh work folder, stages the input there
//! (downloads the S3 object, or writes the HTTP body or given bytes), runs the script with
//! SCAR's environment contract, uploads every file the script wrote to `$TMP_OUTPUT_DIR` to each
//! output destination whose filters match, and reports the script's exit status. In `batch`
//! mode every invocation is submitted to AWS Batch; in `lambda-batch` mode an input that does
//! not finish in time goes to Batch.
//!
//! The environment contract (docs/runtime.md): `INPUT_FILE_PATH`, `TMP_OUTPUT_DIR` (SCAR's),
//! and `SCAR_INPUT_BUCKET`, `SCAR_INPUT_KEY`, `SCAR_REQUEST_ID`, `SCAR_STACK`, `SCAR_FUNCTION`,
//! `SCAR_HTTP_METHOD`, `SCAR_HTTP_PATH`.

pub mod config;
pub mod event;
pub mod script;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

pub use config::Config;
use event::{Invocation, Object, Work};
use script::ScriptResult;

use crate::manifest::types::Execution;

/// The version of the supervisor (the scar version it was built with).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Set in a Batch job's environment: the supervisor runs the work instead of delegating.
pub const IN_BATCH_ENV: &str = "AWS_BATCH_JOB_ID";

/// A failure that is not the script's.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    /// The event has no known shape.
    #[error(transparent)]
    Event(#[from] event::UnknownEvent),
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
    /// `s3://bucket/key`, `http` or `data`.
    pub input: String,
    /// The script's result.
    pub script: ScriptResult,
    /// `s3://...` of every file uploaded.
    pub uploaded: Vec<String>,
    /// A Batch job id when the input went to Batch instead.
    pub delegated: Option<String>,
}

/// The supervisor of one function.
#[derive(Debug)]
pub struct Supervisor {
    config: Config,
    s3: aws_sdk_s3::Client,
    batch: aws_sdk_batch::Client,
}

impl Supervisor {
    /// Connects with the standard AWS configuration (`AWS_ENDPOINT_URL` included).
    pub async fn connect(config: Config) -> Self {
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&shared)
                .force_path_style(shared.endpoint_url().is_some())
                .build(),
        );
        Self {
            config,
            s3,
            batch: aws_sdk_batch::Client::new(&shared),
        }
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Handles one event: `request_id` names it; `remaining` is the time the platform gives
    /// (Lambda's deadline), of which the timeout threshold is kept back for uploads.
    ///
    /// # Errors
    /// When the event has no known shape, or S3 or Batch fail (a failing script is not an
    /// error: its status is in the result).
    pub async fn handle(
        &self,
        event: &Value,
        request_id: &str,
        remaining: Duration,
    ) -> Result<Value, SupervisorError> {
        let in_batch = std::env::var_os(IN_BATCH_ENV).is_some();
        if self.config.execution == Execution::Batch && !in_batch {
            let job = self.submit(event, request_id).await?;
            return Ok(
                json!({"delegated": {"job_id": job, "job_queue": self.config.batch_job_queue}}),
            );
        }
        let inv = event::parse(event)?;
        let limit = remaining
            .saturating_sub(Duration::from_secs(u64::from(
                self.config.timeout_threshold,
            )))
            .max(Duration::from_secs(1));
        let mut results = Vec::new();
        match &inv.work {
            Work::Objects(objects) => {
                for o in objects {
                    let r = self
                        .one(&inv, Staged::Object(o), request_id, limit, in_batch, event)
                        .await?;
                    results.push(r);
                }
            }
            Work::Http { body, method, path } => {
                let r = self
                    .one(
                        &inv,
                        Staged::Http { body, method, path },
                        request_id,
                        limit,
                        in_batch,
                        event,
                    )
                    .await?;
                return Ok(http_response(&r, request_id));
            }
            Work::Data(bytes) => {
                results.push(
                    self.one(
                        &inv,
                        Staged::Data(bytes),
                        request_id,
                        limit,
                        in_batch,
                        event,
                    )
                    .await?,
                );
            }
            Work::Nothing => {
                results.push(
                    self.one(&inv, Staged::Nothing, request_id, limit, in_batch, event)
                        .await?,
                );
            }
        }
        Ok(report(&results))
    }

    async fn one(
        &self,
        inv: &Invocation,
        input: Staged<'_>,
        request_id: &str,
        limit: Duration,
        in_batch: bool,
        event: &Value,
    ) -> Result<InputResult, SupervisorError> {
        let work = tempfile::Builder::new().prefix("scar-").tempdir()?;
        let output_dir = work.path().join("output");
        tokio::fs::create_dir_all(&output_dir).await?;
        let mut env = vec![
            (
                "TMP_OUTPUT_DIR".to_owned(),
                output_dir.display().to_string(),
            ),
            ("SCAR_REQUEST_ID".to_owned(), request_id.to_owned()),
            ("SCAR_STACK".to_owned(), self.config.stack.clone()),
            ("SCAR_FUNCTION".to_owned(), self.config.function.clone()),
        ];
        let name = match &input {
            Staged::Object(o) => {
                let file = self.download(o, work.path()).await?;
                env.push(("INPUT_FILE_PATH".into(), file.display().to_string()));
                env.push(("SCAR_INPUT_BUCKET".into(), o.bucket.clone()));
                env.push(("SCAR_INPUT_KEY".into(), o.key.clone()));
                format!("s3://{}/{}", o.bucket, o.key)
            }
            Staged::Http { body, method, path } => {
                let file = work.path().join("input").join("request");
                stage(&file, body).await?;
                env.push(("INPUT_FILE_PATH".into(), file.display().to_string()));
                env.push(("SCAR_HTTP_METHOD".into(), (*method).clone()));
                env.push(("SCAR_HTTP_PATH".into(), (*path).clone()));
                "http".into()
            }
            Staged::Data(bytes) => {
                let file = work.path().join("input").join("data");
                stage(&file, bytes).await?;
                env.push(("INPUT_FILE_PATH".into(), file.display().to_string()));
                "data".into()
            }
            Staged::Nothing => "none".into(),
        };
        let script = inv.script.as_deref().unwrap_or(&self.config.script);
        tracing::info!(input = name, request_id, "running the script");
        let result = script::run(script, &inv.args, work.path(), &env, limit).await?;
        let uploaded = self.upload_outputs(&output_dir, &name).await?;
        let delegated =
            if result.timed_out && self.config.execution == Execution::LambdaBatch && !in_batch {
                tracing::warn!(
                    input = name,
                    "the work did not fit in Lambda: submitting it to Batch"
                );
                Some(self.submit(event, request_id).await?)
            } else {
                None
            };
        tracing::info!(input = name, status = ?result.status, timed_out = result.timed_out, uploads = uploaded.len(), "input done");
        Ok(InputResult {
            input: name,
            script: result,
            uploaded,
            delegated,
        })
    }

    async fn download(&self, o: &Object, work: &Path) -> Result<PathBuf, SupervisorError> {
        let base = o
            .key
            .rsplit('/')
            .next()
            .filter(|b| !b.is_empty())
            .unwrap_or("input");
        let file = work.join("input").join(base);
        let got = self
            .s3
            .get_object()
            .bucket(&o.bucket)
            .key(&o.key)
            .send()
            .await
            .map_err(|e| {
                SupervisorError::Aws(format!(
                    "downloading s3://{}/{}: {}",
                    o.bucket,
                    o.key,
                    aws_sdk_s3::error::DisplayErrorContext(&e)
                ))
            })?;
        let bytes = got
            .body
            .collect()
            .await
            .map_err(|e| SupervisorError::Aws(format!("reading s3://{}/{}: {e}", o.bucket, o.key)))?
            .into_bytes();
        stage(&file, &bytes).await?;
        Ok(file)
    }

    /// Uploads every file under `dir` (relative paths kept) to each S3 destination whose
    /// filters accept its name.
    async fn upload_outputs(
        &self,
        dir: &Path,
        input: &str,
    ) -> Result<Vec<String>, SupervisorError> {
        let mut uploaded = Vec::new();
        for file in files_under(dir)? {
            let rel = file
                .strip_prefix(dir)
                .unwrap_or(&file)
                .to_string_lossy()
                .replace('\\', "/");
            let name = rel.rsplit('/').next().unwrap_or(&rel).to_owned();
            for out in self.config.outputs.iter().filter(|o| o.accepts(&name)) {
                if let Some(p) = &out.provider {
                    tracing::warn!(
                        provider = p,
                        file = rel,
                        "storage providers other than the function's S3 are not supported yet; skipped"
                    );
                    continue;
                }
                let key = format!("{}{rel}", out.prefix);
                let body = aws_sdk_s3::primitives::ByteStream::from_path(&file)
                    .await
                    .map_err(|e| {
                        SupervisorError::Aws(format!("reading {}: {e}", file.display()))
                    })?;
                self.s3
                    .put_object()
                    .bucket(&out.bucket)
                    .key(&key)
                    .body(body)
                    .metadata("scar-input", input)
                    .send()
                    .await
                    .map_err(|e| {
                        SupervisorError::Aws(format!(
                            "uploading s3://{}/{key}: {}",
                            out.bucket,
                            aws_sdk_s3::error::DisplayErrorContext(&e)
                        ))
                    })?;
                tracing::info!(bucket = out.bucket, key, "uploaded");
                uploaded.push(format!("s3://{}/{key}", out.bucket));
            }
        }
        Ok(uploaded)
    }

    /// Submits the event to the function's Batch queue; returns the job id.
    async fn submit(&self, event: &Value, request_id: &str) -> Result<String, SupervisorError> {
        let env = |k: &str, v: &str| {
            aws_sdk_batch::types::KeyValuePair::builder()
                .name(k)
                .value(v)
                .build()
        };
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
        let out = self
            .batch
            .submit_job()
            .job_name(name)
            .job_queue(&self.config.batch_job_queue)
            .job_definition(&self.config.batch_job_definition)
            .container_overrides(
                aws_sdk_batch::types::ContainerOverrides::builder()
                    .environment(env("SCAR_EVENT", &event.to_string()))
                    .environment(env("SCAR_REQUEST_ID", request_id))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| {
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
        "ok": r.script.ok(),
        "uploaded": r.uploaded,
        "delegated_job_id": r.delegated,
        "stderr_tail": if r.script.ok() { Vec::new() } else { r.script.stderr_tail.clone() },
    })
}

/// The result of an invocation that is not an HTTP request.
fn report(results: &[InputResult]) -> Value {
    json!({
        "ok": results.iter().all(|r| r.script.ok() || r.delegated.is_some()),
        "results": results.iter().map(input_json).collect::<Vec<_>>(),
    })
}

/// API Gateway's proxy response: the script's stdout as the body, base64 so any bytes pass.
fn http_response(r: &InputResult, request_id: &str) -> Value {
    use base64::Engine as _;
    let status = if r.delegated.is_some() {
        202
    } else if r.script.ok() {
        200
    } else {
        500
    };
    let body = if status == 500 {
        base64::engine::general_purpose::STANDARD.encode(
            format!(
                "the script failed (exit status {:?}{}):\n{}\n",
                r.script.status,
                if r.script.timed_out {
                    ", timed out"
                } else {
                    ""
                },
                r.script.stderr_tail.join("\n")
            )
            .as_bytes(),
        )
    } else {
        base64::engine::general_purpose::STANDARD.encode(&r.script.stdout)
    };
    json!({
        "statusCode": status,
        "headers": {
            "Content-Type": "application/octet-stream",
            "amz-lambda-request-id": request_id,
            "x-scar-exit-status": r.script.status.map_or_else(|| "none".to_owned(), |s| s.to_string()),
        },
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
