//! `scar invoke` (one call, through the function's HTTP endpoint when it has one, else Lambda
//! Invoke) and `scar run` (one invocation per object already in the function's input). Both
//! take a script given at call time (SCAR's `run -s`) and arguments (SCAR's `run FN ARGS`),
//! which only a direct invocation carries.

use std::io::Write;
use std::path::{Path, PathBuf};

use futures::stream::{self, StreamExt};
use serde_json::{Value, json};

use super::exit::{Done, Failure, Outcome, success_if};
use super::output::Output;
use super::{AwsArgs, session};
use crate::aws::{AwsCloud, LocalCredentials};
use crate::manifest::types::InputSpec;
use crate::model::{Address, ResourceKind};

/// The arguments of `scar invoke`.
#[derive(Debug, clap::Args)]
pub struct InvokeArgs {
    /// The stack directory.
    pub dir: PathBuf,
    /// The function.
    pub function: String,
    /// A file to send as the input.
    #[arg(long, conflicts_with_all = ["json", "event", "input"])]
    pub data: Option<PathBuf>,
    /// An event to send as it is (JSON), such as '{"input": {"bucket": "b", "key": "k"}}'.
    #[arg(long, conflicts_with_all = ["event", "input"])]
    pub json: Option<String>,
    /// A file holding the event to send as it is (JSON).
    #[arg(long, value_name = "FILE", conflicts_with = "input")]
    pub event: Option<PathBuf>,
    /// Run here, inside the function's image, instead of in AWS (no Docker needed): the
    /// image is assembled and unpacked into a cache, and run in an unprivileged sandbox
    /// against a Lambda Runtime API on loopback. S3 and the other services are the stack's.
    #[arg(long, conflicts_with_all = ["asynchronous", "url"])]
    pub local: bool,
    /// With `--local`: start from this object as S3 would: a local file (uploaded to the
    /// function's first input first) or `s3://BUCKET/KEY` (already there).
    #[arg(long, value_name = "PATH", requires = "local")]
    pub input: Option<String>,
    /// With `--local`: the credentials the function gets. `auto`: its role's, when you may
    /// assume it (an hour, as Lambda gives them), else short-lived ones of yours (your
    /// session's, or an hour of `sts:GetSessionToken`); `session`: short-lived ones of yours;
    /// `long-term`: yours as they are, long-term keys included.
    #[arg(long, value_enum, default_value_t = LocalCredentials::Auto, requires = "local")]
    pub credentials: LocalCredentials,

    /// Do not wait for the result (Lambda's Event invocation; `X-Amz-Invocation-Type: Event`
    /// over HTTP).
    #[arg(long = "async")]
    pub asynchronous: bool,
    /// Run this script instead of the function's (SCAR's `run -s`); the call then goes
    /// to Lambda directly, not through an HTTP endpoint.
    #[arg(long, value_name = "FILE")]
    pub script: Option<PathBuf>,
    /// Send the HTTP request to this URL instead of the function's endpoint (a custom
    /// domain, a local emulator).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Write the answer's body (the bytes, for an HTTP function) to FILE instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Arguments for the script, or in place of the image's `Cmd` when the function has no
    /// script (after `--`); the call then goes to Lambda directly.
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<String>,
}

/// What a run here needs besides what to run (`scar run --local`, `scar retry --local`).
#[derive(Debug, clap::Args)]
pub struct HereArgs {
    /// With `--local`: how long a Batch job may run here, in seconds.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 3600,
        requires = "local"
    )]
    pub job_timeout: u64,
    /// With `--local`: the credentials the function gets. `auto`: its role's, when you may
    /// assume it (an hour, as Lambda gives them), else short-lived ones of yours (your
    /// session's, or an hour of `sts:GetSessionToken`); `session`: short-lived ones of yours;
    /// `long-term`: yours as they are, long-term keys included.
    #[arg(long, value_enum, default_value_t = LocalCredentials::Auto, requires = "local")]
    pub credentials: LocalCredentials,
}

