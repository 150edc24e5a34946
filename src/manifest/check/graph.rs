//! The trigger graph: which function's outputs start which function, read from the inputs and
//! outputs of every Function. It proves each Workflow edge, and rejects self-triggers, cycles
//! and overlapping notification rules on one bucket (S3 rejects those only at apply time).

use std::collections::{BTreeSet, HashMap};

use crate::diag::{Diagnostic, Diagnostics};
use crate::manifest::Doc;
use crate::manifest::load::{ManifestSet, suggest};
use crate::manifest::resolve::DEFAULT_EVENTS;
use crate::manifest::types::{InputSpec, OutputSpec, S3Input, WorkflowManifest};

/// S3 event types a bucket notification accepts.
const EVENTS: &[&str] = &[
    "s3:ObjectCreated:*",
    "s3:ObjectCreated:Put",
    "s3:ObjectCreated:Post",
    "s3:ObjectCreated:Copy",
    "s3:ObjectCreated:CompleteMultipartUpload",
    "s3:ObjectRemoved:*",
    "s3:ObjectRemoved:Delete",
    "s3:ObjectRemoved:DeleteMarkerCreated",
    "s3:ObjectRestore:*",
    "s3:ObjectRestore:Post",
    "s3:ObjectRestore:Completed",
    "s3:ObjectRestore:Delete",
    "s3:ObjectTagging:*",
    "s3:ObjectTagging:Put",
    "s3:ObjectTagging:Delete",
    "s3:ObjectAcl:Put",
    "s3:LifecycleExpiration:*",
    "s3:LifecycleExpiration:Delete",
    "s3:LifecycleExpiration:DeleteMarkerCreated",
    "s3:LifecycleTransition",
    "s3:IntelligentTiering",
    "s3:ReducedRedundancyLostObject",
    "s3:Replication:*",
    "s3:Replication:OperationFailedReplication",
    "s3:Replication:OperationMissedThreshold",
    "s3:Replication:OperationReplicatedAfterThreshold",
    "s3:Replication:OperationNotTracked",
];

/// True for an event type S3 accepts.
#[must_use]
pub fn is_known_event(e: &str) -> bool {
    EVENTS.contains(&e)
}

fn events(i: &S3Input) -> Vec<&str> {
    match &i.events {
        Some(e) => e.iter().map(String::as_str).collect(),
        None => DEFAULT_EVENTS.to_vec(),
    }
}

/// Two event types overlap when equal or when one is the wildcard of the other's family.
fn events_overlap(a: &str, b: &str) -> bool {
    let covers = |w: &str, e: &str| w.strip_suffix('*').is_some_and(|stem| e.starts_with(stem));
    a == b || covers(a, b) || covers(b, a)
}

fn prefixes_overlap(a: Option<&str>, b: Option<&str>) -> bool {
    let (a, b) = (a.unwrap_or(""), b.unwrap_or(""));
    a.starts_with(b) || b.starts_with(a)
}

fn suffixes_overlap(a: Option<&str>, b: Option<&str>) -> bool {
    let (a, b) = (a.unwrap_or(""), b.unwrap_or(""));
    a.ends_with(b) || b.ends_with(a)
}

/// True when files uploaded by `o` can start `i`: same bucket in the stack's own S3, key
/// spaces that meet, and an input that listens to object creation.
#[must_use]
pub fn feeds(o: &OutputSpec, i: &InputSpec) -> bool {
    let Some(i) = i.s3() else {
        return false;
    };
    if o.provider.is_some() || o.bucket != i.bucket {
        return false;
    }
    if !prefixes_overlap(o.prefix.as_deref(), i.prefix.as_deref()) {
        return false;
    }
    if o.prefix.as_deref().unwrap_or("").len() < i.prefix.as_deref().unwrap_or("").len() {
        // Output files land at `<output prefix><path under TMP_OUTPUT_DIR>`; a longer input
        // prefix is met only by paths that start with the rest of it, which the output
        // filter's prefixes (matched against that path) may rule out.
        let rest = &i.prefix.as_deref().unwrap_or("")[o.prefix.as_deref().unwrap_or("").len()..];
        if let Some(f) = &o.filter
            && !f.prefix.is_empty()
            && !f
                .prefix
                .iter()
                .any(|p| p.starts_with(rest) || rest.starts_with(p.as_str()))
        {
            return false;
        }
    }
    if let (Some(suffix), Some(f)) = (&i.suffix, &o.filter)
        && !f.suffix.is_empty()
        && !f
            .suffix
            .iter()
            .any(|s| suffixes_overlap(Some(s), Some(suffix)))
    {
        return false;
    }
    events(i)
        .iter()
        .any(|e| events_overlap(e, "s3:ObjectCreated:Put"))
}

