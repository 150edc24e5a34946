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
