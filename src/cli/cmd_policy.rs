//! `scar policy DIR [--for plan|apply] [--account ID]`: the IAM policy whoever runs scar on
//! this stack needs, scoped to the stack's names (docs/commands/policy.md).

use std::path::Path;
use std::process::ExitCode;

use super::output::Output;
use super::{AwsArgs, session};
use crate::model::policy::{Operation, policy};

pub(super) fn run(
    dir: &Path,
    operation: Operation,
    account: Option<&str>,
    aws: &AwsArgs,
    out: &Output,
) -> std::io::Result<ExitCode> {
    let desired = match session::load(dir, out) {
        Ok(d) => d,
        Err(code) => return Ok(code),
    };
    let account = match account
        .map(str::to_owned)
        .or_else(|| desired.account_id.clone())
    {
        Some(a) => a,
        None => {
            // The credentials' own account, when neither the flag nor the stack names one.
            let rt = session::runtime()?;
            let found = rt.block_on(async {
                let cloud = session::connect(aws, &desired).await;
                cloud.account_id().await
            });
            match found {
                Ok(a) => a,
                Err(e) => {
                    return Ok(session::cloud_failed(
                        out,
                        "cannot tell the account (pass --account ID)",
                        &e,
                    ));
                }
            }
        }
    };
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        out.error(&format!("`{account}` is not an AWS account id (12 digits)"));
        return Ok(ExitCode::from(1));
    }
    let doc = policy(&desired, &account, operation);
    println!(
        "{}",
        serde_json::to_string_pretty(&doc).map_err(std::io::Error::other)?
    );
    Ok(ExitCode::SUCCESS)
}
