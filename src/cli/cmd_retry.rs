//! `scar retry DIR [FUNCTION] [--input KEY]... [--all] [--dry-run] [--local]`: the inputs
//! `scar failures` lists, run again with their original events; each record is marked while
//! its retry runs, deleted when the input succeeds and replaced when it fails again
//! (docs/commands/retry.md).

use std::path::PathBuf;

use super::cmd_failures::{cutoff, list, sources};
use super::exit::{Done, Failure, Outcome, success_if};
use super::output::Output;
use super::{AwsArgs, session};
use crate::aws::AwsCloud;
use crate::failures::replay::{self, Retry, Settled};
use crate::failures::{self as records, LastAttempt};
use crate::failures::{queue, store};
use crate::manifest::load::ManifestSet;
use crate::manifest::resolve;

/// A mark younger than this is a retry under way (the longest a Lambda invocation runs is 15
/// minutes): its input is left alone. An older one is a retry that died, and is retried.
const UNDER_WAY_SECS: u64 = 15 * 60;

/// `scar retry`.
#[derive(Debug, clap::Args)]
pub struct RetryArgs {
    /// The stack directory
    pub dir: PathBuf,
    /// Only this function's failed inputs (or give --all)
    pub function: Option<String>,
    /// Only this input: its key as uploaded (`in/a b.txt`), or `s3://BUCKET/KEY`; repeatable
    #[arg(long, value_name = "KEY")]
    pub input: Vec<String>,
    /// Every function's failed inputs
    #[arg(long, conflicts_with = "function")]
    pub all: bool,
    /// Only inputs Lambda gave up on within this long: 30m, 12h, 7d
    #[arg(long)]
    pub since: Option<String>,
    /// List what would be retried, and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Run them here, inside each function's image (as `scar run --local`), with what their
    /// outputs start; failures of those are recorded as a local run records them
    #[arg(long)]
    pub local: bool,
    /// Inputs retried at once
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    #[command(flatten)]
    pub here: super::cmd_invoke::HereArgs,
}

/// Invocations an input may take: the first, and the function's `retryAttempts`.
fn tries(set: &ManifestSet, function: &str) -> u32 {
    let stack = set.stack().map(|s| &s.value.spec);
    set.functions
        .iter()
        .find(|f| f.value.metadata.name == function)
        .map_or(1, |f| {
            1 + resolve::effective(stack, &f.value.spec)
                .on_failure
                .retry_attempts
        })
}

/// The records to retry: those of `inputs` (every one when empty), less those a retry is
/// running now; and the rest.
pub(super) fn select(
    inputs: &[String],
    found: Vec<records::Failure>,
    out: &Output,
) -> (Vec<records::Failure>, Vec<records::Failure>) {
    for wanted in inputs {
        if !found.iter().any(|f| f.is_input(wanted)) {
            out.warn(&format!("no failed input is {wanted}"));
        }
    }
    let now = store::now();
    let (mut chosen, mut rest) = (Vec::new(), Vec::new());
    for f in found {
        if !inputs.is_empty() && !inputs.iter().any(|w| f.is_input(w)) {
            rest.push(f);
            continue;
        }
        if let Some(since) = &f.retrying {
            let age = crate::lock::parse_rfc3339(since).map(|t| now.saturating_sub(t));
            if age.is_none_or(|a| a < UNDER_WAY_SECS) {
                out.warn(&format!(
                    "{}: a retry of it is under way (since {since}); left alone",
                    f.input.as_deref().unwrap_or(&f.record)
                ));
                rest.push(f);
                continue;
            }
        }
        chosen.push(f);
    }
    (chosen, rest)
}

