/* curl_multi.c: the libcurl peer of bench/peers/compare. Fires N POSTs of
 * one small JSON body at URL with INFLIGHT of them in flight over HTTP/1.1
 * keep-alive, checks every answer (HTTP 200, a body of EXPECT_BYTES bytes)
 * and prints one summary line shaped like load_c's:
 *
 *   requests=N ok=K errors=E seconds=S req_per_s=R cpu_us_per_req=C
 *   maxrss_kb=M conns_opened=X tls_full=F tls_resumed=Y [inflight_ms=T]
 *
 * It drives the multi handle the way libcurl recommends for many connections
 * (curl_multi_socket_action fed by epoll, as in curl's ephiperfifo.c): a
 * fair peer is libcurl used well. (The simpler curl_multi_perform +
 * curl_multi_poll loop measured the same within noise at 100 and 1,000 in
 * flight.) Easy handles are reused, so their connections stay in the multi
 * handle's cache.
 *
 * Usage: curl_multi URL N INFLIGHT CA_FILE EXPECT_BYTES [fresh] [h2]
 * "fresh" gives every request its own new connection and a full TLS
 * handshake (no connection reuse, no session cache): the handshake scenario.
 * "h2" speaks HTTP/2 (ALPN) with streams multiplexed on as few connections
 * as the server's stream limit allows (PIPEWAIT: a new transfer waits for a
 * connection being set up rather than opening its own).
 * tls_full / tls_resumed count finished TLS handshakes (OpenSSL's info
 * callback). With LOAD_RAMP=1 in the environment it also prints inflight_ms:
 * when the INFLIGHT-th request was sent (libcurl's pretransfer time after
 * the transfer was added), from the start: how long the ramp to INFLIGHT in
 * flight took (bench/far). It keeps N times then, so it is off by default.
 * Exit status 0 only if all N requests pass. */
#define _POSIX_C_SOURCE 200809L

#include <curl/curl.h>
#include <openssl/ssl.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>

/* The same request body as examples/load_c.c, so every peer sends the same bytes. */
static const char kBody[] =
    "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\","
    "\"content\":\"Say hello in one word.\"}],\"max_tokens\":16}";

#define MAX_REPORTED_FAILURES 10

typedef struct {
  CURL *easy;
  char *buf; /* the body received so far, kept as a user would keep it */
  size_t len, cap;
  double added; /* when it was added to the multi handle, from the start */
  char err[CURL_ERROR_SIZE];
} Transfer;

/* TLS handshakes finished, full and resumed, counted once per SSL object. */
static long g_tls_full, g_tls_resumed;
static int g_counted_idx = -1; /* SSL ex_data slot marking an SSL already counted */

static void on_tls_info(const SSL *ssl, int where, int ret) {
  SSL *s = (SSL *)ssl; /* only to mark it; OpenSSL hands the callback a const */
  (void)ret;
  if (!(where & SSL_CB_HANDSHAKE_DONE) || SSL_get_ex_data(s, g_counted_idx)) return;
  SSL_set_ex_data(s, g_counted_idx, (void *)1);
  if (SSL_session_reused(s)) ++g_tls_resumed;
  else ++g_tls_full;
}

static CURLcode on_ssl_ctx(CURL *easy, void *ctx, void *user) {
  (void)easy;
  (void)user;
  SSL_CTX_set_info_callback((SSL_CTX *)ctx, on_tls_info);
  return CURLE_OK;
}

typedef struct {
  CURLM *multi;
  int epfd;
  long timer_ms; /* -1: no timer armed; else due at timer_due */
  double timer_due;
} Loop;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long cpu_us(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000L + ru.ru_utime.tv_usec +
         ru.ru_stime.tv_usec;
}

static size_t on_data(char *p, size_t size, size_t n, void *user) {
  Transfer *t = user;
  size_t add = size * n;
  if (t->len + add > t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 1024;
    char *b;
    while (cap < t->len + add) cap *= 2;
    b = realloc(t->buf, cap);
    if (!b) return 0; /* makes curl fail the transfer with CURLE_WRITE_ERROR */
    t->buf = b;
    t->cap = cap;
  }
  memcpy(t->buf + t->len, p, add);
  t->len += add;
  return add;
}

