#!/usr/bin/env python3
"""Integration tests of `barrage run` and `barrage stats` against the mock.

Each scenario starts its own `barrage mock-server --port 0` (TLS with a
throw-away CA), runs the built CLI as a user would and checks the output
file, the exit status and what the mock saw (it prints its request count on
SIGTERM). Standard library only.

    batch_cli_test.py BARRAGE SCENARIO [--backend io_uring|epoll]

Scenarios: big, kill_resume, malformed, cache, ordered, pty, dry_run, sigint,
usage, config, stats, shard. Exit 0 pass, 1 fail, 77 skipped.
"""
import argparse
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

SKIP = 77


class Fail(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def log(msg):
    print(msg, flush=True)


# Variables that would change what the CLI does; the tests set their own.
SCRUB = ("OPENAI_BASE_URL", "OPENAI_API_KEY", "MAX_CONCURRENT_LLM", "LLM_RATE_LIMIT",
         "LLM_RATE_PERIOD", "ASYNC_LLM_TIMEOUT")


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if k not in SCRUB and not k.startswith("BARRAGE_")}
    env.update(extra)
    return env


class Mock:
    """`barrage mock-server` on a kernel-picked port."""

    def __init__(self, barrage, workdir, *args):
        self.ca = os.path.join(workdir, "mock-ca.pem")
        self.proc = subprocess.Popen(
            [barrage, "mock-server", "--port", "0", "--write-ca", self.ca, *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=clean_env())
        line = self.proc.stdout.readline()
        m = re.search(r"listening on https://[^:]+:(\d+)", line)
        if not m:
            self.proc.kill()
            raise Fail(f"mock-server did not start: {line!r}")
        self.port = int(m.group(1))
        self.url = f"https://localhost:{self.port}"
        self.requests = None

    def stop(self):
        """SIGTERM; returns the number of requests the mock parsed."""
        if self.requests is not None:
            return self.requests
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=10)
        m = re.search(r"(\d+) request\(s\)", out)
        check(m, f"mock-server printed no stats: {out!r}")
        self.requests = int(m.group(1))
        return self.requests

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def chat_line(i, custom_id=None):
    body = {"model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": f"Summarise document {i}: the quick brown fox."}],
            "max_tokens": 16}
    return json.dumps({"custom_id": custom_id or f"req-{i}", "method": "POST",
                       "url": "/v1/chat/completions", "body": body}, separators=(",", ":"))


def write_input(path, n, bad=None):
    """n lines; bad maps a 1-based line number to the text to put there."""
    bad = bad or {}
    ids = []
    with open(path, "w") as f:
        for i in range(1, n + 1):
            if i in bad:
                f.write(bad[i] + "\n")
            else:
                f.write(chat_line(i) + "\n")
                ids.append(f"req-{i}")
    return ids


def read_output(path):
    """Parsed lines; fails on a line that is not JSON or a missing final newline."""
    with open(path, "rb") as f:
        data = f.read()
    check(data == b"" or data.endswith(b"\n"), f"{path}: last line is torn")
    rows = []
    for no, raw in enumerate(data.splitlines(), 1):
        try:
            rows.append(json.loads(raw))
        except ValueError:
            raise Fail(f"{path}: line {no} is not JSON: {raw[:120]!r}")
    return rows


def complete_lines(path):
    with open(path, "rb") as f:
        data = f.read()
    return data.count(b"\n"), not (data == b"" or data.endswith(b"\n"))


def check_once(rows, ids, what):
    seen = {}
    for r in rows:
        if r.get("custom_id") is not None:
            seen[r["custom_id"]] = seen.get(r["custom_id"], 0) + 1
    want = set(ids)
    dups = [k for k, v in seen.items() if v > 1]
    missing = [i for i in ids if i not in seen]
    extra = [k for k in seen if k not in want]
    check(not dups, f"{what}: {len(dups)} custom_id(s) written more than once, e.g. {dups[:3]}")
    check(not missing, f"{what}: {len(missing)} custom_id(s) missing, e.g. {missing[:3]}")
    check(not extra, f"{what}: unexpected custom_ids {extra[:3]}")


