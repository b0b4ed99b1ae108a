"""Client.stream (server-sent events, libbarrage 0.2) against barrage-mockserver.

The mock streams when the body has "stream": true; per-request headers pace
it: x-mock-stream-tokens (N events " tok1".." tokN"), x-mock-first-token-ms,
x-mock-stream-interval-ms, x-mock-stream-stall-after, x-mock-stream-reset-after.
A chat stream is: role event (empty content), the token events, the finish
chunk, the usage chunk when stream_options.include_usage, then [DONE] (which
the engine does not deliver).
"""
import asyncio
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_client import CHAT, MockTest, chat  # noqa: E402  (also puts barrage on sys.path)

import barrage  # noqa: E402
from barrage import _lib  # noqa: E402
from barrage.client import _future_sink  # noqa: E402
from barrage.testing import MockServer  # noqa: E402


def sbody(text, usage=True):
    """A chat body without "stream": Client.stream adds it."""
    extra = {"stream_options": {"include_usage": True}} if usage else {}
    return chat(text, **extra)


def pace(tokens, interval=0, first=0, stall=None, reset=None):
    h = {"x-mock-stream-tokens": str(tokens), "x-mock-stream-interval-ms": str(interval),
         "x-mock-first-token-ms": str(first)}
    if stall is not None:
        h["x-mock-stream-stall-after"] = str(stall)
    if reset is not None:
        h["x-mock-stream-reset-after"] = str(reset)
    return h


def toks(n):
    return [f" tok{k}" for k in range(1, n + 1)]


async def drain(stream):
    """(events, error) of a whole stream; the error is what iteration raised."""
    events = []
    try:
        async for ev in stream:
            events.append(ev)
    except barrage.BarrageError as exc:
        return events, exc
    return events, None


def token_texts(events):
    return [ev.content for ev in events if ev.content]


class TestStreamEvents(MockTest):
    def test_order_content_and_final_usage(self):
        async def go():
            async with self.client() as c:
                body = sbody("stream me")
                s = c.stream(CHAT, body, headers=pace(5, interval=5))
                events, err = await drain(s)
                self.assertIsNone(err)
                self.assertNotIn("stream", body)  # the caller's dict is left alone
                self.assertEqual([ev.index for ev in events], list(range(1, len(events) + 1)))
                self.assertEqual(token_texts(events), toks(5))
                # role event first, then the tokens, the finish chunk, the usage chunk
                self.assertEqual(len(events), 1 + 5 + 1 + 1)
                self.assertEqual(events[0].json()["choices"][0]["delta"]["role"], "assistant")
                self.assertEqual(events[6].json()["choices"][0]["finish_reason"], "stop")
                self.assertEqual(events[7].json()["choices"], [])
                self.assertEqual(events[7].json()["usage"]["completion_tokens"], 5)
                self.assertEqual(json.loads(events[3].data), events[3].json())
                self.assertIsInstance(events[3].raw, bytes)
                self.assertEqual(len({ev.json()["id"] for ev in events}), 1)

                r = s.response
                self.assertIsInstance(r, barrage.Response)
                self.assertIsNone(s.error)
                self.assertEqual(r.status, 200)
                self.assertEqual(r.completion_tokens, 5)
                self.assertGreater(r.prompt_tokens, 0)
                self.assertEqual(r.events, len(events))
                self.assertTrue(r.body.startswith(b"data: "), r.body[:40])
                self.assertIn(b"data: [DONE]", r.body)
                self.assertIsNotNone(r.ttft)
                self.assertGreaterEqual(r.gap_max, r.gap_mean)
                self.assertGreaterEqual(r.gap_mean, 0)
                self.assertEqual(c._pending, {})
                # iterating again: nothing more, no second request
                self.assertEqual([ev async for ev in s], [])
                self.assertEqual(c.stats()["submitted"], 1)
        self.run_async(go())

    def test_ttft_and_gaps(self):
        async def go():
            async with self.client() as c:
                s = c.stream(CHAT, sbody("t"), headers=pace(4, interval=40, first=150))
                events, err = await drain(s)
                self.assertIsNone(err)
                r = s.response
                self.assertGreaterEqual(r.ttft, 0.150)
                self.assertLess(r.ttft, 2.0)
                self.assertIsNone(events[0].ttft)  # the role event is not a token
                tokens = [ev for ev in events if ev.content]
                self.assertEqual([ev.ttft for ev in tokens], [r.ttft] * 4)
                self.assertGreaterEqual(tokens[0].elapsed, 0.150)
                self.assertEqual(sorted(ev.elapsed for ev in events), [ev.elapsed for ev in events])
                # the mock plans tokens 40 ms apart and is never early; a late
                # first token can only shorten the measured gaps a little
                self.assertGreaterEqual(r.gap_max, 0.035)
                self.assertGreaterEqual(r.gap_mean, 0.020)
                # a plain call is not streamed: no stream figures
                plain = await c.call(CHAT, chat("plain"))
                self.assertIsNone(plain.ttft)
                self.assertEqual(plain.events, 0)
        self.run_async(go())

    def test_stream_key_and_raw_bodies(self):
        async def go():
            async with self.client() as c:
                # bytes body asking for the stream itself
                raw = json.dumps(dict(chat("raw"), stream=True)).encode()
                events, err = await drain(c.stream(CHAT, raw, headers=pace(3)))
                self.assertIsNone(err)
                self.assertEqual(token_texts(events), toks(3))
                # an explicit "stream": false is respected: one JSON answer, no events
                s = c.stream(CHAT, chat("no stream", stream=False))
                events, err = await drain(s)
                self.assertEqual((events, err), ([], None))
                self.assertTrue(s.response.message_text.endswith(": no stream"))
                # default pacing: one event per word of the natural answer
                events, err = await drain(c.stream(CHAT, sbody("natural words")))
                self.assertIsNone(err)
                self.assertTrue("".join(token_texts(events)).endswith(": natural words"))
        self.run_async(go())


