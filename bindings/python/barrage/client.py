"""asyncio client over libbarrage in threaded mode.

The engine runs its own reactor thread (brg_start). The asyncio loop watches
brg_results_fd with loop.add_reader; the reader callback drains brg_results
and resolves the waiting futures by request id. No polling thread, no
spinning, and the GIL is never held while the engine waits (ctypes releases
it around each foreign call, and the engine's own thread never takes it).
"""
import asyncio
import collections
import collections.abc
import ctypes
import inspect
import itertools
import json as _json
import math
import os
import threading
import time
import warnings
from ctypes import byref, c_uint64, c_void_p

from . import _lib
from ._lib import BrgBatchOptions, BrgBatchProgress, BrgHeader, BrgRequest, BrgResult, BrgStats, lib
from .errors import (BarrageError, ClosedError, GatherTimeout, InvalidError, TimeoutError, check,
                     error_for)
from .headers import headers_of

# name -> (brg_option number, kind); kind "int", "bool" or "str"
OPTIONS = {
    "max_inflight": (1, "int"), "max_conns_per_host": (2, "int"), "rate_limit": (3, "int"),
    "rate_period_ms": (4, "int"), "rate_burst": (5, "int"), "tokens_per_minute": (6, "int"),
    "timeout_ms": (7, "int"), "connect_timeout_ms": (8, "int"), "max_retries": (9, "int"),
    "backoff_base_ms": (10, "int"), "backoff_max_ms": (11, "int"), "backend": (12, "backend"),
    "ca_file": (13, "str"), "verify_peer": (14, "bool"), "max_response_bytes": (15, "int"),
    "cache_path": (16, "str"), "cache_ttl_s": (17, "int"), "allow_http": (18, "bool"),
    "max_pending": (19, "int"), "max_header_bytes": (20, "int"), "idle_timeout_ms": (21, "int"),
    "tokens_burst": (22, "int"), "retry_statuses": (23, "str"), "breaker_threshold": (24, "int"),
    "breaker_pause_ms": (25, "int"), "tls_resume": (26, "bool"),
    "max_handshakes": (27, "int"),
    # since 0.2.0
    "first_token_timeout_ms": (28, "int"), "stream_idle_timeout_ms": (29, "int"),
    "http_version": (30, "http_version"), "proxy": (31, "str"), "no_proxy": (32, "list"),
    "dns_servers": (33, "list"),
    # since 0.3.0
    "max_server_wait_ms": (34, "int"),
    # since 0.4.0
    "shared_limits": (35, "str"), "shared_namespace": (36, "str"), "shared_timeout_ms": (37, "int"),
    "shared_lease_ms": (38, "int"),
}
# The Python names, in seconds (floats): name -> (engine option, unit per second).
# The engine's *_ms / *_s spellings still work, with a DeprecationWarning.
SECONDS = {
    "rate_period": ("rate_period_ms", 1000), "timeout": ("timeout_ms", 1000),
    "connect_timeout": ("connect_timeout_ms", 1000), "backoff_base": ("backoff_base_ms", 1000),
    "backoff_max": ("backoff_max_ms", 1000), "cache_ttl": ("cache_ttl_s", 1),
    "idle_timeout": ("idle_timeout_ms", 1000), "breaker_pause": ("breaker_pause_ms", 1000),
    "first_token_timeout": ("first_token_timeout_ms", 1000),
    "stream_idle_timeout": ("stream_idle_timeout_ms", 1000),
    "max_server_wait": ("max_server_wait_ms", 1000),
    "shared_timeout": ("shared_timeout_ms", 1000), "shared_lease": ("shared_lease_ms", 1000),
}
_DEPRECATED = {old: new for new, (old, _) in SECONDS.items()}


def _options(kw, stacklevel=3):
    """Client keywords -> engine option values (seconds converted, old names warned)."""
    out = {}
    for k, v in kw.items():
        if k in SECONDS:
            old, per_s = SECONDS[k]
            if old in kw:
                raise TypeError(f"both {k!r} and {old!r} given")
            out[old] = None if v is None else max(1, math.ceil(v * per_s)) if v > 0 else int(v * per_s)
        elif k in _DEPRECATED:
            warnings.warn(f"{k} is deprecated: use {_DEPRECATED[k]}= in seconds",
                          DeprecationWarning, stacklevel=stacklevel)
            out[k] = v
        elif k in OPTIONS:
            out[k] = v
        else:
            raise TypeError(f"unknown option {k!r}")
    if out.get("rate_limit") and "rate_period_ms" not in out:
        warnings.warn("rate_limit without rate_period counts per 60 s; say rate_period=60.0 "
                      "(or 1.0 for per second)", DeprecationWarning, stacklevel=stacklevel)
    return out
BACKENDS = {"auto": 0, "io_uring": 1, "epoll": 2}
HTTP_VERSIONS = {"auto": 0, "1.1": 1, "http/1.1": 1, "2": 2, "h2": 2}
_DRAIN = 256


