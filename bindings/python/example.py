"""10 documents at 0.5 s latency, 5 at a time: ~1 s instead of 5 s.

Starts barrage-mockserver with --latency-ms 500, summarises 10 documents one
after another, then all at once through barrage with max_inflight=5.
Run: PYTHONPATH=bindings/python python3 bindings/python/example.py
"""
import asyncio
import time

import barrage
from barrage.testing import MockServer

DOCS = [f"document {i}: " + "lorem ipsum " * 20 for i in range(10)]


def body(doc):
    return {"model": "gpt-4o-mini", "max_tokens": 64,
            "messages": [{"role": "user", "content": f"Summarise: {doc}"}]}


async def main(mock):
    async with barrage.Client(base_url=mock.url, ca_file=mock.ca_file, max_inflight=5) as c:
        t0 = time.perf_counter()
        for doc in DOCS:  # one at a time
            await c.call("/v1/chat/completions", body(doc))
        sequential = time.perf_counter() - t0

        t0 = time.perf_counter()
        answers = await c.gather([("/v1/chat/completions", body(d)) for d in DOCS])
        concurrent = time.perf_counter() - t0
        for a in answers[:2]:
            print("  ", a.content[:70], "...")
    print(f"sequential: {sequential:.2f} s   barrage (5 in flight): {concurrent:.2f} s")


if __name__ == "__main__":
    with MockServer(latency_ms=500) as m:
        asyncio.run(main(m))
