//! `--target ADDRESS`: a plan narrowed to some resources and what they need, as Terraform's
//! `-target` narrows one; `--replace ADDRESS`: resources replaced though nothing forces it;
//! `--refresh-only`: a plan narrowed to what changed outside scar. Pure.

use std::collections::BTreeSet;

use super::{Action, Cause, Plan, Reason};
use crate::model::{Address, ResourceKind};

/// `plan` narrowed to `targets`: each target's step, the steps it depends on (transitively),
/// and, for a target deleted or replaced, the deletions of what depends on it (a function's
/// triggers go with it). A step another step performs (`covered_by`) brings that step. Notes
/// say the plan is partial; errors outside the kept steps are dropped.
///
/// # Errors
/// A target the plan has no step for, naming the plan's addresses.
pub fn narrow(mut plan: Plan, targets: &[Address]) -> Result<Plan, String> {
    if let Some(missing) = targets
        .iter()
        .find(|t| !plan.steps.iter().any(|s| &s.address == *t))
    {
        return Err(no_such("--target", missing, &plan));
    }
    let mut keep: BTreeSet<Address> = targets.iter().cloned().collect();
    loop {
        let before = keep.len();
        for s in &plan.steps {
            if keep.contains(&s.address) {
                keep.extend(s.depends_on.iter().cloned());
                keep.extend(s.covered_by.iter().cloned());
            } else if matches!(s.action, Action::Delete | Action::Replace)
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

/// Kinds `--replace` can replace, with what replacing one does.
const REPLACEABLE: [(ResourceKind, &str); 5] = [
    (
        ResourceKind::Function,
        "deleted and created again under its name (its permissions added again after it)",
    ),
    (ResourceKind::FunctionImage, "built and pushed again"),
    (ResourceKind::LambdaPermission, "removed and added again"),
    (
        ResourceKind::S3Trigger,
        "its notification entry written again",
    ),
    (
        ResourceKind::BatchJobDefinition,
        "registered as a new revision, the old one deregistered",
    ),
];

/// `plan` with `addresses` replaced though nothing forces it (`--replace`, Terraform's
/// `-replace`): an unchanged or updated resource becomes a replacement; one being created is
/// created as planned. A replaced function's permission statements are replaced with it
/// (Lambda deletes them with the function), after it. The steps are ordered again.
///
/// # Errors
/// An address the plan has no step for, one being deleted, or a kind that cannot be replaced
/// (data or names others use: buckets, repositories, roles, log groups, HTTP APIs, Batch
/// environments and queues).
pub fn replace(mut plan: Plan, addresses: &[Address]) -> Result<Plan, String> {
    for address in addresses {
        let Some(step) = plan.steps.iter().find(|s| &s.address == address) else {
            return Err(no_such("--replace", address, &plan));
        };
        if !REPLACEABLE.iter().any(|(k, _)| *k == address.kind) {
            return Err(format!(
                "--replace {address}: a {} cannot be replaced by scar (it holds data or a name others use); these can: {}",
                address.kind,
                REPLACEABLE
                    .iter()
                    .map(|(k, what)| format!("{k} ({what})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if step.action == Action::Delete {
            return Err(format!(
                "--replace {address}: the plan deletes it (no manifest asks for it any more)"
            ));
        }
        if super::protected(step.before.as_ref()) {
            let e = super::protection_error(address, "replace");
            return Err(format!(
                "--replace {address}: {}; {}",
                e.message,
                e.hint.unwrap_or_default()
            ));
        }
    }
    for s in &mut plan.steps {
        if addresses.contains(&s.address) && matches!(s.action, Action::NoOp | Action::Update) {
            s.action = Action::Replace;
            s.reason = Some(Reason::ReplaceByRequest);
            s.cause = Cause::Manifest;
        }
    }
    replace_permissions_with_functions(&mut plan.steps);
    super::order::order(&mut plan.steps);
    plan.replace = addresses.to_vec();
    Ok(plan)
}

/// The error for an address the plan has no step for, listing the plan's (sorted).
fn no_such(flag: &str, address: &Address, plan: &Plan) -> String {
    let known: BTreeSet<&Address> = plan.steps.iter().map(|s| &s.address).collect();
    format!(
        "{flag} {address}: the plan has no such resource; its resources: {}",
        known
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Replaces the permission statements and the invoke configuration of every function the
/// plan replaces, where the plan keeps or updates them: Lambda deletes them with their
/// function, so they are put again on the new one, after it.
pub(super) fn replace_permissions_with_functions(steps: &mut [super::Step]) {
    let functions: Vec<Address> = steps
        .iter()
        .filter(|s| s.address.kind == ResourceKind::Function && s.action == Action::Replace)
        .map(|s| s.address.clone())
        .collect();
    for s in steps {
        if matches!(
            s.address.kind,
            ResourceKind::LambdaPermission | ResourceKind::InvokeConfig
        ) && matches!(s.action, Action::NoOp | Action::Update)
            && s.depends_on.iter().any(|d| functions.contains(d))
        {
            s.action = Action::Replace;
            s.reason = Some(Reason::ReplaceWithFunction);
            s.cause = Cause::Manifest;
        }
    }
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

    #[test]
    fn a_replaced_function_takes_its_permissions_after_it_and_data_is_refused() {
        let p = plan(vec![
            Step::bare(IamRole, "r", Action::NoOp, &[]),
            Step::bare(Bucket, "b", Action::NoOp, &[]),
            Step::bare(Function, "f", Action::NoOp, &[a(IamRole, "r")]),
            Step::bare(
                Permission,
                "f/s3:b",
                Action::NoOp,
                &[a(Function, "f"), a(Bucket, "b")],
            ),
            Step::bare(
                Trigger,
                "b:f",
                Action::NoOp,
                &[a(Function, "f"), a(Permission, "f/s3:b")],
            ),
            Step::bare(Function, "g", Action::Update, &[a(IamRole, "r")]),
            Step::bare(Function, "old", Action::Delete, &[]),
        ]);
        let r = replace(p.clone(), &[a(Function, "f")]).expect("replaced");
        let changed: Vec<(String, Action, Option<Reason>)> = r
            .changes()
            .map(|s| (s.address.to_string(), s.action, s.reason.clone()))
            .collect();
        assert_eq!(
            changed,
            [
                ("function/old".into(), Action::Delete, None),
                (
                    "function/f".into(),
                    Action::Replace,
                    Some(Reason::ReplaceByRequest)
                ),
                ("function/g".into(), Action::Update, None),
                (
                    "lambda_permission/f/s3:b".into(),
                    Action::Replace,
                    Some(Reason::ReplaceWithFunction)
                ),
            ]
        );
        // The trigger points at the same ARN: left alone.
        assert_eq!(r.summary().add, 2);
        assert_eq!(r.replace, [a(Function, "f")]);
        // A permission waits for its function, which waits for the deletes.
        let step = |n: &str| r.steps.iter().find(|s| s.address.to_string() == n);
        let f = step("function/f").expect("f");
        assert!(f.depends_on.contains(&a(Function, "old")), "{f:?}");
        assert!(
            step("lambda_permission/f/s3:b")
                .expect("p")
                .depends_on
                .contains(&a(Function, "f"))
        );
        // Narrowed to the function, the permission comes too.
        let n = narrow(r, &[a(Function, "f")]).expect("narrowed");
        assert!(names(&n).contains(&"lambda_permission/f/s3:b".to_owned()));

        let bucket = replace(p.clone(), &[a(Bucket, "b")]).expect_err("data");
        assert!(
            bucket.contains("a bucket cannot be replaced") && bucket.contains("function ("),
            "{bucket}"
        );
        let gone = replace(p.clone(), &[a(Function, "old")]).expect_err("deleted");
        assert!(gone.contains("the plan deletes it"), "{gone}");
        let unknown = replace(p, &[a(Function, "nope")]).expect_err("unknown");
        assert!(unknown.contains("no such resource"), "{unknown}");
    }
}
