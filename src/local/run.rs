//! One invocation of a function here: the Runtime API started, the image's entrypoint started
//! in the sandbox with Lambda's environment, the event handed over, the outcome taken back
//! within the function's timeout; then the sandbox is killed (every process in it goes with
//! its PID namespace), as Lambda freezes or ends an environment after an invocation.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;

use super::runtime_api::{Outcome, RuntimeApi};
use super::sandbox::{Sandbox, Tool};

/// What to run.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The sandbox tool.
    pub tool: Tool,
    /// The function's name.
    pub function: String,
    /// Its ARN, as the runtime hears it.
    pub function_arn: String,
    /// Its memory in MB (told to the runtime; not enforced).
    pub memory: u32,
    /// The region, as Lambda's environment says it.
    pub region: String,
    /// Its timeout.
    pub timeout: Duration,
    /// `/tmp` in MB.
    pub tmp_mb: u32,
    /// The prepared root file system.
    pub root: PathBuf,
    /// The working directory.
    pub cwd: String,
    /// The image's entrypoint and arguments.
    pub argv: Vec<String>,
    /// The environment besides Lambda's own variables: the image's, the function's, the
    /// credentials.
    pub env: Vec<(String, String)>,
    /// The event.
    pub event: Vec<u8>,
}

/// How an invocation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// The runtime answered (a response, an error, or an init error).
    Answered(Outcome),
    /// The function's timeout passed first.
    TimedOut,
    /// The runtime's process ended without answering, with this exit code (none: a signal).
    Exited(Option<i32>),
}

/// An invocation's end, what its processes wrote, and how long it took.
#[derive(Debug, Clone)]
pub struct Ran {
    /// How it ended.
    pub ended: Ended,
    /// The request id.
    pub request_id: String,
    /// Everything written to standard output (Lambda sends it to the log).
    pub stdout: Vec<u8>,
    /// Everything written to standard error.
    pub stderr: Vec<u8>,
    /// From starting the sandbox to the answer.
    pub took: Duration,
}

/// The variables Lambda sets for a function (besides the Runtime API's address).
#[must_use]
pub fn lambda_env(function: &str, memory: u32, region: &str) -> Vec<(String, String)> {
    [
        ("AWS_LAMBDA_FUNCTION_NAME", function.to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory.to_string()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{function}"),
        ),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "local".to_owned()),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_owned()),
        ("AWS_REGION", region.to_owned()),
        ("AWS_DEFAULT_REGION", region.to_owned()),
        ("AWS_EXECUTION_ENV", "AWS_Lambda_scar_local".to_owned()),
        ("LAMBDA_TASK_ROOT", "/var/task".to_owned()),
        ("TZ", ":UTC".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// A started sandbox: its first process and what its output pipes collect.
struct Started {
    child: tokio::process::Child,
    stdout: tokio::task::JoinHandle<Vec<u8>>,
    stderr: tokio::task::JoinHandle<Vec<u8>>,
    at: Instant,
}

impl Started {
    fn spawn(tool: &Tool, sandbox: &Sandbox) -> std::io::Result<Started> {
        let at = Instant::now();
        let mut child = sandbox
            .command(tool)?
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let drain = |pipe: Option<Box<dyn tokio::io::AsyncRead + Unpin + Send>>| {
            tokio::spawn(async move {
                let mut out = Vec::new();
                if let Some(mut p) = pipe {
                    let _ = p.read_to_end(&mut out).await;
                }
                out
            })
        };
        let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
        let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
        Ok(Started {
            child,
            stdout,
            stderr,
            at,
        })
    }

    /// Kills what is left (killing the sandbox's first process ends its PID namespace, and
    /// every process in it) and collects the output.
    async fn end(mut self, ended: Ended, request_id: String) -> Ran {
        let took = self.at.elapsed();
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        Ran {
            ended,
            request_id,
            stdout: self.stdout.await.unwrap_or_default(),
            stderr: self.stderr.await.unwrap_or_default(),
            took,
        }
    }
}

/// Runs `inv` once.
///
/// # Errors
/// When the Runtime API cannot listen or the sandbox cannot start.
pub async fn invoke(inv: Invocation) -> std::io::Result<Ran> {
    let api = RuntimeApi::start(&inv.function_arn).await?;
    let mut env = inv.env.clone();
    env.extend(lambda_env(&inv.function, inv.memory, &inv.region));
    env.push(("AWS_LAMBDA_RUNTIME_API".into(), api.address()));
    let sandbox = Sandbox {
        root: inv.root.clone(),
        tmp_mb: inv.tmp_mb,
        env,
        cwd: inv.cwd.clone(),
        argv: inv.argv.clone(),
    };
    let mut started = Started::spawn(&inv.tool, &sandbox)?;
    let (request_id, ended) = tokio::select! {
        (id, outcome) = api.invoke(inv.event.clone(), inv.timeout) => {
            (id, outcome.map_or(Ended::TimedOut, Ended::Answered))
        }
        status = started.child.wait() => (String::new(), Ended::Exited(status.ok().and_then(|s| s.code()))),
    };
    Ok(started.end(ended, request_id).await)
}

/// Runs a command to its end in the sandbox (a Batch job's), or until `timeout`; it ends as
/// [`Ended::Exited`] or [`Ended::TimedOut`].
///
/// # Errors
/// When the sandbox cannot start.
pub async fn to_end(
    tool: &Tool,
    sandbox: &Sandbox,
    timeout: Duration,
    request_id: String,
) -> std::io::Result<Ran> {
    let mut started = Started::spawn(tool, sandbox)?;
    let ended = match tokio::time::timeout(timeout, started.child.wait()).await {
        Ok(status) => Ended::Exited(status.ok().and_then(|s| s.code())),
        Err(_) => Ended::TimedOut,
    };
    Ok(started.end(ended, request_id).await)
}
