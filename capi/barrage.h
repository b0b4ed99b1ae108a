/* barrage.h: the one public header of libbarrage, a single-threaded engine
 * that runs very many HTTPS (LLM API) requests at once.
 *
 * Stability contract (see capi/ABI.md): names, option numbers and status
 * numbers never change meaning; the size-prefixed structs brg_request,
 * brg_result and brg_stats only ever grow at the end.
 *
 * Threads. An engine is driven by exactly one thread at a time:
 *  - inline mode (default): the "owner thread" is the thread that first calls
 *    brg_poll (with the io_uring backend the kernel binds the ring to it, so
 *    polling later from another thread fails with BRG_E_BACKEND). Every
 *    function marked [owner] must be called from it (or, before the first
 *    brg_poll, from the thread that created the engine).
 *  - threaded mode (after brg_start): the engine runs its own reactor thread.
 *    Functions marked [any] may then be called from any thread; results are
 *    taken by one consumer thread at a time ([consumer]).
 * Functions marked [any] are safe from any thread in both modes.
 *
 * Errors are negative brg_status values; brg_strerror names them. No function
 * here ever throws or aborts on bad arguments. */
#ifndef BARRAGE_H
#define BARRAGE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(BRG_BUILDING_LIBRARY)
#define BRG_EXTERN __attribute__((visibility("default")))
#else
#define BRG_EXTERN
#endif

#define BRG_VERSION_MAJOR 0
#define BRG_VERSION_MINOR 5
#define BRG_VERSION_PATCH 0
/* 0xMMmmpp: compare against brg_version_hex() to detect a runtime/header skew. */
#define BRG_VERSION_HEX ((BRG_VERSION_MAJOR << 16) | (BRG_VERSION_MINOR << 8) | BRG_VERSION_PATCH)

/* ---- status codes ----------------------------------------------------------
 * One table (X-macro) produces the enum, brg_strerror and brg_status_name, so
 * code, name and text cannot drift apart. Numbers are explicit and never
 * reused. */
#define BRG_STATUS_MAP(X)                                                          \
  X(OK, 0, "success")                                                              \
  X(INVALID, -1, "invalid argument")                                               \
  X(NOMEM, -2, "out of memory")                                                    \
  X(FULL, -3, "engine is full (too many pending requests); retry later")          \
  X(CLOSED, -4, "engine is shutting down")                                         \
  X(TIMEOUT, -5, "timed out")                                                      \
  X(CANCELLED, -6, "cancelled")                                                    \
  X(DNS, -7, "name resolution failed")                                             \
  X(CONNECT, -8, "connection failed")                                              \
  X(TLS, -9, "TLS handshake or certificate verification failed")                   \
  X(IO, -10, "connection error while sending or receiving")                        \
  X(PROTOCOL, -11, "malformed or unexpected HTTP response")                        \
  X(HTTP, -12, "non-success HTTP status")                                          \
  X(TOO_LARGE, -13, "response exceeds the configured size limit")                  \
  X(BACKEND, -14, "reactor backend failure")                                       \
  X(NOTFOUND, -15, "no such request")                                              \
  X(UNAVAILABLE, -16, "circuit breaker open: too many consecutive failures for this limit key")

typedef enum brg_status {
#define BRG_STATUS_ENUM_(name, code, text) BRG_E_##name = (code),
  BRG_STATUS_MAP(BRG_STATUS_ENUM_)
#undef BRG_STATUS_ENUM_
} brg_status;
#define BRG_OK BRG_E_OK

/* ---- configuration ----------------------------------------------------------
 * Every option, its type, default, range, environment names and meaning is
 * one row of BRG_OPTION_TABLE in barrage_options.h; brg_option is generated
 * from it. brg_config_from_env reads BARRAGE_<NAME> for every option (e.g.
 * BARRAGE_MAX_INFLIGHT), else the row's aliases (MAX_CONCURRENT_LLM, ...). */
#include "barrage_options.h"

typedef enum brg_option {
#define BRG_OPTION_ENUM_(number, NAME, ...) BRG_OPT_##NAME = (number),
  BRG_OPTION_TABLE(BRG_OPTION_ENUM_)
#undef BRG_OPTION_ENUM_
} brg_option;

