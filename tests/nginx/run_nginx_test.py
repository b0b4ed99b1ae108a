#!/usr/bin/env python3
"""run_nginx_test.py: libbarrage against nginx, an HTTP/TLS peer we did not
write. One run per backend (io_uring, epoll), forced with BRG_OPT_BACKEND.

  1. a throw-away prefix with a test CA and two P-256 leaf certificates made
     with the openssl CLI: one for localhost/127.0.0.1, one for
     wrong.example only (served on a second port);
  2. nginx (worker_processes 1, keep-alive for a million requests) answering
     every POST with a fixed ~600-byte chat.completion body whose usage says
     17 prompt and 42 completion tokens; /status429 answers 429; a
     stub_status location lets us count what nginx really saw;
  3. examples/load_c: 10000 requests, 500 in flight, every body checked
     byte for byte and every usage figure checked; nginx's own counters must
     agree with the engine's (requests and connections);
  4. nginx_probe: the wrong-host port must fail with BRG_E_TLS and a
     hostname error; the right port without the test CA must fail with
     BRG_E_TLS; https://127.0.0.1 (IP SAN) must succeed; /status429 must give
     BRG_E_HTTP/429 after exactly 1 + max_retries attempts.

nginx (set up by nginx_peer.py, shared with the benchmarks) is stopped and the
prefix removed on every exit path, including SIGTERM from meson's timeout.
Exit 77 (skip) only when no nginx binary exists. Standard library only.

Usage: run_nginx_test.py --backend io_uring|epoll --load-c PATH --probe PATH
                         [--requests 10000] [--inflight 500] [--keep]"""

import argparse
import json
import http.client
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time

from nginx_peer import BODY, BODY_429, COMPLETION_TOKENS, PROMPT_TOKENS, NginxPeer, PeerError, find_nginx

class Failure(Exception):
    pass


class Terminated(Exception):
    pass


def on_sigterm(signum, frame):
    raise Terminated(f"signal {signum}")


def log(msg):
    print(msg, flush=True)


def check(cond, msg):
    if not cond:
        raise Failure(msg)
    log(f"ok: {msg}")


def run(cmd, **kw):
    log("+ " + " ".join(cmd))
    return subprocess.run(cmd, **kw)


def stub_status(port, ca_file):
    """nginx's own counters: (active, accepts, handled, requests)."""
    ctx = ssl.create_default_context(cafile=ca_file)
    c = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=10)
    try:
        c.request("GET", "/nginx_status")
        r = c.getresponse()
        text = r.read().decode()
    finally:
        c.close()
    m = re.search(r"Active connections:\s*(\d+).*?\n\s*(\d+)\s+(\d+)\s+(\d+)", text, re.S)
    if r.status != 200 or not m:
        raise Failure(f"unexpected stub_status answer {r.status}: {text!r}")
    return tuple(int(x) for x in m.groups())


def parse_summary(line):
    fields = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
    want = ["requests", "ok", "errors", "seconds", "req_per_s", "cpu_us_per_req",
            "maxrss_kb", "backend", "conns_opened", "tls_resumed"]
    missing = [k for k in want if k not in fields]
    if missing:
        raise Failure(f"summary line lacks {missing}: {line!r}")
    return fields


def parse_probe(out):
    """key=value lines; error may span lines; body runs to the end."""
    res = {}
    head, sep, body = out.partition("\nbody=")
    if not sep:
        raise Failure(f"probe output has no body= line: {out!r}")
    res["body"] = body
    m = re.search(r"^error=(.*)\nbody_len=(\d+)$", head, re.S | re.M)
    if not m:
        raise Failure(f"probe output malformed: {out!r}")
    res["error"], res["body_len"] = m.group(1), int(m.group(2))
    for line in head[:m.start()].splitlines():
        k, _, v = line.partition("=")
        res[k] = v
    for k in ("status", "http", "attempts", "prompt_tokens", "completion_tokens", "user_data"):
        res[k] = int(res[k])
    return res


def probe(args, url, ca, retries, label, taskset):
    cmd = taskset + [args.probe, url, args.backend, ca, str(retries)]
    p = run(cmd, capture_output=True, timeout=90)
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    if p.returncode != 0:
        raise Failure(f"{label}: nginx_probe exited {p.returncode}: {err.strip()} {out.strip()}")
    r = parse_probe(out)
    log(f"{label}: status={r['status_name']}({r['status']}) http={r['http']} "
        f"attempts={r['attempts']} backend={r['backend']} error={r['error']!r}")
    check(r["backend"] == args.backend, f"{label}: probe ran on the {args.backend} backend")
    check(r["user_data"] == 0x5eed, f"{label}: user_data comes back untouched")
    return r


