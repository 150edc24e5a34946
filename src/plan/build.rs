//! desired + live -> plan. Pure: no AWS, no clock, deterministic order.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::{Action, Cause, FieldChange, Plan, PlanError, Reason, Step};
use crate::model::attrs::{Attrs as _, MappingAttrs, id};
use crate::model::live::{LiveResource, LiveState, Owner};
use crate::model::{
    Address, DesiredGraph, DesiredResource, Reference, ResourceKind, replace_fields, short_hash,
};

/// Tag holding the hash of the attributes last applied: a live difference while this still
/// matches the manifests is drift, not an edit.
pub const APPLIED_TAG: &str = "scar:applied";

/// The hash apply writes into [`APPLIED_TAG`] for a desired resource.
#[must_use]
pub fn applied_hash(d: &DesiredResource) -> String {
    let mut attrs = d.attrs.clone();
    if let Some(Value::Object(t)) = attrs.get_mut("tags") {
        t.remove(APPLIED_TAG);
    }
    short_hash(&Value::Object(attrs).to_string())
}

/// Builds the plan for `desired` against `live`. With `destroy`, every resource the stack owns
/// is deleted, except buckets (data is never destroyed by `scar destroy`).
///
/// # Guarantees
/// Never plans a write to a resource whose owner is not this stack, except taking over a log
/// group Lambda created for one of the stack's functions. Ownership that could not be read is
/// an error, never "unowned".
#[must_use]
pub fn build(desired: &DesiredGraph, live: &LiveState, destroy: bool) -> Plan {
    let live = &redact_environment(desired, live);
    let mut steps = Vec::new();
    let mut errors = Vec::new();
    let mut notes = Vec::new();
    if !destroy {
        // Images first: a reference to an image being built is unknown until apply, so the
        // function that refers to it is updated too.
        let mut pending = BTreeSet::new();
        let (images, rest): (Vec<&DesiredResource>, Vec<&DesiredResource>) = desired
            .resources
            .iter()
            .partition(|d| d.address.kind == ResourceKind::FunctionImage);
        for d in images.into_iter().chain(rest) {
            if let Some(step) = desired_step(desired, d, live, &pending, &mut errors, &mut notes) {
                if step.address.kind == ResourceKind::FunctionImage && step.action != Action::NoOp {
                    pending.insert(step.address.clone());
                }
                steps.push(step);
            }
        }
        steps.sort_by(|a, b| a.address.cmp(&b.address));
    }
    for (address, l) in &live.resources {
        let wanted = !destroy && desired.get(address).is_some();
        if wanted || l.owner != Owner::ThisStack {
            continue;
        }
        if address.kind == ResourceKind::Bucket {
            let empty = id::Located::read(&l.attrs).is_ok_and(|b| b.empty == Some(true));
            if destroy || !desired.delete_empty_buckets {
                notes.push(format!("{address} is kept: scar never deletes bucket data unless the stack's deletionPolicy is DeleteIfEmpty"));
                continue;
            }
            if !empty {
                notes.push(format!("{address} is kept: it still holds objects"));
                continue;
            }
        }
        if super::protected(Some(&l.attrs)) {
            errors.push(super::protection_error(address, "delete"));
        }
        steps.push(Step {
            address: address.clone(),
            action: Action::Delete,
            reason: Some(if destroy {
                Reason::DeleteBecauseDestroy
            } else if replaced_environment(desired, address) {
                Reason::DeleteBecauseReplaced
            } else {
                Reason::DeleteBecauseNoManifest
            }),
            cause: Cause::Manifest,
            changes: Vec::new(),
            before: Some(l.attrs.clone()),
            after: None,
            sensitive: Vec::new(),
            depends_on: Vec::new(),
            expected_fingerprint: l.fingerprint.clone(),
            applied: None,
            covered_by: None,
            adopts: false,
        });
    }
    cover_permissions(&mut steps);
    for s in steps
        .iter()
        .filter(|s| s.action == Action::Replace && super::protected(s.before.as_ref()))
    {
        errors.push(super::protection_error(&s.address, "replace"));
    }
    super::target::replace_permissions_with_functions(&mut steps);
    super::order::order(&mut steps);
    Plan {
        format_version: super::FORMAT_VERSION.to_owned(),
        stack: desired.stack.clone(),
        region: desired.region.clone(),
        destroy,
        steps,
        notes,
        errors,
        workflow_graph: None,
        targets: Vec::new(),
        replace: Vec::new(),
    }
}

