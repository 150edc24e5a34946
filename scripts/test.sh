#!/usr/bin/env bash
# Sets up and runs scar's whole test suite on a fresh machine.
#
# Needs: a Rust toolchain (rustup; MSRV 1.94.1) and python3. Installs moto, the local AWS
# emulator the integration tests run against, into .venv-moto (from PyPI, once); each test
# starts and stops its own moto server on loopback. Snapshots are never rewritten here: a
# changed message fails the run; review it with `cargo insta review`.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo not found; install Rust with rustup" >&2
  exit 1
fi
# shellcheck source=scripts/moto-env.sh
. scripts/moto-env.sh

export INSTA_UPDATE=no
export NO_COLOR=1
cargo test --locked "$@"
