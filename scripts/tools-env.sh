#!/usr/bin/env bash
# Sourced by the other scripts: tools from PyPI, installed into .venv-tools once, pinned.
#   need_zig         zig and cargo-zigbuild (the C compiler and linker of the static supervisor)
#   need_test_tools  cargo-lambda (its Lambda Runtime API emulator, an implementation
#                    independent of scar's) and wsgidav (a WebDAV server); exports
#                    SCAR_CARGO_LAMBDA and SCAR_WSGIDAV for the tests
TOOLS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS_VENV="$TOOLS_ROOT/.venv-tools"
ZIG_VERSION=0.15.2
ZIGBUILD_VERSION=0.24.1
CARGO_LAMBDA_VERSION=1.9.2
WSGIDAV_VERSION=4.4.0
CHEROOT_VERSION=11.1.2

# pip_need STAMP PACKAGE==VERSION...: installs the packages once per set of versions.
pip_need() {
  local stamp="$TOOLS_VENV/.$1"; shift
  if [ "$(cat "$stamp" 2>/dev/null)" = "$*" ]; then return 0; fi
  command -v python3 >/dev/null 2>&1 || { echo "error: python3 is needed for $*" >&2; return 1; }
  [ -x "$TOOLS_VENV/bin/pip" ] || python3 -m venv "$TOOLS_VENV"
  echo "installing $* into .venv-tools (once)..." >&2
  "$TOOLS_VENV/bin/pip" install --quiet --disable-pip-version-check "$@" >&2
  echo "$*" > "$stamp"
}

need_zig() {
  pip_need zig "ziglang==$ZIG_VERSION" "cargo-zigbuild==$ZIGBUILD_VERSION"
  export PATH="$TOOLS_VENV/bin:$PATH"
}

need_test_tools() {
  pip_need test "ziglang==$ZIG_VERSION" "cargo-lambda==$CARGO_LAMBDA_VERSION" \
    "wsgidav==$WSGIDAV_VERSION" "cheroot==$CHEROOT_VERSION"
  export SCAR_CARGO_LAMBDA="$TOOLS_VENV/bin/cargo-lambda"
  export SCAR_WSGIDAV="$TOOLS_VENV/bin/wsgidav"
}

# apt_need WHAT PACKAGE...: installs Debian packages with apt-get when run as root, else says
# what to install; WHAT names who needs them.
apt_need() {
  local what="$1"; shift
  [ "$#" -eq 0 ] && return 0
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing $* with apt-get (once)..." >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends "$@" >/dev/null 2>&1 ||
      { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "$@" >/dev/null; } ||
      { echo "error: could not install $* with apt-get" >&2; return 1; }
  else
    echo "error: $what need $*: sudo apt-get install $*" >&2
    return 1
  fi
}

# need_test_packages: Debian packages the runtime tests use: busybox-static (a base image with
# no C library at all), bubblewrap (an unprivileged sandbox to run an unpacked image in) and
# qemu-user-static (to run the aarch64 supervisor), openssl (a test certificate authority).
need_test_packages() {
  local need=()
  [ -x /bin/busybox ] || need+=(busybox-static)
  command -v bwrap >/dev/null 2>&1 || need+=(bubblewrap)
  command -v qemu-aarch64-static >/dev/null 2>&1 || need+=(qemu-user-static)
  command -v openssl >/dev/null 2>&1 || need+=(openssl)
  apt_need "the runtime tests" "${need[@]}"
}
