//! JSON Schemas generated from the manifest types, and validation against them.
//!
//! The schemas are made at run time from the Rust types (schemars), so the validator can never
//! disagree with the types. `schemas/*.json` are the same schemas committed for editors;
//! `tests/it/schemas.rs` fails when the committed files drift from the types.

use std::sync::OnceLock;

use jsonschema::error::ValidationErrorKind;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use super::types::{FunctionManifest, OverlayManifest, StackManifest, WorkflowManifest};

/// The manifest kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// `kind: Stack`
    Stack,
    /// `kind: Function`
    Function,
    /// `kind: Workflow`
    Workflow,
    /// `kind: Overlay` (only in an `overlay.yaml`)
    Overlay,
}

impl Kind {
    /// Every kind, in documentation order.
    pub const ALL: [Kind; 4] = [Kind::Stack, Kind::Function, Kind::Workflow, Kind::Overlay];

    /// The `kind:` string.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Stack => "Stack",
            Kind::Function => "Function",
            Kind::Workflow => "Workflow",
            Kind::Overlay => "Overlay",
        }
    }

    /// Parses a `kind:` string.
    #[must_use]
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The schema file name under `schemas/`.
    #[must_use]
    pub fn file_name(self) -> &'static str {
        match self {
            Kind::Stack => "stack.json",
            Kind::Function => "function.json",
            Kind::Workflow => "workflow.json",
            Kind::Overlay => "overlay.json",
        }
    }
}

fn settings() -> SchemaSettings {
    SchemaSettings::draft2020_12()
}

/// The schema of one kind, as JSON.
#[must_use]
pub fn schema_for(kind: Kind) -> Value {
    let generator = settings().into_generator();
    let schema = match kind {
        Kind::Stack => generator.into_root_schema_for::<StackManifest>(),
        Kind::Function => generator.into_root_schema_for::<FunctionManifest>(),
        Kind::Workflow => generator.into_root_schema_for::<WorkflowManifest>(),
        Kind::Overlay => generator.into_root_schema_for::<OverlayManifest>(),
    };
    let mut v = schema.to_value();
    strip_null(&mut v);
    v
}

/// One schema for any scar manifest, dispatching on `kind`: the one to name in an editor
/// modeline (`# yaml-language-server: $schema=.../schemas/manifest.json`).
#[must_use]
pub fn manifest_schema() -> Value {
    let mut generator = settings().into_generator();
    let refs = [
        ("Stack", generator.subschema_for::<StackManifest>()),
        ("Function", generator.subschema_for::<FunctionManifest>()),
        ("Workflow", generator.subschema_for::<WorkflowManifest>()),
        ("Overlay", generator.subschema_for::<OverlayManifest>()),
    ];
    let all_of: Vec<Value> = refs
        .iter()
        .map(|(kind, r)| {
            json!({
                "if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
                "then": r.clone().to_value(),
            })
        })
        .collect();
    let defs: Map<String, Value> = generator.take_definitions(true);
    let mut v = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "scar manifest",
        "description": "Any scar manifest (Stack, Function, Workflow or Overlay), chosen by `kind`.",
        "type": "object",
        "required": ["apiVersion", "kind"],
        "properties": {
            "apiVersion": {"const": super::types::API_VERSION},
            "kind": {"enum": ["Stack", "Function", "Workflow", "Overlay"]},
        },
        "allOf": all_of,
        "$defs": defs,
    });
    strip_null(&mut v);
    v
}

/// Every committed schema file: name and pretty JSON text with a final newline.
#[must_use]
pub fn files() -> Vec<(&'static str, String)> {
    let mut out: Vec<(&'static str, String)> = Kind::ALL
        .into_iter()
        .map(|k| (k.file_name(), pretty(&schema_for(k))))
        .collect();
    out.push(("manifest.json", pretty(&manifest_schema())));
    out
}

fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).expect("invariant: a JSON value always serialises");
    s.push('\n');
    s
}