/// The arguments of `scar run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The stack directory.
    pub dir: PathBuf,
    /// The function (with `--local`: the one the inputs go to; by default the one function
    /// whose input no other function's output feeds).
    pub function: Option<String>,
    /// Which of the function's inputs (0 is the first). With `--local`: the files (uploaded
    /// to the function's first input) or `s3://BUCKET/KEY` objects to start from.
    #[arg(long, num_args = 1.., value_name = "N | PATH...")]
    pub input: Vec<String>,
    /// Run the whole workflow here, inside each function's image, instead of in AWS: each
    /// invocation's uploads start the functions whose inputs they match, until nothing is
    /// left. S3 is the stack's.
    #[arg(long)]
    pub local: bool,
    #[command(flatten)]
    pub here: HereArgs,

    /// Invocations at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Print JSON instead of a summary.
    #[arg(long = "json")]
    pub as_json: bool,
    /// Run this script instead of the function's, for every object (SCAR's `run -s`).
    #[arg(long, value_name = "FILE")]
    pub script: Option<PathBuf>,
    /// Arguments for the script, or in place of the image's `Cmd` (after `--`).
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<String>,
}

/// What to send.
pub(super) enum Payload {
    /// A file's bytes: the input file.
    Data(Vec<u8>),
    /// An event, as given.
    Json(Value),
    /// Nothing: the script runs with no input.
    Empty,
}

/// What a call runs besides the function's own script: a script given at call time, and
/// arguments (for the script, or in place of the image's `Cmd`).
#[derive(Debug, Clone, Default)]
pub(super) struct CallTime {
    /// The script's text.
    pub script: Option<String>,
    /// Arguments.
    pub args: Vec<String>,
}

impl CallTime {
    /// Adds `script` and `args` to a direct invocation's event.
    pub(super) fn add_to(&self, mut event: Value) -> Value {
        if let Some(o) = event.as_object_mut() {
            if let Some(s) = &self.script {
                o.insert("script".into(), json!(s));
            }
            if !self.args.is_empty() {
                o.insert("args".into(), json!(self.args));
            }
        }
        event
    }

    pub(super) fn is_empty(&self) -> bool {
        self.script.is_none() && self.args.is_empty()
    }
}

impl Payload {
    /// The Lambda event: `{"data": base64}` for bytes (the supervisor's direct invocation),
    /// with the call-time script and arguments.
    pub(super) fn event(&self, call: &CallTime) -> Vec<u8> {
        use base64::Engine as _;
        let event = match self {
            Payload::Data(b) => {
                json!({"data": base64::engine::general_purpose::STANDARD.encode(b)})
            }
            Payload::Json(v) => v.clone(),
            Payload::Empty => json!({}),
        };
        call.add_to(event).to_string().into_bytes()
    }

    /// The HTTP request body.
    pub(super) fn body(&self) -> Vec<u8> {
        match self {
            Payload::Data(b) => b.clone(),
            Payload::Json(v) => v.to_string().into_bytes(),
            Payload::Empty => Vec::new(),
        }
    }
}

/// Where a function's HTTP endpoint answers. Against an emulator (`--endpoint-url` or
/// `AWS_ENDPOINT_URL`), APIs are served under `<endpoint>/restapis/<id>/<stage>/_user_request_`,
/// as moto and LocalStack do.
fn http_target(url: &str, endpoint: Option<&str>) -> String {
    match endpoint {
        Some(e) => {
            // https://<id>.execute-api.<region>.amazonaws.com/<stage>
            let rest = url.trim_start_matches("https://");
            let id = rest.split('.').next().unwrap_or_default();
            let stage = rest.split('/').nth(1).unwrap_or_default();
            format!(
                "{}/restapis/{id}/{stage}/_user_request_/",
                e.trim_end_matches('/')
            )
        }
        None => format!("{url}/"),
    }
}

