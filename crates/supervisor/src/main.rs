//! `scar-supervisor`: the runtime inside a function's image and the Batch job command.
//!
//! - `scar-supervisor` with no arguments inside Lambda (`AWS_LAMBDA_RUNTIME_API` set): the
//!   Lambda Runtime API loop, one invocation after another.
//! - `scar-supervisor batch`: the Batch job command; the event is in `SCAR_EVENT`.
//! - `scar-supervisor --event EVENT.json [--config FUNCTION.json] [--request-id ID]`: handles
//!   one event with the same code path and prints the response (how developers and tests drive
//!   it). Exit 0 when everything worked, 1 otherwise.
//!
//! The configuration comes from `--config`, else `SCAR_CONFIG` (base64 JSON), else
//! `/opt/scar/function.json` (where image assembly puts it), else the function's environment
//! (a prebuilt image's). Arguments are read by hand: the binary stays small, and starts fast.

use std::process::ExitCode;
use std::time::Duration;

use scar_contract::{CONFIG_PATH, LogLevel, VERSION_MARKER, env};
use scar_supervisor::{Config, Supervisor, succeeded};
use serde_json::Value;

const USAGE: &str = "usage:
  scar-supervisor                         inside Lambda (AWS_LAMBDA_RUNTIME_API set): the Runtime API loop
  scar-supervisor batch                   a Batch job's command: handles the event in SCAR_EVENT
  scar-supervisor --event EVENT.json [--config FUNCTION.json] [--request-id ID]
                                          handles one event and prints the response
  scar-supervisor --version | --help";

enum Mode {
    Lambda,
    Batch,
    Local {
        event: String,
        config: Option<String>,
        request_id: String,
    },
}

fn parse_args(args: &[String]) -> Result<Mode, String> {
    let mut event = None;
    let mut config = None;
    let mut request_id = "local".to_owned();
    let mut batch = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match a.as_str() {
            "batch" => batch = true,
            "--event" => event = Some(value("--event")?),
            "--config" => config = Some(value("--config")?),
            "--request-id" => request_id = value("--request-id")?,
            other => return Err(format!("unexpected argument `{other}`")),
        }
    }
    match (batch, event) {
        (true, None) if config.is_none() => Ok(Mode::Batch),
        (false, Some(event)) => Ok(Mode::Local {
            event,
            config,
            request_id,
        }),
        (false, None) if config.is_none() && std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() => {
            Ok(Mode::Lambda)
        }
        _ => Err("give `--event EVENT.json` (local mode) or `batch` (the Batch job command); inside Lambda (AWS_LAMBDA_RUNTIME_API set) it needs no argument".into()),
    }
}

/// The deployed configuration (see the module's documentation for the order).
fn deployed_config(path: Option<&str>) -> Result<Config, String> {
    use base64::Engine as _;
    if let Some(p) = path {
        let bytes = std::fs::read(p).map_err(|e| format!("{p}: {e}"))?;
        return Config::from_json(&bytes).map_err(|e| format!("{p}: {e}"));
    }
    if let Ok(b64) = std::env::var(env::CONFIG) {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|e| format!("{}: not base64: {e}", env::CONFIG))?;
        return Config::from_json(&bytes).map_err(|e| format!("{}: {e}", env::CONFIG));
    }
    match std::fs::read(CONFIG_PATH) {
        Ok(bytes) => Config::from_json(&bytes).map_err(|e| format!("{CONFIG_PATH}: {e}")),
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                && std::env::var_os(env::FUNCTION).is_some() =>
        {
            Config::from_env(|k| std::env::var(k).ok()).map_err(|e| e.to_string())
        }
        Err(e) => Err(format!(
            "{CONFIG_PATH}: {e} (and {} is not set: this is not a scar function's environment)",
            env::FUNCTION
        )),
    }
}

/// Logs at the function's level (`logs.level`); `SCAR_LOG` (a level name) overrides it and
/// also lets the libraries' own lines through.
fn init_logging(level: LogLevel) {
    use tracing::level_filters::LevelFilter;
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::prelude::*;
    let own = match level {
        LogLevel::Critical | LogLevel::Error => LevelFilter::ERROR,
        LogLevel::Warning => LevelFilter::WARN,
        LogLevel::Info => LevelFilter::INFO,
        LogLevel::Debug => LevelFilter::DEBUG,
    };
    let filter = match std::env::var(env::LOG)
        .ok()
        .and_then(|l| l.parse::<LevelFilter>().ok())
    {
        Some(all) => Targets::new().with_default(all),
        None => Targets::new()
            .with_target("scar", own)
            .with_default(own.min(LevelFilter::WARN)),
    };
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(false),
        )
        .with(filter)
        .try_init();
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--version" || a == "-V") {
        println!("{}", VERSION_MARKER.trim_matches('\0'));
        return ExitCode::SUCCESS;
    }
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let mode = match parse_args(&args) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let config_path = match &mode {
        Mode::Local { config, .. } => config.clone(),
        _ => None,
    };
    let config = match deployed_config(config_path.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    init_logging(config.log_level);
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
    match mode {
        Mode::Lambda => runtime.block_on(lambda_loop(config)),
        Mode::Batch => {
            let prepared = std::env::var(env::EVENT)
                .map_err(|_| {
                    format!(
                        "{} is not set: a Batch job gets its event there",
                        env::EVENT
                    )
                })
                .and_then(|e| {
                    serde_json::from_str::<Value>(&e)
                        .map_err(|e| format!("{} is not JSON: {e}", env::EVENT))
                });
            let event = match prepared {
                Ok(e) => e,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(1);
                }
            };
            let id = std::env::var(env::REQUEST_ID)
                .or_else(|_| std::env::var("AWS_BATCH_JOB_ID"))
                .unwrap_or_else(|_| "batch".into());
            runtime.block_on(job(config, &event, &id))
        }
        Mode::Local {
            event, request_id, ..
        } => {
            let text = if event == "-" {
                std::io::read_to_string(std::io::stdin())
                    .map_err(|e| format!("standard input: {e}"))
            } else {
                std::fs::read_to_string(&event).map_err(|e| format!("{event}: {e}"))
            };
            let parsed = text.and_then(|t| {
                serde_json::from_str::<Value>(&t).map_err(|e| format!("{event}: not JSON: {e}"))
            });
            let event = match parsed {
                Ok(e) => e,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(1);
                }
            };
            let timeout = Duration::from_secs(match config.timeout {
                0 => 900,
                t => u64::from(t),
            });
            runtime.block_on(once(config, &event, &request_id, timeout))
        }
    }
}

