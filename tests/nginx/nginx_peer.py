#!/usr/bin/env python3
"""nginx_peer.py: nginx from Debian as an independent HTTP/TLS peer, shared by
the nginx integration test and the benchmarks (bench/e2e, bench/peers).

One throw-away prefix holds a test CA, a P-256 leaf for localhost/127.0.0.1,
a second leaf for wrong.example only (served on its own port) and the config.
Locations on the main port (TLS, HTTP/1.1 keep-alive; h2 too with --h2):

  /                 200, the fixed ~600-byte chat.completion BODY (usage 17/42)
  /status429        429 with Retry-After: 1 and BODY_429
  /sleep/50         BODY after 50 ms (echo module; chunked)
  /sleep/500        BODY after 500 ms
  /sleep/1000       BODY after 1 s
  /sse              POST (any method) -> 200 text/event-stream, chunked (h2: DATA
                    frames), paced by echo_sleep from nginx's own timers:
                      t=0       headers + role event (delta role "assistant",
                                content "")
                      t=100 ms  token " a"; then " b", " c", " d", " e" at
                                200, 300, 400, 500 ms (each sleep starts after
                                the previous flush, so a little drift adds up)
                      t=500 ms  right after " e": finish chunk (finish_reason
                                "stop"), usage chunk (choices [], usage 17/5/22),
                                data: [DONE]
                    The exact bytes are SSE_STREAM (also written to DIR/sse.txt).
  /sse_stall        POST -> the same headers, role event and " a" at once, then
                    silence for SSE_STALL_S (30) seconds (connection open), then
                    data: [DONE]; for idle/read-timeout tests
  /close            BODY, then the connection is closed (keepalive_timeout 0),
                    so every request needs a new connection and TLS handshake
  /nginx_status     stub_status counters

--address makes nginx listen on that IPv4 address instead of 127.0.0.1 and
puts it in the leaf's SANs (a server inside a network namespace, e.g.
bench/far); --h1-port adds a second port on the main server that offers
HTTP/1.1 only (ALPN without h2), next to an h2 main port.

As a module: `with NginxPeer(cpu=1) as peer: peer.url("/")`.
As a command (for C++ benchmarks and shell scripts):

  nginx_peer.py up DIR [--cpu N] [--h2] [--h2-streams N] [--keepalive-requests N]
                       [--address IPV4] [--h1-port]
                                          start; writes DIR/peer.env (PORT, WRONG_PORT,
                                          CA, PID, ADDRESS, H1_PORT), DIR/body.json (BODY,
                                          byte-exact) and DIR/sse.txt (SSE_STREAM, the /sse
                                          body de-chunked) and returns once nginx accepts
  nginx_peer.py down DIR                  stop it and remove DIR

Standard library only. Exit 77 from `up` when nginx is not installed."""

import argparse
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

# The fixed answer. No '$' (nginx variables), no "'" or '\' (nginx quoting).
# Contains multi-byte UTF-8 so "byte-exact" means something.
BODY = (
    '{"id":"chatcmpl-barrage-nginx-0001","object":"chat.completion",'
    '"created":1700000000,"model":"gpt-4o-mini-2024-07-18",'
    '"choices":[{"index":0,"message":{"role":"assistant","content":'
    '"Hello from nginx, an HTTP and TLS peer barrage did not write. '
    'Ünïcödé bytes — on purpose.",'
    '"refusal":null},"logprobs":null,"finish_reason":"stop"}],'
    '"usage":{"prompt_tokens":17,"completion_tokens":42,"total_tokens":59,'
    '"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},'
    '"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0}},'
    '"system_fingerprint":"fp_barrage_nginx"}'
)
BODY_429 = ('{"error":{"message":"Rate limit reached for requests","type":"requests",'
            '"param":null,"code":"rate_limit_exceeded"}}')
PROMPT_TOKENS = 17
COMPLETION_TOKENS = 42

# The streamed answer of /sse and /sse_stall, in OpenAI's chat.completion.chunk
# shape. The same quoting rules as BODY apply.
SSE_TOKENS = (" a", " b", " c", " d", " e")
SSE_INTERVAL_MS = 100
SSE_STALL_S = 30
_SSE_HEAD = ('{"id":"chatcmpl-barrage-nginx-sse","object":"chat.completion.chunk",'
             '"created":1700000000,"model":"gpt-4o-mini-2024-07-18",'
             '"system_fingerprint":"fp_barrage_nginx","choices":[')
SSE_ROLE = _SSE_HEAD + ('{"index":0,"delta":{"role":"assistant","content":"","refusal":null},'
                        '"logprobs":null,"finish_reason":null}]}')
