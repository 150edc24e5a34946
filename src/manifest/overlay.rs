//! Environments, in the Kustomize way: an overlay directory holds `overlay.yaml` (kind
//! `Overlay`: its base directory, a name prefix or suffix, buckets named outright) and partial
//! manifests. Each partial manifest is merged into the base's document of the same kind and
//! name as a JSON merge patch (RFC 7386: mappings merge key by key, any other value replaces,
//! `null` removes); one that matches none is a new document. Then the stack, every function
//! and workflow, and every S3 bucket get the environment's names, so two environments of one
//! base never share a resource.
//!
//! Every merged value keeps where it was written (the base's file or the overlay's), so a
//! problem found later is shown at that file and line.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Map, Value};

use super::load::{Doc, ManifestSet, file_docs, issue_diagnostics, manifest_files};
use super::schema::{self, Kind};
use super::trust::{Outside, TrustRoot};
use super::types::{API_VERSION, OverlayManifest, OverlaySpec};
use super::yaml::escape_segment;
use crate::diag::{Diagnostic, Diagnostics};

/// The file that makes a directory an overlay.
pub const FILE: &str = super::load::OVERLAY_FILE;

/// How many overlays may stand on each other (a base that leads back to itself stops here).
const MAX_DEPTH: usize = 8;

/// True when `dir` is an overlay directory (it holds [`FILE`]).
#[must_use]
pub fn is_overlay(dir: &Path) -> bool {
    super::load::is_overlay(dir)
}

/// The documents of `dir` before their schema check: its files' documents, or for an
/// overlay directory its base's merged with its patches and renamed. `depth` counts the
/// overlays above (a base that leads back to itself stops). `dir` resolves inside `root`.
pub(super) fn raw_docs(
    dir: &Path,
    root: &TrustRoot,
    set: &mut ManifestSet,
    diags: &mut Diagnostics,
    depth: usize,
) -> Vec<Doc<Value>> {
    set.roots
        .push(std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf()));
    if is_overlay(dir) {
        overlay_docs(dir, root, set, diags, depth)
    } else {
        super::load::plain_docs(dir, root, set, diags)
    }
}

