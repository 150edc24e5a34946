//! `scar invoke DIR FN --local` and `scar run DIR --local`: functions run here, inside their
//! images, in an unprivileged sandbox (see `crate::local`), against the stack's S3 and other
//! services with the stack's credentials.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::cmd_invoke::{CallTime, Invoke, InvokeArgs, Payload, RunArgs, print_answer};
use super::exit::{Failure, Outcome, success_if};
use super::output::Output;
use super::{AwsArgs, session};
use crate::aws::LocalCredentials;
use crate::local::LocalError;
use crate::local::run::Ended;
use crate::local::runner::RunResult;
use crate::local::session::Session;
use crate::local::stack::Function;
use crate::local::workflow::{self, Start, Step};
use crate::manifest::check::fires;
use crate::manifest::load::ManifestSet;
use crate::model::DesiredGraph;

/// The session of a local run on `cloud` (the stack's region's), its lines on stderr.
async fn open(
    set: &ManifestSet,
    desired: &DesiredGraph,
    cloud: std::sync::Arc<crate::aws::AwsCloud>,
    job_timeout: Duration,
    credentials: LocalCredentials,
) -> Result<Session, LocalError> {
    let say = |line: &str| eprintln!("{line}");
    Session::new(set, desired, cloud, job_timeout, credentials, &say).await
}

/// Every invocation S3 would make in `local` for an object created at `bucket`/`key`, with
/// the call-time script and arguments.
fn starts_for(local: &Session, bucket: &str, key: &str, call: &CallTime) -> Vec<Start> {
    local
        .functions
        .iter()
        .enumerate()
        .filter(|(_, f)| f.inputs.iter().any(|i| fires(i, bucket, key)))
        .map(|(g, _)| Start {
            function: g,
            input: format!("s3://{bucket}/{key}"),
            event: call
                .add_to(workflow::s3_event(&local.host.region, bucket, key))
                .to_string()
                .into_bytes(),
        })
        .collect()
}

/// The event of a local `scar invoke`: an S3 record for `--input`, an API Gateway request for
/// an HTTP function called with no call-time script or arguments, else the direct event.
fn event_for(f: &Function, how: &Invoke, object: Option<(&str, &str)>, region: &str) -> Vec<u8> {
    use base64::Engine as _;
    if let Some((bucket, key)) = object {
        let event = workflow::s3_event(region, bucket, key);
        return how.call.add_to(event).to_string().into_bytes();
    }
    if f.http && how.call.is_empty() && !matches!(how.payload, Payload::Json(_)) {
        let body = base64::engine::general_purpose::STANDARD.encode(how.payload.body());
        return json!({
            "resource": "/{proxy+}",
            "path": "/",
            "httpMethod": "POST",
            "headers": {"content-type": "application/octet-stream"},
            "requestContext": {"httpMethod": "POST", "path": "/", "stage": "local"},
            "body": body,
            "isBase64Encoded": true,
        })
        .to_string()
        .into_bytes();
    }
    how.payload.event(&how.call)
}

/// Prints what the function's processes wrote (Lambda sends it to the function's log) and a
/// report line, on stderr.
fn print_log(r: &RunResult, memory: u32) {
    use std::io::Write as _;
    let mut err = std::io::stderr().lock();
    for ran in [&r.lambda, &r.job].into_iter().flatten() {
        let _ = err.write_all(&ran.stdout);
        let _ = err.write_all(&ran.stderr);
    }
    let _ = writeln!(
        err,
        "REPORT RequestId: {}  Duration: {:.2} ms  Memory Size: {memory} MB (not enforced here)",
        r.lambda
            .as_ref()
            .or(r.job.as_ref())
            .map_or("", |x| x.request_id.as_str()),
        r.took().as_secs_f64() * 1000.0
    );
}

