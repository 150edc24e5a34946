//! Benchmark of watch mode's reaction time (not a timed test: it prints figures): the latency
//! from a file write to the start of the run it causes, and to the start of that run's apply,
//! with moto on loopback. The target: under 1 s from the write to the start of the
//! apply, AWS time excluded.
//!
//! For each debounce setting, 20 edits (memory of one function, 2 s apart) are timed from the
//! write returning to the `[watch] run N started` line (file event + debounce: no AWS) and to
//! the `[watch] run N applying` line (that plus validation, lock and live reads on moto).
//!
//! Run: `./scripts/bench.sh` (or `cargo bench --bench watch` with moto installed).

#[allow(dead_code, reason = "shared with the tests, which use the rest")]
#[path = "../tests/it/support/moto.rs"]
mod moto;
#[path = "../tests/it/support/registry.rs"]
#[allow(dead_code, reason = "the benches use part of it")]
mod registry;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

const EDITS: usize = 20;

fn function(memory: u32) -> String {
    format!(
        "apiVersion: scar/v1alpha1\nkind: Function\nmetadata:\n  name: bench\nspec:\n  image: grycap/cowsay\n  memory: {memory}\n  input:\n    - bucket: bench-watch\n      prefix: in/\n"
    )
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn max(v: &[Duration]) -> Duration {
    v.iter().copied().max().unwrap_or_default()
}

/// Waits for a line containing `needle`, returning when it arrived.
fn until(lines: &mpsc::Receiver<(Instant, String)>, needle: &str) -> Instant {
    loop {
        let (at, line) = lines
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no `{needle}` within 60 s"));
        if line.contains(needle) {
            return at;
        }
    }
}

fn run(moto: &moto::Moto, debounce: &str) -> (Vec<Duration>, Vec<Duration>) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("stack.yaml"),
        "apiVersion: scar/v1alpha1\nkind: Stack\nmetadata:\n  name: watchbench\nspec:\n  region: us-east-1\n  role:\n    managed: true\n",
    )
    .expect("write");
    let file = dir.path().join("bench.yaml");
    std::fs::write(&file, function(512)).expect("write");
    let mut child = moto::scar_command(
        &moto.endpoint,
        dir.path(),
        &["watch", ".", "--interval", "0", "--debounce", debounce],
    )
    .env("SCAR_RATE_LIMIT", "off")
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .expect("scar watch starts");
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send((Instant::now(), line)).is_err() {
                return;
            }
        }
    });
    until(&rx, "run 1 applied");
    let (mut to_run, mut to_apply) = (Vec::new(), Vec::new());
    for i in 0..EDITS {
        let n = i + 2;
        std::thread::sleep(Duration::from_secs(2));
        let memory = if i % 2 == 0 { 1024 } else { 512 };
        let wrote = write_and_time(&file, memory);
        let started = until(&rx, &format!("run {n} started"));
        let applying = until(&rx, &format!("run {n} applying"));
        until(&rx, &format!("run {n} applied"));
        to_run.push(started - wrote);
        to_apply.push(applying - wrote);
    }
    let _ = child.kill();
    let _ = child.wait();
    (to_run, to_apply)
}

fn write_and_time(file: &Path, memory: u32) -> Instant {
    std::fs::write(file, function(memory)).expect("write");
    Instant::now()
}

fn main() {
    println!(
        "scar watch benchmark (moto 5.2.5 on loopback; {} cores; {EDITS} edits per row)",
        std::thread::available_parallelism().map_or(1, usize::from)
    );
    println!(
        "  debounce   write -> run start (no AWS)   write -> apply start (incl. reads on moto)"
    );
    for debounce in ["300ms", "100ms"] {
        let moto = moto::Moto::start();
        let (to_run, to_apply) = run(&moto, debounce);
        println!(
            "  {debounce:>8}   median {:>4} ms, max {:>4} ms     median {:>4} ms, max {:>4} ms   (target < 1000 ms)",
            median(to_run.clone()).as_millis(),
            max(&to_run).as_millis(),
            median(to_apply.clone()).as_millis(),
            max(&to_apply).as_millis()
        );
    }
}
