// barrage-mockserver: runs the mock OpenAI endpoint by hand or from a
// benchmark script until SIGINT/SIGTERM, then prints its counters.
#include <signal.h>
#include <sys/resource.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "mock_server.hpp"
#include "test_ca.hpp"

namespace {

const char kUsage[] =
    "usage: barrage-mockserver [options]\n"
    "  --host ADDR              listen address (default 127.0.0.1)\n"
    "  --port N                 port; 0 picks a free one (default 0)\n"
    "  --threads N              worker threads (default 1)\n"
    "  --plain                  plain HTTP, no TLS\n"
    "  --cert FILE  --key FILE  PEM certificate chain and key; otherwise a fresh\n"
    "                           in-memory CA issues one for localhost/127.0.0.1/::1\n"
    "  --write-ca FILE          write that generated CA (PEM) for clients to trust\n"
    "  --latency-ms N           added before every /v1/* answer\n"
    "  --latency-jitter-ms N    plus uniform 0..N\n"
    "  --rate-429 P  --rate-500 P  --rate-503 P          fault probabilities 0..1\n"
    "  --rate-reset-before P  --rate-reset-during P  --rate-stall P\n"
    "  --rate-truncate P  --rate-malformed P\n"
    "  --retry-after S          Retry-After for 429/503 (default 1)\n"
    "  --limit-rps N            429 beyond N /v1/* requests per second\n"
    "  --idle-timeout-ms N      close keep-alive connections idle this long\n"
    "  --keepalive-requests N   close a connection after N responses\n"
    "  --seed N                 seed for fault and jitter draws (default 1)\n"
    "Streaming (\"stream\": true), paced on the worker's timers:\n"
    "  --stream-tokens N        N token events \" tok1\"..\" tokN\" (default: one per\n"
    "                           word of the answer)\n"
    "  --first-token-ms N       role event (sent with the headers) -> first token\n"
    "  --stream-interval-ms N   token -> next token, planned without drift\n"
    "  --stream-stall-after N   go silent after N token events (connection stays open)\n"
    "  --stream-reset-after N   RST after N token events\n"
    "Per-request control headers: x-mock-latency-ms, x-mock-status, x-mock-fault\n"
    "(reset-before|reset-during|stall|drip|truncate|malformed|close|huge),\n"
    "x-mock-retry-after, x-mock-retry-after-ms, x-mock-drip-ms, x-mock-huge-bytes,\n"
    "x-mock-ratelimit-reset-requests (sent with x-ratelimit-remaining-requests: 0),\n"
    "x-mock-fail-times with x-mock-fail-key (only the first N requests per key fail),\n"
    "x-mock-stream-tokens, x-mock-first-token-ms, x-mock-stream-interval-ms,\n"
    "x-mock-stream-stall-after, x-mock-stream-reset-after (override the flags above).\n";

bool read_file(const char* path, std::string* out) {
  FILE* f = std::fopen(path, "rb");
  if (f == nullptr) return false;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out->append(buf, n);
  bool ok = std::ferror(f) == 0;
  std::fclose(f);
  return ok;
}

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "barrage-mockserver: %s\n", msg.c_str());
  std::exit(2);
}

uint64_t to_u64(const char* flag, const char* v, uint64_t max) {
  char* end = nullptr;
  errno = 0;
  unsigned long long x = std::strtoull(v, &end, 10);
  if (errno != 0 || end == v || *end != '\0' || x > max || v[0] == '-') {
    die(std::string("bad value for ") + flag + ": " + v);
  }
  return x;
}

double to_rate(const char* flag, const char* v) {
  char* end = nullptr;
  double x = std::strtod(v, &end);
  if (end == v || *end != '\0' || !(x >= 0 && x <= 1)) {
    die(std::string("bad probability for ") + flag + " (want 0..1): " + v);
  }
  return x;
}

// Many concurrent connections need many descriptors; the soft limit is
// often 1024 while the hard limit allows far more.
void raise_fd_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

}  // namespace

