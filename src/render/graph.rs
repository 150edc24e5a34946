//! A stack's workflow as a picture: functions, the S3 locations that trigger them and that
//! they write to, HTTP entry points and Batch delegation, as Mermaid (GitHub renders it in
//! Markdown) or Graphviz DOT. Pure: built from a validated manifest set.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::manifest::check::feeds;
use crate::manifest::load::ManifestSet;
use crate::manifest::resolve;
use crate::manifest::types::{ComputeType, Execution, InputSpec};

/// What a node stands for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum NodeKind {
    Function,
    Location,
    Http,
    Batch,
}

#[derive(Debug, Clone)]
struct Node {
    kind: NodeKind,
    label: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Edge {
    from: String,
    to: String,
    label: String,
    /// Delegation and "also matches" edges are drawn dashed.
    dashed: bool,
}

/// The graph of a stack.
#[derive(Debug, Default)]
pub struct Graph {
    nodes: BTreeMap<String, Node>,
    edges: Vec<Edge>,
}

fn location(bucket: &str, prefix: Option<&str>) -> (String, String) {
    let prefix = prefix.unwrap_or("");
    (
        format!("s3:{bucket}/{prefix}"),
        format!("s3://{bucket}/{prefix}"),
    )
}

/// Builds the graph of a validated set.
#[must_use]
pub fn build(set: &ManifestSet) -> Graph {
    let mut g = Graph::default();
    let stack = set.stack().map(|s| &s.value.spec);
    for f in &set.functions {
        let name = &f.value.metadata.name;
        let spec = &f.value.spec;
        let eff = resolve::effective(stack, spec);
        let id = format!("fn:{name}");
        let mode = match eff.execution {
            Execution::Lambda => "Lambda",
            Execution::Batch => "Batch",
            Execution::LambdaBatch => "Lambda + Batch",
        };
        g.nodes.insert(
            id.clone(),
            Node {
                kind: NodeKind::Function,
                label: format!("{name}<br/>{mode}"),
            },
        );
        for i in spec.input.iter().filter_map(InputSpec::s3) {
            let (loc, label) = location(&i.bucket, i.prefix.as_deref());
            g.nodes.insert(
                loc.clone(),
                Node {
                    kind: NodeKind::Location,
                    label,
                },
            );
            // A queued input's events pass through its queue: said on the edge.
            let label = [
                i.suffix.as_ref().map(|s| format!("*{s}")),
                i.queue.as_ref().map(|_| "queued".to_owned()),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(", ");
            g.edges.push(Edge {
                from: loc,
                to: id.clone(),
                label,
                dashed: false,
            });
        }
        for o in &spec.output {
            let (loc, label) = match &o.provider {
                Some(p) => (
                    format!("{p}:{}/{}", o.bucket, o.prefix.as_deref().unwrap_or("")),
                    format!("{p}: {}/{}", o.bucket, o.prefix.as_deref().unwrap_or("")),
                ),
                None => location(&o.bucket, o.prefix.as_deref()),
            };
            g.nodes.insert(
                loc.clone(),
                Node {
                    kind: NodeKind::Location,
                    label,
                },
            );
            let filter = o
                .filter
                .as_ref()
                .map(|f| {
                    f.prefix
                        .iter()
                        .map(|p| format!("{p}*"))
                        .chain(f.suffix.iter().map(|s| format!("*{s}")))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            g.edges.push(Edge {
                from: id.clone(),
                to: loc,
                label: filter,
                dashed: false,
            });
        }
        if let Some(h) = &spec.http {
            let http = format!("http:{name}");
            g.nodes.insert(
                http.clone(),
                Node {
                    kind: NodeKind::Http,
                    label: format!(
                        "HTTPS /{}",
                        h.stage
                            .as_deref()
                            .unwrap_or(crate::manifest::names::DEFAULT_STAGE)
                    ),
                },
            );
            g.edges.push(Edge {
                from: http,
                to: id.clone(),
                label: String::new(),
                dashed: false,
            });
        }
        if eff.execution.delegates()
            && let Some(b) = &eff.batch
        {
            batch_node(&mut g, name, &id, b);
        }
    }
    // An output location that triggers an input at another (longer or shorter) prefix.
    for up in &set.functions {
        for o in &up.value.spec.output {
            for down in &set.functions {
                for input in &down.value.spec.input {
                    let Some(i) = input.s3() else {
                        continue;
                    };
                    let (from, _) = location(&o.bucket, o.prefix.as_deref());
                    let (to, _) = location(&i.bucket, i.prefix.as_deref());
                    if from != to && feeds(o, input) {
                        g.edges.push(Edge {
                            from,
                            to,
                            label: "matches".into(),
                            dashed: true,
                        });
                    }
                }
            }
        }
    }
    g.edges.sort();
    g.edges.dedup();
    g
}

/// The Batch node of a delegating function `name` (node `id`), and its dashed edge.
fn batch_node(g: &mut Graph, name: &str, id: &str, b: &crate::manifest::types::BatchSpec) {
    let batch = format!("batch:{name}");
    let kind = b
        .compute
        .as_ref()
        .and_then(|c| c.kind)
        .unwrap_or(ComputeType::Ec2);
    let mut label = format!(
        "AWS Batch {}<br/>{} vCPU, {} MiB",
        kind.as_str(),
        b.vcpus.unwrap_or(resolve::DEFAULT_BATCH_VCPUS),
        b.memory.unwrap_or(resolve::DEFAULT_BATCH_MEMORY)
    );
    if let Some(gpu) = b.gpu.filter(|g| *g > 0) {
        let _ = write!(label, ", {gpu} GPU");
    }
    if let Some(m) = &b.multi_node {
        let _ = write!(label, ", {} nodes", m.nodes);
    }
    g.nodes.insert(
        batch.clone(),
        Node {
            kind: NodeKind::Batch,
            label,
        },
    );
    g.edges.push(Edge {
        from: id.to_owned(),
        to: batch,
        label: "delegates".into(),
        dashed: true,
    });
}

/// Node ids both formats accept: `n0`, `n1`... in the order of the sorted keys.
fn ids(g: &Graph) -> BTreeMap<&str, String> {
    g.nodes
        .keys()
        .enumerate()
        .map(|(i, k)| (k.as_str(), format!("n{i}")))
        .collect()
}

fn mermaid_text(s: &str) -> String {
    s.replace('"', "#quot;")
}

impl Graph {
    /// Mermaid `flowchart LR`.
    #[must_use]
    pub fn mermaid(&self) -> String {
        let ids = ids(self);
        let mut out = String::from("flowchart LR\n");
        for (key, node) in &self.nodes {
            let id = &ids[key.as_str()];
            let label = mermaid_text(&node.label);
            let _ = match node.kind {
                NodeKind::Function => writeln!(out, "  {id}[\"{label}\"]"),
                NodeKind::Location => writeln!(out, "  {id}[(\"{label}\")]"),
                NodeKind::Http => writeln!(out, "  {id}([\"{label}\"])"),
                NodeKind::Batch => writeln!(out, "  {id}[[\"{label}\"]]"),
            };
        }
        for e in &self.edges {
            let (from, to) = (&ids[e.from.as_str()], &ids[e.to.as_str()]);
            let arrow = if e.dashed { "-.->" } else { "-->" };
            if e.label.is_empty() {
                let _ = writeln!(out, "  {from} {arrow} {to}");
            } else {
                let _ = writeln!(out, "  {from} {arrow}|\"{}\"| {to}", mermaid_text(&e.label));
            }
        }
        out
    }

    /// Graphviz DOT.
    #[must_use]
    pub fn dot(&self) -> String {
        let ids = ids(self);
        let quote = |s: &str| {
            s.replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace("<br/>", "\\n")
        };
        let mut out =
            String::from("digraph scar {\n  rankdir=LR;\n  node [fontname=\"Helvetica\"];\n");
        for (key, node) in &self.nodes {
            let shape = match node.kind {
                NodeKind::Function => "box, style=rounded",
                NodeKind::Location => "cylinder",
                NodeKind::Http => "oval",
                NodeKind::Batch => "box3d",
            };
            let _ = writeln!(
                out,
                "  {} [label=\"{}\", shape={shape}];",
                ids[key.as_str()],
                quote(&node.label)
            );
        }
        for e in &self.edges {
            let mut attrs = Vec::new();
            if !e.label.is_empty() {
                attrs.push(format!("label=\"{}\"", quote(&e.label)));
            }
            if e.dashed {
                attrs.push("style=dashed".to_owned());
            }
            let attrs = if attrs.is_empty() {
                String::new()
            } else {
                format!(" [{}]", attrs.join(", "))
            };
            let _ = writeln!(
                out,
                "  {} -> {}{attrs};",
                ids[e.from.as_str()],
                ids[e.to.as_str()]
            );
        }
        out.push_str("}\n");
        out
    }
}