/// The documents of the overlay directory `dir`: its base's, merged with its partial
/// manifests and renamed. Problems are reported in `diags`; what could not be read is left out.
fn overlay_docs(
    dir: &Path,
    root: &TrustRoot,
    set: &mut ManifestSet,
    diags: &mut Diagnostics,
    depth: usize,
) -> Vec<Doc<Value>> {
    let Some((overlay, spec)) = read_overlay(dir, set, diags) else {
        return Vec::new();
    };
    let base_at = || overlay.at("/spec/base");
    let problem = |message: String, hint: &str| {
        Diagnostic::error(message)
            .at(base_at())
            .field("spec.base")
            .hint(hint.to_owned())
    };
    if Path::new(&spec.base).is_absolute() {
        diags.push(problem(
            format!("base `{}` is an absolute path", spec.base),
            "name the base directory relative to overlay.yaml, such as `../..`",
        ));
        return Vec::new();
    }
    let base = dir.join(&spec.base);
    // Before anything there is looked at: a base that climbs out of the repository
    // (`../../../home/me/.aws`, or `/` by enough `..`) or leads out through a link.
    if root.resolve(&base) == Err(Outside::Elsewhere) {
        diags.push(problem(
            format!("base `{}` is outside the trust root", spec.base),
            &root.hint(),
        ));
        return Vec::new();
    }
    if !base.is_dir() {
        diags.push(problem(
            format!("base `{}` is not a directory", spec.base),
            "the base is a stack directory (or another overlay's), relative to overlay.yaml",
        ));
        return Vec::new();
    }
    if depth >= MAX_DEPTH {
        diags.push(problem(
            format!("overlays stand on each other more than {MAX_DEPTH} deep"),
            "does a base lead back to this overlay?",
        ));
        return Vec::new();
    }
    // A base is a stack: a folder with no Stack in it (`../../../home/me/.aws`) is refused
    // before anything read there reaches a message, a snippet or a script.
    let (files, roots) = (set.files.len(), set.roots.len());
    let mut read = Diagnostics::default();
    let mut docs = raw_docs(&base, root, set, &mut read, depth + 1);
    let stack_line = |t: &str| t.lines().any(|l| l.trim_end() == "kind: Stack");
    let is_stack = is_overlay(&base)
        || docs
            .iter()
            .any(|d| d.value.get("kind").and_then(Value::as_str) == Some("Stack"))
        || set.files[files..].iter().any(|f| stack_line(&f.text));
    if !is_stack {
        set.files.truncate(files);
        set.roots.truncate(roots);
        diags.push(problem(
            format!("base `{}` holds no Stack manifest", spec.base),
            "a base is a stack directory (or another overlay's), relative to overlay.yaml",
        ));
        return Vec::new();
    }
    diags.extend(read);
    if docs.is_empty() {
        return docs;
    }
    let stack_of = |docs: &[Doc<Value>]| -> Option<(String, String)> {
        let s = docs
            .iter()
            .find(|d| d.value.get("kind").and_then(Value::as_str) == Some("Stack"))?;
        Some((
            s.value.pointer("/metadata/name")?.as_str()?.to_owned(),
            s.value.pointer("/spec/region")?.as_str()?.to_owned(),
        ))
    };
    let base_stack = stack_of(&docs);
    for path in manifest_files(dir, root, diags) {
        if path.file_name().is_some_and(|n| n == FILE) {
            continue;
        }
        for patch in file_docs(&path, set, diags)
            .map(|(_, d)| d)
            .unwrap_or_default()
        {
            apply_patch(&mut docs, patch, diags);
        }
    }
    rename(&mut docs, &spec, &overlay, diags);
    // IAM is global: the same stack name in another region would share (and fight over) the
    // managed role, under another lock.
    if let (Some((name, base_region)), Some((new_name, region))) = (base_stack, stack_of(&docs))
        && name == new_name
        && base_region != region
    {
        let at = docs
            .iter()
            .find(|d| d.value.get("kind").and_then(Value::as_str) == Some("Stack"))
            .map_or_else(|| overlay.at("/spec"), |s| s.at("/spec/region"));
        diags.push(
            Diagnostic::error(format!(
                "this environment moves stack `{name}` from {base_region} to {region} under the same name"
            ))
            .at(at)
            .field("spec.region")
            .hint("IAM roles are global: two regions' stacks of one name would share `scar-<stack>-exec`; give the environment a nameSuffix or namePrefix in overlay.yaml"),
        );
    }
    docs
}

/// Reads `dir/overlay.yaml`: its document and its spec, schema-checked.
fn read_overlay(
    dir: &Path,
    set: &mut ManifestSet,
    diags: &mut Diagnostics,
) -> Option<(Doc<Value>, OverlaySpec)> {
    let (shown, mut docs) = file_docs(&dir.join(FILE), set, diags)?;
    if docs.len() != 1 {
        diags.push(
            Diagnostic::error(format!(
                "{FILE} holds {} documents; it holds exactly one Overlay",
                docs.len()
            ))
            .at(crate::diag::Location {
                file: shown,
                span: None,
            }),
        );
        return None;
    }
    let overlay = docs.remove(0);
    let issues = schema::check(Kind::Overlay, &overlay.value);
    if !issues.is_empty() {
        for issue in &issues {
            diags.0.extend(issue_diagnostics(&overlay, issue));
        }
        return None;
    }
    match serde_json::from_value::<OverlayManifest>(overlay.value.clone()) {
        Ok(m) => Some((overlay, m.spec)),
        Err(e) => {
            diags.push(Diagnostic::error(format!("cannot read Overlay: {e}")).at(overlay.at("")));
            None
        }
    }
}

/// The `kind` and `metadata.name` of a document, when both are strings.
fn identity(doc: &Value) -> Option<(&str, &str)> {
    Some((
        doc.get("kind")?.as_str()?,
        doc.pointer("/metadata/name")?.as_str()?,
    ))
}

