#!/usr/bin/env bash
# Sets up and runs scar's whole test suite on a fresh machine.
#
# Needs: a Rust toolchain (rustup; MSRV 1.94.1) and python3. Installs moto, the local AWS
# emulator the integration tests run against, into .venv-moto (from PyPI, once); each test
# starts and stops its own moto server on loopback. Installs Debian's docker-registry and skopeo
# (apt-get, as root) for the image tests, which start their own registry. Builds the static
# supervisors (scripts/build-supervisor.sh) and installs cargo-lambda (a Lambda Runtime API
# emulator) and wsgidav (a WebDAV server) from PyPI into .venv-tools, for the runtime tests. Snapshots are never
# rewritten here: a changed message fails the run; review it with `cargo insta review`.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo not found; install Rust with rustup" >&2
  exit 1
fi
# shellcheck source=scripts/moto-env.sh
. scripts/moto-env.sh
# shellcheck source=scripts/registry-env.sh
. scripts/registry-env.sh
# shellcheck source=scripts/tools-env.sh
. scripts/tools-env.sh
need_test_tools
need_test_packages
# The static supervisors scar puts into images (x86_64 and aarch64), debug builds.
./scripts/build-supervisor.sh
echo "test.sh: static supervisors built after ${SECONDS}s" >&2

export INSTA_UPDATE=no
export NO_COLOR=1
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
# The workspace's tests also build the glibc supervisor (its own CLI test needs it), which the
# image tests check a plan refuses.
cargo test --locked --workspace "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line for the whole suite, summed over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
