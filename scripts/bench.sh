#!/usr/bin/env bash
# Runs the plan/apply and watch benchmarks against moto on loopback and prints the figures.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/moto-env.sh
. scripts/moto-env.sh
cargo bench --locked --bench reconcile
cargo bench --locked --bench watch
