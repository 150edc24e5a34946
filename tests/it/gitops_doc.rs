//! docs/gitops.md's workflow file: valid YAML, and it does what the page says (plan with a
//! saved file and the detailed exit code on pull requests, a Markdown comment, the plan kept as
//! an artifact, and exactly that plan applied on merge).

#[test]
fn the_documented_pipeline_is_valid_and_complete() {
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/gitops.md"))
        .expect("docs/gitops.md");
    let start = page
        .find("```yaml\nname: scar")
        .expect("the workflow file on the page");
    let body = &page[start + "```yaml\n".len()..];
    let yaml = &body[..body.find("\n```").expect("closing fence")];
    let docs = scar::manifest::yaml::parse(yaml).expect("the workflow file is valid YAML");
    let value = scar::manifest::yaml::to_json(&docs[0].root).0;
    assert_eq!(value["name"], "scar");
    assert!(value["on"]["pull_request"].is_object());
    assert!(value["on"]["push"].is_object());
    let jobs = &value["jobs"];
    let steps = |job: &str| -> String {
        jobs[job]["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .map(|s| {
                format!(
                    "{} {}",
                    s["run"].as_str().unwrap_or(""),
                    s["uses"].as_str().unwrap_or("")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let plan = steps("plan");
    for needle in [
        "scar validate",
        "-o plan.json --detailed-exitcode",
        "scar show plan.json --format markdown",
        "gh pr comment",
        "actions/upload-artifact",
    ] {
        assert!(plan.contains(needle), "the plan job lacks `{needle}`");
    }
    let apply = steps("apply");
    assert!(apply.contains("scar apply plan.json"), "{apply}");
    assert!(apply.contains("gh run download"), "{apply}");
    assert!(
        !apply.contains("--auto-approve"),
        "merge applies the reviewed plan, not a new one"
    );
}