class Ctx:
    def __init__(self, barrage, backend, workdir):
        self.barrage = barrage
        self.backend = backend
        self.dir = workdir

    def path(self, name):
        return os.path.join(self.dir, name)

    def run_args(self, mock, inp, out, *extra):
        args = [self.barrage, "run", inp]
        if out:
            args += ["-o", out]
        args += ["--endpoint", mock.url, "--ca-file", mock.ca, "--timeout", "20"]
        if self.backend:
            args += ["--backend", self.backend]
        return args + list(extra)

    def run(self, args, timeout=40, env=None):
        t0 = time.monotonic()
        p = subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                           env=env or clean_env())
        p.seconds = time.monotonic() - t0
        return p


def show(p):
    return f"exit {p.returncode}\n--- stdout\n{p.stdout}\n--- stderr\n{p.stderr}"


def summary_counts(text):
    m = re.search(r"this run:\s+(\d+) written, (\d+) skipped", text)
    check(m, f"no 'this run' line in:\n{text}")
    return int(m.group(1)), int(m.group(2))


# ---- scenarios ---------------------------------------------------------------

def t_big(c):
    """(a) 20,000 lines complete, every custom_id exactly once."""
    n = 20000
    inp, out = c.path("in.jsonl"), c.path("out.jsonl")
    ids = write_input(inp, n)
    with Mock(c.barrage, c.dir, "--threads", "2") as mock:
        p = c.run(c.run_args(mock, inp, out, "--concurrency", "256"), timeout=50)
        check(p.returncode == 0, show(p))
        sent = mock.stop()
    rows = read_output(out)
    check(len(rows) == n, f"{len(rows)} lines written, want {n}")
    check_once(rows, ids, "20k batch")
    check(all(r["error"] is None and r["response"]["status_code"] == 200 for r in rows),
          "not every answer is a 200")
    check(sent == n, f"the mock saw {sent} requests, want {n}")
    s = c.run([c.barrage, "stats", out, "--json"])
    check(s.returncode == 0, show(s))
    j = json.loads(s.stdout)
    check(j["requests"] == n and j["ok"] == n and j["duplicates"] == 0, f"stats: {s.stdout}")
    log(f"20000 requests in {p.seconds:.1f} s ({n / p.seconds:.0f} req/s end to end)")


def t_kill_resume(c):
    """(b) kill -9 mid-run, then --resume: each custom_id once, no torn line."""
    n = 3000
    inp, out = c.path("in.jsonl"), c.path("out.jsonl")
    ids = write_input(inp, n)
    with Mock(c.barrage, c.dir, "--latency-ms", "20", "--latency-jitter-ms", "20") as mock:
        proc = subprocess.Popen(c.run_args(mock, inp, out, "--concurrency", "64", "--quiet"),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=clean_env())
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if os.path.exists(out) and complete_lines(out)[0] >= 500:
                break
            check(proc.poll() is None, "the run ended before it could be killed")
            time.sleep(0.01)
        proc.kill()  # SIGKILL: no chance to clean up
        proc.wait()
        before, torn = complete_lines(out)
        check(0 < before < n, f"{before} lines at the kill; the test needs a partial file")
        if not torn:
            # The runner writes each line with one write(), so a kill rarely
            # lands inside one: make the torn tail a kill mid-write leaves.
            with open(out, "ab") as f:
                f.write(b'{"id":"batch_req_torn","custom_id":"req-2999","response":{"status_')
        p = c.run(c.run_args(mock, inp, out, "--resume"))
        check(p.returncode == 0, show(p))
        written, skipped = summary_counts(p.stdout)
    rows = read_output(out)
    check_once(rows, ids, "after resume")
    check(len(rows) == n, f"{len(rows)} lines after resume, want {n}")
    check(skipped == before, f"resume skipped {skipped}, but {before} complete lines were there")
    check(written + skipped == n, f"written {written} + skipped {skipped} != {n}")
    log(f"written before kill {before} (torn tail: {'from the kill' if torn else 'appended by the test'}), "
        f"skipped on resume {skipped}, written on resume {written}, total {len(rows)}")


