//! What a saved plan file is checked against before anything trusts it. A plan file is not
//! signed: whoever can write it can write anything into it. So `scar show` refuses a file
//! whose displayed changes are not those of its own attributes, and `scar apply` runs a saved
//! plan only when the plan made afresh from the manifests and AWS is the same, step for step.
//! Pure.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::{Action, Plan, Step};
use crate::model::DesiredGraph;

/// Where a plan's displayed changes (`changes[]`, what `scar show` renders) are not those of
/// its attributes (`before`/`after`, what apply writes); empty when they agree.
#[must_use]
pub fn inconsistencies(plan: &Plan) -> Vec<String> {
    let mut out = Vec::new();
    for step in &plan.steps {
        let expected = expected_changes(step);
        if expected != step.changes {
            out.push(format!(
                "{}: its listed changes are not those between its `before` and `after`",
                step.address
            ));
        }
        let has_after = step.after.is_some();
        let wants_after = !matches!(step.action, Action::Delete);
        if has_after != wants_after {
            out.push(format!(
                "{}: a {} step {} attributes to write",
                step.address,
                step.action.json_actions().join("/"),
                if has_after { "carries" } else { "lacks" }
            ));
        }
    }
    out
}

/// The changes `step` should list, from its own attributes: every field for a create, the
/// differing fields for an update or replace (as the plan builder computes them), none for
/// a no-op or a delete.
fn expected_changes(step: &Step) -> Vec<super::FieldChange> {
    let (Some(after), before) = (&step.after, &step.before) else {
        return Vec::new();
    };
    let unknown: BTreeSet<String> = step
        .changes
        .iter()
        .filter(|c| c.after.is_none())
        .map(|c| c.field.clone())
        .collect();
    match (step.action, before) {
        (Action::Create, _) | (_, None) => after
            .iter()
            .map(|(k, v)| super::FieldChange {
                field: k.clone(),
                before: None,
                after: (!unknown.contains(k)).then(|| v.clone()),
                forces_replacement: false,
            })
            .collect(),
        (Action::NoOp | Action::Delete, _) => Vec::new(),
        (Action::Update | Action::Replace, Some(before)) => {
            super::build::diff(step.address.kind, after, &unknown, before)
        }
    }
}

/// How the desired graph saved in a plan differs from the one the manifests give now, by
/// address; empty when they are the same.
#[must_use]
pub fn desired_differences(saved: &DesiredGraph, now: &DesiredGraph) -> Vec<String> {
    let mut out = Vec::new();
    for (what, a, b) in [
        ("stack", &saved.stack, &now.stack),
        ("region", &saved.region, &now.region),
    ] {
        if a != b {
            out.push(format!(
                "the {what} is `{a}` in the plan, `{b}` in the manifests"
            ));
        }
    }
    if saved.account_id != now.account_id {
        out.push("the account guard (spec.accountId) differs".into());
    }
    if saved.delete_empty_buckets != now.delete_empty_buckets {
        out.push("the bucket deletion policy differs".into());
    }
    let index = |g: &DesiredGraph| -> BTreeMap<String, String> {
        g.resources
            .iter()
            .map(|r| {
                (
                    r.address.to_string(),
                    serde_json::to_string(r).unwrap_or_default(),
                )
            })
            .collect()
    };
    let (a, b) = (index(saved), index(now));
    for (address, json) in &a {
        match b.get(address) {
            None => out.push(format!("{address} is in the plan, not in the manifests")),
            Some(other) if other != json => {
                out.push(format!("{address} is not what the manifests ask for now"))
            }
            Some(_) => {}
        }
    }
    for address in b.keys().filter(|k| !a.contains_key(*k)) {
        out.push(format!("{address} is in the manifests, not in the plan"));
    }
    if out.is_empty() && saved != now {
        out.push("the desired state differs".into());
    }
    out
}

/// How a saved plan differs from the plan made afresh, step by step and field by field; empty
/// when they are the same (display-only fields included: what was reviewed is what runs).
#[must_use]
pub fn plan_differences(saved: &Plan, fresh: &Plan) -> Vec<String> {
    let mut out = Vec::new();
    if saved.destroy != fresh.destroy {
        out.push("one is a destroy plan, the other is not".into());
    }
    let by_address = |p: &Plan| -> BTreeMap<String, Value> {
        p.steps
            .iter()
            .map(|s| {
                (
                    s.address.to_string(),
                    serde_json::to_value(s).unwrap_or(Value::Null),
                )
            })
            .collect()
    };
    let (a, b) = (by_address(saved), by_address(fresh));
    for (address, step) in &a {
        let Some(other) = b.get(address) else {
            out.push(format!(
                "{address}: in the saved plan, not in the fresh one"
            ));
            continue;
        };
        if let (Value::Object(x), Value::Object(y)) = (step, other) {
            let fields: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            let differ: Vec<&str> = fields
                .into_iter()
                .filter(|k| x.get(*k) != y.get(*k))
                .map(String::as_str)
                .collect();
            if !differ.is_empty() {
                out.push(format!("{address}: {} differ", differ.join(", ")));
            }
        }
    }
    for address in b.keys().filter(|k| !a.contains_key(*k)) {
        out.push(format!(
            "{address}: in the fresh plan, not in the saved one"
        ));
    }
    let order = |p: &Plan| {
        p.steps
            .iter()
            .map(|s| s.address.clone())
            .collect::<Vec<_>>()
    };
    if out.is_empty() && order(saved) != order(fresh) {
        out.push("the steps run in another order".into());
    }
    if saved.notes != fresh.notes {
        out.push("the notes differ".into());
    }
    if saved.errors != fresh.errors {
        out.push("the errors differ".into());
    }
    if saved.workflow_graph.is_some() && saved.workflow_graph != fresh.workflow_graph {
        out.push("the workflow graph differs".into());
    }
    out
}