class TestStreamErrors(MockTest):
    def test_idle_timeout_after_events(self):
        async def go():
            async with self.client() as c:
                t0 = time.monotonic()
                s = c.stream(CHAT, sbody("stall"), headers=pace(10, stall=3), idle_timeout=0.3)
                events, err = await drain(s)
                self.assertLess(time.monotonic() - t0, 3.0)
                self.assertEqual(token_texts(events), toks(3))
                self.assertIsInstance(err, barrage.TimeoutError)
                self.assertEqual(err.name, "BRG_E_TIMEOUT")
                self.assertIn("idle", err.message)
                self.assertEqual(err.attempts, 1)  # no retry once events went out
                self.assertIs(s.error, err)
                self.assertIsNone(s.response)
                self.assertEqual([ev async for ev in s], [])  # ended: nothing more
            # the same limit as a client option (engine-wide default)
            async with self.client(stream_idle_timeout_ms=300) as c:
                events, err = await drain(c.stream(CHAT, sbody("stall"), headers=pace(10, stall=2)))
                self.assertEqual(token_texts(events), toks(2))
                self.assertIsInstance(err, barrage.TimeoutError)
        self.run_async(go())

    def test_first_token_timeout(self):
        async def go():
            async with self.client() as c:
                t0 = time.monotonic()
                s = c.stream(CHAT, sbody("late"), headers=pace(3, first=3000),
                             first_token_timeout=0.2)
                events, err = await drain(s)
                self.assertLess(time.monotonic() - t0, 2.0)
                self.assertEqual(token_texts(events), [])  # the role event may have come
                self.assertIsInstance(err, barrage.TimeoutError)
                self.assertIn("first token", err.message)
            async with self.client(first_token_timeout_ms=200) as c:
                events, err = await drain(c.stream(CHAT, sbody("late"), headers=pace(3, first=3000)))
                self.assertIsInstance(err, barrage.TimeoutError)
                # a generous per-request limit overrides the client's
                events, err = await drain(c.stream(CHAT, sbody("late"), headers=pace(2, first=300),
                                                   first_token_timeout=5))
                self.assertIsNone(err)
                self.assertEqual(token_texts(events), toks(2))
        self.run_async(go())

    def test_reset_and_http_errors(self):
        async def go():
            async with self.client() as c:
                events, err = await drain(c.stream(CHAT, sbody("rst"), headers=pace(6, reset=2)))
                self.assertEqual(token_texts(events), toks(2))
                self.assertIsInstance(err, barrage.TransportError)
                self.assertEqual(err.attempts, 1)
                s = c.stream(CHAT, sbody("x"), headers={"x-mock-status": "429"}, max_retries=0)
                events, err = await drain(s)
                self.assertEqual(events, [])
                self.assertIsInstance(err, barrage.RateLimited)
                self.assertIn(b"rate_limit", err.body)
                # a request the engine refuses raises from the first iteration
                with self.assertRaises(barrage.InvalidError):
                    async for _ in c.stream("ftp://nope/", sbody("x")):
                        pass
                self.assertEqual(c._pending, {})
        self.run_async(go())


