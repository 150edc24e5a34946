//! Loading a manifest directory: every `*.yaml`/`*.yml` below it, every document in each file,
//! schema-checked, typed, with the span of every field kept for later checks.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::schema::{self, Kind, Problem};
use super::trust::{Outside, TrustRoot};
use super::types::{API_VERSION, FunctionManifest, StackManifest, WorkflowManifest};
use super::yaml::{self, SpanIndex};
use crate::diag::{Diagnostic, Diagnostics, Location};

/// A file that was read, with the path shown to the user.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The path as shown in messages (the directory the user named, joined with the file).
    pub path: PathBuf,
    /// The file's text.
    pub text: String,
}

/// A typed document and where its fields stand.
#[derive(Debug, Clone)]
pub struct Doc<T> {
    /// The path shown to the user.
    pub path: PathBuf,
    /// Index of the document inside its file (0 for the first).
    pub index: usize,
    /// Spans of every field.
    pub spans: SpanIndex,
    /// The manifest.
    pub value: T,
}

impl<T> Doc<T> {
    /// The location of the value at `pointer` (or its nearest ancestor), in the file it was
    /// written in (an overlay's, for a value it patched).
    #[must_use]
    pub fn at(&self, pointer: &str) -> Location {
        self.locate(pointer, self.spans.value(pointer))
    }

    /// The location of the key at `pointer`, for "this field" messages.
    #[must_use]
    pub fn key_at(&self, pointer: &str) -> Location {
        self.locate(pointer, self.spans.key(pointer))
    }

    fn locate(&self, pointer: &str, exact: Option<crate::diag::Span>) -> Location {
        let found = self.spans.nearest_pointer(pointer);
        Location {
            file: self.file_of(pointer).to_path_buf(),
            span: exact.or_else(|| found.and_then(|p| self.spans.value(p))),
        }
    }

    /// The file the value at `pointer` (or its nearest ancestor) was written in: an
    /// overlay's, for a value it patched, else the document's own.
    fn file_of(&self, pointer: &str) -> &Path {
        self.spans
            .nearest_pointer(pointer)
            .and_then(|p| self.spans.file(p))
            .unwrap_or(&self.path)
    }

    /// The directory of the file the value at `pointer` was written in, for resolving a
    /// relative path it holds (a script named in an overlay is next to the overlay).
    #[must_use]
    pub fn dir_of(&self, pointer: &str) -> &Path {
        self.file_of(pointer).parent().unwrap_or(Path::new("."))
    }
}

/// Every manifest of a directory.
#[derive(Debug, Clone, Default)]
pub struct ManifestSet {
    /// The directory as the user named it.
    pub dir: PathBuf,
    /// Files read, sorted by path.
    pub files: Vec<SourceFile>,
    /// Stack documents (exactly one is valid).
    pub stacks: Vec<Doc<StackManifest>>,
    /// Function documents.
    pub functions: Vec<Doc<FunctionManifest>>,
    /// Workflow documents.
    pub workflows: Vec<Doc<WorkflowManifest>>,
    /// Kinds of documents that were recognised but rejected (schema or type errors), so that
    /// later checks do not report them as missing.
    pub rejected: Vec<Kind>,
    /// The directories the manifests came from, resolved: the one named, and for an overlay
    /// its bases. Scripts must be inside one; `watch` follows them all.
    pub roots: Vec<PathBuf>,
    /// Each function's script, read once at load (by the manifest's path and document index):
    /// only files inside the stack directory, valid UTF-8.
    pub scripts: std::collections::BTreeMap<(PathBuf, usize), String>,
}

impl ManifestSet {
    /// The text of a file, for rendering snippets.
    #[must_use]
    pub fn source(&self, path: &Path) -> Option<&str> {
        self.files
            .iter()
            .find(|f| f.path == path)
            .map(|f| f.text.as_str())
    }

    /// The script of the function document `f`, as read at load (empty when it has none or it
    /// could not be read, which is then an error of the set).
    #[must_use]
    pub fn script_of(&self, f: &Doc<FunctionManifest>) -> &str {
        self.scripts
            .get(&(f.path.clone(), f.index))
            .map_or("", String::as_str)
    }

