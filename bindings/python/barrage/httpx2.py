"""The same transports for httpx2, the httpx fork the anthropic SDK (2.x)
takes: anthropic.AsyncAnthropic(http_client=httpx2.AsyncClient(
transport=barrage.httpx2.AsyncTransport(...)))."""
import httpx2 as _httpx2

from ._transport import build

AsyncTransport, Transport = build(_httpx2)
__all__ = ["AsyncTransport", "Transport"]