async fn post(url: &str, body: Vec<u8>, asynchronous: bool) -> Result<(u16, Vec<u8>), String> {
    let mut headers = vec![("content-type", "application/octet-stream")];
    if asynchronous {
        headers.push(("X-Amz-Invocation-Type", "Event"));
    }
    // API Gateway answers at most 10 MB, a function URL 20 MB streamed.
    crate::net::post(url, &headers, body, 32 << 20).await
}

/// How `scar invoke` is asked to call.
pub(super) struct Invoke {
    /// What to send.
    pub payload: Payload,
    /// The call-time script and arguments.
    pub call: CallTime,
    /// Do not wait for the result.
    pub asynchronous: bool,
    /// Send the HTTP request here instead of the function's endpoint.
    pub url: Option<String>,
    /// Write the answer's body here instead of stdout.
    pub output: Option<std::path::PathBuf>,
}

/// Writes an answer's bytes to `-o FILE`, or stdout.
fn write_answer(output: Option<&Path>, bytes: &[u8]) -> std::io::Result<()> {
    match output {
        Some(p) => std::fs::write(p, bytes)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", p.display()))),
        None => std::io::stdout().lock().write_all(bytes),
    }
}

/// `scar invoke DIR FUNCTION [--data FILE | --json JSON] [--script FILE] [--async] [--url URL]
/// [-o FILE] [-- ARGS]`: reads the payload and the call-time script, then calls AWS. (With
/// `--local`, `cli::main` hands [`request`]'s answer to `cmd_local` instead.)
pub(super) fn invoke(args: &InvokeArgs, aws: &AwsArgs, out: &Output) -> Outcome {
    let how = request(args)?;
    invoke_with(&args.dir, &args.function, &how, aws, out)
}

/// What `scar invoke` is asked to send: the payload read, the call-time script read.
pub(super) fn request(args: &InvokeArgs) -> Result<Invoke, Failure> {
    let payload = match (&args.data, &args.json, &args.event) {
        (Some(p), _, _) => Payload::Data(
            std::fs::read(p).map_err(|e| Failure::Message(format!("{}: {e}", p.display())))?,
        ),
        (None, Some(j), _) => Payload::Json(
            serde_json::from_str(j)
                .map_err(|e| Failure::Message(format!("--json is not JSON: {e}")))?,
        ),
        (None, None, Some(p)) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| Failure::Message(format!("{}: {e}", p.display())))?;
            Payload::Json(
                serde_json::from_str(&text)
                    .map_err(|e| Failure::Message(format!("{}: not JSON: {e}", p.display())))?,
            )
        }
        (None, None, None) => Payload::Empty,
    };
    Ok(Invoke {
        payload,
        call: call_time(args.script.as_deref(), &args.args)?,
        asynchronous: args.asynchronous,
        url: args.url.clone(),
        output: args.output.clone(),
    })
}

/// A call-time script (read from `script`) and arguments.
pub(super) fn call_time(script: Option<&Path>, args: &[String]) -> Result<CallTime, Failure> {
    let script = match script {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .map_err(|e| Failure::Message(format!("{}: {e}", p.display())))?,
        ),
        None => None,
    };
    Ok(CallTime {
        script,
        args: args.to_vec(),
    })
}

