//! Benchmark of local runs (`scar invoke --local`, `scar run --local`; not a timed test: it
//! prints figures), with moto on loopback and Debian's docker-registry standing in for Docker
//! Hub:
//!
//! - a local invoke of a cached image: the whole `scar invoke DIR FN --local` process, from
//!   start to exit, for a script that does nothing (`:`), so all of it is overhead: reading the
//!   manifests, resolving the base in the registry, the credentials, the sandbox, the
//!   supervisor's start, the Runtime API round trip. The goal: under 100 ms. Also
//!   with scar's own sandbox launcher instead of bubblewrap, and with the user's own keys
//!   (no STS call).
//! - the first unpack of a 100 MB image (busybox and 100 MB of incompressible files in four
//!   layers): download, check and unpack into an empty cache; then the same invoke cached.
//! - a 20-input run of a two-stage workflow (40 invocations) with `--concurrency` 1, 4 and 8.
//! - the 1,000-input run of the same workflow (2,000 invocations, each input's file uploaded
//!   first), one at a time and two at a time: wall time, invocations per second, and the share
//!   of the time that is scar's own work rather than the scripts'. The scripts' share is what
//!   the same two scripts take run directly on this machine's busybox over the same 1,000
//!   files, one process each, nothing else around them.
//!
//! Run: `./scripts/bench.sh local` (or `cargo bench --bench local` with moto, docker-registry,
//! skopeo and bubblewrap installed, and the static supervisor built).

#[allow(dead_code, reason = "shared with the tests, which use the rest")]
#[path = "../tests/it/support/moto.rs"]
mod moto;
#[path = "../tests/it/support/registry.rs"]
#[allow(dead_code, reason = "the benches use part of it")]
mod registry;
#[path = "../tests/it/support/rootfs.rs"]
#[allow(dead_code, reason = "the benches use part of it")]
mod rootfs;

use std::path::Path;
use std::time::{Duration, Instant};

use rootfs::{Entry, layer};
use serde_json::json;

const INVOKES: usize = 20;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Debian's static busybox and its applet links, as a layer's entries.
fn busybox() -> Vec<Entry> {
    let bytes = std::fs::read("/bin/busybox").expect("/bin/busybox (busybox-static)");
    let mut e = vec![Entry::file("bin/busybox", &bytes, 0o755)];
    for a in [
        "sh", "cat", "tr", "basename", "wc", "sort", "uniq", "head", "sed",
    ] {
        e.push(Entry::Symlink(format!("bin/{a}"), "busybox".into()));
    }
    e
}

/// `n` bytes that do not compress (a xorshift stream).
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(n);
    out
}

fn function(dir: &Path, name: &str, image: &str, script: &str, io: (&str, &str)) {
    std::fs::write(
        dir.join(format!("{name}.yaml")),
        format!("apiVersion: scar/v1alpha1\nkind: Function\nmetadata:\n  name: {name}\nspec:\n  image: {image}\n  script: {name}.sh\n  timeout: 60\n  input:\n    - bucket: bench-local\n      prefix: {}\n  output:\n    - bucket: bench-local\n      prefix: {}\n", io.0, io.1),
    )
    .expect("function");
    std::fs::write(dir.join(format!("{name}.sh")), script).expect("script");
}

/// Runs scar in `dir` with `cache` as its cache; returns the wall time.
fn scar(moto: &moto::Moto, dir: &Path, cache: &Path, args: &[&str]) -> Duration {
    scar_with(moto, dir, cache, args, "bwrap")
}

