#!/usr/bin/env bash
# scar quickstart, end to end on a local AWS emulator: builds scar, installs and starts moto on
# loopback, validates the examples, applies one (an S3-triggered container function), shows
# that a second plan has no changes, edits a field and plans again, destroys, stops moto.
# Nothing leaves this machine.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo >/dev/null 2>&1 || { echo "error: cargo not found; install Rust with rustup" >&2; exit 1; }
# shellcheck source=scripts/moto-env.sh
. scripts/moto-env.sh

step() { printf '\n==> %s\n' "$*"; }

step "building scar"
cargo build --locked --quiet
SCAR=$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/debug/scar
"$SCAR" --version

step "validating the example stacks in manifests/ (no AWS call)"
for dir in manifests/*/; do
  "$SCAR" validate "$dir"
done

step "starting moto, the local AWS emulator"
start_moto
trap stop_moto EXIT
echo "moto is answering at $AWS_ENDPOINT_URL"

work=$(mktemp -d)
trap 'stop_moto; rm -rf "$work"' EXIT
cp -r manifests/imagemagick "$work/imagemagick"
cd "$work"

step "scar plan imagemagick"
"$SCAR" plan imagemagick

step "scar apply imagemagick --auto-approve"
"$SCAR" apply imagemagick --auto-approve

step "a second plan has nothing to do (exit code 0 with --detailed-exitcode)"
"$SCAR" plan imagemagick --detailed-exitcode

step "edit memory 1024 -> 2048: the plan shows exactly that (exit code 2: changes)"
sed -i 's/memory: 1024/memory: 2048/' imagemagick/grayify.yaml
set +e
"$SCAR" plan imagemagick --detailed-exitcode
code=$?
set -e
[ "$code" -eq 2 ] || { echo "error: expected exit code 2, got $code" >&2; exit 1; }

step "scar destroy imagemagick --auto-approve (the bucket and its objects are kept)"
"$SCAR" destroy imagemagick --auto-approve

step "importing SCAR's video-process function definition file"
(cd "$OLDPWD/tests/fixtures/import/video-process" &&
  "$SCAR" import scar-video-process.yaml -o "$work/video-process")

step "done: see docs/ for every command and field"
