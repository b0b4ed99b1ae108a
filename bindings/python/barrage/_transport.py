"""The httpx transport classes, built for one httpx-compatible module: httpx
itself (barrage.httpx) or its fork httpx2, which the anthropic SDK uses since
2.x (barrage.httpx2). Both expose the same transport API."""
import asyncio
import json as _json
import math
import threading

from . import errors as E
from .client import Client



def build(httpx):
    """Returns (AsyncTransport, Transport) subclassing httpx's base transports."""
    # Hop-by-hop and framing headers the engine writes itself; accept-encoding is
    # dropped because the engine hands over the body as received (no decoding).
    _DROP = {"host", "content-length", "transfer-encoding", "connection", "keep-alive",
             "accept-encoding", "upgrade", "te"}


    def _httpx_error(exc, request):
        """A barrage error as the httpx exception an SDK expects."""
        msg = str(exc)
        if isinstance(exc, E.TimeoutError):
            return httpx.ReadTimeout(msg, request=request)
        if isinstance(exc, (E.ConnectError, E.UnavailableError)):  # DNS, TLS, refused, breaker
            return httpx.ConnectError(msg, request=request)
        if isinstance(exc, E.FullError):
            return httpx.PoolTimeout(msg, request=request)
        if isinstance(exc, (E.ProtocolError, E.TooLargeError)):
            return httpx.RemoteProtocolError(msg, request=request)
        if isinstance(exc, E.InvalidError):
            return httpx.UnsupportedProtocol(msg, request=request)
        if isinstance(exc, E.ClosedError):
            return httpx.TransportError(msg)
        return httpx.ReadError(msg, request=request)  # BRG_E_IO, engine-side cancel, others


    def _limit_key(spec, request, body_json):
        if spec is None:
            return None
        if callable(spec):
            return spec(request)
        if spec == "model":
            m = body_json.get("model") if isinstance(body_json, dict) else None
            return str(m) if m else None
        if spec.startswith("header:"):
            return request.headers.get(spec[7:])
        raise ValueError(f"limit_key={spec!r}: want None, 'model', 'header:NAME' or a callable")


    def _sse_bytes(raw, typed):
        """One engine event (its data field) back as SSE bytes; Anthropic-style
        events carry their name in "type", restored as the event: line."""
        if typed is not None:
            return b"event: " + typed.encode() + b"\ndata: " + raw + b"\n\n"
        return b"data: " + raw + b"\n\n"


    def _event_type(raw):
        if not raw.startswith(b"{") or b'"type"' not in raw:
            return None
        try:
            t = _json.loads(raw).get("type")
        except ValueError:
            return None
        return t if isinstance(t, str) else None


    class _EventStream(httpx.AsyncByteStream):
        """The body of a streamed answer: SSE bytes as the engine's events arrive."""

        def __init__(self, stream, first, request):
            self._stream, self._first, self._request = stream, first, request
            self._typed = False

        async def __aiter__(self):
            ev = self._first
            self._first = None
            try:
                while ev is not None:
                    t = _event_type(ev.raw)
                    self._typed = self._typed or t is not None
                    yield _sse_bytes(ev.raw, t)
                    try:
                        ev = await self._stream.__anext__()
                    except StopAsyncIteration:
                        ev = None
            except E.BarrageError as exc:
                raise _httpx_error(exc, self._request) from exc
            if not self._typed:  # OpenAI's terminator, which the engine consumes
                yield b"data: [DONE]\n\n"

        async def aclose(self):
            await self._stream.aclose()  # cancels the engine request unless finished


    class AsyncTransport(httpx.AsyncBaseTransport):
        """AsyncTransport(client=None, *, limit_key="model", retries="engine", **options)

        client     a barrage.Client to share (else one is made from **options,
                   e.g. max_inflight=1000, rate_limit=500, rate_period=1.0,
                   ca_file=..., http_version="2")
        limit_key  rate-limit key per request: "model" (the JSON body's model),
                   "header:NAME", a callable(httpx.Request) -> str|None, or None
                   (the engine's default, per origin)
        retries    "engine" (default): barrage retries (fast, honours Retry-After)
                   and marks its answers "x-should-retry: false" so the SDK does
                   not retry them again; a re-attempt the SDK makes anyway (after
                   a timeout or connection error) is sent without engine retries.
                   "sdk": the engine never retries; the SDK's own policy decides.
        Timeouts: httpx's read timeout is the engine's per-attempt timeout and the
        deadline of the whole call, engine retries included (for a stream: the
        longest silence between events); connect timeouts are the client
        option connect_timeout (seconds).
        """

        def __init__(self, client=None, *, limit_key="model", retries="engine", **options):
            if retries not in ("engine", "sdk"):
                raise ValueError("retries must be 'engine' or 'sdk'")
            self._own = client is None
            self._client = client if client is not None else Client(**options)
            self._limit_key, self._retries = limit_key, retries

        @property
        def client(self):
            return self._client

        def _prepare(self, request, body):
            headers = {}
            for k, v in request.headers.multi_items():
                if k.lower() not in _DROP:
                    headers[k] = v
            body_json = None
            ctype = request.headers.get("content-type", "")
            if body and "json" in ctype:
                try:
                    body_json = _json.loads(body)
                except ValueError:
                    pass
            stream = (isinstance(body_json, dict) and body_json.get("stream") is True) or \
                "text/event-stream" in request.headers.get("accept", "")
            no_retry = self._retries == "sdk" or request.headers.get("x-stainless-retry-count",
                                                                      "0") not in ("", "0")
            read = (request.extensions.get("timeout") or {}).get("read")
            # The SDKs read the server's headers (x-request-id, retry-after,
            # x-ratelimit-*): ask the engine for them on every request.
            kw = dict(method=request.method, headers=headers,
                      limit_key=_limit_key(self._limit_key, request, body_json),
                      max_retries=0 if no_retry else -1, response_headers=True)
            return kw, stream, read

        def _headers(self, h, reframed=False):
            """The answer's header fields as the SDK gets them: the server's own
            (barrage.Headers; content-type and x-request-id only where the
            engine handed none over), less content-length when the body is
            re-framed SSE, with x-should-retry: false when barrage retried."""
            items = h.multi_items()
            if reframed:
                items = [(k, v) for k, v in items if k != "content-length"]
            if self._retries == "engine":
                items = [(k, v) for k, v in items if k != "x-should-retry"]
                items.append(("x-should-retry", "false"))
            return items

        def _error_response(self, exc, request):
            if isinstance(exc, E.HTTPError):
                return httpx.Response(exc.http_status, headers=self._headers(exc.headers),
                                      content=exc.body or b"", request=request)
            raise _httpx_error(exc, request) from exc

        async def handle_async_request(self, request):
            body = await request.aread()
            kw, stream, read = self._prepare(request, body)
            url = str(request.url)
            if not stream:
                try:
                    # httpx's timeout bounds this call: the engine's retries fit in it
                    r = await self._client.call(url, body or None, timeout=read, deadline=read,
                                                **kw)
                except E.BarrageError as exc:
                    return self._error_response(exc, request)
                return httpx.Response(r.status, headers=self._headers(r.headers),
                                      content=r.body, request=request)
            s = self._client.stream(url, body or None, idle_timeout=read, **kw)
            try:
                first = await s.__anext__()
            except StopAsyncIteration:  # finished without a data event
                r = s.response
                return httpx.Response(r.status, headers=self._headers(r.headers),
                                      content=r.body, request=request)
            except E.BarrageError as exc:
                return self._error_response(exc, request)
            except BaseException:
                await s.aclose()
                raise
            # The first event brought the answer's head (status 2xx: the
            # engine streams only those; headers from the first partial).
            return httpx.Response(200, headers=self._headers(s.headers, reframed=True),
                                  stream=_EventStream(s, first, request), request=request)

        async def aclose(self):
            if self._own:
                self._client.close()


    class _SyncStream(httpx.SyncByteStream):
        def __init__(self, runner, astream):
            self._runner, self._astream = runner, astream

        def __iter__(self):
            it = self._astream.__aiter__()
            while True:
                try:
                    yield self._runner.run(it.__anext__())
                except StopAsyncIteration:
                    return

        def close(self):
            self._runner.run(self._astream.aclose())


    class _LoopThread:
        """An event loop on a daemon thread that owns the engine's asyncio side."""

        def __init__(self):
            self.loop = asyncio.new_event_loop()
            self._t = threading.Thread(target=self.loop.run_forever, name="barrage-httpx", daemon=True)
            self._t.start()

        def run(self, coro):
            return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

        def stop(self):
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._t.join(5)


    class Transport(httpx.BaseTransport):
        """The synchronous transport (httpx.Client, openai.OpenAI): the same
        options as AsyncTransport; requests run on one background event loop."""

        def __init__(self, client=None, **kw):
            self._runner = _LoopThread()
            self._inner = AsyncTransport(client, **kw)

        def handle_request(self, request):
            body = request.read()
            areq = httpx.Request(request.method, request.url, headers=request.headers, content=body,
                                 extensions=request.extensions)
            resp = self._runner.run(self._inner.handle_async_request(areq))
            if isinstance(resp.stream, _EventStream):
                return httpx.Response(resp.status_code, headers=resp.headers,
                                      stream=_SyncStream(self._runner, resp.stream), request=request)
            return httpx.Response(resp.status_code, headers=resp.headers, content=resp.content,
                                  request=request)

        def close(self):
            try:
                self._runner.run(self._inner.aclose())
            finally:
                self._runner.stop()

    return AsyncTransport, Transport
