#!/usr/bin/python3
"""aiohttp_driver.py: the aiohttp peer of bench/peers/compare, written the way
Python LLM clients are written today: one ClientSession over a
TCPConnector(limit=INFLIGHT), an ssl context trusting the CA, one coroutine
per request gated by a semaphore, all of them gathered. Each answer is
checked (HTTP 200, a body of EXPECT_BYTES bytes), and one summary line shaped
like load_c's is printed:

  requests=N ok=K errors=E seconds=S req_per_s=R cpu_us_per_req=C maxrss_kb=M
  conns_opened=X tls_full=F tls_resumed=Y [inflight_ms=T]

(ramp_probe.py: handshakes counted per TLS object; with LOAD_RAMP=1, a trace
hook marks each request's headers sent and inflight_ms is the INFLIGHT-th.)

Usage: aiohttp_driver.py URL N INFLIGHT CA_FILE EXPECT_BYTES [fresh]
"fresh" closes every connection after its request (force_close), so each
request pays a full TLS handshake (asyncio never resumes TLS sessions).
Needs Debian's python3-aiohttp: run it with /usr/bin/python3."""

import asyncio
import resource
import sys
import time

import aiohttp

from ramp_probe import RAMP, SentTimes, client_context

# The same request body as examples/load_c.c, so every peer sends the same bytes.
BODY = (b'{"model":"gpt-4o-mini","messages":[{"role":"user",'
        b'"content":"Say hello in one word."}],"max_tokens":16}')
HEADERS = {"Content-Type": "application/json"}
MAX_REPORTED_FAILURES = 10


async def run(url, n, inflight, ca, expect, fresh, sent):
    ctx = client_context(ca)
    connector = aiohttp.TCPConnector(limit=inflight, ssl=ctx, force_close=fresh)
    sem = asyncio.Semaphore(inflight)
    failures = []
    trace = aiohttp.TraceConfig()
    conns = [0]

    async def on_conn(session, ctx, params):
        conns[0] += 1

    async def on_sent(session, ctx, params):
        sent.mark()

    trace.on_connection_create_end.append(on_conn)
    if RAMP:
        trace.on_request_headers_sent.append(on_sent)

    async with aiohttp.ClientSession(connector=connector, trace_configs=[trace]) as session:
        async def one():
            async with sem:
                try:
                    async with session.post(url, data=BODY, headers=HEADERS) as resp:
                        body = await resp.read()
                        if resp.status == 200 and len(body) == expect:
                            return True
                        failures.append(f"http={resp.status} body_len={len(body)}")
                except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
                    failures.append(repr(e))
                return False

        results = await asyncio.gather(*(one() for _ in range(n)))
    for f in failures[:MAX_REPORTED_FAILURES]:
        print(f"aiohttp_driver: request failed: {f}", file=sys.stderr)
    return sum(results), conns[0]


def main():
    if len(sys.argv) not in (6, 7) or (len(sys.argv) == 7 and sys.argv[6] != "fresh"):
        print(__doc__.split("\n\n")[2], file=sys.stderr)
        return 2
    url, n, inflight, ca, expect = (sys.argv[1], int(sys.argv[2]), int(sys.argv[3]),
                                    sys.argv[4], int(sys.argv[5]))
    fresh = len(sys.argv) == 7
    t0, c0 = time.monotonic(), time.process_time()
    sent = SentTimes()
    ok, conns = asyncio.run(run(url, n, inflight, ca, expect, fresh, sent))
    secs = max(time.monotonic() - t0, 1e-9)
    cpu = time.process_time() - c0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"requests={n} ok={ok} errors={n - ok} seconds={secs:.3f} req_per_s={n / secs:.0f} "
          f"cpu_us_per_req={cpu * 1e6 / n:.1f} maxrss_kb={rss} conns_opened={conns}"
          f"{sent.fields(inflight)}", flush=True)
    return 0 if ok == n else 1


if __name__ == "__main__":
    sys.exit(main())
