#!/usr/bin/env python3
"""A/B of two builds of bench_e2e: runs the same benchmarks with each binary
in alternating order (A B, B A, ...), so that drift on a shared machine
falls on both alike, and prints the median and range of each counter per
benchmark and build, and the B/A ratio of the medians.

  bench/ab/compare.py --a OLD/bench_e2e --b NEW/bench_e2e --rounds 3 \
      --filter 'BM_Throughput/io_uring/inflight:1000/latency_ms:(0|50)/http:(1|2)'

Take the lock other benchmark runs use (flock /tmp/barrage-bench.lock)."""
import argparse
import json
import statistics
import subprocess
import sys
import tempfile

COUNTERS = ("cpu_us_per_req", "req_per_s", "ceiling_frac", "p99_ms")


def run(binary, flt):
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        subprocess.run([binary, f"--benchmark_filter={flt}", f"--benchmark_out={f.name}",
                        "--benchmark_out_format=json"], check=True, stdout=subprocess.DEVNULL)
        data = json.load(open(f.name))
    out = {}
    for b in data["benchmarks"]:
        if b.get("run_type") == "aggregate":
            continue
        out[b["name"]] = {k: b[k] for k in COUNTERS if k in b}
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", required=True, help="bench_e2e of the old code")
    ap.add_argument("--b", required=True, help="bench_e2e of the new code")
    ap.add_argument("--filter", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    runs = {"A": [], "B": []}
    for i in range(a.rounds):
        order = ("A", "B") if i % 2 == 0 else ("B", "A")
        for which in order:
            runs[which].append(run(a.a if which == "A" else a.b, a.filter))
            print(f"round {i + 1}: {which} done", file=sys.stderr)
    names = sorted(runs["A"][0])
    print(f"| benchmark | counter | A median (range) | B median (range) | B/A |")
    print("|---|---|---|---|---|")
    for n in names:
        for c in COUNTERS:
            va = [r[n][c] for r in runs["A"] if c in r.get(n, {})]
            vb = [r[n][c] for r in runs["B"] if c in r.get(n, {})]
            if not va or not vb:
                continue
            ma, mb = statistics.median(va), statistics.median(vb)
            print(f"| {n.split('/iterations')[0]} | {c} | {ma:.2f} ({min(va):.2f}-{max(va):.2f}) | "
                  f"{mb:.2f} ({min(vb):.2f}-{max(vb):.2f}) | {mb / ma if ma else float('nan'):.3f} |")


if __name__ == "__main__":
    main()
