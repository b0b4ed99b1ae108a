"""tools.py: how bench/peers/compare runs each client and reads how many
requests it completed from the client's own output. One class per tool;
the measuring (CPU, RSS, wall time) is the same for all and lives in
runner.py.

Every tool POSTs the same body (load_c's) with Content-Type
application/json over HTTP/1.1 keep-alive TLS to the same nginx."""

import os
import re
import shutil
import subprocess

# examples/load_c.c's request body; curl_multi.c, aiohttp_driver.py and
# wrk_post.lua carry the same bytes.
REQUEST_BODY = (b'{"model":"gpt-4o-mini","messages":[{"role":"user",'
                b'"content":"Say hello in one word."}],"max_tokens":16}')
HERE = os.path.dirname(os.path.abspath(__file__))
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's, which has python3-aiohttp


def _fields(text):
    """key=value pairs of the last summary line shaped like load_c's."""
    lines = [l for l in text.splitlines() if l.startswith("requests=")]
    return dict(kv.split("=", 1) for kv in lines[-1].split()) if lines else {}


def _counted(text):
    f = _fields(text)
    if "ok" not in f:
        return None
    return {"done": int(f["requests"]), "ok": int(f["ok"]), "errors": int(f["errors"]),
            "self_report": f}


class Barrage:
    """examples/load_c: the engine through its C API, checking every answer byte for byte."""
    name = "barrage"

    def __init__(self, ctx):
        self.ctx = ctx

    def missing(self):
        return None if os.access(self.ctx.load_c, os.X_OK) else f"{self.ctx.load_c} not built"

    def command(self, sc, n, inflight):
        env = {"EXPECT_BODY": self.ctx.expect_body, "EXPECT_PROMPT": "17", "EXPECT_COMPLETION": "42"}
        # load_c submits all N up front; bound the engine's queue to what is in
        # flight plus as much again, like every other peer here (else barrage's
        # RSS measures N queued requests rather than the engine).
        env["BARRAGE_MAX_PENDING"] = os.environ.get("BARRAGE_MAX_PENDING", str(2 * inflight))
        if sc.handshakes:
            env["BARRAGE_TLS_RESUME"] = "0"
        return [self.ctx.load_c, self.ctx.url(sc.path), str(n), str(inflight), "auto",
                self.ctx.ca], env

    parse = staticmethod(_counted)


class Curl:
    """bench/peers/curl_multi: libcurl's multi interface on epoll."""
    name = "curl"

    def __init__(self, ctx):
        self.ctx = ctx

    def missing(self):
        return None if self.ctx.curl_multi else "curl_multi not available (no libcurl?)"

    def command(self, sc, n, inflight):
        argv = [self.ctx.curl_multi, self.ctx.url(sc.path), str(n), str(inflight), self.ctx.ca,
                str(self.ctx.expect_bytes)]
        return argv + (["fresh"] if sc.handshakes else []), {}

    parse = staticmethod(_counted)


class H2load:
    """nghttp2's h2load speaking HTTP/1.1 (--h1), one request at a time per connection."""
    name = "h2load"

    def __init__(self, ctx):
        self.ctx = ctx

    def missing(self):
        return None if shutil.which("h2load") else "h2load not installed (nghttp2-client)"

    def command(self, sc, n, inflight):
        # -c n -n n in the handshake scenario: one request per client, and
        # h2load never resumes TLS sessions.
        return ["h2load", "--h1", "-t", "1", "-c", str(inflight), "-m", "1", "-n", str(n),
                "-d", self.ctx.body_file, "-H", "Content-Type: application/json",
                self.ctx.url(sc.path)], {}

    @staticmethod
    def parse(text):
        m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                      r"(\d+) failed, (\d+) errored, (\d+) timeout", text)
        s = re.search(r"status codes: (\d+) 2xx", text)
        if not m or not s:
            return None
        done, ok = int(m.group(3)), min(int(m.group(4)), int(s.group(1)))
        return {"done": done, "ok": ok, "errors": int(m.group(1)) - ok,
                "self_report": {"line": m.group(0)}}


class Wrk:
    """wrk with one thread and a fixed duration; wrk_post.lua makes it POST.
    wrk cannot stop after N requests (a Lua response() hook that stops its
    thread costs ~1 µs per request and wrk still sleeps out -d), so compare
    sets `seconds[scenario]` to about N requests' worth, keeping the
    requests per connection, and so the share of handshake cost in each
    request, near the counted tools'."""
    name = "wrk"

    def __init__(self, ctx):
        self.ctx = ctx
        self.seconds = {}

    def missing(self):
        return None if shutil.which("wrk") else "wrk not installed"

    def command(self, sc, n, inflight):
        secs = self.seconds.get(sc.id, sc.wrk_seconds)
        return ["wrk", "-t", "1", "-c", str(inflight), "-d", f"{secs}s",
                "--timeout", "10s", "-s", os.path.join(HERE, "wrk_post.lua"),
                self.ctx.url(sc.path)], {}

    @staticmethod
    def parse(text):
        m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", text)
        if not m:
            return None
        done = int(m.group(1))
        bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
        sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
        non2xx = int(bad.group(1)) if bad else 0
        sock_errors = sum(int(g) for g in sock.groups()) if sock else 0
        return {"done": done, "ok": done - non2xx, "errors": non2xx + sock_errors,
                "self_report": {"line": m.group(0), "non2xx": non2xx, "socket_errors": sock_errors}}


class Aiohttp:
    """bench/peers/aiohttp_driver.py on Debian's python3-aiohttp."""
    name = "aiohttp"

    def __init__(self, ctx):
        self.ctx = ctx
        self._missing = "unchecked"

    def missing(self):
        if self._missing == "unchecked":
            ok = os.access(SYSTEM_PYTHON, os.X_OK) and subprocess.run(
                [SYSTEM_PYTHON, "-c", "import aiohttp"], capture_output=True).returncode == 0
            self._missing = None if ok else f"{SYSTEM_PYTHON} has no aiohttp (python3-aiohttp)"
        return self._missing

    def command(self, sc, n, inflight):
        argv = [SYSTEM_PYTHON, os.path.join(HERE, "aiohttp_driver.py"), self.ctx.url(sc.path),
                str(n), str(inflight), self.ctx.ca, str(self.ctx.expect_bytes)]
        return argv + (["fresh"] if sc.handshakes else []), {}

    parse = staticmethod(_counted)


ALL = (Barrage, Curl, H2load, Wrk, Aiohttp)
