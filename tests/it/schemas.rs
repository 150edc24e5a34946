//! The committed `schemas/*.json` must be exactly what the types generate.

use std::path::Path;

#[test]
fn committed_schemas_match_the_types() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
    let mut drifted = Vec::new();
    for (name, text) in scar::manifest::schema::files() {
        let committed = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
        if committed != text {
            drifted.push(name);
        }
    }
    assert!(
        drifted.is_empty(),
        "schemas drifted from the types: {drifted:?}; run `cargo run -- schema --write schemas`"
    );
}

#[test]
fn examples_pass_the_editor_schema_too() {
    // What yaml-language-server checks: manifest.json, which dispatches on `kind`.
    let schema = scar::manifest::schema::manifest_schema();
    let validator = jsonschema::validator_for(&schema).expect("manifest.json is a valid schema");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests");
    let mut checked = 0;
    for stack in std::fs::read_dir(&root).expect("manifests/") {
        let stack = stack.expect("entry").path();
        for file in std::fs::read_dir(&stack).into_iter().flatten().flatten() {
            let path = file.path();
            if path.extension().is_some_and(|e| e == "yaml") {
                let text = std::fs::read_to_string(&path).expect("read");
                for doc in scar::manifest::yaml::parse(&text).expect("parses") {
                    let (value, _) = scar::manifest::yaml::to_json(&doc.root);
                    let errors: Vec<String> = validator
                        .iter_errors(&value)
                        .map(|e| e.to_string())
                        .collect();
                    assert!(errors.is_empty(), "{}: {errors:?}", path.display());
                    checked += 1;
                }
            }
        }
    }
    assert!(checked >= 10, "checked only {checked} documents");
    let bad = serde_json::json!({"apiVersion": "scar/v1alpha1", "kind": "Function",
        "metadata": {"name": "f"}, "spec": {"image": "x", "memory": 64}});
    assert!(
        !validator.is_valid(&bad),
        "manifest.json must apply the Function schema"
    );
}
