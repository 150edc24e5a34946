//! Ownership, checked again at the moment a step writes: the plan read it, but time passed
//! (and a saved plan may have been edited), so every update and delete first reads the
//! resource's tags once more and refuses to touch what the stack does not own.

use serde_json::Map;

use super::AwsCloud;
use super::kind::{Adapter, Check, adapter};
use crate::cloud::{CloudError, ErrorKind};
use crate::model::live::Owner;
use crate::plan::{Action, Step};

fn refused(step: &Step, stack: &str, owner: &Owner) -> CloudError {
    let whose = match owner {
        Owner::ThisStack => format!("stack `{stack}`"),
        Owner::OtherStack(s) => format!("scar stack `{s}`"),
        Owner::OtherRegion(r) => format!("the stack `{stack}` of region {r}"),
        Owner::Unowned => "nobody scar knows (no scar tags)".into(),
        Owner::Unknown(why) => format!("an owner scar cannot read ({why})"),
    };
    CloudError::new(
        ErrorKind::Precondition,
        "ownership check",
        format!(
            "{} belongs to {whose}, not to stack `{stack}`, when the step was about to {}; nothing was written to it",
            step.address,
            step.action.json_actions().join(" and ")
        ),
    )
}

impl AwsCloud {
    /// Refuses `step` unless the resource it updates or deletes is `stack`'s right now. A
    /// create needs no check (the resource does not exist: AWS refuses a second one); a step
    /// that another step performs (`covered_by`) makes no call.
    ///
    /// # Errors
    /// When the resource is not the stack's, or its tags cannot be read.
    pub(super) async fn check_still_owned(
        &self,
        stack: &str,
        step: &Step,
    ) -> Result<(), CloudError> {
        if matches!(step.action, Action::NoOp | Action::Create) || step.covered_by.is_some() {
            return Ok(());
        }
        let empty = Map::new();
        let before = step.before.as_ref().unwrap_or(&empty);
        let c = Check {
            stack,
            step,
            before,
        };
        let owner = adapter!(step.address.kind, A => A::owner(self, &c).await?);
        if owner == Owner::ThisStack {
            Ok(())
        } else {
            Err(refused(step, stack, &owner))
        }
    }
}
