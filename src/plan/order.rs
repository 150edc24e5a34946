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
///
/// Batch goes after the function that submits to it: definition, then queue, then compute
/// environment (a queue must let go of an environment before it can be deleted).
const DELETE_ORDER: [ResourceKind; 12] = [
    ResourceKind::S3Trigger,
    ResourceKind::LambdaPermission,
    ResourceKind::HttpApi,
    ResourceKind::LogGroup,
    ResourceKind::Function,
    ResourceKind::FunctionImage,
    ResourceKind::ImageRepository,
    ResourceKind::BatchJobDefinition,
    ResourceKind::BatchJobQueue,
    ResourceKind::BatchComputeEnvironment,
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
            .filter(|(r, a)| *r < rank && !LATE_DELETES.contains(&a.kind))
            .map(|(_, a)| a.clone())
            .collect();
    }
    let present: BTreeSet<Address> = rest.iter().map(|s| s.address.clone()).collect();
    for s in &mut rest {
        s.depends_on.retain(|a| present.contains(a));
        s.depends_on.sort();
        s.depends_on.dedup();
    }
    let rest = topological(rest);
    let (late, deletes): (Vec<Step>, Vec<Step>) = deletes
        .into_iter()
        .partition(|s| LATE_DELETES.contains(&s.address.kind));
    let early: Vec<Address> = deletes.iter().map(|s| s.address.clone()).collect();
    let mut ordered = deletes;
    let mut changed = early.clone();
    for mut s in rest {
        if s.action != Action::NoOp {
            s.depends_on.extend(early.iter().cloned());
            changed.push(s.address.clone());
        }
        ordered.push(s);
    }
    for mut s in late {
        s.depends_on.extend(changed.iter().cloned());
        s.depends_on.sort();
        s.depends_on.dedup();
        ordered.push(s);
    }
    *steps = ordered;
}

/// Kinds whose deletes run after every create and update: a compute environment replaced by
/// one of another type goes only once its queue has moved to the new one.
const LATE_DELETES: [ResourceKind; 1] = [ResourceKind::BatchComputeEnvironment];

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

#[cfg(test)]
mod tests {
    use super::*;

    fn step(kind: ResourceKind, name: &str, action: Action, deps: &[Address]) -> Step {
        Step::bare(kind, name, action, deps)
    }

    #[test]
    fn a_replaced_compute_environment_goes_after_its_queue_moved() {
        let new_ce = Address::new(ResourceKind::BatchComputeEnvironment, "f:fargate");
        let mut steps = vec![
            step(
                ResourceKind::BatchComputeEnvironment,
                "f",
                Action::Delete,
                &[],
            ),
            step(ResourceKind::BatchJobQueue, "f", Action::Update, &[new_ce]),
            step(
                ResourceKind::BatchComputeEnvironment,
                "f:fargate",
                Action::Create,
                &[],
            ),
            step(ResourceKind::IamRole, "r", Action::Delete, &[]),
        ];
        order(&mut steps);
        let names: Vec<String> = steps.iter().map(|s| s.address.to_string()).collect();
        assert_eq!(
            names,
            [
                "iam_role/r",
                "batch_compute_environment/f:fargate",
                "batch_job_queue/f",
                "batch_compute_environment/f",
            ]
        );
        let last = &steps[3];
        assert!(
            last.depends_on
                .contains(&Address::new(ResourceKind::BatchJobQueue, "f"))
        );
        // No early delete waits for a late one (that would deadlock).
        assert!(steps[0].depends_on.is_empty());
    }

    #[test]
    fn destroy_removes_queues_before_their_environments() {
        let mut steps = vec![
            step(
                ResourceKind::BatchComputeEnvironment,
                "f",
                Action::Delete,
                &[],
            ),
            step(ResourceKind::BatchJobQueue, "f", Action::Delete, &[]),
            step(ResourceKind::BatchJobDefinition, "f", Action::Delete, &[]),
            step(ResourceKind::Function, "f", Action::Delete, &[]),
        ];
        order(&mut steps);
        let kinds: Vec<ResourceKind> = steps.iter().map(|s| s.address.kind).collect();
        assert_eq!(
            kinds,
            [
                ResourceKind::Function,
                ResourceKind::BatchJobDefinition,
                ResourceKind::BatchJobQueue,
                ResourceKind::BatchComputeEnvironment,
            ]
        );
        assert!(steps[3].depends_on.contains(&steps[2].address));
    }
}