typedef enum brg_backend {
  BRG_BACKEND_AUTO = 0,
  BRG_BACKEND_IO_URING = 1,
  BRG_BACKEND_EPOLL = 2
} brg_backend;

typedef struct brg_config brg_config;
typedef struct brg_engine brg_engine;

/* [any] Returns a config with defaults, or NULL when out of memory. Owned by
 * the caller; free with brg_config_free. A config is not shared between
 * threads without external synchronisation. */
BRG_EXTERN brg_config *brg_config_new(void);
/* [any] 0, or BRG_E_INVALID for an unknown option, wrong type or a value out
 * of range. Nothing is changed on error. */
BRG_EXTERN int brg_config_set_int(brg_config *cfg, brg_option opt, int64_t value);
/* [any] Copies value (NULL clears it). 0 or BRG_E_INVALID. */
BRG_EXTERN int brg_config_set_str(brg_config *cfg, brg_option opt, const char *value);
/* [any] Reads BARRAGE_* and the common wrapper names listed above. Returns 0,
 * or BRG_E_INVALID when a set variable does not parse (the options read
 * before it stay applied; the message names the variable when err/err_len
 * is given to brg_config_error). */
BRG_EXTERN int brg_config_from_env(brg_config *cfg);
/* [any] Text of the last error a brg_config_* call on cfg produced ("" if none).
 * Owned by cfg; valid until the next call on cfg. */
BRG_EXTERN const char *brg_config_error(const brg_config *cfg);
/* [any] NULL is a no-op. */
BRG_EXTERN void brg_config_free(brg_config *cfg);

/* [any] Creates an engine from cfg (NULL = defaults); cfg is copied and may be
 * freed afterwards. On success *out owns the engine and 0 is returned; on
 * failure *out is NULL and a negative status is returned (BRG_E_BACKEND when
 * the requested backend cannot start, BRG_E_TLS when the CA file cannot be
 * loaded, BRG_E_INVALID for bad arguments). The engine raises RLIMIT_NOFILE
 * to its hard limit. */
BRG_EXTERN int brg_engine_new(const brg_config *cfg, brg_engine **out);
/* [owner]; after brg_start any one thread, once no other call on this engine
 * is running. Stops the reactor thread if started, cancels every request left,
 * frees all results not yet taken and the engine itself. NULL is a no-op.
 * Results already returned by brg_results stay valid until brg_result_free. */
BRG_EXTERN void brg_engine_free(brg_engine *e);

/* ---- requests -------------------------------------------------------------- */
typedef struct brg_header {
  const char *name;
  const char *value;
} brg_header;

/* Server-sent events: the body must ask for a stream itself ("stream": true).
 * Every data event of a 2xx text/event-stream answer becomes one
 * BRG_RES_PARTIAL result, in order, before the final result (whose body is
 * the whole raw event stream). OpenAI's "[DONE]" is not delivered. Once a
 * partial result went out, a failed attempt is not retried (the caller would
 * see events twice): the final result carries the error. */
#define BRG_REQ_STREAM 0x1u
#define BRG_REQ_NO_RETRY 0x2u /* never retry this request */
#define BRG_REQ_NO_CACHE 0x4u /* neither read nor fill the response cache */
#define BRG_REQ_HEADERS 0x8u  /* since 0.4.0: the result carries the answer's header fields (brg_result.headers) */
/* Since 0.5.0, with BRG_REQ_STREAM only (else BRG_E_INVALID): once the answer
 * is known to be a 2xx event stream, its bytes are not kept, so the final
 * result's body is "" (its events went out as partials) and a long stream
 * costs no memory for the events already delivered. Such a body is then
 * bounded by BRG_OPT_MAX_RESPONSE_BYTES per event, not in total; the
 * timeouts bound how long it lasts. Error answers and answers that are not
 * an event stream keep their body as usual. */
#define BRG_REQ_NO_STREAM_BODY 0x10u

