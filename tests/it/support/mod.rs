//! Running the real `scar` binary from tests, colour off, from the package root; and moto.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of this module"
)]

pub mod lambda;
pub mod moto;
pub mod proxy;
pub mod registry;
pub mod rootfs;
pub mod supervisor;
pub mod webdav;

use std::path::Path;
use std::process::{Command, Output};

/// Runs `scar` with `args` from the package root, colour off.
pub fn scar(args: &[&str]) -> Output {
    scar_in(Path::new(env!("CARGO_MANIFEST_DIR")), args)
}

/// Runs `scar` with `args` in `dir`, colour off.
pub fn scar_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_scar"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("SCAR_LOG")
        .output()
        .expect("the scar binary runs")
}

/// Stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts that scar succeeded, showing its output otherwise.
pub fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "scar failed:\n{}\n{}",
        stdout(o),
        stderr(o)
    );
}

/// Collects a spawned child's stdout and stderr as they come; the function returns what
/// has come so far, both together.
pub fn collect_output(child: &mut std::process::Child) -> impl Fn() -> String + use<> {
    use std::io::Read as _;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let pipes: [Option<Box<dyn std::io::Read + Send>>; 2] = [
        child.stdout.take().map(|p| Box::new(p) as _),
        child.stderr.take().map(|p| Box::new(p) as _),
    ];
    for mut pipe in pipes.into_iter().flatten() {
        let sink = seen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Ok(mut s) = sink.lock() {
                    s.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
        });
    }
    move || seen.lock().map(|s| s.clone()).unwrap_or_default()
}

/// Writes each `(path, text)` below `root`, making the folders.
pub fn write(root: &Path, files: &[(&str, &str)]) {
    for (name, text) in files {
        let p = root.join(name);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).expect("mkdir");
        }
        std::fs::write(p, text).expect("write");
    }
}

/// Runs `git ARGS` in `dir` as a test user, and asserts it succeeded.
pub fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args([
            "-c",
            "user.name=scar test",
            "-c",
            "user.email=test@example.org",
        ])
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("git");
    assert!(status.success(), "git {args:?}");
}
