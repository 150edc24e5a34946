//! A YAML reader that keeps source positions.
//!
//! Built on the event API of `saphyr-parser` (pure Rust, YAML 1.2). Every node keeps its span,
//! every mapping key its own span, so a JSON Schema error at `/spec/memory` or a semantic check on
//! `spec.input[1].bucket` can point at a line and column. Scalars resolve with the YAML 1.2 core
//! schema: `yes` and `on` stay strings. Duplicate keys, unknown tags, runaway alias expansion and
//! runaway nesting are errors, never panics.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span as YSpan};

use crate::diag::Span;

/// Deepest nesting accepted; far beyond any manifest, well below any stack limit.
const MAX_DEPTH: usize = 64;
/// Most nodes a document may expand to through aliases (a "billion laughs" guard).
const MAX_NODES: usize = 200_000;

/// A YAML value with its span.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The value.
    pub value: NodeValue,
    /// Where it stands in the source.
    pub span: Span,
}

/// The value of a [`Node`], after core-schema resolution.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeValue {
    /// `null`, `~` or nothing.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer or a float.
    Number(serde_json::Number),
    /// Any other scalar.
    String(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in source order, keys unique.
    Map(Vec<(Key, Node)>),
}

/// A mapping key and its span.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    /// The key as a string.
    pub name: String,
    /// Where the key stands.
    pub span: Span,
}

/// A syntax error with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct YamlError {
    /// What is wrong.
    pub message: String,
    /// Where.
    pub span: Span,
}

/// One document of a YAML stream.
#[derive(Debug, Clone, PartialEq)]
pub struct YamlDocument {
    /// The root node.
    pub root: Node,
}

fn span_of(s: &YSpan) -> Span {
    Span {
        line: s.start.line(),
        col: s.start.col() + 1,
        offset: s.start.index(),
        len: s.end.index().saturating_sub(s.start.index()),
    }
}

fn join(start: Span, end: &YSpan) -> Span {
    Span {
        len: end.end.index().saturating_sub(start.offset),
        ..start
    }
}

enum Frame {
    Seq {
        items: Vec<Node>,
        start: Span,
        anchor: usize,
    },
    Map {
        entries: Vec<(Key, Node)>,
        /// Each key's index in `entries`: duplicate keys found in constant time, so a mapping
        /// of many keys loads in linear time.
        index: HashMap<String, usize>,
        key: Option<Key>,
        start: Span,
        anchor: usize,
    },
}

struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, (Node, usize)>,
    nodes: usize,
    root: Option<Node>,
}

impl Builder {
    fn new() -> Self {
        Self {
            stack: Vec::new(),
            anchors: HashMap::new(),
            nodes: 0,
            root: None,
        }
    }

    fn count(&mut self, n: usize, span: Span) -> Result<(), YamlError> {
        self.nodes += n;
        if self.nodes > MAX_NODES {
            return Err(YamlError {
                message: format!("document expands to more than {MAX_NODES} nodes (alias bomb?)"),
                span,
            });
        }
        Ok(())
    }

    fn open(&mut self, frame: Frame, span: Span) -> Result<(), YamlError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(YamlError {
                message: format!("nesting deeper than {MAX_DEPTH} levels"),
                span,
            });
        }
        self.stack.push(frame);
        Ok(())
    }

    fn close(&mut self, end: &YSpan) -> Result<(), YamlError> {
        let (node, anchor) = match self.stack.pop() {
            Some(Frame::Seq {
                items,
                start,
                anchor,
            }) => (
                Node {
                    value: NodeValue::Seq(items),
                    span: join(start, end),
                },
                anchor,
            ),
            Some(Frame::Map {
                entries,
                start,
                anchor,
                ..
            }) => (
                Node {
                    value: NodeValue::Map(entries),
                    span: join(start, end),
                },
                anchor,
            ),
            None => {
                return Err(YamlError {
                    message: "unbalanced collection end".into(),
                    span: span_of(end),
                });
            }
        };
        self.remember(anchor, &node);
        self.emit(node)
    }

    fn remember(&mut self, anchor: usize, node: &Node) {
        if anchor > 0 {
            self.anchors.insert(anchor, (node.clone(), size(node)));
        }
    }

    fn emit(&mut self, node: Node) -> Result<(), YamlError> {
        match self.stack.last_mut() {
            None => {
                self.root = Some(node);
                Ok(())
            }
            Some(Frame::Seq { items, .. }) => {
                items.push(node);
                Ok(())
            }
            Some(Frame::Map {
                entries,
                index,
                key,
                ..
            }) => match key.take() {
                None => {
                    let name = key_name(&node)?;
                    *key = Some(Key {
                        name,
                        span: node.span,
                    });
                    Ok(())
                }
                Some(k) => {
                    if let Some((first, _)) = index.get(&k.name).and_then(|i| entries.get(*i)) {
                        return Err(YamlError {
                            message: format!(
                                "duplicate key `{}` (first defined at line {})",
                                k.name, first.span.line
                            ),
                            span: k.span,
                        });
                    }
                    index.insert(k.name.clone(), entries.len());
                    entries.push((k, node));
                    Ok(())
                }
            },
        }
    }
}

