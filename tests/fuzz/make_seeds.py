#!/usr/bin/env python3
"""Writes the seed corpora in tests/fuzz/corpus/<target>/ (run once; the
files are committed). Each seed is a small real example in the target's
input layout: parameter bytes first (flags, split points), then the payload."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def put(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def splits(a, b):
    return struct.pack("<HH", a, b)


def lp(s):  # one length byte, then the bytes
    s = s.encode() if isinstance(s, str) else s
    return bytes([len(s)]) + s


# 1. HTTP/1.1 responses: flags, two split points, bytes.
responses = {
    "content_length": b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}",
    "chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n",
    "interim_100": b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 429 Too Many Requests\r\nRetry-After: 2\r\nContent-Length: 0\r\n\r\n",
    "close_delimited": b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nbody until close",
    "keep_alive_next": b"HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\r\nHTTP/1.1 200 OK\r\n",
}
for i, (name, body) in enumerate(responses.items()):
    put("response_parser", name, bytes([0]) + splits(7 + i, 40 + i) + body)
put("response_parser", "small_limits", bytes([3, 10, 4]) + splits(20, 60) + responses["content_length"])
put("response_parser", "head", bytes([4]) + splits(5, 30) + b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")

# 2. SSE bodies: flags (bit 0: small max_event_bytes, one more byte), splits.
sse = {
    "openai_chat": b'data: {"choices":[{"delta":{"content":"Hi"}}]}\n\n'
                   b'data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2}}\n\ndata: [DONE]\n\n',
    "anthropic": b'event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":9}}}\n\n'
                 b'event: content_block_delta\ndata: {"type":"content_block_delta","delta":{"type":"text_delta","text":"x"}}\n\n'
                 b'event: message_delta\ndata: {"type":"message_delta","usage":{"output_tokens":3}}\n\n',
    "responses_api": b'event: response.output_text.delta\r\ndata: {"type":"response.output_text.delta","delta":"a"}\r\n\r\n'
                     b'event: response.completed\r\ndata: {"type":"response.completed","response":{"usage":{"input_tokens":1,"output_tokens":2}}}\r\n\r\n',
    "fields": b"\xef\xbb\xbf: comment\rid: 7\rretry: 1500\revent: ping\rdata: a\rdata: b\r\rdata:c\n",
}
for i, (name, body) in enumerate(sse.items()):
    put("sse_stream", name, bytes([0]) + splits(3 + i, 50 + i) + body)
put("sse_stream", "small_limit", bytes([1, 8]) + splits(4, 20) + sse["openai_chat"])

# 3. Rate headers: mode, 8 bytes of clock, then a "\n" b.
now = struct.pack(">q", 1764800000000)
for name, a, b in [("durations", b"6m0s", b"1h2m3.5s"), ("counts", b" 59 ", b"20ms"),
                   ("retry_after_date", b"Sun, 06 Nov 2033 08:49:37 GMT", b""),
                   ("retry_after_ms", b"120", b"1500.5"), ("rfc850", b"Sunday, 06-Nov-94 08:49:37 GMT", b"x"),
                   ("asctime", b"Sun Nov  6 08:49:37 2033", b"250us")]:
    put("rate_headers", name, bytes([1]) + now + a + b"\n" + b)

# 4. URL + request: flags (bit 0 allows http), url, method, headers, body.
def request(url, method, headers, body, flags=1):
    out = bytes([flags]) + lp(url) + lp(method) + bytes([len(headers)])
    for n, v in headers:
        out += lp(n) + lp(v)
    return out + body

put("request_writer", "chat_post", request("https://api.openai.com/v1/chat/completions", "POST",
    [("Authorization", "Bearer sk-test"), ("X-Trace", "a b\tc")], b'{"model":"m","messages":[]}'))
put("request_writer", "ipv6_query", request("http://[::1]:8080/v1/models?x=1#frag", "GET", [("Accept", "*/*")], b""))
put("request_writer", "userinfo_port", request("https://user@Example.COM:443/%20a?q", "PUT", [("Content-Type", "text/plain")], b"x"))
put("request_writer", "bad_header", request("https://h/", "POST", [("X-A", "v\r\nX-Injected: 1")], b"{}"))
put("request_writer", "te_trailers", request("https://h.example/p", "DELETE", [("TE", "trailers"), ("x-b", "")], b""))

# 5. Proxy + CONNECT: flags (bit 0: EOF at the end), port, proxy url, no_proxy, host, auth, splits, reply.
def connect(port, proxy, no_proxy, host, auth, reply, flags=1):
    return bytes([flags]) + struct.pack("<H", port) + lp(proxy) + lp(no_proxy) + lp(host) + lp(auth) + splits(5, 30) + reply

put("connect_proxy", "established", connect(443, "http://user:p%40ss@127.0.0.1:3128/", "localhost,.internal,10.0.0.0/8",
    "api.openai.com", "Basic dXNlcjpwYXNz", b"HTTP/1.1 200 Connection established\r\nProxy-Agent: x\r\n\r\n\x16\x03\x01"))
put("connect_proxy", "refused_407", connect(8443, "[::1]:3128", "*", "[2001:db8::1]", "",
    b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n"))
put("connect_proxy", "interim_bare_lf", connect(443, "proxy.example:8080", "example.com:443 [::1]:80", "10.1.2.3", "",
    b"HTTP/1.1 100 Continue\n\nHTTP/1.0 200 OK\nContent-Length: 5\n\n", flags=0))
put("connect_proxy", "url_host", connect(443, "", "", "https://API.example.com:8443/v1", "x",
    b"HTTP/1.1 502 Bad Gateway\r\n\r\n"))

# 6. Hosts files: the file's bytes.
put("hosts_file", "debian", b"127.0.0.1\tlocalhost\n127.0.1.1\tbox.example box\n\n# The following lines are desirable for IPv6\n"
    b"::1     localhost ip6-localhost ip6-loopback\nff02::1 ip6-allnodes\nff02::2 ip6-allrouters\n")
put("hosts_file", "mixed", b"10.0.0.1 API.example.com # comment\n2001:db8::1 api.example.com\n10.0.0.2 api.example.com\n"
    b"fe80::1%eth0 scoped\n10.0.0.1 api.example.com\n  \t\n10.0.0.3")

# 7. HTTP/2 server bytes: flags (bits 0-1: 1-3 requests, 2: cancel the last, 3/4/5: small limits), splits.
def frame(ftype, flags, sid, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload

SETTINGS, HEADERS, DATA, RST, GOAWAY, PING, WINDOW = 4, 1, 0, 3, 7, 6, 8
srv_settings = frame(SETTINGS, 0, 0, struct.pack(">HI", 3, 100)) + frame(SETTINGS, 1, 0, b"")
status200 = b"\x88"  # HPACK static index 8: ":status: 200"
ctype = b"\x5f\x10application/json"  # literal with incremental indexing, name index 31
ok_response = srv_settings + frame(HEADERS, 4, 1, status200 + ctype) + frame(DATA, 1, 1, b'{"ok":true}')
put("h2_session", "one_ok", bytes([0]) + splits(9, 30) + ok_response)
put("h2_session", "two_streams", bytes([1]) + splits(20, 40) + srv_settings
    + frame(HEADERS, 4, 3, b"\x8d") + frame(HEADERS, 4, 1, status200) + frame(DATA, 0, 1, b"ab")
    + frame(DATA, 1, 3, b"") + frame(DATA, 1, 1, b"cd"))
put("h2_session", "rst_and_goaway", bytes([2]) + splits(15, 45) + srv_settings
    + frame(RST, 0, 3, struct.pack(">I", 7)) + frame(HEADERS, 5, 1, status200)
    + frame(GOAWAY, 0, 0, struct.pack(">II", 1, 0)))
put("h2_session", "interim_trailers", bytes([0]) + splits(9, 60) + srv_settings
    + frame(HEADERS, 4, 1, b"\x08\x03100") + frame(HEADERS, 4, 1, status200) + frame(DATA, 0, 1, b"x" * 20)
    + frame(PING, 0, 0, b"12345678") + frame(WINDOW, 0, 0, struct.pack(">I", 1000))
    + frame(HEADERS, 5, 1, b"\x40\x05x-end\x01y"))
put("h2_session", "limits_cancel", bytes([1 | 4 | 8]) + splits(9, 30) + ok_response)

# 8. Batch: flags (bit 7: resume scan of the payload; bits 0-1: endpoint), payload.
put("batch_input", "chat_line", bytes([0]) + b'{"custom_id":"r1","method":"POST","url":"/v1/chat/completions",'
    b'"body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}}\n  \t')
put("batch_input", "absolute_url", bytes([1]) + b'{"custom_id":"r\\u00e92","method":"POST","url":"http://127.0.0.1:8080/v1/embeddings",'
    b'"body" : {"model":"e","input":["a"]} , "body":{"x":1}}\n{"custom_id":"","method":"GET"}')
put("batch_input", "invalid", bytes([2]) + b'{"custom_id":7,"url":"/x"}\n[1,2]')
put("batch_input", "resume_torn", bytes([0x80]) + b'{"id":"batch_req_1","custom_id":"a","response":{"status_code":200},"error":null}\n'
    b'{"id":"batch_req_2","custom_id":null,"response":null,"error":{"code":"invalid"},"barrage":{"line":4}}\n'
    b'{"id":"batch_req_3","custom_id":"c","resp')
put("batch_input", "resume_unreadable", bytes([0x80]) + b'not json\n{"custom_id":"b"}\n\n{"custom_id":"c"} x\n')

# 9. DNS answers: a flag byte (bit 0: send each reply twice, altered), the
# length of the reply to the A query (u16 little-endian), that reply, then
# the reply to the AAAA query. The harness patches the query ID in.
def dns_name(name):
    return b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"


def dns_reply(qtype, rdatas, rcode=0, cname=None, ttl=60, tc=False):
    flags = 0x8180 | rcode | (0x0200 if tc else 0)
    answers = []
    owner = b"\xc0\x0c"  # points at the question's name
    if cname:
        target = dns_name(cname)
        answers.append(owner + struct.pack(">HHIH", 5, 1, ttl, len(target)) + target)
        owner = b"\xc0" + bytes([12 + len(dns_name("fuzz.test")) + 4 + 12])  # the CNAME's target
    for rd in rdatas:
        answers.append(owner + struct.pack(">HHIH", qtype, 1, ttl, len(rd)) + rd)
    head = struct.pack(">HHHHHH", 0, flags, 1, len(answers), 0, 0)
    return head + dns_name("fuzz.test") + struct.pack(">HH", qtype, 1) + b"".join(answers)


def dns_seed(name, a_reply, aaaa_reply, twice=False):
    put("dns_answer", name, bytes([1 if twice else 0]) + struct.pack("<H", len(a_reply)) + a_reply + aaaa_reply)


v4 = [bytes([192, 0, 2, 1]), bytes([192, 0, 2, 2])]
v6 = [bytes.fromhex("20010db8000000000000000000000001")]
dns_seed("both", dns_reply(1, v4), dns_reply(28, v6))
dns_seed("v4_only", dns_reply(1, v4[:1]), dns_reply(28, []))
dns_seed("nxdomain", dns_reply(1, [], rcode=3), dns_reply(28, [], rcode=3))
dns_seed("cname", dns_reply(1, v4, cname="real.test"), dns_reply(28, v6, cname="real.test"))
dns_seed("truncated", dns_reply(1, v4, tc=True), dns_reply(28, v6, tc=True))
dns_seed("twice", dns_reply(1, v4), dns_reply(28, v6), twice=True)
dns_seed("garbage", b"\0\0\x81\x80\0\x01\0\x05", b"\xff" * 40)