/// Merges `patch` into the base document of the same kind and name, or adds it as a new
/// document when there is none.
fn apply_patch(docs: &mut Vec<Doc<Value>>, patch: Doc<Value>, diags: &mut Diagnostics) {
    if patch.value.get("apiVersion").and_then(Value::as_str) != Some(API_VERSION) {
        diags.push(
            Diagnostic::error(format!(
                "a partial manifest names its `apiVersion: {API_VERSION}`"
            ))
            .at(patch.at("/apiVersion"))
            .field("apiVersion"),
        );
        return;
    }
    let Some((kind, name)) = identity(&patch.value) else {
        diags.push(
            Diagnostic::error("a partial manifest names its `kind` and `metadata.name`")
                .at(patch.at(""))
                .field("metadata.name")
                .hint("they say which document of the base it changes; a new name adds a document"),
        );
        return;
    };
    let (kind, name) = (kind.to_owned(), name.to_owned());
    let Some(base) = docs
        .iter_mut()
        .find(|d| identity(&d.value) == Some((kind.as_str(), name.as_str())))
    else {
        docs.push(patch);
        return;
    };
    let mut replaced = Vec::new();
    let mut removed = Vec::new();
    merge(
        &mut base.value,
        &patch.value,
        String::new(),
        &mut replaced,
        &mut removed,
    );
    for p in &removed {
        base.spans.remove(p);
    }
    for p in &replaced {
        base.spans.graft(p, &patch.spans, &patch.path);
    }
}

/// RFC 7386 JSON merge patch of `patch` into `target` at `pointer`, recording the pointers
/// whose value now comes from the patch and those it removed.
fn merge(
    target: &mut Value,
    patch: &Value,
    pointer: String,
    replaced: &mut Vec<String>,
    removed: &mut Vec<String>,
) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                let child = format!("{pointer}/{}", escape_segment(k));
                match (t.get_mut(k), v) {
                    (_, Value::Null) => {
                        if t.remove(k).is_some() {
                            removed.push(child);
                        }
                    }
                    (Some(existing @ Value::Object(_)), Value::Object(_)) => {
                        merge(existing, v, child, replaced, removed);
                    }
                    _ => {
                        t.insert(k.clone(), without_nulls(v));
                        replaced.push(child);
                    }
                }
            }
        }
        (t, p) => {
            *t = without_nulls(p);
            replaced.push(pointer);
        }
    }
}

/// A patch's value as it lands in the document: `null` members removed (RFC 7386).
fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect::<Map<String, Value>>(),
        ),
        other => other.clone(),
    }
}