/// `scar invoke DIR FN --local`.
pub(super) fn invoke(args: &InvokeArgs, how: &Invoke, aws: &AwsArgs, out: &Output) -> Outcome {
    let (set, desired, _) = super::cmd_ops::load_function(&args.dir, &args.function, out)?;
    let rt = session::runtime()?;
    rt.block_on(async {
        let fail = |e: String| {
            out.error(&e);
            Failure::Reported
        };
        let local = open(
            &set,
            &desired,
            session::connect(aws, &desired).await,
            Duration::from_secs(3600),
            args.credentials,
        )
            .await
            .map_err(|e| fail(e.to_string()))?;
        let i = local
            .index(&args.function)
            .ok_or_else(|| fail(format!("no function `{}`", args.function)))?;
        let object = match &args.input {
            Some(input) => {
                let mut objects = local.objects(input, i).await.map_err(|e| fail(e.to_string()))?;
                if objects.len() != 1 {
                    return Err(fail(format!(
                        "--input {input} holds {} files; `scar invoke` runs one (`scar run --local` runs many)",
                        objects.len()
                    )));
                }
                objects.pop()
            }
            None => None,
        };
        let f = &local.functions[i];
        let event = event_for(
            f,
            how,
            object.as_ref().map(|(b, k)| (b.as_str(), k.as_str())),
            &local.host.region,
        );
        let r = local.run(i, event).await.map_err(|e| fail(e.to_string()))?;
        print_log(&r, f.memory);
        answer(&r, how.output.as_deref(), out)
    })
}

/// Prints the answer of a local run as a remote `scar invoke` prints Lambda's.
fn answer(r: &RunResult, output: Option<&Path>, out: &Output) -> Outcome {
    let answered = r
        .job
        .as_ref()
        .or(r.lambda.as_ref())
        .and_then(|ran| match &ran.ended {
            Ended::Answered(crate::local::runtime_api::Outcome::Response(body)) => {
                Some(body.clone())
            }
            _ => None,
        });
    let payload = match (answered, &r.report) {
        (Some(body), _) if r.job.is_none() => body,
        (_, Some(report)) => serde_json::to_vec(report).unwrap_or_default(),
        (_, None) => Vec::new(),
    };
    let printed = if payload.is_empty() {
        success_if(true)
    } else {
        print_answer(&payload, None, output)
    };
    match &r.failure {
        None => printed,
        Some(why) => {
            out.error(&format!("the function failed: {why}"));
            Err(Failure::Reported)
        }
    }
}

/// `scar run DIR [FN] --local --input PATH...`.
pub(super) fn run(args: &RunArgs, call: &CallTime, aws: &AwsArgs, out: &Output) -> Outcome {
    let (set, desired) = session::load_set(&args.dir, out)?;
    if args.input.is_empty() {
        return Err(Failure::Message(
            "give the files (or s3://BUCKET/KEY objects) to start from: --input PATH...".into(),
        ));
    }
    let rt = session::runtime()?;
    rt.block_on(async {
        let fail = |e: String| {
            out.error(&e);
            Failure::Reported
        };
        let local = open(
            &set,
            &desired,
            session::connect(aws, &desired).await,
            Duration::from_secs(args.here.job_timeout),
            args.here.credentials,
        )
        .await
        .map_err(|e| fail(e.to_string()))?;
        let into = local
            .entry(&set, args.function.as_deref())
            .map_err(|e| fail(e.to_string()))?;
        let mut starts = Vec::new();
        for input in &args.input {
            for (b, k) in local
                .objects(input, into)
                .await
                .map_err(|e| fail(e.to_string()))?
            {
                let s = starts_for(&local, &b, &k, call);
                if s.is_empty() {
                    return Err(fail(format!(
                        "s3://{b}/{k} starts no function of the stack"
                    )));
                }
                starts.extend(s);
            }
        }
        let began = Instant::now();
        let names: Vec<&str> = local.functions.iter().map(|f| f.name.as_str()).collect();
        let seen = |s: &Step| {
            let verdict = if s.ok() { "ok    " } else { "failed" };
            let took = s.result.as_ref().map_or(0.0, |r| r.took().as_secs_f64());
            let from = s
                .parent
                .map(|p| format!("  (from #{p})"))
                .unwrap_or_default();
            let tries = match s.result.as_ref().map_or(1, |r| r.attempts) {
                n if n > 1 => format!("  ({n} attempts)"),
                _ => String::new(),
            };
            eprintln!(
                "#{} {verdict} {} <- {}  {took:.2} s{tries}{from}",
                s.id, names[s.function], s.input
            );
        };
        let steps = local.run_workflow(starts, args.concurrency, &seen).await;
        report(&steps, &names, began.elapsed(), args.as_json);
        success_if(steps.iter().all(Step::ok))
    })
}

