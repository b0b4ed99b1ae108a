"""Client cost of the openai SDK through its default httpx client vs through
barrage.httpx.AsyncTransport, and of barrage.Client vs aiohttp (semaphore +
ClientSession), against nginx (tests/nginx/nginx_peer.py) on loopback.

Each variant runs in its own process (so peak RSS is its own), pinned to CPU
0 with nginx on CPU 1 as bench/peers does: N chat completions with INFLIGHT
in flight to / (latency 0) or /sleep/50 (50 ms). Reported per variant: wall
s, req/s, client CPU per request (getrusage user+sys of the process, engine
thread included), peak RSS MiB; then the ratios. The SDK's default client
keeps its own settings (max_retries=0 aside, so a failure shows) except its
5 s connect timeout, raised to 60 s (--sdk-connect-timeout) so that one slow
moment on this shared machine cannot end a long run: 1,000 TLS handshakes
at once plus the SDK's CPU overran 5 s on 2026-11-24 (APITimeoutError);
on 2026-12-04, 3,000 requests at 1,000 in flight passed with 5 s. The
timeout changes no work unless it fires.

  build/py-venv/bin/python bindings/python/bench_sdk.py [N] [INFLIGHT] [--out DIR]
  build/py-venv/bin/python bindings/python/bench_sdk.py --profile KIND PATH N INFLIGHT

It takes /tmp/barrage-bench.lock itself (bench/peers/benchlock.py). --out
writes DIR/sdk.json (rows, ratios, load averages before and after) and
DIR/sdk.png (bench_sdk_chart.py, gnuplot). --profile runs one variant under
cProfile timed by the main thread's CPU and prints where it goes, by package.
aiohttp comes from the same venv (pip install aiohttp).
"""
import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
MSG = [{"role": "user", "content": "Say hello in one word."}]
KINDS = ("sdk_httpx", "sdk_barrage", "aiohttp", "barrage_client")
PATHS = ("/", "/sleep/50")
PAIRS = (("sdk_barrage", "sdk_httpx"), ("barrage_client", "aiohttp"))
CLIENT_CPU, NGINX_CPU = 0, 1


def cpu_s():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


async def sdk(client, n, inflight, path):
    import openai
    sem = asyncio.Semaphore(inflight)

    async def one():
        async with sem:
            r = await client.post(path, cast_to=openai.types.chat.ChatCompletion,
                                  body={"model": "m", "messages": MSG})
            assert r.usage.completion_tokens == 42
    async with client:
        await asyncio.gather(*[one() for _ in range(n)])


async def variant(kind, url, ca, n, inflight, path, connect_timeout):
    if kind in ("sdk_httpx", "sdk_barrage"):
        import httpx
        import openai
        timeout = openai.NOT_GIVEN
        if kind == "sdk_httpx":
            http = openai.DefaultAsyncHttpxClient(verify=ca)
            timeout = httpx.Timeout(600.0, connect=connect_timeout)
        else:
            # The httpx flavour the SDK itself is built on (openai >= 3: the
            # httpx2 fork; an httpx client is its "legacy" path, converted).
            try:
                import httpx2
                native = issubclass(openai.DefaultAsyncHttpxClient, httpx2.AsyncClient)
            except ImportError:
                native = False
            if native:
                import barrage.httpx2
                http = httpx2.AsyncClient(transport=barrage.httpx2.AsyncTransport(
                    ca_file=ca, max_inflight=inflight))
            else:
                import barrage.httpx
                http = httpx.AsyncClient(transport=barrage.httpx.AsyncTransport(
                    ca_file=ca, max_inflight=inflight))
        c = openai.AsyncOpenAI(base_url=url, api_key="sk-bench", http_client=http, max_retries=0,
                               timeout=timeout)
        await sdk(c, n, inflight, path)
    elif kind == "barrage_client":
        import barrage
        async with barrage.Client(ca_file=ca, max_inflight=inflight) as c:
            rs = await c.gather([(url + path, {"model": "m", "messages": MSG})] * n)
            assert all(r.status_code == 200 and r.completion_tokens == 42 for r in rs)
    elif kind == "aiohttp":
        import ssl

        import aiohttp
        ctx = ssl.create_default_context(cafile=ca)
        sem = asyncio.Semaphore(inflight)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=inflight, ssl=ctx)) as s:
            async def one():
                async with sem:
                    async with s.post(url + path, json={"model": "m", "messages": MSG}) as r:
                        assert r.status == 200
                        assert b'"completion_tokens":42' in await r.read()
            await asyncio.gather(*[one() for _ in range(n)])