/// Gives the environment's names: prefix and suffix on the stack, every function and
/// workflow (and the workflow's references to functions), and every S3 bucket a function or
/// workflow names (an output with a `provider` is another storage's, left alone); a bucket
/// in `spec.buckets` takes the name given there instead. A `spec.buckets` entry no bucket
/// has is an error (it would do nothing).
fn rename(
    docs: &mut [Doc<Value>],
    spec: &OverlaySpec,
    overlay: &Doc<Value>,
    diags: &mut Diagnostics,
) {
    let named = |s: &str| format!("{}{s}{}", spec.name_prefix, spec.name_suffix);
    let mut seen = BTreeSet::new();
    let mut bucket = |b: &str| {
        seen.insert(b.to_owned());
        spec.buckets.get(b).cloned().unwrap_or_else(|| named(b))
    };
    for d in docs.iter_mut() {
        let kind = d.value.get("kind").and_then(Value::as_str).unwrap_or("");
        let mut pointers: Vec<(String, bool)> = Vec::new();
        if matches!(kind, "Stack" | "Function" | "Workflow") {
            pointers.push(("/metadata/name".into(), false));
        }
        let count = |list: &str| {
            d.value
                .pointer(list)
                .and_then(Value::as_array)
                .map_or(0, Vec::len)
        };
        match kind {
            "Function" => {
                for i in 0..count("/spec/input") {
                    pointers.push((format!("/spec/input/{i}/bucket"), true));
                }
                for i in 0..count("/spec/output") {
                    let own = format!("/spec/output/{i}");
                    if d.value.pointer(&format!("{own}/provider")).is_none() {
                        pointers.push((format!("{own}/bucket"), true));
                    }
                }
            }
            "Workflow" => {
                for i in 0..count("/spec/stages") {
                    pointers.push((format!("/spec/stages/{i}"), false));
                }
                for i in 0..count("/spec/edges") {
                    pointers.push((format!("/spec/edges/{i}/from"), false));
                    pointers.push((format!("/spec/edges/{i}/to"), false));
                    pointers.push((format!("/spec/edges/{i}/bucket"), true));
                }
            }
            _ => {}
        }
        for (pointer, is_bucket) in pointers {
            if let Some(Value::String(s)) = d.value.pointer_mut(&pointer) {
                *s = if is_bucket { bucket(s) } else { named(s) };
            }
        }
    }
    for name in spec.buckets.keys().filter(|b| !seen.contains(*b)) {
        let at = format!("/spec/buckets/{}", escape_segment(name));
        diags.push(
            Diagnostic::error(format!(
                "no function or workflow of the base uses bucket `{name}`"
            ))
            .at(overlay.key_at(&at))
            .field(format!("spec.buckets.{name}"))
            .hint(format!(
                "the keys of spec.buckets are bucket names as the base writes them: {}",
                if seen.is_empty() {
                    "the base names none".to_owned()
                } else {
                    seen.iter().cloned().collect::<Vec<_>>().join(", ")
                }
            )),
        );
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use crate::manifest::check::validate_dir;

    fn write(root: &std::path::Path, files: &[(&str, &str)]) {
        for (name, text) in files {
            let p = root.join(name);
            if let Some(d) = p.parent() {
                std::fs::create_dir_all(d).expect("mkdir");
            }
            std::fs::write(p, text).expect("write");
        }
    }

    const STACK: &str = "apiVersion: scar/v1alpha1
kind: Stack
metadata:
  name: wc
spec:
  region: us-east-1
  role:
    managed: true
  tags:
    team: data
  storageProviders:
    minio:
      default:
        endpoint: https://minio.example.org
        accessKey: {ssm: /minio/ak}
        secretKey: {ssm: /minio/sk}
";

    const SPLIT: &str = "apiVersion: scar/v1alpha1
kind: Function
metadata:
  name: split
spec:
  image: busybox:1.36
  script: split.sh
  memory: 256
  input:
    - bucket: wc-data
      prefix: in/
  output:
    - bucket: wc-data
      prefix: words/
    - bucket: elsewhere
      provider: minio.default
";

    const FLOW: &str = "apiVersion: scar/v1alpha1
kind: Workflow
metadata:
  name: wc
spec:
  stages: [split]
";

    /// A stack in a Git work tree (its environments' bases are inside the tree: the trust
    /// root).
    fn base() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join(".git")).expect("a work tree");
        write(
            dir.path(),
            &[
                ("stack.yaml", STACK),
                ("split.yaml", SPLIT),
                ("flow.yaml", FLOW),
                ("split.sh", "tr ' ' '\\n'\n"),
            ],
        );
        dir
    }

    const PROD: &str = "apiVersion: scar/v1alpha1
kind: Overlay
metadata:
  name: prod
spec:
  base: ../..
  nameSuffix: -prod