/// How `scar retry --local` runs inputs here.
pub(super) struct Here {
    /// How long a Batch job may run, in seconds.
    pub job_timeout: u64,
    /// The credentials functions get.
    pub credentials: LocalCredentials,
    /// Inputs at once.
    pub concurrency: usize,
}

/// `scar retry --local`: `chosen`'s events run here as `scar run --local` runs an upload's,
/// with what their outputs start; then each record is settled by how its input went.
pub(super) async fn retry(
    args: Here,
    set: &ManifestSet,
    desired: &DesiredGraph,
    cloud: std::sync::Arc<crate::aws::AwsCloud>,
    chosen: Vec<crate::failures::Failure>,
    out: &Output,
) -> Outcome {
    use crate::failures::replay::Settled;
    use crate::failures::store;
    let fail = |e: String| {
        out.error(&e);
        Failure::Reported
    };
    let local = open(
        set,
        desired,
        cloud.clone(),
        Duration::from_secs(args.job_timeout),
        args.credentials,
    )
    .await
    .map_err(|e| fail(e.to_string()))?;
    // Root steps get the ids 1..=n in the order of their starts (`workflow::run_all`).
    let mut starts = Vec::new();
    let mut marked = Vec::new();
    for f in chosen {
        let Some(i) = local.index(&f.function) else {
            out.warn(&format!(
                "{}: the stack has no function `{}` now",
                f.record, f.function
            ));
            continue;
        };
        store::mark(&cloud, &f)
            .await
            .map_err(|e| fail(e.to_string()))?;
        starts.push(Start {
            function: i,
            input: f.input.clone().unwrap_or_else(|| f.record.clone()),
            event: f.event.to_string().into_bytes(),
        });
        marked.push(f);
    }
    let began = Instant::now();
    let names: Vec<&str> = local.functions.iter().map(|f| f.name.as_str()).collect();
    let seen = |_: &Step| {};
    let steps = local.run_workflow(starts, args.concurrency, &seen).await;
    let mut settled = Vec::new();
    for (n, f) in marked.iter().enumerate() {
        let step = steps.iter().find(|s| s.id == n + 1);
        let s = match step.map(|s| &s.result) {
            Some(Ok(r)) if r.failure.is_none() => Settled::Succeeded {
                attempts: r.attempts,
            },
            Some(Ok(r)) => match &r.recorded {
                Some(Ok(record)) => Settled::FailedAgain {
                    attempts: r.attempts,
                    record: record.clone(),
                },
                Some(Err(why)) => Settled::NotRun(format!("it failed again, and {why}")),
                None => Settled::NotRun(format!(
                    "it failed again ({}), and its function records failures nowhere now: its record stands",
                    r.failure.clone().unwrap_or_default()
                )),
            },
            Some(Err(e)) => Settled::NotRun(e.to_string()),
            None => Settled::NotRun("not run".into()),
        };
        let done = match &s {
            Settled::Succeeded { .. } | Settled::FailedAgain { .. } => {
                store::settle(&cloud, f).await
            }
            Settled::NotRun(_) => store::unmark(&cloud, f).await,
        };
        let s = match done {
            Ok(()) => s,
            Err(e) => Settled::NotRun(format!("settling its record: {e}")),
        };
        say(f, &s);
        settled.push(s);
    }
    report(&steps, &names, began.elapsed(), false);
    success_if(summary(settled.iter()))
}

/// Why a step failed, and the last lines of its standard error.
fn why(s: &Step) -> (String, Vec<String>) {
    match &s.result {
        Ok(r) => (r.failure.clone().unwrap_or_default(), r.stderr_tail(10)),
        Err(e) => (e.to_string(), Vec::new()),
    }
}