/* libcurl tells us which sockets to watch; mirror that into epoll. */
static int on_socket(CURL *easy, curl_socket_t s, int what, void *user, void *sockp) {
  Loop *l = user;
  struct epoll_event ev;
  (void)easy;
  if (what == CURL_POLL_REMOVE) {
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, s, NULL);
    curl_multi_assign(l->multi, s, NULL);
    return 0;
  }
  memset(&ev, 0, sizeof ev);
  ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
  ev.data.fd = s;
  if (sockp) {
    epoll_ctl(l->epfd, EPOLL_CTL_MOD, s, &ev);
  } else {
    epoll_ctl(l->epfd, EPOLL_CTL_ADD, s, &ev);
    curl_multi_assign(l->multi, s, (void *)1); /* marks it as added */
  }
  return 0;
}

static int on_timer(CURLM *multi, long timeout_ms, void *user) {
  Loop *l = user;
  (void)multi;
  l->timer_ms = timeout_ms;
  if (timeout_ms >= 0) l->timer_due = now_s() + (double)timeout_ms / 1000.0;
  return 0;
}

static int setup(Transfer *t, const char *url, const char *ca, struct curl_slist *hdrs,
                 int fresh, int h2) {
  CURL *e = curl_easy_init();
  if (!e) return 0;
  t->easy = e;
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, kBody);
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)(sizeof kBody - 1));
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
  /* Debian's libcurl speaks h2 by default over TLS; compare is HTTP/1.1. */
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, h2 ? (long)CURL_HTTP_VERSION_2TLS : (long)CURL_HTTP_VERSION_1_1);
  if (h2) curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
  curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
  curl_easy_setopt(e, CURLOPT_CAINFO, ca);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
  curl_easy_setopt(e, CURLOPT_PRIVATE, t);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->err);
  if (fresh) {
    curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_SESSIONID_CACHE, 0L);
  }
  return 1;
}

static void usage(void) {
  fprintf(stderr, "usage: curl_multi URL N INFLIGHT CA_FILE EXPECT_BYTES [fresh] [h2]\n");
}

typedef struct {
  long n, expect, submitted, finished, ok, errors, reported, conns;
  double t0;   /* the start */
  double *sent; /* LOAD_RAMP: when each request was sent, from t0; else NULL */
} Counts;

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Checks every finished transfer and starts the next request on its handle. */
static void reap(CURLM *multi, Counts *c) {
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(multi, &left)) != NULL) {
    Transfer *t;
    long code = 0, opened = 0;
    const char *why = NULL;
    if (m->msg != CURLMSG_DONE) continue;
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&t);
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_getinfo(t->easy, CURLINFO_NUM_CONNECTS, &opened);
    c->conns += opened;
    if (c->sent) {
      curl_off_t pre = 0;
      curl_easy_getinfo(t->easy, CURLINFO_PRETRANSFER_TIME_T, &pre);
      c->sent[c->finished] = t->added + (double)pre / 1e6;
    }
    if (m->data.result != CURLE_OK) why = curl_easy_strerror(m->data.result);
    else if (code != 200) why = "HTTP status is not 200";
    else if ((long)t->len != c->expect) why = "body length differs from EXPECT_BYTES";
    ++c->finished;
    if (why) {
      ++c->errors;
      if (c->reported++ < MAX_REPORTED_FAILURES)
        fprintf(stderr, "curl_multi: request failed: %s: http=%ld body_len=%zu %s\n", why, code,
                t->len, t->err);
    } else {
      ++c->ok;
    }
    curl_multi_remove_handle(multi, t->easy);
    if (c->submitted < c->n) {
      t->len = 0;
      t->err[0] = '\0';
      t->added = now_s() - c->t0;
      curl_multi_add_handle(multi, t->easy);
      ++c->submitted;
    }
  }
}

