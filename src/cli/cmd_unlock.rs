//! `scar unlock DIR LOCK_ID`: break a lock left by a run that is gone.

use std::path::PathBuf;

use super::exit::{Done, Outcome};
use super::output::Output;
use super::{AwsArgs, session};

/// The arguments of `scar unlock`.
#[derive(Debug, clap::Args)]
pub struct UnlockArgs {
    /// The stack directory.
    pub dir: PathBuf,
    /// The lock id shown by the run that found the stack locked.
    pub lock_id: String,
}

pub(super) fn run(args: &UnlockArgs, aws: &AwsArgs, out: &Output) -> Outcome {
    let (dir, id) = (args.dir.as_path(), args.lock_id.as_str());
    let desired = session::load(dir, out)?;
    let rt = session::runtime()?;
    rt.block_on(async {
        let cloud = session::connect(aws, &desired).await;
        match cloud.unlock(&desired.stack, id).await {
            Ok(r) => {
                println!(
                    "Broke the lock of stack `{}` held by {} (pid {}) for `scar {}` since {}.",
                    r.stack,
                    r.holder,
                    r.pid,
                    r.operation,
                    crate::lock::rfc3339(r.started)
                );
                Ok(Done::Success)
            }
            Err(e) => Err(session::cloud_failed(out, "nothing was unlocked", &e)),
        }
    })
}
