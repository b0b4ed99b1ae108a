"""The native API's idiomatic shapes: seconds, explicit rate period, gather
over coroutines with timeout and group deadline, httpx-like Response,
should_retry, no_cache, batch progress on the loop, engine-side abort."""
import asyncio
import json
import threading
import time
import uuid

import pytest

import barrage

CHAT = "/v1/chat/completions"


def chat(text):
    return {"model": "m", "messages": [{"role": "user", "content": text}]}


def client(mock, **kw):
    return barrage.Client(base_url=mock.url, ca_file=mock.ca_file, **kw)


async def test_response_is_httpx_like(mock):
    async with client(mock) as c:
        r = await c.call(CHAT, chat("shape"))
    assert r.status_code == 200 and r.status == 200
    assert isinstance(r.content, bytes) and r.content == r.body
    assert r.text == r.content.decode()
    assert r.json()["object"] == "chat.completion"
    assert r.headers["content-type"] == "application/json"
    assert r.headers["x-request-id"] == r.request_id and r.request_id.startswith("req_")
    assert r.message_text.endswith(": shape")


async def test_seconds_options_and_deprecated_names(mock):
    with pytest.warns(DeprecationWarning, match="timeout_ms is deprecated"):
        barrage.Client(timeout_ms=1000).close()
    with pytest.raises(TypeError):
        barrage.Client(timeout=1.0, timeout_ms=1000)
    async with client(mock, timeout=0.25, max_retries=0) as c:
        t0 = time.monotonic()
        with pytest.raises(barrage.TimeoutError):
            await c.call(CHAT, chat("x"), headers={"x-mock-latency-ms": "3000"})
        assert 0.2 < time.monotonic() - t0 < 1.5
        t0 = time.monotonic()
        with pytest.raises(barrage.TimeoutError):  # per-call deadline, seconds
            await c.call(CHAT, chat("x"), timeout=5, deadline=0.2,
                         headers={"x-mock-latency-ms": "3000"})
        assert time.monotonic() - t0 < 1.0
        with pytest.warns(DeprecationWarning, match="deadline_ms"):
            r = await c.call(CHAT, chat("y"), deadline_ms=5000)
        assert r.status_code == 200


async def test_explicit_rate_period(mock):
    with pytest.warns(DeprecationWarning, match="rate_period"):
        barrage.Client(rate_limit=10).close()
    # 20 per second, burst 1: 21 requests need about one second, not 21 / 20 minutes
    async with client(mock, rate_limit=20, rate_period=1.0, rate_burst=1) as c:
        t0 = time.monotonic()
        rs = await c.gather([(CHAT, chat(f"r{i}")) for i in range(21)])
        el = time.monotonic() - t0
    assert len(rs) == 21
    assert 0.8 < el < 3.0, el


async def test_gather_coroutines_and_requests(mock):
    async with client(mock) as c:
        async def two_step(i):
            r = await c.call(CHAT, chat(f"a{i}"))
            return r.message_text.split(": ")[1] + "!"
        out = await c.gather(two_step(1), (CHAT, chat("b")), two_step(2))
        assert out[0] == "a1!" and out[2] == "a2!"
        assert out[1].message_text.endswith(": b")
        out = await c.gather([two_step(3), barrage.Request(CHAT, chat("c"))])
        assert out[0] == "a3!" and out[1].message_text.endswith(": c")


async def test_gather_timeout_keeps_finished_cancels_rest(mock):
    slow = {"x-mock-latency-ms": "5000"}
    async with client(mock) as c:
        reqs = [barrage.Request(CHAT, chat(f"f{i}")) if i % 2 == 0 else
                barrage.Request(CHAT, chat(f"s{i}"), headers=slow) for i in range(10)]
        t0 = time.monotonic()
        with pytest.raises(barrage.GatherTimeout) as ei:
            await c.gather(reqs, timeout=0.5)
        assert time.monotonic() - t0 < 1.5
        res = ei.value.results
        assert [r is None for r in res] == [i % 2 == 1 for i in range(10)]
        assert res[4].message_text.endswith(": f4")
        out = await c.gather(reqs[:4], timeout=0.5, return_exceptions=True)
        assert isinstance(out[1], barrage.TimeoutError) and out[2].status_code == 200
        for _ in range(100):
            if c.stats()["cancelled"] >= 7:
                break
            await asyncio.sleep(0.01)
        assert c.stats()["cancelled"] == 7  # 5 + 2 unfinished requests, cancelled in the engine


