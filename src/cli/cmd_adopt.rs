//! `scar adopt DIR ADDRESS`: writes the stack's ownership tags on an existing resource that no
//! scar stack owns, after showing what the next apply would change on it.

use std::path::Path;
use std::process::ExitCode;

use super::cmd_plan::print;
use super::output::Output;
use super::{AwsArgs, PlanFormat, session};
use crate::model::Address;
use crate::model::live::Owner;

pub(super) fn run(
    dir: &Path,
    address: &str,
    auto_approve: bool,
    aws: &AwsArgs,
    out: &Output,
) -> std::io::Result<ExitCode> {
    let address: Address = match address.parse() {
        Ok(a) => a,
        Err(e) => {
            out.error(&e.to_string());
            return Ok(ExitCode::from(1));
        }
    };
    let desired = match session::load(dir, out) {
        Ok(d) => d,
        Err(code) => return Ok(code),
    };
    let Some(wanted) = desired.get(&address).cloned() else {
        out.error(&format!(
            "no manifest of stack `{}` asks for {address}; adopt only what the manifests describe",
            desired.stack
        ));
        return Ok(ExitCode::from(1));
    };
    let rt = session::runtime()?;
    rt.block_on(async {
        let cloud = session::connect(aws, &desired).await;
        let (cloud, desired, wanted, address) = (&cloud, &desired, &wanted, &address);
        session::locked(cloud, &desired.stack, dir, "adopt", out, |_| async move {
        let mut live = match cloud.refresh(desired).await {
            Ok(l) => l,
            Err(e) => return Ok(session::cloud_failed(out, "reading live state failed", &e)),
        };
        let Some(current) = live.resources.get_mut(address) else {
            out.error(&format!(
                "{address} does not exist; `scar apply` would create it"
            ));
            return Ok(ExitCode::from(1));
        };
        match &current.owner {
            Owner::Unowned => {}
            Owner::ThisStack => {
                println!("{address} already belongs to stack `{}`.", desired.stack);
                return Ok(ExitCode::SUCCESS);
            }
            Owner::OtherStack(s) => {
                out.error(&format!(
                    "{address} belongs to scar stack `{s}`; remove it from that stack first"
                ));
                return Ok(ExitCode::from(1));
            }
            Owner::Unknown(why) => {
                out.error(&format!("cannot tell who owns {address}: {why}"));
                return Ok(ExitCode::from(1));
            }
        }
        // Preview: the plan as it will look once the resource is ours.
        current.owner = Owner::ThisStack;
        let mut plan = session::build_plan(desired, &live, false);
        plan.steps.retain(|s| s.address == *address);
        println!("Once adopted, the next `scar apply` will do this to {address}:\n");
        print(&plan, PlanFormat::Text, out)?;
        if let Err(code) = session::confirm(&plan, auto_approve, out) {
            return Ok(code);
        }
        let account = match cloud.account_id().await {
            Ok(a) => a,
            Err(e) => return Ok(session::cloud_failed(out, "cannot tell the account", &e)),
        };
        match cloud.adopt(address, wanted, &account).await {
            Ok(()) => {
                println!(
                    "\n{address} now belongs to stack `{}`. Run `scar apply` to bring it in line.",
                    desired.stack
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => Ok(session::cloud_failed(out, "adopting failed", &e)),
        }
        })
        .await
    })
}
