// `barrage mock-server`: the OpenAI-compatible mock endpoint with fault
// injection, in the foreground, for testing pipelines and other clients
// against latency, 429s, resets and stalls on demand.
#include <fmt/format.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "commands.hpp"
#include "mock_server.hpp"
#include "stop_signals.hpp"
#include "test_ca.hpp"

namespace barrage::cli {
namespace {

struct MockServerArgs {
  mock::MockOptions opts;
  bool plain = false;
  std::string cert_file, key_file, write_ca;
};

bool read_file(const std::string& path, std::string* out, std::string* err) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *err = fmt::format("cannot open {}: {}", path, std::strerror(errno));
    return false;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) {
    *err = fmt::format("cannot read {}", path);
    return false;
  }
  *out = ss.str();
  return true;
}

std::string url_host(const std::string& host) {
  return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

void print_stats(const mock::MockStats& s) {
  fmt::print("barrage mock-server: {} request(s), {} response(s)", s.requests, s.responses());
  const char* sep = " (";
  for (size_t code = 0; code < s.responses_by_status.size(); ++code) {
    if (s.responses_by_status[code] == 0) continue;
    fmt::print("{}{} x{}", sep, code, s.responses_by_status[code]);
    sep = ", ";
  }
  fmt::print("{}\n", sep[0] == ',' ? ")" : "");
  fmt::print("  connections {} accepted, {} closed; {} reset(s), {} stall(s), {} rate-limited\n",
             s.connections_accepted, s.connections_closed, s.resets, s.stalls, s.rate_limited);
  fmt::print("  TLS handshakes {} ({} resumed); {} bytes in, {} bytes out\n", s.tls_handshakes,
             s.tls_resumed, s.bytes_in, s.bytes_out);
}

int run_mock_server(MockServerArgs a) {
  std::string err;
  a.opts.tls = !a.plain;
  if (a.plain && (!a.cert_file.empty() || !a.key_file.empty() || !a.write_ca.empty())) {
    fmt::print(
        stderr,
        "barrage mock-server: --plain cannot be combined with --cert, --key or --write-ca\n");
    return 2;
  }
  if (a.cert_file.empty() != a.key_file.empty()) {
    fmt::print(stderr, "barrage mock-server: --cert and --key go together\n");
    return 2;
  }
  if (!a.cert_file.empty()) {
    if (!a.write_ca.empty()) {
      fmt::print(
          stderr,
          "barrage mock-server: --write-ca writes the generated CA; with --cert there is none\n");
      return 2;
    }
    if (!read_file(a.cert_file, &a.opts.cert_pem, &err) ||
        !read_file(a.key_file, &a.opts.key_pem, &err)) {
      fmt::print(stderr, "barrage mock-server: {}\n", err);
      return 1;
    }
  }

  // Before the workers start, so they inherit the mask and the signals
  // arrive here, where stop() can run.
  block_stop_signals();
  std::unique_ptr<mock::MockServer> server = mock::MockServer::start(a.opts, &err);
  if (!server) {
    fmt::print(stderr, "barrage mock-server: cannot start: {}\n", err);
    return 1;
  }
  std::string ca_note;
  if (a.plain) {
    ca_note = "plain HTTP";
  } else if (!a.cert_file.empty()) {
    ca_note = "certificate " + a.cert_file;
  } else if (!a.write_ca.empty()) {
    if (!mock::write_file(a.write_ca, server->ca_pem())) {
      fmt::print(stderr, "barrage mock-server: cannot write the CA to {}: {}\n", a.write_ca,
                 std::strerror(errno));
      return 1;
    }
    ca_note = "CA: " + a.write_ca;
  } else {
    ca_note = "CA: not written; pass --write-ca FILE to let clients verify it";
  }
  fmt::print("barrage mock-server listening on {}://{}:{} ({})\n", a.plain ? "http" : "https",
             url_host(a.opts.host), server->port(), ca_note);
  std::fflush(stdout);

  int sig = wait_stop_signal();
  server->stop();
  fmt::print("barrage mock-server: stopping on {}\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
  print_stats(server->stats());
  std::fflush(stdout);
  return 0;
}

}  // namespace

Command add_mock_server_command(CLI::App& parent) {
  auto a = std::make_shared<MockServerArgs>();
  mock::MockOptions& m = a->opts;
  m.port = 8443;
  CLI::App* app = parent.add_subcommand(
      "mock-server", "Serve an OpenAI-compatible mock endpoint with latency and fault injection");
  auto rate = CLI::Range(0.0, 1.0);
  app->add_option("--host", m.host, "address or name to listen on")->capture_default_str();
  app->add_option("-p,--port", m.port, "port to listen on; 0 lets the kernel pick")
      ->capture_default_str();
  app->add_option("--threads", m.threads, "worker threads, each with its own epoll loop")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app->add_option("--latency-ms", m.latency_ms, "delay before every /v1/* answer")
      ->capture_default_str();
  app->add_option("--latency-jitter-ms", m.latency_jitter_ms, "plus a uniform random 0..N ms")
      ->capture_default_str();
  app->add_option("--rate-429", m.rate_429, "share of requests answered 429 Too Many Requests")
      ->check(rate)
      ->capture_default_str();
  app->add_option("--rate-500", m.rate_500, "share answered 500 Internal Server Error")
      ->check(rate)
      ->capture_default_str();
  app->add_option("--rate-503", m.rate_503, "share answered 503 Service Unavailable")
      ->check(rate)
      ->capture_default_str();
  app->add_option("--rate-reset", m.rate_reset_before,
                  "share whose connection is reset before any answer byte")
      ->check(rate)
      ->capture_default_str();
  app->add_option("--rate-reset-during", m.rate_reset_during,
                  "share reset in the middle of the answer")
      ->check(rate)
      ->capture_default_str();
  app->add_option("--rate-stall", m.rate_stall, "share never answered (the connection stays open)")
      ->check(rate)
      ->capture_default_str();
  app->add_option("--rate-truncate", m.rate_truncate, "share whose answer is cut short")
      ->check(rate)
      ->capture_default_str();
  app->add_option("--rate-malformed", m.rate_malformed, "share answered with malformed HTTP")
      ->check(rate)
      ->capture_default_str();
  app->add_option("--retry-after", m.retry_after_s, "Retry-After seconds sent with 429 and 503")
      ->capture_default_str();
  app->add_option("--limit-rps", m.limit_rps,
                  "answer 429 beyond N /v1/* requests in any second (0 = off)")
      ->capture_default_str();
  app->add_option("--seed", m.seed, "seed of the fault and jitter draws")->capture_default_str();
  app->add_option("--idle-timeout-ms", m.idle_timeout_ms,
                  "close keep-alive connections idle this long (0 = never)")
      ->capture_default_str();
  app->add_option("--keepalive-requests", m.keepalive_requests,
                  "close a connection after N responses, like nginx (0 = never)")
      ->capture_default_str();
  app->add_flag("--plain", a->plain, "serve plain HTTP instead of HTTPS");
  app->add_option("--cert", a->cert_file, "PEM server certificate (leaf first); default: generated")
      ->check(CLI::ExistingFile);
  app->add_option("--key", a->key_file, "PEM private key of --cert")->check(CLI::ExistingFile);
  app->add_option("--write-ca", a->write_ca,
                  "write the generated CA certificate (PEM) here for clients to trust");
  app->footer(
      "Serves POST /v1/chat/completions, /v1/completions, /v1/embeddings and GET /health in the\n"
      "foreground until SIGINT or SIGTERM, then prints what it saw.\n"
      "Without --cert a throw-away CA issues a certificate for localhost, 127.0.0.1 and ::1.\n"
      "Fault rates are shares in 0..1 (together at most 1) for requests without x-mock-* headers;\n"
      "per request, x-mock-status, x-mock-fault (reset-before|reset-during|stall|drip|truncate|\n"
      "malformed|close|huge), x-mock-latency-ms and x-mock-retry-after override them.\n"
      "Example: barrage mock-server --port 8443 --latency-ms 200 --rate-429 0.05 --write-ca "
      "ca.pem");
  return {app, [a] { return run_mock_server(*a); }};
}

}  // namespace barrage::cli
