//! `scar pause` and `scar resume` in Lambda: a function's hold read, put and lifted. The hold
//! is written tags first (a plan that sees them keeps the concurrency of 0), and lifted tags
//! last, so a run stopped midway is finished by running it again.

use std::collections::BTreeMap;

use aws_sdk_lambda::operation::get_function::GetFunctionOutput;

use super::AwsCloud;
use super::classify;
use crate::cloud::CloudError;
use crate::model::live::Owner;
use crate::model::pause::{Hold, TAGS};

/// A deployed function, as pausing it needs to know it.
#[derive(Debug, Clone)]
pub struct Deployed {
    /// Whose it is.
    pub owner: Owner,
    /// Its ARN.
    pub arn: String,
    /// Its reserved concurrency (`None`: none).
    pub reserved: Option<i32>,
    /// Its hold, when paused.
    pub hold: Option<Hold>,
}

/// The tags `GetFunction` answered (none when it could not read them).
pub(super) fn function_tags(out: &GetFunctionOutput) -> BTreeMap<String, String> {
    out.tags()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

impl AwsCloud {
    /// Function `name` of `stack` as deployed; `None` when there is none.
    ///
    /// # Errors
    /// When Lambda fails.
    pub async fn deployed_function(
        &self,
        stack: &str,
        name: &str,
    ) -> Result<Option<Deployed>, CloudError> {
        let Some(out) = self.get_function(name).await? else {
            return Ok(None);
        };
        let tags = function_tags(&out);
        let owner = match out.tags_error() {
            Some(e) => Owner::Unknown(format!("{}: {}", e.error_code(), e.message())),
            None => Owner::from_tags(stack, &tags),
        };
        Ok(Some(Deployed {
            owner,
            arn: out
                .configuration()
                .and_then(|c| c.function_arn())
                .unwrap_or_default()
                .to_owned(),
            reserved: out
                .concurrency()
                .and_then(|c| c.reserved_concurrent_executions()),
            hold: Hold::read(&tags),
        }))
    }

    /// Holds the function: the hold's tags, its queues' mappings turned off (their events
    /// wait in the queues, counting no receive), then a reserved concurrency of 0.
    ///
    /// # Errors
    /// When Lambda refuses.
    pub async fn pause_function(
        &self,
        name: &str,
        arn: &str,
        hold: &Hold,
    ) -> Result<(), CloudError> {
        self.tag_function(name, arn, &hold.tags()).await?;
        self.enable_mappings(name, false).await?;
        self.put_concurrency(name, 0).await
    }

    /// Lifts the hold: `concurrency` given back (`None`: the reservation removed), its queues'
    /// mappings turned on, then the hold's tags removed.
    ///
    /// # Errors
    /// When Lambda refuses.
    pub async fn resume_function(
        &self,
        name: &str,
        arn: &str,
        concurrency: Option<i32>,
    ) -> Result<(), CloudError> {
        match concurrency {
            Some(n) => self.put_concurrency(name, n).await?,
            None => {
                self.lambda_call(name, || async {
                    self.lambda
                        .delete_function_concurrency()
                        .function_name(name)
                        .send()
                        .await
                        .map_err(|e| classify("lambda:DeleteFunctionConcurrency", &e))
                })
                .await?;
            }
        }
        self.enable_mappings(name, true).await?;
        let keys: Vec<String> = TAGS.iter().map(|k| (*k).to_owned()).collect();
        self.untag_function(name, arn, &keys).await
    }
}