async def test_gather_group_deadline(mock):
    async with client(mock) as c:
        reqs = [(CHAT, chat("fast")), barrage.Request(CHAT, chat("slow"),
                                                        headers={"x-mock-latency-ms": "5000"})]
        t0 = time.monotonic()
        out = await c.gather(reqs, deadline=0.4, return_exceptions=True)
        assert time.monotonic() - t0 < 1.5
        assert out[0].status_code == 200
        assert isinstance(out[1], barrage.TimeoutError)


async def test_rate_limited_has_retry_after(mock):
    async with client(mock, max_retries=0) as c:
        with pytest.raises(barrage.RateLimited) as ei:
            await c.call(CHAT, chat("x"), headers={"x-mock-status": "429",
                                                   "x-mock-retry-after": "7"},
                         limit_key="held-7s")  # the key cools down for 7 s; others do not
        assert ei.value.status_code == 429
        assert ei.value.retry_after == 7.0  # the header as sent (libbarrage 0.4)
        assert ei.value.headers["Retry-After"] == "7"
        assert ei.value.headers["x-request-id"] == ei.value.request_id
        # any HTTP error: a 503's retry-after-ms (preferred over Retry-After)
        with pytest.raises(barrage.HTTPError) as ei:
            await c.call(CHAT, chat("x"), headers={"x-mock-status": "503",
                                                   "x-mock-retry-after-ms": "250"},
                         limit_key="held-250ms")
        assert ei.value.status_code == 503 and ei.value.retry_after == 0.25
        assert not isinstance(ei.value, barrage.RateLimited)
        r = await c.call(CHAT, chat("ok"))
        assert r.retry_after is None
    # Without the header: what the message or an OpenAI-style body says.
    e = barrage.error_for(-12, "HTTP 429 (retry-after 2.5)", http_status=429)
    assert e.retry_after == 2.5
    e = barrage.error_for(-12, "", http_status=429,
                          body=b'{"error":{"message":"Please try again in 120ms."}}')
    assert e.retry_after == pytest.approx(0.12)
    assert barrage.error_for(-12, "", http_status=429).retry_after is None


async def test_response_headers_are_the_servers(mock):
    async with client(mock) as c:
        r = await c.call(CHAT, chat("h"))
        h = r.headers
        assert isinstance(h, barrage.Headers)
        assert h["Content-Type"] == h["content-type"] == "application/json"
        assert h["openai-processing-ms"] == "0"  # only the server's block has it
        assert int(h["content-length"]) == len(r.content)
        assert [k for k, _ in h.multi_items()][:2] == ["content-type", "content-length"]
        assert "X-Request-Id" in h and h.get("x-nope") is None
        # opted out: what is known without the block
        r = await c.call(CHAT, chat("h"), response_headers=False)
        assert dict(r.headers) == {"content-type": "application/json",
                                   "x-request-id": r.request_id}
    async with client(mock, response_headers=False) as c:
        r = await c.call(CHAT, chat("h"))
        assert "openai-processing-ms" not in r.headers
        r = await c.call(CHAT, chat("h"), response_headers=True)
        assert "openai-processing-ms" in r.headers


def test_headers_mapping():
    h = barrage.Headers([("set-cookie", "a=1"), ("Content-Type", "x"), ("set-cookie", "b=2")])
    assert h["SET-COOKIE"] == "a=1, b=2" and h.get_list("set-cookie") == ["a=1", "b=2"]
    assert list(h) == ["set-cookie", "content-type"] and len(h) == 2
    assert h == {"Content-Type": "x", "set-cookie": "a=1, b=2"}
    assert barrage.headers.parse_block(b"a: 1\nb:  two words \n") == [("a", "1"),
                                                                     ("b", "two words")]