/* A timeout or deadline of "none". Any timeout or deadline field (and
 * BRG_OPT_TIMEOUT_MS) set to this, or to anything beyond 2^40 ms (about 34
 * years), means no timer at all, even where an engine option sets one.
 *
 * Timers fire between reactor turns: a request ends at its deadline or after
 * the turn running then, never before. Each phase of a turn (I/O dispatch,
 * requests moving, connections opening or closing) works for about 1 ms at
 * most and leaves the rest to the next turn, which then does not sleep, so
 * a deadline holds within a few ms even while hundreds of TLS handshakes
 * start or complete at once. */
#define BRG_NO_TIMEOUT INT64_MAX

/* One rule for the fields below: 0 means "the engine's setting" (the BRG_OPT_*
 * option named, or none where no option exists: deadline_ms, token_estimate,
 * group), except max_retries, where 0 means no retries and -1 the engine's
 * setting (0 retries is a real choice, and the field predates this rule). To
 * switch a timeout off for one request, set BRG_NO_TIMEOUT. Negative values
 * are invalid (max_retries: below -1).
 *
 * Attempts (brg_result.attempts) count the attempts the rate limiter granted:
 * a re-send of a request the server never processed (HTTP/2 REFUSED_STREAM,
 * or above a GOAWAY's last stream id) is free and not counted, and neither is
 * the one retry on a fresh connection after a keep-alive connection the
 * server had already closed. Free re-sends of one request stop at 32 or at its
 * deadline; past that the failure is charged like any other. A re-send goes
 * to whichever connection of the origin has room first: the same HTTP/2
 * connection when it still takes streams, else another. */
typedef struct brg_request {
  uint32_t size;  /* must be sizeof(brg_request) of the caller's header version */
  uint32_t flags; /* BRG_REQ_* */
  const char *method;        /* NULL = "POST" */
  const char *url;           /* https://host[:port]/path?query */
  const brg_header *headers; /* n_headers entries; names and values NUL-terminated */
  uint32_t n_headers;
  const void *body;
  size_t body_len;
  uint64_t user_data;      /* returned untouched in the result */
  int64_t timeout_ms;      /* per attempt, and the longest wait for its limit key before an
                              attempt (then BRG_E_TIMEOUT, saying so); 0 = BRG_OPT_TIMEOUT_MS */
  int64_t deadline_ms;     /* whole request incl. retries, from submit; 0 = none */
  int32_t max_retries;     /* -1 = BRG_OPT_MAX_RETRIES; 0 = none (see the rule above) */
  uint32_t token_estimate; /* for the tokens-per-minute bucket; 0 = estimate from the body
                              (bytes / 4 + max_tokens or max_completion_tokens) */
  /* -- since 0.1.0, second part: read only when size covers it -- */
  const char *limit_key;   /* rate-limit key (copied); NULL = the URL's origin */
  uint64_t group;          /* 0 = none; see brg_cancel_group and brg_group_deadline */
  /* -- since 0.2.0, third part: read only when size covers it -- */
  int64_t first_token_timeout_ms; /* BRG_REQ_STREAM: 0 = BRG_OPT_FIRST_TOKEN_TIMEOUT_MS */
  int64_t stream_idle_timeout_ms; /* BRG_REQ_STREAM: 0 = BRG_OPT_STREAM_IDLE_TIMEOUT_MS */
} brg_request;

/* [owner] in inline mode, [any] after brg_start. Validates and copies the
 * request (URL, headers, body: nothing is referenced after return). On
 * success stores the request id in *id_out (if not NULL) and returns 0; exactly
 * one final result will later carry that id. On failure (BRG_E_INVALID with a
 * reason from brg_last_error, BRG_E_FULL when BRG_OPT_MAX_PENDING requests are
 * pending, BRG_E_CLOSED while shutting down, BRG_E_NOMEM) no result ever
 * appears for it. */
BRG_EXTERN int brg_submit(brg_engine *e, const brg_request *req, uint64_t *id_out);
/* [owner] in inline mode, [any] after brg_start. Cancels a pending request;
 * its result has status BRG_E_CANCELLED. On the wire, before this call
 * returns (inline mode) or within the reactor's current turn (threaded): an
 * HTTP/1.1 request in flight has its connection reset (an answer half-read
 * cannot be resynchronised); an HTTP/2 request has its stream reset
 * (RST_STREAM CANCEL) and the connection keeps serving the others. A request
 * still waiting (for a slot, its rate limit or a connection) just leaves. Returns 0, or BRG_E_NOTFOUND when no request with that id
 * was ever submitted or (inline mode) it has already finished. In threaded
 * mode a cancel that races completion is harmless: the result is whichever
 * happened first. */