def t_malformed(c):
    """(c) malformed lines are reported by number; the rest succeeds; exit 1."""
    n = 200
    bad = {7: '{"custom_id":"req-7","method":"POST","url":"/v1/chat/completions","body":{"model"',
           50: '{"method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini"}}',
           120: 'this is not json'}
    inp, out = c.path("in.jsonl"), c.path("out.jsonl")
    ids = write_input(inp, n, bad)
    with Mock(c.barrage, c.dir) as mock:
        p = c.run(c.run_args(mock, inp, out))
        sent = mock.stop()
    check(p.returncode == 1, "want exit 1 with invalid lines; " + show(p))
    for line in bad:
        check(re.search(rf"\bline {line}\b", p.stdout), f"line {line} is not reported:\n{p.stdout}")
    rows = read_output(out)
    invalid = [r for r in rows if r["error"] and r["error"]["code"] == "invalid_request"]
    check(sorted(r["barrage"]["line"] for r in invalid) == sorted(bad),
          f"invalid records for lines {[r['barrage']['line'] for r in invalid]}")
    ok = [r for r in rows if r["error"] is None]
    check(len(ok) == n - len(bad), f"{len(ok)} ok, want {n - len(bad)}")
    check_once(ok, ids, "valid lines")
    check(sent == n - len(bad), f"the mock saw {sent} requests")


def t_cache(c):
    """(d) a second run with --cache makes no network call and counts cache hits."""
    n = 300
    inp, db = c.path("in.jsonl"), c.path("cache.sqlite")
    ids = write_input(inp, n)
    with Mock(c.barrage, c.dir) as mock:
        p1 = c.run(c.run_args(mock, inp, c.path("out1.jsonl"), "--cache", db))
        check(p1.returncode == 0, show(p1))
        p2 = c.run(c.run_args(mock, inp, c.path("out2.jsonl"), "--cache", db))
        check(p2.returncode == 0, show(p2))
        sent = mock.stop()
    check(sent == n, f"the mock saw {sent} requests over both runs, want {n} (the first run only)")
    m = re.search(r"(\d+) from cache", p2.stdout)
    check(m and int(m.group(1)) == n, f"second summary does not count {n} cache hits:\n{p2.stdout}")
    rows = read_output(c.path("out2.jsonl"))
    check_once(rows, ids, "cached run")
    check(all(r["barrage"]["cached"] for r in rows), "not every line of the second run is cached")
    log(f"mock requests over two runs: {sent}; second run cache hits: {m.group(1)}")


def t_ordered(c):
    """(e) --ordered writes in input order although answers finish out of order."""
    n = 2000
    inp = c.path("in.jsonl")
    ids = write_input(inp, n)
    with Mock(c.barrage, c.dir, "--latency-ms", "1", "--latency-jitter-ms", "30") as mock:
        p = c.run(c.run_args(mock, inp, c.path("ordered.jsonl"), "--ordered"))
        check(p.returncode == 0, show(p))
        u = c.run(c.run_args(mock, inp, c.path("unordered.jsonl")))
        check(u.returncode == 0, show(u))
    got = [r["custom_id"] for r in read_output(c.path("ordered.jsonl"))]
    check(got == ids, "--ordered output is not in input order")
    unordered = [r["custom_id"] for r in read_output(c.path("unordered.jsonl"))]
    log("without --ordered the completion order " +
        ("differs from the input, so the check means something" if unordered != ids
         else "happened to match the input"))