class Response:
    """A successful (2xx) answer. Times are in seconds from submit.

    The final answer of a Client.stream() also has ttft (submit -> first
    non-empty delta), events (data events delivered), gap_max and gap_mean
    (between token events). ttft and the gaps are None where they do not
    apply (not streamed, no token, fewer than two tokens, or a library older
    than 0.2), events is 0 then. Its body is the raw server-sent event
    stream, not JSON, or b"" when the stream was asked for with
    no_stream_body=True."""
    __slots__ = ("id", "status", "body", "prompt_tokens", "completion_tokens", "attempts",
                 "queued", "ttfb", "total", "request_id", "cached",
                 "ttft", "events", "gap_max", "gap_mean", "retry_after", "_header_block",
                 "_headers")
    # httpx-like: status_code, headers, content (bytes), text, json().
    # retry_after: the answer's Retry-After in seconds as sent, None when none.

    def json(self):
        return _json.loads(self.body)

    @property
    def status_code(self):
        """The HTTP status, as httpx names it."""
        return self.status

    @property
    def text(self):
        return self.body.decode("utf-8", errors="replace")

    @property
    def content(self):
        """The body, bytes (as httpx). The message text is message_text."""
        return self.body

    @property
    def headers(self):
        """The answer's header fields, a case-insensitive Headers (httpx-like:
        h["X-Request-Id"], h.get_list(name), h.multi_items()), in the order
        received. When the engine did not hand them over (response_headers=False,
        a cached answer, libbarrage older than 0.4) only what is known without
        them: content-type guessed from the body, and x-request-id."""
        if self._headers is None:
            body = self.body
            if not body and self.events:
                # A stream whose body was not kept (no_stream_body): still an
                # event stream, which is what the guess reads from a body.
                body = b"data:"
            self._headers = headers_of(self._header_block, body, self.request_id)
        return self._headers

    @property
    def message_text(self):
        """choices[0].message.content of a chat-completion answer."""
        return self.json()["choices"][0]["message"]["content"]

    def raise_for_status(self):
        return self  # a Response is always a 2xx answer; errors are raised as HTTPError

    def __repr__(self):
        return (f"<Response {self.status} {len(self.body)} bytes attempts={self.attempts} "
                f"total={self.total:.3f}s>")


class Request:
    """One request for gather/map/as_completed. A plain dict with the same keys,
    a tuple (url, body) or a str url are accepted too."""
    __slots__ = ("url", "body", "method", "headers", "timeout", "deadline_ms", "max_retries",
                 "limit_key", "base_url", "no_cache", "response_headers")

    def __init__(self, url, body=None, *, method="POST", headers=None, timeout=None,
                 deadline=None, max_retries=-1, limit_key=None, base_url=None, no_cache=False,
                 deadline_ms=None, response_headers=None):
        self.url, self.body, self.method, self.headers = url, body, method, headers
        self.timeout, self.max_retries = timeout, max_retries
        self.deadline_ms = _deadline_ms(deadline, deadline_ms)
        self.limit_key, self.base_url, self.no_cache = limit_key, base_url, no_cache
        self.response_headers = response_headers

    def __repr__(self):
        return f"Request({self.method} {self.url!r})"


def _deadline_ms(deadline, deadline_ms, stacklevel=4):
    """deadline= seconds (new) or deadline_ms= (deprecated) as the ms field."""
    if deadline_ms is not None:
        warnings.warn("deadline_ms is deprecated: use deadline= in seconds", DeprecationWarning,
                      stacklevel=stacklevel)
        if deadline is not None:
            raise TypeError("both deadline and deadline_ms given")
        return int(deadline_ms)
    return _ms(deadline)


def as_request(r):
    if isinstance(r, Request):
        return r
    if isinstance(r, dict):
        return Request(**r)
    if isinstance(r, (tuple, list)):
        return Request(*r)
    if isinstance(r, str):
        return Request(r)
    raise TypeError(f"not a request: {r!r}")


class Completed:
    """What as_completed yields: the input index and request, and either
    the response or the error. result() returns the response or raises."""
    __slots__ = ("index", "request", "response", "error")

    def __init__(self, index, request, response, error):
        self.index, self.request, self.response, self.error = index, request, response, error

    def result(self):
        if self.error is not None:
            raise self.error
        return self.response

    def __repr__(self):
        return f"<Completed #{self.index} {self.error or self.response!r}>"


def _encode_body(body):
    if body is None:
        return None
    if isinstance(body, bytes):
        return body
    if isinstance(body, (bytearray, memoryview)):
        return bytes(body)
    if isinstance(body, str):
        return body.encode()
    if isinstance(body, (dict, list)):
        return _json.dumps(body, separators=(",", ":")).encode()
    raise TypeError(f"body must be bytes, str, dict or list, not {type(body).__name__}")


def _us(v):
    """A -1-means-none microsecond field as seconds or None."""
    return v / 1e6 if v >= 0 else None


def _has_stream_fields(r):
    # The producer's size, not ours: a 0.1 library's results end before ttft_us.
    return r.size >= _lib.RESULT_STREAM_FIELDS_END


def _has_0_4_fields(r):
    return r.size >= _lib.RESULT_0_4_FIELDS_END


def _retry_after_and_headers(r):
    """(retry_after seconds or None, header block bytes) of a result."""
    if not _has_0_4_fields(r):
        return None, b""
    ra = r.retry_after_ms / 1000.0 if r.retry_after_ms >= 0 else None
    return ra, ctypes.string_at(r.headers, r.headers_len) if r.headers_len else b""


def _make_response(r):
    resp = Response()
    resp.id = r.id
    resp.status = r.http_status
    resp.body = ctypes.string_at(r.body, r.body_len) if r.body else b""
    resp.prompt_tokens = r.prompt_tokens
    resp.completion_tokens = r.completion_tokens
    resp.attempts = r.attempts
    resp.queued = r.queued_us / 1e6
    resp.ttfb = r.ttfb_us / 1e6 if r.ttfb_us >= 0 else None
    resp.total = r.total_us / 1e6
    resp.request_id = (r.request_id or b"").decode(errors="replace")
    resp.cached = bool(r.flags & _lib.RES_CACHED)
    resp.retry_after, resp._header_block = _retry_after_and_headers(r)
    resp._headers = None
    if _has_stream_fields(r):
        resp.ttft, resp.gap_max, resp.gap_mean = _us(r.ttft_us), _us(r.gap_max_us), _us(r.gap_mean_us)
        resp.events = r.events
    else:
        resp.ttft = resp.gap_max = resp.gap_mean = None
        resp.events = 0
    return resp