/// Runs a Batch job's attempt on its event, keeps its books (its failure record when Batch
/// will not run it again) and prints the response. A Batch job has no Lambda deadline: the
/// job definition's own limits apply.
async fn job(config: Config, event: &Value, request_id: &str) -> ExitCode {
    let supervisor = Supervisor::connect(config).await;
    let attempt = scar_supervisor::JobAttempt::from_env(|k| std::env::var(k).ok());
    let handled = supervisor
        .handle(event, request_id, Duration::from_secs(365 * 24 * 3600))
        .await;
    // A supervisor error (no report) is said on stderr, as before; the record carries it.
    let (mut result, report) = match handled {
        Ok(r) => (r, true),
        Err(e) => {
            eprintln!("error: {e}");
            (
                serde_json::json!({"ok": false, "error": e.to_string()}),
                false,
            )
        }
    };
    let code = job_exit_status(&result);
    supervisor
        .settle_job(event, &mut result, &attempt, code)
        .await;
    if report {
        println!(
            "{}",
            serde_json::to_string_pretty(&result).unwrap_or_else(|_| result.to_string())
        );
    }
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// What a Batch job exits with: 0 when it worked, else the failing script's own exit status
/// (so a retry strategy's `onExitCode` rules see the script's), else 1 (an upload failed, the
/// script was killed, the supervisor could not run it).
fn job_exit_status(result: &Value) -> i32 {
    if succeeded(result) {
        return 0;
    }
    result
        .get("results")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|r| r.get("ok").and_then(Value::as_bool) == Some(false))
        .and_then(|r| r.get("exit_status"))
        .and_then(Value::as_i64)
        .and_then(|s| i32::try_from(s).ok())
        .filter(|s| (1..=255).contains(s))
        .unwrap_or(1)
}

/// Handles one event and prints the response.
async fn once(config: Config, event: &Value, request_id: &str, remaining: Duration) -> ExitCode {
    let supervisor = Supervisor::connect(config).await;
    match supervisor.handle(event, request_id, remaining).await {
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
}

/// The time left before `deadline` (Lambda's `Lambda-Runtime-Deadline-Ms`, milliseconds since
/// the epoch). A deadline that is not a time to come (an emulator's sends a duration) counts
/// as the function's `timeout`, when known.
fn remaining(deadline: u64, timeout: Duration) -> Duration {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let left = u128::from(deadline).saturating_sub(now);
    if left == 0 && !timeout.is_zero() {
        return timeout;
    }
    Duration::from_millis(u64::try_from(left).unwrap_or(u64::MAX))
}

/// The Lambda Runtime API loop: secrets are read at cold start, then each invocation is
/// handled with the time left before its deadline. A script that fails fails the invocation
/// (so Lambda's retries, metrics and destinations see it), except for HTTP requests, whose
/// response carries the failure.
async fn lambda_loop(config: Config) -> ExitCode {
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
    tracing::info!(
        function = config.function,
        version = scar_supervisor::VERSION,
        "scar-supervisor starting"
    );
    let timeout = Duration::from_secs(u64::from(config.timeout));
    let supervisor = std::sync::Arc::new(Supervisor::connect(config).await);
    if let Err(e) = supervisor.prepare().await {
        // Tried again at each invocation, which fails with this error until it works.
        tracing::error!("cold start: {e}");
    }
    let handler = lambda_runtime::service_fn(move |event: lambda_runtime::LambdaEvent<Value>| {
        let supervisor = supervisor.clone();
        async move {
            let remaining = remaining(event.context.deadline, timeout);
            supervisor.invoked_as(&event.context.invoked_function_arn);
            let failed = |error_type: &str, error_message: String| lambda_runtime::Diagnostic {
                error_type: error_type.to_owned(),
                error_message,
            };
            let result = supervisor
                .handle(&event.payload, &event.context.request_id, remaining)
                .await
                .map_err(|e| failed("ScarSupervisorError", e.to_string()))?;
            // An HTTP request's failure is in its response, and a queued input's in its
            // `batchItemFailures` (the messages that go back to the queue): both succeed.
            if result.get("statusCode").is_none()
                && result.get("batchItemFailures").is_none()
                && !succeeded(&result)
            {
                return Err(failed(
                    "ScarInvocationFailed",
                    format!("the invocation failed: {result}"),
                ));
            }
            Ok::<Value, lambda_runtime::Diagnostic>(result)
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