def child(kind, url, ca, n, inflight, path, connect_timeout):
    sys.path.insert(0, HERE)
    c0, t0 = cpu_s(), time.monotonic()
    asyncio.run(variant(kind, url, ca, n, inflight, path, connect_timeout))
    wall, cpu = time.monotonic() - t0, cpu_s() - c0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"kind": kind, "path": path, "n": n, "inflight": inflight, "wall_s": wall,
                      "rps": n / wall, "cpu_us_per_req": cpu / n * 1e6, "peak_rss_mib": rss}))


def package_of(filename):
    """cProfile's file name -> the package (or stdlib module) it belongs to."""
    if filename.startswith("~") or filename.startswith("<"):
        return "builtins (C functions called from Python)"
    parts = filename.replace("\\", "/").split("/")
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1].split(".")[0]
    if "barrage" in parts and "bindings" in parts:
        return "barrage"
    if "lib" in parts:
        rest = parts[len(parts) - 1 - parts[::-1].index("lib") + 1:]
        if len(rest) >= 2 and rest[0].startswith("python3"):
            return "stdlib " + rest[1].split(".")[0]
    return filename


def profile(kind, url, ca, n, inflight, path, connect_timeout):
    """Main-thread CPU by package (cProfile with time.thread_time) and the
    process CPU outside it (the engine's thread, the GC is inside)."""
    import cProfile
    import pstats
    sys.path.insert(0, HERE)
    prof = cProfile.Profile(time.thread_time)
    c0, th0 = cpu_s(), time.thread_time()
    prof.enable()
    asyncio.run(variant(kind, url, ca, n, inflight, path, connect_timeout))
    prof.disable()
    total, main = cpu_s() - c0, time.thread_time() - th0
    by = {}
    st = pstats.Stats(prof)
    for (filename, _, _), (_, _, tottime, _, _) in st.stats.items():
        pkg = package_of(filename)
        by[pkg] = by.get(pkg, 0.0) + tottime
    top = sorted(by.items(), key=lambda kv: -kv[1])[:12]
    print(f"{kind} {path} n={n} inflight={inflight}: process CPU {total / n * 1e6:.0f} us/req, "
          f"main thread {main / n * 1e6:.0f} us/req, other threads {(total - main) / n * 1e6:.0f} us/req")
    for pkg, t in top:
        print(f"  {t / n * 1e6:8.1f} us/req  {t / max(main, 1e-9) * 100:5.1f} %  {pkg}")
    st.sort_stats("tottime").print_stats(15)


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def run_child(args, env):
    pin = ["taskset", "-c", str(CLIENT_CPU)] if shutil.which("taskset") else []
    return subprocess.run(pin + [sys.executable, __file__] + args, env=env, capture_output=True,
                          text=True, timeout=1800)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("n", nargs="?", type=int, default=20000)
    ap.add_argument("inflight", nargs="?", type=int, default=1000)
    ap.add_argument("--out", help="write sdk.json and sdk.png here")
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--paths", default=",".join(PATHS))
    ap.add_argument("--sdk-connect-timeout", type=float, default=60.0)
    a = ap.parse_args()
    sys.path.insert(0, os.path.join(ROOT, "tests", "nginx"))
    sys.path.insert(0, os.path.join(ROOT, "bench", "peers"))
    import benchlock
    import nginx_peer
    benchlock.acquire(log=lambda m: print(m, file=sys.stderr))
    env = dict(os.environ, PYTHONPATH=HERE)
    rows, failures = [], []
    load_before = loadavg()
    print(f"load average before: {load_before}", flush=True)
    with nginx_peer.NginxPeer(cpu=NGINX_CPU, log=lambda m: None) as peer:
        for path in a.paths.split(","):
            for kind in a.kinds.split(","):
                out = run_child(["--child", kind, peer.url(""), peer.ca, str(a.n), str(a.inflight),
                                 path, str(a.sdk_connect_timeout)], env)
                if out.returncode != 0:
                    tail = out.stderr.strip().splitlines()[-1:] or ["?"]
                    print(f"{path:10} {kind:15} FAILED: {tail[0]}", file=sys.stderr, flush=True)
                    failures.append({"kind": kind, "path": path, "error": tail[0]})
                    continue
                row = json.loads(out.stdout.strip().splitlines()[-1])
                rows.append(row)
                print(f"{path:10} {kind:15} wall {row['wall_s']:6.2f} s  {row['rps']:8.0f} req/s  "
                      f"cpu {row['cpu_us_per_req']:7.1f} us/req  rss {row['peak_rss_mib']:6.1f} MiB",
                      flush=True)
    load_after = loadavg()
    print(f"load average after: {load_after}", flush=True)
    by = {(r["path"], r["kind"]): r for r in rows}
    ratios = []
    for path in a.paths.split(","):
        for x, y in PAIRS:
            if (path, x) in by and (path, y) in by:
                rx, ry = by[(path, x)], by[(path, y)]
                ratio = {"path": path, "pair": f"{x}/{y}",
                         "cpu": rx["cpu_us_per_req"] / ry["cpu_us_per_req"],
                         "wall": rx["wall_s"] / ry["wall_s"],
                         "rss": rx["peak_rss_mib"] / ry["peak_rss_mib"]}
                ratios.append(ratio)
                print(f"{path:10} {x}/{y}: cpu/req x{ratio['cpu']:.2f}  wall x{ratio['wall']:.2f}  "
                      f"rss x{ratio['rss']:.2f}")
    if a.out:
        os.makedirs(a.out, exist_ok=True)
        doc = {"n": a.n, "inflight": a.inflight, "sdk_connect_timeout_s": a.sdk_connect_timeout,
               "client_cpu": CLIENT_CPU, "nginx_cpu": NGINX_CPU, "loadavg_before": load_before,
               "loadavg_after": load_after, "rows": rows, "failures": failures, "ratios": ratios,
               "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
        with open(os.path.join(a.out, "sdk.json"), "w") as f:
            json.dump(doc, f, indent=1)
        import bench_sdk_chart
        why = bench_sdk_chart.draw(doc, os.path.join(a.out, "sdk.png"))
        print(bench_sdk_chart.table(doc))
        print(why or f"wrote {a.out}/sdk.json and sdk.png")
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        k, u, ca, n, inf, p, ct = sys.argv[2:9]
        child(k, u, ca, int(n), int(inf), p, float(ct))
    elif len(sys.argv) > 1 and sys.argv[1] == "--profile":
        # --profile KIND PATH N INFLIGHT: its own nginx, under the bench lock
        k, p, n, inf = sys.argv[2:6]
        sys.path.insert(0, os.path.join(ROOT, "tests", "nginx"))
        sys.path.insert(0, os.path.join(ROOT, "bench", "peers"))
        import benchlock
        import nginx_peer
        benchlock.acquire(log=lambda m: print(m, file=sys.stderr))
        with nginx_peer.NginxPeer(cpu=NGINX_CPU, log=lambda m: None) as peer:
            if shutil.which("taskset"):
                os.sched_setaffinity(0, {CLIENT_CPU})
            profile(k, peer.url(""), peer.ca, int(n), int(inf), p, 60.0)
    else:
        sys.exit(main())
