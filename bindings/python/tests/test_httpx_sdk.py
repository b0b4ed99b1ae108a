"""The real openai and anthropic SDKs through barrage.httpx transports,
against the mock server and nginx."""
import asyncio
import time
import uuid

import httpx
import pytest

openai = pytest.importorskip("openai")
anthropic = pytest.importorskip("anthropic")

import barrage  # noqa: E402
import barrage.httpx2  # noqa: E402
import httpx2  # noqa: E402  (anthropic >= 2 takes an httpx2 client)
from barrage.httpx import AsyncTransport, Transport  # noqa: E402

MSG = [{"role": "user", "content": "hello there"}]


def aopenai(url, ca, max_retries=2, **kw):
    t = AsyncTransport(ca_file=ca, **kw)
    return openai.AsyncOpenAI(base_url=url + "/v1", api_key="sk-test", max_retries=max_retries,
                              http_client=httpx.AsyncClient(transport=t)), t


async def test_chat_completion(mock):
    c, t = aopenai(mock.url, mock.ca_file)
    async with c:
        r = await c.chat.completions.create(model="m", messages=MSG)
        assert t.client.stats()["completed"] == 1
    assert r.object == "chat.completion"
    assert r.choices[0].message.content.endswith("hello there")
    assert r.usage.completion_tokens == len(r.choices[0].message.content.split())


async def test_raw_response_headers(mock):
    c, _ = aopenai(mock.url, mock.ca_file)
    async with c:
        raw = await c.chat.completions.with_raw_response.create(model="m", messages=MSG)
    assert raw.headers["content-type"] == "application/json"
    assert raw.headers["x-request-id"].startswith("req_")
    assert raw.parse().id.endswith(raw.headers["x-request-id"][4:])
    # the server's own fields, as the SDK sees them without barrage
    assert raw.headers["openai-processing-ms"] == "0"
    assert raw.headers["content-length"] == str(len(raw.content))
    assert raw.headers.get_list("x-should-retry") == ["false"]  # barrage did the retrying


async def test_sdk_sees_retry_after_and_stream_headers(mock):
    t = AsyncTransport(ca_file=mock.ca_file, max_retries=0)  # no 7 s engine wait
    c = openai.AsyncOpenAI(base_url=mock.url + "/v1", api_key="sk-test", max_retries=0,
                           http_client=httpx.AsyncClient(transport=t))
    async with c:
        with pytest.raises(openai.RateLimitError) as ei:
            await c.chat.completions.create(model="m", messages=MSG, extra_headers={
                "x-mock-status": "429", "x-mock-retry-after": "7"})
        h = ei.value.response.headers
        assert h["retry-after"] == "7" and h["x-request-id"] == ei.value.request_id
        raw = await c.chat.completions.with_raw_response.create(  # another model: the
            model="m2", messages=MSG, stream=True,  # 429 put model m's limit key on hold
            extra_headers={"x-mock-stream-tokens": "2"})
        # headers from the stream's first event; the body is re-framed SSE
        assert raw.headers["content-type"] == "text/event-stream"
        assert raw.headers["x-request-id"].startswith("req_")
        assert raw.headers["openai-processing-ms"] == "0" and "content-length" not in raw.headers
        chunks = [ch async for ch in raw.parse()]
        assert "".join(ch.choices[0].delta.content or "" for ch in chunks) == " tok1 tok2"


async def test_stream_with_usage(mock):
    c, _ = aopenai(mock.url, mock.ca_file)
    async with c:
        full = (await c.chat.completions.create(model="m", messages=MSG)).choices[0].message.content
        s = await c.chat.completions.create(model="m", messages=MSG, stream=True,
                                            stream_options={"include_usage": True})
        chunks = [ch async for ch in s]
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    # "mock answer to <body bytes>: <message>": the streamed body is longer
    assert text.split(": ", 1)[1] == full.split(": ", 1)[1] == "hello there"
    assert text.startswith("mock answer to ")
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == len(full.split())
    assert chunks[0].choices[0].delta.role == "assistant"


async def test_stream_yields_as_events_arrive(mock):
    c, _ = aopenai(mock.url, mock.ca_file)
    hdr = {"x-mock-stream-tokens": "5", "x-mock-stream-interval-ms": "200"}
    async with c:
        t0 = time.monotonic()
        s = await c.chat.completions.create(model="m", messages=MSG, stream=True, extra_headers=hdr)
        arrivals = [time.monotonic() - t0 async for _ in s]
    # role, 5 tokens 200 ms apart, finish: the first token came long before the last
    assert len(arrivals) == 7
    assert arrivals[1] < 0.5 and arrivals[-1] > 0.7, arrivals


async def test_429_then_success_engine_retries(mock):
    c, t = aopenai(mock.url, mock.ca_file, max_retries=0, backoff_base=0.01)
    hdr = {"x-mock-fail-times": "2", "x-mock-fail-key": uuid.uuid4().hex,
           "x-mock-retry-after": "0"}
    async with c:
        r = await c.chat.completions.create(model="m", messages=MSG, extra_headers=hdr)
        assert t.client.stats()["retried"] == 2
    assert r.object == "chat.completion"