/// Removes `null` alternatives that schemars adds for `Option<T>`: in a manifest, an optional
/// field is left out, never written as `null`, and the error for `memory: ~` should say
/// "expected integer" rather than "not valid under any of the schemas".
fn strip_null(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if let Some(Value::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types.remove(0);
                    map.insert("type".into(), only);
                }
            }
            for key in ["anyOf", "oneOf"] {
                let Some(Value::Array(branches)) = map.get_mut(key) else {
                    continue;
                };
                branches.retain(|b| b.get("type").and_then(Value::as_str) != Some("null"));
                if branches.len() == 1 {
                    let only = branches.remove(0);
                    map.remove(key);
                    if let Value::Object(inner) = only {
                        for (k, val) in inner {
                            map.entry(k).or_insert(val);
                        }
                    }
                }
            }
            if map.get("default") == Some(&Value::Null) {
                map.remove("default");
            }
            map.values_mut().for_each(strip_null);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_null),
        _ => {}
    }
}

/// What a schema check found wrong, with the JSON pointer of the offending value.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaIssue {
    /// JSON pointer into the document, such as `/spec/memory`.
    pub pointer: String,
    /// What went wrong.
    pub problem: Problem,
}

/// The kinds of schema problem scar words by itself; the rest keep the validator's message.
#[derive(Debug, Clone, PartialEq)]
pub enum Problem {
    /// Fields the schema does not know, with the fields it does know there.
    UnknownFields {
        /// The unknown names.
        unknown: Vec<String>,
        /// Allowed names at that place.
        allowed: Vec<String>,
    },
    /// A required field is missing.
    Missing(String),
    /// Wrong type.
    Type {
        /// What the schema wants.
        expected: String,
    },
    /// A value outside an enumeration.
    Enum(Vec<String>),
    /// The value matches none of the allowed forms.
    NoForm,
    /// Anything else, worded by the validator.
    Other(String),
}

fn validators() -> &'static [(Kind, jsonschema::Validator)] {
    static CELL: OnceLock<Vec<(Kind, jsonschema::Validator)>> = OnceLock::new();
    CELL.get_or_init(|| {
        Kind::ALL
            .into_iter()
            .map(|k| {
                let v = jsonschema::validator_for(&schema_for(k))
                    .expect("invariant: generated schemas are valid JSON Schema");
                (k, v)
            })
            .collect()
    })
}

fn schema_cache(kind: Kind) -> &'static Value {
    static CELL: OnceLock<Vec<Value>> = OnceLock::new();
    let all = CELL.get_or_init(|| Kind::ALL.into_iter().map(schema_for).collect());
    &all[Kind::ALL.iter().position(|k| *k == kind).unwrap_or(0)]
}