fn size(node: &Node) -> usize {
    1 + match &node.value {
        NodeValue::Seq(items) => items.iter().map(size).sum(),
        NodeValue::Map(entries) => entries.iter().map(|(_, v)| 1 + size(v)).sum(),
        _ => 0,
    }
}

fn key_name(node: &Node) -> Result<String, YamlError> {
    match &node.value {
        NodeValue::String(s) => Ok(s.clone()),
        NodeValue::Number(n) => Ok(n.to_string()),
        NodeValue::Bool(b) => Ok(b.to_string()),
        NodeValue::Null => Ok("null".into()),
        NodeValue::Seq(_) | NodeValue::Map(_) => Err(YamlError {
            message: "mapping keys must be plain scalars".into(),
            span: node.span,
        }),
    }
}

/// Resolves a plain scalar with the YAML 1.2 core schema.
fn resolve_plain(s: &str) -> NodeValue {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return NodeValue::Null,
        "true" | "True" | "TRUE" => return NodeValue::Bool(true),
        "false" | "False" | "FALSE" => return NodeValue::Bool(false),
        _ => {}
    }
    if let Some(n) = resolve_int(s) {
        return NodeValue::Number(n);
    }
    if is_core_float(s)
        && let Some(n) = s.parse::<f64>().ok().and_then(serde_json::Number::from_f64)
    {
        return NodeValue::Number(n);
    }
    NodeValue::String(s.to_owned())
}

fn resolve_int(s: &str) -> Option<serde_json::Number> {
    let (neg, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, body) = if let Some(h) = s.strip_prefix("0x") {
        (16, h)
    } else if let Some(o) = s.strip_prefix("0o") {
        (8, o)
    } else {
        (10, digits)
    };
    if body.is_empty() || !body.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    if radix != 10 {
        return u64::from_str_radix(body, radix).ok().map(Into::into);
    }
    if neg {
        s.parse::<i64>().ok().map(Into::into)
    } else {
        digits.parse::<u64>().ok().map(Into::into)
    }
}