/// True when an object `key` created in `bucket` starts the function input `i`: S3's own
/// notification rule (the bucket, the key's prefix and suffix, an object-creation event).
#[must_use]
pub fn fires(i: &InputSpec, bucket: &str, key: &str) -> bool {
    let Some(i) = i.s3() else {
        return false;
    };
    i.bucket == bucket
        && key.starts_with(i.prefix.as_deref().unwrap_or(""))
        && key.ends_with(i.suffix.as_deref().unwrap_or(""))
        && events(i)
            .iter()
            .any(|e| events_overlap(e, "s3:ObjectCreated:Put"))
}

fn key_space(bucket: &str, prefix: Option<&str>) -> String {
    format!("s3://{bucket}/{}", prefix.unwrap_or(""))
}

/// One edge of the trigger graph: function `from`'s output feeds function `to`'s input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Edge {
    from: usize,
    to: usize,
    output: usize,
    input: usize,
}

fn trigger_edges(set: &ManifestSet) -> Vec<Edge> {
    let mut edges = Vec::new();
    for (a, fa) in set.functions.iter().enumerate() {
        for (oi, o) in fa.value.spec.output.iter().enumerate() {
            for (b, fb) in set.functions.iter().enumerate() {
                for (ii, i) in fb.value.spec.input.iter().enumerate() {
                    if feeds(o, i) {
                        edges.push(Edge {
                            from: a,
                            to: b,
                            output: oi,
                            input: ii,
                        });
                    }
                }
            }
        }
    }
    edges
}

pub(super) fn check(set: &ManifestSet, out: &mut Diagnostics) {
    overlapping_triggers(set, out);
    let edges = trigger_edges(set);
    for e in edges.iter().filter(|e| e.from == e.to) {
        let f = &set.functions[e.from];
        let o = &f.value.spec.output[e.output];
        let Some(i) = f.value.spec.input[e.input].s3() else {
            continue;
        };
        out.push(
            Diagnostic::error(format!(
                "function `{}` triggers itself: its output {} lands in its own input {}",
                f.value.metadata.name,
                key_space(&o.bucket, o.prefix.as_deref()),
                key_space(&i.bucket, i.prefix.as_deref()),
            ))
            .at(f.key_at(&format!("/spec/output/{}", e.output)))
            .field(format!("spec.output[{}]", e.output))
            .related(
                f.key_at(&format!("/spec/input/{}", e.input)),
                "the input it triggers",
            )
            .hint("write outputs under a prefix (or bucket) the input does not watch"),
        );
    }
    cycles(set, &edges, out);
    let mut names: HashMap<&str, &Doc<WorkflowManifest>> = HashMap::new();
    for w in &set.workflows {
        if let Some(first) = names.get(w.value.metadata.name.as_str()) {
            out.push(
                Diagnostic::error(format!(
                    "duplicate workflow name `{}`",
                    w.value.metadata.name
                ))
                .at(w.at("/metadata/name"))
                .field("metadata.name")
                .related(first.at("/metadata/name"), "first defined here"),
            );
        } else {
            names.insert(&w.value.metadata.name, w);
        }
        workflow(set, w, &edges, out);
    }
}

fn overlapping_triggers(set: &ManifestSet, out: &mut Diagnostics) {
    let triggers: Vec<(usize, usize, &S3Input)> = set
        .functions
        .iter()
        .enumerate()
        .flat_map(|(fi, f)| {
            f.value
                .spec
                .input
                .iter()
                .enumerate()
                .filter_map(move |(ii, i)| Some((fi, ii, i.s3()?)))
        })
        .collect();
    for (n, &(fa, ia, a)) in triggers.iter().enumerate() {
        for &(fb, ib, b) in &triggers[n + 1..] {
            let clash = a.bucket == b.bucket
                && prefixes_overlap(a.prefix.as_deref(), b.prefix.as_deref())
                && suffixes_overlap(a.suffix.as_deref(), b.suffix.as_deref())
                && events(a)
                    .iter()
                    .any(|x| events(b).iter().any(|y| events_overlap(x, y)));
            if clash {
                let (da, db) = (&set.functions[fa], &set.functions[fb]);
                out.push(
                    Diagnostic::error(format!(
                        "trigger overlaps the trigger of `{}` on bucket `{}` for the same events",
                        da.value.metadata.name, b.bucket
                    ))
                    .at(db.key_at(&format!("/spec/input/{ib}")))
                    .field(format!("spec.input[{ib}]"))
                    .related(da.key_at(&format!("/spec/input/{ia}")), "the other trigger")
                    .hint("S3 rejects overlapping prefix/suffix rules: make one prefix or suffix disjoint from the other"),
                );
            }
        }
    }
}