fn desired_step(
    graph: &DesiredGraph,
    d: &DesiredResource,
    live: &LiveState,
    pending: &BTreeSet<Address>,
    errors: &mut Vec<PlanError>,
    notes: &mut Vec<String>,
) -> Option<Step> {
    let address = &d.address;
    let (mut after, unknown) = resolve(&d.attrs, graph, live, pending);
    // `ignoreChanges`: another system owns these fields; the live values stand.
    if let (Some(l), Some(fields)) = (live.get(address), graph.ignore_changes.get(address)) {
        for k in fields {
            match l.attrs.get(k) {
                Some(v) => after.insert(k.clone(), v.clone()),
                None => after.remove(k),
            };
        }
    }
    if let Some(l) = live.get(address) {
        keep_hold(address, &mut after, l, live, notes);
    }
    if address.kind == ResourceKind::BatchComputeEnvironment
        && !default_network(address, &mut after, live, errors, notes)
    {
        return None;
    }
    let after = after;
    let step = |action, reason, cause, changes, before: Option<&LiveResource>| Step {
        address: address.clone(),
        action,
        cause,
        changes,
        before: before.map(|l| l.attrs.clone()),
        after: Some(after.clone()),
        sensitive: d.sensitive.clone(),
        depends_on: d.depends_on.clone(),
        expected_fingerprint: before.and_then(|l| l.fingerprint.clone()),
        applied: d.attrs.contains_key("tags").then(|| applied_hash(d)),
        covered_by: None,
        adopts: matches!(
            reason,
            Some(Reason::AdoptCreatedByAws | Reason::AdoptUnfinishedCreate)
        ),
        reason,
    };
    let Some(l) = live.get(address) else {
        let changes = after
            .iter()
            .map(|(k, v)| FieldChange {
                field: k.clone(),
                before: None,
                after: (!unknown.contains(k)).then(|| v.clone()),
                forces_replacement: false,
            })
            .collect();
        return Some(step(Action::Create, None, Cause::Manifest, changes, None));
    };
    let mut reason = None;
    match (&l.owner, address.kind) {
        (Owner::ThisStack, _) => {}
        (Owner::Unknown(why), _) => {
            errors.push(PlanError {
                address: address.clone(),
                message: format!("cannot tell who owns it: {why}"),
                hint: Some("scar does not touch what it cannot prove it owns; grant read access to the resource's tags".into()),
            });
            return None;
        }
        // Its name is the stack's own; untagged, it is most likely what an apply that stopped
        // between creating and tagging it left. Apply takes it over only when S3 says it is
        // in this account: Lambda would write the stack's records into anyone else's.
        (Owner::Unowned, ResourceKind::Bucket)
            if graph.failures_bucket.as_deref() == Some(address.name.as_str()) =>
        {
            reason = Some(Reason::AdoptUnfinishedCreate);
        }
        (Owner::Unowned, ResourceKind::Bucket) => {
            notes.push(format!(
                "{address} exists and is used as is (scar adds only its own notification entries)"
            ));
            return region_check(address, &after, l, errors)
                .then(|| step(Action::NoOp, None, Cause::Manifest, Vec::new(), Some(l)));
        }
        // Lambda made it on the first invocation of one of the stack's functions: taken
        // over. A group with no function of the stack behind it is someone else's.
        (Owner::Unowned, ResourceKind::LogGroup)
            if live
                .get(&Address::new(ResourceKind::Function, address.name.clone()))
                .is_some_and(|f| f.owner == Owner::ThisStack) =>
        {
            reason = Some(Reason::AdoptCreatedByAws);
        }
        (Owner::OtherRegion(region), _) => {
            errors.push(PlanError {
                address: address.clone(),
                message: format!(
                    "already exists and belongs to the stack `{}` of region {region}: IAM is global, and two regions' stacks of one name would share it",
                    graph.stack
                ),
                hint: Some(
                    "give this region's stack a name of its own (an overlay's nameSuffix, such as -eu)".into(),
                ),
            });
            return None;
        }
        (owner, _) => {
            let whose = match owner {
                Owner::OtherStack(s) => format!("scar stack `{s}`"),
                _ => "nobody scar knows (no scar:stack tag)".to_owned(),
            };
            errors.push(PlanError {
                address: address.clone(),
                message: format!("already exists and belongs to {whose}"),
                hint: Some(format!(
                    "rename it in the manifests, or take it over with `scar adopt DIR {address}` after checking what would change"
                )),
            });
            return None;
        }
    }
    if address.kind == ResourceKind::Bucket && !region_check(address, &after, l, errors) {
        return None;
    }
    let changes = diff(address.kind, &after, &unknown, &l.attrs);
    if changes.is_empty() && reason.is_none() {
        return Some(step(Action::NoOp, None, Cause::Manifest, changes, Some(l)));
    }
    let replace = changes.iter().any(|c| c.forces_replacement);
    let recorded = id::Tagged::read(&l.attrs).unwrap_or_default();
    let applied = recorded.tags.get(APPLIED_TAG).map(String::as_str);
    // A field waiting on another resource's change (an image being built) is that change's
    // doing, not drift.
    let cause = if applied == Some(applied_hash(d).as_str())
        && changes.iter().all(|c| !unknown.contains(&c.field))
    {
        Cause::Drift
    } else {
        Cause::Manifest
    };
    let (action, reason) = if replace {
        let why = if address.kind == ResourceKind::BatchJobDefinition {
            Reason::NewRevision
        } else {
            Reason::ReplaceBecauseCannotUpdate
        };
        (Action::Replace, Some(why))
    } else {
        (Action::Update, reason)
    };
    Some(step(action, reason, cause, changes, Some(l)))
}