async def test_429_exhausted_is_rate_limit_error_not_retried_by_sdk(mock):
    # The engine gives up after 1 retry; the SDK (max_retries=3) must not retry
    # again (x-should-retry: false), so the server sees exactly 2 requests.
    t = AsyncTransport(ca_file=mock.ca_file, max_retries=1, backoff_base=0.01)
    c = openai.AsyncOpenAI(base_url=mock.url + "/v1", api_key="sk-test", max_retries=3,
                           http_client=httpx.AsyncClient(transport=t))
    key = uuid.uuid4().hex
    hdr = {"x-mock-fail-times": "100", "x-mock-fail-key": key, "x-mock-retry-after": "0"}
    async with c:
        with pytest.raises(openai.RateLimitError) as ei:
            await c.chat.completions.create(model="m", messages=MSG, extra_headers=hdr)
        assert t.client.stats()["submitted"] == 1
        assert t.client.stats()["retried"] == 1
    assert ei.value.status_code == 429


async def test_sdk_retries_mode(mock):
    # retries="sdk": the engine never retries, the SDK's own retries do the work.
    t = AsyncTransport(ca_file=mock.ca_file, retries="sdk")
    c = openai.AsyncOpenAI(base_url=mock.url + "/v1", api_key="sk-test", max_retries=2,
                           http_client=httpx.AsyncClient(transport=t))
    hdr = {"x-mock-fail-times": "1", "x-mock-fail-key": uuid.uuid4().hex,
           "x-mock-retry-after": "0"}
    async with c:
        r = await c.chat.completions.create(model="m", messages=MSG, extra_headers=hdr)
        st = t.client.stats()
    assert r.object == "chat.completion"
    assert st["submitted"] == 2 and st["retried"] == 0


async def test_timeout_is_api_timeout_error(mock):
    c, _ = aopenai(mock.url, mock.ca_file, max_retries=0)
    async with c:
        t0 = time.monotonic()
        with pytest.raises(openai.APITimeoutError):
            await c.chat.completions.create(model="m", messages=MSG, timeout=0.3,
                                            extra_headers={"x-mock-latency-ms": "3000"})
    assert time.monotonic() - t0 < 2.0


async def test_connect_error(mock):
    c = openai.AsyncOpenAI(base_url="https://127.0.0.1:1/v1", api_key="sk-test", max_retries=0,
                           http_client=httpx.AsyncClient(transport=AsyncTransport(
                               ca_file=mock.ca_file, max_retries=0)))
    async with c:
        with pytest.raises(openai.APIConnectionError) as ei:
            await c.chat.completions.create(model="m", messages=MSG)
    assert not isinstance(ei.value, openai.APITimeoutError)
    assert isinstance(ei.value.__cause__, httpx.ConnectError)


async def test_cancel_mid_stream(mock):
    c, t = aopenai(mock.url, mock.ca_file)
    hdr = {"x-mock-stream-tokens": "100", "x-mock-stream-interval-ms": "50"}
    got = []

    async def consume():
        s = await c.chat.completions.create(model="m", messages=MSG, stream=True, extra_headers=hdr)
        async for ch in s:
            got.append(ch)

    async with c:
        task = asyncio.create_task(consume())
        while len(got) < 3:
            await asyncio.sleep(0.01)
        t0 = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - t0 < 0.5
        for _ in range(50):
            if t.client.stats()["cancelled"] == 1:
                break
            await asyncio.sleep(0.01)
        assert t.client.stats()["cancelled"] == 1
    assert len(got) < 20


async def test_close_stream_early_cancels_engine_request(mock):
    c, t = aopenai(mock.url, mock.ca_file)
    hdr = {"x-mock-stream-tokens": "100", "x-mock-stream-interval-ms": "50"}
    async with c:
        s = await c.chat.completions.create(model="m", messages=MSG, stream=True, extra_headers=hdr)
        n = 0
        async for _ in s:
            n += 1
            if n == 3:
                break
        await s.close()
        for _ in range(50):
            if t.client.stats()["cancelled"] == 1:
                break
            await asyncio.sleep(0.01)
        assert t.client.stats()["cancelled"] == 1


async def test_concurrent_calls(mock):
    c, t = aopenai(mock.url, mock.ca_file, max_inflight=64)
    async with c:
        rs = await asyncio.gather(*[
            c.chat.completions.create(model="m", messages=[{"role": "user", "content": f"q{i}"}])
            for i in range(200)])
        assert t.client.stats()["completed"] == 200
    for i, r in enumerate(rs):
        assert r.choices[0].message.content.endswith(f"q{i}")


def test_sync_transport(mock):
    t = Transport(ca_file=mock.ca_file)
    with openai.OpenAI(base_url=mock.url + "/v1", api_key="sk-test",
                       http_client=httpx.Client(transport=t)) as c:
        r = c.chat.completions.create(model="m", messages=MSG)
        assert r.choices[0].message.content.endswith("hello there")
        s = c.chat.completions.create(model="m", messages=MSG, stream=True)
        text = "".join(ch.choices[0].delta.content or "" for ch in s if ch.choices)
    assert text.split(": ", 1)[1] == r.choices[0].message.content.split(": ", 1)[1]


