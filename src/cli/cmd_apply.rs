//! `scar apply DIR|plan.json` and `scar destroy DIR`.

use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use super::cmd_plan::{error_chain, print};
use super::output::Output;
use super::progress::Lines;
use super::{AwsArgs, PlanFormat, session};
use crate::apply::{self, Report};
use crate::cloud::aws::{AccountSession, AwsCloud};
use crate::plan::Plan;

pub(super) struct Args<'a> {
    pub target: &'a Path,
    pub auto_approve: bool,
    pub parallelism: usize,
    pub allow_empty: bool,
    pub destroy: bool,
}

pub(super) fn run(args: &Args<'_>, aws: &AwsArgs, out: &Output) -> std::io::Result<ExitCode> {
    if args.target.is_file() && !args.destroy {
        return run_saved(args, aws, out);
    }
    let desired = match session::load(args.target, out) {
        Ok(d) => d,
        Err(code) => return Ok(code),
    };
    let rt = session::runtime()?;
    let operation = if args.destroy { "destroy" } else { "apply" };
    rt.block_on(async {
        let cloud = session::connect(aws, &desired).await;
        let (cloud, desired) = (&cloud, &desired);
        session::locked(
            cloud,
            &desired.stack,
            args.target,
            operation,
            out,
            |lost| async move {
                let live = match cloud.refresh(&desired.to_read(args.destroy)).await {
                    Ok(l) => l,
                    Err(e) => {
                        return Ok(session::cloud_failed(out, "reading live state failed", &e));
                    }
                };
                if let Err(code) = session::check_empty(desired, &live, args.allow_empty, out) {
                    return Ok(code);
                }
                let plan = session::build_plan(desired, &live, args.destroy);
                print(&plan, PlanFormat::Text, out)?;
                if !plan.errors.is_empty() {
                    return Ok(ExitCode::from(1));
                }
                if !plan.has_changes() {
                    return Ok(ExitCode::SUCCESS);
                }
                if let Err(code) = session::confirm(&plan, args.auto_approve, out) {
                    return Ok(code);
                }
                execute(cloud, &plan, args.parallelism, &lost, out).await
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
fn run_saved(args: &Args<'_>, aws: &AwsArgs, out: &Output) -> std::io::Result<ExitCode> {
    let file = match crate::plan::file::load(args.target) {
        Ok(f) => f,
        Err(e) => {
            out.error(&error_chain(&e));
            return Ok(ExitCode::from(1));
        }
    };
    let refuse = |what: &str, reasons: &[String]| {
        for r in reasons {
            eprintln!("  - {r}");
        }
        out.error(&format!(
            "{what} ({} differences above); nothing was written. Run `scar plan` again.",
            reasons.len()
        ));
        ExitCode::from(1)
    };
    let consistency = crate::plan::verify::inconsistencies(&file.plan);
    if !consistency.is_empty() {
        return Ok(refuse(
            &format!(
                "{} was edited: its listed changes are not what it would write",
                args.target.display()
            ),
            &consistency,
        ));
    }
    if !file.plan.errors.is_empty() {
        out.error("the saved plan has errors and cannot be applied");
        return Ok(ExitCode::from(1));
    }
    if !file.plan.has_changes() {
        println!("No changes. The saved plan has nothing to do.");
        return Ok(ExitCode::SUCCESS);
    }
    let dir = std::path::PathBuf::from(&file.dir);
    if !dir.is_dir() {
        out.error(&format!(
            "the saved plan was made from the manifests in `{}`, which is not a directory here; run `scar apply` from where `scar plan` ran (nothing was written)",
            file.dir
        ));
        return Ok(ExitCode::from(1));
    }
    let (set, desired) = match session::load_set(&dir, out) {
        Ok(d) => d,
        Err(code) => return Ok(code),
    };
    let changed = crate::plan::verify::desired_differences(&file.desired, &desired);
    if !changed.is_empty() {
        return Ok(refuse(
            &format!(
                "the saved plan was not made from the manifests in {} as they are now",
                file.dir
            ),
            &changed,
        ));
    }
    let rt = session::runtime()?;
    let operation = if file.plan.destroy {
        "destroy"
    } else {
        "apply"
    };
    rt.block_on(async {
        let cloud = session::connect(aws, &desired).await;
        let (cloud, file, desired, set) = (&cloud, &file, &desired, &set);
        session::locked(
            cloud,
            &desired.stack,
            args.target,
            operation,
            out,
            |lost| async move {
                let live = match cloud.refresh(&desired.to_read(file.plan.destroy)).await {
                    Ok(l) => l,
                    Err(e) => {
                        return Ok(session::cloud_failed(out, "reading live state failed", &e));
                    }
                };
                let stale = apply::stale::stale_reasons(&file.plan, &live);
                if !stale.is_empty() {
                    return Ok(refuse(
                        "the saved plan is stale: AWS changed since it was made",
                        &stale,
                    ));
                }
                let mut fresh = session::build_plan(desired, &live, file.plan.destroy);
                if fresh.reshapes_workflow() && !fresh.destroy {
                    fresh.workflow_graph = Some(crate::render::graph::build(set).mermaid());
                }
                if let Some(e) = fresh.errors.first() {
                    out.error(&format!(
                        "{}: {}; nothing was written",
                        e.address, e.message
                    ));
                    return Ok(ExitCode::from(1));
                }
                let differ = crate::plan::verify::plan_differences(&file.plan, &fresh);
                if !differ.is_empty() {
                    return Ok(refuse(
                        "the saved plan is not the plan the manifests and AWS give now",
                        &differ,
                    ));
                }
                execute(cloud, &fresh, args.parallelism, &lost, out).await
            },
        )
        .await
    })
}

async fn execute(
    cloud: &AwsCloud,
    plan: &Plan,
    parallelism: usize,
    lost: &AtomicBool,
    out: &Output,
) -> std::io::Result<ExitCode> {
    let stop = || lost.load(Ordering::SeqCst);
    let report = match run_steps(cloud, plan, parallelism, &stop, out).await {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    if lost.load(Ordering::SeqCst) {
        out.error("the stack's lock was lost mid-apply (broken or taken over): no step started after that; run `scar apply` again");
        return Ok(ExitCode::from(1));
    }
    let code = summarise(&report, plan, out);
    if report.ok() && !plan.destroy {
        print_outputs(cloud, plan);
    }
    Ok(code)
}

/// Executes `plan`'s steps with progress lines, starting no new step once `stop()` says so.
pub(super) async fn run_steps(
    cloud: &AwsCloud,
    plan: &Plan,
    parallelism: usize,
    stop: &(dyn Fn() -> bool + Sync),
    out: &Output,
) -> Result<Report, ExitCode> {
    let account = match cloud.account_id().await {
        Ok(a) => a,
        Err(e) => return Err(session::cloud_failed(out, "cannot tell the account", &e)),
    };
    eprintln!();
    let session = AccountSession {
        cloud,
        account,
        stack: plan.stack.clone(),
    };
    Ok(apply::run_until(&session, plan, parallelism, &Lines, stop).await)
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
        let url = cloud
            .created_output(&s.address, "url")
            .or_else(|| s.after.as_ref().and_then(|a| a.get("url").cloned()));
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

pub(super) fn summarise(report: &Report, plan: &Plan, out: &Output) -> ExitCode {
    let (added, changed, destroyed) = report.counts();
    if report.ok() {
        let what = if plan.destroy { "Destroy" } else { "Apply" };
        println!(
            "\n{what} complete! Resources: {added} added, {changed} changed, {destroyed} destroyed."
        );
        return ExitCode::SUCCESS;
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
    ExitCode::from(1)
}