BRG_EXTERN int brg_cancel(brg_engine *e, uint64_t id);
/* [owner] Inline mode: runs one reactor turn, waiting at most timeout_ms
 * (-1 = until something happens, 0 = do not wait). A turn that had more I/O
 * than it dispatched leaves brg_backend_timeout at 0. Returns the number of
 * results waiting for brg_results, or a negative status (BRG_E_INVALID after
 * brg_start, BRG_E_BACKEND on a reactor failure). */
BRG_EXTERN int brg_poll(brg_engine *e, int timeout_ms);

#define BRG_RES_PARTIAL 0x1u /* one event of a streamed answer (body = the event's data);
                                more results with the same id follow, the last without this
                                flag. Partial results do not count towards BRG_OPT_MAX_PENDING */
#define BRG_RES_CACHED 0x2u  /* served from the response cache (BRG_OPT_CACHE_PATH), no network call */

typedef struct brg_result {
  uint32_t size; /* sizeof(brg_result) of the library that produced it */
  uint32_t flags;
  uint64_t id;
  uint64_t user_data;
  int32_t status;      /* BRG_OK or a negative brg_status */
  int32_t http_status; /* 0 when no response arrived */
  uint32_t attempts;   /* attempts made, >= 1 once a connection was tried */
  uint32_t reserved0;
  const char *body; /* response body (also on HTTP errors), NUL-terminated; owned by the result */
  size_t body_len;
  const char *error; /* never NULL; "" on success; owned by the result */
  int64_t queued_us; /* submit -> first attempt granted an in-flight slot */
  int64_t ttfb_us;   /* submit -> first response byte of the last attempt; -1 none */
  int64_t total_us;  /* submit -> result */
  int64_t prompt_tokens;     /* from "usage" (OpenAI or Anthropic naming); -1 unknown */
  int64_t completion_tokens; /* -1 unknown */
  int64_t sent_us;           /* submit -> the last attempt's request handed to its connection; -1 none */
  const char *request_id;    /* the answer's x-request-id header (the provider's id for support
                                requests); "" when absent; never NULL; owned by the result */
  /* -- since 0.2.0: present when size covers them -- */
  int64_t ttft_us;     /* BRG_REQ_STREAM: submit -> first non-empty delta of the last attempt; -1 none */
  uint32_t events;     /* BRG_REQ_STREAM: data events delivered so far (a partial: its 1-based index) */
  uint32_t reserved1;
  int64_t gap_max_us;  /* BRG_REQ_STREAM: longest gap between two token events (so far); -1 none */
  int64_t gap_mean_us; /* BRG_REQ_STREAM: mean gap between token events (so far); -1 none */
  /* -- since 0.4.0: present when size covers them -- */
  int64_t retry_after_ms; /* the latest answer's Retry-After (or retry-after-ms) as the server sent it, in
                             ms (an HTTP-date: ms until then, 0 if past); -1 none. Not clamped: the engine's
                             own waits obey at most BRG_OPT_MAX_SERVER_WAIT_MS. -1 on partials and cached
                             results */
  const char *headers; /* BRG_REQ_HEADERS: the latest answer's header fields, "name: value\n" each, names
                          in lower case, in the order received (HTTP/2 pseudo-headers left out); on a
                          stream's first partial and its final result. "" otherwise (and on cached
                          results); never NULL; owned by the result */
  size_t headers_len;
} brg_result;

/* [consumer] Moves up to max finished results into out[] (oldest first) and
 * returns how many. Each one is owned by the caller; free with
 * brg_result_free. Never blocks. */
BRG_EXTERN size_t brg_results(brg_engine *e, brg_result **out, size_t max);
/* [any] NULL is a no-op. */
BRG_EXTERN void brg_result_free(brg_result *r);

/* [owner] A descriptor that becomes readable when brg_poll has work to do, for
 * embedding in another event loop (libuv's uv_backend_fd pattern); -1 after
 * brg_start. Do not read from or close it. */
