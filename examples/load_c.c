/* load_c.c: the acceptance program. Fires N chat-completion POSTs at one URL
 * with INFLIGHT of them in flight, drives the engine inline with brg_poll,
 * checks every single result and prints one summary line:
 *
 *   requests=N ok=K errors=E seconds=S req_per_s=R cpu_us_per_req=C
 *   maxrss_kb=M backend=NAME conns_opened=X tls_resumed=Y [inflight_ms=T]
 *
 * It is plain C99 that includes only <barrage.h> (plus libc) and builds with
 *   cc -std=c99 load_c.c $(pkg-config --cflags --libs barrage)
 * so it doubles as proof that the installed library is usable from C.
 *
 * Usage: load_c URL N INFLIGHT BACKEND(auto|io_uring|epoll) [CA_FILE]
 * BARRAGE_<OPTION> environment variables apply (see barrage.h).
 * Checks, per result: status BRG_OK, HTTP 200, body byte-exact equal to
 * $EXPECT_BODY when set (non-empty otherwise), prompt/completion tokens equal
 * to $EXPECT_PROMPT / $EXPECT_COMPLETION when set (>= 0 otherwise), and that
 * every request gets exactly one result. Exit status 0 only if all N pass.
 * With LOAD_RAMP=1 it also prints inflight_ms: when the INFLIGHT-th request
 * was handed to its connection (its submit time plus the result's sent_us),
 * from the first submit: how long the ramp to INFLIGHT in flight took
 * (bench/far). It keeps N times then, so it is off by default. */
#define _POSIX_C_SOURCE 200809L

#include <barrage.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>

/* A small, fixed chat-completion request body. */
static const char kBody[] =
    "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\","
    "\"content\":\"Say hello in one word.\"}],\"max_tokens\":16}";

/* How many failing results are described on stderr before going quiet. */
#define MAX_REPORTED_FAILURES 10

