/* barrage_options.h: the one table of engine options (included by barrage.h).
 *
 * Every option is one row, and everything about options is generated from
 * it: the brg_option enum, the engine's settings struct and its defaults,
 * brg_config_set_int/_str range checks, brg_config_from_env, and the layout
 * dump the binding tests compare their own option lists with. A new option
 * is a new row with a new number; numbers are never reused.
 *
 * Columns:
 *   number   the BRG_OPT_<NAME> value (stable, see capi/ABI.md)
 *   NAME     BRG_OPT_<NAME>; brg_config_from_env reads BARRAGE_<NAME>
 *   name     snake_case spelling (the engine's field; bindings' keyword)
 *   type     INT: brg_config_set_int, decimal in the environment
 *            BOOL: brg_config_set_int 0/1; "1/0, true/false, yes/no, on/off"
 *            BACKEND: brg_config_set_int brg_backend; "auto, io_uring, epoll"
 *            STR: brg_config_set_str (NULL or "" clears)
 *   default  the value a new config holds
 *   min,max  accepted range for INT types (inclusive); 0,0 for STR
 *   alias    other environment names read when BARRAGE_<NAME> is unset,
 *            comma separated, first set wins ("" = none); aliases that end in
 *            ":s" are written in (fractional) seconds
 *   doc      what it does
 *
 * Rate limits (RATE_LIMIT per RATE_PERIOD_MS with RATE_BURST, and
 * TOKENS_PER_MINUTE with TOKENS_BURST) apply to each limit key separately:
 * by default a request's origin, or the brg_request.limit_key it names (for
 * instance one key per model). Every attempt, retries included, passes them.
 * Timeouts accept BRG_NO_TIMEOUT (INT64_MAX): anything beyond 2^40 ms means
 * no timer at all. */
#ifndef BARRAGE_OPTIONS_H
#define BARRAGE_OPTIONS_H

#include <stdint.h>