SSE_TOKEN_EVENTS = tuple(_SSE_HEAD + f'{{"index":0,"delta":{{"content":"{t}"}},'
                                     '"logprobs":null,"finish_reason":null}]}' for t in SSE_TOKENS)
SSE_FINISH = _SSE_HEAD + '{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}'
SSE_USAGE = _SSE_HEAD + (f'],"usage":{{"prompt_tokens":{PROMPT_TOKENS},'
                         f'"completion_tokens":{len(SSE_TOKENS)},'
                         f'"total_tokens":{PROMPT_TOKENS + len(SSE_TOKENS)}}}}}')
SSE_EVENTS = (SSE_ROLE,) + SSE_TOKEN_EVENTS + (SSE_FINISH, SSE_USAGE, "[DONE]")
SSE_STREAM = "".join(f"data: {e}\n\n" for e in SSE_EVENTS)
ECHO_MODULE = "/usr/lib/nginx/modules/ngx_http_echo_module.so"


class PeerError(Exception):
    pass


def find_nginx():
    return shutil.which("nginx", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _openssl(args, cwd):
    p = subprocess.run(["openssl"] + args, cwd=cwd, capture_output=True, text=True)
    if p.returncode != 0:
        raise PeerError(f"openssl {' '.join(args)} failed: {p.stderr.strip()}")
    return p.stdout


def make_pki(d, address="127.0.0.1"):
    """Test CA + leaf for localhost/127.0.0.1 (and `address`) + leaf for
    wrong.example, each checked with `openssl verify` and for the SANs the
    tests rely on."""
    leaf_san = "DNS:localhost,IP:127.0.0.1" + ("" if address == "127.0.0.1" else f",IP:{address}")
    _openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "ca.key"], d)
    _openssl(["req", "-x509", "-new", "-key", "ca.key", "-sha256", "-days", "3",
              "-subj", "/CN=barrage nginx test CA",
              "-addext", "basicConstraints=critical,CA:TRUE",
              "-addext", "keyUsage=critical,keyCertSign,cRLSign",
              "-addext", "subjectKeyIdentifier=hash",
              "-out", "ca.pem"], d)
    for name, san in (("leaf", leaf_san), ("wrong", "DNS:wrong.example")):
        cn = "localhost" if name == "leaf" else "wrong.example"
        with open(os.path.join(d, f"{name}.ext"), "w") as f:
            f.write("basicConstraints=critical,CA:FALSE\n"
                    "keyUsage=critical,digitalSignature\n"
                    "extendedKeyUsage=serverAuth\n"
                    f"subjectAltName={san}\n"
                    "subjectKeyIdentifier=hash\n"
                    "authorityKeyIdentifier=keyid\n")
        _openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                  "-out", f"{name}.key"], d)
        _openssl(["req", "-new", "-key", f"{name}.key", "-subj", f"/CN={cn}", "-out", f"{name}.csr"], d)
        _openssl(["x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                  "-CAcreateserial", "-days", "2", "-sha256", "-extfile", f"{name}.ext",
                  "-out", f"{name}.pem"], d)
        if not _openssl(["verify", "-CAfile", "ca.pem", f"{name}.pem"], d).strip().endswith("OK"):
            raise PeerError(f"openssl does not verify {name}.pem against the test CA")
    text = _openssl(["x509", "-in", "leaf.pem", "-noout", "-ext", "subjectAltName"], d)
    if "DNS:localhost" not in text or "IP Address:127.0.0.1" not in text:
        raise PeerError("leaf.pem lacks SAN DNS:localhost and IP:127.0.0.1")
    if f"IP Address:{address}" not in text:
        raise PeerError(f"leaf.pem lacks SAN IP:{address}")
    text = _openssl(["x509", "-in", "wrong.pem", "-noout", "-ext", "subjectAltName"], d)
    if "DNS:wrong.example" not in text or "localhost" in text or "127.0.0.1" in text:
        raise PeerError("wrong.pem must carry only SAN DNS:wrong.example")