async def test_stream_headers_with_first_event(mock):
    hdr = {"x-mock-stream-tokens": "3", "x-mock-stream-interval-ms": "300"}
    async with client(mock) as c:
        s = c.stream(CHAT, chat("s"), headers=hdr)
        assert s.headers is None
        async with s:
            async for ev in s:
                # known at the first event, long before the stream ends
                assert ev.index == 1 and s.response is None
                assert s.headers["content-type"] == "text/event-stream"
                assert s.headers["x-request-id"].startswith("req_")
                assert "openai-processing-ms" in s.headers
                break


async def test_older_library_without_0_4_fields(mock, monkeypatch):
    """A libbarrage before 0.4 refuses BRG_REQ_HEADERS and its results end
    before retry_after_ms: the flag is not sent, and nothing past the
    producer's size is read."""
    from barrage import _lib, client as cl
    monkeypatch.setattr(_lib, "HAS_HEADERS", False)
    async with client(mock) as c:
        r = await c.call(CHAT, chat("old"))  # submitted without the flag
    assert "openai-processing-ms" not in r.headers and r.headers["x-request-id"] == r.request_id
    raw = _lib.BrgResult()
    raw.size = _lib.RESULT_STREAM_FIELDS_END  # a 0.2/0.3 result
    raw.status, raw.http_status, raw.retry_after_ms = -12, 429, 5000
    raw.headers, raw.headers_len = None, 10**9  # garbage past the size: never read
    e = cl._make_error(raw)
    assert isinstance(e, barrage.RateLimited) and e.retry_after is None
    assert dict(e.headers) == {"content-type": "text/plain"}


async def test_should_retry_callable(mock):
    calls = []

    def decide(exc, attempt):
        calls.append((type(exc), attempt))
        return isinstance(exc, barrage.RateLimited) and attempt < 5

    async with client(mock, should_retry=decide, backoff_base=0.01) as c:
        hdr = {"x-mock-fail-times": "2", "x-mock-fail-key": uuid.uuid4().hex,
               "x-mock-retry-after": "0"}
        r = await c.call(CHAT, chat("retry"), headers=hdr)
        assert r.message_text.endswith(": retry")
        assert calls == [(barrage.RateLimited, 1), (barrage.RateLimited, 2)]
        assert c.stats()["retried"] == 0  # Python decided, not the engine
        calls.clear()
        with pytest.raises(barrage.HTTPError):
            await c.call(CHAT, chat("x"), headers={"x-mock-status": "500"})
        assert calls == [(barrage.HTTPError, 1)]


async def test_no_cache_per_request(mock, tmp_path):
    async with client(mock, cache_path=str(tmp_path / "cache.db"), cache_ttl=60) as c:
        a = await c.call(CHAT, chat("cache me"))
        assert not a.cached
        await asyncio.sleep(0.2)  # the engine batches cache writes (up to 50 ms)
        b = await c.call(CHAT, chat("cache me"))
        assert b.cached and b.body == a.body
        n = await c.call(CHAT, chat("cache me"), no_cache=True)
        assert not n.cached


async def test_batch_progress_on_loop_with_eta_and_abort(mock, tmp_path):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    with open(inp, "w") as f:
        for i in range(40):
            f.write(json.dumps({"custom_id": f"c{i}", "method": "POST", "url": CHAT,
                                "body": chat(f"b{i}")}) + "\n")
    seen = []
    main = threading.get_ident()
    async with client(mock, max_inflight=2) as c:
        def progress(p):
            seen.append((threading.get_ident(), p))
        final = await c.run_batch(str(inp), str(out), progress=progress,
                                  headers={"x-mock-latency-ms": "20"})
        assert final["ok"] == 40 and final["eta_s"] == 0
        assert seen and all(t == main for t, _ in seen)
        assert any(p["eta_s"] is not None and p["eta_s"] > 0 for _, p in seen)
        out.unlink()
        with pytest.raises(barrage.CancelledError) as ei:
            await c.run_batch(str(inp), str(out), resume=False, progress=lambda p: 2,
                              headers={"x-mock-latency-ms": "20"})
        assert not isinstance(ei.value, asyncio.CancelledError)
