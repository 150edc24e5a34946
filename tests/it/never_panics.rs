//! The loader and validator never panic, whatever the input: random text, random YAML built
//! from YAML's own punctuation, and valid manifests mutated at random.
//!
//! CI runs the default case count; a long run is `PROPTEST_CASES=100000 cargo test --release
//! --test it never_panics::` (see the closing note of the foundation issue for the figures).

use std::path::Path;

use proptest::prelude::*;
use serde_json::Value;

use scar::manifest::{ManifestSet, check, load};

fn load_and_check(texts: &[String]) {
    let mut set = ManifestSet::default();
    let mut diags = scar::diag::Diagnostics::default();
    for (i, text) in texts.iter().enumerate() {
        load::load_text(Path::new(&format!("f{i}.yaml")), text, &mut set, &mut diags);
    }
    diags.extend(check::check(&set));
    diags.sort();
    // Rendering reads spans back against the text: it must not panic either.
    let mut sink = Vec::new();
    let source = |p: &Path| {
        p.to_str()
            .and_then(|s| s.strip_prefix('f'))
            .and_then(|s| s.strip_suffix(".yaml"))
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|n| texts.get(n))
            .map(String::as_str)
    };
    scar::render::diagnostic::render_all(
        &diags,
        &source,
        scar::render::diagnostic::Style { color: false },
        &mut sink,
    )
    .expect("writing to a Vec cannot fail");
}

/// Pieces YAML is made of, so random strings hit the parser's interesting paths.
fn yamlish() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "- ",
        ": ",
        ":",
        "\n",
        "  ",
        "    ",
        "{",
        "}",
        "[",
        "]",
        ", ",
        "&a ",
        "*a",
        "&b ",
        "*b",
        "!!str ",
        "!!int ",
        "!tag ",
        "'",
        "\"",
        "# c\n",
        "---\n",
        "...\n",
        "|\n",
        ">-\n",
        "? ",
        "kind",
        "Function",
        "Stack",
        "Workflow",
        "apiVersion",
        "scar/v1alpha1",
        "spec",
        "metadata",
        "name",
        "memory",
        "input",
        "bucket",
        "prefix",
        "output",
        "stages",
        "edges",
        "environment",
        "secretRef",
        "batch",
        "compute",
        "1",
        "-1",
        "0x1f",
        "1e400",
        "~",
        "null",
        "true",
        "yes",
        "é",
        "\t",
        "\\",
        "%",
        "@",
        "`",
        "\u{feff}",
        "\r\n",
    ]);
    prop::collection::vec(pieces, 0..80).prop_map(|v| v.concat())
}

fn examples() -> Vec<Value> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests");
    let mut docs = Vec::new();
    for stack in std::fs::read_dir(root).expect("manifests/").flatten() {
        for file in std::fs::read_dir(stack.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if file.path().extension().is_some_and(|e| e == "yaml") {
                let text = std::fs::read_to_string(file.path()).expect("read");
                for d in scar::manifest::yaml::parse(&text).expect("examples parse") {
                    docs.push(scar::manifest::yaml::to_json(&d.root).0);
                }
            }
        }
    }
    docs
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "\\PC{0,12}".prop_map(Value::String),
        prop::sample::select(vec![
            "Stack",
            "Function",
            "Workflow",
            "scar/v1alpha1",
            "batch",
            "lambda-batch",
            "FARGATE",
            "SPOT",
            "s3:ObjectCreated:*",
            "demo-media",
            "input/",
            "",
            "subnet-1",
            "sg-1",
            "arn:aws:iam::123456789012:role/x",
            "minio.lab",
            "x86_64",
        ])
        .prop_map(|s| Value::String(s.to_owned())),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{1,10}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Replaces, removes or adds one node somewhere in `doc`, steered by `path`.
fn mutate(node: &mut Value, path: &[usize], op: u8, new: Value) {
    if let Some((step, rest)) = path.split_first() {
        let child = match node {
            Value::Object(m) if !m.is_empty() => {
                let key = m.keys().nth(step % m.len()).cloned().unwrap_or_default();
                m.get_mut(&key)
            }
            Value::Array(a) if !a.is_empty() => {
                let n = a.len();
                a.get_mut(step % n)
            }
            _ => None,
        };
        if let Some(child) = child {
            return mutate(child, rest, op, new);
        }
    }
    match (op % 3, node) {
        (1, Value::Object(m)) if !m.is_empty() => {
            let key = m.keys().next().cloned().unwrap_or_default();
            m.remove(&key);
        }
        (2, Value::Object(m)) => {
            m.insert("extra".into(), new);
        }
        (2, Value::Array(a)) => a.push(new),
        (_, n) => *n = new,
    }
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        load_and_check(&[text]);
    }

    #[test]
    fn yaml_shaped_text_never_panics(a in yamlish(), b in yamlish()) {
        load_and_check(&[a, b]);
    }

    #[test]
    fn mutated_manifests_never_panic(
        picks in prop::collection::vec((0usize..64, prop::collection::vec(0usize..16, 0..6), any::<u8>(), value()), 1..6)
    ) {
        let base = examples();
        let mut docs: Vec<Value> = Vec::new();
        for (i, path, op, new) in picks {
            let mut doc = base[i % base.len()].clone();
            mutate(&mut doc, &path, op, new);
            docs.push(doc);
        }
        let texts: Vec<String> = docs.iter().map(scar::render::yaml::to_yaml).collect();
        load_and_check(&texts);
    }
}
