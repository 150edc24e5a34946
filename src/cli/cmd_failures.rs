//! `scar failures DIR [FUNCTION] [--since DURATION] [--json]`: the inputs whose invocations
//! Lambda gave up on, read from where the stack's failure policies send their records
//! (docs/commands/failures.md).

use std::path::PathBuf;

use serde_json::json;

use super::AwsArgs;
use super::exit::{Done, Failure, Outcome};
use super::output::Output;
use super::session;
use crate::aws::AwsCloud;
use crate::failures::store::{self, Source};
use crate::failures::{jobs, queue};
use crate::manifest::load::ManifestSet;
use crate::manifest::resolve::{self, Destination};
use crate::model::failures::policy;
use crate::model::queues;

/// `scar failures`.
#[derive(Debug, clap::Args)]
pub struct FailuresArgs {
    /// The stack directory
    pub dir: PathBuf,
    /// Only this function's failed inputs
    pub function: Option<String>,
    /// Only inputs Lambda gave up on within this long: 30m, 12h, 7d
    #[arg(long)]
    pub since: Option<String>,
    /// One JSON document: the stack and its failed inputs
    #[arg(long)]
    pub json: bool,
}

/// `7d`, or what [`crate::watch::parse_duration`] takes; in seconds.
fn since_seconds(s: &str) -> Result<u64, String> {
    match s.strip_suffix('d').map(str::parse::<u64>) {
        Some(Ok(days)) => days
            .checked_mul(86_400)
            .ok_or_else(|| format!("`{s}` is too long a duration")),
        _ => crate::watch::parse_duration(s)
            .map(|d| d.as_secs())
            .map_err(|e| format!("--since: {e}, or days such as 7d")),
    }
}

/// Where the stack's failed inputs are: the failure records of its functions invoked
/// asynchronously, and the dead-letter queues of its queued inputs.
#[derive(Debug, Default)]
pub(super) struct Sources {
    pub records: Vec<Source>,
    pub dead_letters: Vec<queue::Source>,
    pub jobs: Vec<jobs::Source>,
}

/// Where the failed inputs of the stack's functions (of `function` only, when named) are; a
/// function whose records go nowhere scar can read is said on `out`.
///
/// # Errors
/// When the manifests hold no Stack, or no function `function`.
pub(super) fn sources(
    set: &ManifestSet,
    function: Option<&str>,
    out: &Output,
) -> Result<Sources, Failure> {
    let Some(stack) = set.stack().map(|s| &s.value) else {
        return Err(Failure::Reported);
    };
    if let Some(name) = function
        && !set.functions.iter().any(|f| f.value.metadata.name == name)
    {
        out.error(&format!("the stack has no function `{name}`"));
        return Err(Failure::Reported);
    }
    let mut sources = Sources::default();
    for f in &set.functions {
        let name = &f.value.metadata.name;
        if function.is_some_and(|n| n != name) {
            continue;
        }
        let eff = resolve::effective(Some(&stack.spec), &f.value.spec);
        for (_, q, queue) in queues::queued(&stack.metadata.name, name, &f.value.spec.input) {
            sources.dead_letters.push(queue::Source {
                function: name.clone(),
                dead_letter: queues::dead_letter_name(&queue),
                max_receives: queues::settings(q, eff.timeout).max_receives,
            });
        }
        match policy(&stack.metadata.name, &stack.spec, &f.value.spec, &eff) {
            Some(p) => match (&p.bucket, &p.on_failure.destination) {
                (Some(bucket), _) => {
                    if eff.execution != crate::manifest::types::Execution::Lambda {
                        sources.jobs.push(jobs::Source {
                            function: name.clone(),
                            job_queue: crate::manifest::names::derive(&stack.metadata.name, name)
                                .batch,
                            bucket: bucket.clone(),
                        });
                    }
                    sources.records.push(Source {
                        function: name.clone(),
                        bucket: bucket.clone(),
                    });
                }
                (None, Destination::Queue(q)) => out.warn(&format!(
                    "function `{name}` sends its failed inputs to the queue {q}: read them there (scar does not take messages off a queue it does not own)"
                )),
                (None, _) => out.warn(&format!(
                    "function `{name}` keeps no record of failed inputs (`onFailure.destination: none`)"
                )),
            },
            None if function.is_some() && !f.value.spec.has_queued_input() => out.warn(&format!(
                "function `{name}` has no S3 input: only those are invoked asynchronously, so Lambda keeps no record of its failures (its callers get them)"
            )),
            None => {}
        }
    }
    Ok(sources)
}

