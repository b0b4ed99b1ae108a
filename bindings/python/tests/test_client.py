"""Tests of the Python binding against barrage-mockserver (started here)."""
import asyncio
import builtins
import json
import os
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import barrage  # noqa: E402
from barrage.testing import MockServer  # noqa: E402

CHAT = "/v1/chat/completions"


def chat(text, **extra):
    return dict({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}],
                 "max_tokens": 16}, **extra)


def slow(ms):
    return {"x-mock-latency-ms": str(ms)}


class MockTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.mock = MockServer().__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.mock.__exit__(None, None, None)

    def client(self, **kw):
        kw.setdefault("max_inflight", 100)
        return barrage.Client(base_url=self.mock.url, ca_file=self.mock.ca_file, **kw)

    def run_async(self, coro):
        return asyncio.run(asyncio.wait_for(coro, 30))

    async def wait_stat(self, c, name, want, timeout=3.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if c.stats()[name] >= want:
                return c.stats()[name]
            await asyncio.sleep(0.02)
        return c.stats()[name]


class TestCall(MockTest):
    def test_single_call_fields(self):
        async def go():
            async with self.client() as c:
                r = await c.call(CHAT, chat("hello there"))
                self.assertEqual(r.status, 200)
                self.assertTrue(r.message_text.endswith(": hello there"), r.message_text)
                self.assertEqual(r.json()["choices"][0]["message"]["content"], r.message_text)
                self.assertGreaterEqual(r.prompt_tokens, 0)
                self.assertGreaterEqual(r.completion_tokens, 0)
                self.assertEqual(r.attempts, 1)
                self.assertFalse(r.cached)
                self.assertTrue(r.request_id)
                self.assertGreater(r.total, 0)
                # str body and absolute url
                r2 = await c.call(self.mock.url + CHAT, json.dumps(chat("as str")))
                self.assertTrue(r2.message_text.endswith(": as str"))
        self.run_async(go())

    def test_thousand_at_100_in_flight(self):
        async def go():
            async with self.client(max_inflight=100) as c:
                reqs = [(CHAT, chat(f"message number {i}")) for i in range(1000)]
                rs = await c.gather(reqs)
                self.assertEqual(len(rs), 1000)
                for i, r in enumerate(rs):
                    self.assertEqual(r.status, 200)
                    self.assertTrue(r.message_text.endswith(f": message number {i}"), (i, r.message_text))
                st = c.stats()
                self.assertEqual(st["completed"], 1000)
                self.assertLessEqual(st["connections_opened"], 100)
        self.run_async(go())

    def test_sync_context_manager_and_reuse(self):
        with self.client() as c:
            r = asyncio.run(c.call(CHAT, chat("one")))
            self.assertTrue(r.message_text.endswith(": one"))
            r = asyncio.run(c.call(CHAT, chat("two")))  # a new loop rebinds
            self.assertTrue(r.message_text.endswith(": two"))
        with self.assertRaises(barrage.ClosedError):
            asyncio.run(c.call(CHAT, chat("closed")))

    def test_bad_option(self):
        with self.assertRaises(TypeError):
            barrage.Client(no_such_option=1)
        with self.assertRaises(barrage.InvalidError):
            barrage.Client(max_inflight=-5)


class TestGather(MockTest):
    def test_order_and_fail_fast(self):
        async def go():
            async with self.client() as c:
                reqs = [barrage.Request(CHAT, chat(f"slow {i}"), headers=slow(3000))
                        for i in range(19)]
                reqs.insert(7, barrage.Request(CHAT, chat("bad"), headers={"x-mock-status": "500"},
                                               max_retries=0))
                t0 = time.monotonic()
                with self.assertRaises(barrage.HTTPError) as cm:
                    await c.gather(reqs)
                self.assertLess(time.monotonic() - t0, 2.0)
                self.assertEqual(cm.exception.status, 500)
                self.assertEqual(await self.wait_stat(c, "cancelled", 19), 19)
                # order: latencies decreasing with the index, answers still in input order
                rs = await c.gather([barrage.Request(CHAT, chat(f"o{i}"), headers=slow(200 - 20 * i))
                                     for i in range(10)])
                self.assertEqual([r.message_text.split(": ")[1] for r in rs], [f"o{i}" for i in range(10)])
        self.run_async(go())

    def test_return_exceptions(self):
        async def go():
            async with self.client() as c:
                rs = await c.gather([
                    (CHAT, chat("ok 0")),
                    {"url": CHAT, "body": chat("x"), "headers": {"x-mock-status": "429"},
                     "max_retries": 0},
                    (CHAT, chat("ok 2")),
                    "not a url at all:/\x00",
                ], return_exceptions=True)
                self.assertTrue(rs[0].message_text.endswith(": ok 0"))
                self.assertIsInstance(rs[1], barrage.RateLimited)
                self.assertTrue(rs[2].message_text.endswith(": ok 2"))
                self.assertIsInstance(rs[3], (barrage.BarrageError, ValueError))
                self.assertEqual(await c.gather([]), [])
        self.run_async(go())

    def test_cancel_gather_cancels_engine_requests(self):
        async def go():
            async with self.client() as c:
                with self.assertRaises(asyncio.TimeoutError):
                    await asyncio.wait_for(c.gather([(CHAT, chat(str(i)), ) for i in range(5)]
                                                    + [barrage.Request(CHAT, chat("s"),
                                                                       headers=slow(5000))] * 5),
                                           0.5)
                self.assertEqual(await self.wait_stat(c, "cancelled", 5), 5)
        self.run_async(go())


class TestIterators(MockTest):
    def reqs(self):
        # index i answers after (5 - i) * 60 ms: completion order is reversed
        return [barrage.Request(CHAT, chat(f"it{i}"), headers=slow((5 - i) * 60)) for i in range(6)]

    def test_map_ordered(self):
        async def go():
            async with self.client() as c:
                got = [r.message_text.split(": ")[1] async for r in c.map(self.reqs())]
                self.assertEqual(got, [f"it{i}" for i in range(6)])
                # lazy generator input with a small window
                gen = ((CHAT, chat(f"g{i}")) for i in range(300))
                got = [r.message_text.split(": ")[1] async for r in c.map(gen, window=16)]
                self.assertEqual(got, [f"g{i}" for i in range(300)])
        self.run_async(go())

    def test_map_unordered(self):
        async def go():
            async with self.client() as c:
                got = [r.message_text.split(": ")[1] async for r in c.map(self.reqs(), ordered=False)]
                self.assertEqual(got, [f"it{i}" for i in reversed(range(6))])
                with self.assertRaises(barrage.HTTPError):
                    async for _ in c.map([(CHAT, chat("a")),
                                          barrage.Request(CHAT, chat("b"), max_retries=0,
                                                          headers={"x-mock-status": "503"})]):
                        pass
        self.run_async(go())

    def test_as_completed(self):
        async def go():
            async with self.client() as c:
                reqs = self.reqs() + [barrage.Request(CHAT, chat("e"), max_retries=0,
                                                      headers={"x-mock-status": "500"})]
                seen = []
                async for done in c.as_completed(reqs):
                    seen.append(done.index)
                    if done.index == 6:
                        self.assertIsInstance(done.error, barrage.HTTPError)
                        self.assertRaises(barrage.HTTPError, done.result)
                    else:
                        self.assertTrue(done.result().message_text.endswith(f": it{done.index}"))
                self.assertEqual(set(seen[:2]), {5, 6})  # both answer at once
                self.assertEqual(seen[2:], [4, 3, 2, 1, 0])
        self.run_async(go())


class TestErrors(MockTest):
    def test_wait_for_timeout_cancels(self):
        async def go():
            async with self.client() as c:
                t0 = time.monotonic()
                with self.assertRaises(asyncio.TimeoutError):
                    await asyncio.wait_for(c.call(CHAT, chat("slow"), headers=slow(5000)), 0.2)
                self.assertLess(time.monotonic() - t0, 1.0)
                self.assertEqual(await self.wait_stat(c, "cancelled", 1), 1)
                self.assertEqual(c.stats()["in_flight"], 0)
                self.assertEqual(c._pending, {})
        self.run_async(go())

    def test_429_no_retry(self):
        async def go():
            async with self.client() as c:
                with self.assertRaises(barrage.RateLimited) as cm:
                    await c.call(CHAT, chat("x"), headers={"x-mock-status": "429"}, max_retries=0)
                e = cm.exception
                self.assertIsInstance(e, barrage.HTTPError)
                self.assertIsInstance(e, barrage.BarrageError)
                self.assertEqual(e.status, 429)
                self.assertEqual(e.name, "BRG_E_HTTP")
                self.assertEqual(e.attempts, 1)
                self.assertIn(b"rate_limit", e.body)
        self.run_async(go())

    def test_stall_deadline_timeout(self):
        async def go():
            async with self.client() as c:
                t0 = time.monotonic()
                with self.assertRaises(barrage.TimeoutError) as cm:
                    await c.call(CHAT, chat("x"), headers={"x-mock-fault": "stall"}, deadline_ms=300)
                self.assertLess(time.monotonic() - t0, 2.0)
                self.assertIsInstance(cm.exception, builtins.TimeoutError)
                self.assertEqual(cm.exception.status, -5)
                self.assertEqual(cm.exception.name, "BRG_E_TIMEOUT")
        self.run_async(go())

    def test_connect_error_and_mapping(self):
        async def go():
            async with self.client(max_retries=0, connect_timeout_ms=2000) as c:
                with self.assertRaises(barrage.ConnectError):
                    await c.call("https://127.0.0.1:1/v1/chat/completions", chat("x"))
                with self.assertRaises(barrage.InvalidError):
                    await c.call("ftp://nope/", b"")
        self.run_async(go())
        # an engine-side cancel is an error of the call, not a task cancellation
        self.assertIsInstance(barrage.error_for(-6), barrage.CancelledError)
        self.assertNotIsInstance(barrage.error_for(-6), asyncio.CancelledError)
        self.assertIsInstance(barrage.error_for(-9), barrage.TLSError)
        self.assertIsInstance(barrage.error_for(-12, http_status=500), barrage.HTTPError)
        self.assertNotIsInstance(barrage.error_for(-12, http_status=500), barrage.RateLimited)


class TestBatch(MockTest):
    def test_run_batch_and_resume(self):
        with tempfile.TemporaryDirectory() as d:
            inp, out = os.path.join(d, "in.jsonl"), os.path.join(d, "out.jsonl")
            with open(inp, "w") as f:
                for i in range(5):
                    f.write(json.dumps({"custom_id": f"c{i}", "method": "POST", "url": CHAT,
                                        "body": chat(f"batch {i}")}) + "\n")
            seen = []

            async def go():
                async with self.client() as c:
                    final = await c.run_batch(inp, out, progress=seen.append)
                    again = await c.run_batch(inp, out)  # resume: nothing left
                    return final, again
            final, again = self.run_async(go())
            self.assertEqual((final["ok"], final["failed"], final["done"]), (5, 0, 5))
            self.assertEqual((again["total"], again["skipped"]), (0, 5))
            self.assertTrue(seen)
            with open(out) as f:
                lines = [json.loads(x) for x in f]
            self.assertEqual(sorted(x["custom_id"] for x in lines), [f"c{i}" for i in range(5)])
            for x in lines:
                self.assertIsNone(x["error"])
                content = x["response"]["body"]["choices"][0]["message"]["content"]
                self.assertTrue(content.endswith(": batch " + x["custom_id"][1:]), content)


if __name__ == "__main__":
    unittest.main()
