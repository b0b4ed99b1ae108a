"""Exceptions mapped from brg_status.

Every exception carries ``code`` (the negative brg_status), ``name``
("BRG_E_TIMEOUT"...), ``message`` (the engine's error text), ``attempts`` and
``request_id``. ``status`` is the brg_status code, except on HTTPError (and
RateLimited) where it is the HTTP status code and the answer is in ``body``.
``retry_after`` is the latest answer's Retry-After in seconds (None when it
sent none), ``headers`` its header fields (see Response.headers).
"""
import builtins
import re

from ._lib import lib
from .headers import Headers, headers_of


class BarrageError(Exception):
    code = None  # brg_status of the class (None: any)

    def __init__(self, code, message="", *, http_status=0, body=b"", attempts=0, request_id="",
                 retry_after=None, header_block=b""):
        self.code = code
        self.status = code
        self.name = lib.brg_status_name(code).decode()
        self.message = message or lib.brg_strerror(code).decode()
        self.http_status = http_status
        self.body = body
        self.attempts = attempts
        self.request_id = request_id
        self.retry_after = retry_after
        self._header_block = header_block
        super().__init__(f"{self.name}: {self.message}")

    @property
    def headers(self):
        """The latest answer's header fields (a case-insensitive Headers): all
        of them when the request asked (response_headers, the default), else
        content-type and x-request-id. Empty when no answer arrived."""
        if self._header_block or self.http_status:
            return headers_of(self._header_block, self.body, self.request_id)
        return Headers()


class InvalidError(BarrageError, ValueError): pass
class NoMemoryError(BarrageError, MemoryError): pass
class FullError(BarrageError): pass
class ClosedError(BarrageError): pass
class TimeoutError(BarrageError, builtins.TimeoutError): pass  # noqa: A001
class ConnectError(BarrageError, ConnectionError): pass
class DNSError(ConnectError): pass
class TLSError(ConnectError): pass
class TransportError(BarrageError, ConnectionError): pass  # BRG_E_IO
class ProtocolError(BarrageError): pass
class TooLargeError(BarrageError): pass
class BackendError(BarrageError): pass
class NotFoundError(BarrageError, LookupError): pass
class UnavailableError(BarrageError): pass


class CancelledError(BarrageError):
    """The engine ended the request (brg_cancel_group, a batch abort).
    Deliberately not an asyncio.CancelledError: an engine-side abort is an
    error of the call, not a cancellation of the task awaiting it (a task
    that is itself cancelled gets asyncio.CancelledError as usual)."""


class GatherTimeout(TimeoutError):
    """Client.gather(timeout=...) passed: .results holds what finished (in
    input order; None where a request or awaitable was cancelled unfinished)."""

    def __init__(self, results):
        super().__init__(-5, f"gather timeout: {sum(r is not None for r in results)} of "
                             f"{len(results)} finished, the rest cancelled")
        self.results = results


class HTTPError(BarrageError):
    """Non-success HTTP answer after retries; .status and .status_code are the
    HTTP status, .body the answer, .headers its header fields. retry_after:
    seconds the answer's Retry-After (or retry-after-ms) header asked for,
    as sent (libbarrage >= 0.4); failing that, a wait the engine's message or
    an OpenAI-style body states ("try again in 120ms"); else None."""

    def __init__(self, code, message="", **kw):
        super().__init__(code, message, **kw)
        self.status = self.http_status
        if self.retry_after is None:
            self.retry_after = _retry_after(self.message, self.body)

    @property
    def status_code(self):
        return self.http_status

    def __str__(self):
        return f"HTTP {self.status}: {self.body[:200]!r}"


_RETRY_AFTER = re.compile(r"retry[-_ ]after[^0-9]{0,8}([0-9]+(?:\.[0-9]+)?)\s*(ms)?", re.I)


class RateLimited(HTTPError):
    """HTTP 429 after retries; retry_after as on HTTPError."""


def _retry_after(message, body):
    m = _RETRY_AFTER.search(message or "")
    if m:
        return float(m.group(1)) / (1000.0 if m.group(2) else 1.0)
    m = re.search(rb"try again in ([0-9]+(?:\.[0-9]+)?)(ms|s)", body or b"")
    if m:
        return float(m.group(1)) / (1000.0 if m.group(2) == b"ms" else 1.0)
    return None


# brg_status by name (the enum names minus BRG_), checked against the header
# by tests/test_abi_layout.py, and the exception class of each.
STATUS_CODES = {"OK": 0, "E_INVALID": -1, "E_NOMEM": -2, "E_FULL": -3, "E_CLOSED": -4,
                "E_TIMEOUT": -5, "E_CANCELLED": -6, "E_DNS": -7, "E_CONNECT": -8, "E_TLS": -9,
                "E_IO": -10, "E_PROTOCOL": -11, "E_HTTP": -12, "E_TOO_LARGE": -13,
                "E_BACKEND": -14, "E_NOTFOUND": -15, "E_UNAVAILABLE": -16}
_BY_NAME = {"E_INVALID": InvalidError, "E_NOMEM": NoMemoryError, "E_FULL": FullError,
            "E_CLOSED": ClosedError, "E_TIMEOUT": TimeoutError, "E_CANCELLED": CancelledError,
            "E_DNS": DNSError, "E_CONNECT": ConnectError, "E_TLS": TLSError,
            "E_IO": TransportError, "E_PROTOCOL": ProtocolError, "E_HTTP": HTTPError,
            "E_TOO_LARGE": TooLargeError, "E_BACKEND": BackendError,
            "E_NOTFOUND": NotFoundError, "E_UNAVAILABLE": UnavailableError}
_BY_CODE = {STATUS_CODES[n]: cls for n, cls in _BY_NAME.items()}


def error_for(code, message="", *, http_status=0, body=b"", attempts=0, request_id="",
              retry_after=None, header_block=b""):
    cls = _BY_CODE.get(code, BarrageError)
    if cls is HTTPError and http_status == 429:
        cls = RateLimited
    return cls(code, message, http_status=http_status, body=body, attempts=attempts,
               request_id=request_id, retry_after=retry_after, header_block=header_block)


def check(rc, what=""):
    """Raise for a negative status returned directly by a C call."""
    if rc < 0:
        detail = (lib.brg_last_error() or b"").decode(errors="replace")
        raise error_for(rc, f"{what}: {detail}" if detail else what)
    return rc
