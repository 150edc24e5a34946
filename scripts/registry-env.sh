#!/usr/bin/env bash
# Sourced by the other scripts: makes sure Debian's docker-registry (a real container registry,
# the CNCF distribution server) and skopeo (an independent registry client) are installed. The
# image tests start their own registry on loopback and check scar's pushes with skopeo.
# Installs them with apt-get when run as root on Debian or Ubuntu; says what to install
# otherwise.
need=()
command -v docker-registry >/dev/null 2>&1 || need+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || need+=(skopeo)
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${need[*]} with apt-get (once)..." >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null 2>&1 ||
      { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null; } ||
      { echo "error: could not install ${need[*]} with apt-get" >&2; exit 1; }
  else
    echo "error: the image tests need ${need[*]}: sudo apt-get install ${need[*]}" >&2
    exit 1
  fi
fi