def _conf(prefix, port, wrong_port, h2, echo, h2_streams=1000, keepalive_requests=1000000,
          address="127.0.0.1", h1_port=None):
    tmp = os.path.join(prefix, "tmp")
    os.makedirs(tmp, exist_ok=True)
    user = "user root root;\n" if os.geteuid() == 0 else ""
    # Stay within the hard limit: raising it needs CAP_SYS_RESOURCE, which
    # even root lacks in a container, and a failed setrlimit is an [alert].
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nofile = 45000 if hard == resource.RLIM_INFINITY else min(hard, 45000)
    load = f"load_module {ECHO_MODULE};\n" if echo else ""
    sleeps = "".join(
        f"""    location = /sleep/{ms} {{
      default_type application/json;
      echo_sleep {ms / 1000:.3f};
      echo -n '{BODY}';
    }}
""" for ms in (50, 500, 1000)) if echo else ""
    sse = _sse_locations() if echo else ""
    return f"""# generated by nginx_peer.py
{load}{user}daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile {nofile};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{
  worker_connections 20000;
}}
http {{
  access_log off;
  client_body_temp_path {tmp}/body;
  proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi;
  scgi_temp_path {tmp}/scgi;
  keepalive_requests {keepalive_requests};
  keepalive_timeout 300s;
  http2_max_concurrent_streams {h2_streams};
  ssl_protocols TLSv1.2 TLSv1.3;
  ssl_session_cache shared:barrage:10m;
  server {{
    listen {address}:{port} ssl{' http2' if h2 else ''};  # nginx 1.22: no `http2 on`
{f'    listen {address}:{h1_port} ssl;{chr(10)}' if h1_port else ''}    server_name localhost;
    ssl_certificate {prefix}/leaf.pem;
    ssl_certificate_key {prefix}/leaf.key;
    location / {{
      default_type application/json;
      return 200 '{BODY}';
    }}
    location = /close {{
      keepalive_timeout 0;
      default_type application/json;
      return 200 '{BODY}';
    }}
    location /status429 {{
      default_type application/json;
      add_header Retry-After 1 always;
      return 429 '{BODY_429}';
    }}
    location = /nginx_status {{ stub_status; }}
{sleeps}{sse}  }}
  server {{
    listen {address}:{wrong_port} ssl;
    server_name wrong.example;
    ssl_certificate {prefix}/wrong.pem;
    ssl_certificate_key {prefix}/wrong.key;
    location / {{
      default_type application/json;
      return 200 '{BODY}';
    }}
  }}
}}
"""


def _echo_event(data):
    # echo -n: no newline of its own; nginx turns the \\n escapes in a quoted
    # string into newlines. echo_flush sends it now rather than at the end.
    return f"      echo -n 'data: {data}\\n\\n';\n      echo_flush;\n"


def _sse_locations():
    # echo_read_request_body first: the client's JSON is read (and dropped)
    # before the answer starts, so an unread body can never be mistaken for
    # the next request on a keep-alive connection, and over h2 the stream's
    # DATA frames are consumed instead of reset.
    # A buffer as large as any test body keeps it in memory, not in a temp
    # file per request.
    head = """      default_type text/event-stream;
      add_header Cache-Control no-cache;
      client_body_buffer_size 1m;
      echo_read_request_body;
"""
    gap = f"      echo_sleep {SSE_INTERVAL_MS / 1000:.3f};\n"
    sse = head + _echo_event(SSE_ROLE)
    for ev in SSE_TOKEN_EVENTS:
        sse += gap + _echo_event(ev)
    sse += "".join(_echo_event(e) for e in (SSE_FINISH, SSE_USAGE, "[DONE]"))
    stall = head + _echo_event(SSE_ROLE) + _echo_event(SSE_TOKEN_EVENTS[0])
    stall += f"      echo_sleep {SSE_STALL_S};\n" + _echo_event("[DONE]")
    return f"""    location = /sse {{
{sse}    }}
    location = /sse_stall {{
{stall}    }}
"""


