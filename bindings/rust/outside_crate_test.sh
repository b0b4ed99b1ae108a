#!/bin/sh
# Builds a new crate in a temp dir outside the checkout that depends on this
# binding by path, as the README says, and runs it against the mock: with no
# LD_LIBRARY_PATH, and checks the binary does not need libbarrage.so.
# Usage: outside_crate_test.sh BUILD_ROOT CARGO
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build_root=$(cd "$1" && pwd)
cargo=$2
tmp=$(mktemp -d /tmp/barrage-rs-outside.XXXXXX)
mock_pid=
cleanup() { [ -n "$mock_pid" ] && kill "$mock_pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

# The README's one build-time variable, only when the build dir is not the
# checkout's build/ (the default it finds by itself).
if [ "$build_root" != "$(cd "$here/../.." && pwd)/build" ]; then
  export BARRAGE_BUILD_DIR="$build_root"
fi
unset BARRAGE_LIB_DIR LD_LIBRARY_PATH

mkdir -p "$tmp/app/src"
cat > "$tmp/app/Cargo.toml" <<TOML
[package]
name = "app"
version = "0.1.0"
edition = "2021"

[dependencies]
barrage = { path = "$here", features = ["tokio", "serde"] }
tokio = { version = "1", features = ["rt-multi-thread", "macros"] }
serde_json = "1"
TOML
cat > "$tmp/app/src/main.rs" <<'RS'
use barrage::{aio::AsyncEngine, Config, Request};

#[tokio::main]
async fn main() {
    let mut a = std::env::args().skip(1);
    let (base, ca) = (a.next().unwrap(), a.next().unwrap());
    let engine = AsyncEngine::new(Config::new().ca_file(&ca)).expect("engine");
    let body = serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
    let resp = engine
        .send(Request::new(format!("{base}/v1/chat/completions")).json_value(&body))
        .await
        .expect("call");
    let v: serde_json::Value = resp.json().expect("json");
    assert_eq!(resp.status(), 200);
    assert_eq!(v["object"], "chat.completion");
    println!("outside crate ok: {}", v["object"]);
}
RS
cd "$tmp/app"
# A kept target dir (in the build tree) so a rerun does not rebuild tokio.
target="$build_root/bindings/rust/target-outside"
CARGO_TARGET_DIR="$target" "$cargo" build --release --quiet
bin="$target/release/app"
if ldd "$bin" | grep -q libbarrage; then
  echo "FAIL: the binary still needs libbarrage.so:"; ldd "$bin"; exit 1
fi

"$build_root/mockserver/barrage-mockserver" --port 0 --write-ca "$tmp/ca.pem" > "$tmp/mock.out" 2>/dev/null &
mock_pid=$!
i=0
until grep -q "listening on" "$tmp/mock.out" 2>/dev/null; do
  i=$((i + 1)); [ $i -gt 100 ] && { echo "mock did not start"; exit 1; }
  sleep 0.1
done
base=$(sed -n 's/^listening on //p' "$tmp/mock.out" | head -1)
env -u LD_LIBRARY_PATH "$bin" "$base" "$tmp/ca.pem"
