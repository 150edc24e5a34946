//! `scar pause DIR FUNCTION` and `scar resume DIR FUNCTION`: hold a stage without losing its
//! inputs. Paused, the function has a reserved concurrency of 0: Lambda runs none of its
//! events; those S3 sends wait in Lambda's queue, and go to its failure records once older
//! than `maxEventAge`; the mappings of its queued inputs are off, their events wait in the
//! queues. A plan keeps the hold. Resumed, it
//! gets its concurrency back and the records written since the pause are retried
//! (docs/commands/pause.md).

use std::path::PathBuf;

use super::cmd_failures::sources;
use super::exit::{Done, Failure, Outcome};
use super::output::Output;
use super::session::{self, LockArgs};
use super::{AwsArgs, cmd_ops, cmd_retry};
use crate::aws::{AwsCloud, Deployed};
use crate::failures::store;
use crate::lock::Operation;
use crate::manifest::resolve::{self, Destination};
use crate::manifest::types::FunctionManifest;
use crate::model::failures::policy;
use crate::model::live::Owner;
use crate::model::pause::Hold;

/// `scar pause`.
#[derive(Debug, clap::Args)]
pub struct PauseArgs {
    /// The stack directory
    pub dir: PathBuf,
    /// The function to hold
    pub function: String,
    #[command(flatten)]
    pub lock: LockArgs,
}

/// `scar resume`.
#[derive(Debug, clap::Args)]
pub struct ResumeArgs {
    /// The stack directory
    pub dir: PathBuf,
    /// The function to run again
    pub function: String,
    /// Give the function its concurrency back, but leave the inputs held meanwhile in its
    /// failure records (`scar retry` runs them later)
    #[arg(long)]
    pub no_retry: bool,
    /// Held inputs retried at once
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    #[command(flatten)]
    pub lock: LockArgs,
}

/// Where the inputs a held function is sent go, or why holding it would lose them.
fn held_inputs_go(
    set: &crate::manifest::load::ManifestSet,
    f: &FunctionManifest,
) -> Result<String, String> {
    let name = &f.metadata.name;
    let Some(stack) = set.stack().map(|s| &s.value) else {
        return Err("the manifests hold no Stack".into());
    };
    let eff = resolve::effective(Some(&stack.spec), &f.spec);
    let queued =
        "its queued inputs wait in their queues (Lambda no longer reads them) until it resumes";
    let direct = match policy(&stack.metadata.name, &stack.spec, &f.spec, &eff) {
        None if f.spec.has_queued_input() => return Ok(queued.into()),
        None => Ok("it has no S3 input: its callers are refused (HTTP 429, or Lambda's TooManyRequestsException) until it resumes".into()),
        Some(p) => match (&p.bucket, &p.on_failure.destination) {
            (Some(bucket), _) => Ok(format!(
                "its new S3 inputs wait, and those it gives up on go to its failure records in s3://{bucket}/{}; `scar resume` retries them",
                crate::failures::prefix(name)
            )),
            (None, Destination::Queue(q)) => Ok(format!(
                "its new S3 inputs go to the queue {q}, its failure destination; `scar resume` cannot replay them from there"
            )),
            (None, _) => Err(format!(
                "function `{name}` keeps no record of failed inputs (`onFailure.destination: none`): while paused, every S3 input sent to it would be lost; give it a destination and apply first"
            )),
        },
    }?;
    Ok(if f.spec.has_queued_input() {
        format!("{direct}; {queued}")
    } else {
        direct
    })
}

/// The function deployed as `name`, when this stack owns it; otherwise why not, said.
async fn owned(
    cloud: &AwsCloud,
    stack: &str,
    name: &str,
    out: &Output,
) -> Result<Deployed, Failure> {
    let d = cloud.deployed_function(stack, name).await.map_err(|e| {
        session::cloud_failed(out, &format!("reading function `{name}` failed"), &e)
    })?;
    let Some(d) = d else {
        out.error(&format!(
            "function `{name}` is not deployed: `scar apply` creates it"
        ));
        return Err(Failure::Reported);
    };
    if d.owner != Owner::ThisStack {
        out.error(&format!(
            "function `{name}` is not this stack's ({:?}): scar changes only what it owns",
            d.owner
        ));
        return Err(Failure::Reported);
    }
    Ok(d)
}

