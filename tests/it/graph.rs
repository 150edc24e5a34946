//! `scar graph`: every example stack drawn as Mermaid and DOT (snapshots), and the command's
//! exit codes.

use std::path::Path;

use crate::support::{scar, stdout};

#[test]
fn every_example_draws_as_reviewed() {
    insta::glob!("../../manifests", "*/stack.yaml", |stack| {
        let dir = stack.parent().expect("example dir");
        let (set, diags) = scar::manifest::check::validate_dir(dir);
        assert!(!diags.has_errors(), "{}", dir.display());
        let graph = scar::render::graph::build(&set);
        insta::assert_snapshot!("mermaid", graph.mermaid());
        insta::assert_snapshot!("dot", graph.dot());
    });
}

#[test]
fn the_command_prints_the_graph_and_refuses_invalid_stacks() {
    let out = scar(&["graph", "manifests/video-process"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(text.starts_with("flowchart LR\n"), "{text}");
    assert!(text.contains("s3://scar-video/split-images/"), "{text}");
    let dot = scar(&["graph", "manifests/video-process", "--format", "dot"]);
    assert!(stdout(&dot).starts_with("digraph scar {"));
    let bad = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/invalid");
    let case = std::fs::read_dir(&bad)
        .expect("invalid cases")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_dir())
        .expect("an invalid case");
    let out = scar(&["graph", &case.display().to_string()]);
    assert_eq!(out.status.code(), Some(1));
}
