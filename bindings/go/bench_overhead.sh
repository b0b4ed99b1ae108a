#!/bin/sh
# Client overhead per request, 50,000 requests at 500 in flight, one process
# per path (so maxrss is the path's): the plain C ABI (examples/load_c, inline
# mode, cold: its 500 TLS handshakes included), Go DoAll, Go Results, the
# RoundTripper under net/http, and net/http's own transport. Holds the bench lock.
#   bench_overhead.sh BUILD_ROOT [N]
set -eu
case $0 in */*) here=${0%/*} ;; *) here=. ;; esac
here=$(cd "$here" && pwd)
build=$(cd "${1:?usage: bench_overhead.sh BUILD_ROOT [N]}" && pwd)
n=${2:-50000}
work="$build/bindings/go/gowork"
export GOPATH="$work/gopath" GOCACHE="$work/gocache" GOPROXY=off GOFLAGS=-buildvcs=false GOTOOLCHAIN=local
export PKG_CONFIG_PATH="$build/meson-uninstalled" CGO_LDFLAGS="-Wl,-rpath,$build/capi"
(cd "$here" && go test -c -o "$work/barrage.test" .)
tmp=$(mktemp -d)
trap 'kill $mock 2>/dev/null; rm -rf "$tmp"' EXIT
"$build/mockserver/barrage-mockserver" --port 0 --write-ca "$tmp/ca.pem" >"$tmp/mock.out" 2>&1 &
mock=$!
for _ in $(seq 100); do grep -q '^listening on ' "$tmp/mock.out" && break; sleep 0.1; done
url="$(sed -n 's/^listening on //p' "$tmp/mock.out")/v1/chat/completions"
export BARRAGE_OVERHEAD_URL="$url" BARRAGE_OVERHEAD_CA="$tmp/ca.pem" BARRAGE_OVERHEAD_N="$n"
echo "c_abi(load_c): $(timeout 120 "$build/examples/load_c" "$url" "$n" 500 auto "$tmp/ca.pem")"
for p in doall results roundtripper nethttp; do
  BARRAGE_OVERHEAD_PATH=$p timeout 120 "$work/barrage.test" -test.run '^TestOverheadPath$' -test.count=1 | grep '^path='
done