#define BRG_OPTION_TABLE(X)                                                                        \
  X(1, MAX_INFLIGHT, max_inflight, INT, 256, 1, 16777216, "MAX_CONCURRENT_LLM",                    \
    "requests in flight at once, engine-wide")                                                     \
  X(2, MAX_CONNS_PER_HOST, max_conns_per_host, INT, 0, 0, 16777216, "",                            \
    "connections to one origin; 0 = bounded by MAX_INFLIGHT only (HTTP/1.1 carries one request "   \
    "per connection, so a smaller value also caps the requests in flight to one origin)")          \
  X(3, RATE_LIMIT, rate_limit, INT, 0, 0, INT64_MAX / 2, "LLM_RATE_LIMIT",                         \
    "requests per RATE_PERIOD_MS per limit key; 0 = off")                                          \
  X(4, RATE_PERIOD_MS, rate_period_ms, INT, 60000, 1, INT64_MAX / 2, "LLM_RATE_PERIOD:s",          \
    "the period RATE_LIMIT counts over")                                                           \
  X(5, RATE_BURST, rate_burst, INT, 0, 0, INT64_MAX / 2, "",                                       \
    "most requests granted at once; 0 = RATE_LIMIT")                                               \
  X(6, TOKENS_PER_MINUTE, tokens_per_minute, INT, 0, 0, INT64_MAX / 2, "",                         \
    "LLM tokens per minute per limit key (estimated at submit, settled from usage); 0 = off")      \
  X(7, TIMEOUT_MS, timeout_ms, INT, 600000, 1, INT64_MAX, "ASYNC_LLM_TIMEOUT:s",                   \
    "per attempt, from sending the request to the last byte of the answer")                        \
  X(8, CONNECT_TIMEOUT_MS, connect_timeout_ms, INT, 10000, 1, INT64_MAX, "",                       \
    "TCP connect, proxy CONNECT and TLS handshake of one connection")                              \
  X(9, MAX_RETRIES, max_retries, INT, 2, 0, 1000, "", "retries after the first attempt")           \
  X(10, BACKOFF_BASE_MS, backoff_base_ms, INT, 500, 0, INT64_MAX / 2, "",                          \
    "first retry's backoff (doubling, full jitter)")                                               \
  X(11, BACKOFF_MAX_MS, backoff_max_ms, INT, 30000, 0, INT64_MAX / 2, "", "longest backoff")       \
  X(12, BACKEND, backend, BACKEND, 0, 0, 2, "", "brg_backend; AUTO picks io_uring when it works")  \
  X(13, CA_FILE, ca_file, STR, "", 0, 0, "", "PEM file of extra trusted CAs")                      \
  X(14, VERIFY_PEER, verify_peer, BOOL, 1, 0, 1, "",                                               \
    "1 verifies certificates and host names; 0 disables the checks")                               \
  X(15, MAX_RESPONSE_BYTES, max_response_bytes, INT, 67108864, 1, INT64_MAX / 2, "",               \
    "longest response body; longer ones end with BRG_E_TOO_LARGE")                                 \
  X(16, CACHE_PATH, cache_path, STR, "", 0, 0, "",                                                 \
    "SQLite response cache file (WAL); \"\" = no cache. Successful answers are stored; a request " \
    "whose method, URL and body match a stored answer gets it without a network call")             \
  X(17, CACHE_TTL_S, cache_ttl_s, INT, 0, 0, INT64_MAX / 2, "",                                    \
    "cache entries older than this are ignored; 0 = forever")                                      \
  X(18, ALLOW_HTTP, allow_http, BOOL, 0, 0, 1, "", "1 permits plain http:// URLs (loopback tests)") \
  X(19, MAX_PENDING, max_pending, INT, 1048576, 1, INT64_MAX / 2, "",                              \
    "requests submitted but whose results are not yet taken; more fail with BRG_E_FULL")           \
  X(20, MAX_HEADER_BYTES, max_header_bytes, INT, 65536, 256, 16777216, "",                         \
    "longest response header block")                                                               \
  X(21, IDLE_TIMEOUT_MS, idle_timeout_ms, INT, 60000, 1, INT64_MAX, "",                            \
    "a keep-alive connection idle this long is closed")                                            \
  X(22, TOKENS_BURST, tokens_burst, INT, 0, 0, INT64_MAX / 2, "",                                  \
    "most LLM tokens granted at once; 0 = TOKENS_PER_MINUTE")                                      \
  X(23, RETRY_STATUSES, retry_statuses, STR, "", 0, 0, "",                                         \
    "retryable HTTP statuses, e.g. \"408,409,429,500-504\" (\"\" = that default)")                 \
  X(24, BREAKER_THRESHOLD, breaker_threshold, INT, 20, 0, 1073741824, "",                          \
    "consecutive failed attempts on one limit key that open its circuit breaker; 0 = never. "     \
    "Only the server's failures count (not our own EMFILE or ENOMEM, cancels, deadlines, or "       \
    "429s). A request an open breaker fails fast ends with BRG_E_UNAVAILABLE and http_status 0, "   \
    "never with the server's own status")       \
  X(25, BREAKER_PAUSE_MS, breaker_pause_ms, INT, 5000, 1, INT64_MAX / 2, "",                       \
    "how long an open breaker fails requests fast before letting one probe through; the "        \
    "probe's success closes it and wakes every request waiting for that key at once")               \
  X(26, TLS_RESUME, tls_resume, BOOL, 1, 0, 1, "",                                                 \
    "1 resumes TLS sessions per origin (no full handshake once one ticket is held); 0 makes "      \
    "every connection do a full handshake")                                                        \
  X(27, MAX_HANDSHAKES, max_handshakes, INT, 64, 1, 16777216, "",                                  \
    "Full TLS handshakes in progress at once, engine-wide (resumed ones: 16 times as many); more "  \
    "connections wait, connected, in FIFO order. While an origin has no session ticket, one "       \
    "handshake to it runs first and the others wait for its ticket, then resume together. Each "    \
    "running full handshake holds ~50 KiB; a burst of them fragments the heap for good")           \
  X(28, FIRST_TOKEN_TIMEOUT_MS, first_token_timeout_ms, INT, 0, 0, INT64_MAX, "",                  \
    "streamed requests: an attempt whose first token (first non-empty delta) has not arrived "     \
    "this long after its request was sent ends with BRG_E_TIMEOUT; 0 = no such limit")             \
  X(29, STREAM_IDLE_TIMEOUT_MS, stream_idle_timeout_ms, INT, 0, 0, INT64_MAX, "",                  \
    "streamed requests: longest silence allowed before the first event and between two events; "   \
    "0 = none")                                                                                    \
  X(30, HTTP_VERSION, http_version, INT, 0, 0, 2, "",                                              \
    "0: HTTP/2 when the server offers it with ALPN, else HTTP/1.1; 1: HTTP/1.1 only; 2: HTTP/2 "   \
    "only (a server that does not agree fails the request with BRG_E_PROTOCOL, or BRG_E_TLS when " \
    "it refuses the handshake). Plain http:// URLs always use HTTP/1.1")                           \
  X(31, PROXY, proxy, STR, "", 0, 0, "https_proxy,HTTPS_PROXY",                                    \
    "HTTP proxy for https:// URLs, reached with CONNECT: \"http://[user:password@]host:port\" "    \
    "(the port is required; credentials are sent as Basic and never logged); \"\" = direct. "      \
    "http:// URLs never use it")                                                                   \
  X(32, NO_PROXY, no_proxy, STR, "", 0, 0, "no_proxy,NO_PROXY",                                    \
    "hosts that bypass PROXY, curl's NO_PROXY rules (domain suffixes, IPs, CIDR blocks, "          \
    "host:port, \"*\"); localhost is not implied")                                                 \
  X(33, DNS_SERVERS, dns_servers, STR, "", 0, 0, "",                                               \
    "DNS servers \"ip[:port],...\" ([v6]:port) asked instead of /etc/resolv.conf's (then no "      \
    "search list). Names resolve asynchronously (c-ares on the reactor), answers are cached for "  \
    "their TTL (1 s .. 300 s), failures for 5 s; /etc/hosts and resolv.conf are read once, at "    \
    "engine creation. Unresolvable names fail with BRG_E_DNS")                                    \
  X(34, MAX_SERVER_WAIT_MS, max_server_wait_ms, INT, 60000, 0, INT64_MAX, "",                      \
    "longest wait a server's answer can impose: Retry-After, retry-after-ms and "                  \
    "x-ratelimit-reset-* beyond it count as this long. The default is one minute because the "     \
    "providers' limits are per minute, so an honest server never asks for more; a longer value "   \
    "is a daily quota or a lie, and either way waiting in-process helps nobody (the request "       \
    "fails with its last answer once its attempts or its timeout run out)")                        \
  X(35, SHARED_LIMITS, shared_limits, STR, "", 0, 0, "",                                           \
    "\"redis://[user:password@]host:port[/db]\": RATE_LIMIT and TOKENS_PER_MINUTE of every limit "  \
    "key are shared by all processes (and hosts) using the same Redis and SHARED_NAMESPACE, "       \
    "instead of applying to each process. Checked at engine creation (a bad URL, password or a "    \
    "server that is not Redis fail it; an unreachable one is not an error). While Redis cannot "    \
    "answer, each process takes its share of the limit (limit / live processes it last saw) and "   \
    "rejoins when Redis returns. rediss:// needs hiredis with TLS. \"\" = per-process limits")     \
  X(36, SHARED_NAMESPACE, shared_namespace, STR, "barrage", 0, 0, "",                              \
    "prefix of the shared limits' Redis keys: unrelated jobs on one Redis use different ones")     \
  X(37, SHARED_TIMEOUT_MS, shared_timeout_ms, INT, 250, 1, 60000, "",                              \
    "a Redis round trip (or connect) slower than this counts as Redis unavailable: no request "    \
    "waits on a dead Redis longer than this before the local share takes over")                   \
  X(38, SHARED_LEASE_MS, shared_lease_ms, INT, 2000, 10, 60000, "",                                \
    "how far ahead one round trip may reserve a key's shared units: n busy processes each lease "  \
    "1/n of it per round trip; longer costs fewer round trips, shorter lets a newcomer in sooner")

#endif /* BARRAGE_OPTIONS_H */