int main(int argc, char** argv) {
  using barrage::mock::MockOptions;
  MockOptions opts;
  std::string cert_file, key_file, ca_out;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (a == "--plain") {
      opts.tls = false;
      continue;
    }
    // Every other flag takes a value, as "--flag V" or "--flag=V".
    std::string value;
    size_t eq = a.find('=');
    if (eq != std::string::npos) {
      value = a.substr(eq + 1);
      a.resize(eq);
    } else if (std::strstr(kUsage, ("  " + a + " ").c_str()) == nullptr) {
      die("unknown option " + a + "\n" + kUsage);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      die("missing value for " + a + "\n" + kUsage);
    }
    const char* f = a.c_str();
    const char* v = value.c_str();
    if (a == "--host") opts.host = value;
    else if (a == "--port") opts.port = static_cast<uint16_t>(to_u64(f, v, 65535));
    else if (a == "--threads") opts.threads = static_cast<int>(to_u64(f, v, 256));
    else if (a == "--cert") cert_file = value;
    else if (a == "--key") key_file = value;
    else if (a == "--write-ca") ca_out = value;
    else if (a == "--latency-ms") opts.latency_ms = static_cast<uint32_t>(to_u64(f, v, 86400000));
    else if (a == "--latency-jitter-ms") opts.latency_jitter_ms = static_cast<uint32_t>(to_u64(f, v, 86400000));
    else if (a == "--rate-429") opts.rate_429 = to_rate(f, v);
    else if (a == "--rate-500") opts.rate_500 = to_rate(f, v);
    else if (a == "--rate-503") opts.rate_503 = to_rate(f, v);
    else if (a == "--rate-reset-before") opts.rate_reset_before = to_rate(f, v);
    else if (a == "--rate-reset-during") opts.rate_reset_during = to_rate(f, v);
    else if (a == "--rate-stall") opts.rate_stall = to_rate(f, v);
    else if (a == "--rate-truncate") opts.rate_truncate = to_rate(f, v);
    else if (a == "--rate-malformed") opts.rate_malformed = to_rate(f, v);
    else if (a == "--retry-after") opts.retry_after_s = static_cast<uint32_t>(to_u64(f, v, 86400));
    else if (a == "--limit-rps") opts.limit_rps = static_cast<uint32_t>(to_u64(f, v, 1u << 30));
    else if (a == "--idle-timeout-ms") opts.idle_timeout_ms = static_cast<uint32_t>(to_u64(f, v, 86400000));
    else if (a == "--keepalive-requests") opts.keepalive_requests = static_cast<uint32_t>(to_u64(f, v, 1u << 30));
    else if (a == "--seed") opts.seed = to_u64(f, v, UINT64_MAX);
    else if (a == "--stream-tokens") opts.stream_tokens = static_cast<int64_t>(to_u64(f, v, 100000000));
    else if (a == "--first-token-ms") opts.first_token_ms = static_cast<uint32_t>(to_u64(f, v, 86400000));
    else if (a == "--stream-interval-ms") opts.stream_interval_ms = static_cast<uint32_t>(to_u64(f, v, 86400000));
    else if (a == "--stream-stall-after") opts.stream_stall_after = static_cast<int64_t>(to_u64(f, v, 100000000));
    else if (a == "--stream-reset-after") opts.stream_reset_after = static_cast<int64_t>(to_u64(f, v, 100000000));
    else die("unknown option " + a + "\n" + kUsage);
  }
  if (cert_file.empty() != key_file.empty()) die("--cert and --key go together");
  if (!cert_file.empty()) {
    if (!read_file(cert_file.c_str(), &opts.cert_pem)) die("cannot read " + cert_file);
    if (!read_file(key_file.c_str(), &opts.key_pem)) die("cannot read " + key_file);
  }
  raise_fd_limit();

  // Block the stop signals before any worker starts, so every thread
  // inherits the mask and only sigwait() below sees them.
  sigset_t stop_set;
  sigemptyset(&stop_set);
  sigaddset(&stop_set, SIGINT);
  sigaddset(&stop_set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_set, nullptr);

  std::string err;
  auto server = barrage::mock::MockServer::start(opts, &err);
  if (!server) die(err);
  if (!ca_out.empty()) {
    if (server->ca_pem().empty()) die("--write-ca needs the generated certificate (no --cert, no --plain)");
    if (!barrage::mock::write_file(ca_out, server->ca_pem())) die("cannot write " + ca_out);
  }
  bool v6 = opts.host.find(':') != std::string::npos;
  std::printf("listening on %s://%s%s%s:%u\n", opts.tls ? "https" : "http", v6 ? "[" : "",
              opts.host.c_str(), v6 ? "]" : "", static_cast<unsigned>(server->port()));
  std::fflush(stdout);

  int sig = 0;
  sigwait(&stop_set, &sig);
  server->stop();
  barrage::mock::MockStats s = server->stats();
  std::fprintf(stderr,
               "barrage-mockserver: %s; connections %llu, requests %llu, 200: %llu, 429: %llu, "
               "500: %llu, 503: %llu, resets %llu, stalls %llu, tls handshakes %llu (resumed %llu), "
               "streams %llu (token events %llu, cancelled %llu)\n",
               strsignal(sig), static_cast<unsigned long long>(s.connections_accepted),
               static_cast<unsigned long long>(s.requests), static_cast<unsigned long long>(s.status(200)),
               static_cast<unsigned long long>(s.status(429)), static_cast<unsigned long long>(s.status(500)),
               static_cast<unsigned long long>(s.status(503)), static_cast<unsigned long long>(s.resets),
               static_cast<unsigned long long>(s.stalls), static_cast<unsigned long long>(s.tls_handshakes),
               static_cast<unsigned long long>(s.tls_resumed),
               static_cast<unsigned long long>(s.streams),
               static_cast<unsigned long long>(s.stream_token_events),
               static_cast<unsigned long long>(s.streams_cancelled));
  return 0;
}
