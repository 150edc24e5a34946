#!/usr/bin/env bash
# Sourced by the other scripts: makes sure Debian's docker-registry (a real container registry,
# the CNCF distribution server) and skopeo (an independent registry client) are installed, and
# defines start_registry, stop_registry, seed_base and seed_busybox for the quickstart. The image tests start
# their own registry on loopback and check scar's pushes with skopeo.
# Installs them with apt-get when run as root on Debian or Ubuntu; says what to install
# otherwise.
# shellcheck source=scripts/tools-env.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools-env.sh"
need=()
command -v docker-registry >/dev/null 2>&1 || need+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || need+=(skopeo)
apt_need "the image tests and the quickstart" "${need[@]}" || exit 1

# start_registry: starts docker-registry on a free loopback port with its own storage, waits
# until it answers, and sets REGISTRY_PID, REGISTRY_DIR and REGISTRY_HOST (127.0.0.1:PORT).
start_registry() {
  local port
  port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
  REGISTRY_DIR=$(mktemp -d)
  cat > "$REGISTRY_DIR/config.yml" <<YAML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $REGISTRY_DIR/data
http:
  addr: 127.0.0.1:$port
  secret: scar-local
YAML
  docker-registry serve "$REGISTRY_DIR/config.yml" > "$REGISTRY_DIR/log" 2>&1 &
  REGISTRY_PID=$!
  REGISTRY_HOST="127.0.0.1:$port"
  for _ in $(seq 1 100); do
    if python3 -c "import urllib.request; urllib.request.urlopen('http://$REGISTRY_HOST/v2/', timeout=1)" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  cat "$REGISTRY_DIR/log" >&2
  return 1
}

stop_registry() {
  if [ -n "${REGISTRY_PID:-}" ]; then
    kill "$REGISTRY_PID" 2>/dev/null || true
    wait "$REGISTRY_PID" 2>/dev/null || true
    rm -rf "$REGISTRY_DIR"
  fi
}

# seed_base NAME:TAG: pushes a tiny linux/amd64 base image (one layer holding etc/os-release)
# to the local registry as NAME:TAG with skopeo, so image assembly has a base without reaching
# Docker Hub.
seed_base() { seed_image "$1" tiny; }

# seed_busybox NAME:TAG: pushes a linux/amd64 busybox image to the local registry as NAME:TAG,
# made as Docker Hub's busybox is: one static busybox binary (Debian's busybox-static, from this
# machine) and a link in /bin for each of its applets; PATH=/bin, command `sh`.
seed_busybox() { seed_image "$1" busybox; }

# seed_image NAME:TAG tiny|busybox: builds the image as an OCI layout and pushes it.
seed_image() {
  local layout
  layout=$(mktemp -d)
  python3 - "$layout" "$2" <<'PY'
import gzip, hashlib, io, json, os, subprocess, sys, tarfile
root, kind = sys.argv[1], sys.argv[2]
os.makedirs(f"{root}/blobs/sha256")
def blob(data):
    h = hashlib.sha256(data).hexdigest()
    open(f"{root}/blobs/sha256/{h}", "wb").write(data)
    return {"digest": f"sha256:{h}", "size": len(data)}
def add(t, name, data=None, link=None, mode=0o644):
    info = tarfile.TarInfo(name); info.mtime = 0; info.mode = mode
    if link is not None:
        info.type = tarfile.SYMTYPE; info.linkname = link; t.addfile(info)
    elif data is None:
        info.type = tarfile.DIRTYPE; t.addfile(info)
    else:
        info.size = len(data); t.addfile(info, io.BytesIO(data))
raw = io.BytesIO()
with tarfile.open(fileobj=raw, mode="w") as t:
    if kind == "busybox":
        applets = subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True, check=True).stdout.split()
        add(t, "bin", mode=0o755); add(t, "etc", mode=0o755); add(t, "tmp", mode=0o1777)
        add(t, "bin/busybox", open("/bin/busybox", "rb").read(), mode=0o755)
        for a in applets:
            if a != "busybox":
                add(t, f"bin/{a}", link="busybox")
        config = {"Env": ["PATH=/bin"], "Cmd": ["sh"]}
    else:
        add(t, "etc/os-release", b'NAME="scar quickstart base"\n')
        config = {"Env": ["PATH=/usr/bin:/bin"]}
raw = raw.getvalue()
layer = blob(gzip.compress(raw, mtime=0))
config = blob(json.dumps({"architecture": "amd64", "os": "linux", "config": config,
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()]}}).encode())
manifest = blob(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": dict(config, mediaType="application/vnd.oci.image.config.v1+json"),
    "layers": [dict(layer, mediaType="application/vnd.oci.image.layer.v1.tar+gzip")]}).encode())
open(f"{root}/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
open(f"{root}/index.json", "w").write(json.dumps({"schemaVersion": 2, "manifests": [dict(manifest,
    mediaType="application/vnd.oci.image.manifest.v1+json",
    annotations={"org.opencontainers.image.ref.name": "base"})]}))
PY
  echo '{"default":[{"type":"insecureAcceptAnything"}]}' > "$layout/policy.json"
  skopeo --policy "$layout/policy.json" copy --quiet --dest-tls-verify=false \
    "oci:$layout:base" "docker://$REGISTRY_HOST/$1"
  rm -rf "$layout"
}
