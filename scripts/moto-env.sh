#!/usr/bin/env bash
# Sourced by the other scripts: installs moto (the local AWS emulator, from PyPI) into
# .venv-moto once, and exports SCAR_MOTO_SERVER. Set SCAR_MOTO_SERVER yourself to use another
# moto_server binary.
MOTO_VERSION=5.2.5
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -z "${SCAR_MOTO_SERVER:-}" ]; then
  if [ ! -x "$ROOT/.venv-moto/bin/moto_server" ] ||
     ! "$ROOT/.venv-moto/bin/python" -c "import moto, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
    command -v python3 >/dev/null 2>&1 || { echo "error: python3 is needed for moto, the local AWS emulator" >&2; exit 1; }
    echo "installing moto $MOTO_VERSION into .venv-moto (once)..." >&2
    python3 -m venv "$ROOT/.venv-moto"
    "$ROOT/.venv-moto/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
  fi
  # The reference Prometheus text parser, which the watcher's /metrics test reads with.
  if ! "$ROOT/.venv-moto/bin/python" -c "import prometheus_client" 2>/dev/null; then
    "$ROOT/.venv-moto/bin/pip" install --quiet --disable-pip-version-check "prometheus-client==0.26.0"
  fi
  export SCAR_MOTO_SERVER="$ROOT/.venv-moto/bin/moto_server"
fi
export SCAR_TEST_PYTHON="${SCAR_TEST_PYTHON:-$(dirname "$SCAR_MOTO_SERVER")/python}"
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"

# start_moto: starts moto_server on a free loopback port, waits until it answers, and sets
# MOTO_PID and AWS_ENDPOINT_URL (plus dummy credentials) for what follows.
start_moto() {
  local port
  port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
  "$SCAR_MOTO_SERVER" -H 127.0.0.1 -p "$port" > "${TMPDIR:-/tmp}/scar-moto-$port.log" 2>&1 &
  MOTO_PID=$!
  for _ in $(seq 1 300); do
    if python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/', timeout=1)" 2>/dev/null; then
      break
    fi
    kill -0 "$MOTO_PID" 2>/dev/null || { cat "${TMPDIR:-/tmp}/scar-moto-$port.log" >&2; return 1; }
    sleep 0.1
  done
  export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
  unset AWS_PROFILE
}

stop_moto() {
  if [ -n "${MOTO_PID:-}" ]; then
    kill "$MOTO_PID" 2>/dev/null || true
    wait "$MOTO_PID" 2>/dev/null || true
    MOTO_PID=
  fi
}