    /// The one Stack, if there is exactly one.
    #[must_use]
    pub fn stack(&self) -> Option<&Doc<StackManifest>> {
        match self.stacks.as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }
}

/// Converts a JSON pointer to the field path users read: `/spec/input/0/bucket` becomes
/// `spec.input[0].bucket`.
#[must_use]
pub fn field_path(pointer: &str) -> String {
    let mut out = String::new();
    for seg in pointer.split('/').skip(1) {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        if !seg.is_empty() && seg.chars().all(|c| c.is_ascii_digit()) {
            out.push_str(&format!("[{seg}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&seg);
        }
    }
    out
}

/// The file that makes a directory an overlay (an environment of a base stack).
pub const OVERLAY_FILE: &str = "overlay.yaml";

/// True when `dir` is an overlay directory (it holds [`OVERLAY_FILE`]).
#[must_use]
pub fn is_overlay(dir: &Path) -> bool {
    dir.join(OVERLAY_FILE).is_file()
}

/// Finds every manifest file below `dir`, sorted, skipping hidden folders. A link (to a
/// folder or a file) is followed only when it resolves inside `root`; one that leads outside
/// is reported and nothing there is read.
pub(super) fn manifest_files(
    dir: &Path,
    root: &TrustRoot,
    diags: &mut Diagnostics,
) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    // Each folder once, by where it really is: links that loop back (or two that point at
    // each other) are walked no further.
    let mut seen = std::collections::HashSet::new();
    while let Some(d) = todo.pop() {
        let real = std::fs::canonicalize(&d).unwrap_or_else(|_| d.clone());
        if !seen.insert(real) {
            continue;
        }
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) => {
                diags.push(
                    Diagnostic::error(format!("cannot read directory {}: {e}", d.display()))
                        .hint("pass the directory that holds the stack's manifests"),
                );
                continue;
            }
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let manifest = name.ends_with(".yaml") || name.ends_with(".yml");
            if entry.file_type().is_ok_and(|t| t.is_symlink()) {
                match root.resolve(&path) {
                    Ok(_) => {}
                    // A folder or a manifest the walker would read: refused, and said. Any
                    // other file is read only if a manifest names it (a script, checked then).
                    Err(Outside::Elsewhere) if manifest || path.is_dir() => {
                        diags.push(
                            Diagnostic::error(format!(
                                "{} is a link that leads outside the trust root; it is not read",
                                shown(&path).display()
                            ))
                            .at(Location {
                                file: shown(&path),
                                span: None,
                            })
                            .hint(root.hint()),
                        );
                        continue;
                    }
                    Err(Outside::Elsewhere) => continue,
                    // A link to nothing: a manifest's is reported when it is read.
                    Err(Outside::Missing) if manifest => {
                        out.push(path);
                        continue;
                    }
                    Err(Outside::Missing) => continue,
                }
            }
            if path.is_dir() {
                // A folder with an overlay.yaml is another environment, not part of this one.
                if !is_overlay(&path) {
                    todo.push(path);
                }
            } else if manifest
                && seen.insert(std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone()))
            {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The path shown to the user: `dir` joined with the file's path below it, without a leading
/// `./`.
fn shown(path: &Path) -> PathBuf {
    // `envs/prod/../../split.yaml` reads as `split.yaml` (an overlay's base is named relative
    // to it); a `..` that climbs above where the path starts is kept.
    super::trust::lexical(path)
}

/// The documents of the manifest files below `dir` (not an overlay directory: the walker
/// leaves those out), before their schema check.
pub(super) fn plain_docs(
    dir: &Path,
    root: &TrustRoot,
    set: &mut ManifestSet,
    diags: &mut Diagnostics,
) -> Vec<Doc<Value>> {
    manifest_files(dir, root, diags)
        .iter()
        .filter_map(|path| file_docs(path, set, diags))
        .flat_map(|(_, docs)| docs)
        .collect()
}

/// The documents of the file at `path`, its text kept in `set` (for snippets), with the path
/// shown for it; `None` (reported) when it cannot be read.
pub(super) fn file_docs(
    path: &Path,
    set: &mut ManifestSet,
    diags: &mut Diagnostics,
) -> Option<(PathBuf, Vec<Doc<Value>>)> {
    let (shown, text) = read_source(path, diags)?;
    let docs = parse_docs(&shown, &text, diags);
    set.files.push(SourceFile {
        path: shown.clone(),
        text,
    });
    Some((shown, docs))
}

/// The text of a manifest file and the path shown for it; `None` (reported) when it cannot
/// be read or is not UTF-8.
fn read_source(path: &Path, diags: &mut Diagnostics) -> Option<(PathBuf, String)> {
    let shown = shown(path);
    let at = |file: PathBuf| Location { file, span: None };
    match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => Some((shown, text)),
            Err(_) => {
                diags.push(Diagnostic::error("file is not valid UTF-8").at(at(shown)));
                None
            }
        },
        Err(e) => {
            diags.push(Diagnostic::error(format!("cannot read file: {e}")).at(at(shown)));
            None
        }
    }
}