def t_pty(c):
    """(f) on a terminal the live bar is drawn with an ETA."""
    if shutil.which("script") is None:
        log("skipped: util-linux `script` is not installed (package bsdutils)")
        return SKIP
    n = 600
    inp, out = c.path("in.jsonl"), c.path("out.jsonl")
    write_input(inp, n)
    with Mock(c.barrage, c.dir, "--latency-ms", "50") as mock:
        cmd = shlex.join(c.run_args(mock, inp, out, "--concurrency", "20"))
        # Bytes, not text: universal newlines would turn the \r into \n.
        p = subprocess.run(["script", "-qfec", cmd, "/dev/null"], capture_output=True,
                           timeout=40, env=clean_env(TERM="dumb"))
    screen = p.stdout.decode("utf-8", "replace")
    check(p.returncode == 0, f"exit {p.returncode}\n{screen}")
    check("\r" in screen, "no carriage return: the bar was not redrawn in place")
    bars = re.findall(r"\d+/600 +[\d.]+% [\d.]+ req/s ETA (?:\d+:\d\d|--:--)", screen)
    check(len(bars) >= 3, f"{len(bars)} progress bar draws with an ETA; screen:\n{screen[:2000]!r}")
    check(re.search(r"ETA \d+:\d\d", screen), "no numeric ETA was ever shown")
    log(f"{len(bars)} bar draws, e.g. {bars[len(bars) // 2]!r}")


def t_dry_run(c):
    """(g) --dry-run validates, reports, sends nothing and writes nothing."""
    n = 100
    inp, out = c.path("in.jsonl"), c.path("out.jsonl")
    write_input(inp, n, {42: '{"custom_id":"x42","url":"/v1/chat/completions"}'})
    with Mock(c.barrage, c.dir) as mock:
        p = c.run(c.run_args(mock, inp, out, "--dry-run", "--rps", "7", "--concurrency", "9"))
        sent = mock.stop()
    check(sent == 0, f"--dry-run sent {sent} requests")
    check(not os.path.exists(out), "--dry-run created the output file")
    check(p.returncode == 1, "want exit 1 (an invalid line); " + show(p))
    for want in ("line 42", "100 lines, 99 valid, 1 invalid", mock.url, "concurrency: 9 (flag)",
                 "7 requests per 1 s"):
        check(want in p.stdout, f"dry run output lacks {want!r}:\n{p.stdout}")


def t_sigint(c):
    """First SIGINT stops cleanly (resumable); a second one aborts; resume completes."""
    n = 3000
    inp, out = c.path("in.jsonl"), c.path("out.jsonl")
    ids = write_input(inp, n)
    with Mock(c.barrage, c.dir, "--latency-ms", "100") as mock:
        def start(*extra):
            return subprocess.Popen(c.run_args(mock, inp, out, "--concurrency", "32", *extra),
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    env=clean_env())

        def wait_lines(proc, at_least):
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if os.path.exists(out) and complete_lines(out)[0] >= at_least:
                    return
                check(proc.poll() is None, "the run ended too early")
                time.sleep(0.01)
            raise Fail("no progress")

        proc = start()
        wait_lines(proc, 100)
        proc.send_signal(signal.SIGINT)
        o, e = proc.communicate(timeout=20)
        check(proc.returncode == 130, f"first SIGINT: exit {proc.returncode}\n{e}")
        check(re.search(r"stopping: finishing \d+ in-flight requests \(press Ctrl-C again to abort\)", e),
              f"no stopping message:\n{e}")
        after_stop, torn = complete_lines(out)
        check(not torn, "a graceful stop left a torn line")
        check(after_stop < n, "the stop did not stop anything")

        proc = start("--resume")
        wait_lines(proc, after_stop + 100)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        o, e = proc.communicate(timeout=20)
        check(proc.returncode == 130, f"second SIGINT: exit {proc.returncode}\n{e}")
        check("aborting" in e, f"no abort message:\n{e}")

        p = c.run(c.run_args(mock, inp, out, "--resume"))
        check(p.returncode == 0, show(p))
    rows = read_output(out)
    check_once(rows, ids, "after stop, abort and resume")
    log(f"lines after graceful stop {after_stop}; complete after final resume {len(rows)}")


