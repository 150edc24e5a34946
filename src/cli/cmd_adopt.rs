//! `scar adopt DIR ADDRESS`: writes the stack's ownership tags on an existing resource that no
//! scar stack owns, after showing what the next apply would change on it.

use std::path::PathBuf;

use super::cmd_plan::print;
use super::exit::{Done, Failure, Outcome};
use super::output::Output;
use super::{AwsArgs, PlanFormat, session};
use crate::lock::Operation;
use crate::model::Address;
use crate::model::live::Owner;

/// The arguments of `scar adopt`.
#[derive(Debug, clap::Args)]
pub struct AdoptArgs {
    /// The stack directory.
    pub dir: PathBuf,
    /// The resource, such as `function/thumbs` (function, log_group, bucket or iam_role).
    pub address: String,
    /// Adopt without asking.
    #[arg(long)]
    pub auto_approve: bool,
    /// Waiting for the stack's lock.
    #[command(flatten)]
    pub lock: session::LockArgs,
}

pub(super) fn run(args: &AdoptArgs, aws: &AwsArgs, out: &Output) -> Outcome {
    let (dir, address, auto_approve) =
        (args.dir.as_path(), args.address.as_str(), args.auto_approve);
    let address: Address = match address.parse() {
        Ok(a) => a,
        Err(e) => {
            out.error(&e.to_string());
            return Err(Failure::Reported);
        }
    };
    let desired = session::load(dir, out)?;
    let Some(wanted) = desired.get(&address).cloned() else {
        out.error(&format!(
            "no manifest of stack `{}` asks for {address}; adopt only what the manifests describe",
            desired.stack
        ));
        return Err(Failure::Reported);
    };
    let rt = session::runtime()?;
    rt.block_on(async {
        let cloud = session::connect(aws, &desired).await;
        let (cloud, desired, wanted, address) = (&cloud, &desired, &wanted, &address);
        let wait = args.lock.lock_timeout;
        session::locked(cloud, &desired.stack, dir, Operation::Adopt, wait, out, |_| async move {
        let mut live = match cloud.refresh(desired).await {
            Ok(l) => l,
            Err(e) => return Err(session::cloud_failed(out, "reading live state failed", &e)),
        };
        let Some(current) = live.resources.get_mut(address) else {
            out.error(&format!(
                "{address} does not exist; `scar apply` would create it"
            ));
            return Err(Failure::Reported);
        };
        match &current.owner {
            Owner::Unowned => {}
            Owner::ThisStack => {
                println!("{address} already belongs to stack `{}`.", desired.stack);
                return Ok(Done::Success);
            }
            Owner::OtherStack(s) => {
                out.error(&format!(
                    "{address} belongs to scar stack `{s}`; remove it from that stack first"
                ));
                return Err(Failure::Reported);
            }
            Owner::Unknown(why) => {
                out.error(&format!("cannot tell who owns {address}: {why}"));
                return Err(Failure::Reported);
            }
        }
        // Preview: the plan as it will look once the resource is ours.
        current.owner = Owner::ThisStack;
        let mut plan = session::build_plan(desired, &live, false);
        plan.steps.retain(|s| s.address == *address);
        println!("Once adopted, the next `scar apply` will do this to {address}:\n");
        print(&plan, PlanFormat::Text, out)?;
        session::confirm(&plan, auto_approve, out)?;
        let account = match cloud.account_id().await {
            Ok(a) => a,
            Err(e) => return Err(session::cloud_failed(out, "cannot tell the account", &e)),
        };
        match cloud.adopt(address, wanted, &account).await {
            Ok(()) => {
                println!(
                    "\n{address} now belongs to stack `{}`. Run `scar apply` to bring it in line.",
                    desired.stack
                );
                Ok(Done::Success)
            }
            Err(e) => Err(session::cloud_failed(out, "adopting failed", &e)),
        }
        })
        .await
    })
}