/// Reports every strongly connected group of two or more functions (Tarjan's algorithm).
fn cycles(set: &ManifestSet, edges: &[Edge], out: &mut Diagnostics) {
    let n = set.functions.len();
    let mut adj = vec![BTreeSet::new(); n];
    for e in edges.iter().filter(|e| e.from != e.to) {
        adj[e.from].insert(e.to);
    }
    struct T {
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        groups: Vec<Vec<usize>>,
    }
    fn visit(v: usize, adj: &[BTreeSet<usize>], t: &mut T) {
        t.index[v] = Some(t.next);
        t.low[v] = t.next;
        t.next += 1;
        t.stack.push(v);
        t.on[v] = true;
        for &w in &adj[v] {
            match t.index[w] {
                None => {
                    visit(w, adj, t);
                    t.low[v] = t.low[v].min(t.low[w]);
                }
                Some(iw) if t.on[w] => t.low[v] = t.low[v].min(iw),
                Some(_) => {}
            }
        }
        if Some(t.low[v]) == t.index[v] {
            let mut group = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on[w] = false;
                group.push(w);
                if w == v {
                    break;
                }
            }
            if group.len() > 1 {
                t.groups.push(group);
            }
        }
    }
    let mut t = T {
        index: vec![None; n],
        low: vec![0; n],
        on: vec![false; n],
        stack: Vec::new(),
        next: 0,
        groups: Vec::new(),
    };
    for v in 0..n {
        if t.index[v].is_none() {
            visit(v, &adj, &mut t);
        }
    }
    for mut group in t.groups {
        group.sort_by_key(|&i| set.functions[i].value.metadata.name.clone());
        let names: Vec<&str> = group
            .iter()
            .map(|&i| set.functions[i].value.metadata.name.as_str())
            .collect();
        let first = &set.functions[group[0]];
        out.push(
            Diagnostic::error(format!(
                "functions {} trigger each other in a cycle",
                names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
            ))
            .at(first.at("/metadata/name"))
            .field("metadata.name")
            .hint("every object would run the pipeline forever: break the cycle with a prefix no upstream function writes to"),
        );
    }
}

