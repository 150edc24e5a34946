#!/usr/bin/env bash
# scar quickstart: builds scar, validates the example stacks, shows what a broken manifest
# reports, and imports one of SCAR's own function definition files.
#
# Nothing here talks to AWS yet: validation and import make no network call. (`scar plan` and
# `scar apply` against a local AWS emulator join this script with the plan/apply issue.)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo not found; install Rust with rustup" >&2
  exit 1
fi

step() { printf '\n==> %s\n' "$*"; }

step "building scar"
cargo build --locked --quiet
SCAR=./target/debug/scar
"$SCAR" --version

step "validating the example stacks in manifests/"
for dir in manifests/*/; do
  "$SCAR" validate "$dir"
done

step "what the video-process stack holds"
"$SCAR" validate manifests/video-process --format json

step "a broken manifest: every problem at once, each with file:line:column, field and hint"
if "$SCAR" validate tests/fixtures/invalid/unknown-field; then
  echo "error: the broken example validated" >&2
  exit 1
fi
"$SCAR" validate tests/fixtures/invalid/literal-secret || true

step "importing SCAR's video-process function definition file"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
(cd tests/fixtures/import/video-process &&
  "../../../../$SCAR" import scar-video-process.yaml -o "$out/video-process")
find "$out/video-process" -type f | sort | sed "s|$out/||"

step "done: see docs/ for every command and field"
