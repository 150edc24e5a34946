#!/usr/bin/env bash
# Builds scar-supervisor as a static Linux program (musl) for x86_64 and aarch64: the binary
# scar puts into every function's image, which must start in any base (alpine, busybox, a 2015
# Debian) because it takes nothing from it. The quickstart, the tests and CI call this script.
#
#   scripts/build-supervisor.sh            debug builds, for tests and the quickstart
#   scripts/build-supervisor.sh --release  the size-tuned `supervisor` profile, for releases
#   ... --arch x86_64|aarch64              one architecture only (default: both)
#
# Output: target/<arch>-unknown-linux-musl/{debug,supervisor}/scar-supervisor, where scar finds
# it with no configuration (docs/runtime.md, "The supervisor binary").
#
# Toolchain: the Rust standard libraries for both musl targets (rustup), and zig with
# cargo-zigbuild from PyPI (installed into .venv-tools once) as the C compiler and linker. zig
# carries musl's own headers and C library for every target, so one tool builds both
# architectures (ring, the TLS crypto, has C and assembly), needs no root and no Debian cross
# packages; Debian's cross gcc would compile that C against glibc's headers for a musl target.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=dev
dir=debug
arches="x86_64 aarch64"
while [ $# -gt 0 ]; do
  case "$1" in
    --release) profile=supervisor; dir=supervisor ;;
    --arch) shift; arches="$1" ;;
    *) echo "usage: $0 [--release] [--arch x86_64|aarch64]" >&2; exit 2 ;;
  esac
  shift
done

command -v rustup >/dev/null 2>&1 || { echo "error: rustup is needed to add the musl targets" >&2; exit 1; }
installed=$(rustup target list --installed)
for arch in $arches; do
  case "$installed" in
    *"$arch-unknown-linux-musl"*) ;;
    *) echo "adding the Rust target $arch-unknown-linux-musl (once)..." >&2
       rustup target add "$arch-unknown-linux-musl" >&2 ;;
  esac
done

# shellcheck source=scripts/tools-env.sh
. scripts/tools-env.sh
need_zig

# One cargo run for every architecture: the build scripts and macros are built once.
targets=()
for arch in $arches; do targets+=(--target "$arch-unknown-linux-musl"); done
echo "building scar-supervisor for $arches ($dir)..." >&2
cargo zigbuild --locked -p scar-supervisor --bin scar-supervisor "${targets[@]}" --profile "$profile"
for arch in $arches; do
  bin="target/$arch-unknown-linux-musl/$dir/scar-supervisor"
  # Static means no program interpreter: checked, not assumed (scar checks it again).
  if LC_ALL=C readelf -l "$bin" 2>/dev/null | grep -q 'Requesting program interpreter'; then
    echo "error: $bin is dynamically linked" >&2
    exit 1
  fi
  echo "$bin: $(stat -c %s "$bin") bytes" >&2
done
