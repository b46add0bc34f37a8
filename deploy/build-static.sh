#!/usr/bin/env bash
# Builds release `agent`, `monitor-agent` and `coordinator` with the C runtime
# (glibc) linked statically, and copies them to dist/ (or to $1).
#
#   deploy/build-static.sh [OUT_DIR]
#
# The binaries need no shared library and no dynamic loader, so they run on
# any x86_64 Linux with a kernel that glibc 2.36 supports (3.2 or newer).
# Host names still resolve through /etc/hosts and DNS, see README.md.
#
# Environment:
#   XMPPLOAD_STATIC_TARGET_DIR  cargo target directory [default: target-static]
#   XMPPLOAD_STATIC_PROFILE     cargo profile [default: release]
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

TARGET=x86_64-unknown-linux-gnu
OUT_DIR=${1:-$ROOT/dist}
TARGET_DIR=${XMPPLOAD_STATIC_TARGET_DIR:-$ROOT/target-static}
PROFILE=${XMPPLOAD_STATIC_PROFILE:-release}
BINARIES=(agent monitor-agent coordinator)

if [ "$(uname -m)" != x86_64 ]; then
    echo "error: this script builds for $TARGET and expects an x86_64 host, not $(uname -m)" >&2
    exit 1
fi
if [ ! -e /usr/lib/x86_64-linux-gnu/libc.a ] && [ ! -e /usr/lib64/libc.a ]; then
    echo "error: the static C library libc.a was not found; install it with: apt-get install -y libc6-dev" >&2
    exit 1
fi

# The flag goes to the target only: an explicit --target keeps build scripts
# and proc macros dynamic, which they must be because rustc loads proc macros
# as shared libraries.
export CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-feature=+crt-static"

cargo build --locked --profile "$PROFILE" --target "$TARGET" --target-dir "$TARGET_DIR" \
    -p xmppload-agent --bin agent \
    -p xmppload-monitor --bin monitor-agent \
    -p xmppload-coordinator --bin coordinator

# Cargo names the release profile's folder `release` and the dev one `debug`.
case "$PROFILE" in
    dev) PROFILE_DIR=debug ;;
    *) PROFILE_DIR=$PROFILE ;;
esac

mkdir -p "$OUT_DIR"
for binary in "${BINARIES[@]}"; do
    cp "$TARGET_DIR/$TARGET/$PROFILE_DIR/$binary" "$OUT_DIR/$binary"
done
echo "static binaries in $OUT_DIR: ${BINARIES[*]}"
