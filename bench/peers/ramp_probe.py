"""ramp_probe.py: what the Python peers (aiohttp_driver.py, httpx_driver.py)
report beyond their summary line, for bench/far: TLS handshakes finished,
full and resumed (an ssl.SSLObject subclass the context hands to asyncio,
which counts each object's handshake once), and when each request was sent,
so that inflight_ms (when the INFLIGHT-th request went out) comes from the
client's own instrumentation as load_c's does from sent_us. Standard library
only: it runs on Debian's python3 and in the project's venv alike."""

import os
import ssl
import time

RAMP = os.environ.get("LOAD_RAMP") == "1"


class Handshakes:
    full = 0
    resumed = 0


class _CountingSSLObject(ssl.SSLObject):
    def do_handshake(self):
        super().do_handshake()  # raises SSLWantReadError until it is done
        if not getattr(self, "_brg_counted", False):
            self._brg_counted = True
            if self.session_reused:
                Handshakes.resumed += 1
            else:
                Handshakes.full += 1


def client_context(cafile):
    """A verifying client context whose handshakes are counted."""
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.sslobject_class = _CountingSSLObject
    return ctx


class SentTimes:
    """Send times from t0 (time.monotonic), kept only with LOAD_RAMP=1."""

    def __init__(self):
        self.t0 = time.monotonic()
        self.times = []

    def mark(self):
        self.times.append(time.monotonic() - self.t0)

    def fields(self, inflight):
        """The summary line's extra key=value pairs."""
        out = f" tls_full={Handshakes.full} tls_resumed={Handshakes.resumed}"
        if RAMP and self.times:
            k = min(inflight, len(self.times))
            out += f" inflight_ms={sorted(self.times)[k - 1] * 1000:.1f}"
        return out