fn is_core_float(s: &str) -> bool {
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let mut parts = mantissa.splitn(2, '.');
    let int = parts.next().unwrap_or("");
    let frac = parts.next();
    let digits = |p: &str| p.chars().all(|c| c.is_ascii_digit());
    let mantissa_ok = match frac {
        Some(f) => digits(int) && digits(f) && !(int.is_empty() && f.is_empty()),
        None => !int.is_empty() && digits(int),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok
}

/// Parses every document of a YAML stream.
///
/// # Errors
/// The first syntax error, duplicate key, unsupported tag or limit breach, with its position.
pub fn parse(text: &str) -> Result<Vec<YamlDocument>, YamlError> {
    let mut parser = Parser::new_from_str(text);
    let mut docs = Vec::new();
    let mut b = Builder::new();
    while let Some(next) = parser.next_event() {
        let (event, yspan) = next.map_err(|e| YamlError {
            message: e.info().to_owned(),
            span: Span {
                line: e.marker().line(),
                col: e.marker().col() + 1,
                offset: e.marker().index(),
                len: 0,
            },
        })?;
        let span = span_of(&yspan);
        match event {
            Event::DocumentStart(_) => b = Builder::new(),
            Event::DocumentEnd => {
                if let Some(root) = b.root.take() {
                    docs.push(YamlDocument { root });
                }
            }
            Event::Scalar(value, style, anchor, tag) => {
                let resolved = match (&tag, style) {
                    (Some(t), _) if !t.is_yaml_core_schema() => {
                        return Err(YamlError {
                            message: format!("YAML tag `{t}` is not supported"),
                            span,
                        });
                    }
                    (Some(t), _) if t.suffix == "str" => NodeValue::String(value.into_owned()),
                    (_, ScalarStyle::Plain) => resolve_plain(&value),
                    _ => NodeValue::String(value.into_owned()),
                };
                b.count(1, span)?;
                let node = Node {
                    value: resolved,
                    span,
                };
                b.remember(anchor, &node);
                b.emit(node)?;
            }
            Event::Alias(id) => {
                let (mut node, n) = b.anchors.get(&id).cloned().ok_or(YamlError {
                    message: "alias refers to an unknown anchor".into(),
                    span,
                })?;
                b.count(n, span)?;
                node.span = span;
                b.emit(node)?;
            }
            Event::SequenceStart(anchor, tag) | Event::MappingStart(anchor, tag)
                if tag.as_ref().is_some_and(|t| !t.is_yaml_core_schema()) =>
            {
                let _ = anchor;
                let t = tag.map(|t| t.to_string()).unwrap_or_default();
                return Err(YamlError {
                    message: format!("YAML tag `{t}` is not supported"),
                    span,
                });
            }
            Event::SequenceStart(anchor, _) => {
                b.count(1, span)?;
                b.open(
                    Frame::Seq {
                        items: Vec::new(),
                        start: span,
                        anchor,
                    },
                    span,
                )?;
            }
            Event::MappingStart(anchor, _) => {
                b.count(1, span)?;
                b.open(
                    Frame::Map {
                        entries: Vec::new(),
                        index: HashMap::new(),
                        key: None,
                        start: span,
                        anchor,
                    },
                    span,
                )?;
            }
            Event::SequenceEnd | Event::MappingEnd => b.close(&yspan)?,
            Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
        }
    }
    Ok(docs)
}

/// Where each JSON pointer of a converted document stands in the source.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpanIndex {
    entries: HashMap<String, (Option<Span>, Span)>,
    /// Pointers whose value was written in another file than the document's (an overlay's
    /// patch merged into a base document), with that file.
    files: HashMap<String, std::path::PathBuf>,
}

impl SpanIndex {
    /// The span of the value at `pointer` (`""` is the root, `/spec/memory` a field).
    #[must_use]
    pub fn value(&self, pointer: &str) -> Option<Span> {
        self.entries.get(pointer).map(|e| e.1)
    }

    /// The span of the key at `pointer`, or of the value when there is no key (list items).
    #[must_use]
    pub fn key(&self, pointer: &str) -> Option<Span> {
        self.entries.get(pointer).map(|e| e.0.unwrap_or(e.1))
    }

    /// The span of `pointer`, or of the nearest ancestor that exists.
    #[must_use]
    pub fn nearest(&self, pointer: &str) -> Option<Span> {
        self.nearest_pointer(pointer).and_then(|p| self.value(p))
    }

    /// `pointer`, or its nearest ancestor that has a span.
    #[must_use]
    pub fn nearest_pointer<'a>(&self, pointer: &'a str) -> Option<&'a str> {
        let mut p = pointer;
        loop {
            if self.entries.contains_key(p) {
                return Some(p);
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => return None,
            }
        }
    }

    /// The file the value at `pointer` was written in, when it is not the document's own.
    #[must_use]
    pub fn file(&self, pointer: &str) -> Option<&std::path::Path> {
        self.files.get(pointer).map(std::path::PathBuf::as_path)
    }

    /// Makes the value at `pointer`, and everything below it, come from `other` (the same
    /// pointers in a patch written in `file`): what a merge that replaced the value there
    /// must record, so that a problem in it is shown where it was written.
    pub fn graft(&mut self, pointer: &str, other: &SpanIndex, file: &std::path::Path) {
        self.remove(pointer);
        for (p, e) in other.entries.iter().filter(|(p, _)| under(pointer, p)) {
            self.entries.insert(p.clone(), *e);
            let from = other.file(p).unwrap_or(file);
            self.files.insert(p.clone(), from.to_path_buf());
        }
    }

    /// Forgets the value at `pointer` and everything below it (a merge removed it).
    pub fn remove(&mut self, pointer: &str) {
        self.entries.retain(|p, _| !under(pointer, p));
        self.files.retain(|p, _| !under(pointer, p));
    }
}

