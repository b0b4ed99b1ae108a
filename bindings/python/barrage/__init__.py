"""barrage: very many concurrent HTTPS (LLM API) requests from asyncio,
over libbarrage's C ABI (ctypes, standard library only).

    async with barrage.Client(max_inflight=100, rate_limit=500) as c:
        answers = await c.gather([("/v1/chat/completions", body) for body in bodies])
        async for ev in c.stream("/v1/chat/completions", body):  # server-sent events
            print(ev.content, end="")
"""
from ._lib import library_path, lib
from .client import OPTIONS, Client, Completed, Request, Response, Stream, StreamEvent
from .errors import (BackendError, BarrageError, CancelledError, ClosedError, ConnectError, GatherTimeout,
                     DNSError, FullError, HTTPError, InvalidError, NoMemoryError, NotFoundError,
                     ProtocolError, RateLimited, TimeoutError, TLSError, TooLargeError,
                     TransportError, UnavailableError, error_for)
from .headers import Headers

__version__ = lib.brg_version().decode()

__all__ = ["Client", "Request", "Response", "Headers", "Completed", "Stream", "StreamEvent",
           "OPTIONS",
           "library_path",
           "BarrageError", "InvalidError", "NoMemoryError", "FullError", "ClosedError",
           "TimeoutError", "GatherTimeout", "CancelledError", "DNSError", "ConnectError", "TLSError",
           "TransportError", "ProtocolError", "HTTPError", "RateLimited", "TooLargeError",
           "BackendError", "NotFoundError", "UnavailableError", "error_for"]