/// Reads every function's `script` once. A script must be a file inside the trust root and
/// inside the stack directory (after following links): `/etc/passwd` or `../../secret` would
/// put another file's content into the plan and the image. Unreadable and non-UTF-8 scripts
/// are errors, never empty.
pub(super) fn read_scripts(set: &mut ManifestSet, root: &TrustRoot, diags: &mut Diagnostics) {
    let roots = set.roots.clone();
    let mut scripts = std::collections::BTreeMap::new();
    for f in &set.functions {
        let Some(script) = &f.value.spec.script else {
            continue;
        };
        let problem = |message: String, hint: String| {
            Diagnostic::error(message)
                .at(f.at("/spec/script"))
                .field("spec.script")
                .hint(hint)
        };
        let path = f.dir_of("/spec/script").join(script);
        let inside =
            "a script is a file inside the stack directory, named relative to the manifest";
        if Path::new(script).is_absolute() {
            diags.push(problem(
                format!("script `{script}` is an absolute path"),
                inside.into(),
            ));
            continue;
        }
        let real = match std::fs::canonicalize(&path) {
            Ok(r) => r,
            Err(_) => {
                diags.push(problem(
                    format!("script `{script}` not found"),
                    format!(
                        "the path is relative to the manifest's directory ({})",
                        path.display()
                    ),
                ));
                continue;
            }
        };
        if !roots.iter().any(|r| real.starts_with(r)) {
            diags.push(problem(
                format!("script `{script}` is outside the stack directory"),
                inside.into(),
            ));
            continue;
        }
        // The stack's directories are inside the trust root (they were checked when read):
        // this holds whatever changes above.
        if !root.holds(&real) {
            diags.push(problem(
                format!("script `{script}` resolves outside the trust root"),
                root.hint(),
            ));
            continue;
        }
        if !real.is_file() {
            diags.push(problem(
                format!("script `{script}` is not a file"),
                inside.into(),
            ));
            continue;
        }
        match std::fs::read(&real) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => {
                    scripts.insert((f.path.clone(), f.index), text);
                }
                Err(_) => diags.push(problem(
                    format!("script `{script}` is not valid UTF-8"),
                    "scripts run under /bin/sh and travel as text; keep binary content in the image".into(),
                )),
            },
            Err(e) => diags.push(problem(
                format!("script `{script}` cannot be read: {e}"),
                "check the file's permissions".into(),
            )),
        }
    }
    set.scripts = scripts;
}

/// Loads the documents of one file's text into `set`.
pub fn load_text(path: &Path, text: &str, set: &mut ManifestSet, diags: &mut Diagnostics) {
    for raw in parse_docs(path, text, diags) {
        load_doc(raw, set, diags);
    }
}

