//! Runs a stack's function here on one event: its image assembled (or a prebuilt one
//! unpacked) and cached, then the event handed to its runtime as Lambda would, or its Batch
//! job command run as AWS Batch would (`execution: batch`, or `lambda-batch` work the function
//! delegates).

use super::LocalError;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::run::{self, Ended, Invocation, Ran};
use super::runtime_api::Outcome;
use super::sandbox::{Sandbox, Tool, prepare_root};
use super::stack::{Function, Image};
use crate::image::Arch;
use crate::image::local::Assembled;
use crate::image::registry::Registry;
use crate::manifest::types::Execution;

/// What every function run here shares: the sandbox tool, the region and account Lambda's
/// variables name, and what the host gives each function (credentials, endpoints).
#[derive(Debug, Clone)]
pub struct Host {
    /// The sandbox tool.
    pub tool: Tool,
    /// The region.
    pub region: String,
    /// The account, for the function's ARN.
    pub account: String,
    /// Variables every function gets: the stack's credentials and endpoints.
    pub env: Vec<(String, String)>,
    /// How long a Batch job may run here.
    pub job_timeout: Duration,
    /// Where images are cached.
    pub cache: PathBuf,
}

impl Host {
    /// The ARN function `name` has here, as Lambda would give it.
    #[must_use]
    pub fn function_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:lambda:{}:{}:function:{name}",
            self.region, self.account
        )
    }
}

/// A function whose image is ready to run.
#[derive(Debug, Clone)]
pub struct Ready {
    /// The function.
    pub function: Function,
    /// Its image, unpacked.
    pub image: Assembled,
}

/// This machine's architecture, as OCI names it (Rust's name for one scar builds no images for).
#[must_use]
pub fn host_architecture() -> &'static str {
    Arch::from_rust(std::env::consts::ARCH).map_or(std::env::consts::ARCH, Arch::oci)
}

/// True when an image for `architecture` can run here: this machine's own, or one the kernel
/// runs through an emulator (`binfmt_misc`, as Debian's `qemu-user-static` registers).
fn runs_here(architecture: &str) -> bool {
    let Some(arch) = Arch::from_oci(architecture) else {
        return false;
    };
    if Arch::from_rust(std::env::consts::ARCH) == Some(arch) {
        return true;
    }
    let qemu = format!("qemu-{}", arch.rust());
    std::fs::read_to_string(Path::new("/proc/sys/fs/binfmt_misc").join(qemu))
        .is_ok_and(|s| s.starts_with("enabled"))
}

