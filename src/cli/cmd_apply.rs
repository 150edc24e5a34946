//! `scar apply DIR|plan.json` and `scar destroy DIR`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use super::exit::{Done, Failure, Outcome};
use super::output::{Output, Terminal, error_chain};
use super::{AwsArgs, PlanFormat, session};
use crate::apply::Report;
use crate::aws::AwsCloud;
use crate::lock::Operation;
use crate::plan::Plan;
use crate::plan::verify::{self, Verdict};
use crate::reconcile::{
    Apply, Reconciled, Request, Saved, Show, apply_saved, reconcile_once, refused,
};

/// The arguments of `scar apply`.
#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// A stack directory or a plan file.
    pub target: PathBuf,
    /// Apply without asking.
    #[arg(long)]
    pub auto_approve: bool,
    /// Steps run at once.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub parallelism: u16,
    /// Allow deleting every function of the stack (a Stack with no Functions).
    #[arg(long)]
    pub allow_empty: bool,
    /// Waiting for the stack's lock.
    #[command(flatten)]
    pub lock: session::LockArgs,
    /// Narrowing the plan.
    #[command(flatten)]
    pub narrow: session::TargetArgs,
    /// Forcing replacements.
    #[command(flatten)]
    pub force: session::ReplaceArgs,
}

/// The arguments of `scar destroy`.
#[derive(Debug, clap::Args)]
pub struct DestroyArgs {
    /// The stack directory.
    pub dir: PathBuf,
    /// Destroy without asking.
    #[arg(long)]
    pub auto_approve: bool,
    /// Steps run at once.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub parallelism: u16,
    /// Waiting for the stack's lock.
    #[command(flatten)]
    pub lock: session::LockArgs,
    /// Narrowing the plan.
    #[command(flatten)]
    pub narrow: session::TargetArgs,
}

/// What apply and destroy share once their arguments are read.
struct Options<'a> {
    target: &'a Path,
    auto_approve: bool,
    parallelism: usize,
    allow_empty: bool,
    destroy: bool,
    lock_wait: std::time::Duration,
    targets: Vec<crate::model::Address>,
    replace: Vec<crate::model::Address>,
}

/// `scar apply DIR|plan.json`.
pub(super) fn apply(args: &ApplyArgs, aws: &AwsArgs, out: &Output) -> Outcome {
    let options = Options {
        target: &args.target,
        auto_approve: args.auto_approve,
        parallelism: usize::from(args.parallelism),
        allow_empty: args.allow_empty,
        destroy: false,
        lock_wait: args.lock.lock_timeout,
        targets: args.narrow.addresses()?,
        replace: args.force.addresses()?,
    };
    if options.target.is_file() {
        if !options.targets.is_empty() || !options.replace.is_empty() {
            return Err(Failure::Message(
                "--target and --replace shape a plan being made; a saved plan is applied as it was saved (plan it with them)".into(),
            ));
        }
        return run_saved(&options, aws, out);
    }
    run(&options, aws, out)
}

/// `scar destroy DIR`.
pub(super) fn destroy(args: &DestroyArgs, aws: &AwsArgs, out: &Output) -> Outcome {
    let options = Options {
        target: &args.dir,
        auto_approve: args.auto_approve,
        parallelism: usize::from(args.parallelism),
        allow_empty: true,
        destroy: true,
        lock_wait: args.lock.lock_timeout,
        targets: args.narrow.addresses()?,
        replace: Vec::new(),
    };
    run(&options, aws, out)
}

fn run(args: &Options<'_>, aws: &AwsArgs, out: &Output) -> Outcome {
    let desired = session::load(args.target, out)?;
    let rt = session::runtime()?;
    let operation = if args.destroy {
        Operation::Destroy
    } else {
        Operation::Apply
    };
    rt.block_on(async {
        let cloud = session::connect(aws, &desired).await;
        let (cloud, desired) = (&cloud, &desired);
        session::locked(
            cloud,
            &desired.stack,
            args.target,
            operation,
            args.lock_wait,
            out,
            |lost| async move {
                let stop = || lost.load(Ordering::SeqCst);
                let request = Request {
                    desired,
                    set: None,
                    destroy: args.destroy,
                    allow_empty: args.allow_empty,
                    show: Show::Always,
                    apply: Some(Apply {
                        auto_approve: args.auto_approve,
                        parallelism: args.parallelism,
                        max_deletes: None,
                        dry_run: false,
                        stop: &stop,
                        announce: None,
                    }),
                    targets: &args.targets,
                    replace: &args.replace,
                    refresh_only: false,
                };
                let ui = Terminal {
                    out,
                    format: PlanFormat::Text,
                };
                match reconcile_once(cloud.as_ref(), &request, &ui).await? {
                    Reconciled::NoChanges(_) | Reconciled::Planned(_) => Ok(Done::Success),
                    Reconciled::Applied { plan, report } => {
                        finish(cloud, &plan, &report, &lost, out)
                    }
                    Reconciled::Refused(_) | Reconciled::PlanErrors(_) => Err(Failure::Reported),
                }
            },
        )
        .await
    })
}