/// The non-empty documents of one file's text, as JSON with their spans; a syntax error is
/// reported and gives none.
pub(super) fn parse_docs(path: &Path, text: &str, diags: &mut Diagnostics) -> Vec<Doc<Value>> {
    let docs = match yaml::parse(text) {
        Ok(d) => d,
        Err(e) => {
            diags.push(
                Diagnostic::error(format!("invalid YAML: {}", e.message)).at(Location {
                    file: path.to_path_buf(),
                    span: Some(e.span),
                }),
            );
            return Vec::new();
        }
    };
    docs.iter()
        .enumerate()
        .filter(|(_, doc)| doc.root.value != yaml::NodeValue::Null)
        .map(|(index, doc)| {
            let (value, spans) = yaml::to_json(&doc.root);
            Doc {
                path: path.to_path_buf(),
                index,
                spans,
                value,
            }
        })
        .collect()
}

pub(super) fn load_doc(raw: Doc<Value>, set: &mut ManifestSet, diags: &mut Diagnostics) {
    let Some(map) = raw.value.as_object() else {
        diags.push(
            Diagnostic::error("a manifest must be a mapping")
                .at(raw.at(""))
                .hint("start with `apiVersion: scar/v1alpha1` and `kind: Stack|Function|Workflow`"),
        );
        return;
    };
    match map.get("apiVersion") {
        Some(Value::String(v)) if v == API_VERSION => {}
        Some(other) => {
            diags.push(
                Diagnostic::error(format!("unsupported apiVersion {other}"))
                    .at(raw.at("/apiVersion"))
                    .field("apiVersion")
                    .hint(format!("this release reads `apiVersion: {API_VERSION}`")),
            );
            return;
        }
        None => {
            diags.push(
                Diagnostic::error("missing apiVersion")
                    .at(raw.at(""))
                    .field("apiVersion")
                    .hint(format!("add `apiVersion: {API_VERSION}`")),
            );
            return;
        }
    }
    let kind = match map.get("kind") {
        Some(Value::String(k)) => match Kind::parse(k) {
            Some(kind) => kind,
            None => {
                let hint = suggest(k, Kind::ALL.iter().map(|k| k.as_str()))
                    .map(|s| format!("did you mean `{s}`?"))
                    .unwrap_or_else(|| "kinds are Stack, Function and Workflow".into());
                diags.push(
                    Diagnostic::error(format!("unknown kind `{k}`"))
                        .at(raw.at("/kind"))
                        .field("kind")
                        .hint(hint),
                );
                return;
            }
        },
        _ => {
            diags.push(
                Diagnostic::error("missing or non-string kind")
                    .at(raw.at(""))
                    .field("kind")
                    .hint("add `kind: Stack`, `kind: Function` or `kind: Workflow`"),
            );
            return;
        }
    };
    let issues = schema::check(kind, &raw.value);
    if !issues.is_empty() {
        for issue in issues {
            diags.0.extend(issue_diagnostics(&raw, &issue));
        }
        set.rejected.push(kind);
        return;
    }
    let Doc {
        path,
        index,
        spans,
        value,
    } = raw;
    let failed = match kind {
        Kind::Stack => {
            serde_json::from_value(value).map(|v| set.stacks.push(doc(&path, index, &spans, v)))
        }
        Kind::Function => {
            serde_json::from_value(value).map(|v| set.functions.push(doc(&path, index, &spans, v)))
        }
        Kind::Workflow => {
            serde_json::from_value(value).map(|v| set.workflows.push(doc(&path, index, &spans, v)))
        }
        Kind::Overlay => {
            diags.push(
                    Diagnostic::error("an Overlay is read only from a file named overlay.yaml at the top of its directory")
                        .at(Location {
                            file: path.clone(),
                            span: spans.value("/kind"),
                        })
                        .field("kind")
                        .hint(format!("move it into {}, or pass the directory that holds overlay.yaml", OVERLAY_FILE)),
                );
            return;
        }
    };
    if let Err(e) = failed {
        // The schema accepted what serde refused: a gap between the two worth a bug report.
        tracing::debug!(
            kind = kind.as_str(),
            "schema-valid document failed to deserialise"
        );
        diags.push(
            Diagnostic::error(format!("cannot read {}: {e}", kind.as_str())).at(Location {
                file: path.clone(),
                span: spans.value(""),
            }),
        );
        set.rejected.push(kind);
    }
}

fn doc<T>(path: &Path, index: usize, spans: &SpanIndex, value: T) -> Doc<T> {
    Doc {
        path: path.to_path_buf(),
        index,
        spans: spans.clone(),
        value,
    }
}

