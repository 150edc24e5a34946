//! A plan as JSON shaped like Terraform's plan JSON (`format_version`, `resource_changes[]`
//! with `change.actions` lists, `before`/`after`, `after_unknown`, sensitive masks,
//! `action_reason`, `resource_drift[]`), so tools that read Terraform plans read scar's.
//! Sensitive values are replaced by `null` in `before`/`after` and flagged in the masks.

use serde_json::{Map, Value, json};

use crate::model::Reference;
use crate::plan::{Action, Cause, Plan, Reason, Step};

/// The JSON document.
#[must_use]
pub fn render(plan: &Plan) -> Value {
    let changes: Vec<Value> = plan.steps.iter().map(resource_change).collect();
    let drift: Vec<Value> = plan
        .changes()
        .filter(|s| s.cause == Cause::Drift)
        .map(resource_change)
        .collect();
    let sum = plan.summary();
    json!({
        "format_version": plan.format_version,
        "scar_version": env!("CARGO_PKG_VERSION"),
        "stack": plan.stack,
        "region": plan.region,
        "destroy": plan.destroy,
        "applyable": plan.errors.is_empty() && plan.has_changes(),
        "complete": true,
        "errored": !plan.errors.is_empty(),
        "resource_changes": changes,
        "resource_drift": drift,
        "errors": plan.errors.iter().map(|e| json!({"address": e.address.to_string(), "message": e.message, "hint": e.hint})).collect::<Vec<_>>(),
        "notes": plan.notes,
        "summary": {"add": sum.add, "change": sum.change, "destroy": sum.destroy},
    })
}

fn resource_change(s: &Step) -> Value {
    let reason = s.reason.as_ref().map(|r| match r {
        Reason::ReplaceBecauseCannotUpdate => "replace_because_cannot_update",
        Reason::ReplaceByRequest => "replace_by_request",
        Reason::ReplaceWithFunction => "replace_with_function",
        Reason::NewRevision => "new_revision",
        Reason::DeleteBecauseNoManifest => "delete_because_no_manifest",
        Reason::DeleteBecauseDestroy => "delete_because_destroy",
        Reason::DeleteBecauseReplaced => "delete_because_replaced",
        Reason::AdoptCreatedByAws => "adopt_because_created_by_aws",
        Reason::AdoptUnfinishedCreate => "adopt_because_create_did_not_finish",
    });
    let (after, after_unknown) = match &s.after {
        Some(a) => {
            let (v, u) = unknowns(a);
            (Value::Object(v), Value::Object(u))
        }
        None => (Value::Null, json!({})),
    };
    let after = if s.action == Action::Delete {
        Value::Null
    } else {
        after
    };
    let replace_paths: Vec<Value> = s
        .changes
        .iter()
        .filter(|c| c.forces_replacement)
        .map(|c| json!([c.field]))
        .collect();
    json!({
        "address": s.address.to_string(),
        "type": s.address.kind.as_str(),
        "name": s.address.name,
        "mode": "managed",
        "change": {
            // A new revision is registered before the old one goes: create_before_destroy.
            "actions": if s.reason == Some(Reason::NewRevision) {
                &["create", "delete"][..]
            } else {
                s.action.json_actions()
            },
            "before": masked(s.before.as_ref(), &s.sensitive),
            "after": masked(after.as_object(), &s.sensitive),
            "after_unknown": after_unknown,
            "before_sensitive": mask(&s.sensitive, s.before.as_ref()),
            "after_sensitive": mask(&s.sensitive, after.as_object()),
            "replace_paths": replace_paths,
        },
        "action_reason": reason,
        "cause": match s.cause { Cause::Manifest => "manifest", Cause::Drift => "drift" },
        "changed_fields": s.changes.iter().map(|c| c.field.clone()).collect::<Vec<_>>(),
    })
}

/// Splits references (known only after apply) out of the attributes.
fn unknowns(attrs: &Map<String, Value>) -> (Map<String, Value>, Map<String, Value>) {
    let mut known = Map::new();
    let mut unknown = Map::new();
    for (k, v) in attrs {
        if Reference::from_value(v).is_some() {
            unknown.insert(k.clone(), Value::Bool(true));
        } else {
            known.insert(k.clone(), v.clone());
        }
    }
    (known, unknown)
}

fn masked(attrs: Option<&Map<String, Value>>, sensitive: &[String]) -> Value {
    let Some(attrs) = attrs else {
        return Value::Null;
    };
    let mut out = attrs.clone();
    for path in sensitive {
        let mut parts = path.splitn(2, '.');
        let (Some(top), rest) = (parts.next(), parts.next()) else {
            continue;
        };
        match (rest, out.get_mut(top)) {
            (None, Some(v)) => *v = Value::Null,
            (Some(key), Some(Value::Object(m))) => {
                if let Some(v) = m.get_mut(key) {
                    *v = Value::Null;
                }
            }
            _ => {}
        }
    }
    Value::Object(out)
}

fn mask(sensitive: &[String], attrs: Option<&Map<String, Value>>) -> Value {
    if attrs.is_none() {
        return json!({});
    }
    let mut out = Map::new();
    for path in sensitive {
        let mut parts = path.splitn(2, '.');
        match (parts.next(), parts.next()) {
            (Some(top), None) => {
                out.insert(top.to_owned(), Value::Bool(true));
            }
            (Some(top), Some(key)) => {
                let entry = out.entry(top.to_owned()).or_insert_with(|| json!({}));
                if let Value::Object(m) = entry {
                    m.insert(key.to_owned(), Value::Bool(true));
                }
            }
            _ => {}
        }
    }
    Value::Object(out)
}
