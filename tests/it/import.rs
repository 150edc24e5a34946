//! `scar import` on SCAR's own examples (reference/scar.md §2.6) and on cases written for the
//! importer: every result validates, credentials never reach a file, and every dropped field
//! is reported. The generated stacks are snapshotted.

use std::path::Path;

use crate::support::{scar_in, stderr, stdout};

/// All files of a directory, sorted, as one text.
fn tree(dir: &Path) -> String {
    let mut files = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).expect("read dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files.sort();
    files
        .iter()
        .map(|p| {
            let rel = p
                .strip_prefix(dir)
                .expect("below dir")
                .display()
                .to_string();
            let text = std::fs::read_to_string(p).unwrap_or_else(|_| "<binary>".into());
            format!("=== {rel}\n{text}")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn scar_examples_import_into_valid_stacks() {
    insta::glob!("../fixtures/import", "*/*.yaml", |fdl| {
        let case = fdl.parent().expect("case dir");
        let name = case
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if name == "leftovers" {
            return;
        }
        let tmp = tempfile::tempdir().expect("tempdir");
        let out_dir = tmp.path().join("stack");
        let fdl_name = fdl
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let out = scar_in(
            case,
            &["import", &fdl_name, "-o", &out_dir.to_string_lossy()],
        );
        let err = stderr(&out).replace(&*tmp.path().to_string_lossy(), "$TMP");
        assert!(out.status.success(), "{name}: import failed:\n{err}");
        assert!(
            stdout(&out).starts_with("valid: stack"),
            "{name}: {}",
            stdout(&out)
        );

        let written = tree(&out_dir);
        for secret in [
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI",
            "minio-very-secret",
            "minio-user",
            "MDAxY2xv",
        ] {
            assert!(
                !written.contains(secret),
                "{name}: a credential reached the manifests"
            );
        }
        // What the importer wrote validates on its own, too.
        let v = scar_in(case, &["validate", &out_dir.to_string_lossy()]);
        assert!(v.status.success(), "{name}: {}", stderr(&v));

        insta::assert_snapshot!("messages", err);
        insta::assert_snapshot!("stack", written);
    });
}

#[test]
fn fields_without_a_home_are_reported() {
    let case = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/import/leftovers");
    let tmp = tempfile::tempdir().expect("tempdir");
    let out_dir = tmp.path().join("stack");
    let out = scar_in(
        &case,
        &[
            "import",
            "scar-leftovers.yaml",
            "-o",
            &out_dir.to_string_lossy(),
            "--stack",
            "cowsay",
        ],
    );
    let err = stderr(&out).replace(&*tmp.path().to_string_lossy(), "$TMP");
    assert!(out.status.success(), "{err}");
    for field in [
        "boto_profile",
        "runtime",
        "layers",
        "asynchronous",
        "preheat",
        "extra_payload",
        "deployment",
        "image_file",
        "alpine",
        "memory_size",
        "colour",
        "functions.oscar",
    ] {
        assert!(err.contains(field), "`{field}` not reported:\n{err}");
    }
    insta::assert_snapshot!(err);
}

#[test]
fn import_refuses_a_non_empty_directory_and_bad_input() {
    let case = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/import/darknet-api");
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(tmp.path().join("keep.txt"), "mine").expect("write");
    let target = tmp.path().to_string_lossy().into_owned();
    let out = scar_in(
        &case,
        &["import", "scar-darknet-api-s3.yaml", "-o", &target],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not empty"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_dir(tmp.path()).expect("dir").count(),
        1,
        "nothing written"
    );

    std::fs::write(tmp.path().join("bad.yaml"), "functions: [").expect("write");
    let out = scar_in(tmp.path(), &["import", "bad.yaml", "-o", "out"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("invalid YAML") && stderr(&out).contains("--> bad.yaml:"),
        "{}",
        stderr(&out)
    );
    assert!(!tmp.path().join("out").exists(), "nothing written on error");

    std::fs::write(tmp.path().join("nofn.yaml"), "storage_providers: {}\n").expect("write");
    let out = scar_in(tmp.path(), &["import", "nofn.yaml", "-o", "out"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no `functions` block"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn import_prints_credentials() {
    // Credentials in an FDL: a name with PASS, a password inside a URL, a random-looking key,
    // AWS keys (dropped), a provider's secret key. None is printed or written; the names that
    // merely contain KEY as a locator (`S3_KEY_PREFIX`) stay plain values.
    let case = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/import/credentials");
    let tmp = tempfile::tempdir().expect("tempdir");
    let out_dir = tmp.path().join("stack");
    let out = scar_in(
        &case,
        &[
            "import",
            "scar-credentials.yaml",
            "-o",
            &out_dir.to_string_lossy(),
            "--stack",
            "reports",
        ],
    );
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let written = tree(&out_dir);
    for leak in ["hunter2", "Zq8vT3kLw9XbR2mN7pYc4HdF6sJ1aGe5", "app:hunter2"] {
        assert!(!err.contains(leak), "printed `{leak}`:\n{err}");
        assert!(!written.contains(leak), "wrote `{leak}`:\n{written}");
    }
    for moved in ["DB_PASS", "DATABASE_URL", "SIGNING"] {
        assert!(
            written.contains(&format!("/scar/reports/reports/{moved}")),
            "`{moved}` is not a secret reference:\n{written}"
        );
    }
    assert!(written.contains("reports/daily"), "{written}");
    assert!(
        err.contains("DB_PASS: ***"),
        "the line is shown, redacted:\n{err}"
    );
}
