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
    """with MockServer(latency_ms=0) as m: m.url, m.ca_file"""

    def __init__(self, *args, latency_ms=0, threads=1, stderr=subprocess.DEVNULL):
        self.stderr = stderr
        self.args = list(args) + ["--latency-ms", str(latency_ms), "--threads", str(threads)]

    def __enter__(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="barrage-mock-")
        self.ca_file = os.path.join(self._tmp.name, "ca.pem")
        self.proc = subprocess.Popen([find_mockserver(), "--port", "0", "--write-ca", self.ca_file]
                                     + self.args, stdout=subprocess.PIPE, stderr=self.stderr, text=True)
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
        self._tmp.cleanup()
