//! The one way a plan is made from desired and live state, every shaping step in order, as
//! Terraform lists its graph transformers in one `Steps()`: `plan`, `apply` (of a directory and
//! of a saved plan, whose re-derivation must shape the same way), `destroy`, `adopt` and
//! `watch` all come through here. Pure: the one question it asks the machine (is there a
//! supervisor for an architecture?) is answered by the caller.

use super::{Plan, PlanError};
use crate::model::live::{LiveState, Owner};
use crate::model::{Address, DesiredGraph, ResourceKind};

/// How a plan is asked for.
#[derive(Debug, Clone, Copy, Default)]
pub struct Shape<'a> {
    /// Plan the deletion of everything the stack owns.
    pub destroy: bool,
    /// Allow a plan that deletes every function of the stack.
    pub allow_empty: bool,
    /// `--replace`: replace these though nothing forces it.
    pub replace: &'a [Address],
    /// `--target`: narrow the plan to these and what they depend on.
    pub targets: &'a [Address],
    /// `--refresh-only`: keep only the changes made outside scar.
    pub refresh_only: bool,
}

/// Why no plan was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The manifests name no function and the stack owns some: applying would delete them
    /// all, and that was not allowed (the message says so).
    Empty(String),
    /// A `--target` or `--replace` address the plan cannot take.
    BadAddress(String),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Empty(m) | Refused::BadAddress(m) => f.write_str(m),
        }
    }
}

/// Makes the plan of `desired` against `live` as `shape` asks, in this order:
///
/// 1. refuse to empty a stack of its functions unless allowed (an emptied directory is more
///    often a mistake than an intent; `destroy` means it);
/// 2. build it ([`super::build`]);
/// 3. make an image the machine cannot assemble a plan error: `supervisor` says, for an
///    architecture, whether this machine has a supervisor to put into it (so nothing is written
///    rather than failing halfway);
/// 4. replace what `--replace` names;
/// 5. narrow to what `--target` names;
/// 6. keep only drift for `--refresh-only`.
///
/// # Errors
/// [`Refused`], with the sentence to show.
pub fn prepare(
    desired: &DesiredGraph,
    live: &LiveState,
    shape: &Shape<'_>,
    supervisor: &dyn Fn(&str) -> Result<(), String>,
) -> Result<Plan, Refused> {
    if !shape.allow_empty && !shape.destroy && empties(desired, live) {
        return Err(Refused::Empty(format!(
            "the manifests of stack `{}` name no function, and applying would delete all of the stack's functions; pass --allow-empty if that is what you want (or use `scar destroy`)",
            desired.stack
        )));
    }
    let mut plan = super::build(desired, live, shape.destroy);
    let missing = missing_supervisors(&plan, supervisor);
    plan.errors.extend(missing);
    if !shape.replace.is_empty() {
        plan = super::target::replace(plan, shape.replace).map_err(Refused::BadAddress)?;
    }
    if !shape.targets.is_empty() {
        plan = super::target::narrow(plan, shape.targets).map_err(Refused::BadAddress)?;
    }
    if shape.refresh_only {
        plan = super::target::drift_only(plan);
    }
    Ok(plan)
}

/// True when the manifests name no function and the stack owns some.
fn empties(desired: &DesiredGraph, live: &LiveState) -> bool {
    let wants = desired
        .resources
        .iter()
        .any(|r| r.address.kind == ResourceKind::Function);
    let owns = live
        .resources
        .iter()
        .any(|(a, r)| a.kind == ResourceKind::Function && r.owner == Owner::ThisStack);
    !wants && owns
}

/// The images `plan` assembles for an architecture `supervisor` has no supervisor for.
fn missing_supervisors(
    plan: &Plan,
    supervisor: &dyn Fn(&str) -> Result<(), String>,
) -> Vec<PlanError> {
    plan.changes()
        .filter(|s| {
            s.address.kind == ResourceKind::FunctionImage && s.action != super::Action::Delete
        })
        .filter_map(|step| {
            use crate::model::attrs::Attrs as _;
            let image = crate::model::attrs::ImageAttrs::from_attrs(&step.address, step.after.as_ref()?);
            let problem = match image {
                Ok(i) => supervisor(&i.architecture).err()?,
                Err(e) => e.to_string(),
            };
            Some(PlanError {
                address: step.address.clone(),
                message: problem,
                hint: Some("scar puts its supervisor into every image it assembles; install the scar release that ships it, or mark the function `prebuilt: true` with an image that has one".into()),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::live::LiveResource;

    fn owned_function() -> LiveState {
        let mut live = LiveState::default();
        live.resources.insert(
            Address::new(ResourceKind::Function, "old"),
            LiveResource {
                attrs: serde_json::Map::new(),
                owner: Owner::ThisStack,
                fingerprint: None,
                outputs: std::collections::BTreeMap::new(),
            },
        );
        live
    }

    fn empty_graph() -> DesiredGraph {
        DesiredGraph {
            stack: "s".into(),
            region: "us-east-1".into(),
            account_id: None,
            failures_bucket: None,
            delete_empty_buckets: false,
            resources: Vec::new(),
            ignore_changes: std::collections::BTreeMap::new(),
        }
    }

    #[test]
    fn emptying_a_stack_is_refused_unless_allowed_or_destroyed() {
        let (desired, live) = (empty_graph(), owned_function());
        let none = |_: &str| Ok(());
        let refused = prepare(&desired, &live, &Shape::default(), &none);
        assert!(matches!(refused, Err(Refused::Empty(m)) if m.contains("--allow-empty")));
        for shape in [
            Shape {
                allow_empty: true,
                ..Shape::default()
            },
            Shape {
                destroy: true,
                ..Shape::default()
            },
        ] {
            let plan = prepare(&desired, &live, &shape, &none).expect("a plan");
            assert_eq!(plan.summary().destroy, 1);
        }
    }

    #[test]
    fn an_address_the_plan_lacks_is_refused_by_name() {
        let (desired, live) = (empty_graph(), LiveState::default());
        let ghost = [Address::new(ResourceKind::Function, "ghost")];
        let shape = Shape {
            targets: &ghost,
            ..Shape::default()
        };
        let refused = prepare(&desired, &live, &shape, &|_| Ok(()));
        assert!(matches!(refused, Err(Refused::BadAddress(m)) if m.contains("function/ghost")));
    }
}
