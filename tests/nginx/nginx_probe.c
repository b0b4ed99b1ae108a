/* nginx_probe.c: one request through libbarrage on a forced backend, with
 * the whole result printed as key=value lines for run_nginx_test.py to
 * assert on (status, HTTP status, attempts, error text, body, backend).
 *
 * Usage: nginx_probe URL BACKEND(auto|io_uring|epoll) CA_FILE|- MAX_RETRIES [METHOD]
 * "-" for CA_FILE means the system trust store only. Exit 0 when a result
 * arrived (whatever its status: the caller judges it), 1 when the engine or
 * the submit failed or no result came within 60 s, 2 on a usage error. */
#define _POSIX_C_SOURCE 200809L

#include <barrage.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char kBody[] =
    "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"probe\"}]}";

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  brg_config *cfg;
  brg_engine *e = NULL;
  brg_result *r = NULL;
  brg_request req;
  brg_header hdr = {"Content-Type", "application/json"};
  struct brg_stats st;
  int backend, rc, retries;
  double give_up;

  if (argc < 5 || argc > 6) {
    fprintf(stderr, "usage: nginx_probe URL BACKEND CA_FILE|- MAX_RETRIES [METHOD]\n");
    return 2;
  }
  if (strcmp(argv[2], "auto") == 0) backend = BRG_BACKEND_AUTO;
  else if (strcmp(argv[2], "io_uring") == 0) backend = BRG_BACKEND_IO_URING;
  else if (strcmp(argv[2], "epoll") == 0) backend = BRG_BACKEND_EPOLL;
  else {
    fprintf(stderr, "nginx_probe: unknown backend %s\n", argv[2]);
    return 2;
  }
  retries = atoi(argv[4]);

  cfg = brg_config_new();
  if (!cfg) return 1;
  if (brg_config_set_int(cfg, BRG_OPT_BACKEND, backend) != BRG_OK ||
      brg_config_set_int(cfg, BRG_OPT_CONNECT_TIMEOUT_MS, 10000) != BRG_OK ||
      brg_config_set_int(cfg, BRG_OPT_BACKOFF_BASE_MS, 100) != BRG_OK ||
      brg_config_set_int(cfg, BRG_OPT_BACKOFF_MAX_MS, 1000) != BRG_OK ||
      (strcmp(argv[3], "-") != 0 && brg_config_set_str(cfg, BRG_OPT_CA_FILE, argv[3]) != BRG_OK)) {
    fprintf(stderr, "nginx_probe: config: %s\n", brg_config_error(cfg));
    brg_config_free(cfg);
    return 1;
  }
  rc = brg_engine_new(cfg, &e);
  brg_config_free(cfg);
  if (rc != BRG_OK) {
    fprintf(stderr, "nginx_probe: brg_engine_new: %s: %s\n", brg_status_name(rc), brg_last_error());
    return 1;
  }

  memset(&req, 0, sizeof req);
  req.size = sizeof req;
  req.method = argc == 6 ? argv[5] : "POST";
  req.url = argv[1];
  req.headers = &hdr;
  req.n_headers = 1;
  if (strcmp(req.method, "POST") == 0) {
    req.body = kBody;
    req.body_len = sizeof kBody - 1;
  }
  req.timeout_ms = 20000;
  req.deadline_ms = 50000;
  req.max_retries = retries;
  req.user_data = 0x5eed;
  rc = brg_submit(e, &req, NULL);
  if (rc != BRG_OK) {
    fprintf(stderr, "nginx_probe: brg_submit: %s: %s\n", brg_status_name(rc), brg_last_error());
    brg_engine_free(e);
    return 1;
  }

  give_up = now_s() + 60.0;
  while (brg_results(e, &r, 1) == 0) {
    if (now_s() > give_up) {
      fprintf(stderr, "nginx_probe: no result within 60 s\n");
      brg_engine_free(e);
      return 1;
    }
    rc = brg_poll(e, 100);
    if (rc < 0) {
      fprintf(stderr, "nginx_probe: brg_poll: %s\n", brg_status_name(rc));
      brg_engine_free(e);
      return 1;
    }
  }

  memset(&st, 0, sizeof st);
  st.size = sizeof st;
  brg_stats(e, &st);
  printf("status=%d\n", (int)r->status);
  printf("status_name=%s\n", brg_status_name(r->status));
  printf("http=%d\n", (int)r->http_status);
  printf("attempts=%u\n", (unsigned)r->attempts);
  printf("user_data=%llu\n", (unsigned long long)r->user_data);
  printf("prompt_tokens=%lld\n", (long long)r->prompt_tokens);
  printf("completion_tokens=%lld\n", (long long)r->completion_tokens);
  printf("backend=%s\n", st.backend == BRG_BACKEND_IO_URING ? "io_uring"
                         : st.backend == BRG_BACKEND_EPOLL  ? "epoll"
                                                             : "unknown");
  printf("error=%s\n", r->error ? r->error : "(null)");
  printf("body_len=%zu\n", r->body_len);
  /* Last: the body, raw, to the end of output. */
  printf("body=");
  if (r->body_len) fwrite(r->body, 1, r->body_len, stdout);
  fflush(stdout);

  brg_result_free(r);
  brg_engine_free(e);
  return 0;
}
