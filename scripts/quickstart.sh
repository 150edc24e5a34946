#!/usr/bin/env bash
# scar quickstart, end to end on a local AWS emulator: builds scar and the static supervisor
# that goes into images (scripts/build-supervisor.sh), installs and starts moto on
# loopback, and a local container registry (Debian's docker-registry) standing in for Docker Hub
# and for ECR's registry API (moto has ECR's API, not its registry); validates the examples,
# applies one (an S3-triggered container function: its image is assembled on the base image
# without Docker and pushed), checks the image with skopeo, shows that a second plan has no
# changes, edits a field and plans again, destroys; then runs the two-stage wordcount example
# here, each stage inside its own image in an unprivileged sandbox (bubblewrap), against moto's
# S3 (`scar run --local`), and stops both. Nothing leaves this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

command -v cargo >/dev/null 2>&1 || { echo "error: cargo not found; install Rust with rustup" >&2; exit 1; }
# shellcheck source=scripts/moto-env.sh
. scripts/moto-env.sh
# shellcheck source=scripts/registry-env.sh
. scripts/registry-env.sh
# The local run: Debian's static busybox (the example's base image is made of it) and
# bubblewrap (the sandbox; scar's own launcher serves when it is missing).
local_need=()
[ -x /bin/busybox ] || local_need+=(busybox-static)
command -v bwrap >/dev/null 2>&1 || local_need+=(bubblewrap)
apt_need "the quickstart's local run" "${local_need[@]}"

step() { printf '\n==> %s\n' "$*"; }

step "building scar"
cargo build --locked --quiet
SCAR=$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/debug/scar
"$SCAR" --version

step "building the static supervisor scar puts into every image (x86_64, musl; zig from PyPI)"
./scripts/build-supervisor.sh --arch x86_64

step "validating the example stacks in manifests/ (no AWS call)"
for dir in manifests/*/; do
  "$SCAR" validate "$dir"
done

step "starting moto, the local AWS emulator"
start_moto
trap stop_moto EXIT
echo "moto is answering at $AWS_ENDPOINT_URL"

step "starting a local registry with a small grycap/imagemagick base image"
start_registry
trap 'stop_moto; stop_registry' EXIT
seed_base grycap/imagemagick:latest
ECR_HOST=123456789012.dkr.ecr.us-east-1.amazonaws.com
export SCAR_REGISTRY_ENDPOINTS="docker.io=http://$REGISTRY_HOST,$ECR_HOST=http://$REGISTRY_HOST"
echo "Docker Hub and moto's ECR are served at $REGISTRY_HOST (SCAR_REGISTRY_ENDPOINTS)"

work=$(mktemp -d)
trap 'stop_moto; stop_registry; rm -rf "$work"' EXIT
cp -r manifests/imagemagick "$work/imagemagick"
cd "$work"

step "scar plan imagemagick"
"$SCAR" plan imagemagick

step "scar apply imagemagick --auto-approve"
"$SCAR" apply imagemagick --auto-approve

step "the assembled image, as an independent client (skopeo) sees it"
echo '{"default":[{"type":"insecureAcceptAnything"}]}' > "$work/policy.json"
skopeo --policy "$work/policy.json" inspect --tls-verify=false --config \
  "docker://$REGISTRY_HOST/scar/imagemagick:scar-imagemagick" |
  python3 -c 'import json,sys; c=json.load(sys.stdin); print("entrypoint:", c["config"]["Entrypoint"], "| layers:", len(c["rootfs"]["diff_ids"]), "| supervisor:", c["config"]["Labels"]["scar.supervisor.version"])'

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

step "running a whole workflow here, inside its images, without Docker (scar run --local)"
# The busybox image the example names, as Docker Hub has it: busybox and its applet links.
seed_busybox library/busybox:1.36
cp -r "$repo/manifests/wordcount" "$work/wordcount"
# Its buckets, made by applying the stack to moto (the functions are created there too).
quiet() { "$@" > "$work/quiet.log" 2>&1 || { cat "$work/quiet.log" >&2; return 1; }; }
quiet "$SCAR" apply wordcount --auto-approve
cat > "$work/poem.txt" <<'TXT'
The woods are lovely, dark and deep,
But I have promises to keep,
And miles to go before I sleep,
And miles to go before I sleep.
TXT
"$SCAR" run wordcount --local --input "$work/poem.txt"
quiet "$SCAR" get wordcount wordcount-count --to "$work/counts"
echo "the words counted, as the last stage wrote them to S3:"
cat "$work/counts/poem.txt"
grep -q "2 sleep" "$work/counts/poem.txt" || { echo "error: unexpected word counts" >&2; exit 1; }
quiet "$SCAR" destroy wordcount --auto-approve

step "done: see docs/ for every command and field"
