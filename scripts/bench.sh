#!/usr/bin/env bash
# Runs the benchmarks against moto on loopback and prints the figures:
#   plan/apply and watch (cargo bench), and the function runtime: the release scar-supervisor
#   beside SCAR's own faas-supervisor 1.5.8 (scripts/bench-supervisor.py).
#   local runs (cargo bench --bench local: scar invoke --local and scar run --local).
# `scripts/bench.sh runtime` runs the runtime benchmark alone; `scripts/bench.sh local` the
# local-run one alone.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/moto-env.sh
. scripts/moto-env.sh

if [ "${1:-all}" = all ]; then
  cargo bench --locked --bench reconcile
  cargo bench --locked --bench watch
  cargo bench --locked --bench validate
fi

if [ "${1:-all}" = all ] || [ "${1:-all}" = local ]; then
  echo "== local runs: scar invoke --local, scar run --local" >&2
  # shellcheck source=scripts/registry-env.sh
  . scripts/registry-env.sh
  need_test_packages
  ./scripts/build-supervisor.sh --release --arch x86_64
  SCAR_SUPERVISOR=$PWD/target/x86_64-unknown-linux-musl/supervisor/scar-supervisor \
    cargo bench --locked --bench local
  [ "${1:-all}" = local ] && exit 0
fi

echo "== the function runtime: scar-supervisor vs faas-supervisor 1.5.8" >&2
# shellcheck source=scripts/tools-env.sh
. scripts/tools-env.sh
[ -x /usr/bin/time ] || apt_need "the runtime benchmark (peak RSS)" time
./scripts/build-supervisor.sh --release --arch x86_64
SUPERVISOR=$PWD/target/x86_64-unknown-linux-musl/supervisor/scar-supervisor
# faas-supervisor's metadata has a broken requirement (`webdavclient3==3.14.6requests`): the
# wheel goes in without dependencies, then the ones it needs.
FAAS=.venv-faas
if ! "$FAAS/bin/python" -c "import faassupervisor" 2>/dev/null; then
  echo "installing faas-supervisor 1.5.8 into $FAAS (once)..." >&2
  python3 -m venv "$FAAS"
  "$FAAS/bin/pip" install --quiet --disable-pip-version-check --no-deps faas-supervisor==1.5.8
  "$FAAS/bin/pip" install --quiet --disable-pip-version-check \
    webdavclient3==3.14.6 requests==2.34.2 boto3==1.44.8 pyyaml==6.0.4
fi
start_moto
trap stop_moto EXIT
"$FAAS/bin/python" scripts/bench-supervisor.py "$SUPERVISOR" "$PWD/$FAAS/bin/python" "$AWS_ENDPOINT_URL"
# What each adds to an image: the static binary; the Python packages faas-supervisor runs with
# (a Python interpreter besides, which SCAR's images also need).
site=$("$FAAS/bin/python" -c 'import site; print(site.getsitepackages()[0])')
faas_bytes=$(du -sb --exclude='pip*' --exclude='setuptools*' --exclude='_distutils_hack' \
  --exclude='distutils-precedence.pth' --exclude='__pycache__' "$site" | cut -f1)
echo
echo "bytes added to an image: scar-supervisor $(stat -c %s "$SUPERVISOR") (static, stripped); faas-supervisor and its Python packages $faas_bytes (plus a Python interpreter)"
