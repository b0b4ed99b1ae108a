"""Starts barrage-mockserver as a subprocess (tests, examples, benchmarks)."""
import os
import re
import subprocess
import tempfile


def find_mockserver():
    env = os.environ.get("BARRAGE_MOCKSERVER")
    if env:
        return env
    d = os.path.dirname(os.path.abspath(__file__))
    while True:
        p = os.path.join(d, "build", "mockserver", "barrage-mockserver")
        if os.path.exists(p):
            return p
        parent = os.path.dirname(d)
        if parent == d:
            raise FileNotFoundError("barrage-mockserver not found (set BARRAGE_MOCKSERVER)")
        d = parent


class MockServer:
    """with MockServer(latency_ms=0) as m: m.url, m.ca_file

    keep_stats=True: after the with block, m.final_stats holds the counters
    the server prints when it stops, e.g. {"requests": 5, "200": 4,
    "streams": 2, "token events": 10, "cancelled": 1, ...} (the process
    reports them only on exit; stderr goes to a file then)."""

    def __init__(self, *args, latency_ms=0, threads=1, stderr=subprocess.DEVNULL,
                 keep_stats=False):
        self.stderr = stderr
        self.keep_stats = keep_stats
        self.final_stats = None
        self.args = list(args) + ["--latency-ms", str(latency_ms), "--threads", str(threads)]

    def __enter__(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="barrage-mock-")
        self.ca_file = os.path.join(self._tmp.name, "ca.pem")
        stderr = self.stderr
        if self.keep_stats:
            self._stderr_path = os.path.join(self._tmp.name, "stderr.txt")
            stderr = open(self._stderr_path, "w")
        try:
            self.proc = subprocess.Popen([find_mockserver(), "--port", "0", "--write-ca", self.ca_file]
                                         + self.args, stdout=subprocess.PIPE, stderr=stderr, text=True)
        finally:
            if self.keep_stats:
                stderr.close()  # the child has its own copy
        for line in self.proc.stdout:
            m = re.search(r"listening on (https?://\S+)", line)
            if m:
                self.url = m.group(1).rstrip("/")
                break
        else:
            self.proc.wait()
            raise RuntimeError("barrage-mockserver did not start")
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        if self.keep_stats:
            with open(self._stderr_path) as f:
                self.final_stats = parse_stats(f.read())
        self._tmp.cleanup()


def parse_stats(text):
    """The counters of barrage-mockserver's exit line ("...: Terminated;
    connections 3, requests 5, 200: 4, ... streams 2 (token events 10,
    cancelled 1)") as {name: int}."""
    line = [x for x in text.splitlines() if x.startswith("barrage-mockserver:")][-1]
    tail = line.split(";", 1)[1]
    return {k.strip(): int(v) for k, v in re.findall(r"([a-z][a-z ]*|\d{3}):? (\d+)", tail)}
