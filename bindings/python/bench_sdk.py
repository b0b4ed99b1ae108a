"""Client cost of the openai SDK through its default httpx client vs through
barrage.httpx.AsyncTransport, and of barrage.Client vs aiohttp (semaphore +
ClientSession), against nginx (tests/nginx/nginx_peer.py) on loopback.

Each variant runs in its own process (so peak RSS is its own): N chat
completions with INFLIGHT in flight to /  (latency 0) or /sleep/50 (50 ms).
Reported per variant: wall s, req/s, client CPU per request (getrusage
user+sys, engine thread included), peak RSS MiB; then ratios.

Run under the bench lock:
  flock /tmp/barrage-bench.lock build/py-venv/bin/python bindings/python/bench_sdk.py [N] [INFLIGHT]
"""
import asyncio
import json
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
MSG = [{"role": "user", "content": "Say hello in one word."}]


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


async def variant(kind, url, ca, n, inflight, path):
    if kind in ("sdk_httpx", "sdk_barrage"):
        import httpx
        import openai
        if kind == "sdk_httpx":
            http = openai.DefaultAsyncHttpxClient(verify=ca)
        else:
            import barrage.httpx
            http = httpx.AsyncClient(transport=barrage.httpx.AsyncTransport(
                ca_file=ca, max_inflight=inflight))
        c = openai.AsyncOpenAI(base_url=url, api_key="sk-bench", http_client=http, max_retries=0)
        await sdk(c, n, inflight, path)
    elif kind == "barrage_client":
        import barrage
        async with barrage.Client(ca_file=ca, max_inflight=inflight) as c:
            rs = await c.gather([(url + path, {"model": "m", "messages": MSG})] * n)
            assert all(r.status_code == 200 for r in rs)
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
                        await r.read()
            await asyncio.gather(*[one() for _ in range(n)])


def child(kind, url, ca, n, inflight, path):
    sys.path.insert(0, HERE)
    c0, t0 = cpu_s(), time.monotonic()
    asyncio.run(variant(kind, url, ca, n, inflight, path))
    wall, cpu = time.monotonic() - t0, cpu_s() - c0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"kind": kind, "path": path, "wall_s": wall, "rps": n / wall,
                      "cpu_us_per_req": cpu / n * 1e6, "peak_rss_mib": rss}))


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    inflight = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    sys.path.insert(0, os.path.join(ROOT, "tests", "nginx"))
    import nginx_peer
    env = dict(os.environ, PYTHONPATH=HERE)
    rows = []
    with nginx_peer.NginxPeer(log=lambda m: None) as peer:
        for path in ("/", "/sleep/50"):
            for kind in ("sdk_httpx", "sdk_barrage", "aiohttp", "barrage_client"):
                out = subprocess.run([sys.executable, __file__, "--child", kind,
                                      peer.url(""), peer.ca, str(n), str(inflight), path],
                                     env=env, capture_output=True, text=True, timeout=170)
                if out.returncode != 0:
                    print(kind, path, "FAILED", out.stderr[-2000:], file=sys.stderr)
                    continue
                row = json.loads(out.stdout.strip().splitlines()[-1])
                rows.append(row)
                print(f"{path:10} {kind:15} wall {row['wall_s']:6.2f} s  {row['rps']:8.0f} req/s  "
                      f"cpu {row['cpu_us_per_req']:7.1f} us/req  rss {row['peak_rss_mib']:6.1f} MiB",
                      flush=True)
    by = {(r["path"], r["kind"]): r for r in rows}
    for path in ("/", "/sleep/50"):
        for a, b in (("sdk_barrage", "sdk_httpx"), ("barrage_client", "aiohttp")):
            if (path, a) in by and (path, b) in by:
                x, y = by[(path, a)], by[(path, b)]
                print(f"{path:10} {a}/{b}: cpu/req x{x['cpu_us_per_req'] / y['cpu_us_per_req']:.2f}"
                      f"  wall x{x['wall_s'] / y['wall_s']:.2f}  rss x{x['peak_rss_mib'] / y['peak_rss_mib']:.2f}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        k, u, ca, n, inf, p = sys.argv[2:8]
        child(k, u, ca, int(n), int(inf), p)
    else:
        main()