class NginxPeer:
    """Starts nginx in a fresh prefix (pinned to `cpu` when given); stops it
    and removes the prefix on close. `prefix` may name a directory to use."""

    def __init__(self, cpu=None, h2=False, prefix=None, log=print, h2_streams=1000,
                 keepalive_requests=1000000, address="127.0.0.1", h1_port=False):
        self.nginx = find_nginx()
        if self.nginx is None:
            raise PeerError("nginx is not installed")
        self.cpu, self.h2, self.log, self.h2_streams = cpu, h2, log, h2_streams
        self.keepalive_requests = keepalive_requests
        self.address, self.want_h1_port, self.h1_port = address, h1_port, None
        self.prefix = prefix or tempfile.mkdtemp(prefix="barrage-nginx-")
        os.makedirs(self.prefix, exist_ok=True)
        self.proc = None
        self.port = self.wrong_port = None

    @property
    def ca(self):
        return os.path.join(self.prefix, "ca.pem")

    def url(self, path="/v1/chat/completions", host="localhost"):
        # host: "localhost" names 127.0.0.1 only; pass self.address for a peer elsewhere.
        return f"https://{host}:{self.port}{path}"

    def start(self):
        make_pki(self.prefix, self.address)
        ports = set()
        while len(ports) < (3 if self.want_h1_port else 2):
            ports.add(free_port())
        self.port, self.wrong_port, *rest = sorted(ports)
        self.h1_port = rest[0] if rest else None
        echo = os.path.exists(ECHO_MODULE)
        conf = os.path.join(self.prefix, "nginx.conf")
        with open(conf, "w", encoding="utf-8") as f:
            f.write(_conf(self.prefix, self.port, self.wrong_port, self.h2, echo, self.h2_streams,
                          self.keepalive_requests, self.address, self.h1_port))
        err = os.path.join(self.prefix, "error.log")
        t = subprocess.run([self.nginx, "-t", "-p", self.prefix, "-c", conf, "-e", err],
                           capture_output=True, text=True)
        if t.returncode != 0:
            raise PeerError(f"nginx -t rejected the config: {t.stderr}")
        pin = ["taskset", "-c", str(self.cpu)] if self.cpu is not None and shutil.which("taskset") else []
        self.log(f"starting nginx on {self.address}:{self.port} (right cert) and :{self.wrong_port} "
                 f"(wrong.example){f', :{self.h1_port} (HTTP/1.1 only)' if self.h1_port else ''}"
                 f"{f', pinned to CPU {self.cpu}' if pin else ''}")
        self.proc = subprocess.Popen(pin + [self.nginx, "-p", self.prefix, "-c", conf, "-e", err],
                                     start_new_session=True, stdin=subprocess.DEVNULL)
        for port in (self.port, self.wrong_port, self.h1_port):
            if port:
                self._wait_for(port)
        return self

    def _wait_for(self, port, timeout=15.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise PeerError(f"nginx exited early with status {self.proc.returncode}")
            try:
                with socket.create_connection((self.address, port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise PeerError(f"nginx did not accept on port {port} within {timeout} s")

    def log_problems(self):
        """(whole error.log, its emerg/alert/crit lines)."""
        try:
            with open(os.path.join(self.prefix, "error.log"), errors="replace") as f:
                text = f.read()
        except OSError:
            return "", []
        return text, [l for l in text.splitlines() if re.search(r"\[(emerg|alert|crit)\]", l)]

    def stop(self, remove=True):
        master = self.proc.pid if self.proc else _read_pid(self.prefix)
        stop_pid(master)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if remove:
            shutil.rmtree(self.prefix, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _read_pid(prefix):
    try:
        with open(os.path.join(prefix, "nginx.pid")) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def children(pid):
    """The pids whose parent is pid (nginx's workers under its master)."""
    out = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # pid (comm) state ppid ...; comm may contain spaces, so split after ')'.
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            out.add(int(entry))
    return out


def stop_pid(master):
    """SIGTERM (fast shutdown) the master, then make sure its workers are gone."""
    if master is None:
        return
    workers = children(master)
    try:
        os.kill(master, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + 5
    for pid in workers | {master}:
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            try:  # reap if it is our child (the `up` command's own process is gone)
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            time.sleep(0.05)
        else:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up")
    up.add_argument("dir")
    up.add_argument("--cpu", type=int)
    up.add_argument("--h2", action="store_true")
    up.add_argument("--h2-streams", type=int, default=1000, help="http2_max_concurrent_streams")
    up.add_argument("--keepalive-requests", type=int, default=1000000,
                    help="requests per connection before nginx closes it (h2: GOAWAY)")
    up.add_argument("--address", default="127.0.0.1", help="IPv4 address to listen on (also in the leaf's SANs)")
    up.add_argument("--h1-port", action="store_true", help="also an HTTP/1.1-only port (H1_PORT)")
    down = sub.add_parser("down")
    down.add_argument("dir")
    a = ap.parse_args()
    if a.cmd == "up":
        try:
            peer = NginxPeer(cpu=a.cpu, h2=a.h2, prefix=a.dir, log=lambda m: print(m, file=sys.stderr),
                             h2_streams=a.h2_streams, keepalive_requests=a.keepalive_requests,
                             address=a.address, h1_port=a.h1_port)
        except PeerError as e:
            print(f"nginx_peer: {e}", file=sys.stderr)
            return 77
        try:
            peer.start()
        except PeerError as e:
            print(f"nginx_peer: {e}", file=sys.stderr)
            peer.stop(remove=False)
            return 1
        with open(os.path.join(a.dir, "peer.env"), "w") as f:
            f.write(f"PORT={peer.port}\nWRONG_PORT={peer.wrong_port}\nCA={peer.ca}\nPID={peer.proc.pid}\n"
                    f"ADDRESS={peer.address}\nH1_PORT={peer.h1_port or ''}\n")
        # Binary, so that C++ readers compare the exact UTF-8 bytes nginx sends.
        with open(os.path.join(a.dir, "body.json"), "wb") as f:
            f.write(BODY.encode("utf-8"))
        with open(os.path.join(a.dir, "sse.txt"), "wb") as f:
            f.write(SSE_STREAM.encode("utf-8"))
        return 0
    stop_pid(_read_pid(a.dir))
    shutil.rmtree(a.dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