def t_usage(c):
    """(h) exit 2: duplicate custom_id, --api-key, and other usage errors."""
    inp, out = c.path("in.jsonl"), c.path("out.jsonl")
    write_input(inp, 50, {30: chat_line(30, custom_id="req-3")})
    with Mock(c.barrage, c.dir) as mock:
        p = c.run(c.run_args(mock, inp, out))
        check(p.returncode == 2, "duplicate custom_id: " + show(p))
        check("req-3" in p.stderr or "duplicate" in p.stderr.lower(), "duplicate not named:\n" + p.stderr)
        secret = "sk-test-DO-NOT-PRINT-123"
        p = c.run(c.run_args(mock, c.path("none.jsonl"), out, "--api-key", secret))
        check(p.returncode == 2, "--api-key: " + show(p))
        check("OPENAI_API_KEY" in p.stderr and "--api-key-env" in p.stderr, "--api-key hint:\n" + p.stderr)
        check(secret not in p.stdout + p.stderr, "the refused key was echoed")
        p = c.run(c.run_args(mock, inp, out, f"--api-key={secret}"))
        check(p.returncode == 2 and secret not in p.stdout + p.stderr, "--api-key=: " + show(p))
        p = c.run(c.run_args(mock, inp, out, "--header", f"Authorization: Bearer {secret}"))
        check(p.returncode == 2 and secret not in p.stdout + p.stderr, "--header Authorization: " + show(p))
        sent = mock.stop()
    check(sent == 0, f"usage errors sent {sent} requests")
    check(not os.path.exists(out) or os.path.getsize(out) == 0, "usage errors wrote output")
    good = c.path("good.jsonl")
    write_input(good, 5)
    for args, why in (
        ([c.barrage, "run", c.path("missing.jsonl"), "-o", out], "unreadable input"),
        ([c.barrage, "run", good], "no -o"),
        ([c.barrage, "run", good, "-o", out, "--shard", "2/2"], "shard out of range"),
        ([c.barrage, "run", good, "-o", out, "--concurrency", "0"], "concurrency 0"),
        ([c.barrage, "run", good, "-o", out, "--header", "no colon"], "bad header"),
        ([c.barrage, "stats", c.path("missing.jsonl")], "stats of a missing file"),
    ):
        p = c.run(args)
        check(p.returncode == 2, f"{why}: " + show(p))
    with open(out, "w") as f:
        f.write(chat_line(1) + "\n")
    p = c.run([c.barrage, "run", good, "-o", out])
    check(p.returncode == 2 and "--resume" in p.stderr, "existing output without --resume: " + show(p))
    env = clean_env(MAX_CONCURRENT_LLM="lots")
    p = c.run([c.barrage, "run", good, "-o", c.path("o2.jsonl")], env=env)
    check(p.returncode == 2 and "MAX_CONCURRENT_LLM" in p.stderr, "bad environment value: " + show(p))


