//! `scar policy DIR [--for plan|apply|operate] [--account ID]`: the IAM policy whoever runs scar on
//! this stack needs, scoped to the stack's names (docs/commands/policy.md).

use std::path::PathBuf;

use super::exit::{Done, Failure, Outcome};
use super::output::Output;
use super::{AwsArgs, PolicyFor, session};
use crate::model::policy::{Operation, policy};

/// The arguments of `scar policy`.
#[derive(Debug, clap::Args)]
pub struct PolicyArgs {
    /// The stack directory.
    pub dir: PathBuf,
    /// Which commands the policy is for.
    #[arg(long = "for", value_enum, default_value_t = PolicyFor::Apply)]
    pub operation: PolicyFor,
    /// The account id to put in ARNs.
    #[arg(long)]
    pub account: Option<String>,
}

pub(super) fn run(args: &PolicyArgs, aws: &AwsArgs, out: &Output) -> Outcome {
    let dir = args.dir.as_path();
    let account = args.account.as_deref();
    let operation = match args.operation {
        PolicyFor::Plan => Operation::Plan,
        PolicyFor::Apply => Operation::Apply,
        PolicyFor::Operate => Operation::Operate,
    };
    let desired = session::load(dir, out)?;
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
                    return Err(session::cloud_failed(
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
        return Err(Failure::Reported);
    }
    let doc = policy(&desired, &account, operation);
    println!(
        "{}",
        serde_json::to_string_pretty(&doc).map_err(std::io::Error::other)?
    );
    Ok(Done::Success)
}