def _make_error(r):
    body = ctypes.string_at(r.body, r.body_len) if r.body else b""
    retry_after, block = _retry_after_and_headers(r)
    return error_for(r.status, (r.error or b"").decode(errors="replace"),
                     http_status=r.http_status, body=body, attempts=r.attempts,
                     request_id=(r.request_id or b"").decode(errors="replace"),
                     retry_after=retry_after, header_block=block)


def _future_sink(fut, resp, exc):
    if not fut.done():
        if exc is None:
            fut.set_result(resp)
        else:
            fut.set_exception(exc)


class _Gather:
    __slots__ = ("fut", "results", "remaining", "ret_exc")

    def __init__(self, fut, n, ret_exc):
        self.fut, self.results, self.remaining, self.ret_exc = fut, [None] * n, n, ret_exc

    def deliver(self, i, resp, exc):
        if self.fut.done():
            return
        if exc is not None:
            if not self.ret_exc:
                self.fut.set_exception(exc)
                return
            resp = exc
        self.results[i] = resp
        self.remaining -= 1
        if self.remaining == 0:
            self.fut.set_result(self.results)


def _ms(seconds):
    """Seconds (None/0 = the engine's default) as whole ms for a request field.
    A positive value never rounds down to 0, which would mean "default"."""
    if not seconds:
        return 0
    return max(1, math.ceil(seconds * 1000)) if seconds > 0 else -1  # < 0: the engine refuses it


def _stream_body(body):
    """A dict body asks for the stream itself: add "stream": true when the
    key is absent (an explicit value, even false, is left alone). The caller's
    dict is not modified. bytes/str bodies are sent as they are."""
    if isinstance(body, dict) and "stream" not in body:
        return dict(body, stream=True)
    return body


_UNSET = object()


class StreamEvent:
    """One server-sent event of a streamed answer (one BRG_RES_PARTIAL result).

      raw      the event's data field, bytes (OpenAI's "[DONE]" is never delivered)
      data     the same as str
      json()   the data parsed (cached)
      content  the text this event adds: choices[0].delta.content of a chat
               chunk, choices[0].text of a completion chunk, delta.text of an
               Anthropic content_block_delta; "" for role, finish and usage chunks
      index    1-based position in the stream
      ttft     seconds from submit to the first token (first non-empty delta),
               None while no token has arrived yet
      elapsed  seconds from submit to this event
    """
    __slots__ = ("raw", "index", "ttft", "elapsed", "_parsed", "_head")

    @property
    def data(self):
        return self.raw.decode("utf-8", errors="replace")

    def json(self):
        if self._parsed is _UNSET:
            self._parsed = _json.loads(self.raw)
        return self._parsed

    @property
    def content(self):
        try:
            d = self.json()
        except ValueError:
            return ""
        if not isinstance(d, dict):
            return ""
        choices = d.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            c = choices[0]
            delta = c.get("delta")
            if isinstance(delta, dict):
                return delta.get("content") or ""
            return c.get("text") or ""
        delta = d.get("delta")  # Anthropic: {"type":"content_block_delta","delta":{"text":...}}
        if isinstance(delta, dict):
            return delta.get("text") or ""
        return ""

    def __repr__(self):
        return f"<StreamEvent #{self.index} {self.raw[:60]!r}>"


def _make_event(r):
    ev = StreamEvent()
    ev.raw = ctypes.string_at(r.body, r.body_len) if r.body else b""
    ev._parsed = _UNSET
    if _has_stream_fields(r):
        ev.index, ev.ttft = r.events, _us(r.ttft_us)
    else:  # cannot happen: a 0.1 library never streams; keep the object well-formed
        ev.index, ev.ttft = 0, None
    ev.elapsed = r.total_us / 1e6
    # A stream's first partial carries the answer's header block and
    # x-request-id (libbarrage >= 0.4); Stream.headers reads them.
    ev._head = None
    if ev.index == 1:
        ev._head = (_retry_after_and_headers(r)[1], (r.request_id or b"").decode(errors="replace"))
    return ev


class _StreamState:
    """What the client's pending table holds for one stream. Kept apart from
    Stream on purpose: the table must not keep the user's iterator alive, so
    that dropping the Stream (a `break` out of `async for`) runs Stream.__del__,
    which cancels the engine request."""
    __slots__ = ("events", "final", "waiter", "head")

    def __init__(self):
        self.events = collections.deque()
        self.final = None  # (response, exception) once the final result arrived
        self.waiter = None
        self.head = None  # (header block, request id) from the first partial

    def on_event(self, ev):
        if ev._head is not None and self.head is None:
            self.head = ev._head
        self.events.append(ev)
        self.wake()

    def on_final(self, _key, resp, exc):
        self.final = (resp, exc)
        self.wake()

    def wake(self):
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)


