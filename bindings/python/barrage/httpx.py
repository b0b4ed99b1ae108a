"""httpx transports over barrage: AsyncTransport (httpx.AsyncBaseTransport)
and Transport (httpx.BaseTransport), so httpx code and the openai/anthropic
SDKs send through the engine's pool, HTTP/2, rate limits and retries.

    client = openai.AsyncOpenAI(http_client=httpx.AsyncClient(
        transport=barrage.httpx.AsyncTransport(max_inflight=1000)))
"""
import httpx as _httpx

from ._transport import build

AsyncTransport, Transport = build(_httpx)
__all__ = ["AsyncTransport", "Transport"]