BRG_EXTERN int brg_backend_fd(const brg_engine *e);
/* [owner] in inline mode, [any] after brg_start. Cancels every pending request
 * of the group (each gets a BRG_E_CANCELLED result). Returns how many were
 * pending (0 is not an error), or BRG_E_INVALID for group 0. In threaded mode
 * the count is not known yet and 0 is returned. */
BRG_EXTERN int brg_cancel_group(brg_engine *e, uint64_t group);
/* [owner] in inline mode, [any] after brg_start. Gives the group one shared
 * deadline, deadline_ms from now: every request of the group pending then, or
 * submitted before it passes, ends with BRG_E_TIMEOUT at that instant if it
 * has not finished (a request's own earlier deadline still applies). A later
 * call may move it. 0, or BRG_E_INVALID (group 0, deadline_ms < 0). */
BRG_EXTERN int brg_group_deadline(brg_engine *e, uint64_t group, int64_t deadline_ms);

/* [owner] Milliseconds until the next timer needs brg_poll; 0 when work is
 * already due; -1 when no timer is armed. */
BRG_EXTERN int brg_backend_timeout(const brg_engine *e);

/* [owner] Starts the engine's own reactor thread (threaded mode). Afterwards
 * brg_submit and brg_cancel are [any], brg_poll returns BRG_E_INVALID. Returns
 * 0, BRG_E_INVALID when already started, BRG_E_BACKEND if the thread cannot
 * start. */
BRG_EXTERN int brg_start(brg_engine *e);
/* [any] A descriptor (eventfd) that is readable while results are waiting for
 * brg_results, in both modes. Do not read from or close it. */
BRG_EXTERN int brg_results_fd(const brg_engine *e);

/* No typedef: the function brg_stats takes the struct's name, as DESIGN.md
 * fixes both. Write `struct brg_stats`. */
struct brg_stats {
  uint32_t size;    /* set by the caller to sizeof(brg_stats); fields past it are not written */
  int32_t backend;  /* brg_backend actually in use */
  uint64_t submitted, completed, failed, cancelled, retried, timed_out;
  uint64_t queued;     /* waiting for an in-flight slot */
  uint64_t in_flight;  /* holding an in-flight slot */
  uint64_t connections_open, connections_idle, connections_opened, tls_resumed;
  uint64_t bytes_sent, bytes_received;
  uint64_t results_waiting;
  uint64_t waiting_rate;       /* wait for their limit key's buckets, cooldown or breaker probe;
                                  they hold no in-flight slot, so a slow key never stalls others */
  uint64_t throttled;          /* 429 answers seen */
  uint64_t cooling_keys;       /* limit keys in cooldown after a 429/503 now */
  uint64_t breaker_open_keys;  /* limit keys whose circuit breaker is open now */
  uint64_t rejected;           /* requests failed fast with BRG_E_UNAVAILABLE */
  uint64_t prompt_tokens, completion_tokens; /* from "usage" of finished answers */
  uint64_t cache_hits;         /* results served from the response cache */
  /* 0.4.0: BRG_OPT_SHARED_LIMITS (0 without it). */
  uint64_t shared_round_trips;   /* Redis round trips answered */
  uint64_t shared_fallback_keys; /* shared limit keys on their local share now (Redis unavailable) */
};

/* [owner]; [any] in threaded mode, where figures may be a moment old.
 * Counters move when the reactor handles an event: a request counts as
 * submitted once a reactor turn (brg_poll, or the engine thread) took it in.
 * Set out->size first; fields past it are left alone. 0, or BRG_E_INVALID. */
BRG_EXTERN int brg_stats(const brg_engine *e, struct brg_stats *out);

/* [any] Static text for a status ("unknown status" for unknown codes). */
BRG_EXTERN const char *brg_strerror(int status);
/* [any] Static name such as "BRG_E_TIMEOUT". */
BRG_EXTERN const char *brg_status_name(int status);
/* [owner] Why the last brg_submit/brg_cancel/brg_engine_new on this thread
 * failed (thread-local; "" when it did not). Valid until the next call. */
