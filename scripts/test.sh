#!/usr/bin/env bash
# Sets up and runs scar's whole test suite on a fresh machine.
#
# Needs: a Rust toolchain (rustup; scar's MSRV is 1.94). Everything else the tests use is
# built by cargo from crates.io. Snapshots are never rewritten here: a changed message fails
# the run; review it with `cargo insta review` (cargo install cargo-insta).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo not found; install Rust with rustup" >&2
  exit 1
fi

export INSTA_UPDATE=no
export NO_COLOR=1
cargo test --locked "$@"
