//! `--target ADDRESS`: a plan narrowed to some resources and what they need, as Terraform's
//! `-target` narrows one; `--refresh-only`: a plan narrowed to what changed outside scar. Pure.

use std::collections::BTreeSet;

use super::{Action, Plan};
use crate::model::Address;

/// `plan` narrowed to `targets`: each target's step, the steps it depends on (transitively),
/// and, for a target deleted or replaced, the deletions of what depends on it (a function's
/// triggers go with it). A step another step performs (`covered_by`) brings that step. Notes
/// say the plan is partial; errors outside the kept steps are dropped.
///
/// # Errors
/// A target the plan has no step for, naming the plan's addresses.
pub fn narrow(mut plan: Plan, targets: &[Address]) -> Result<Plan, String> {
    let known: BTreeSet<&Address> = plan.steps.iter().map(|s| &s.address).collect();
    if let Some(missing) = targets.iter().find(|t| !known.contains(t)) {
        return Err(format!(
            "--target {missing}: the plan has no such resource; its resources: {}",
            known
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let mut keep: BTreeSet<Address> = targets.iter().cloned().collect();
    loop {
        let before = keep.len();
        for s in &plan.steps {
            if keep.contains(&s.address) {
                keep.extend(s.depends_on.iter().cloned());
                keep.extend(s.covered_by.iter().cloned());
            } else if s.action == Action::Delete
                && s.depends_on.iter().any(|d| {
                    keep.contains(d)
                        && plan.steps.iter().any(|t| {
                            &t.address == d && matches!(t.action, Action::Delete | Action::Replace)
                        })
                })
            {
                keep.insert(s.address.clone());
            }
        }
        if keep.len() == before {
            break;
        }
    }
    plan.steps.retain(|s| keep.contains(&s.address));
    plan.errors.retain(|e| keep.contains(&e.address));
    plan.notes.push(format!(
        "partial plan: only {} and what {} on (--target); other changes are left for a full plan",
        targets
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        if targets.len() == 1 {
            "it depends"
        } else {
            "they depend"
        }
    ));
    plan.targets = targets.to_vec();
    Ok(plan)
}

/// `plan` with only the changes made outside scar since the last apply (`--refresh-only`):
/// the drifted resources, what changed, and what a normal plan would do about it; other
/// changes are dropped, and a note says so.
#[must_use]
pub fn drift_only(mut plan: Plan) -> Plan {
    let others = plan
        .changes()
        .filter(|s| s.cause != super::Cause::Drift)
        .count();
    plan.steps
        .retain(|s| s.action == Action::NoOp || s.cause == super::Cause::Drift);
    let drifted = plan.changes().count();
    plan.notes.push(format!(
        "refresh-only plan: {drifted} resource(s) changed outside scar since the last apply; nothing is written. A normal plan restores them unless the manifests take the changes up; {others} change(s) from the manifests are not shown"
    ));
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ResourceKind::{
        Bucket, Function, IamRole, LambdaPermission as Permission, LogGroup, S3Trigger as Trigger,
    };
    use crate::plan::Step;

    fn plan(steps: Vec<Step>) -> Plan {
        Plan::bare(steps)
    }

    fn a(kind: crate::model::ResourceKind, name: &str) -> Address {
        Address::new(kind, name)
    }

    fn names(p: &Plan) -> Vec<String> {
        p.steps.iter().map(|s| s.address.to_string()).collect()
    }

    #[test]
    fn a_target_keeps_what_it_depends_on_and_nothing_else() {
        let p = plan(vec![
            Step::bare(IamRole, "r", Action::NoOp, &[]),
            Step::bare(LogGroup, "f", Action::Create, &[]),
            Step::bare(
                Function,
                "f",
                Action::Update,
                &[a(IamRole, "r"), a(LogGroup, "f")],
            ),
            Step::bare(Function, "g", Action::Update, &[a(IamRole, "r")]),
            Step::bare(Bucket, "b", Action::Create, &[]),
            Step::bare(
                Trigger,
                "b:f",
                Action::Create,
                &[a(Function, "f"), a(Bucket, "b")],
            ),
        ]);
        let narrowed = narrow(p.clone(), &[a(Function, "f")]).expect("narrowed");
        assert_eq!(
            names(&narrowed),
            ["iam_role/r", "log_group/f", "function/f"]
        );
        assert!(
            narrowed.notes[0].starts_with("partial plan: only function/f"),
            "{:?}",
            narrowed.notes
        );
        assert_eq!(narrowed.targets, [a(Function, "f")]);
        // The trigger brings the function and the bucket, and theirs.
        let t = narrow(p.clone(), &[a(Trigger, "b:f")]).expect("narrowed");
        assert_eq!(t.steps.len(), 5, "{:?}", names(&t));
        let err = narrow(p, &[a(Function, "nope")]).expect_err("unknown");
        assert!(
            err.contains("function/nope") && err.contains("function/g"),
            "{err}"
        );
    }

    #[test]
    fn a_deleted_target_takes_the_deletions_of_what_depends_on_it() {
        let p = plan(vec![
            Step::bare(Function, "f", Action::Delete, &[]),
            Step::bare(Permission, "f/s3", Action::Delete, &[a(Function, "f")]),
            Step::bare(Trigger, "b:f", Action::Delete, &[a(Permission, "f/s3")]),
            Step::bare(Function, "g", Action::Delete, &[]),
        ]);
        let narrowed = narrow(p, &[a(Function, "f")]).expect("narrowed");
        assert_eq!(
            names(&narrowed),
            ["function/f", "lambda_permission/f/s3", "s3_trigger/b:f"]
        );
    }
}
