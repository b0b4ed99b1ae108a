#!/usr/bin/env python3
"""httpx_driver.py: the httpx peer of bench/far, written the way the openai
and anthropic SDKs use httpx: one AsyncClient (http2=True by default here:
`httpx[http2]`), limits of INFLIGHT connections, an ssl context trusting the
CA, one coroutine per request gated by a semaphore, all of them gathered.
Each answer is checked (HTTP 200, a body of EXPECT_BYTES bytes, the HTTP
version asked for), and one summary line shaped like load_c's is printed:

  requests=N ok=K errors=E seconds=S req_per_s=R cpu_us_per_req=C maxrss_kb=M
  conns_opened=X tls_full=F tls_resumed=Y [inflight_ms=T]

conns_opened counts httpcore's "connection.connect_tcp.complete" trace
events; with LOAD_RAMP=1 each request's "send_request_headers.complete"
event marks it sent (ramp_probe.py).

Usage: httpx_driver.py URL N INFLIGHT CA_FILE EXPECT_BYTES [h1]
Needs httpx with h2 (the project's venv: scripts/dev bench-far installs it)."""

import asyncio
import resource
import sys
import time

import httpx

from ramp_probe import RAMP, SentTimes, client_context

# The same request body as examples/load_c.c, so every peer sends the same bytes.
BODY = (b'{"model":"gpt-4o-mini","messages":[{"role":"user",'
        b'"content":"Say hello in one word."}],"max_tokens":16}')
HEADERS = {"Content-Type": "application/json"}
MAX_REPORTED_FAILURES = 10


async def run(url, n, inflight, ca, expect, h2, sent):
    limits = httpx.Limits(max_connections=inflight, max_keepalive_connections=inflight)
    sem = asyncio.Semaphore(inflight)
    failures = []
    conns = [0]
    want = "HTTP/2" if h2 else "HTTP/1.1"

    async def trace(event, info):
        if event == "connection.connect_tcp.complete":
            conns[0] += 1
        elif RAMP and event.endswith("send_request_headers.complete"):
            sent.mark()

    async with httpx.AsyncClient(http1=not h2, http2=h2, verify=client_context(ca), limits=limits,
                                 timeout=httpx.Timeout(120.0)) as client:
        async def one():
            async with sem:
                try:
                    resp = await client.post(url, content=BODY, headers=HEADERS,
                                             extensions={"trace": trace})
                    if resp.status_code == 200 and len(resp.content) == expect and resp.http_version == want:
                        return True
                    failures.append(f"http={resp.status_code} {resp.http_version} body_len={len(resp.content)}")
                except (httpx.HTTPError, OSError) as e:
                    failures.append(repr(e))
                return False

        results = await asyncio.gather(*(one() for _ in range(n)))
    for f in failures[:MAX_REPORTED_FAILURES]:
        print(f"httpx_driver: request failed: {f}", file=sys.stderr)
    return sum(results), conns[0]


def main():
    if len(sys.argv) not in (6, 7) or (len(sys.argv) == 7 and sys.argv[6] != "h1"):
        print(__doc__.split("\n\n")[3], file=sys.stderr)
        return 2
    url, n, inflight, ca, expect = (sys.argv[1], int(sys.argv[2]), int(sys.argv[3]),
                                    sys.argv[4], int(sys.argv[5]))
    h2 = len(sys.argv) == 6
    sent = SentTimes()
    t0, c0 = time.monotonic(), time.process_time()
    ok, conns = asyncio.run(run(url, n, inflight, ca, expect, h2, sent))
    secs = max(time.monotonic() - t0, 1e-9)
    cpu = time.process_time() - c0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"requests={n} ok={ok} errors={n - ok} seconds={secs:.3f} req_per_s={n / secs:.0f} "
          f"cpu_us_per_req={cpu * 1e6 / n:.1f} maxrss_kb={rss} conns_opened={conns}"
          f"{sent.fields(inflight)}", flush=True)
    return 0 if ok == n else 1


if __name__ == "__main__":
    sys.exit(main())
