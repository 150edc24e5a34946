//! Plans rendered as text, Markdown and JSON for each case under `tests/fixtures/plan/`:
//! a `manifests/` directory (what the user wants) and a `live.yaml` (what AWS holds).
//!
//! `live.yaml` describes live state compactly:
//!
//! ```yaml
//! base: applied        # a manifest dir in the case whose desired graph stands applied
//! patch:               # merged into those resources' attributes (an out-of-band change)
//!   function/thumbs: {memory: 256}
//! remove: [log_group/thumbs]
//! extra:               # more live resources, with their owner
//!   function/intruder: {owner: unowned, attrs: {memory: 128}}
//! ```

use std::path::Path;

use serde_json::{Map, Value, json};

use scar::model::live::{LiveResource, LiveState, Owner};
use scar::model::{Address, DesiredGraph, Reference};
use scar::plan::applied_hash;

const ACCOUNT: &str = "123456789012";

fn graph(dir: &Path) -> DesiredGraph {
    let (set, diags) = scar::manifest::check::validate_dir(dir);
    assert!(
        !diags.has_errors(),
        "{} does not validate: {diags:?}",
        dir.display()
    );
    scar::model::build(&set).expect("a validated set has a graph")
}

/// What AWS holds after a successful apply of `g`: every resource owned, references resolved.
fn applied(g: &DesiredGraph) -> LiveState {
    let mut live = LiveState::default();
    for d in &g.resources {
        let outputs = outputs_of(&d.address, &g.region);
        let mut attrs = Map::new();
        for (k, v) in &d.attrs {
            let v = match Reference::from_value(v) {
                Some(r) => outputs_of(&r.address, &g.region)
                    .remove(&r.attribute)
                    .unwrap_or(Value::Null),
                None => v.clone(),
            };
            attrs.insert(k.clone(), v);
        }
        if let Some(Value::Object(t)) = attrs.get_mut("tags") {
            t.insert("scar:applied".into(), json!(applied_hash(d)));
        }
        if d.address.kind == scar::model::ResourceKind::FunctionImage {
            // AWS holds an image's script and configuration only inside the image.
            for f in scar::model::unread_fields(d.address.kind) {
                attrs.remove(*f);
            }
        }
        live.resources.insert(
            d.address.clone(),
            LiveResource {
                attrs,
                owner: Owner::ThisStack,
                fingerprint: Some(format!(
                    "rev-{}",
                    scar::model::short_hash(&d.address.to_string())
                )),
                outputs,
            },
        );
    }
    live
}

/// What AWS answers for a resource once it exists: its ARN and account, and for an API the id
/// AWS picked, its URL and the source ARN of its permission.
fn outputs_of(a: &Address, region: &str) -> std::collections::BTreeMap<String, Value> {
    let mut o: std::collections::BTreeMap<String, Value> = [
        ("arn".to_owned(), json!(arn(a, region))),
        ("account_id".to_owned(), json!(ACCOUNT)),
    ]
    .into();
    if a.kind == scar::model::ResourceKind::FunctionImage {
        // An image built from a base whose digest stands for the address.
        let digest = scar::image::digest(a.name.as_bytes());
        o.insert(
            "uri".into(),
            json!(format!(
                "{ACCOUNT}.dkr.ecr.{region}.amazonaws.com/scar/stack@{digest}"
            )),
        );
        o.insert(
            "base_digest".into(),
            json!(scar::image::digest(
                format!("base of {}", a.name).as_bytes()
            )),
        );
    }
    if a.kind == scar::model::ResourceKind::HttpApi {
        let id = "a1b2c3d4e5";
        o.insert("id".into(), json!(id));
        o.insert(
            "url".into(),
            json!(format!(
                "https://{id}.execute-api.{region}.amazonaws.com/scar"
            )),
        );
        o.insert(
            "source_arn".into(),
            json!(format!("arn:aws:execute-api:{region}:{ACCOUNT}:{id}/*")),
        );
    }
    o
}

fn arn(a: &Address, region: &str) -> String {
    match a.kind {
        scar::model::ResourceKind::IamRole => format!("arn:aws:iam::{ACCOUNT}:role/{}", a.name),
        _ => format!("arn:aws:lambda:{region}:{ACCOUNT}:function:{}", a.name),
    }
}

fn live_state(case: &Path) -> LiveState {
    let Ok(text) = std::fs::read_to_string(case.join("live.yaml")) else {
        return LiveState::default();
    };
    let docs = scar::manifest::yaml::parse(&text).expect("live.yaml parses");
    let spec = docs
        .first()
        .map(|d| scar::manifest::yaml::to_json(&d.root).0)
        .unwrap_or(Value::Null);
    let mut live = match spec.get("base").and_then(Value::as_str) {
        Some(dir) => applied(&graph(&case.join(dir))),
        None => LiveState::default(),
    };
    for (addr, patch) in spec
        .get("patch")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let a: Address = addr.parse().expect("patch address");
        let r = live.resources.get_mut(&a).expect("patched resource exists");
        for (k, v) in patch.as_object().expect("patch is a mapping") {
            r.attrs.insert(k.clone(), v.clone());
        }
    }
    for addr in spec
        .get("remove")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let a: Address = addr
            .as_str()
            .expect("address")
            .parse()
            .expect("remove address");
        live.resources.remove(&a);
    }
    for (addr, r) in spec
        .get("extra")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let owner = match r.get("owner").and_then(Value::as_str) {
            Some("unowned") => Owner::Unowned,
            Some("unknown") => Owner::Unknown("AccessDeniedException: lambda:ListTags".into()),
            Some("this") | None => Owner::ThisStack,
            Some(other) => Owner::OtherStack(other.to_owned()),
        };
        let attrs = r
            .get("attrs")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        live.resources.insert(
            addr.parse().expect("extra address"),
            LiveResource {
                attrs,
                owner,
                fingerprint: Some("rev-extra".into()),
                outputs: Default::default(),
            },
        );
    }
    live
}

