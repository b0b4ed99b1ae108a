"""Streaming: print tokens as they arrive, then the timing of the whole stream.

Starts barrage-mockserver, streams one answer (12 tokens, first after 300 ms,
then one every 50 ms), then three at once of which one goes silent after 4
tokens and ends with the idle timeout, after the tokens it did send.
Run: PYTHONPATH=bindings/python python3 bindings/python/example_stream.py
"""
import asyncio

import barrage
from barrage.testing import MockServer

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Tell me a story"}],
        "stream_options": {"include_usage": True}}  # "stream": true is added by stream()


def pacing(stall_after=None):
    h = {"x-mock-stream-tokens": "12", "x-mock-first-token-ms": "300",
         "x-mock-stream-interval-ms": "50"}
    if stall_after is not None:
        h["x-mock-stream-stall-after"] = str(stall_after)
    return h


async def collect(c, name, headers):
    text = []
    try:
        async for ev in c.stream("/v1/chat/completions", BODY, headers=headers, idle_timeout=0.5):
            text.append(ev.content)
        return f"{name}: {''.join(text)!r}"
    except barrage.TimeoutError as e:
        return f"{name}: {''.join(text)!r} then {e.message}"


async def main(mock):
    async with barrage.Client(base_url=mock.url, ca_file=mock.ca_file) as c:
        async with c.stream("/v1/chat/completions", BODY, headers=pacing()) as s:
            async for ev in s:
                print(ev.content, end="", flush=True)
        r = s.response
        print(f"\nttft {r.ttft * 1e3:.0f} ms, {r.completion_tokens} tokens, "
              f"gaps mean {r.gap_mean * 1e3:.1f} ms max {r.gap_max * 1e3:.1f} ms, "
              f"total {r.total * 1e3:.0f} ms")

        for line in await asyncio.gather(collect(c, "a", pacing()),
                                         collect(c, "b", pacing(stall_after=4)),
                                         collect(c, "c", pacing())):
            print(line)


if __name__ == "__main__":
    with MockServer() as m:
        asyncio.run(main(m))