/// `--since` as the RFC 3339 time it names.
pub(super) fn cutoff(since: Option<&str>, out: &Output) -> Result<Option<String>, Failure> {
    let Some(s) = since else {
        return Ok(None);
    };
    let secs = since_seconds(s).map_err(|e| {
        out.error(&e);
        Failure::Reported
    })?;
    Ok(Some(crate::lock::rfc3339(
        store::now().saturating_sub(secs),
    )))
}

/// The failed inputs `sources` hold, oldest first: the dead-lettered ones hidden from other
/// receivers for `hide` seconds (give them back, or move them).
///
/// # Errors
/// When S3 or SQS fails (said on `out`).
pub(super) async fn list(
    cloud: &AwsCloud,
    sources: &Sources,
    cutoff: Option<&str>,
    hide: i32,
    out: &Output,
) -> Result<Vec<crate::failures::Failure>, Failure> {
    let warn = |w: &str| out.warn(w);
    let mut found = store::list(cloud, &sources.records, cutoff, &warn)
        .await
        .map_err(|e| session::cloud_failed(out, "listing the failure records failed", &e))?;
    let recorded: std::collections::BTreeSet<String> =
        found.iter().map(|f| f.record.clone()).collect();
    found.extend(
        jobs::list(cloud, &sources.jobs, cutoff, &recorded)
            .await
            .map_err(|e| session::cloud_failed(out, "reading Batch's failed jobs failed", &e))?,
    );
    found.extend(
        queue::list(cloud, &sources.dead_letters, cutoff, hide)
            .await
            .map_err(|e| session::cloud_failed(out, "reading the dead-letter queues failed", &e))?,
    );
    found.sort_by(|a, b| a.time.cmp(&b.time));
    Ok(found)
}

/// `scar failures`.
pub(super) fn run(args: &FailuresArgs, aws: &AwsArgs, out: &Output) -> Outcome {
    let (set, desired) = session::load_set(&args.dir, out)?;
    let sources = sources(&set, args.function.as_deref(), out)?;
    let cutoff = cutoff(args.since.as_deref(), out)?;
    let rt = session::runtime()?;
    let found = rt.block_on(async {
        let cloud = session::connect(aws, &desired).await;
        // Each dead-lettered input is hidden for as long as the listing takes, then shown.
        let found = list(&cloud, &sources, cutoff.as_deref(), 60, out).await?;
        queue::give_back(&cloud, &found).await.map_err(|e| {
            session::cloud_failed(
                out,
                "giving back the dead-letter queues' messages failed",
                &e,
            )
        })?;
        Ok::<_, Failure>(found)
    })?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"stack": desired.stack, "failures": found}))
                .map_err(std::io::Error::other)?
        );
        return Ok(Done::Success);
    }
    if found.is_empty() {
        println!("no failed inputs");
        return Ok(Done::Success);
    }
    let header = ["FUNCTION", "TIME", "ATTEMPTS", "INPUT", "REASON"];
    let rows: Vec<Vec<String>> = found
        .iter()
        .map(|f| {
            vec![
                f.function.clone(),
                f.time.clone(),
                f.attempts.to_string(),
                f.input.clone().unwrap_or_else(|| "-".into()),
                match &f.retrying {
                    Some(since) => format!(
                        "{}: {} [retry under way since {since}]",
                        f.condition, f.reason
                    ),
                    None => format!("{}: {}", f.condition, f.reason),
                },
            ]
        })
        .collect();
    super::output::print_table(&header, &rows);
    println!(
        "\n{} failed input(s); each record's request id finds its log lines (`scar logs`); `scar retry` runs them again",
        found.len()
    );
    Ok(Done::Success)
}
