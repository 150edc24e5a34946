//! `scar adopt DIR ADDRESS`: writes the stack's ownership tags on an existing resource that no
//! scar stack owns, after showing what the next apply would change on it.

use std::path::PathBuf;

use super::exit::{Done, Failure, Outcome};
use super::output::Output;
use super::output::print_plan;
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
                // A SCAR function adopted by a run that stopped before its triggers moved.
                if address.kind == crate::model::ResourceKind::Function
                    && !scar4_marks(&current.attrs).is_empty()
                {
                    let account = cloud.account_id().await.map_err(|e| {
                        session::cloud_failed(out, "cannot tell the account", &e)
                    })?;
                    take_over_triggers(cloud, desired, address, &account, out).await?;
                }
                println!("{address} already belongs to stack `{}`.", desired.stack);
                return Ok(Done::Success);
            }
            Owner::OtherStack(s) => {
                out.error(&format!(
                    "{address} belongs to scar stack `{s}`; remove it from that stack first"
                ));
                return Err(Failure::Reported);
            }
            Owner::OtherRegion(r) => {
                out.error(&format!(
                    "{address} belongs to the stack `{}` of region {r}; give this region's stack a name of its own",
                    desired.stack
                ));
                return Err(Failure::Reported);
            }
            Owner::Unknown(why) => {
                out.error(&format!("cannot tell who owns {address}: {why}"));
                return Err(Failure::Reported);
            }
        }
        let scar4 = scar4_marks(&current.attrs);
        let zip = {
            use crate::model::attrs::Attrs as _;
            crate::model::attrs::id::Packaged::read(&current.attrs).is_ok_and(|p| p.is_zip())
        };
        if address.kind == crate::model::ResourceKind::Function && !scar4.is_empty() {
            println!(
                "{address} was deployed by SCAR 4.x ({}). Adopting it also takes over its S3 notification entries: SCAR's (s3:ObjectCreated:* with at most a prefix) are replaced by the stack's, in the same write; entries other tools wrote for it are kept.",
                scar4.join(", ")
            );
        }
        // Preview: the plan as it will look once the resource is ours.
        current.owner = Owner::ThisStack;
        let shape = crate::plan::prepare::Shape {
            allow_empty: true,
            ..crate::plan::prepare::Shape::default()
        };
        let mut plan = match crate::reconcile::plan_of(desired, &live, &shape, None) {
            Ok(p) => p,
            Err(e) => {
                out.error(&e.to_string());
                return Err(Failure::Reported);
            }
        };
        plan.steps.retain(|s| s.address == *address);
        println!("Once adopted, the next `scar apply` will do this to {address}:\n");
        print_plan(&plan, PlanFormat::Text, out)?;
        if zip {
            println!(
                "{address} is a zip function: Lambda cannot change a package type in place, so the next apply deletes it and creates it again as an image function under the same name (its permissions after it). S3 events for it fail from the delete until its permission is back (the new function's creation, until Active, then AddPermission: seconds) and S3 does not retry them: apply when its input buckets are quiet.\n"
            );
        }
        let ui = super::output::Terminal {
            out,
            format: PlanFormat::Text,
        };
        if !auto_approve && !crate::reconcile::Ui::confirm(&ui, &plan) {
            return Err(Failure::Reported);
        }
        let account = match cloud.account_id().await {
            Ok(a) => a,
            Err(e) => return Err(session::cloud_failed(out, "cannot tell the account", &e)),
        };
        if let Err(e) = cloud.adopt(address, wanted, &account).await {
            return Err(session::cloud_failed(out, "adopting failed", &e));
        }
        if address.kind == crate::model::ResourceKind::Function && !scar4.is_empty() {
            take_over_triggers(cloud, desired, address, &account, out).await?;
        }
        println!(
            "\n{address} now belongs to stack `{}`. Run `scar apply` to bring it in line.",
            desired.stack
        );
        Ok(Done::Success)
        })
        .await
    })
}

/// What shows that a live function was deployed by SCAR 4.x: its `createdby: scar` tag and
/// its `FDL` environment variable (the function definition SCAR stores there).
fn scar4_marks(attrs: &serde_json::Map<String, serde_json::Value>) -> Vec<&'static str> {
    use crate::model::attrs::{Attrs as _, id};
    let mut marks = Vec::new();
    let tags = id::Tagged::read(attrs).unwrap_or_default().tags;
    if tags.get("createdby").map(String::as_str) == Some("scar") {
        marks.push("tag createdby=scar");
    }
    let env = id::Configured::read(attrs).unwrap_or_default().environment;
    if env.contains_key("FDL") {
        marks.push("FDL variable");
    }
    marks
}

/// Moves the S3 notification entries of an adopted SCAR function to the stack's (printed).
async fn take_over_triggers(
    cloud: &crate::aws::AwsCloud,
    desired: &crate::model::DesiredGraph,
    address: &Address,
    account: &str,
    out: &Output,
) -> Result<(), Failure> {
    match cloud
        .take_over_triggers(desired, &address.name, account)
        .await
    {
        Ok(replaced) => {
            for entry in replaced {
                println!("replaced SCAR's S3 notification entry of {address} in {entry}");
            }
            Ok(())
        }
        Err(e) => Err(session::cloud_failed(
            out,
            "taking over the function's S3 notification entries failed (the function is adopted; run `scar adopt` again to finish)",
            &e,
        )),
    }
}