/// True when `p` is `pointer` or a pointer below it.
fn under(pointer: &str, p: &str) -> bool {
    p.strip_prefix(pointer)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Escapes one JSON pointer segment (RFC 6901).
#[must_use]
pub fn escape_segment(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

/// Converts a node to a JSON value and records the span of every pointer.
#[must_use]
pub fn to_json(node: &Node) -> (serde_json::Value, SpanIndex) {
    let mut index = SpanIndex::default();
    let value = convert(node, String::new(), None, &mut index);
    (value, index)
}

fn convert(
    node: &Node,
    ptr: String,
    key: Option<Span>,
    index: &mut SpanIndex,
) -> serde_json::Value {
    use serde_json::Value;
    let v = match &node.value {
        NodeValue::Null => Value::Null,
        NodeValue::Bool(b) => Value::Bool(*b),
        NodeValue::Number(n) => Value::Number(n.clone()),
        NodeValue::String(s) => Value::String(s.clone()),
        NodeValue::Seq(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, n)| convert(n, format!("{ptr}/{i}"), None, index))
                .collect(),
        ),
        NodeValue::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, n)| {
                    let p = format!("{ptr}/{}", escape_segment(&k.name));
                    (k.name.clone(), convert(n, p, Some(k.span), index))
                })
                .collect(),
        ),
    };
    index.entries.insert(ptr, (key, node.span));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> serde_json::Value {
        let docs = parse(text).expect("parses");
        to_json(&docs[0].root).0
    }

    #[test]
    fn core_schema_keeps_yes_a_string() {
        let v = one("a: yes\nb: true\nc: 012\nd: 1.5\ne: ~\nf: '1'\ng: 0x1f\nh: -3\ni: 1e3\n");
        assert_eq!(
            v,
            serde_json::json!({"a":"yes","b":true,"c":12,"d":1.5,"e":null,"f":"1","g":31,"h":-3,"i":1000.0})
        );
    }

    #[test]
    fn spans_point_at_keys_and_values() {
        let docs = parse("kind: Function\nspec:\n  memory: 64\n").expect("parses");
        let (_, idx) = to_json(&docs[0].root);
        let v = idx.value("/spec/memory").expect("value span");
        assert_eq!((v.line, v.col, v.len), (3, 11, 2));
        let k = idx.key("/spec/memory").expect("key span");
        assert_eq!((k.line, k.col), (3, 3));
        assert_eq!(idx.nearest("/spec/nothing/deeper").map(|s| s.line), Some(3));
    }

    #[test]
    fn several_documents_and_empty_ones() {
        let docs = parse("a: 1\n---\n# only a comment\n---\nb: 2\n").expect("parses");
        let roots: Vec<_> = docs.iter().map(|d| to_json(&d.root).0).collect();
        assert_eq!(roots.len(), 3);
        assert_eq!(roots[1], serde_json::Value::Null);
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let e = parse("a: 1\nb: 2\na: 3\n").expect_err("duplicate");
        assert_eq!(e.span.line, 3);
        assert!(e.message.contains("duplicate key `a`"), "{}", e.message);
    }

    #[test]
    fn alias_bomb_is_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..8 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let e = parse(&text).expect_err("bomb");
        assert!(e.message.contains("alias bomb"), "{}", e.message);
    }

    #[test]
    fn deep_nesting_is_refused() {
        let text = "[".repeat(200);
        assert!(parse(&text).is_err());
    }

    #[test]
    fn custom_tags_are_refused() {
        let e = parse("a: !Ref x\n").expect_err("tag");
        assert!(e.message.contains("not supported"), "{}", e.message);
        assert_eq!(one("a: !!str 12\n"), serde_json::json!({"a": "12"}));
    }
}