/// `scar pause`: a function it holds keeps its reserved concurrency of 0 and the tags that
/// record the hold, whatever the manifest says, until `scar resume`; the plan says so.
fn keep_hold(
    address: &Address,
    after: &mut Map<String, Value>,
    l: &LiveResource,
    live: &LiveState,
    notes: &mut Vec<String>,
) {
    if address.kind == ResourceKind::EventSourceMapping {
        // A held function's queues are not read: their mappings stay off.
        let held = <MappingAttrs<Value>>::read(after).ok().and_then(|m| {
            let f = live.get(&Address::new(ResourceKind::Function, m.function))?;
            crate::model::pause::Hold::read(&id::Tagged::read(&f.attrs).ok()?.tags)
        });
        if held.is_some()
            && let Some(v) = l.attrs.get("enabled")
        {
            after.insert("enabled".into(), v.clone());
        }
        return;
    }
    if address.kind != ResourceKind::Function {
        return;
    }
    let live_tags = id::Tagged::read(&l.attrs).unwrap_or_default().tags;
    let Some(hold) = crate::model::pause::Hold::read(&live_tags) else {
        return;
    };
    match l.attrs.get("reserved_concurrency") {
        Some(v) => after.insert("reserved_concurrency".into(), v.clone()),
        None => after.remove("reserved_concurrency"),
    };
    if let Some(Value::Object(t)) = after.get_mut("tags") {
        for (k, v) in hold.tags() {
            t.insert(k, Value::String(v));
        }
    }
    notes.push(hold.note(&address.name));
}