/// Makes `f`'s image ready: assembled (or unpacked) into the cache, its mount points made.
/// `progress` hears what takes time.
///
/// # Errors
/// When the image is for an architecture this machine cannot run, or cannot be assembled.
pub async fn ready(
    host: &Host,
    reg: &Registry,
    f: Function,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Ready, LocalError> {
    let arch = f.architecture().to_owned();
    if !runs_here(&arch) {
        return Err(LocalError::Architecture {
            function: f.name.clone(),
            arch,
            host: host_architecture().to_owned(),
        });
    }
    let image = match &f.image {
        Image::Assembled(spec) => {
            crate::image::local::assemble(reg, spec, &host.cache, progress).await
        }
        Image::Prebuilt(reference, arch) => {
            crate::image::local::prebuilt(reg, reference, arch, &host.cache, progress).await
        }
    }
    .map_err(|e| LocalError::Image {
        function: f.name.clone(),
        why: e.to_string(),
    })?;
    prepare_root(&image.root)?;
    Ok(Ready { function: f, image })
}

/// How a run of a function on one event went.
#[derive(Debug, Clone, Default)]
pub struct RunResult {
    /// The Lambda invocation, when there was one.
    pub lambda: Option<Ran>,
    /// The Batch job run here, when there was one.
    pub job: Option<Ran>,
    /// The supervisor's report (`ok`, `results` with `uploaded` and `stderr_tail`), from the
    /// last part that made one.
    pub report: Option<Value>,
    /// `None` when it worked, else why not.
    pub failure: Option<String>,
    /// Every file the function uploaded (`s3://bucket/key`...), from every part that ran.
    pub uploaded: Vec<String>,
    /// Invocations made: more than one when an S3 event failed and was run again.
    pub attempts: u32,
    /// When every attempt failed and the function records failures: the record written
    /// (`s3://...`), or why it could not be.
    pub recorded: Option<Result<String, String>>,
}

impl RunResult {
    /// Takes in what one part (the Lambda invocation, or the job, which may run `timeout`)
    /// left: its report, its verdict and its uploads.
    fn take(&mut self, ran: &Ran, timeout: Duration) {
        let report = report_of(ran);
        self.failure = failure_of(ran, timeout, report.as_ref());
        if let Some(r) = &report {
            self.uploaded.extend(uploads(r));
        }
        self.report = report;
    }

    /// The last lines of the failing script's standard error (from the supervisor's report),
    /// else of the sandbox's.
    #[must_use]
    pub fn stderr_tail(&self, lines: usize) -> Vec<String> {
        let from_report: Vec<String> = self
            .report
            .iter()
            .flat_map(|r| each_result(r, "stderr_tail"))
            .filter_map(|l| l.as_str().map(str::to_owned))
            .collect();
        let all = if from_report.is_empty() {
            [&self.job, &self.lambda]
                .into_iter()
                .flatten()
                .next()
                .map(|r| {
                    String::from_utf8_lossy(&r.stderr)
                        .lines()
                        .map(str::to_owned)
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        } else {
            from_report
        };
        all[all.len().saturating_sub(lines)..].to_vec()
    }

    /// What the function answered, as Lambda keeps it in a failure record: the runtime's
    /// error (the supervisor's `ScarInvocationFailed` and its report), or, for a Batch job
    /// run here, its report in the same words.
    #[must_use]
    pub fn answer(&self) -> Value {
        let answered = [&self.job, &self.lambda]
            .into_iter()
            .flatten()
            .next()
            .and_then(|r| match &r.ended {
                Ended::Answered(Outcome::Error { body, .. } | Outcome::InitError { body, .. }) => {
                    serde_json::from_slice::<Value>(body).ok()
                }
                _ => None,
            });
        answered.unwrap_or_else(|| match &self.report {
            Some(report) => serde_json::json!({
                "errorType": "ScarInvocationFailed",
                "errorMessage": format!("the invocation failed: {report}"),
            }),
            None => serde_json::json!({
                "errorType": "Runtime.ExitError",
                "errorMessage": self.failure.clone().unwrap_or_default(),
            }),
        })
    }

    /// The request id of the part that ran last.
    #[must_use]
    pub fn request_id(&self) -> String {
        [&self.job, &self.lambda]
            .into_iter()
            .flatten()
            .next()
            .map(|r| r.request_id.clone())
            .unwrap_or_default()
    }

    /// How long it took, every part together.
    #[must_use]
    pub fn took(&self) -> Duration {
        [&self.lambda, &self.job]
            .into_iter()
            .flatten()
            .map(|r| r.took)
            .sum()
    }
}

/// The entries of the array `field` of every result of a supervisor's report.
fn each_result<'a>(report: &'a Value, field: &'a str) -> impl Iterator<Item = &'a Value> {
    report
        .get("results")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(move |r| r.get(field).and_then(Value::as_array).into_iter().flatten())
}

/// `s3://` and other URLs a report lists as uploaded.
fn uploads(report: &Value) -> Vec<String> {
    each_result(report, "uploaded")
        .filter_map(|u| u.as_str().map(str::to_owned))
        .collect()
}

/// The supervisor's report in what a run left: a Lambda answer (or the error that carries
/// it), or the JSON a Batch job printed last.
fn report_of(ran: &Ran) -> Option<Value> {
    match &ran.ended {
        Ended::Answered(Outcome::Response(body)) => serde_json::from_slice(body).ok(),
        Ended::Answered(Outcome::Error { body, .. }) => {
            let doc: Value = serde_json::from_slice(body).ok()?;
            let message = doc.get("errorMessage")?.as_str()?;
            let json = message.strip_prefix("the invocation failed: ")?;
            serde_json::from_str(json).ok()
        }
        _ => {
            let text = String::from_utf8_lossy(&ran.stdout);
            let start = if text.starts_with('{') {
                0
            } else {
                text.rfind("\n{")? + 1
            };
            serde_json::from_str(&text[start..]).ok()
        }
    }
}

/// What a report says failed: the first failing input's script (ran out of time, or its
/// exit status) or uploads.
fn script_failure(report: &Value, timeout: Duration) -> String {
    let failing = report
        .get("results")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|r| r.get("ok").and_then(Value::as_bool) == Some(false));
    let Some(r) = failing else {
        return "the script failed".to_owned();
    };
    if r.get("timed_out").and_then(Value::as_bool) == Some(true) {
        return format!(
            "the script ran out of time (the function's timeout is {} s, less its threshold for uploads)",
            timeout.as_secs()
        );
    }
    match r.get("exit_status").and_then(Value::as_i64) {
        Some(0) => format!(
            "uploading its outputs failed: {}",
            r.get("upload_errors")
                .map(Value::to_string)
                .unwrap_or_default()
        ),
        Some(code) => format!("the script exited with status {code}"),
        None => "the script was killed".to_owned(),
    }
}

/// Why a run failed, or `None`.
fn failure_of(ran: &Ran, timeout: Duration, report: Option<&Value>) -> Option<String> {
    if let Some(r) = report.filter(|r| r.get("ok").and_then(Value::as_bool) == Some(false)) {
        return Some(script_failure(r, timeout));
    }
    match &ran.ended {
        Ended::Answered(Outcome::Response(_)) => None,
        Ended::Answered(Outcome::Error { body, .. } | Outcome::InitError { body, .. }) => {
            let doc: Option<Value> = serde_json::from_slice(body).ok();
            let kind = doc
                .as_ref()
                .and_then(|d| d.get("errorType"))
                .and_then(Value::as_str)
                .unwrap_or("error");
            let message = doc
                .as_ref()
                .and_then(|d| d.get("errorMessage"))
                .and_then(Value::as_str)
                .map_or_else(|| String::from_utf8_lossy(body).into_owned(), str::to_owned);
            Some(format!("{kind}: {message}"))
        }
        Ended::TimedOut => Some(format!(
            "timed out after {} s (the sandbox was ended)",
            timeout.as_secs()
        )),
        Ended::Exited(Some(0)) if report.is_some() => None,
        Ended::Exited(Some(0)) => Some("the job printed no report".to_owned()),
        Ended::Exited(Some(code)) => Some(format!("exited with status {code}")),
        Ended::Exited(None) => Some("killed by a signal".to_owned()),
    }
}

/// The base image's environment (`KEY=value`), then `over` (a later value of a name wins).
fn environment(
    image: &Assembled,
    over: impl IntoIterator<Item = (String, String)>,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = image
        .env
        .iter()
        .filter_map(|e| e.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    for (k, v) in over {
        env.retain(|(old, _)| *old != k);
        env.push((k, v));
    }
    env
}

/// Runs `r` on `event` here: through its runtime as Lambda would, or its Batch job command
/// (`execution: batch`); a `lambda-batch` function's delegated work then runs as its job.
///
/// # Errors
/// When the sandbox cannot start.
pub async fn run(host: &Host, r: &Ready, event: &[u8]) -> Result<RunResult, LocalError> {
    let f = &r.function;
    let id = super::runtime_api::new_request_id();
    let mut result = RunResult::default();
    if f.execution != Execution::Batch {
        let delegate_here = format!("local-{id}");
        let delegation = (f.execution == Execution::LambdaBatch).then(|| {
            (
                scar_contract::env::DELEGATE_HERE.to_owned(),
                delegate_here.clone(),
            )
        });
        let over = f
            .environment
            .clone()
            .into_iter()
            .chain(host.env.iter().cloned())
            .chain(delegation);
        let inv = Invocation {
            tool: host.tool.clone(),
            function: f.name.clone(),
            function_arn: host.function_arn(&f.name),
            memory: f.memory,
            region: host.region.clone(),
            timeout: f.timeout,
            tmp_mb: f.tmp_mb,
            root: r.image.root.clone(),
            cwd: r.image.working_dir.clone(),
            argv: r.image.argv.clone(),
            env: environment(&r.image, over),
            event: event.to_vec(),
        };
        let ran = run::invoke(inv).await.map_err(|e| started(host, e))?;
        result.take(&ran, f.timeout);
        let delegated = result.report.as_ref().is_some_and(|rep| {
            rep.get("results")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|x| x.get("delegated_job_id").and_then(Value::as_str) == Some(&delegate_here))
        });
        result.lambda = Some(ran);
        if !delegated {
            return Ok(result);
        }
    }
    job(host, r, event, &id, &mut result).await?;
    Ok(result)
}

/// The sandbox of `host` did not start.
fn started(host: &Host, e: std::io::Error) -> LocalError {
    LocalError::Start {
        tool: host.tool.name(),
        source: std::sync::Arc::new(e),
    }
}

/// Runs the function's Batch job on `event` here, into `result`.
async fn job(
    host: &Host,
    r: &Ready,
    event: &[u8],
    id: &str,
    result: &mut RunResult,
) -> Result<(), LocalError> {
    let f = &r.function;
    let Some(job) = &f.job else {
        return Err(LocalError::NoJob(f.name.clone()));
    };
    // What the submitting function tells a job: where its failure record goes (one key for
    // every attempt), and its own ARN.
    let record = scar_contract::records::record_key(&f.name, crate::lock::now(), id);
    // Batch's attempts: another while the retry strategy says so of how the last one ended.
    let mut attempt = 0;
    loop {
        attempt += 1;
        let over = job
            .environment
            .clone()
            .into_iter()
            .chain(host.env.iter().cloned())
            .chain([
                ("AWS_REGION".to_owned(), host.region.clone()),
                ("AWS_DEFAULT_REGION".to_owned(), host.region.clone()),
                ("AWS_BATCH_JOB_ID".to_owned(), format!("local-{id}")),
                ("AWS_BATCH_JOB_ATTEMPT".to_owned(), attempt.to_string()),
                (
                    scar_contract::env::EVENT.to_owned(),
                    String::from_utf8_lossy(event).into_owned(),
                ),
                (scar_contract::env::REQUEST_ID.to_owned(), id.to_owned()),
                (
                    scar_contract::env::FAILURE_RECORD.to_owned(),
                    record.clone(),
                ),
                (
                    scar_contract::env::FUNCTION_ARN.to_owned(),
                    host.function_arn(&f.name),
                ),
            ]);
        let sandbox = Sandbox {
            root: r.image.root.clone(),
            tmp_mb: f.tmp_mb.max(job.memory / 2),
            env: environment(&r.image, over),
            cwd: r.image.working_dir.clone(),
            argv: job.command.clone(),
        };
        let ran = run::to_end(&host.tool, &sandbox, host.job_timeout, id.to_owned())
            .await
            .map_err(|e| started(host, e))?;
        result.take(&ran, host.job_timeout);
        result.attempts = attempt;
        let again = match ran.ended {
            Ended::Exited(Some(code)) if code != 0 => job.retry.runs_again(attempt, code),
            _ => false,
        };
        result.job = Some(ran);
        if !again {
            break;
        }
    }
    // The job keeps its own books: the supervisor in it wrote its record, or says why not.
    let said = |field: &str| {
        result
            .report
            .as_ref()
            .and_then(|r| r.get(field))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    result.recorded = said("failure_record")
        .map(Ok)
        .or_else(|| said("failure_record_error").map(Err));
    Ok(())
}