static int parse_i64(const char *s, int64_t min, int64_t max, int64_t *out) {
  char *end = NULL;
  long long v;
  errno = 0;
  v = strtoll(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v < min || v > max) return 0;
  *out = (int64_t)v;
  return 1;
}

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t cpu_us(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
         (int64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static const char *backend_name(int32_t b) {
  switch (b) {
    case BRG_BACKEND_IO_URING: return "io_uring";
    case BRG_BACKEND_EPOLL: return "epoll";
    case BRG_BACKEND_AUTO: return "auto";
    default: return "unknown";
  }
}

static void usage(void) {
  fprintf(stderr,
          "usage: load_c URL N INFLIGHT BACKEND(auto|io_uring|epoll) [CA_FILE]\n"
          "env: EXPECT_BODY, EXPECT_PROMPT, EXPECT_COMPLETION (optional exact checks)\n");
}

int main(int argc, char **argv) {
  const char *url, *ca_file = NULL;
  const char *expect_body = getenv("EXPECT_BODY");
  const char *env_prompt = getenv("EXPECT_PROMPT");
  const char *env_completion = getenv("EXPECT_COMPLETION");
  int64_t n, inflight, expect_prompt = -1, expect_completion = -1;
  size_t expect_len = expect_body ? strlen(expect_body) : 0;
  int backend;
  brg_config *cfg;
  brg_engine *e = NULL;
  unsigned char *seen;
  double *submitted_at = NULL, *sent_at = NULL; /* LOAD_RAMP: from t0, per request */
  const char *ramp = getenv("LOAD_RAMP");
  brg_result *batch[256];
  brg_header headers[1];
  brg_request req;
  int64_t submitted = 0, finished = 0, ok = 0, errors = 0, reported = 0;
  int64_t cpu0, cpu1;
  double t0, t1, secs;
  struct brg_stats st;
  struct rusage ru;
  int rc;

  if (argc < 5 || argc > 6) {
    usage();
    return 2;
  }
  url = argv[1];
  if (!parse_i64(argv[2], 1, 100000000, &n) || !parse_i64(argv[3], 1, 1000000, &inflight)) {
    usage();
    return 2;
  }
  if (strcmp(argv[4], "auto") == 0) backend = BRG_BACKEND_AUTO;
  else if (strcmp(argv[4], "io_uring") == 0) backend = BRG_BACKEND_IO_URING;
  else if (strcmp(argv[4], "epoll") == 0) backend = BRG_BACKEND_EPOLL;
  else {
    usage();
    return 2;
  }
  if (argc == 6) ca_file = argv[5];
  if (env_prompt && !parse_i64(env_prompt, 0, INT64_MAX, &expect_prompt)) {
    fprintf(stderr, "load_c: EXPECT_PROMPT is not a number: %s\n", env_prompt);
    return 2;
  }
  if (env_completion && !parse_i64(env_completion, 0, INT64_MAX, &expect_completion)) {
    fprintf(stderr, "load_c: EXPECT_COMPLETION is not a number: %s\n", env_completion);
    return 2;
  }

  /* Configure: any BARRAGE_* environment settings first (BARRAGE_TLS_RESUME=0
   * for full handshakes, say), then INFLIGHT requests in flight, as many
   * connections to the one host, the requested backend forced, and the test
   * CA if one was given. */
  cfg = brg_config_new();
  if (!cfg) {
    fprintf(stderr, "load_c: brg_config_new: out of memory\n");
    return 1;
  }
  if (brg_config_from_env(cfg) != BRG_OK ||
      brg_config_set_int(cfg, BRG_OPT_MAX_INFLIGHT, inflight) != BRG_OK ||
      brg_config_set_int(cfg, BRG_OPT_MAX_CONNS_PER_HOST, inflight) != BRG_OK ||
      brg_config_set_int(cfg, BRG_OPT_BACKEND, backend) != BRG_OK ||
      (ca_file && brg_config_set_str(cfg, BRG_OPT_CA_FILE, ca_file) != BRG_OK)) {
    fprintf(stderr, "load_c: config: %s\n", brg_config_error(cfg));
    brg_config_free(cfg);
    return 1;
  }
  rc = brg_engine_new(cfg, &e);
  brg_config_free(cfg); /* the engine keeps its own copy */
  if (rc != BRG_OK) {
    fprintf(stderr, "load_c: brg_engine_new: %s (%s): %s\n", brg_status_name(rc),
            brg_strerror(rc), brg_last_error());
    return 1;
  }

  seen = calloc((size_t)n, 1);
  if (ramp && strcmp(ramp, "1") == 0) {
    submitted_at = calloc((size_t)n, sizeof *submitted_at);
    sent_at = calloc((size_t)n, sizeof *sent_at);
  }
  if (!seen || (ramp && strcmp(ramp, "1") == 0 && (!submitted_at || !sent_at))) {
    fprintf(stderr, "load_c: out of memory\n");
    brg_engine_free(e);
    return 1;
  }

  headers[0].name = "Content-Type";
  headers[0].value = "application/json";
  memset(&req, 0, sizeof req);
  req.size = sizeof req;
  req.method = "POST";
  req.url = url;
  req.headers = headers;
  req.n_headers = 1;
  req.body = kBody;
  req.body_len = sizeof kBody - 1;
  req.max_retries = -1;

  t0 = now_s();
  cpu0 = cpu_us();
  while (finished < n) {
    size_t got, i;
    /* Submit everything we can; the engine queues what exceeds INFLIGHT.
     * BRG_E_FULL is back-pressure: run the loop, then try again. */
    while (submitted < n) {
      req.user_data = (uint64_t)submitted;
      if (submitted_at) submitted_at[submitted] = now_s() - t0;
      rc = brg_submit(e, &req, NULL);
      if (rc == BRG_E_FULL) break;
      if (rc != BRG_OK) {
        fprintf(stderr, "load_c: brg_submit #%lld: %s: %s\n", (long long)submitted,
                brg_status_name(rc), brg_last_error());
        free(seen);
        brg_engine_free(e);
        return 1;
      }
      ++submitted;
    }

    rc = brg_poll(e, -1);
    if (rc < 0) {
      fprintf(stderr, "load_c: brg_poll: %s: %s\n", brg_status_name(rc), brg_strerror(rc));
      free(seen);
      brg_engine_free(e);
      return 1;
    }

    while ((got = brg_results(e, batch, sizeof batch / sizeof batch[0])) > 0) {
      for (i = 0; i < got; ++i) {
        const brg_result *r = batch[i];
        const char *why = NULL;
        uint64_t k = r->user_data;

        if (k >= (uint64_t)submitted) why = "result for a request never submitted";
        else if (seen[k]) why = "second result for the same request";
        else if (r->status != BRG_OK) why = "status is not BRG_OK";
        else if (r->http_status != 200) why = "HTTP status is not 200";
        else if (r->body == NULL || r->body_len == 0) why = "empty body";
        else if (expect_body &&
                 (r->body_len != expect_len || memcmp(r->body, expect_body, expect_len) != 0))
          why = "body differs from EXPECT_BODY";
        else if (r->body[r->body_len] != '\0') why = "body is not NUL-terminated";
        else if (r->error == NULL || r->error[0] != '\0') why = "error text is not \"\" on success";
        else if (expect_prompt >= 0 ? r->prompt_tokens != expect_prompt : r->prompt_tokens < 0)
          why = "prompt_tokens wrong";
        else if (expect_completion >= 0 ? r->completion_tokens != expect_completion
                                        : r->completion_tokens < 0)
          why = "completion_tokens wrong";

        if (k < (uint64_t)submitted && !seen[k]) {
          /* A request never sent (sent_us -1) counts as sent when it ended. */
          if (sent_at)
            sent_at[finished] = submitted_at[k] + (double)(r->sent_us >= 0 ? r->sent_us : r->total_us) / 1e6;
          seen[k] = 1;
          ++finished;
        }
        if (why) {
          ++errors;
          if (reported++ < MAX_REPORTED_FAILURES)
            fprintf(stderr,
                    "load_c: request %llu: %s: status=%s http=%d attempts=%u "
                    "prompt_tokens=%lld completion_tokens=%lld body_len=%zu error=\"%s\" "
                    "body=\"%.200s\"\n",
                    (unsigned long long)k, why, brg_status_name(r->status), r->http_status,
                    r->attempts, (long long)r->prompt_tokens, (long long)r->completion_tokens,
                    r->body_len, r->error ? r->error : "(null)", r->body ? r->body : "(null)");
        } else {
          ++ok;
        }
        brg_result_free(batch[i]);
      }
    }
  }
  t1 = now_s();
  cpu1 = cpu_us();

  memset(&st, 0, sizeof st);
  st.size = sizeof st;
  rc = brg_stats(e, &st);
  if (rc != BRG_OK) {
    fprintf(stderr, "load_c: brg_stats: %s\n", brg_status_name(rc));
    ++errors;
  } else if (st.submitted != (uint64_t)n || st.completed + st.failed + st.cancelled != (uint64_t)n) {
    /* The engine's own counters must agree with what we saw. */
    fprintf(stderr,
            "load_c: engine stats disagree: submitted=%llu completed=%llu failed=%llu "
            "cancelled=%llu, expected %lld requests\n",
            (unsigned long long)st.submitted, (unsigned long long)st.completed,
            (unsigned long long)st.failed, (unsigned long long)st.cancelled, (long long)n);
    ++errors;
  }
  getrusage(RUSAGE_SELF, &ru);

  secs = t1 - t0;
  if (secs <= 0) secs = 1e-9;
  printf("requests=%lld ok=%lld errors=%lld seconds=%.3f req_per_s=%.0f cpu_us_per_req=%.1f "
         "maxrss_kb=%ld backend=%s conns_opened=%llu tls_resumed=%llu",
         (long long)n, (long long)ok, (long long)errors, secs, (double)n / secs,
         (double)(cpu1 - cpu0) / (double)n, ru.ru_maxrss, backend_name(st.backend),
         (unsigned long long)st.connections_opened, (unsigned long long)st.tls_resumed);
  if (sent_at) {
    qsort(sent_at, (size_t)finished, sizeof *sent_at, by_value);
    printf(" inflight_ms=%.1f", sent_at[(inflight < finished ? inflight : finished) - 1] * 1000.0);
  }
  printf("\n");
  fflush(stdout);
  free(submitted_at);
  free(sent_at);

  free(seen);
  brg_engine_free(e);
  return (ok == n && errors == 0) ? 0 : 1;
}