/* The scalable loop: epoll says which sockets are ready, curl acts on those only. */
static int run_socket_action(Loop *l, Counts *c) {
  struct epoll_event evs[256];
  int running = 0;
  while (c->finished < c->n) {
    int k, got, wait_ms = -1;
    if (l->timer_ms >= 0) {
      double ms = (l->timer_due - now_s()) * 1000.0;
      wait_ms = ms <= 0 ? 0 : (int)ms + 1;
    }
    got = epoll_wait(l->epfd, evs, (int)(sizeof evs / sizeof evs[0]), wait_ms);
    if (got < 0 && errno != EINTR) {
      fprintf(stderr, "curl_multi: epoll_wait: %s\n", strerror(errno));
      return 0;
    }
    for (k = 0; k < got; ++k) {
      int flags = (evs[k].events & EPOLLIN ? CURL_CSELECT_IN : 0) |
                  (evs[k].events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
                  (evs[k].events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
      curl_multi_socket_action(l->multi, evs[k].data.fd, flags, &running);
    }
    if (l->timer_ms >= 0 && now_s() >= l->timer_due) {
      l->timer_ms = -1; /* the action below may arm it again */
      curl_multi_socket_action(l->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    }
    reap(l->multi, c);
  }
  return 1;
}

int main(int argc, char **argv) {
  const char *url, *ca;
  long inflight, i;
  int fresh = 0, h2 = 0;
  Counts c;
  Loop l;
  Transfer *ts;
  struct curl_slist *hdrs = NULL;
  double t0, t1, secs;
  long cpu0, cpu1;
  struct rusage ru;

  if (argc < 6 || argc > 8) {
    usage();
    return 2;
  }
  memset(&c, 0, sizeof c);
  url = argv[1];
  c.n = strtol(argv[2], NULL, 10);
  inflight = strtol(argv[3], NULL, 10);
  ca = argv[4];
  c.expect = strtol(argv[5], NULL, 10);
  for (i = 6; i < argc; ++i) {
    if (strcmp(argv[i], "fresh") == 0) fresh = 1;
    else if (strcmp(argv[i], "h2") == 0) h2 = 1;
    else {
      usage();
      return 2;
    }
  }
  if (c.n < 1 || inflight < 1 || c.expect < 0) {
    usage();
    return 2;
  }
  if (inflight > c.n) inflight = c.n;

  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return 1;
  g_counted_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
  if (getenv("LOAD_RAMP") && strcmp(getenv("LOAD_RAMP"), "1") == 0) {
    c.sent = calloc((size_t)c.n, sizeof *c.sent);
    if (!c.sent) return 1;
  }
  memset(&l, 0, sizeof l);
  l.timer_ms = -1;
  l.multi = curl_multi_init();
  l.epfd = epoll_create1(EPOLL_CLOEXEC);
  if (!l.multi || l.epfd < 0) {
    fprintf(stderr, "curl_multi: set-up failed: %s\n", strerror(errno));
    return 1;
  }
  curl_multi_setopt(l.multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(l.multi, CURLMOPT_SOCKETDATA, &l);
  curl_multi_setopt(l.multi, CURLMOPT_TIMERFUNCTION, on_timer);
  curl_multi_setopt(l.multi, CURLMOPT_TIMERDATA, &l);
  /* Keep every idle connection: the default cache (4 per easy handle) is
   * enough, this only states the intent. */
  curl_multi_setopt(l.multi, CURLMOPT_MAXCONNECTS, inflight);
  /* libcurl's own cap is 100 streams per connection; let the server's
   * SETTINGS decide instead, as the other HTTP/2 clients here do. */
  if (h2) curl_multi_setopt(l.multi, CURLMOPT_MAX_CONCURRENT_STREAMS, 1000L);
  hdrs = curl_slist_append(hdrs, "Content-Type: application/json");

  ts = calloc((size_t)inflight, sizeof *ts);
  if (!ts || !hdrs) return 1;
  for (i = 0; i < inflight; ++i)
    if (!setup(&ts[i], url, ca, hdrs, fresh, h2)) return 1;

  t0 = now_s();
  c.t0 = t0;
  cpu0 = cpu_us();
  for (i = 0; i < inflight; ++i, ++c.submitted) curl_multi_add_handle(l.multi, ts[i].easy);
  if (!run_socket_action(&l, &c)) return 1;
  t1 = now_s();
  cpu1 = cpu_us();
  getrusage(RUSAGE_SELF, &ru);
  secs = t1 - t0 > 0 ? t1 - t0 : 1e-9;
  printf("requests=%ld ok=%ld errors=%ld seconds=%.3f req_per_s=%.0f cpu_us_per_req=%.1f "
         "maxrss_kb=%ld conns_opened=%ld tls_full=%ld tls_resumed=%ld",
         c.n, c.ok, c.errors, secs, (double)c.n / secs, (double)(cpu1 - cpu0) / (double)c.n,
         ru.ru_maxrss, c.conns, g_tls_full, g_tls_resumed);
  if (c.sent) {
    qsort(c.sent, (size_t)c.n, sizeof *c.sent, by_value);
    printf(" inflight_ms=%.1f", c.sent[inflight - 1] * 1000.0);
    free(c.sent);
  }
  printf("\n");
  fflush(stdout);

  for (i = 0; i < inflight; ++i) {
    curl_easy_cleanup(ts[i].easy);
    free(ts[i].buf);
  }
  free(ts);
  curl_slist_free_all(hdrs);
  curl_multi_cleanup(l.multi);
  curl_global_cleanup();
  return c.ok == c.n ? 0 : 1;
}
