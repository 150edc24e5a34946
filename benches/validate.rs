//! Benchmark of validation on large inputs (not a timed test: it prints figures). The security
//! issue's baselines, measured on the commit before the fix (debug build, this machine):
//! 40,000 environment keys 10.1 s; 40,000 diagnostics (one per invalid key) 101 s. Both were
//! quadratic: duplicate keys were searched linearly per mapping, and each diagnostic's source
//! line was found by splitting the whole file again.
//!
//! Run: `cargo bench --bench validate` (part of `./scripts/bench.sh`).

use std::path::Path;
use std::time::Instant;

const STACK: &str = "apiVersion: scar/v1alpha1\nkind: Stack\nmetadata:\n  name: big\nspec:\n  region: us-east-1\n  role:\n    managed: true\n";

fn manifest(keys: usize, valid_names: bool) -> String {
    let mut text = String::from(
        "apiVersion: scar/v1alpha1\nkind: Function\nmetadata:\n  name: big\nspec:\n  image: grycap/cowsay\n  environment:\n",
    );
    for i in 0..keys {
        if valid_names {
            text.push_str(&format!("    V{i}: x\n"));
        } else {
            text.push_str(&format!("    v-{i}: x\n"));
        }
    }
    text
}

fn run(dir: &Path, label: &str) {
    let started = Instant::now();
    let (set, diags) = scar::manifest::check::validate_dir(dir);
    let mut sink = Vec::new();
    let source = |p: &Path| set.source(p);
    scar::render::diagnostic::render_all(
        &diags,
        &source,
        scar::render::diagnostic::Style { color: false },
        &mut sink,
    )
    .expect("rendering into memory");
    println!(
        "{label:<44} {:>8.0} ms  ({} diagnostics, {} bytes rendered)",
        started.elapsed().as_secs_f64() * 1000.0,
        diags.iter().count(),
        sink.len()
    );
}

fn main() {
    println!("scar validate benchmark (release build; load, check and render diagnostics)");
    for (keys, valid, label) in [
        (40_000, true, "40,000 environment keys"),
        (40_000, false, "40,000 invalid keys (40,000 diagnostics)"),
        (400_000, true, "400,000 environment keys (about 9 MB)"),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("stack.yaml"), STACK).expect("write");
        std::fs::write(dir.path().join("fn.yaml"), manifest(keys, valid)).expect("write");
        run(dir.path(), label);
    }
}