class TestStreamCancel(MockTest):
    LONG = pace(1000, interval=20)  # 20 s of tokens

    def test_break_cancels_engine_request(self):
        with MockServer(keep_stats=True) as mock:
            async def go():
                async with barrage.Client(base_url=mock.url, ca_file=mock.ca_file) as c:
                    got = []
                    async for ev in c.stream(CHAT, sbody("long"), headers=self.LONG):
                        got.append(ev.content)
                        if len(got) == 4:
                            break  # drops the Stream: its __del__ cancels
                    self.assertEqual(got, [""] + toks(3))
                    self.assertEqual(await self.wait_stat(c, "cancelled", 1), 1)
                    self.assertEqual(c.stats()["in_flight"], 0)
                    self.assertEqual(c._pending, {})
                    # the engine is fine: a call and a whole stream afterwards
                    r = await c.call(CHAT, chat("after"))
                    self.assertTrue(r.message_text.endswith(": after"))
                    events, err = await drain(c.stream(CHAT, sbody("again"), headers=pace(3)))
                    self.assertIsNone(err)
                    self.assertEqual(token_texts(events), toks(3))
            self.run_async(go())
        st = mock.final_stats
        self.assertEqual(st["streams"], 2)
        self.assertEqual(st["cancelled"], 1)  # the mock saw the long stream's connection close
        self.assertLess(st["token events"], 100)

    def test_async_with_and_aclose_cancel(self):
        async def go():
            async with self.client() as c:
                async with c.stream(CHAT, sbody("ctx"), headers=self.LONG) as s:
                    self.assertIsNotNone(s.id)  # submitted on enter
                    async for ev in s:
                        if ev.content:
                            break
                self.assertEqual(await self.wait_stat(c, "cancelled", 1), 1)
                s2 = c.stream(CHAT, sbody("aclose"), headers=self.LONG)
                first = await s2.__anext__()
                self.assertEqual(first.index, 1)
                await s2.aclose()
                await s2.aclose()  # idempotent
                self.assertEqual([ev async for ev in s2], [])
                self.assertEqual(await self.wait_stat(c, "cancelled", 2), 2)
                self.assertIsNone(s2.response)
                # never iterated, never entered: never submitted
                c.stream(CHAT, sbody("unused"))
                self.assertEqual(c.stats()["submitted"], 2)
                self.assertEqual(c._pending, {})
        self.run_async(go())

    def test_task_cancel_cancels_engine_request(self):
        async def go():
            async with self.client() as c:
                seen = []

                async def consume():
                    async for ev in c.stream(CHAT, sbody("task"), headers=self.LONG):
                        seen.append(ev)

                with self.assertRaises(asyncio.TimeoutError):
                    await asyncio.wait_for(consume(), 0.3)
                self.assertGreater(len(seen), 2)
                self.assertEqual(await self.wait_stat(c, "cancelled", 1), 1)
                self.assertEqual(c.stats()["in_flight"], 0)
                self.assertEqual(c._pending, {})
        self.run_async(go())

    def test_close_client_ends_stream(self):
        async def go():
            c = self.client()
            s = c.stream(CHAT, sbody("closing"), headers=self.LONG)
            await s.__anext__()
            c.close()
            with self.assertRaises(barrage.ClosedError):
                async for _ in s:
                    pass
        self.run_async(go())


class TestStreamConcurrency(MockTest):
    def test_fifty_streams_each_get_their_own_events(self):
        async def go():
            async with self.client(max_inflight=100) as c:
                async def one(i):
                    n = 3 + i % 7
                    s = c.stream(CHAT, sbody(f"stream {i}"),
                                 headers=pace(n, interval=3 + i % 5, first=i % 11))
                    events, err = await drain(s)
                    self.assertIsNone(err, i)
                    return i, n, events, s.response

                async def calls():
                    return await c.gather([(CHAT, chat(f"plain {k}")) for k in range(30)])

                results = await asyncio.gather(*(one(i) for i in range(50)), calls())
                plain = results.pop()
                for k, r in enumerate(plain):  # normal calls alongside: whole JSON answers
                    self.assertIsNone(r.ttft)
                    self.assertTrue(r.message_text.endswith(f": plain {k}"), r.message_text)
                chunk_ids = set()
                for i, n, events, resp in results:
                    self.assertEqual(token_texts(events), toks(n), i)
                    self.assertEqual([ev.index for ev in events], list(range(1, n + 4)), i)
                    ids = {ev.json()["id"] for ev in events}
                    self.assertEqual(len(ids), 1, i)  # no event of another stream
                    chunk_ids |= ids
                    self.assertEqual(resp.completion_tokens, n, i)
                    self.assertEqual(resp.events, n + 3, i)
                self.assertEqual(len(chunk_ids), 50)
                st = c.stats()
                self.assertEqual(st["completed"], 50 + 30)
                self.assertEqual(c._pending, {})
        self.run_async(go())

    def test_partial_never_resolves_a_call_future(self):
        async def go():
            async with self.client() as c:
                # A stream submitted with a plain future as its sink and no
                # event sink: the dispatch must skip its partial results and
                # resolve the future with the final one only.
                loop = c._bind()
                fut = loop.create_future()
                c._submit(CHAT, dict(sbody("white box"), stream=True), headers=pace(4),
                          sink=_future_sink, key=fut, flags=_lib.REQ_STREAM)
                r = await fut
                self.assertEqual(r.completion_tokens, 4)
                self.assertEqual(r.events, 7)
                self.assertTrue(r.body.startswith(b"data: "))
                self.assertEqual(c._pending, {})
        self.run_async(go())