/// [`scar`] with the sandbox `sandbox` (`bwrap` or `builtin`).
fn scar_with(
    moto: &moto::Moto,
    dir: &Path,
    cache: &Path,
    args: &[&str],
    sandbox: &str,
) -> Duration {
    let started = Instant::now();
    let out = moto::scar_command(&moto.endpoint, dir, args)
        .env("SCAR_CACHE_DIR", cache)
        .env("SCAR_SANDBOX", sandbox)
        .output()
        .expect("scar runs");
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "scar {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

fn main() {
    let moto = moto::Moto::start();
    let reg = registry::shared();
    let small = registry::push_image(
        reg,
        "bench/busybox",
        "1",
        "amd64",
        &[layer(&busybox())],
        json!({"Env": ["PATH=/bin"]}),
    );
    let mut layers = vec![layer(&busybox())];
    for i in 0..4u64 {
        let data = noise(25 * 1024 * 1024, i + 1);
        layers.push(layer(&[Entry::file(
            &format!("data/part{i}.bin"),
            &data,
            0o644,
        )]));
    }
    let big = registry::push_image(
        reg,
        "bench/big",
        "1",
        "amd64",
        &layers,
        json!({"Env": ["PATH=/bin"]}),
    );
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let s3 = moto::s3(&moto.sdk().await);
        s3.create_bucket()
            .bucket("bench-local")
            .send()
            .await
            .expect("bucket");
    });

    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    std::fs::write(d.join("stack.yaml"), "apiVersion: scar/v1alpha1\nkind: Stack\nmetadata:\n  name: localbench\nspec:\n  region: us-east-1\n  role:\n    managed: true\n").expect("stack");
    function(d, "noop", &small, ":\n", ("noop/", "noop-out/"));
    function(d, "big", &big, ":\n", ("big/", "big-out/"));
    let stage = "name=$(basename \"$INPUT_FILE_PATH\")\ntr a-z A-Z < \"$INPUT_FILE_PATH\" > \"$TMP_OUTPUT_DIR/$name\"\n";
    function(d, "upper", &small, stage, ("in/", "mid/"));
    let count = "name=$(basename \"$INPUT_FILE_PATH\")\nwc -c < \"$INPUT_FILE_PATH\" > \"$TMP_OUTPUT_DIR/$name\"\n";
    function(d, "count", &small, count, ("mid/", "out/"));

    // 1. A cached image: one invoke to fill the cache, then INVOKES timed.
    let cache = tempfile::tempdir().expect("cache");
    let invoke = ["invoke", ".", "noop", "--local"];
    scar(&moto, d, cache.path(), &invoke);
    let walls: Vec<Duration> = (0..INVOKES)
        .map(|_| scar(&moto, d, cache.path(), &invoke))
        .collect();
    let builtin: Vec<Duration> = (0..INVOKES)
        .map(|_| scar_with(&moto, d, cache.path(), &invoke, "builtin"))
        .collect();
    let long_term = [
        "invoke",
        ".",
        "noop",
        "--local",
        "--credentials",
        "long-term",
    ];
    let own_keys: Vec<Duration> = (0..INVOKES)
        .map(|_| scar(&moto, d, cache.path(), &long_term))
        .collect();
    let validate: Vec<Duration> = (0..INVOKES)
        .map(|_| scar(&moto, d, cache.path(), &["validate", "."]))
        .collect();

    // 2. The first unpack of a 100 MB image, into an empty cache; then the same, cached.
    let cold = tempfile::tempdir().expect("cold cache");
    let first = scar(&moto, d, cold.path(), &["invoke", ".", "big", "--local"]);
    let again = scar(&moto, d, cold.path(), &["invoke", ".", "big", "--local"]);
    let size: u64 = layers.iter().map(|l| l.len() as u64).sum();

    // 3. 20 inputs through two stages.
    let inputs = tempfile::tempdir().expect("inputs");
    for i in 0..20 {
        std::fs::write(
            inputs.path().join(format!("doc{i:02}.txt")),
            "some words to shout\n".repeat(500),
        )
        .expect("input");
    }
    let input = inputs.path().to_string_lossy().into_owned();
    let runs: Vec<(usize, Duration)> = [1usize, 4, 8]
        .iter()
        .map(|c| {
            let c_text = c.to_string();
            (
                *c,
                scar(
                    &moto,
                    d,
                    cache.path(),
                    &[
                        "run",
                        ".",
                        "upper",
                        "--local",
                        "--input",
                        &input,
                        "--concurrency",
                        &c_text,
                    ],
                ),
            )
        })
        .collect();

    // 4. 1,000 inputs through the same two stages, and the scripts alone over them.
    let many = tempfile::tempdir().expect("inputs");
    for i in 0..THOUSAND {
        std::fs::write(
            many.path().join(format!("doc{i:04}.txt")),
            "some words to shout\n".repeat(50),
        )
        .expect("input");
    }
    let many_input = many.path().to_string_lossy().into_owned();
    let thousand: Vec<(usize, Duration)> = [1usize, 2]
        .iter()
        .map(|c| {
            let c_text = c.to_string();
            let args = [
                "run",
                ".",
                "upper",
                "--local",
                "--input",
                &many_input,
                "--concurrency",
                &c_text,
            ];
            (*c, scar(&moto, d, cache.path(), &args))
        })
        .collect();
    let alone = scripts_alone(many.path(), &[stage, count]);

    println!(
        "scar local-run benchmark (moto on loopback, docker-registry; {} cores)",
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    println!(
        "  cached invoke, whole process, no-op script: median {} (min {}, max {}) of {INVOKES}   (goal < 100 ms)",
        ms(median(walls.clone())),
        ms(*walls.iter().min().unwrap_or(&Duration::ZERO)),
        ms(*walls.iter().max().unwrap_or(&Duration::ZERO))
    );
    println!(
        "  the same with scar's own sandbox launcher (SCAR_SANDBOX=builtin): median {}",
        ms(median(builtin))
    );
    println!(
        "  the same with --credentials long-term (no STS call for short-lived ones): median {}",
        ms(median(own_keys))
    );
    println!(
        "  for scale, `scar validate` of the same stack: median {}",
        ms(median(validate))
    );
    println!(
        "  first unpack of a {:.0} MB image (download, check, unpack, run): {}; cached: {}",
        size as f64 / 1e6,
        ms(first),
        ms(again)
    );
    for (c, t) in runs {
        println!(
            "  20 inputs x 2 stages (40 invocations), --concurrency {c}: {:.2} s",
            t.as_secs_f64()
        );
    }
    let invocations = 2 * THOUSAND;
    for (c, t) in thousand {
        let wall = t.as_secs_f64();
        // The scripts' own time, spread over the invocations that ran at once.
        let scripts = alone.as_secs_f64() / c as f64;
        println!(
            "  {THOUSAND} inputs x 2 stages ({invocations} invocations), --concurrency {c}: {wall:.1} s, {:.0} invocations/s; the scripts alone {scripts:.1} s ({:.0}%), scar's own work {:.0}%",
            invocations as f64 / wall,
            100.0 * scripts / wall,
            100.0 * (1.0 - scripts / wall)
        );
    }
}

const THOUSAND: usize = 1000;

/// What `scripts` (one stage after the other) take run directly by this machine's busybox
/// over every file in `inputs`: one `sh` process per file and stage, as an invocation runs
/// its script, with the same variables; the outputs go to a scratch folder.
fn scripts_alone(inputs: &Path, scripts: &[&str]) -> Duration {
    let out = tempfile::tempdir().expect("outputs");
    let mut files: Vec<_> = std::fs::read_dir(inputs)
        .expect("inputs")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    let started = Instant::now();
    for script in scripts {
        for f in &files {
            let status = std::process::Command::new("/bin/busybox")
                .args(["sh", "-c", script])
                .env("INPUT_FILE_PATH", f)
                .env("TMP_OUTPUT_DIR", out.path())
                .status()
                .expect("busybox sh");
            assert!(status.success(), "{script} on {}", f.display());
        }
    }
    started.elapsed()
}