fn invoke_with(dir: &Path, name: &str, how: &Invoke, aws: &AwsArgs, out: &Output) -> Outcome {
    let (_, desired, f) = super::cmd_ops::load_function(dir, name, out)?;
    let endpoint = aws
        .settings()
        .endpoint
        .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok());
    let rt = session::runtime()?;
    rt.block_on(async {
        let cloud = session::connect(aws, &desired).await;
        // A script or arguments travel only in a direct invocation's event.
        // An endpoint that only signed or keyed callers may use is invoked through Lambda,
        // with the CLI's own credentials (unless `--url` says where to send the request).
        let auth = f
            .spec
            .http
            .as_ref()
            .map(|h| crate::model::http::auth_name(h.auth))
            .unwrap_or("none");
        let open = auth == "none" || how.url.is_some();
        let over_http =
            (f.spec.http.is_some() || how.url.is_some()) && how.call.is_empty() && open;
        if f.spec.http.is_some() && !over_http {
            if open {
                eprintln!("a call-time script or arguments: invoking {name} directly, not through its HTTP endpoint");
            } else {
                eprintln!("the HTTP endpoint of {name} takes `{auth}` callers: invoking {name} directly through Lambda with your credentials");
            }
        }
        if over_http {
            let target = match &how.url {
                Some(u) => u.clone(),
                None => {
                    let url = match cloud.http_urls(&desired).await {
                        Ok(mut u) => u.remove(&Address::new(ResourceKind::HttpApi, name)),
                        Err(e) => {
                            return Err(session::cloud_failed(
                                out,
                                "reading the HTTP endpoint failed",
                                &e,
                            ));
                        }
                    };
                    let Some(url) = url else {
                        out.error(&format!(
                            "function `{name}` has no HTTP endpoint yet: run `scar apply` first"
                        ));
                        return Err(Failure::Reported);
                    };
                    http_target(&url, endpoint.as_deref())
                }
            };
            eprintln!("POST {target}");
            return match post(&target, how.payload.body(), how.asynchronous).await {
                Ok((status, body)) => {
                    eprintln!("HTTP {status}");
                    write_answer(how.output.as_deref(), &body)?;
                    success_if((200..300).contains(&status))
                }
                Err(e) => {
                    out.error(&e);
                    Err(Failure::Reported)
                }
            };
        }
        let event = how.payload.event(&how.call);
        lambda_invoke(&cloud, name, &event, how, out).await
    })
}

/// Prints a function's answer as `scar invoke` does: an HTTP function's body as bytes (its
/// status on stderr), else the JSON pretty-printed; to `output` or stdout. A failure when the
/// function failed (`function_error`, Lambda's `X-Amz-Function-Error`), answered an HTTP
/// error, or reported `"ok": false`.
pub(super) fn print_answer(
    payload: &[u8],
    function_error: Option<&str>,
    output: Option<&Path>,
) -> Outcome {
    let answer: Option<Value> = serde_json::from_slice(payload).ok();
    // An HTTP function's answer: its body, as bytes.
    if let Some((status, bytes)) = answer.as_ref().and_then(proxy_body) {
        eprintln!("HTTP {status}");
        write_answer(output, &bytes)?;
        return success_if(status < 400 && function_error.is_none());
    }
    let mut text = answer
        .as_ref()
        .and_then(|v| serde_json::to_string_pretty(v).ok())
        .unwrap_or_else(|| String::from_utf8_lossy(payload).into_owned());
    text.push('\n');
    write_answer(output, text.as_bytes())?;
    let failed = answer
        .as_ref()
        .and_then(|v| v.get("ok"))
        .and_then(Value::as_bool)
        == Some(false);
    match function_error {
        Some(kind) => Err(Failure::Message(format!("the function failed ({kind})"))),
        None => success_if(!failed),
    }
}

/// The bytes an HTTP proxy answer carries (`statusCode`, `body`, `isBase64Encoded`), decoded.
fn proxy_body(answer: &Value) -> Option<(u64, Vec<u8>)> {
    use base64::Engine as _;
    let status = answer.get("statusCode")?.as_u64()?;
    let body = answer
        .get("body")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let bytes = if answer.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) {
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .ok()?
    } else {
        body.as_bytes().to_vec()
    };
    Some((status, bytes))
}

async fn lambda_invoke(
    cloud: &AwsCloud,
    name: &str,
    event: &[u8],
    how: &Invoke,
    out: &Output,
) -> Outcome {
    match cloud.invoke(name, event, how.asynchronous).await {
        Ok(r) if how.asynchronous => {
            println!(
                "accepted: {name} runs asynchronously (HTTP {}); `scar logs` shows how it went",
                r.status
            );
            Ok(Done::Success)
        }
        Ok(r) => print_answer(
            &r.payload,
            r.function_error.as_deref(),
            how.output.as_deref(),
        ),
        Err(e) => Err(session::cloud_failed(out, "invoking failed", &e)),
    }
}