pub(super) fn issue_diagnostics(raw: &Doc<Value>, issue: &schema::SchemaIssue) -> Vec<Diagnostic> {
    let p = &issue.pointer;
    let found = raw.value.pointer(p);
    match &issue.problem {
        Problem::UnknownFields { unknown, allowed } => unknown
            .iter()
            .map(|name| {
                let child = format!("{p}/{}", yaml::escape_segment(name));
                let hint = match suggest(name, allowed.iter().map(String::as_str)) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None if allowed.is_empty() => "no fields are allowed here".to_owned(),
                    None => format!("allowed here: {}", allowed.join(", ")),
                };
                Diagnostic::error(format!("unknown field `{name}`"))
                    .at(raw.key_at(&child))
                    .field(field_path(&child))
                    .hint(hint)
            })
            .collect(),
        Problem::Missing(name) => {
            let child = format!("{p}/{}", yaml::escape_segment(name));
            vec![
                Diagnostic::error(format!("missing required field `{name}`"))
                    .at(raw.key_at(p))
                    .field(field_path(&child)),
            ]
        }
        Problem::Type { expected } => {
            let mut d =
                Diagnostic::error(format!("expected {expected}, found {}", describe(found)))
                    .at(raw.at(p))
                    .field(field_path(p));
            if expected == "a string" && matches!(found, Some(Value::Number(_) | Value::Bool(_))) {
                d = d.hint("quote the value to make it a string");
            }
            vec![d]
        }
        Problem::Enum(options) => {
            let shown = found.map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            });
            let mut d = Diagnostic::error(format!(
                "`{}` is not one of: {}",
                shown.clone().unwrap_or_default(),
                options.join(", ")
            ))
            .at(raw.at(p))
            .field(field_path(p));
            if let Some(s) = shown
                .as_deref()
                .and_then(|s| suggest(s, options.iter().map(String::as_str)))
            {
                d = d.hint(format!("did you mean `{s}`?"));
            }
            vec![d]
        }
        Problem::NoForm if p.contains("/environment/") => {
            let hint = if matches!(found, Some(Value::Number(_) | Value::Bool(_))) {
                "quote the value to make it a string".to_owned()
            } else {
                "write a string, or `secretRef: {ssm: NAME}` / `secretRef: {secretsManager: NAME}`"
                    .to_owned()
            };
            vec![
                Diagnostic::error(format!(
                    "expected a string or a secretRef, found {}",
                    describe(found)
                ))
                .at(raw.at(p))
                .field(field_path(p))
                .hint(hint),
            ]
        }
        Problem::NoForm => vec![
            Diagnostic::error(format!(
                "{} does not match any allowed form",
                describe(found)
            ))
            .at(raw.at(p))
            .field(field_path(p))
            .hint("see the field's documentation in docs/manifests.md"),
        ],
        Problem::Other(msg) => vec![
            Diagnostic::error(msg.clone())
                .at(raw.at(p))
                .field(field_path(p)),
        ],
    }
}

fn describe(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "nothing (null)".into(),
        Some(Value::Bool(b)) => format!("boolean `{b}`"),
        Some(Value::Number(n)) => format!("number `{n}`"),
        Some(Value::String(s)) => format!("string \"{s}\""),
        Some(Value::Array(_)) => "a list".into(),
        Some(Value::Object(_)) => "a mapping".into(),
    }
}

/// The closest candidate within a small edit distance, for "did you mean" hints.
#[must_use]
pub fn suggest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .map(|c| (edit_distance(&word.to_lowercase(), &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_paths_read_like_code() {
        assert_eq!(field_path("/spec/input/0/bucket"), "spec.input[0].bucket");
        assert_eq!(field_path(""), "");
        assert_eq!(field_path("/metadata/labels/a~1b"), "metadata.labels.a/b");
    }

    #[test]
    fn suggestions_need_to_be_close() {
        let c = ["memory", "timeout", "image"];
        assert_eq!(suggest("memroy", c.iter().copied()), Some("memory"));
        assert_eq!(suggest("zzz", c.iter().copied()), None);
    }
}