class Stream:
    """A streamed request (Client.stream): an async iterator of StreamEvent,
    also an async context manager.

        async with client.stream("/v1/chat/completions", body) as s:
            async for ev in s:
                print(ev.content, end="")
        print(s.response.completion_tokens, s.response.ttft)

    The request is submitted when iteration starts (or on `async with`).
    When the iteration ends normally, `response` holds the final Response
    (usage, ttft, ttfb, events, gap_max, gap_mean; body = the raw SSE
    stream, b"" with no_stream_body=True). A failed request raises its
    BarrageError (TimeoutError for the first-token and idle timeouts,
    HTTPError, ...) after the events that did arrive, and leaves it in
    `error`. Events are buffered while nobody iterates; the engine applies
    no backpressure.

    Stopping early cancels the engine request (brg_cancel: its transfer ends
    at once): leaving `async with`, `await s.aclose()`, cancelling the
    iterating task, or dropping the Stream (a bare `async for ... break`
    drops it at once in CPython; `async with` or aclose() do not depend on
    that). A Stream is iterated once, by one task at a time, on the loop the
    client is bound to.
    """

    def __init__(self, client, url, body, kw):
        self._client, self._url, self._body, self._kw = client, url, body, kw
        self._st = None     # _StreamState once submitted
        self._loop = None
        self._finished = False  # end seen, failed to submit, or closed
        self.id = None      # the engine's request id once submitted
        self.response = None
        self.error = None

    def _start(self):
        if self._st is not None or self._finished:
            return
        self._finished = True  # a submit that raises does not get a second try
        loop = self._client._bind()
        st = _StreamState()
        self.id = self._client._submit(self._url, self._body, sink=st.on_final, key=None,
                                       on_event=st.on_event, flags=_lib.REQ_STREAM, **self._kw)
        self._st, self._loop, self._finished = st, loop, False

    def __aiter__(self):
        return self

    async def __anext__(self):
        self._start()
        st = self._st
        while True:
            if self._finished:
                raise StopAsyncIteration
            if st.events:
                return st.events.popleft()
            if st.final is not None:  # every event before it has been handed out
                self._finished = True
                self.response, self.error = st.final
                if self.error is not None:
                    raise self.error
                raise StopAsyncIteration
            st.waiter = self._loop.create_future()
            try:
                await st.waiter
            except asyncio.CancelledError:
                self._abort()  # the iterating task was cancelled: so is the request
                raise
            finally:
                st.waiter = None

    @property
    def headers(self):
        """The answer's header fields (as Response.headers), known once the
        first event arrived (the engine hands them over with it) or the
        stream ended; None before."""
        st = self._st
        if st is not None and st.head is not None:
            block, rid = st.head
            return headers_of(block, b"data:", rid)
        if self.response is not None:
            return self.response.headers
        if self.error is not None:
            return self.error.headers
        return None

    def _abort(self):
        if self._finished:
            return
        self._finished = True
        if self.id is not None:
            self._client._cancel(self.id)  # no-op once the final result was dispatched
        if self._st is not None:
            self._st.events.clear()
            self._st.wake()  # another task waiting in __anext__ ends its iteration

    async def aclose(self):
        """Stops the stream: cancels the engine request unless it finished,
        drops buffered events. Idempotent."""
        self._abort()

    async def __aenter__(self):
        self._start()
        return self

    async def __aexit__(self, *exc):
        self._abort()

    def __del__(self):
        # Dropped before its end (e.g. break out of `async for`): the engine
        # request must not run on, and its events pile up, with no reader.
        try:
            if not self._finished and self.id is not None:
                self._client._cancel(self.id)
        except Exception:  # interpreter shutdown, closed client
            pass

    def __repr__(self):
        state = "done" if self._finished else ("running" if self._st is not None else "new")
        return f"<Stream {self._url!r} {state}>"


def _with_eta(d):
    done, total, el = d["done"], d["total"], d["elapsed_s"]
    d["eta_s"] = el * (total - done) / done if done and total >= done else None
    return d


class _LoopProgress:
    """Runs a batch's progress callback on the event loop, not the worker
    thread. Its answer (1 stop, 2 abort) reaches the engine at the next
    progress tick (~100 ms later); an exception it raises aborts the batch
    and is raised by run_batch."""

    def __init__(self, loop, fn):
        self.loop, self.fn, self.verdict, self.error = loop, fn, 0, None
        self.last = None

    def _run(self, d):
        try:
            v = int(self.fn(d) or 0)
            self.verdict = max(self.verdict, v)
        except Exception as exc:  # noqa: BLE001 - handed to the worker, raised by run_batch
            self.error = exc
            self.verdict = 2

    def __call__(self, d):  # on the worker thread
        if self.error is not None:
            raise self.error
        self.last = asyncio.run_coroutine_threadsafe(self._async(d), self.loop)
        return self.verdict

    async def _async(self, d):
        self._run(d)

    def flush(self):
        """Waits (worker thread) until the callbacks already sent have run."""
        if self.last is not None:
            try:
                self.last.result(5)
            except Exception:  # noqa: BLE001 - loop gone
                pass
        if self.error is not None:
            raise self.error