/// Applies a saved plan, after proving it is exactly the plan the manifests and AWS give now.
/// A plan file is not signed, so nothing in it is trusted: the manifests it names are loaded
/// and validated again, the desired graph must equal the saved one, nothing it read in AWS
/// may have moved, and the plan made afresh must equal the saved one step for step. What
/// runs is that fresh plan.
fn run_saved(args: &Options<'_>, aws: &AwsArgs, out: &Output) -> Outcome {
    let file = match crate::plan::file::load(args.target) {
        Ok(f) => f,
        Err(e) => {
            out.error(&error_chain(&e));
            return Err(Failure::Reported);
        }
    };
    let ui = Terminal {
        out,
        format: PlanFormat::Text,
    };
    let shown = args.target.display().to_string();
    // The file alone first: nothing is read for an edited plan.
    match verify::saved(&file, &shown, &verify::Now::default()) {
        Verdict::Go => {}
        Verdict::NothingToDo => {
            println!("No changes. The saved plan has nothing to do.");
            return Ok(Done::Success);
        }
        Verdict::Refuse { what, reasons } => {
            refused(&ui, &what, &reasons);
            return Err(Failure::Reported);
        }
    }
    let dir = std::path::PathBuf::from(&file.dir);
    if !dir.is_dir() {
        out.error(&format!(
            "the saved plan was made from the manifests in `{}`, which is not a directory here; run `scar apply` from where `scar plan` ran (nothing was written)",
            file.dir
        ));
        return Err(Failure::Reported);
    }
    let (set, desired) = session::load_set(&dir, out)?;
    let now = verify::Now {
        desired: Some(&desired),
        ..verify::Now::default()
    };
    if let Verdict::Refuse { what, reasons } = verify::saved(&file, &shown, &now) {
        refused(&ui, &what, &reasons);
        return Err(Failure::Reported);
    }
    let rt = session::runtime()?;
    let operation = if file.plan.destroy {
        Operation::Destroy
    } else {
        Operation::Apply
    };
    rt.block_on(async {
        let cloud = session::connect(aws, &desired).await;
        let (cloud, file, desired, set, ui, shown) = (&cloud, &file, &desired, &set, &ui, &shown);
        session::locked(
            cloud,
            &desired.stack,
            args.target,
            operation,
            args.lock_wait,
            out,
            |lost| async move {
                let stop = || lost.load(Ordering::SeqCst);
                let saved = Saved {
                    file,
                    shown,
                    desired,
                    set: Some(set),
                    parallelism: args.parallelism,
                    stop: &stop,
                };
                let applied = apply_saved(cloud.as_ref(), &saved, ui).await?;
                match applied {
                    Reconciled::Applied { plan, report } => {
                        finish(cloud, &plan, &report, &lost, out)
                    }
                    Reconciled::NoChanges(_) | Reconciled::Planned(_) => Ok(Done::Success),
                    Reconciled::Refused(_) | Reconciled::PlanErrors(_) => Err(Failure::Reported),
                }
            },
        )
        .await
    })
}

/// Reports an apply that ran: a lost lock, the summary, and the outputs.
fn finish(
    cloud: &AwsCloud,
    plan: &Plan,
    report: &Report,
    lost: &AtomicBool,
    out: &Output,
) -> Outcome {
    if lost.load(Ordering::SeqCst) {
        out.error("the stack's lock was lost mid-apply (broken or taken over): no step started after that; run `scar apply` again");
        return Err(Failure::Reported);
    }
    let done = summarise(report, plan, out);
    if report.ok() && !plan.destroy {
        print_outputs(cloud, plan);
    }
    done
}

/// Terraform's `Outputs:`: the invoke URL of every HTTP endpoint of the stack.
pub(super) fn print_outputs(cloud: &AwsCloud, plan: &Plan) {
    let apis: Vec<&crate::plan::Step> = plan
        .steps
        .iter()
        .filter(|s| {
            s.address.kind == crate::model::ResourceKind::HttpApi
                && s.action != crate::plan::Action::Delete
        })
        .collect();
    let mut lines = Vec::new();
    for s in apis {
        let url = cloud.created_output(&s.address, "url").or_else(|| {
            use crate::model::attrs::Attrs as _;
            let after = s.after.as_ref()?;
            crate::model::attrs::ApiAttrs::from_attrs(&s.address, after)
                .ok()
                .map(|a| a.url)
        });
        if let Some(url) = url.as_ref().and_then(|u| u.as_str()) {
            lines.push(format!("  {} url = {url}", s.address));
        }
        // The key's id, never its value: `aws apigateway get-api-key --api-key ID
        // --include-value` shows it to whoever may read it.
        if let Some(key) = cloud.created_output(&s.address, "api_key_id")
            && let Some(key) = key.as_str()
        {
            lines.push(format!("  {} api_key_id = {key}", s.address));
        }
    }
    if lines.is_empty() {
        return;
    }
    println!("\nOutputs:\n");
    for line in lines {
        println!("{line}");
    }
}

pub(super) fn summarise(report: &Report, plan: &Plan, out: &Output) -> Outcome {
    let (added, changed, destroyed) = report.counts();
    if report.ok() {
        let what = if plan.destroy { "Destroy" } else { "Apply" };
        println!(
            "\n{what} complete! Resources: {added} added, {changed} changed, {destroyed} destroyed."
        );
        return Ok(Done::Success);
    }
    eprintln!("\nApply stopped after a failure.");
    eprintln!(
        "  done:    {} ({added} added, {changed} changed, {destroyed} destroyed)",
        report.done.len()
    );
    for (a, e) in &report.failed {
        eprintln!("  failed:  {a}: {e}");
    }
    if !report.skipped.is_empty() {
        eprintln!(
            "  skipped: {}",
            report
                .skipped
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    out.error("apply failed; run `scar apply` again once the cause is fixed: it continues from where this run stopped");
    Err(Failure::Reported)
}
