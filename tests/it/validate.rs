//! `scar validate` on the examples (all valid) and on every case under
//! `tests/fixtures/invalid/` (each invalid, each message located and snapshotted).

use std::path::Path;

use crate::support::{scar, stderr, stdout};

#[test]
fn every_example_validates() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests");
    let mut seen = 0;
    for entry in std::fs::read_dir(&root).expect("manifests/ exists") {
        let dir = entry.expect("entry").path();
        if !dir.is_dir() {
            continue;
        }
        let rel = format!(
            "manifests/{}",
            dir.file_name().unwrap_or_default().to_string_lossy()
        );
        let out = scar(&["validate", &rel]);
        assert!(
            out.status.success(),
            "{rel} should validate:\n{}",
            stderr(&out)
        );
        assert!(stdout(&out).starts_with("valid: stack"), "{}", stdout(&out));
        seen += 1;
    }
    assert!(
        seen >= 4,
        "expected at least four example stacks, found {seen}"
    );
}

#[test]
fn invalid_cases_fail_with_located_messages() {
    insta::glob!("../fixtures/invalid", "*/case.txt", |case_file| {
        let dir = case_file.parent().expect("case dir");
        let name = dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let rel = format!("tests/fixtures/invalid/{name}");
        let out = scar(&["validate", &rel]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{rel} must fail:\n{}",
            stderr(&out)
        );
        assert!(
            stdout(&out).is_empty(),
            "nothing on stdout for an invalid stack"
        );
        let text = stderr(&out);
        let why = std::fs::read_to_string(case_file).unwrap_or_default();
        insta::with_settings!({description => why.trim().to_owned(), omit_expression => true}, {
            insta::assert_snapshot!("stderr", text);
        });

        // Every error names a file and, unless it is about the directory itself, a line.
        let json = scar(&["validate", &rel, "--format", "json"]);
        let doc: serde_json::Value =
            serde_json::from_slice(&json.stdout).expect("validate --format json prints JSON");
        assert_eq!(doc["valid"], false);
        let diags = doc["diagnostics"].as_array().expect("diagnostics");
        assert!(!diags.is_empty());
        let directory_level = ["no-stack", "no-manifests"].contains(&name.as_str());
        for d in diags.iter().filter(|d| d["severity"] == "error") {
            if directory_level {
                continue;
            }
            let span = &d["location"]["span"];
            assert!(
                span["line"].as_u64().unwrap_or(0) > 0,
                "{rel}: unlocated error {d}"
            );
        }
    });
}

#[test]
fn validate_json_lists_what_it_read() {
    let out = scar(&["validate", "manifests/video-process", "--format", "json"]);
    assert!(out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["stack"], "video-process");
    assert_eq!(doc["functions"].as_array().map(Vec::len), Some(2));
    assert_eq!(doc["errors"], 0);
}

#[test]
fn missing_directory_is_an_error_not_a_panic() {
    let out = scar(&["validate", "does/not/exist"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is not a directory"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn usage_errors_exit_one() {
    // Exit 2 is reserved for `plan --detailed-exitcode` (changes present).
    let out = scar(&["validate"]);
    assert_eq!(out.status.code(), Some(1));
    let out = scar(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).starts_with("scar "));
}

#[test]
fn completions_are_printed_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let out = scar(&["completions", shell]);
        assert!(out.status.success(), "{shell}");
        assert!(
            stdout(&out).contains("validate"),
            "{shell} completion lists commands"
        );
    }
}

#[test]
fn symlinked_directories_are_followed_into_loops() {
    // Two links back to the directory itself (and one into the other): `validate` (and so
    // `watch`) must finish, reading each manifest once.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("stack.yaml"),
        "apiVersion: scar/v1alpha1\nkind: Stack\nmetadata:\n  name: loops\nspec:\n  region: us-east-1\n  role:\n    managed: true\n",
    )
    .expect("write");
    std::os::unix::fs::symlink(".", dir.path().join("self-a")).expect("link");
    std::os::unix::fs::symlink(dir.path(), dir.path().join("self-b")).expect("link");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_scar"))
        .args(["validate", &dir.path().display().to_string()])
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("scar starts");
    // Not a timing: a walk that loops never ends, one that does not ends at once.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let out = child.wait_with_output().expect("output");
            assert!(status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            break;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("validate walked the links forever");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Where an input may be dropped with no record, `validate` says so; where a failure policy
/// would do nothing, too.
#[test]
fn inputs_that_could_be_dropped_unrecorded_are_warned_about() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stack = "apiVersion: scar/v1alpha1\nkind: Stack\nmetadata:\n  name: books\nspec:\n  region: us-east-1\n  role:\n    managed: true\n";
    let function = |extra: &str| {
        format!(
            "apiVersion: scar/v1alpha1\nkind: Function\nmetadata:\n  name: ocr\nspec:\n  image: alpine\n  reservedConcurrency: 5\n  input:\n    - bucket: books-scans\n{extra}"
        )
    };
    std::fs::write(dir.path().join("stack.yaml"), stack).expect("write");
    let check = |extra: &str| {
        std::fs::write(dir.path().join("ocr.yaml"), function(extra)).expect("write");
        let out = scar(&["validate", &dir.path().to_string_lossy()]);
        assert!(out.status.success(), "{}", stderr(&out));
        stderr(&out)
    };
    // The default failure policy records them in the stack's failures bucket.
    assert!(!check("").contains("no record"));
    assert!(!check("  onFailure:\n    maxEventAge: 600\n").contains("no record"));
    let said = check("  onFailure:\n    destination: none\n");
    assert!(
        said.contains("drops those that wait too long with no record")
            && said.contains("spec.reservedConcurrency"),
        "{said}"
    );
    std::fs::write(
        dir.path().join("ocr.yaml"),
        "apiVersion: scar/v1alpha1\nkind: Function\nmetadata:\n  name: ocr\nspec:\n  image: alpine\n  http: {}\n  onFailure:\n    retryAttempts: 0\n",
    )
    .expect("write");
    let out = scar(&["validate", &dir.path().to_string_lossy()]);
    assert!(
        stderr(&out).contains("`onFailure` does nothing here"),
        "{}",
        stderr(&out)
    );
}
