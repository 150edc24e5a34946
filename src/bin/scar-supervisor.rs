//! `scar-supervisor`: the runtime inside a function's image and the Batch job command.
//!
//! - `scar-supervisor --event EVENT.json --function FUNCTION.yaml`: handles one event locally
//!   with the same code path as in Lambda and prints the response (how developers and tests
//!   drive it). Exit 0 when the script succeeded, 1 otherwise.
//! - `scar-supervisor batch`: the Batch job command; the event is in `SCAR_EVENT`, the
//!   function's configuration in `SCAR_CONFIG` or `/opt/scar/function.json`.
//! - `scar-supervisor` with no arguments inside Lambda (`AWS_LAMBDA_RUNTIME_API` set): the
//!   Lambda Runtime API loop, one invocation after another.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use serde_json::Value;

use scar::supervisor::{Config, Supervisor, succeeded};

/// scar-supervisor: runs a function's script for each event.
#[derive(Debug, Parser)]
#[command(name = "scar-supervisor", version, about)]
struct Args {
    /// Local mode: the event to handle (a JSON file; `-` for standard input).
    #[arg(long, requires = "function")]
    event: Option<PathBuf>,
    /// Local mode: the Function manifest (its script is read relative to it).
    #[arg(long, requires = "event")]
    function: Option<PathBuf>,
    /// Local mode: the stack name (names the Batch queue and definition).
    #[arg(long, default_value = "local", env = "SCAR_STACK")]
    stack: String,
    /// Local mode: the request id given to the script.
    #[arg(long, default_value = "local")]
    request_id: String,
    /// What to run, when not in local mode.
    #[command(subcommand)]
    mode: Option<Mode>,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// The Batch job command: handle the event in `SCAR_EVENT`.
    Batch,
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SCAR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}

fn read_event(path: &std::path::Path) -> Result<Value, String> {
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(|e| format!("standard input: {e}"))?
    } else {
        std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?
    };
    serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", path.display()))
}

fn main() -> ExitCode {
    init_logging();
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    if args.mode.is_none()
        && args.event.is_none()
        && std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some()
    {
        return runtime.block_on(lambda_loop());
    }
    let prepared = match (&args.mode, &args.event, &args.function) {
        (Some(Mode::Batch), _, _) => Config::deployed()
            .map_err(|e| e.to_string())
            .and_then(|c| {
                let event = std::env::var("SCAR_EVENT")
                    .map_err(|_| "SCAR_EVENT is not set: a Batch job gets its event there".to_owned())?;
                let event: Value = serde_json::from_str(&event)
                    .map_err(|e| format!("SCAR_EVENT is not JSON: {e}"))?;
                let id = std::env::var("SCAR_REQUEST_ID")
                    .or_else(|_| std::env::var("AWS_BATCH_JOB_ID"))
                    .unwrap_or_else(|_| "batch".into());
                // A Batch job has no Lambda deadline: the job definition's own limits apply.
                Ok((c, event, id, Duration::from_secs(365 * 24 * 3600)))
            }),
        (None, Some(event), Some(function)) => Config::from_manifest(function, &args.stack)
            .map_err(|e| e.to_string())
            .and_then(|c| {
                let timeout = Duration::from_secs(u64::from(c.timeout));
                Ok((c, read_event(event)?, args.request_id.clone(), timeout))
            }),
        _ => Err("give --event EVENT.json --function FUNCTION.yaml (local mode), or `batch` (the Batch job command); inside Lambda (AWS_LAMBDA_RUNTIME_API set) it needs no argument. See --help".to_owned()),
    };
    let (config, event, request_id, remaining) = match prepared {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async {
        let supervisor = Supervisor::connect(config).await;
        match supervisor.handle(&event, &request_id, remaining).await {
            Ok(result) => {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&result).unwrap_or_else(|_| result.to_string())
                );
                if succeeded(&result) {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
        }
    })
}

/// The Lambda Runtime API loop: each invocation is handled with the time left before its
/// deadline. A script that fails fails the invocation (so Lambda's retries, metrics and
/// destinations see it), except for HTTP requests, whose response carries the failure.
async fn lambda_loop() -> ExitCode {
    for var in [
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
    ] {
        if std::env::var_os(var).is_none() {
            eprintln!("error: {var} is not set: this is not a Lambda environment");
            return ExitCode::from(1);
        }
    }
    let config = match Config::deployed() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    tracing::info!(
        function = config.function,
        version = scar::supervisor::VERSION,
        "scar-supervisor starting"
    );
    let supervisor = std::sync::Arc::new(Supervisor::connect(config).await);
    let handler = lambda_runtime::service_fn(move |event: lambda_runtime::LambdaEvent<Value>| {
        let supervisor = supervisor.clone();
        async move {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            let remaining = Duration::from_millis(
                u64::try_from(u128::from(event.context.deadline).saturating_sub(now)).unwrap_or(0),
            );
            let result = supervisor
                .handle(&event.payload, &event.context.request_id, remaining)
                .await
                .map_err(|e| lambda_runtime::Error::from(e.to_string()))?;
            if result.get("statusCode").is_none() && !succeeded(&result) {
                return Err(lambda_runtime::Error::from(format!(
                    "the script failed: {result}"
                )));
            }
            Ok::<Value, lambda_runtime::Error>(result)
        }
    });
    match lambda_runtime::run(handler).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: the Lambda Runtime API loop ended: {e}");
            ExitCode::from(1)
        }
    }
}