def batch_through_cli(args, prefix, port, ca, taskset):
    """barrage run: every custom_id exactly once, every body byte-exact."""
    n = args.batch_lines
    src = os.path.join(prefix, "batch.jsonl")
    out = os.path.join(prefix, "batch.out.jsonl")
    with open(src, "w") as f:
        for i in range(n):
            f.write(json.dumps({"custom_id": f"req-{i}", "method": "POST", "url": "/v1/chat/completions",
                                "body": {"model": "gpt-4o-mini",
                                         "messages": [{"role": "user", "content": f"line {i}"}]}}) + "\n")
    cmd = taskset + [args.barrage, "run", src, "-o", out, "--endpoint", f"https://localhost:{port}",
                     "--ca-file", ca, "--backend", args.backend, "--concurrency", "500", "--quiet"]
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=200)
    took = time.monotonic() - t0
    check(p.returncode == 0, f"barrage run exits 0 (got {p.returncode}): {p.stderr.strip()[-500:]}")
    seen = {}
    expect = json.loads(BODY)
    with open(out) as f:
        for line in f:
            rec = json.loads(line)
            cid = rec["custom_id"]
            check(cid not in seen, f"custom_id {cid} written once")
            seen[cid] = True
            check(rec["error"] is None, f"{cid}: no error, got {rec['error']}")
            check(rec["response"]["status_code"] == 200, f"{cid}: status 200")
            check(rec["response"]["body"] == expect, f"{cid}: body passed through intact")
            check(rec["barrage"]["prompt_tokens"] == 17 and rec["barrage"]["completion_tokens"] == 42,
                  f"{cid}: usage 17/42 parsed")
    check(len(seen) == n, f"all {n} custom_ids in the output, got {len(seen)}")
    log(f"barrage run: {n} lines against nginx in {took:.2f} s on {args.backend}, every custom_id once")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", required=True, choices=["io_uring", "epoll"])
    ap.add_argument("--load-c", required=True)
    ap.add_argument("--probe", required=True)
    ap.add_argument("--requests", type=int, default=10000)
    ap.add_argument("--inflight", type=int, default=500)
    ap.add_argument("--keep", action="store_true", help="keep the prefix for inspection")
    ap.add_argument("--barrage", help="the barrage CLI: also run a Batch API file through it")
    ap.add_argument("--batch-lines", type=int, default=20000)
    args = ap.parse_args()

    if find_nginx() is None:
        log("nginx not installed: skipping")
        return 77
    if shutil.which("openssl") is None:
        log("FAIL: openssl CLI not found (needed to make the test CA)")
        return 1

    signal.signal(signal.SIGTERM, on_sigterm)
    cpus = sorted(os.sched_getaffinity(0))
    pin = len(cpus) >= 2 and shutil.which("taskset") is not None
    pin_client = ["taskset", "-c", str(cpus[0])] if pin else []

    peer = NginxPeer(cpu=cpus[1] if pin else None,
                     prefix=tempfile.mkdtemp(prefix=f"barrage-nginx-{args.backend}-"), log=log)
    prefix = peer.prefix
    summary = None
    rc = 1
    try:
        peer.start()
        proc, port, wrong_port, ca = peer.proc, peer.port, peer.wrong_port, peer.ca
        url = f"https://localhost:{port}/v1/chat/completions"

        # --- load: N requests, INFLIGHT in flight, every answer checked ---
        before = stub_status(port, ca)
        env = dict(os.environ)
        env["EXPECT_BODY"] = BODY
        env["EXPECT_PROMPT"] = str(PROMPT_TOKENS)
        env["EXPECT_COMPLETION"] = str(COMPLETION_TOKENS)
        cmd = pin_client + [args.load_c, url, str(args.requests), str(args.inflight), args.backend, ca]
        try:
            p = run(cmd, env=env, capture_output=True, text=True, timeout=200)
        except subprocess.TimeoutExpired as e:
            raise Failure(f"load_c did not finish within 200 s; stderr: {e.stderr}")
        if p.stderr.strip():
            log(p.stderr.rstrip())
        lines = [l for l in p.stdout.splitlines() if l.startswith("requests=")]
        if len(lines) != 1:
            raise Failure(f"load_c exited {p.returncode} without one summary line: {p.stdout!r}")
        summary = lines[0]
        log(f"LOAD_C SUMMARY [{args.backend}]: {summary}")
        s = parse_summary(summary)
        check(p.returncode == 0, f"load_c exits 0 (got {p.returncode})")
        check(int(s["requests"]) == args.requests, f"requests={s['requests']} == {args.requests}")
        check(int(s["ok"]) == args.requests, f"ok={s['ok']} == {args.requests}")
        check(int(s["errors"]) == 0, f"errors={s['errors']} == 0")
        check(s["backend"] == args.backend, f"engine ran on backend={s['backend']} as requested")
        conns = int(s["conns_opened"])
        check(1 <= conns <= args.inflight,
              f"conns_opened={conns} within 1..{args.inflight} (MAX_CONNS_PER_HOST)")
        check(float(s["req_per_s"]) > 0 and float(s["cpu_us_per_req"]) > 0,
              "req_per_s and cpu_us_per_req are positive")
        check(int(s["maxrss_kb"]) > 0, "maxrss_kb is positive")

        after = stub_status(port, ca)
        d_accepts = after[1] - before[1]
        d_requests = after[3] - before[3]
        # Each stub_status fetch counts itself once (one connection, one
        # request), so the load accounts for the deltas minus one.
        check(d_requests - 1 == args.requests,
              f"nginx counted {d_requests - 1} requests from load_c, the engine sent {args.requests}")
        check(d_accepts - 1 == conns,
              f"nginx accepted {d_accepts - 1} connections from load_c, engine reports conns_opened={conns}")

        # --- TLS: wrong host name on a certificate from the trusted CA ---
        r = probe(args, f"https://localhost:{wrong_port}/v1/chat/completions", ca, 0,
                  "wrong-host", pin_client)
        check(r["status"] == -9 and r["status_name"] == "BRG_E_TLS",
              f"wrong-host: status is BRG_E_TLS (-9), got {r['status_name']} ({r['status']})")
        check(r["http"] == 0, "wrong-host: no HTTP response (http_status 0)")
        check(re.search(r"certificate", r["error"], re.I) is not None and
              re.search(r"host ?name", r["error"], re.I) is not None,
              f"wrong-host: error names the certificate and the hostname: {r['error']!r}")
        check(r["body_len"] == 0, "wrong-host: no body")

        # --- TLS: the right host, but without the test CA (system store) ---
        r = probe(args, url, "-", 0, "untrusted-ca", pin_client)
        check(r["status"] == -9, f"untrusted-ca: status is BRG_E_TLS (-9), got {r['status_name']}")
        check(re.search(r"certificate|issuer", r["error"], re.I) is not None,
              f"untrusted-ca: error names the certificate problem: {r['error']!r}")

        # --- TLS: by IP address, verified against the IP SAN ---
        r = probe(args, f"https://127.0.0.1:{port}/v1/chat/completions", ca, 0, "ip-san", pin_client)
        check(r["status"] == 0 and r["http"] == 200, f"ip-san: BRG_OK and HTTP 200, got "
              f"{r['status_name']} http={r['http']} error={r['error']!r}")
        check(r["body"] == BODY, "ip-san: body is byte-exact")
        check(r["prompt_tokens"] == PROMPT_TOKENS and r["completion_tokens"] == COMPLETION_TOKENS,
              f"ip-san: usage {r['prompt_tokens']}/{r['completion_tokens']} == 17/42")
        check(r["error"] == "", "ip-san: error text is empty on success")

        # --- HTTP 429: no retries, then two retries ---
        url429 = f"https://localhost:{port}/status429"
        r = probe(args, url429, ca, 0, "429-no-retry", pin_client)
        check(r["status"] == -12 and r["http"] == 429,
              f"429-no-retry: BRG_E_HTTP with http 429, got {r['status_name']} http={r['http']}")
        check(r["attempts"] == 1, f"429-no-retry: exactly 1 attempt, got {r['attempts']}")
        check(r["body"] == BODY_429, "429-no-retry: the error body is passed through byte-exact")
        r = probe(args, url429, ca, 2, "429-two-retries", pin_client)
        check(r["status"] == -12 and r["http"] == 429,
              f"429-two-retries: BRG_E_HTTP with http 429, got {r['status_name']} http={r['http']}")
        check(r["attempts"] == 3, f"429-two-retries: exactly 3 attempts, got {r['attempts']}")
        check(r["body"] == BODY_429, "429-two-retries: the error body is passed through byte-exact")

        if args.barrage:
            batch_through_cli(args, prefix, port, ca, pin_client)

        check(proc.poll() is None, "nginx is still running after all of the above")
        rc = 0
    except (Failure, PeerError) as e:
        log(f"FAIL: {e}")
        rc = 1
    except Terminated as e:
        log(f"FAIL: terminated ({e}), cleaning up")
        rc = 1
    except subprocess.TimeoutExpired as e:
        log(f"FAIL: timed out: {e}")
        rc = 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        peer.stop(remove=False)
        text, bad = peer.log_problems()
        if bad:
            log("FAIL: nginx error.log has emerg/alert/crit lines:\n" + "\n".join(bad[:20]))
            rc = 1
        if rc != 0 and text:
            log("--- nginx error.log (tail) ---\n" + "\n".join(text.splitlines()[-30:]))
        if args.keep:
            log(f"kept {prefix}")
        else:
            shutil.rmtree(prefix, ignore_errors=True)
        if summary:
            # Last line of the log, so CI shows throughput and CPU at a glance.
            log(f"LOAD_C SUMMARY [{args.backend}]: {summary}")
    log("PASS" if rc == 0 else "FAILED")
    return rc


if __name__ == "__main__":
    sys.exit(main())