/// Every value behind a sensitive path, before or after.
fn sensitive_values(plan: &scar::plan::Plan) -> Vec<String> {
    let mut out = Vec::new();
    for step in &plan.steps {
        for path in &step.sensitive {
            let (top, key) = path.split_once('.').unwrap_or((path, ""));
            for attrs in [&step.before, &step.after].into_iter().flatten() {
                let v = attrs.get(top).map(|v| {
                    if key.is_empty() {
                        v
                    } else {
                        v.get(key).unwrap_or(&Value::Null)
                    }
                });
                if let Some(Value::String(s)) = v
                    && s != scar::plan::REDACTED
                {
                    out.push(s.clone());
                }
            }
        }
    }
    out
}

#[test]
fn plans_render_as_reviewed() {
    insta::glob!("../fixtures/plan", "*/manifests/stack.yaml", |stack| {
        let case = stack.parent().and_then(Path::parent).expect("case dir");
        let desired = graph(&case.join("manifests"));
        let live = live_state(case);
        let destroy = case.join("destroy").exists();
        let mut plan = scar::plan::build(&desired, &live, destroy);
        // As `scar plan` does: the Markdown embeds the workflow when the plan reshapes it.
        if plan.reshapes_workflow() && !destroy {
            let (set, _) = scar::manifest::check::validate_dir(&case.join("manifests"));
            plan.workflow_graph = Some(scar::render::graph::build(&set).mermaid());
        }
        let text = scar::render::plan_text::render(
            &plan,
            scar::render::plan_text::Palette { color: false },
        );
        let markdown = scar::render::plan_markdown::render(&plan);
        let json = scar::render::plan_json::render(&plan);
        for secret in sensitive_values(&plan) {
            for (format, out) in [
                ("text", &text),
                ("markdown", &markdown),
                ("json", &json.to_string()),
            ] {
                assert!(
                    !out.contains(&secret),
                    "{}: {format} shows sensitive {secret}",
                    case.display()
                );
            }
        }
        // Secrets in plan files and output: a live value containing `hunter2` stands for one
        // set by hand, which no manifest shows; it reaches no rendering and no plan file.
        let saved = serde_json::to_string(&plan).expect("plans serialise");
        for (format, out) in [
            ("text", &text),
            ("markdown", &markdown),
            ("json", &json.to_string()),
            ("plan file", &saved),
        ] {
            assert!(
                !out.contains("hunter2"),
                "{}: {format} shows a value set by hand",
                case.display()
            );
        }
        insta::assert_snapshot!("text", text);
        insta::assert_snapshot!("markdown", markdown);
        insta::assert_json_snapshot!("json", json);

        // The plan after applying this one is empty: no perpetual diff.
        if plan.errors.is_empty() && !destroy {
            let after = applied(&desired);
            let mut kept = live.clone();
            kept.resources.retain(|_, r| r.owner != Owner::ThisStack);
            kept.resources.extend(after.resources);
            let again = scar::plan::build(&desired, &kept, false);
            assert!(
                !again.has_changes(),
                "{}: second plan not empty: {:?}",
                case.display(),
                again.changes().collect::<Vec<_>>()
            );
        }
    });
}

#[test]
fn a_plan_of_two_thousand_resources_fits_a_github_comment() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("stack.yaml"),
        "apiVersion: scar/v1alpha1\nkind: Stack\nmetadata:\n  name: big\nspec:\n  region: us-east-1\n  role:\n    managed: true\n",
    )
    .expect("write");
    // 500 functions with one trigger each: function, log group, permission and trigger, plus
    // the role and the buckets: over 2,000 resources.
    for i in 0..500 {
        std::fs::write(
            dir.path().join(format!("f{i}.yaml")),
            format!(
                "apiVersion: scar/v1alpha1\nkind: Function\nmetadata:\n  name: f{i}\nspec:\n  image: grycap/cowsay\n  input:\n    - bucket: big-{}\n      prefix: in/{i}/\n",
                i % 10
            ),
        )
        .expect("write");
    }
    let (set, _) = scar::manifest::check::validate_dir(dir.path());
    let desired = scar::model::build(&set).expect("graph");
    assert!(
        desired.resources.len() >= 2000,
        "{}",
        desired.resources.len()
    );
    let mut plan = scar::plan::build(&desired, &LiveState::default(), false);
    plan.workflow_graph = Some(scar::render::graph::build(&set).mermaid());
    let markdown = scar::render::plan_markdown::render(&plan);
    assert!(
        markdown.len() <= scar::render::plan_markdown::GITHUB_COMMENT_LIMIT,
        "{} characters",
        markdown.len()
    );
    assert!(markdown.starts_with("### scar plan: `big`"));
    assert!(markdown.contains(&format!(
        "**Plan: {} to add, 0 to change, 0 to destroy.**",
        desired.resources.len()
    )));
    assert!(
        markdown.contains("> **Truncated:**"),
        "a clear note when cut"
    );
    assert!(
        markdown.contains("more rows left out"),
        "the table says so too"
    );
    // Every opened fence and fold is closed.
    assert_eq!(
        markdown.matches("<details>").count(),
        markdown.matches("</details>").count()
    );
    assert_eq!(markdown.matches("```").count() % 2, 0);
}