/// Fills a compute environment's empty `subnets` and `security_groups` with the region's
/// default VPC network (read with the live state), saying so in a note; false (with an error)
/// when it needs one and the region has none.
fn default_network(
    address: &Address,
    after: &mut Map<String, Value>,
    live: &LiveState,
    errors: &mut Vec<PlanError>,
    notes: &mut Vec<String>,
) -> bool {
    let empty = |k: &str| {
        after
            .get(k)
            .and_then(Value::as_array)
            .is_some_and(Vec::is_empty)
    };
    let (no_subnets, no_groups) = (empty("subnets"), empty("security_groups"));
    if !no_subnets && !no_groups {
        return true;
    }
    let Some(n) = live
        .default_network
        .as_ref()
        .filter(|n| !n.subnets.is_empty())
    else {
        errors.push(PlanError {
            address: address.clone(),
            message: "names no subnets or security groups, and the region has no default VPC to take them from".into(),
            hint: Some("give `batch.compute.subnets` and `batch.compute.securityGroups` (in the Function or the Stack's defaults)".into()),
        });
        return false;
    };
    let mut used = Vec::new();
    if no_subnets {
        after.insert("subnets".into(), serde_json::json!(n.subnets));
        used.push(format!("subnets {}", n.subnets.join(", ")));
    }
    if no_groups {
        after.insert(
            "security_groups".into(),
            serde_json::json!([n.security_group]),
        );
        used.push(format!("security group {}", n.security_group));
    }
    notes.push(format!(
        "{address} names no network: it uses the default VPC {} ({}), as the Batch console does",
        n.vpc,
        used.join("; ")
    ));
    true
}

/// What a live environment value that the manifests do not show reads as in a plan.
pub const REDACTED: &str = "(sensitive value not in the manifests)";

/// `live` with every environment value that the manifests do not show replaced by
/// [`REDACTED`]: a variable set by hand on a live function (a password, a token) must not
/// reach a plan file, a pull-request comment or a log. A value equal to the manifest's is
/// kept (the manifest shows it already). Staleness does not need the values: it compares the
/// fingerprints read with them.
fn redact_environment(desired: &DesiredGraph, live: &LiveState) -> LiveState {
    let mut out = live.clone();
    for (address, l) in &mut out.resources {
        let Some(Value::Object(env)) = l.attrs.get_mut("environment") else {
            continue;
        };
        let shown = desired
            .get(address)
            .and_then(|d| d.attrs.get("environment"))
            .and_then(Value::as_object);
        for (k, v) in env.iter_mut() {
            if shown.and_then(|m| m.get(k)) != Some(v) {
                *v = Value::String(REDACTED.to_owned());
            }
        }
    }
    out
}

/// True for a compute environment whose function now asks for one of the other family.
fn replaced_environment(desired: &DesiredGraph, address: &Address) -> bool {
    if address.kind != ResourceKind::BatchComputeEnvironment {
        return false;
    }
    let base = address.name.trim_end_matches(":fargate");
    [base.to_owned(), format!("{base}:fargate")]
        .into_iter()
        .any(|n| desired.get(&Address::new(address.kind, n)).is_some())
}

/// Lambda deletes a function's resource policy with the function: a permission statement of a
/// function deleted in the same plan needs no call of its own (one less call under Lambda's
/// 15 req/s control-plane quota per statement).
fn cover_permissions(steps: &mut [Step]) {
    let deleted: BTreeSet<String> = steps
        .iter()
        .filter(|s| s.action == Action::Delete && s.address.kind == ResourceKind::Function)
        .map(|s| s.address.name.clone())
        .collect();
    for s in steps.iter_mut() {
        if s.action != Action::Delete || s.address.kind != ResourceKind::LambdaPermission {
            continue;
        }
        let statement = s.before.as_ref().map(id::Statement::read);
        if let Some(Ok(p)) = statement
            && deleted.contains(&p.function)
        {
            s.covered_by = Some(Address::new(ResourceKind::Function, p.function));
        }
    }
}

fn region_check(
    address: &Address,
    after: &Map<String, Value>,
    l: &LiveResource,
    errors: &mut Vec<PlanError>,
) -> bool {
    let (want, have) = (
        id::Located::read(after).unwrap_or_default().region,
        id::Located::read(&l.attrs).unwrap_or_default().region,
    );
    match (want.as_str(), have.as_str()) {
        (want, have) if !want.is_empty() && !have.is_empty() && want != have => {
            errors.push(PlanError {
                address: address.clone(),
                message: format!("exists in region {have}, but the stack is in {want}"),
                hint: Some(
                    "use a bucket in the stack's region; scar never moves or recreates a bucket"
                        .into(),
                ),
            });
            false
        }
        _ => true,
    }
}