class Client:
    """Client(**limits): the options of brg_option by lower-case name
    (max_inflight=100, rate_limit=..., ca_file=..., backend="epoll", ...). Since
    libbarrage 0.2: first_token_timeout_ms and stream_idle_timeout_ms (defaults
    for stream()), http_version (0/"auto": HTTP/2 when ALPN offers it, 1/"1.1",
    2/"2"), proxy ("http://[user:pass@]host:port", for https:// URLs),
    no_proxy and dns_servers (comma-separated str, or a list of str). Plus

      base_url   joined with relative paths (default $OPENAI_BASE_URL or
                 https://api.openai.com, as the batch runner does)
      api_key    sent as "Authorization: Bearer ..." (from_env: $OPENAI_API_KEY)
      headers    extra headers on every request
      from_env   apply brg_config_from_env (BARRAGE_*, MAX_CONCURRENT_LLM, ...) first
      response_headers  ask the engine for every answer's header fields
                 (BRG_REQ_HEADERS; default True): Response.headers and
                 HTTPError.headers hold them. False saves ~1 KiB per result
                 (headers then has content-type and x-request-id only); calls
                 and Requests take response_headers= to override it

    Use as `with Client(...) as c:` or `async with Client(...) as c:`.
    The engine starts its thread at the first request and binds to the running
    event loop (one loop at a time).
    """

    def __init__(self, *, base_url=None, api_key=None, headers=None, from_env=False,
                 should_retry=None, response_headers=True, **limits):
        limits = _options(limits)
        self._limits = limits
        self._response_headers = response_headers
        self._should_retry = should_retry
        self._groups = itertools.count(1)
        self._backoff = (limits.get("backoff_base_ms") or 100) / 1000.0
        self._backoff_max = (limits.get("backoff_max_ms") or 10000) / 1000.0
        self._from_env = from_env
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL")
                         or "https://api.openai.com").rstrip("/")
        self._explicit_base = base_url is not None
        if api_key is None and from_env:
            api_key = os.environ.get("OPENAI_API_KEY")
        hdrs = dict(headers or {})
        if api_key:
            hdrs.setdefault("Authorization", f"Bearer {api_key}")
        self._headers = hdrs
        self._hdr_cache = self._header_array(hdrs)
        self._window = 2 * int(limits.get("max_inflight", 256))
        self._e = self._make_engine()
        self._started = False
        self._loop = None
        self._fd = -1
        self._pending = {}  # engine id -> (sink, key)
        self._arr = (ctypes.POINTER(BrgResult) * _DRAIN)()
        self._req = BrgRequest()
        self._req.size = ctypes.sizeof(BrgRequest)
        self._idout = c_uint64()

    # ---- engine lifecycle ---------------------------------------------------
    def _make_engine(self):
        cfg = lib.brg_config_new()
        if not cfg:
            raise MemoryError("brg_config_new")
        try:
            if self._from_env and lib.brg_config_from_env(cfg) < 0:
                raise InvalidError(-1, lib.brg_config_error(cfg).decode())
            for name, value in self._limits.items():
                if value is None:
                    continue
                opt, kind = OPTIONS[name]
                if kind == "list" and not isinstance(value, str):
                    value = ",".join(value)  # the engine takes comma-separated lists
                if kind in ("str", "list"):
                    rc = lib.brg_config_set_str(cfg, opt, os.fsencode(value))
                else:
                    if kind == "backend" and isinstance(value, str):
                        value = BACKENDS[value]
                    elif kind == "http_version" and isinstance(value, str):
                        if value.lower() not in HTTP_VERSIONS:
                            raise InvalidError(-1, f"http_version={value!r}: want one of "
                                                   f"{sorted(HTTP_VERSIONS)} or 0, 1, 2")
                        value = HTTP_VERSIONS[value.lower()]
                    rc = lib.brg_config_set_int(cfg, opt, int(value))
                if rc < 0:
                    raise InvalidError(rc, f"{name}={value!r}: {lib.brg_config_error(cfg).decode()}")
            e = c_void_p()
            check(lib.brg_engine_new(cfg, byref(e)), "brg_engine_new")
            return e
        finally:
            lib.brg_config_free(cfg)

    def _bind(self):
        loop = asyncio.get_running_loop()
        if loop is self._loop:
            return loop
        if self._e is None:
            raise ClosedError(-4, "client is closed")
        if self._loop is not None and not self._loop.is_closed():
            raise RuntimeError("barrage.Client is bound to another running event loop")
        if not self._started:
            check(lib.brg_start(self._e), "brg_start")
            self._started = True
            self._fd = lib.brg_results_fd(self._e)
        loop.add_reader(self._fd, self._drain)
        self._loop = loop
        return loop

    def close(self):
        """Cancels whatever is pending and frees the engine."""
        if self._e is None:
            return
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.remove_reader(self._fd)
            except Exception:
                pass
        pending, self._pending = self._pending, {}
        for sink, key, _ in pending.values():
            try:
                sink(key, None, ClosedError(-4, "client closed"))
            except RuntimeError:  # futures of a closed loop
                pass
        lib.brg_engine_free(self._e)
        self._e = None
        self._loop = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    async def __aenter__(self):
        self._bind()
        return self

    async def __aexit__(self, *exc):
        self.close()

    def __del__(self):
        if getattr(self, "_e", None) is not None and (self._loop is None or self._loop.is_closed()):
            lib.brg_engine_free(self._e)
            self._e = None

    # ---- submit / results ---------------------------------------------------
    @staticmethod
    def _header_array(hdrs):
        if not hdrs:
            return None, 0
        arr = (BrgHeader * len(hdrs))()
        for i, (k, v) in enumerate(hdrs.items()):
            arr[i].name = k.encode()
            arr[i].value = str(v).encode()
        return arr, len(hdrs)

    def _submit(self, url, body, method="POST", headers=None, timeout=None, deadline_ms=0,
                max_retries=-1, limit_key=None, base_url=None, sink=None, key=None, *,
                on_event=None, flags=0, first_token_timeout=None, idle_timeout=None,
                no_cache=False, group=0, response_headers=None, no_stream_body=False):
        """Submits one request; sink(key, response, exception) runs on the
        loop thread when its final result arrives, on_event(StreamEvent) for
        each partial one (streams only). Returns the engine id."""
        if self._e is None:
            raise ClosedError(-4, "client is closed")
        if "://" not in url:  # a path: join the base URL
            base = (base_url or self.base_url).rstrip("/")
            url = base + (url if url.startswith("/") else "/" + url)
        b = _encode_body(body)
        req = self._req
        req.method = method.encode() if method else None
        req.url = url.encode()
        if headers:
            merged = dict(self._headers)
            merged.update(headers)
            harr, hn = self._header_array(merged)
        else:
            harr, hn = self._hdr_cache
        req.headers = harr
        req.n_headers = hn
        req.body = b
        req.body_len = len(b) if b is not None else 0
        req.timeout_ms = int(timeout * 1000) if timeout else 0
        req.deadline_ms = int(deadline_ms)
        req.max_retries = int(max_retries)
        req.limit_key = limit_key.encode() if limit_key else None
        # self._req is reused: every field is set on every submit.
        if response_headers is None:
            response_headers = self._response_headers
        req.flags = (flags | (_lib.REQ_NO_CACHE if no_cache else 0)
                     | (_lib.REQ_HEADERS if response_headers and _lib.HAS_HEADERS else 0)
                     # a library before 0.5 refuses the flag: it keeps the body there
                     | (_lib.REQ_NO_STREAM_BODY if no_stream_body and _lib.HAS_NO_STREAM_BODY
                        else 0))
        req.group = group
        req.first_token_timeout_ms = _ms(first_token_timeout)
        req.stream_idle_timeout_ms = _ms(idle_timeout)
        rc = lib.brg_submit(self._e, req, self._idout)
        if rc < 0:
            check(rc, f"brg_submit {method} {url}")
        rid = self._idout.value
        self._pending[rid] = (sink, key, on_event)
        return rid

    def _submit_req(self, r, sink, key, group=0):
        return self._submit(r.url, r.body, r.method, r.headers, r.timeout, r.deadline_ms,
                            r.max_retries, r.limit_key, r.base_url, sink, key,
                            no_cache=r.no_cache, group=group,
                            response_headers=r.response_headers)

    def _cancel(self, rid):
        if self._pending.pop(rid, None) is not None and self._e is not None:
            lib.brg_cancel(self._e, rid)

    def _drain(self):
        e, arr, pending = self._e, self._arr, self._pending
        if e is None:
            return
        while True:
            n = lib.brg_results(e, arr, _DRAIN)
            for i in range(n):
                p = arr[i]
                r = p.contents
                if r.flags & _lib.RES_PARTIAL:
                    # One event of a stream; more results with this id follow, so
                    # the entry stays. Only a stream's on_event takes it: a
                    # partial never resolves a call's future.
                    entry = pending.get(r.id)
                    on_event = entry[2] if entry is not None else None
                    ev = _make_event(r) if on_event is not None else None
                    lib.brg_result_free(p)
                    if ev is not None:
                        try:
                            on_event(ev)
                        except Exception as err:
                            self._loop.call_exception_handler(
                                {"message": "barrage event sink failed", "exception": err})
                    continue
                entry = pending.pop(r.id, None)
                if entry is not None:
                    if r.status == 0:
                        resp, exc = _make_response(r), None
                    else:
                        resp, exc = None, _make_error(r)
                    lib.brg_result_free(p)
                    try:
                        entry[0](entry[1], resp, exc)
                    except Exception as err:  # a sink must never break the drain
                        self._loop.call_exception_handler(
                            {"message": "barrage result sink failed", "exception": err})
                else:
                    lib.brg_result_free(p)  # cancelled by us: nobody waits for it
            if n < _DRAIN:
                return

    # ---- public API -----------------------------------------------------------
    async def call(self, url_or_path, body=None, *, method="POST", headers=None, timeout=None,
                   deadline=None, max_retries=-1, limit_key=None, base_url=None, no_cache=False,
                   deadline_ms=None, response_headers=None):
        """One request. Returns a Response for a 2xx answer, raises a
        BarrageError subclass otherwise. timeout: seconds per attempt;
        deadline: seconds for the whole request including retries; no_cache:
        neither read nor fill the response cache. Cancelling the awaiting
        task cancels the engine request (brg_cancel).

        With Client(should_retry=f), the engine does not retry; after each
        failure f(exc, attempt) (attempt = 1, 2, ...) decides: False ends
        with exc, True retries after exponential backoff (at least
        exc.retry_after when known), a number retries after that many
        seconds. The deadline still bounds the whole call."""
        dl = _deadline_ms(deadline, deadline_ms)
        kw = dict(method=method, headers=headers, timeout=timeout, max_retries=max_retries,
                  limit_key=limit_key, base_url=base_url, no_cache=no_cache,
                  response_headers=response_headers)
        return await self._call(url_or_path, body, dl, kw)

    async def _call(self, url_or_path, body, dl, kw):
        if self._should_retry is None:
            return await self._call_once(url_or_path, body, dl, kw)
        kw["max_retries"] = 0
        end = time.monotonic() + dl / 1000.0 if dl > 0 else None
        attempt = 0
        while True:
            left = 0 if end is None else max(1, math.ceil((end - time.monotonic()) * 1000))
            try:
                return await self._call_once(url_or_path, body, left, kw)
            except BarrageError as exc:
                attempt += 1
                verdict = self._should_retry(exc, attempt)
                if verdict is False or verdict is None:
                    raise
                if verdict is True:
                    delay = min(self._backoff_max, self._backoff * 2 ** (attempt - 1))
                    delay = max(delay, getattr(exc, "retry_after", None) or 0)
                else:
                    delay = float(verdict)
                if end is not None and time.monotonic() + delay >= end:
                    raise
                await asyncio.sleep(delay)

    async def _call_once(self, url_or_path, body, deadline_ms, kw):
        loop = self._bind()
        fut = loop.create_future()
        rid = self._submit(url_or_path, body, deadline_ms=deadline_ms, sink=_future_sink, key=fut,
                           **kw)
        try:
            return await fut
        except asyncio.CancelledError:
            self._cancel(rid)  # no-op unless the result is still outstanding
            raise

    def stream(self, url_or_path, body=None, *, method="POST", headers=None, timeout=None,
               deadline=None, max_retries=-1, limit_key=None, base_url=None,
               first_token_timeout=None, idle_timeout=None, no_cache=False, deadline_ms=None,
               response_headers=None, no_stream_body=False):
        """A streamed request (server-sent events): returns a Stream, an async
        iterator of StreamEvent and async context manager; see Stream.

        A dict body gets "stream": true when it has no "stream" key; a bytes
        or str body must ask for the stream itself. For usage figures in the
        final response, OpenAI also wants "stream_options":
        {"include_usage": true} in the body (not added, other APIs refuse it).

        first_token_timeout: seconds from sending the request to the first
        token (first non-empty delta); idle_timeout: longest silence, in
        seconds, before the first event and between two events. Either one
        ends the attempt with TimeoutError; None or 0 = the client's
        first_token_timeout_ms / stream_idle_timeout_ms option (default: no
        limit). timeout (seconds per attempt, whole stream included),
        deadline_ms, max_retries, limit_key, headers and base_url are as for
        call(). Once an event was delivered the engine never retries: the
        error is raised after the events instead.

        no_stream_body=True (BRG_REQ_NO_STREAM_BODY, libbarrage 0.5): once
        the answer is a 2xx event stream its raw bytes are not kept, so
        response.body is b"" while the events, usage and timings are the
        same; a long stream then costs no memory for the events already
        delivered. Error answers and answers that are not an event stream
        keep their body. A libbarrage older than 0.5 is not asked (it
        refuses the flag) and keeps the body."""
        kw = dict(method=method, headers=headers, timeout=timeout,
                  deadline_ms=_deadline_ms(deadline, deadline_ms),
                  max_retries=max_retries, limit_key=limit_key, base_url=base_url,
                  first_token_timeout=first_token_timeout, idle_timeout=idle_timeout,
                  no_cache=no_cache, response_headers=response_headers,
                  no_stream_body=no_stream_body)
        return Stream(self, url_or_path, _stream_body(body), kw)

    async def gather(self, *items, return_exceptions=False, timeout=None, deadline=None):
        """Runs requests and/or awaitables (coroutines, tasks, futures) together;
        results in input order. gather([r1, r2]) and gather(r1, coro2) both work.

        Fail-fast unless return_exceptions: the first error cancels the rest
        and is raised. timeout (seconds, on this side): when it passes, what
        finished is kept and the rest is cancelled; the result list has a
        barrage.TimeoutError in each unfinished place with return_exceptions,
        else GatherTimeout is raised with .results (None where unfinished).
        deadline (seconds): a group deadline the engine enforces for every
        request of this call (brg_group_deadline; an unfinished one ends with
        TimeoutError), and a timeout for the awaitables. Cancelling the
        awaiting task cancels them all."""
        if len(items) == 1 and isinstance(items[0], (list, collections.abc.Iterator, range,
                                                     collections.abc.Generator)):
            items = list(items[0])
        items = list(items)
        if not items:
            return []
        loop = self._bind()
        group = 0
        if deadline is not None:
            group = next(self._groups)
            check(lib.brg_group_deadline(self._e, group, _ms(deadline) if deadline > 0 else 1),
                  "brg_group_deadline")
        plain = not any(inspect.isawaitable(x) for x in items)
        if plain and timeout is None and deadline is None and self._should_retry is None:
            return await self._gather_requests([as_request(r) for r in items], return_exceptions)
        limit = min(x for x in (timeout, deadline) if x is not None) if (
            timeout is not None or deadline is not None) else None
        tasks = []
        try:
            for x in items:
                if inspect.isawaitable(x):
                    tasks.append(asyncio.ensure_future(x))
                else:
                    r = as_request(x)
                    kw = dict(method=r.method, headers=r.headers, timeout=r.timeout,
                              max_retries=r.max_retries, limit_key=r.limit_key,
                              base_url=r.base_url, no_cache=r.no_cache, group=group,
                              response_headers=r.response_headers)
                    tasks.append(loop.create_task(self._call(r.url, r.body, r.deadline_ms, kw)))
            when = asyncio.ALL_COMPLETED if return_exceptions else asyncio.FIRST_EXCEPTION
            done, pending = await asyncio.wait(tasks, timeout=limit, return_when=when)
            if not return_exceptions:
                for t in tasks:  # the first failure in input order among those done
                    if t in done and not t.cancelled() and t.exception() is not None:
                        raise t.exception()
            results = []
            for t in tasks:
                if t not in done:
                    results.append(TimeoutError(-5, "gather timeout: cancelled unfinished")
                                   if return_exceptions else None)
                elif t.cancelled():
                    results.append(asyncio.CancelledError())
                elif t.exception() is not None:
                    results.append(t.exception())
                else:
                    results.append(t.result())
            if pending and not return_exceptions:
                raise GatherTimeout(results)
            return results
        finally:
            for t in tasks:
                if not t.done():
                    t.cancel()
            if group and self._e is not None:
                lib.brg_cancel_group(self._e, group)  # nothing of this call outlives it

    async def _gather_requests(self, reqs, return_exceptions):
        loop = self._loop
        agg = _Gather(loop.create_future(), len(reqs), return_exceptions)
        ids = []
        try:
            for i, r in enumerate(reqs):
                try:
                    ids.append(self._submit_req(r, agg.deliver, i))
                except Exception as exc:
                    if not return_exceptions:
                        raise
                    agg.deliver(i, None, exc)
            return await agg.fut
        finally:
            for rid in ids:
                self._cancel(rid)

    async def _stream(self, requests, ordered, window):
        loop = self._bind()
        window = window or self._window
        it = iter(enumerate(requests))
        live = {}  # index -> engine id
        done = {} if ordered else collections.deque()
        state = {"waiter": None}

        def sink(key, resp, exc):
            i, req = key
            live.pop(i, None)
            if ordered:
                done[i] = (req, resp, exc)
            else:
                done.append((i, req, resp, exc))
            w = state["waiter"]
            if w is not None and not w.done():
                w.set_result(None)

        next_i = 0
        exhausted = False
        try:
            while True:
                while not exhausted and len(live) + len(done) < window:
                    try:
                        i, raw = next(it)
                    except StopIteration:
                        exhausted = True
                        break
                    req = None
                    try:
                        req = as_request(raw)
                        live[i] = self._submit_req(req, sink, (i, req))
                    except Exception as exc:
                        sink((i, req if req is not None else raw), None, exc)
                if ordered:
                    while next_i in done:
                        req, resp, exc = done.pop(next_i)
                        yield next_i, req, resp, exc
                        next_i += 1
                else:
                    while done:
                        yield done.popleft()
                if exhausted and not live and not done:
                    return
                if not live:
                    continue  # room to submit more (window was full of finished ones)
                state["waiter"] = loop.create_future()
                await state["waiter"]
                state["waiter"] = None
        finally:
            for rid in list(live.values()):
                self._cancel(rid)

    async def map(self, requests, ordered=True, return_exceptions=False, window=None):
        """Async iterator of responses, in input order (ordered=True) or as
        they finish. At most `window` (default 2 x max_inflight) requests are
        submitted ahead, so `requests` may be a long lazy iterable. An error is
        raised (and the rest cancelled) unless return_exceptions."""
        async for _, _, resp, exc in self._stream(requests, ordered, window):
            if exc is not None:
                if not return_exceptions:
                    raise exc
                yield exc
            else:
                yield resp

    async def as_completed(self, requests, window=None):
        """Async iterator of Completed(index, request, response, error) in
        completion order; errors are delivered, not raised."""
        async for i, req, resp, exc in self._stream(requests, False, window):
            yield Completed(i, req, resp, exc)

    def stats(self):
        """struct brg_stats as a dict (plus "backend" as a name)."""
        if self._e is None:
            raise ClosedError(-4, "client is closed")
        st = BrgStats()
        st.size = ctypes.sizeof(BrgStats)
        check(lib.brg_stats(self._e, byref(st)), "brg_stats")
        d = {n: getattr(st, n) for n in _lib._STATS_U64}
        d["backend"] = {v: k for k, v in BACKENDS.items()}.get(st.backend, str(st.backend))
        return d

    # ---- batch ----------------------------------------------------------------
    async def run_batch(self, in_path, out_path, resume=True, *, ordered=False, dry_run=False,
                        endpoint=None, api_key_env=None, headers=None, reorder_window=0,
                        prices_path=None, deadline_ms=0, max_retries=-1, shard_index=0,
                        shard_count=0, progress=None):
        """brg_batch_run over an OpenAI Batch API JSONL file, in a worker
        thread on a separate inline-mode engine with this client's options.
        progress(dict) is called on the event loop about every 100 ms with the
        counters of brg_batch_progress plus eta_s (seconds left at the rate so
        far; None before the first answer); it may return 1 (stop starting
        new requests) or 2 (abort: run_batch then raises barrage.CancelledError,
        an error, not an asyncio.CancelledError). Returns the final progress
        as a dict. Cancelling the awaiting task aborts too."""
        stop = threading.Event()
        if progress is not None:
            progress = _LoopProgress(asyncio.get_running_loop(), progress)
        if endpoint is None and self._explicit_base:
            endpoint = self.base_url
        args = (os.fsencode(in_path), os.fsencode(out_path),
                (_lib.BATCH_RESUME if resume else 0) | (_lib.BATCH_ORDERED if ordered else 0)
                | (_lib.BATCH_DRY_RUN if dry_run else 0),
                endpoint, api_key_env, dict(self._headers, **(headers or {})), reorder_window,
                prices_path, deadline_ms, max_retries, shard_index, shard_count, progress, stop)
        try:
            return await asyncio.to_thread(self._run_batch_sync, *args)
        except asyncio.CancelledError:
            stop.set()
            raise

    def _run_batch_sync(self, inp, outp, flags, endpoint, api_key_env, headers, reorder_window,
                        prices_path, deadline_ms, max_retries, shard_index, shard_count,
                        progress, stop):
        e = self._make_engine()
        try:
            o = BrgBatchOptions()
            o.size = ctypes.sizeof(BrgBatchOptions)
            o.flags = flags
            o.input_path, o.output_path = inp, outp
            o.endpoint = endpoint.encode() if endpoint else None
            o.api_key_env = api_key_env.encode() if api_key_env else None
            harr, hn = self._header_array(headers)
            o.headers, o.n_headers = harr, hn
            o.reorder_window = reorder_window
            o.prices_path = os.fsencode(prices_path) if prices_path else None
            o.deadline_ms, o.max_retries = deadline_ms, max_retries
            o.shard_index, o.shard_count = shard_index, shard_count
            failure = []

            def cb(p, _user):
                if stop.is_set():
                    return 2
                if progress is None:
                    return 0
                try:
                    return int(progress(_with_eta(p.contents.to_dict())) or 0)
                except BaseException as exc:  # noqa: BLE001 - re-raised below
                    failure.append(exc)
                    return 2

            fn = _lib.BATCH_PROGRESS_FN(cb)
            final = BrgBatchProgress()
            final.size = ctypes.sizeof(BrgBatchProgress)
            rc = lib.brg_batch_run(e, byref(o), fn, None, byref(final))
            if progress is not None:
                progress.flush()
            if failure:
                raise failure[0]
            check(rc, "brg_batch_run")
            return _with_eta(final.to_dict())
        finally:
            lib.brg_engine_free(e)