/// Checks a document against its kind's schema; every problem, at once.
#[must_use]
pub fn check(kind: Kind, doc: &Value) -> Vec<SchemaIssue> {
    let Some((_, validator)) = validators().iter().find(|(k, _)| *k == kind) else {
        return Vec::new();
    };
    let mut issues: Vec<SchemaIssue> = validator
        .iter_errors(doc)
        .map(|e| {
            let pointer = e.instance_path().as_str().to_owned();
            let problem = match e.kind() {
                ValidationErrorKind::AdditionalProperties { unexpected } => {
                    Problem::UnknownFields {
                        unknown: unexpected.clone(),
                        allowed: allowed_properties(schema_cache(kind), &pointer),
                    }
                }
                ValidationErrorKind::Required { property } => {
                    Problem::Missing(property.as_str().unwrap_or_default().to_owned())
                }
                ValidationErrorKind::Type { kind } => Problem::Type {
                    expected: type_name(kind),
                },
                ValidationErrorKind::Enum { options } => Problem::Enum(
                    options
                        .as_array()
                        .map(|a| a.iter().map(value_text).collect())
                        .unwrap_or_default(),
                ),
                ValidationErrorKind::Constant { expected_value } => {
                    Problem::Enum(vec![value_text(expected_value)])
                }
                ValidationErrorKind::AnyOf { .. } | ValidationErrorKind::OneOfNotValid { .. } => {
                    let values = allowed_values(schema_cache(kind), &pointer);
                    if values.is_empty() {
                        Problem::NoForm
                    } else {
                        Problem::Enum(values)
                    }
                }
                _ => Problem::Other(e.to_string()),
            };
            SchemaIssue { pointer, problem }
        })
        .collect();
    issues.dedup();
    issues
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn type_name(kind: &jsonschema::error::TypeKind) -> String {
    use jsonschema::error::TypeKind;
    let one = |t: &jsonschema::JsonType| match t.to_string().as_str() {
        "object" => "a mapping".to_owned(),
        "array" => "a list".to_owned(),
        "string" => "a string".to_owned(),
        "integer" => "an integer".to_owned(),
        "number" => "a number".to_owned(),
        "boolean" => "true or false".to_owned(),
        other => other.to_owned(),
    };
    match kind {
        TypeKind::Single(t) => one(t),
        TypeKind::Multiple(ts) => ts.iter().map(|t| one(&t)).collect::<Vec<_>>().join(" or "),
    }
}

/// The property names the schema allows at `pointer`, for "did you mean" hints.
fn allowed_properties(root: &Value, pointer: &str) -> Vec<String> {
    let mut names: Vec<String> = nodes_at(root, pointer)
        .into_iter()
        .flat_map(|n| expand(root, n))
        .filter_map(|n| n.get("properties").and_then(Value::as_object))
        .flat_map(|p| p.keys().cloned())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The constant values the schema allows at `pointer` when it is an enumeration (unit enums
/// with documented variants become `oneOf` of `const`s), else nothing.
fn allowed_values(root: &Value, pointer: &str) -> Vec<String> {
    let nodes: Vec<&Value> = nodes_at(root, pointer)
        .into_iter()
        .flat_map(|n| expand(root, n))
        .collect();
    let has_other_form = nodes
        .iter()
        .any(|n| n.get("type").is_some_and(|t| t != "string") || n.get("properties").is_some());
    if has_other_form {
        return Vec::new();
    }
    nodes
        .iter()
        .filter_map(|n| n.get("const"))
        .map(value_text)
        .collect()
}

/// The schema nodes that describe the value at `pointer`.
fn nodes_at<'a>(root: &'a Value, pointer: &str) -> Vec<&'a Value> {
    let mut nodes = vec![root];
    for seg in pointer.split('/').skip(1) {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        let mut next = Vec::new();
        for n in nodes.into_iter().flat_map(|n| expand(root, n)) {
            if let Some(p) = n.get("properties").and_then(|p| p.get(&seg)) {
                next.push(p);
            } else if let Some(a) = n.get("additionalProperties").filter(|a| a.is_object()) {
                next.push(a);
            } else if let Some(i) = n.get("items").filter(|i| i.is_object()) {
                next.push(i);
            }
        }
        nodes = next;
    }
    nodes
}

/// A schema node with its `$ref` followed and its `anyOf`/`oneOf` branches listed.
fn expand<'a>(root: &'a Value, node: &'a Value) -> Vec<&'a Value> {
    let mut out = Vec::new();
    let mut todo = vec![node];
    while let Some(n) = todo.pop() {
        if out.len() > 32 {
            break;
        }
        if let Some(r) = n.get("$ref").and_then(Value::as_str)
            && let Some(target) = r.strip_prefix('#').and_then(|p| root.pointer(p))
        {
            todo.push(target);
        }
        for key in ["anyOf", "oneOf", "allOf"] {
            if let Some(bs) = n.get(key).and_then(Value::as_array) {
                todo.extend(bs.iter().rev());
            }
        }
        out.push(n);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_null_alternatives_survive() {
        for (_, text) in files() {
            assert!(!text.contains("\"null\""), "null type left in schema");
        }
    }

    #[test]
    fn unknown_field_lists_allowed_names() {
        let doc = json!({"apiVersion":"scar/v1alpha1","kind":"Function","metadata":{"name":"f"},
            "spec":{"image":"x","memroy":512}});
        let issues = check(Kind::Function, &doc);
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(issues[0].pointer, "/spec");
        match &issues[0].problem {
            Problem::UnknownFields { unknown, allowed } => {
                assert_eq!(unknown, &["memroy"]);
                assert!(allowed.contains(&"memory".to_owned()));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn ranges_come_from_the_types() {
        let doc = json!({"apiVersion":"scar/v1alpha1","kind":"Function","metadata":{"name":"f"},
            "spec":{"image":"x","memory":64,"timeout":901}});
        let pointers: Vec<_> = check(Kind::Function, &doc)
            .into_iter()
            .map(|i| i.pointer)
            .collect();
        assert_eq!(pointers, ["/spec/memory", "/spec/timeout"]);
    }
}
