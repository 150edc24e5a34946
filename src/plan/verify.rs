//! What a saved plan file is checked against before anything trusts it. A plan file is not
//! signed: whoever can write it can write anything into it. So `scar show` refuses a file
//! whose displayed changes are not those of its own attributes, and `scar apply` runs a saved
//! plan only when the plan made afresh from the manifests and AWS is the same, step for step.
//! Pure.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::{Action, Plan, Step};
use crate::model::DesiredGraph;
use crate::model::live::LiveState;

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
/// Stale saved plans: a plan records the fingerprint of each live resource it read (Lambda
/// RevisionId, a hash of a notification entry); if any moved, or a resource the plan would
/// create now exists, or one it would change is gone, the plan is refused whole.
/// Why the plan no longer matches AWS; empty when it still does.
#[must_use]
pub fn stale_reasons(plan: &Plan, live: &LiveState) -> Vec<String> {
    let mut out = Vec::new();
    for s in plan.changes() {
        let now = live.get(&s.address);
        match (s.action, now) {
            (Action::Create, Some(_)) => out.push(format!("{} now exists", s.address)),
            (Action::Create, None) => {}
            (_, None) => out.push(format!("{} no longer exists", s.address)),
            (_, Some(l)) => {
                if s.expected_fingerprint.is_some() && l.fingerprint != s.expected_fingerprint {
                    out.push(format!(
                        "{} changed since the plan was made ({} -> {})",
                        s.address,
                        s.expected_fingerprint.as_deref().unwrap_or("-"),
                        l.fingerprint.as_deref().unwrap_or("-")
                    ));
                }
            }
        }
    }
    out
}

/// What is known when a saved plan is judged: each stage of `scar apply FILE` knows more (the
/// file alone; then the manifests it names; then AWS, and the plan they give now).
#[derive(Debug, Clone, Copy, Default)]
pub struct Now<'a> {
    /// The desired graph of the manifests the plan names, as they are now.
    pub desired: Option<&'a DesiredGraph>,
    /// Live state, read now.
    pub live: Option<&'a LiveState>,
    /// The plan the manifests and AWS give now, shaped as the saved one was.
    pub fresh: Option<&'a Plan>,
}

/// The verdict on a saved plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing refuses it (as far as what is known tells).
    Go,
    /// The saved plan has nothing to do.
    NothingToDo,
    /// Refused: what is wrong, and each difference found.
    Refuse {
        /// The sentence.
        what: String,
        /// The differences, one per line.
        reasons: Vec<String>,
    },
}

/// The one verdict on the saved plan `file`, as far as `now` tells, in the order `scar apply
/// FILE` learns things: the file's listed changes must be those of its own attributes and it
/// must have no errors; the manifests must give the desired graph it was made from; nothing
/// it read in AWS may have moved; and the plan made afresh must have no errors and be the
/// saved one, step for step. `shown` names the file in messages. A refusal with reasons is
/// said as "WHAT (N differences above); nothing was written"; one without, as WHAT alone.
#[must_use]
pub fn saved(file: &super::file::PlanFile, shown: &str, now: &Now<'_>) -> Verdict {
    let saved = &file.plan;
    let refuse = |what: String, reasons: Vec<String>| Verdict::Refuse { what, reasons };
    let consistency = inconsistencies(saved);
    if !consistency.is_empty() {
        return refuse(
            format!("{shown} was edited: its listed changes are not what it would write"),
            consistency,
        );
    }
    if !saved.errors.is_empty() {
        return refuse(
            "the saved plan has errors and cannot be applied".into(),
            Vec::new(),
        );
    }
    if !saved.has_changes() {
        return Verdict::NothingToDo;
    }
    if let Some(desired) = now.desired {
        let changed = desired_differences(&file.desired, desired);
        if !changed.is_empty() {
            return refuse(
                format!(
                    "the saved plan was not made from the manifests in {} as they are now",
                    file.dir
                ),
                changed,
            );
        }
    }
    if let Some(live) = now.live {
        let stale = stale_reasons(saved, live);
        if !stale.is_empty() {
            return refuse(
                "the saved plan is stale: AWS changed since it was made".into(),
                stale,
            );
        }
    }
    if let Some(fresh) = now.fresh {
        if let Some(e) = fresh.errors.first() {
            return refuse(
                format!("{}: {}; nothing was written", e.address, e.message),
                Vec::new(),
            );
        }
        let differ = plan_differences(saved, fresh);
        if !differ.is_empty() {
            return refuse(
                "the saved plan is not the plan the manifests and AWS give now".into(),
                differ,
            );
        }
    }
    Verdict::Go
}
