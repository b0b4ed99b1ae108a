#!/bin/sh
# Runs the Go binding's tests; meson calls it (suite 'bindings').
#   run_tests.sh BUILD_ROOT [MOCKSERVER]
# Exits 77 (meson: skipped) when no Go toolchain is installed.
set -eu
case $0 in */*) here=${0%/*} ;; *) here=. ;; esac
here=$(cd "$here" && pwd)
build=${1:?usage: run_tests.sh BUILD_ROOT [MOCKSERVER]}
build=$(cd "$build" && pwd)
if ! command -v go >/dev/null 2>&1; then
  # CI installs everything (scripts/dev): a missing toolchain there is a failure.
  [ "${CI:-}" = true ] && { echo "run_tests.sh: no 'go' in CI: scripts/dev did not install it" >&2; exit 1; }
  echo "run_tests.sh: 'go' not found in PATH; skipping the Go binding tests (install golang-go)" >&2
  exit 77
fi
work="$build/bindings/go/gowork"
mkdir -p "$work/gopath" "$work/gocache"
export GOPATH="$work/gopath" GOCACHE="$work/gocache" GOPROXY=off GOFLAGS=-buildvcs=false
export GO111MODULE=on GOTOOLCHAIN=local CGO_ENABLED=1
export BARRAGE_MOCKSERVER="${2:-${BARRAGE_MOCKSERVER:-$build/mockserver/barrage-mockserver}}"
export BARRAGE_ABI_LAYOUT="${BARRAGE_ABI_LAYOUT:-$build/tests/abi/abi_layout}"
# Link against this build's library: pkg-config prefers barrage-uninstalled.pc
# (the build tree) over an installed barrage.pc; the rpath finds it at run time.
export PKG_CONFIG_PATH="$build/meson-uninstalled${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
export CGO_LDFLAGS="-Wl,-rpath,$build/capi ${CGO_LDFLAGS:-}"
export LD_LIBRARY_PATH="$build/capi${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
cd "$here"
go vet ./...
go test -race -count=1 ./...

# A Go OpenAI client (github.com/sashabaranov/go-openai, test-only, its own
# module in oaitest/) on the RoundTripper; modules come from the proxy into
# $GOPATH/pkg/mod under the build dir.
(cd "$here/oaitest" && GOPROXY="${BARRAGE_GOPROXY:-https://proxy.golang.org}" go vet ./... &&
  GOPROXY="${BARRAGE_GOPROXY:-https://proxy.golang.org}" go test -race -count=1 ./...)

# A separate module outside the checkout, following README.md's local-checkout
# recipe only (replace directive, PKG_CONFIG_PATH, rpath; no LD_LIBRARY_PATH).
ext=$(mktemp -d "${TMPDIR:-/tmp}/barrage-go-extmod.XXXXXX")
trap 'rm -rf "$ext"' EXIT
cp "$here/testdata/extmod/main.go" "$ext/"
(
  cd "$ext"
  unset LD_LIBRARY_PATH
  go mod init example.com/extmod >/dev/null 2>&1
  go mod edit -require=github.com/barrage-dev/barrage/bindings/go@v0.0.0
  go mod edit -replace=github.com/barrage-dev/barrage/bindings/go="$here"
  PKG_CONFIG_PATH="$build/meson-uninstalled" CGO_LDFLAGS="-Wl,-rpath,$build/capi" go build -o extmod .
  "$BARRAGE_MOCKSERVER" --port 0 --write-ca "$ext/ca.pem" >"$ext/mock.out" 2>&1 &
  mock=$!
  trap 'kill $mock 2>/dev/null' EXIT
  url=
  for _ in $(seq 100); do
    url=$(sed -n 's/^listening on //p' "$ext/mock.out")
    [ -n "$url" ] && break
    sleep 0.1
  done
  [ -n "$url" ] || { echo "run_tests.sh: mock did not start" >&2; exit 1; }
  timeout 30 ./extmod "$url" "$ext/ca.pem"
)