/// `scar pause`.
pub(super) fn pause(args: &PauseArgs, aws: &AwsArgs, out: &Output) -> Outcome {
    let name = args.function.as_str();
    let (set, desired, f) = cmd_ops::load_function(&args.dir, name, out)?;
    let goes = held_inputs_go(&set, &f).map_err(Failure::Message)?;
    let rt = session::runtime()?;
    rt.block_on(async {
        let cloud = session::connect(aws, &desired).await;
        let (c, stack) = (&cloud, desired.stack.as_str());
        let wait = args.lock.lock_timeout;
        session::locked(
            &cloud,
            stack,
            &args.dir,
            Operation::Pause,
            wait,
            out,
            |_| async move {
                let d = owned(c, stack, name, out).await?;
                if let Some(h) = d.hold {
                    println!("function `{name}` is already paused (since {})", h.since);
                    return Ok(Done::Success);
                }
                let hold = Hold {
                    since: crate::lock::rfc3339(store::now()),
                    before: d.reserved,
                };
                c.pause_function(name, &d.arn, &hold).await.map_err(|e| {
                    session::cloud_failed(out, &format!("pausing `{name}` failed"), &e)
                })?;
                println!(
                    "paused `{name}` (since {}): Lambda runs none of its events; {goes}",
                    hold.since
                );
                Ok(Done::Success)
            },
        )
        .await
    })
}

/// `scar resume`.
pub(super) fn resume(args: &ResumeArgs, aws: &AwsArgs, out: &Output) -> Outcome {
    let name = args.function.as_str();
    let (set, desired, f) = cmd_ops::load_function(&args.dir, name, out)?;
    let rt = session::runtime()?;
    rt.block_on(async {
        let cloud = session::connect(aws, &desired).await;
        let (c, stack, spec) = (&cloud, desired.stack.as_str(), &f.spec);
        let wait = args.lock.lock_timeout;
        let lifted = session::locked(&cloud, stack, &args.dir, Operation::Resume, wait, out, |_| async move {
            let d = owned(c, stack, name, out).await?;
            let Some(hold) = d.hold else {
                println!("function `{name}` is not paused");
                return Ok(None);
            };
            let given = hold.resumed(spec);
            c.resume_function(name, &d.arn, given)
                .await
                .map_err(|e| session::cloud_failed(out, &format!("resuming `{name}` failed"), &e))?;
            println!(
                "resumed `{name}` (paused since {}; reserved concurrency: {})",
                hold.since,
                given.map_or_else(|| "none".to_owned(), |n| n.to_string())
            );
            Ok(Some(hold))
        })
        .await?;
        let Some(hold) = lifted else {
            return Ok(Done::Success);
        };
        let sources = sources(&set, Some(name), out)?.records;
        if sources.is_empty() {
            return Ok(Done::Success);
        }
        if args.no_retry {
            println!(
                "the inputs held since {} are in its failure records: `scar retry {} {name}` runs them",
                hold.since,
                args.dir.display()
            );
            return Ok(Done::Success);
        }
        let warn = |w: &str| out.warn(w);
        let found = store::list(&cloud, &sources, Some(&hold.since), &warn)
            .await
            .map_err(|e| session::cloud_failed(out, "listing the failure records failed", &e))?;
        let (chosen, _) = cmd_retry::select(&[], found, out);
        if chosen.is_empty() {
            println!("no inputs were held while it was paused");
            return Ok(Done::Success);
        }
        println!(
            "retrying the {} input(s) held since {}",
            chosen.len(),
            hold.since
        );
        cmd_retry::in_aws(&cloud, &set, chosen, args.concurrency).await
    })
}