/// Writes the credentials' account where the model put [`crate::model::ACCOUNT`] (ARNs in
/// the managed role's policy), so the plan shows and compares the ARNs AWS will hold.
fn with_account(v: &mut Value, account: &str) {
    match v {
        Value::String(s) if s.contains(crate::model::ACCOUNT) => {
            *s = s.replace(crate::model::ACCOUNT, account);
        }
        Value::Array(items) => items.iter_mut().for_each(|i| with_account(i, account)),
        Value::Object(m) => m.values_mut().for_each(|i| with_account(i, account)),
        _ => {}
    }
}

/// Replaces references with the live values they point to; returns the paths still unknown.
/// A reference to a resource in `pending` (about to change what it refers to) stays unknown.
fn resolve(
    attrs: &Map<String, Value>,
    graph: &DesiredGraph,
    live: &LiveState,
    pending: &BTreeSet<Address>,
) -> (Map<String, Value>, BTreeSet<String>) {
    let mut unknown = BTreeSet::new();
    let mut out = Map::new();
    for (k, v) in attrs {
        match Reference::from_value(v) {
            Some(r) => {
                let known = live
                    .get(&r.address)
                    .filter(|_| !pending.contains(&r.address))
                    .filter(|l| l.owner == Owner::ThisStack || graph.get(&r.address).is_none())
                    .and_then(|l| l.outputs.get(&r.attribute));
                match known {
                    Some(value) => {
                        out.insert(k.clone(), value.clone());
                    }
                    None => {
                        unknown.insert(k.clone());
                        out.insert(k.clone(), v.clone());
                    }
                }
            }
            None => {
                let mut v = v.clone();
                if let Some(account) = &live.account {
                    with_account(&mut v, account);
                }
                out.insert(k.clone(), v);
            }
        }
    }
    (out, unknown)
}

/// The fields whose desired value differs from the live one. Tags ignore AWS's own `aws:`
/// keys and scar's bookkeeping tag; a field absent on the live side counts as changed.
pub(super) fn diff(
    kind: ResourceKind,
    after: &Map<String, Value>,
    unknown: &BTreeSet<String>,
    before: &Map<String, Value>,
) -> Vec<FieldChange> {
    let forcing = replace_fields(kind);
    let unread = crate::model::unread_fields(kind);
    // A zip function (SCAR 4.x's) becomes an image function: only a replacement does that.
    let zip = (kind == ResourceKind::Function
        && id::Packaged::read(after).is_ok_and(|p| p.package_type.is_none())
        && id::Packaged::read(before).is_ok_and(|p| p.is_zip()))
    .then(|| FieldChange {
        field: "package_type".into(),
        before: Some(Value::String("Zip".into())),
        after: Some(Value::String("Image".into())),
        forces_replacement: true,
    });
    after
        .iter()
        .filter(|(k, _)| before.contains_key(*k) || !unread.contains(&k.as_str()))
        .filter_map(|(k, want)| {
            let have = before.get(k);
            let same = if unknown.contains(k) {
                false
            } else if k == "tags" {
                comparable_tags(have) == comparable_tags(Some(want))
            } else {
                have == Some(want)
            };
            (!same).then(|| FieldChange {
                field: k.clone(),
                before: have.cloned(),
                after: (!unknown.contains(k)).then(|| want.clone()),
                forces_replacement: forcing.contains(&k.as_str()),
            })
        })
        .chain(zip)
        .collect()
}