def t_config(c):
    """TOML layering: environment < file < endpoint table < flags; unknown keys exit 2."""
    inp = c.path("in.jsonl")
    write_input(inp, 10)
    cfg = c.path("barrage.toml")
    with open(cfg, "w") as f:
        f.write('endpoint = "https://llm.example.test"\nconcurrency = 64\nrps = 5\ntimeout = 30\n'
                'headers = { "OpenAI-Organization" = "org-123" }\n\n'
                '[endpoints."https://llm.example.test"]\nconcurrency = 16\ntpm = 90000\n')
    env = clean_env(MAX_CONCURRENT_LLM="128", ASYNC_LLM_TIMEOUT="45", LLM_RATE_LIMIT="600",
                    LLM_RATE_PERIOD="60")
    p = c.run([c.barrage, "run", inp, "--dry-run", "--config", cfg, "--timeout", "12"], env=env)
    check(p.returncode == 0, show(p))
    for want in ("endpoint:    https://llm.example.test (config", "concurrency: 16 (config",
                 "5 requests per 1 s (config", "90000 tokens per minute (config",
                 "timeout:     12 s per attempt (flag)", "header:      OpenAI-Organization: (value hidden)"):
        check(want in p.stdout, f"dry run lacks {want!r}:\n{p.stdout}")
    check("org-123" not in p.stdout, "a header value was printed")
    p = c.run([c.barrage, "run", inp, "--dry-run"], env=env)
    for want in ("concurrency: 128 (environment MAX_CONCURRENT_LLM)",
                 "600 requests per 60 s (environment LLM_RATE_LIMIT; period: environment LLM_RATE_PERIOD)",
                 "timeout:     45 s per attempt (environment ASYNC_LLM_TIMEOUT)"):
        check(want in p.stdout, f"dry run lacks {want!r}:\n{p.stdout}")
    for text, why in (('concurency = 4\n', "misspelt key"),
                      ('[endpoints."https://a.test"]\nfoo = 1\n', "unknown key in an endpoint table"),
                      ('concurrency = "many"\n', "wrong type"),
                      ('rps = \n', "TOML syntax error")):
        with open(cfg, "w") as f:
            f.write(text)
        p = c.run([c.barrage, "run", inp, "--dry-run", "--config", cfg])
        check(p.returncode == 2, f"{why}: " + show(p))


def t_stats(c):
    """`barrage stats`: text, --json, --metrics (Prometheus) and --plot (gnuplot)."""
    inp, out = c.path("in.jsonl"), c.path("out.jsonl")
    write_input(inp, 300, {3: "not json"})
    prices = c.path("prices.json")
    with open(prices, "w") as f:  # one dollar per prompt token: cost == prompt tokens
        json.dump({"gpt-4o-mini": {"input": 1000000, "output": 0}}, f)
    with Mock(c.barrage, c.dir, "--latency-ms", "5", "--latency-jitter-ms", "20") as mock:
        p = c.run(c.run_args(mock, inp, out, "--metrics", c.path("run.prom"), "--prices", prices))
        check(p.returncode == 1, show(p))
    for want in ("300 requests: 299 ok", "latency ms: min", "p99", "ttfb ms:", "tokens:", "cost:",
                 "invalid_request 1", "line 3:"):
        check(want in p.stdout, f"run summary lacks {want!r}:\n{p.stdout}")
    with open(out, "ab") as f:
        f.write(b'{"id":"torn","custom_id":"req-x","respo')  # what a kill -9 leaves
    prom, png = c.path("stats.prom"), c.path("stats.png")
    s = c.run([c.barrage, "stats", out, "--metrics", prom, "--plot", png])
    check(s.returncode == 1, show(s))
    check("last line is torn" in s.stdout, "torn tail not noted:\n" + s.stdout)
    text = open(prom).read()
    for want in ('barrage_batch_requests{result="ok"} 299', 'barrage_batch_latency_seconds{quantile="0.99"}',
                 "# TYPE barrage_batch_latency_seconds summary", 'code="invalid_request"'):
        check(want in text, f"metrics lack {want!r}:\n{text}")
    if shutil.which("gnuplot"):
        with open(png, "rb") as f:
            check(f.read(8) == b"\x89PNG\r\n\x1a\n", "--plot did not write a PNG")
    else:
        check("gnuplot is not installed" in s.stderr, "missing gnuplot not explained:\n" + s.stderr)
    j = json.loads(c.run([c.barrage, "stats", out, "--json"]).stdout)
    check(j["requests"] == 300 and j["invalid"] == 1 and j["torn_tail"], f"--json: {j}")
    check(j["latency_ms"]["count"] == 299 and j["latency_ms"]["p50"] > 0, f"--json latency: {j}")
    check(j["prompt_tokens"] > 0 and abs(j["cost_usd"] - j["prompt_tokens"]) < 1e-6,
          f"--prices not applied: cost {j['cost_usd']} for {j['prompt_tokens']} prompt tokens")