class TestNoStreamBody(MockTest):
    """stream(no_stream_body=True): BRG_REQ_NO_STREAM_BODY (libbarrage 0.5)."""

    def test_same_events_empty_final_body(self):
        async def go():
            async with self.client(response_headers=False) as c:
                kept = c.stream(CHAT, sbody("keep"), headers=pace(5, interval=5))
                kept_events, err = await drain(kept)
                self.assertIsNone(err)
                dropped = c.stream(CHAT, sbody("keep"), headers=pace(5, interval=5),
                                   no_stream_body=True)
                events, err = await drain(dropped)
                self.assertIsNone(err)
                # the same events (role, tokens, finish, usage; chunk ids differ)
                self.assertEqual(token_texts(events), toks(5))
                self.assertEqual(len(events), len(kept_events))
                self.assertEqual(token_texts(events), token_texts(kept_events))
                r, k = dropped.response, kept.response
                self.assertEqual(r.status, 200)
                self.assertEqual(r.body, b"")
                self.assertTrue(k.body.startswith(b"data: "), k.body[:40])  # the default keeps it
                # usage and timings still come from the events
                self.assertEqual((r.completion_tokens, r.prompt_tokens),
                                 (k.completion_tokens, k.prompt_tokens))
                self.assertEqual(r.completion_tokens, 5)
                self.assertEqual(r.events, len(events))
                self.assertIsNotNone(r.ttft)
                # without the header block the content type is guessed: still a stream
                self.assertEqual(r.headers["content-type"], "text/event-stream")
        self.run_async(go())

    def test_error_answer_keeps_its_body(self):
        async def go():
            async with self.client() as c:
                s = c.stream(CHAT, sbody("bad"), headers={"x-mock-status": "400"},
                             no_stream_body=True)
                events, err = await drain(s)
                self.assertEqual(events, [])
                self.assertIsInstance(err, barrage.HTTPError)
                self.assertEqual(err.status_code, 400)
                self.assertIn(b"error", err.body)
        self.run_async(go())

    def test_older_library_keeps_the_body(self):
        """A libbarrage before 0.5 refuses the flag bit: it is not sent."""
        orig = _lib.HAS_NO_STREAM_BODY
        _lib.HAS_NO_STREAM_BODY = False
        try:
            async def go():
                async with self.client() as c:
                    s = c.stream(CHAT, sbody("old"), headers=pace(3), no_stream_body=True)
                    events, err = await drain(s)
                    self.assertIsNone(err)
                    self.assertEqual(token_texts(events), toks(3))
                    self.assertTrue(s.response.body.startswith(b"data: "))
            self.run_async(go())
        finally:
            _lib.HAS_NO_STREAM_BODY = orig

    def test_library_takes_the_flag(self):
        self.assertTrue(_lib.HAS_NO_STREAM_BODY, barrage.__version__)  # the library under test


class TestNewOptions(MockTest):
    def test_http_version_proxy_no_proxy_dns(self):
        async def go():
            async with self.client(http_version="1.1", dns_servers=["127.0.0.1:1"]) as c:
                self.assertEqual((await c.call(CHAT, chat("h1"))).status, 200)
            # the mock speaks HTTP/1.1 only: insisting on HTTP/2 fails
            async with self.client(http_version=2, max_retries=0) as c:
                with self.assertRaises(barrage.ProtocolError):
                    await c.call(CHAT, chat("h2"))
            # a proxy nobody listens on: direct traffic only through no_proxy
            async with self.client(proxy="http://127.0.0.1:1", max_retries=0) as c:
                with self.assertRaises(barrage.ConnectError):
                    await c.call(CHAT, chat("proxied"))
            async with self.client(proxy="http://127.0.0.1:1", no_proxy=["example.com", "127.0.0.1"],
                                   max_retries=0) as c:
                self.assertEqual((await c.call(CHAT, chat("bypass"))).status, 200)
        self.run_async(go())
        with self.assertRaises(barrage.InvalidError):
            barrage.Client(http_version=7)
        with self.assertRaises(barrage.InvalidError):
            barrage.Client(http_version="3")
        with self.assertRaises(barrage.InvalidError):
            barrage.Client(stream_idle_timeout_ms=-1)
        for name in ("first_token_timeout_ms", "stream_idle_timeout_ms", "http_version", "proxy",
                     "no_proxy", "dns_servers"):
            self.assertIn(name, barrage.OPTIONS)


if __name__ == "__main__":
    unittest.main()