async def test_limit_key_per_model(mock):
    seen = []
    t = AsyncTransport(ca_file=mock.ca_file, limit_key=lambda req: seen.append(req.url.path) or "k")
    async with httpx.AsyncClient(transport=t) as h:
        r = await h.post(mock.url + "/v1/chat/completions", json={"model": "m", "messages": MSG})
    assert r.status_code == 200 and r.json()["object"] == "chat.completion"
    assert seen == ["/v1/chat/completions"]
    with pytest.raises(ValueError):
        AsyncTransport(ca_file=mock.ca_file, limit_key="bogus")._prepare(
            httpx.Request("POST", "https://x/", json={}), b"{}")


async def test_anthropic_errors_map_to_sdk_types(mock):
    t = barrage.httpx2.AsyncTransport(ca_file=mock.ca_file, max_retries=0)
    c = anthropic.AsyncAnthropic(base_url=mock.url, api_key="test", max_retries=0,
                                 http_client=httpx2.AsyncClient(transport=t))
    async with c:
        with pytest.raises(anthropic.RateLimitError) as ei:
            await c.messages.create(model="claude", max_tokens=10, messages=MSG,
                                    extra_headers={"x-mock-status": "429",
                                                   "x-mock-retry-after": "0"})
        # httpx2 gets the server's header fields too
        assert ei.value.response.headers["retry-after"] == "0"
        assert ei.value.response.headers["openai-processing-ms"] == "0"
        with pytest.raises(anthropic.APITimeoutError):
            await c.messages.create(model="claude", max_tokens=10, messages=MSG, timeout=0.3,
                                    extra_headers={"x-mock-fault": "stall"})


# ---- against nginx: an independent HTTP/1.1 + TLS peer ----------------------
async def test_nginx_chat_and_concurrency(nginx):
    t = AsyncTransport(ca_file=nginx.ca, max_inflight=50)
    c = openai.AsyncOpenAI(base_url=nginx.url("/v1"), api_key="sk-test",
                           http_client=httpx.AsyncClient(transport=t))
    async with c:
        rs = await asyncio.gather(*[c.chat.completions.create(model="m", messages=MSG)
                                    for _ in range(100)])
    assert {r.id for r in rs} == {"chatcmpl-barrage-nginx-0001"}
    assert rs[0].usage.prompt_tokens == 17 and rs[0].usage.completion_tokens == 42


async def test_nginx_stream_with_usage(nginx):
    t = AsyncTransport(ca_file=nginx.ca)
    c = openai.AsyncOpenAI(base_url=nginx.url(""), api_key="sk-test",
                           http_client=httpx.AsyncClient(transport=t))
    async with c:
        s = await c.post("/sse", cast_to=openai.types.chat.ChatCompletionChunk,
                         body={"model": "m", "messages": MSG, "stream": True}, stream=True,
                         stream_cls=openai.AsyncStream[openai.types.chat.ChatCompletionChunk])
        chunks = [ch async for ch in s]
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == " a b c d e"
    assert chunks[-1].usage.completion_tokens == 5


async def test_nginx_429_is_rate_limit_error(nginx):
    t = AsyncTransport(ca_file=nginx.ca, max_retries=0)
    c = openai.AsyncOpenAI(base_url=nginx.url(""), api_key="sk-test", max_retries=2,
                           http_client=httpx.AsyncClient(transport=t))
    async with c:
        with pytest.raises(openai.RateLimitError) as ei:
            await c.post("/status429", cast_to=openai.types.chat.ChatCompletion, body={})
        assert t.client.stats()["submitted"] == 1  # x-should-retry: false stopped the SDK
    # nginx's own fields (names in lower case): Retry-After, Server
    assert ei.value.response.headers["retry-after"] == "1"
    assert ei.value.response.headers["server"].startswith("nginx")


async def test_nginx_timeout(nginx):
    t = AsyncTransport(ca_file=nginx.ca, max_retries=0)
    c = openai.AsyncOpenAI(base_url=nginx.url(""), api_key="sk-test", max_retries=0,
                           http_client=httpx.AsyncClient(transport=t))
    async with c:
        with pytest.raises(openai.APITimeoutError):
            await c.post("/sleep/500", cast_to=openai.types.chat.ChatCompletion, body={},
                         options={"timeout": 0.1})


async def test_nginx_anthropic_message(nginx):
    t = barrage.httpx2.AsyncTransport(ca_file=nginx.ca)
    c = anthropic.AsyncAnthropic(base_url=nginx.url(""), api_key="test",
                                 http_client=httpx2.AsyncClient(transport=t))
    async with c:
        raw = await c.messages.with_raw_response.create(model="claude", max_tokens=10,
                                                        messages=MSG)
    assert raw.status_code == 200
    assert raw.http_request.url.path == "/v1/messages"
    assert (await raw.parse()).id == "chatcmpl-barrage-nginx-0001"
