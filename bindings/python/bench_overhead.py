"""Per-request client CPU of the binding vs the C ABI (build/examples/load_c).

Both fire N chat POSTs at INFLIGHT in flight against one barrage-mockserver
(latency 0) in this session; CPU is getrusage(RUSAGE_SELF) user+sys of the
client process (engine thread included) divided by N. load_c counts the
500 connection + TLS handshakes in its figure, so the "cold" Python runs
(fresh client, no warm-up) are the like-for-like comparison; "warm" excludes
the handshakes and shows the steady-state cost.
Run: PYTHONPATH=bindings/python python3 bindings/python/bench_overhead.py [N] [INFLIGHT] [BACKEND]
"""
import asyncio
import os
import re
import resource
import subprocess
import sys
import time

import barrage
from barrage.testing import MockServer

BODY = (b'{"model":"gpt-4o-mini","messages":[{"role":"user",'
        b'"content":"Say hello in one word."}],"max_tokens":16}')


def cpu_s():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


async def py_run(mock, n, inflight, backend, how, warm):
    async with barrage.Client(base_url=mock.url, ca_file=mock.ca_file, max_inflight=inflight,
                              backend=backend) as c:
        if warm:  # open (and TLS-handshake) the connections outside the measurement
            await c.gather([("/v1/chat/completions", BODY)] * inflight)
        reqs = [("/v1/chat/completions", BODY)] * n
        c0, t0 = cpu_s(), time.perf_counter()
        if how == "gather":
            rs = await c.gather(reqs)
        else:
            rs = [r async for r in c.map(reqs, ordered=False)]
        t, cpu = time.perf_counter() - t0, cpu_s() - c0
        assert len(rs) == n and all(r.status == 200 and r.body for r in rs)
        return t, cpu


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    inflight = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    backend = sys.argv[3] if len(sys.argv) > 3 else "auto"
    load_c = os.environ.get("BARRAGE_LOAD_C") or os.path.join(
        os.path.dirname(barrage.library_path), "..", "examples", "load_c")
    with MockServer(latency_ms=0, threads=2) as m:
        out = subprocess.run([load_c, m.url + "/v1/chat/completions", str(n), str(inflight),
                              backend, m.ca_file], capture_output=True, text=True, check=True).stdout
        c_us = float(re.search(r"cpu_us_per_req=([\d.]+)", out).group(1))
        print("C ABI (load_c):     ", out.strip())
        for how, warm in (("gather", False), ("map", False), ("gather", True)):
            t, cpu = asyncio.run(py_run(m, n, inflight, backend, how, warm))
            label = how + (" warm" if warm else " cold")
            print(f"python {label:11s}: requests={n} seconds={t:.3f} req_per_s={n / t:.0f} "
                  f"cpu_us_per_req={cpu / n * 1e6:.1f}  (C: {c_us:.1f}, difference "
                  f"{cpu / n * 1e6 - c_us:+.1f} us/req)")


if __name__ == "__main__":
    main()
