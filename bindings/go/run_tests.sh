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
  echo "run_tests.sh: 'go' not found in PATH; skipping the Go binding tests (install golang-go)" >&2
  exit 77
fi
work="$build/bindings/go/gowork"
mkdir -p "$work/gopath" "$work/gocache"
export GOPATH="$work/gopath" GOCACHE="$work/gocache" GOPROXY=off GOFLAGS=-buildvcs=false
export GO111MODULE=on GOTOOLCHAIN=local CGO_ENABLED=1
export BARRAGE_MOCKSERVER="${2:-${BARRAGE_MOCKSERVER:-$build/mockserver/barrage-mockserver}}"
# Link against this build's library: pkg-config prefers barrage-uninstalled.pc
# (the build tree) over an installed barrage.pc; the rpath finds it at run time.
export PKG_CONFIG_PATH="$build/meson-uninstalled${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
export CGO_LDFLAGS="-Wl,-rpath,$build/capi ${CGO_LDFLAGS:-}"
export LD_LIBRARY_PATH="$build/capi${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
cd "$here"
go vet ./...
exec go test -race -count=1 ./...