fn comparable_tags(v: Option<&Value>) -> BTreeMap<String, Value> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter(|(k, _)| !k.starts_with("aws:") && k.as_str() != APPLIED_TAG)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::live::LiveResource;
    use crate::model::tags;
    use serde_json::json;

    fn graph(resources: Vec<DesiredResource>) -> DesiredGraph {
        let mut resources = resources;
        resources.sort_by(|a, b| a.address.cmp(&b.address));
        DesiredGraph {
            stack: "demo".into(),
            region: "us-east-1".into(),
            account_id: None,
            failures_bucket: None,
            delete_empty_buckets: false,
            resources,
            ignore_changes: BTreeMap::new(),
        }
    }

    fn function(memory: u32) -> DesiredResource {
        let address = Address::new(ResourceKind::Function, "f");
        let mut attrs = Map::new();
        attrs.insert("memory".into(), json!(memory));
        attrs.insert("tags".into(), json!({tags::STACK: "demo"}));
        DesiredResource {
            address,
            attrs,
            sensitive: Vec::new(),
            depends_on: Vec::new(),
        }
    }

    fn live_of(d: &DesiredResource, owner: Owner, applied: bool) -> LiveState {
        let mut attrs = d.attrs.clone();
        if applied && let Some(Value::Object(t)) = attrs.get_mut("tags") {
            t.insert(APPLIED_TAG.into(), json!(applied_hash(d)));
        }
        let mut live = LiveState::default();
        live.resources.insert(
            d.address.clone(),
            LiveResource {
                attrs,
                owner,
                fingerprint: Some("rev-1".into()),
                outputs: BTreeMap::new(),
            },
        );
        live
    }

    #[test]
    fn unchanged_resource_is_a_no_op() {
        let d = function(512);
        let plan = build(
            &graph(vec![d.clone()]),
            &live_of(&d, Owner::ThisStack, true),
            false,
        );
        assert!(!plan.has_changes(), "{plan:?}");
    }

    #[test]
    fn memory_edit_is_an_in_place_manifest_change() {
        let old = function(512);
        let new = function(1024);
        let plan = build(
            &graph(vec![new]),
            &live_of(&old, Owner::ThisStack, true),
            false,
        );
        let step = plan.changes().next().expect("one change");
        assert_eq!(step.action, Action::Update);
        assert_eq!(step.cause, Cause::Manifest);
        assert_eq!(step.changes.len(), 1);
        assert_eq!(step.changes[0].field, "memory");
        assert_eq!(step.expected_fingerprint.as_deref(), Some("rev-1"));
    }

    #[test]
    fn out_of_band_change_is_drift() {
        let d = function(512);
        let mut live = live_of(&d, Owner::ThisStack, true);
        if let Some(l) = live.resources.values_mut().next() {
            l.attrs.insert("memory".into(), json!(256));
        }
        let plan = build(&graph(vec![d]), &live, false);
        let step = plan.changes().next().expect("one change");
        assert_eq!(step.cause, Cause::Drift);
    }

    #[test]
    fn ignored_fields_keep_their_live_values_and_others_still_change() {
        let mut d = function(512);
        d.attrs.insert("timeout".into(), json!(60));
        let mut live = live_of(&d, Owner::ThisStack, true);
        if let Some(l) = live.resources.values_mut().next() {
            l.attrs.insert("memory".into(), json!(3008));
            l.attrs.insert("timeout".into(), json!(30));
        }
        let mut g = graph(vec![d]);
        g.ignore_changes.insert(
            Address::new(ResourceKind::Function, "f"),
            vec!["memory".into()],
        );
        let plan = build(&g, &live, false);
        let step = plan.changes().next().expect("the timeout");
        let fields: Vec<&str> = step.changes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["timeout"]);
        // What apply writes keeps the live memory.
        assert_eq!(
            step.after.as_ref().and_then(|a| a.get("memory")),
            Some(&json!(3008))
        );
    }

    #[test]
    fn a_paused_function_is_kept_paused_and_said_while_other_fields_still_change() {
        let mut d = function(512);
        d.attrs.insert("reserved_concurrency".into(), json!(5));
        let mut live = live_of(&d, Owner::ThisStack, true);
        let hold = crate::model::pause::Hold {
            since: "2026-12-07T10:00:00Z".into(),
            before: Some(5),
        };
        if let Some(l) = live.resources.values_mut().next() {
            l.attrs.insert("reserved_concurrency".into(), json!(0));
            if let Some(Value::Object(t)) = l.attrs.get_mut("tags") {
                for (k, v) in hold.tags() {
                    t.insert(k, json!(v));
                }
            }
        }
        let g = graph(vec![d.clone()]);
        let plan = build(&g, &live, false);
        assert_eq!(plan.changes().count(), 0, "{plan:?}");
        assert_eq!(plan.notes, [hold.note("f")]);
        // Another change still applies, and what it writes keeps the hold.
        let mut bigger = d;
        bigger.attrs.insert("memory".into(), json!(1024));
        let plan = build(&graph(vec![bigger]), &live, false);
        let step = plan.changes().next().expect("the memory");
        let fields: Vec<&str> = step.changes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["memory"]);
        let after = step.after.as_ref().expect("after");
        assert_eq!(after.get("reserved_concurrency"), Some(&json!(0)));
        assert_eq!(
            after.get("tags").and_then(|t| t.get(tags::PAUSED)),
            Some(&json!("2026-12-07T10:00:00Z"))
        );
        // Without the hold, the same live function is healed.
        if let Some(l) = live.resources.values_mut().next()
            && let Some(Value::Object(t)) = l.attrs.get_mut("tags")
        {
            t.retain(|k, _| !crate::model::pause::TAGS.contains(&k.as_str()));
        }
        let plan = build(&g, &live, false);
        let step = plan.changes().next().expect("the concurrency healed");
        assert_eq!(step.changes[0].field, "reserved_concurrency");
    }

    #[test]
    fn a_zip_function_is_replaced_by_an_image_function_with_its_permissions() {
        let d = function(512);
        let mut live = live_of(&d, Owner::ThisStack, true);
        if let Some(l) = live.resources.values_mut().next() {
            l.attrs.insert("package_type".into(), json!("Zip"));
        }
        let mut p = DesiredResource {
            address: Address::new(ResourceKind::LambdaPermission, "f/s3"),
            attrs: Map::new(),
            sensitive: Vec::new(),
            depends_on: vec![d.address.clone()],
        };
        p.attrs.insert("function".into(), json!("f"));
        live.resources.insert(
            p.address.clone(),
            LiveResource {
                attrs: p.attrs.clone(),
                owner: Owner::ThisStack,
                fingerprint: None,
                outputs: BTreeMap::new(),
            },
        );
        let plan = build(&graph(vec![d, p]), &live, false);
        let f = plan
            .steps
            .iter()
            .find(|s| s.address.kind == ResourceKind::Function)
            .expect("f");
        assert_eq!(f.action, Action::Replace);
        assert_eq!(f.changes[0].field, "package_type");
        assert!(f.changes[0].forces_replacement);
        let perm = plan
            .steps
            .iter()
            .find(|s| s.address.kind == ResourceKind::LambdaPermission)
            .expect("p");
        assert_eq!(
            (perm.action, perm.reason.clone()),
            (Action::Replace, Some(Reason::ReplaceWithFunction))
        );
        // What `scar show` checks a saved plan with agrees.
        assert!(super::super::verify::inconsistencies(&plan).is_empty());
    }

    #[test]
    fn a_protected_function_cannot_be_deleted_even_with_its_manifest_gone() {
        let mut d = function(512);
        if let Some(Value::Object(t)) = d.attrs.get_mut("tags") {
            t.insert(tags::DELETION_PROTECTION.into(), json!("true"));
        }
        let live = live_of(&d, Owner::ThisStack, true);
        for (desired, destroy) in [(graph(Vec::new()), false), (graph(vec![d]), true)] {
            let plan = build(&desired, &live, destroy);
            assert_eq!(plan.errors.len(), 1, "{plan:?}");
            assert!(plan.errors[0].message.contains("deletion protection is on"));
        }
    }

    #[test]
    fn foreign_and_unreadable_owners_are_errors_not_writes() {
        let d = function(512);
        for owner in [
            Owner::Unowned,
            Owner::OtherStack("x".into()),
            Owner::Unknown("AccessDenied".into()),
        ] {
            let plan = build(&graph(vec![d.clone()]), &live_of(&d, owner, false), false);
            assert_eq!(plan.errors.len(), 1);
            assert!(!plan.has_changes());
        }
    }

    #[test]
    fn owned_resource_without_manifest_is_deleted_foreign_is_not() {
        let d = function(512);
        let plan = build(&graph(vec![]), &live_of(&d, Owner::ThisStack, true), false);
        assert_eq!(plan.steps[0].action, Action::Delete);
        let plan = build(&graph(vec![]), &live_of(&d, Owner::Unowned, false), false);
        assert!(plan.steps.is_empty());
        let plan = build(
            &graph(vec![]),
            &live_of(&d, Owner::OtherStack("x".into()), false),
            false,
        );
        assert!(plan.steps.is_empty());
    }
}