/// `scar run DIR FUNCTION [--input N] [--concurrency N] [--json]`: one invocation per object
/// already under the function's input, `concurrency` at once, then a summary. (With `--local`,
/// `cli::main` runs the workflow through `cmd_local` instead.)
pub(super) fn run(args: &RunArgs, aws: &AwsArgs, out: &Output) -> Outcome {
    let call = call_time(args.script.as_deref(), &args.args)?;
    let Some(name) = args.function.as_deref() else {
        return Err(Failure::Message(
            "name the function to run (or run the whole workflow here with --local)".into(),
        ));
    };
    let input = match args.input.as_slice() {
        [] => 0,
        [one] => one.parse::<usize>().map_err(|_| {
            Failure::Message(format!(
                "--input takes the index of one of the function's inputs (0 is the first), not `{one}`; files to start from are for --local"
            ))
        })?,
        _ => {
            return Err(Failure::Message(
                "--input takes one index without --local".into(),
            ));
        }
    };
    let dir = args.dir.as_path();
    let (concurrency, as_json, call) = (args.concurrency, args.as_json, &call);
    let (_, desired, f) = super::cmd_ops::load_function(dir, name, out)?;
    let Some(source) = f.spec.input.get(input).and_then(InputSpec::s3).cloned() else {
        out.error(&format!("function `{name}` has no S3 input {input}"));
        return Err(Failure::Reported);
    };
    let rt = session::runtime()?;
    rt.block_on(async {
        let cloud = session::connect(aws, &desired).await;
        let prefix = source.prefix.clone().unwrap_or_default();
        let suffix = source.suffix.clone().unwrap_or_default();
        let keys: Vec<String> = match cloud.list_keys(&source.bucket, &prefix).await {
            Ok(k) => k
                .into_iter()
                .map(|(k, _)| k)
                .filter(|k| !k.ends_with('/') && k.ends_with(suffix.as_str()))
                .collect(),
            Err(e) => return Err(session::cloud_failed(out, "listing the input failed", &e)),
        };
        let total = keys.len();
        eprintln!("running {name} on {total} objects of s3://{}/{prefix}, {concurrency} at once", source.bucket);
        let done = std::sync::atomic::AtomicUsize::new(0);
        let results: Vec<(String, Result<(), String>)> = stream::iter(keys)
            .map(|key| {
                let (cloud, done, bucket) = (&cloud, &done, &source.bucket);
                async move {
                    let event = call.add_to(json!({"input": {"bucket": bucket, "key": key}})).to_string();
                    let r = match cloud.invoke(name, event.as_bytes(), false).await {
                        Ok(r) if r.function_error.is_none() => Ok(()),
                        Ok(r) => Err(String::from_utf8_lossy(&r.payload).chars().take(300).collect()),
                        Err(e) => Err(e.to_string()),
                    };
                    let n = done.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                    let verdict = if r.is_ok() { "ok    " } else { "failed" };
                    super::cmd_ops::progress(n, total, &format!("{verdict} s3://{bucket}/{key}"));
                    (key, r)
                }
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        let failed: Vec<&(String, Result<(), String>)> = results.iter().filter(|(_, r)| r.is_err()).collect();
        if as_json {
            println!(
                "{}",
                json!({
                    "succeeded": total - failed.len(),
                    "failed": failed.iter().map(|(k, r)| json!({"key": k, "error": r.as_ref().err()})).collect::<Vec<_>>(),
                })
            );
        } else {
            println!("{} succeeded, {} failed", total - failed.len(), failed.len());
            for (k, r) in &failed {
                if let Err(e) = r {
                    println!("  failed: {k}: {e}");
                }
            }
        }
        success_if(failed.is_empty())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emulator_serves_apis_under_its_endpoint() {
        let url = "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/scar";
        assert_eq!(http_target(url, None), format!("{url}/"));
        assert_eq!(
            http_target(url, Some("http://127.0.0.1:5000/")),
            "http://127.0.0.1:5000/restapis/a1b2c3d4e5/scar/_user_request_/"
        );
    }
}