BRG_EXTERN const char *brg_last_error(void);
/* [any] The run-time library version as text, e.g. "0.4.0"; static storage. */
BRG_EXTERN const char *brg_version(void);
/* [any] BRG_VERSION_HEX of the library at run time. */
BRG_EXTERN uint32_t brg_version_hex(void);

/* ---- batch runner -----------------------------------------------------------
 * Runs an OpenAI Batch API input file (JSONL: custom_id, method, url, body per
 * line) through an engine and appends Batch API output lines to a file that
 * doubles as the checkpoint. Output line (one JSON object per line):
 *   {"id":"batch_req_...","custom_id":"...",
 *    "response":{"status_code":200,"request_id":"...","body":<answer, byte-exact>} | null,
 *    "error":null | {"code":"...","message":"..."},
 *    "barrage":{"line":N,"attempts":1,"cached":false,"latency_ms":..,"ttfb_ms":..,
 *               "prompt_tokens":..,"completion_tokens":..,"model":"..","cost_usd":..,
 *               "finished_unix_ms":..}}
 * "error" is null exactly when the request succeeded (2xx). HTTP failures keep
 * their response and set error.code "http_error"; transport failures have
 * response null and error.code the lower-case status name ("timeout",
 * "connect", ...); invalid input lines have error.code "invalid_request" and
 * barrage.line, with custom_id null when it is missing. */
#define BRG_BATCH_RESUME 0x1u  /* skip custom_ids (and invalid line numbers) already in the output */
#define BRG_BATCH_ORDERED 0x2u /* write in input order (bounded reorder buffer) */
#define BRG_BATCH_DRY_RUN 0x4u /* validate the whole input, count, send nothing, write nothing */

typedef struct brg_batch_options {
  uint32_t size;        /* sizeof(brg_batch_options) */
  uint32_t flags;       /* BRG_BATCH_* */
  const char *input_path;
  const char *output_path;     /* appended to (created if missing) */
  const char *endpoint;        /* base for relative urls; NULL: $OPENAI_BASE_URL, else https://api.openai.com */
  const char *api_key_env;     /* NULL: "OPENAI_API_KEY"; value sent as "Authorization: Bearer"; never logged */
  const brg_header *headers;   /* extra headers for every request (copied) */
  uint32_t n_headers;
  uint32_t reorder_window;     /* BRG_BATCH_ORDERED: most results held back; 0 = 10000 */
  const char *prices_path;     /* JSON {"model":{"input":usd_per_1M,"output":usd_per_1M}}; NULL = built-in */
  int64_t deadline_ms;         /* per request; 0 = none */
  int32_t max_retries;         /* -1 = engine default */
  uint32_t shard_index;        /* with shard_count > 1: run only lines whose index % count == index */
  uint32_t shard_count;
  uint32_t reserved0;
} brg_batch_options;

typedef struct brg_batch_progress {
  uint32_t size;        /* set by the library */
  uint32_t reserved0;
  uint64_t total;       /* lines to run in this invocation (after resume/shard skips) */
  uint64_t done;        /* results written */
  uint64_t ok, failed, cached, invalid;
  uint64_t skipped;     /* already in the output (resume) or in another shard */
  uint64_t in_flight;
  int64_t prompt_tokens, completion_tokens;
  double cost_usd;
  double elapsed_s;
} brg_batch_progress;

/* Called on the running thread about every 100 ms and once at the end.
 * Return 0 to go on, 1 to stop starting new requests (in-flight ones finish
 * and are written), 2 to abort at once (in-flight ones are cancelled and not
 * written, so a resume runs them again). */
typedef int (*brg_batch_progress_fn)(const brg_batch_progress *p, void *user);

/* [owner] Runs the batch to the end on the calling thread (inline mode: the
 * engine must not have been started). Returns 0 when the batch ran (request
 * failures are counted in *final, which may be NULL), or a negative status
 * with brg_last_error set: BRG_E_INVALID for unusable options, an unreadable
 * input, an unwritable output or a duplicate custom_id (found before anything
 * is sent), BRG_E_CANCELLED when aborted. */
BRG_EXTERN int brg_batch_run(brg_engine *e, const brg_batch_options *opts, brg_batch_progress_fn progress,
                             void *user, brg_batch_progress *final_out);

#ifdef __cplusplus
}
#endif
#endif /* BARRAGE_H */
