//! `scar unlock DIR LOCK_ID`: break a lock left by a run that is gone.

use std::path::Path;
use std::process::ExitCode;

use super::output::Output;
use super::{AwsArgs, session};

pub(super) fn run(dir: &Path, id: &str, aws: &AwsArgs, out: &Output) -> std::io::Result<ExitCode> {
    let desired = match session::load(dir, out) {
        Ok(d) => d,
        Err(code) => return Ok(code),
    };
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
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => Ok(session::cloud_failed(out, "nothing was unlocked", &e)),
        }
    })
}