fn workflow(set: &ManifestSet, w: &Doc<WorkflowManifest>, edges: &[Edge], out: &mut Diagnostics) {
    let spec = &w.value.spec;
    let index_of = |name: &str| {
        set.functions
            .iter()
            .position(|f| f.value.metadata.name == name)
    };
    let mut stage_fns: Vec<Option<usize>> = Vec::new();
    for (i, stage) in spec.stages.iter().enumerate() {
        let pointer = format!("/spec/stages/{i}");
        if spec.stages[..i].contains(stage) {
            out.push(
                Diagnostic::error(format!("stage `{stage}` is listed twice"))
                    .at(w.at(&pointer))
                    .field(format!("spec.stages[{i}]")),
            );
        }
        let found = index_of(stage);
        if found.is_none() {
            let names = set.functions.iter().map(|f| f.value.metadata.name.as_str());
            out.push(
                Diagnostic::error(format!("stage `{stage}` names no Function of this stack"))
                    .at(w.at(&pointer))
                    .field(format!("spec.stages[{i}]"))
                    .hint(match suggest(stage, names) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => "stages are Function names (metadata.name)".into(),
                    }),
            );
        }
        stage_fns.push(found);
    }
    let pos = |name: &str| spec.stages.iter().position(|s| s == name);
    let declared: Vec<(String, String, Option<String>, String)> = match &spec.edges {
        Some(list) => list
            .iter()
            .enumerate()
            .map(|(i, e)| {
                (
                    e.from.clone(),
                    e.to.clone(),
                    e.bucket.clone(),
                    format!("/spec/edges/{i}"),
                )
            })
            .collect(),
        None => spec
            .stages
            .windows(2)
            .enumerate()
            .map(|(i, p)| {
                (
                    p[0].clone(),
                    p[1].clone(),
                    None,
                    format!("/spec/stages/{}", i + 1),
                )
            })
            .collect(),
    };
    for (from, to, bucket, pointer) in &declared {
        let field = crate::manifest::load::field_path(pointer);
        let (Some(pf), Some(pt)) = (pos(from), pos(to)) else {
            for name in [from, to] {
                if pos(name).is_none() {
                    out.push(
                        Diagnostic::error(format!("edge names `{name}`, which is not a stage"))
                            .at(w.at(pointer))
                            .field(field.clone())
                            .hint("list the function under `stages` first"),
                    );
                }
            }
            continue;
        };
        if pf >= pt {
            out.push(
                Diagnostic::error(format!(
                    "edge `{from}` -> `{to}` goes against the stage order"
                ))
                .at(w.at(pointer))
                .field(field.clone())
                .hint("stages are listed upstream first"),
            );
            continue;
        }
        let (Some(a), Some(b)) = (stage_fns[pf], stage_fns[pt]) else {
            continue;
        };
        let backed = edges.iter().any(|e| {
            e.from == a
                && e.to == b
                && bucket.as_ref().is_none_or(|bk| {
                    set.functions[b].value.spec.input[e.input]
                        .s3()
                        .is_some_and(|i| i.bucket == *bk)
                })
        });
        if !backed {
            let outs: Vec<String> = set.functions[a]
                .value
                .spec
                .output
                .iter()
                .map(|o| key_space(&o.bucket, o.prefix.as_deref()))
                .collect();
            let ins: Vec<String> = set.functions[b]
                .value
                .spec
                .input
                .iter()
                .filter_map(InputSpec::s3)
                .map(|i| key_space(&i.bucket, i.prefix.as_deref()))
                .collect();
            out.push(
                Diagnostic::error(format!(
                    "edge `{from}` -> `{to}` is not backed: no output of `{from}` triggers an input of `{to}`"
                ))
                .at(w.at(pointer))
                .field(field)
                .related(set.functions[a].key_at("/spec/output"), format!("outputs of `{from}`: {}", list(&outs)))
                .related(set.functions[b].key_at("/spec/input"), format!("inputs of `{to}`: {}", list(&ins)))
                .hint(format!(
                    "make an output of `{from}` write under a prefix an input of `{to}` watches"
                )),
            );
        }
    }
    for e in edges.iter().filter(|e| e.from != e.to) {
        let (Some(pf), Some(pt)) = (
            stage_fns.iter().position(|s| *s == Some(e.from)),
            stage_fns.iter().position(|s| *s == Some(e.to)),
        ) else {
            continue;
        };
        let (from, to) = (&spec.stages[pf], &spec.stages[pt]);
        if !declared.iter().any(|(f, t, _, _)| f == from && t == to) {
            out.push(
                Diagnostic::warning(format!(
                    "`{from}` triggers `{to}`, but the workflow does not declare that edge"
                ))
                .at(w.at("/metadata/name"))
                .field("spec.edges")
                .hint("declare it under `edges`, or change the prefixes if it is unintended"),
            );
        }
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(bucket: &str, prefix: Option<&str>, suffix: Option<&str>) -> InputSpec {
        InputSpec::S3(S3Input {
            bucket: bucket.into(),
            prefix: prefix.map(Into::into),
            suffix: suffix.map(Into::into),
            events: None,
            queue: None,
        })
    }

    fn output(bucket: &str, prefix: Option<&str>) -> OutputSpec {
        OutputSpec {
            bucket: bucket.into(),
            prefix: prefix.map(Into::into),
            provider: None,
            filter: None,
        }
    }

    #[test]
    fn outputs_feed_inputs_whose_key_space_they_meet() {
        assert!(feeds(
            &output("b", Some("split/")),
            &input("b", Some("split/"), None)
        ));
        assert!(feeds(
            &output("b", Some("split/x/")),
            &input("b", Some("split/"), None)
        ));
        assert!(!feeds(
            &output("b", Some("out/")),
            &input("b", Some("in/"), None)
        ));
        assert!(!feeds(
            &output("c", Some("in/")),
            &input("b", Some("in/"), None)
        ));
    }

    #[test]
    fn filters_can_rule_an_edge_out() {
        let mut o = output("b", Some("x/"));
        o.filter = Some(crate::manifest::types::OutputFilter {
            prefix: vec![],
            suffix: vec![".txt".into()],
        });
        assert!(!feeds(&o, &input("b", Some("x/"), Some(".jpg"))));
        assert!(feeds(&o, &input("b", Some("x/"), Some(".txt"))));
    }

    #[test]
    fn wildcard_events_overlap_their_family() {
        assert!(events_overlap("s3:ObjectCreated:*", "s3:ObjectCreated:Put"));
        assert!(!events_overlap(
            "s3:ObjectCreated:*",
            "s3:ObjectRemoved:Delete"
        ));
    }
}