/// The run's tree of invocations and a summary (or JSON), on stdout.
fn report(steps: &[Step], names: &[&str], took: Duration, as_json: bool) {
    let failed: Vec<&Step> = steps.iter().filter(|s| !s.ok()).collect();
    if as_json {
        let mut ordered: Vec<&Step> = steps.iter().collect();
        ordered.sort_by_key(|s| s.id);
        let rows: Vec<Value> = ordered
            .iter()
            .map(|s| {
                let (error, stderr) = why(s);
                json!({
                    "id": s.id,
                    "parent": s.parent,
                    "function": names[s.function],
                    "input": s.input,
                    "ok": s.ok(),
                    "seconds": s.result.as_ref().map_or(0.0, |r| r.took().as_secs_f64()),
                    "uploaded": s.result.as_ref().map(|r| r.uploaded.as_slice()).unwrap_or_default(),
                    "attempts": s.result.as_ref().map_or(0, |r| r.attempts),
                    "record": s.result.as_ref().ok().and_then(|r| r.recorded.clone()?.ok()),
                    "error": (!s.ok()).then_some(error),
                    "stderr_tail": (!s.ok()).then_some(stderr),
                })
            })
            .collect();
        println!(
            "{}",
            json!({"invocations": rows, "succeeded": steps.len() - failed.len(), "failed": failed.len(), "seconds": took.as_secs_f64()})
        );
        return;
    }
    fn tree(steps: &[Step], names: &[&str], parent: Option<usize>, indent: &str) {
        let mut children: Vec<&Step> = steps.iter().filter(|s| s.parent == parent).collect();
        children.sort_by_key(|s| s.id);
        for (n, s) in children.iter().enumerate() {
            let last = n + 1 == children.len();
            let (branch, more) = match (parent, last) {
                (None, _) => ("", ""),
                (Some(_), true) => ("└─ ", "   "),
                (Some(_), false) => ("├─ ", "│  "),
            };
            let took = s.result.as_ref().map_or(0.0, |r| r.took().as_secs_f64());
            println!(
                "{indent}{branch}#{} {} <- {}  {}  {took:.2} s",
                s.id,
                names[s.function],
                s.input,
                if s.ok() { "ok" } else { "FAILED" }
            );
            tree(steps, names, Some(s.id), &format!("{indent}{more}"));
        }
    }
    tree(steps, names, None, "");
    println!(
        "{} invocations: {} succeeded, {} failed, in {:.1} s",
        steps.len(),
        steps.len() - failed.len(),
        failed.len(),
        took.as_secs_f64()
    );
    for s in failed {
        let (error, stderr) = why(s);
        let record = match s.result.as_ref().ok().and_then(|r| r.recorded.as_ref()) {
            Some(Ok(r)) => format!(" (recorded: {r})"),
            Some(Err(why)) => format!(" ({why})"),
            None => String::new(),
        };
        println!(
            "failed: #{} {} on {}: {error}{record}",
            s.id, names[s.function], s.input
        );
        for l in stderr {
            println!("  | {l}");
        }
    }
}

/// One input's end, on stderr.
pub(super) fn say(f: &crate::failures::Failure, s: &crate::failures::replay::Settled) {
    let input = f.input.as_deref().unwrap_or("-");
    match s {
        crate::failures::replay::Settled::Succeeded { attempts } => {
            eprintln!("ok      {} <- {input}  ({attempts} attempt(s))", f.function);
        }
        crate::failures::replay::Settled::FailedAgain { attempts, record } => eprintln!(
            "failed  {} <- {input}  ({attempts} attempt(s)); recorded again: {record}",
            f.function
        ),
        crate::failures::replay::Settled::NotRun(why) => {
            eprintln!("not run {} <- {input}: {why}", f.function)
        }
    }
}

/// The count of each end, on stdout; true when every input succeeded.
pub(super) fn summary<'a>(
    settled: impl Iterator<Item = &'a crate::failures::replay::Settled>,
) -> bool {
    let (mut ok, mut again, mut not_run) = (0, 0, 0);
    for s in settled {
        match s {
            crate::failures::replay::Settled::Succeeded { .. } => ok += 1,
            crate::failures::replay::Settled::FailedAgain { .. } => again += 1,
            crate::failures::replay::Settled::NotRun(_) => not_run += 1,
        }
    }
    println!(
        "{} input(s) retried: {ok} succeeded, {again} failed again (listed by `scar failures`), {not_run} not run",
        ok + again + not_run
    );
    again == 0 && not_run == 0
}
