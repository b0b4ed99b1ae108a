"""runner.py: runs one client the way every client is measured, and reads
nginx's own counters around it.

A run is `taskset -c CPU rusage_run OUT tool...`: pinned to the client CPU,
forked from the small rusage_run (see rusage_run.c for why not from Python),
whose wait4 gives user+sys CPU, max RSS and wall time. stdout and stderr go
to files, so the orchestrator does nothing at all while a client runs."""

import http.client
import os
import re
import shutil
import signal
import ssl
import subprocess
import time
from dataclasses import dataclass

from nginx_peer import children  # noqa: E402 (tests/nginx is on sys.path, see compare)

HERE = os.path.dirname(os.path.abspath(__file__))


def helper(build_dir, name, cflags, tmp, log):
    """Path of a helper program: the one Meson built in BUILD/bench/peers when
    it is at least as new as its source, else one compiled here with cc (a
    build configured with -Dbench=false, or without Google Benchmark, has no
    bench/ at all). None when it cannot be had."""
    src = os.path.join(HERE, name + ".c")
    built = os.path.join(build_dir, "bench", "peers", name)
    if os.access(built, os.X_OK) and os.path.getmtime(built) >= os.path.getmtime(src):
        return built
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        log(f"compare: no C compiler to build {name}")
        return None
    try:
        extra = subprocess.run(["pkg-config", "--cflags", "--libs"] + cflags, capture_output=True,
                               text=True, check=True).stdout.split() if cflags else []
    except (OSError, subprocess.CalledProcessError):
        log(f"compare: pkg-config finds no {' '.join(cflags)}: {name} is not available")
        return None
    out = os.path.join(tmp, name)
    p = subprocess.run([cc, "-O2", "-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra", src, "-o", out]
                       + extra, capture_output=True, text=True)
    if p.returncode != 0:
        log(f"compare: compiling {name} failed:\n{p.stderr}")
        return None
    return out


@dataclass
class Run:
    status: int
    user_us: int
    sys_us: int
    maxrss_kb: int
    wall_s: float
    stdout: str
    stderr: str
    timed_out: bool


def measure(argv, env, rusage_run, cpu, tmp, timeout):
    out = os.path.join(tmp, "rusage.txt")
    if os.path.exists(out):
        os.unlink(out)
    pin = ["taskset", "-c", str(cpu)] if cpu is not None else []
    full_env = dict(os.environ, **env)
    timed_out = False
    with open(os.path.join(tmp, "stdout"), "w+") as fo, open(os.path.join(tmp, "stderr"), "w+") as fe:
        p = subprocess.Popen(pin + [rusage_run, out] + argv, stdout=fo, stderr=fe,
                             stdin=subprocess.DEVNULL, env=full_env, start_new_session=True)
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(p.pid, signal.SIGKILL)  # the group we started: rusage_run and its tool
            p.wait()
        fo.seek(0)
        fe.seek(0)
        stdout, stderr = fo.read(), fe.read()
    fields = {}
    if os.path.exists(out):
        with open(out) as f:
            fields = dict(kv.split("=", 1) for kv in f.read().split())
    return Run(status=int(fields.get("status", -1)), user_us=int(fields.get("user_us", 0)),
               sys_us=int(fields.get("sys_us", 0)), maxrss_kb=int(fields.get("maxrss_kb", 0)),
               wall_s=float(fields.get("wall_s", 0.0)), stdout=stdout, stderr=stderr,
               timed_out=timed_out)


def cpu_times():
    """{cpu index: (busy, steal)} in seconds from /proc/stat. Around a run they
    show whether anything but the client used its CPU, and how much time the
    hypervisor took away (steal), which is what makes one run an outlier."""
    hz = os.sysconf("SC_CLK_TCK")
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                name, *v = line.split()
                v = [int(x) for x in v]
                # user nice system idle iowait irq softirq steal
                out[int(name[3:])] = ((v[0] + v[1] + v[2] + v[5] + v[6]) / hz, v[7] / hz)
    return out


def children_cpu(parent):
    """User+sys seconds used so far by the children of `parent` (nginx's
    workers under its master)."""
    hz = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in children(parent):
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()  # comm may hold spaces
        total += int(fields[11]) + int(fields[12])
    return total / hz


class NginxCounters:
    """stub_status of the peer: connections accepted, requests read, and the
    connections still open. Each reading is itself one connection and one
    request, which `delta` takes off again."""

    def __init__(self, port, ca, host="127.0.0.1"):
        self.port, self.host = port, host
        self.ctx = ssl.create_default_context(cafile=ca)

    def read(self):
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=10)
        try:
            conn.request("GET", "/nginx_status")
            text = conn.getresponse().read().decode()
        finally:
            conn.close()
        active = int(re.search(r"Active connections:\s*(\d+)", text).group(1))
        accepts, _, requests = (int(x) for x in re.search(r"\n\s*(\d+)\s+(\d+)\s+(\d+)", text).groups())
        return {"active": active, "accepts": accepts, "requests": requests}

    @staticmethod
    def delta(before, after):
        return {"conns": after["accepts"] - before["accepts"] - 1,
                "requests": after["requests"] - before["requests"] - 1}

    def quiesce(self, timeout=10.0):
        """Waits until only our own status connection is open, so the next
        client starts against an idle server. Returns the last reading."""
        end = time.monotonic() + timeout
        while True:
            c = self.read()
            if c["active"] <= 1 or time.monotonic() > end:
                return c
            time.sleep(0.1)
