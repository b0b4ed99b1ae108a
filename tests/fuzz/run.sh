#!/bin/sh
# Runs the libFuzzer targets of a clang build: tests/fuzz/run.sh <build-dir>
# <seconds-per-target> [target...] (default: all). Each target fuzzes a
# scratch copy of its seed corpus (tests/fuzz/corpus/<target>), so the
# committed seeds stay small; a crash or property violation leaves its input
# in <build-dir>/fuzz-artifacts/ and makes the script fail.
# BARRAGE_FUZZ_SECONDS, when set, overrides <seconds-per-target> (so CI can
# lengthen the meson 'fuzz' suite's runs without editing meson.build).
set -eu
if [ $# -lt 2 ]; then
  echo "usage: $0 <build-dir> <seconds-per-target> [target...]" >&2
  exit 2
fi
build=$(cd "$1" && pwd)
seconds=${BARRAGE_FUZZ_SECONDS:-$2}
shift 2
here=$(cd "$(dirname "$0")" && pwd)
targets=${*:-"response_parser sse_stream rate_headers request_writer connect_proxy hosts_file h2_session batch_input dns_answer"}
artifacts="$build/fuzz-artifacts"
mkdir -p "$artifacts"
failed=""
for t in $targets; do
  exe="$build/tests/fuzz/fuzz_$t"
  if [ ! -x "$exe" ]; then
    echo "fuzz: $exe is missing (configure the build with CC=clang CXX=clang++)" >&2
    exit 2
  fi
  work=$(mktemp -d "${TMPDIR:-/tmp}/barrage-fuzz-$t.XXXXXX")
  cp "$here/corpus/$t/"* "$work/"
  echo "fuzz: $t for ${seconds}s"
  # -timeout: one input running over 10 s is a hang, reported as a finding.
  # -rss_limit_mb keeps a runaway allocation from taking the machine.
  if ! "$exe" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$artifacts/$t-" "$work" 2>"$work.log"; then
    tail -n 60 "$work.log" >&2
    echo "fuzz: $t FAILED; input saved under $artifacts/$t-*" >&2
    failed="$failed $t"
  else
    grep -E '^stat::number_of_executed_units|^#[0-9]+ *DONE' "$work.log" || true
  fi
  rm -rf "$work" "$work.log"
done
if [ -n "$failed" ]; then
  echo "fuzz: failures:$failed" >&2
  exit 1
fi