/// `scar retry`.
pub(super) fn run(args: &RetryArgs, aws: &AwsArgs, out: &Output) -> Outcome {
    if args.function.is_none() && !args.all {
        return Err(Failure::Message(
            "name the function whose failed inputs to retry, or give --all for every function's"
                .into(),
        ));
    }
    let (set, desired) = session::load_set(&args.dir, out)?;
    let sources = sources(&set, args.function.as_deref(), out)?;
    let cutoff = cutoff(args.since.as_deref(), out)?;
    let rt = session::runtime()?;
    rt.block_on(async {
        let cloud = session::connect(aws, &desired).await;
        // Dead-lettered inputs stay hidden from another retry while this one moves them.
        let hide = i32::try_from(UNDER_WAY_SECS).unwrap_or(i32::MAX);
        let found = list(&cloud, &sources, cutoff.as_deref(), hide, out).await?;
        let (chosen, rest) = select(&args.input, found, out);
        let give_back = |failures: Vec<records::Failure>| {
            let cloud = &cloud;
            async move {
                queue::give_back(cloud, &failures).await.map_err(|e| {
                    session::cloud_failed(
                        out,
                        "giving back the dead-letter queues' messages failed",
                        &e,
                    )
                })
            }
        };
        give_back(rest).await?;
        if chosen.is_empty() {
            println!("no failed inputs to retry");
            return success_if(true);
        }
        if args.dry_run {
            give_back(chosen.clone()).await?;
            for f in &chosen {
                println!(
                    "would retry {} <- {}  ({})",
                    f.function,
                    f.input.as_deref().unwrap_or("-"),
                    f.record
                );
            }
            println!(
                "{} input(s) would be retried; nothing changed",
                chosen.len()
            );
            return success_if(true);
        }
        if args.local {
            // A dead-lettered input too runs here, and leaves its dead-letter queue once it
            // succeeded (or was put there again).
            return super::cmd_local::retry(
                super::cmd_local::Here {
                    job_timeout: args.here.job_timeout,
                    credentials: args.here.credentials,
                    concurrency: args.concurrency,
                },
                &set,
                &desired,
                cloud.clone(),
                chosen,
                out,
            )
            .await;
        }
        let (dead, chosen): (Vec<_>, Vec<_>) =
            chosen.into_iter().partition(|f| f.receipt.is_some());
        let moved = redrive(&cloud, dead, out).await;
        let ran = if chosen.is_empty() {
            Ok(Done::Success)
        } else {
            in_aws(&cloud, &set, chosen, args.concurrency).await
        };
        if moved { ran } else { success_if(false) }
    })
}

/// Moves each dead-lettered input of `dead` back to its queue, saying so; true when every one
/// moved.
async fn redrive(cloud: &AwsCloud, dead: Vec<records::Failure>, out: &Output) -> bool {
    let mut ok = true;
    let total = dead.len();
    for f in dead {
        let input = f.input.as_deref().unwrap_or(&f.record);
        match queue::redrive(cloud, &f).await {
            Ok(()) => eprintln!("queued  {} <- {input}  (back in its queue)", f.function),
            Err(e) => {
                ok = false;
                out.error(&format!("{input}: moving it back to its queue failed: {e}"));
                if let Err(e) = queue::give_back(cloud, std::slice::from_ref(&f)).await {
                    out.warn(&format!("{input}: {e}"));
                }
            }
        }
    }
    if total > 0 {
        println!(
            "{total} queued input(s) moved back from their dead-letter queues; the function runs them as it takes them up (`scar failures` lists those that fail again)"
        );
    }
    ok
}

/// Retries `chosen` in Lambda, `concurrency` at once, saying how each went.
pub(super) async fn in_aws(
    cloud: &AwsCloud,
    set: &ManifestSet,
    chosen: Vec<records::Failure>,
    concurrency: usize,
) -> Outcome {
    let items = chosen
        .into_iter()
        .map(|f| Retry {
            tries: tries(set, &f.function),
            failure: f,
        })
        .collect();
    let invoke = |function: String, event: serde_json::Value| async move {
        let payload = event.to_string().into_bytes();
        let answered = cloud
            .invoke(&function, &payload, false)
            .await
            .map_err(|e| e.to_string())?;
        Ok(match answered.function_error {
            None => Ok(()),
            Some(_) => Err(LastAttempt {
                request_id: answered.request_id.unwrap_or_default(),
                response: serde_json::from_slice(&answered.payload).unwrap_or_else(
                    |_| serde_json::json!({"errorMessage": String::from_utf8_lossy(&answered.payload)}),
                ),
            }),
        })
    };
    let seen = |f: &records::Failure, s: &Settled| super::cmd_local::say(f, s);
    let settled = replay::run(cloud, items, concurrency, invoke, &seen).await;
    success_if(super::cmd_local::summary(settled.iter().map(|(_, s)| s)))
}
