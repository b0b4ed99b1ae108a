#!/bin/sh
# Runs the Rust binding's tests. Usage: run_tests.sh BUILD_ROOT
# Skips (exit 77) when cargo is not installed. Fetches crates when they are
# not in the local cargo cache yet (a clean CI machine), then runs offline.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build_root=$(cd "${1:?usage: run_tests.sh BUILD_ROOT}" && pwd)

cargo=$(command -v cargo 2>/dev/null || true)
for c in /root/.cargo/bin/cargo "${HOME:-/nonexistent}/.cargo/bin/cargo"; do
  [ -n "$cargo" ] && break
  [ -x "$c" ] && cargo=$c
done
if [ -z "$cargo" ]; then
  # CI installs everything (scripts/dev): a missing toolchain there is a failure.
  [ "${CI:-}" = true ] && { echo "cargo not found in CI: scripts/dev did not install Rust" >&2; exit 1; }
  echo "cargo not found: Rust binding tests skipped"
  exit 77
fi
# rustc sits next to cargo when it is not on PATH.
PATH="$(dirname "$cargo"):$PATH"
export PATH

export CARGO_TARGET_DIR="$build_root/bindings/rust/target"
# Static link (the default) takes the engine objects from this build dir.
export BARRAGE_BUILD_DIR="$build_root"
export BARRAGE_MOCKSERVER="$build_root/mockserver/barrage-mockserver"
cd "$here"
"$cargo" fetch --quiet || echo "cargo fetch failed (no network?): trying with the local cache"
"$cargo" test --offline --release --features tokio,serde
# A dependent crate outside the checkout, built as the README says.
"$here/outside_crate_test.sh" "$build_root" "$cargo"
