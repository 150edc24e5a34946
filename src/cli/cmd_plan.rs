//! `scar plan DIR`: validate, read live AWS state, print the plan; optionally save it.

use std::path::PathBuf;

use super::exit::{Done, Failure, Outcome};
use super::output::Terminal;
use super::output::{Output, error_chain};
use super::{AwsArgs, PlanFormat, session};
use crate::plan::FORMAT_VERSION;
use crate::plan::file::{PlanFile, save};
use crate::reconcile::{Reconciled, Request, Show, reconcile_once};

/// The arguments of `scar plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// The stack directory.
    pub dir: PathBuf,
    /// Save the plan to this file, for `scar apply FILE` and `scar show FILE`.
    #[arg(short, long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Exit 0 for no changes, 2 for changes, 1 for errors (Terraform's meaning).
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
    /// Plan the deletion of everything the stack owns (buckets kept).
    #[arg(long)]
    pub destroy: bool,
    /// Allow a plan that deletes every function of the stack (a Stack with no Functions).
    #[arg(long)]
    pub allow_empty: bool,
    /// Narrowing the plan.
    #[command(flatten)]
    pub narrow: session::TargetArgs,
    /// Forcing replacements.
    #[command(flatten)]
    pub force: session::ReplaceArgs,
    /// Show only what changed outside scar since the last apply (drift), and what a normal
    /// plan would do about it; manifest changes are left out. Like every plan, writes nothing.
    #[arg(long, conflicts_with = "destroy")]
    pub refresh_only: bool,
}

pub(super) fn run(args: &PlanArgs, aws: &AwsArgs, out: &Output) -> Outcome {
    let targets = args.narrow.addresses()?;
    let replace = args.force.addresses()?;
    let (set, desired) = session::load_set(&args.dir, out)?;
    let rt = session::runtime()?;
    let request = Request {
        desired: &desired,
        set: Some(&set),
        destroy: args.destroy,
        allow_empty: args.allow_empty,
        show: Show::Always,
        apply: None,
        targets: &targets,
        replace: &replace,
        refresh_only: args.refresh_only,
    };
    let reconciled = rt.block_on(async {
        let cloud = session::connect(aws, &desired).await;
        let ui = Terminal {
            out,
            format: args.format,
        };
        reconcile_once(cloud.as_ref(), &request, &ui).await
    })?;
    let (plan, valid) = match reconciled {
        Reconciled::Refused(_) => return Err(Failure::Reported),
        // A plan with errors is saved too when asked for: `scar show` tells what is wrong.
        Reconciled::PlanErrors(plan) => (plan, false),
        Reconciled::NoChanges(plan)
        | Reconciled::Planned(plan)
        | Reconciled::Applied { plan, .. } => (plan, true),
    };
    if let Some(path) = &args.out {
        let file = PlanFile {
            format_version: FORMAT_VERSION.to_owned(),
            scar_version: env!("CARGO_PKG_VERSION").to_owned(),
            dir: args.dir.display().to_string(),
            desired,
            plan: plan.clone(),
        };
        if let Err(e) = save(path, &file) {
            out.error(&error_chain(&e));
            return Err(Failure::Reported);
        }
        eprintln!(
            "Saved the plan to: {}\nTo apply exactly this plan, run: scar apply {}",
            path.display(),
            path.display()
        );
    }
    if !valid {
        Err(Failure::Reported)
    } else if args.detailed_exitcode && plan.has_changes() {
        Ok(Done::Changes)
    } else {
        Ok(Done::Success)
    }
}
