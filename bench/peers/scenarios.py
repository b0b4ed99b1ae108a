"""scenarios.py: what bench/peers/compare measures, in one table, so the
sizes that bound a full run (about five minutes) are all in one place.

Counted tools (barrage, libcurl, h2load, aiohttp) run `n` requests. wrk has
no count mode: compare times a 1 s wrk run once per scenario and then gives
wrk as many whole seconds as `n` requests take at that rate (`wrk_seconds`
only in --quick runs). aiohttp gets fewer requests
(`n_aiohttp`) because at ~0.5 ms of CPU each the C tools' counts would take
minutes; its per-request figure therefore carries a larger share of its
connection handshakes (see README.md)."""

from dataclasses import dataclass

CHAT = "/v1/chat/completions"  # nginx_peer's location `/`: the ~600-byte answer at once


@dataclass(frozen=True)
class Scenario:
    id: str
    path: str
    inflight: int
    n: int
    n_aiohttp: int
    wrk_seconds: int
    # Full-handshake mode: every request opens its own connection, no TLS
    # resumption, all `n` at once (load_c ties its connection cap to INFLIGHT).
    handshakes: bool = False
    tools: tuple = ("barrage", "curl", "h2load", "wrk", "aiohttp")

    @property
    def title(self):
        if self.handshakes:
            return (f"full TLS handshakes: one request per new connection, no resumption, "
                    f"{self.n:,} at once")
        latency = self.path.rsplit("/", 1)[1] + " ms server latency" \
            if self.path.startswith("/sleep/") else "latency 0"
        return f"{self.inflight:,} in flight, {latency}"


FULL = (
    Scenario("a", CHAT, 1000, 100_000, 20_000, 4),
    Scenario("b", CHAT, 100, 100_000, 20_000, 3),
    Scenario("c", "/sleep/50", 1000, 60_000, 10_000, 3),
    Scenario("d", CHAT, 2000, 2000, 2000, 0, handshakes=True,
             tools=("barrage", "curl", "h2load", "aiohttp")),
)


def quick(s):
    """The same scenario at a size that only proves every tool works."""
    n = 100 if s.handshakes else s.inflight
    return Scenario(s.id, s.path, n if s.handshakes else s.inflight, n, n,
                    1 if s.wrk_seconds else 0, s.handshakes, s.tools)