def t_shard(c):
    """--shard i/n: the shards together run every line exactly once."""
    n = 500
    inp = c.path("in.jsonl")
    ids = write_input(inp, n)
    rows = []
    with Mock(c.barrage, c.dir) as mock:
        for i in range(3):
            out = c.path(f"shard{i}.jsonl")
            p = c.run(c.run_args(mock, inp, out, "--shard", f"{i}/3"))
            check(p.returncode == 0, show(p))
            part = read_output(out)
            check(abs(len(part) - n / 3) < 2, f"shard {i}/3 ran {len(part)} lines")
            rows += part
    check_once(rows, ids, "three shards")


def t_shared_shards(c):
    """Three shards run at once share --rps 100 through a redis-server the test
    starts (--shared-limits), and `barrage merge` checks they cover every
    custom_id exactly once (and says what is missing when one is left out)."""
    if shutil.which("redis-server") is None:
        return SKIP
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    redis = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", c.dir,
                              "--save", "", "--appendonly", "no"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(500):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.01)
        n = 300
        inp = c.path("in.jsonl")
        ids = write_input(inp, n)
        with Mock(c.barrage, c.dir) as mock:
            t0 = time.monotonic()
            procs = [subprocess.Popen(c.run_args(mock, inp, c.path(f"shard{i}.jsonl"), "--shard", f"{i}/3",
                                                 "--rps", "100", "--burst", "10", "-q",
                                                 "--shared-limits", f"redis://127.0.0.1:{port}",
                                                 "--shared-namespace", "cli-test"),
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                      env=clean_env())
                     for i in range(3)]
            for p in procs:
                out, _ = p.communicate(timeout=40)
                check(p.returncode == 0, f"exit {p.returncode}: {out}")
            took = time.monotonic() - t0
        # 300 requests at 100/s shared (burst 10): ~2.9 s. Alone, each shard
        # would have had 100/s to itself and all three ended after ~1 s.
        check(took >= 2.5, f"the shards did not share --rps 100: 300 requests in {took:.2f} s")
        shards = [c.path(f"shard{i}.jsonl") for i in range(3)]
        m = c.run([c.barrage, "merge", inp, *shards, "-o", c.path("merged.jsonl")])
        check(m.returncode == 0 and "exactly once" in m.stdout, show(m))
        check_once(read_output(c.path("merged.jsonl")), ids, "merged")
        m = c.run([c.barrage, "merge", inp, *shards[:2]])
        check(m.returncode == 1 and "missing:   100" in m.stdout, show(m))
    finally:
        redis.kill()
        redis.wait()


SCENARIOS = {name[2:]: fn for name, fn in globals().items() if name.startswith("t_")}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("barrage")
    ap.add_argument("scenario", choices=sorted(SCENARIOS))
    ap.add_argument("--backend", choices=["io_uring", "epoll"])
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="barrage-cli-test-") as d:
        c = Ctx(os.path.abspath(a.barrage), a.backend, d)
        t0 = time.monotonic()
        try:
            rc = SCENARIOS[a.scenario](c) or 0
        except Fail as e:
            print(f"FAIL {a.scenario}: {e}", flush=True)
            return 1
        except subprocess.TimeoutExpired as e:
            print(f"FAIL {a.scenario}: timed out: {e}", flush=True)
            return 1
        print(f"{'SKIP' if rc == SKIP else 'PASS'} {a.scenario}"
              f"{' (' + a.backend + ')' if a.backend else ''} in {time.monotonic() - t0:.1f} s",
              flush=True)
        return rc


if __name__ == "__main__":
    sys.exit(main())
