//! Step order: deletes first, dependents before what they depend on; then creates and updates
//! in dependency order. Ties break by kind, then address, so plans are deterministic.
//!
//! Deleting first matters for S3: a new notification rule that overlaps a rule being removed
//! would be refused while both exist.

use std::collections::{BTreeMap, BTreeSet};

use super::{Action, Step};
use crate::model::{Address, ResourceKind};

/// Kinds in the order their deletes run. The log group goes before its function: reads find
/// log groups through the functions the stack owns, so a run killed between the two deletes
/// must leave the function (found again next time), never an orphaned log group.
const DELETE_ORDER: [ResourceKind; 6] = [
    ResourceKind::S3Trigger,
    ResourceKind::LambdaPermission,
    ResourceKind::LogGroup,
    ResourceKind::Function,
    ResourceKind::Bucket,
    ResourceKind::IamRole,
];

fn delete_rank(kind: ResourceKind) -> usize {
    DELETE_ORDER.iter().position(|k| *k == kind).unwrap_or(0)
}

/// Orders `steps` in place and fills each step's `depends_on` with the steps it must wait for.
pub(super) fn order(steps: &mut Vec<Step>) {
    let (mut deletes, mut rest): (Vec<Step>, Vec<Step>) =
        steps.drain(..).partition(|s| s.action == Action::Delete);
    deletes.sort_by(|a, b| {
        (delete_rank(a.address.kind), &a.address).cmp(&(delete_rank(b.address.kind), &b.address))
    });
    let delete_addresses: Vec<(usize, Address)> = deletes
        .iter()
        .map(|s| (delete_rank(s.address.kind), s.address.clone()))
        .collect();
    for d in &mut deletes {
        let rank = delete_rank(d.address.kind);
        d.depends_on = delete_addresses
            .iter()
            .filter(|(r, _)| *r < rank)
            .map(|(_, a)| a.clone())
            .collect();
    }
    let all_deletes: Vec<Address> = delete_addresses.into_iter().map(|(_, a)| a).collect();
    let present: BTreeSet<Address> = rest.iter().map(|s| s.address.clone()).collect();
    for s in &mut rest {
        s.depends_on.retain(|a| present.contains(a));
        s.depends_on.sort();
        s.depends_on.dedup();
    }
    let rest = topological(rest);
    let mut ordered = deletes;
    for mut s in rest {
        if s.action != Action::NoOp {
            s.depends_on.extend(all_deletes.iter().cloned());
        }
        ordered.push(s);
    }
    *steps = ordered;
}

/// Kahn's algorithm; among ready steps the lowest (kind, address) goes first. Steps caught in
/// a cycle (which validation rules out) keep their relative order at the end.
fn topological(steps: Vec<Step>) -> Vec<Step> {
    let rank = |k: ResourceKind| ResourceKind::ALL.iter().position(|x| *x == k).unwrap_or(0);
    let mut waiting: BTreeMap<(usize, Address), Step> = steps
        .into_iter()
        .map(|s| ((rank(s.address.kind), s.address.clone()), s))
        .collect();
    let mut done: BTreeSet<Address> = BTreeSet::new();
    let mut out = Vec::new();
    while !waiting.is_empty() {
        let ready = waiting
            .iter()
            .find(|(_, s)| s.depends_on.iter().all(|d| done.contains(d)))
            .map(|(k, _)| k.clone());
        let key = match ready {
            Some(k) => k,
            None => match waiting.keys().next() {
                Some(k) => k.clone(),
                None => break,
            },
        };
        if let Some(s) = waiting.remove(&key) {
            done.insert(s.address.clone());
            out.push(s);
        }
    }
    out
}