";

    #[test]
    fn patches_merge_by_kind_and_name_and_every_name_gets_the_suffix() {
        let dir = base();
        let prod = dir.path().join("envs/prod");
        write(
            &prod,
            &[
                ("overlay.yaml", PROD),
                (
                    "patch.yaml",
                    "apiVersion: scar/v1alpha1
kind: Stack
metadata:
  name: wc
spec:
  region: eu-west-1
  tags:
    env: prod
---
apiVersion: scar/v1alpha1
kind: Function
metadata:
  name: split
spec:
  memory: 1024
",
                ),
            ],
        );
        let (set, diags) = validate_dir(&prod);
        assert!(!diags.has_errors(), "{diags:?}");
        let stack = set.stack().expect("stack");
        assert_eq!(stack.value.metadata.name, "wc-prod");
        assert_eq!(stack.value.spec.region, "eu-west-1");
        let tags: Vec<&str> = stack.value.spec.tags.keys().map(String::as_str).collect();
        assert_eq!(tags, ["env", "team"], "mappings merge");
        let f = &set.functions[0];
        assert_eq!(f.value.metadata.name, "split-prod");
        assert_eq!(f.value.spec.memory, Some(1024));
        assert_eq!(
            f.value.spec.input[0].s3().map(|i| i.bucket.as_str()),
            Some("wc-data-prod")
        );
        assert_eq!(f.value.spec.output[0].bucket, "wc-data-prod");
        assert_eq!(
            f.value.spec.output[1].bucket, "elsewhere",
            "another storage's"
        );
        assert_eq!(set.workflows[0].value.spec.stages, ["split-prod"]);
        assert_eq!(set.script_of(f), "tr ' ' '\\n'\n", "the base's script");
        // The base alone is still the base: the environments below it are not part of it.
        let (alone, diags) = validate_dir(dir.path());
        assert!(!diags.has_errors(), "{diags:?}");
        assert_eq!(alone.stack().expect("stack").value.metadata.name, "wc");
        assert_eq!(alone.functions.len(), 1);
    }

    #[test]
    fn errors_are_shown_where_the_value_was_written_base_or_overlay() {
        let dir = base();
        // The base's error: a bad timeout in split.yaml, line 9.
        let text = SPLIT.replace("  memory: 256\n", "  memory: 256\n  timeout: 0\n");
        write(dir.path(), &[("split.yaml", &text)]);
        let dev = dir.path().join("envs/dev");
        write(
            &dev,
            &[
                (
                    "overlay.yaml",
                    "apiVersion: scar/v1alpha1
kind: Overlay
metadata:
  name: dev
spec:
  base: ../..
  namePrefix: dev-
  buckets:
    wc-data: shared-dev-data
    nope: other
",
                ),
                (
                    "split.yaml",
                    "apiVersion: scar/v1alpha1
kind: Function
metadata:
  name: split
spec:
  memory: lots
",
                ),
            ],
        );
        let (set, diags) = validate_dir(&dev);
        let at = |field: &str| -> (PathBuf, usize) {
            let d = diags
                .0
                .iter()
                .find(|d| d.field.as_deref() == Some(field))
                .unwrap_or_else(|| panic!("no error on {field}: {diags:?}"));
            let l = d.location.clone().expect("located");
            (l.file, l.span.map_or(0, |s| s.line))
        };
        let overlay_file = |name: &str| {
            let p = dev.join(name);
            p.strip_prefix(".").map(PathBuf::from).unwrap_or(p)
        };
        assert_eq!(at("spec.memory"), (overlay_file("split.yaml"), 6));
        assert_eq!(at("spec.timeout"), (dir.path().join("split.yaml"), 9));
        assert_eq!(at("spec.buckets.nope"), (overlay_file("overlay.yaml"), 10));
        // The snippet renderer finds both files' text.
        assert!(set.source(&overlay_file("split.yaml")).is_some());
        assert!(set.source(&dir.path().join("split.yaml")).is_some());
    }

    #[test]
    fn a_bad_base_and_a_loop_are_errors() {
        let dir = base();
        let x = dir.path().join("envs/x");
        write(
            &x,
            &[("overlay.yaml", &PROD.replace("base: ../..", "base: /etc"))],
        );
        let (_, diags) = validate_dir(&x);
        assert!(
            diags.0.iter().any(|d| d.message.contains("absolute path")),
            "{diags:?}"
        );
        // A folder that is no stack: refused, and nothing read there is shown.
        let secrets = dir.path().join("secrets");
        write(&secrets, &[("creds.yaml", "token: [not yaml\n")]);
        let y = dir.path().join("envs/y");
        write(
            &y,
            &[("overlay.yaml", &PROD.replace("../..", "../../secrets"))],
        );
        let (set, diags) = validate_dir(&y);
        assert!(
            diags
                .0
                .iter()
                .any(|d| d.message.contains("holds no Stack manifest")),
            "{diags:?}"
        );
        assert!(
            diags.0.iter().all(|d| !d.message.contains("invalid YAML")),
            "{diags:?}"
        );
        assert!(set.files.iter().all(|f| !f.text.contains("token")));
        // Two overlays that are each other's base.
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        write(&a, &[("overlay.yaml", &PROD.replace("../..", "../b"))]);
        write(&b, &[("overlay.yaml", &PROD.replace("../..", "../a"))]);
        let (_, diags) = validate_dir(&a);
        assert!(
            diags
                .0
                .iter()
                .any(|d| d.message.contains("more than 8 deep")),
            "{diags:?}"
        );
    }
}
