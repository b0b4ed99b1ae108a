// Drives one engine inline and checks every result (see client.hpp).
#include "client.hpp"

#include "measure.hpp"
#include "peer.hpp"

#include <algorithm>
#include <cstring>

namespace barrage::e2e {
namespace {

// The request body: a small chat completion, as load_c sends.
constexpr char kBody[] =
    "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\","
    "\"content\":\"Say hello in one word.\"}],\"max_tokens\":16}";
constexpr brg_header kHeaders[] = {{"Content-Type", "application/json"}};
constexpr int64_t kStallNs = 30'000'000'000;

bool set(brg_config* cfg, brg_option opt, int64_t v, std::string* why) {
  if (brg_config_set_int(cfg, opt, v) == BRG_OK) return true;
  *why = brg_config_error(cfg);
  return false;
}

}  // namespace

const char* backend_name(int backend) noexcept {
  switch (backend) {
    case BRG_BACKEND_IO_URING: return "io_uring";
    case BRG_BACKEND_EPOLL: return "epoll";
    case BRG_BACKEND_AUTO: return "auto";
    default: return "unknown";
  }
}

std::unique_ptr<Client> Client::open(const ClientOptions& o, std::string* why) {
  why->clear();
  brg_config* cfg = brg_config_new();
  if (!cfg) return *why = "brg_config_new: out of memory", nullptr;
  const int conns = o.max_conns_per_host ? o.max_conns_per_host : o.max_inflight;
  const bool ok = set(cfg, BRG_OPT_BACKEND, o.backend, why) && set(cfg, BRG_OPT_MAX_INFLIGHT, o.max_inflight, why) &&
                  set(cfg, BRG_OPT_MAX_CONNS_PER_HOST, conns, why) &&
                  (o.idle_timeout_ms == 0 || set(cfg, BRG_OPT_IDLE_TIMEOUT_MS, o.idle_timeout_ms, why)) &&
                  set(cfg, BRG_OPT_TLS_RESUME, o.tls_resume ? 1 : 0, why) &&
                  set(cfg, BRG_OPT_HTTP_VERSION, o.http_version, why) &&
                  set(cfg, BRG_OPT_MAX_RETRIES, 0, why);
  if (ok && brg_config_set_str(cfg, BRG_OPT_CA_FILE, peer().ca.c_str()) != BRG_OK) *why = brg_config_error(cfg);
  if (!why->empty()) {
    brg_config_free(cfg);
    return nullptr;
  }
  brg_engine* e = nullptr;
  const int rc = brg_engine_new(cfg, &e);
  brg_config_free(cfg);
  if (rc != BRG_OK) {
    *why = std::string("brg_engine_new: ") + brg_status_name(rc) + ": " + brg_last_error();
    return nullptr;
  }
  std::unique_ptr<Client> c(new Client(e));
  // The point of running each benchmark per backend: make sure it really ran there.
  const struct brg_stats st = c->stats();
  if (st.backend != o.backend) {
    *why = std::string("asked for backend ") + backend_name(o.backend) + ", engine runs " + backend_name(st.backend);
    return nullptr;
  }
  return c;
}

Client::~Client() { brg_engine_free(e_); }

struct brg_stats Client::stats() const {
  struct brg_stats st{};
  st.size = sizeof st;
  brg_stats(e_, &st);
  return st;
}

bool Client::check(const brg_result& r, const Batch& b, std::string* why) const {
  const std::string& body = peer().body;
  const bool exact = r.body_len == body.size() && std::memcmp(r.body, body.data(), body.size()) == 0;
  if (b.want == Want::timeout) {
    if (r.status == BRG_E_TIMEOUT) return true;
  } else if (r.status == BRG_OK && r.http_status == 200 && exact && r.prompt_tokens == 17 &&
             r.completion_tokens == 42) {
    return true;
  }
  *why = "request " + std::to_string(r.user_data) + " to " + b.url + ": status " + brg_status_name(r.status) +
         ", HTTP " + std::to_string(r.http_status) + ", " + std::to_string(r.body_len) + "-byte body" +
         (exact ? " (exact)" : " (differs)") + ", usage " +
         std::to_string(r.prompt_tokens) + "/" + std::to_string(r.completion_tokens) + ", error \"" + r.error +
         "\", total " + std::to_string(r.total_us / 1000) + " ms (wanted " +
         (b.want == Want::timeout ? "BRG_E_TIMEOUT" : "BRG_OK, HTTP 200, the exact body, usage 17/42") + ")";
  return false;
}

bool Client::run(const Batch& b, Outcome* out) {
  *out = Outcome{};
  out->done_ns.reserve(b.n);
  out->total_us.reserve(b.n);
  out->service_us.reserve(b.n);
  brg_request req{};
  req.size = sizeof req;
  req.method = "POST";
  req.url = b.url.c_str();
  req.headers = kHeaders;
  req.n_headers = 1;
  req.body = kBody;
  req.body_len = sizeof kBody - 1;
  req.max_retries = 0;  // a benchmark counts answers, not retries
  req.deadline_ms = b.deadline_ms;
  const size_t window = b.window ? b.window : b.n;
  size_t submitted = 0, finished = 0;
  brg_result* results[256];
  out->start_ns = now_ns();
  int64_t last_progress = out->start_ns;
  while (finished < b.n) {
    // Open loop: only what is due by now.
    const size_t due = b.rate_per_s > 0 ? std::min<size_t>(b.n, size_t(double(now_ns() - out->start_ns) * b.rate_per_s / 1e9) + 1)
                                        : b.n;
    while (submitted < due && submitted - finished < window) {
      req.user_data = submitted;
      const int rc = brg_submit(e_, &req, nullptr);
      if (rc == BRG_E_FULL) break;  // back-pressure: let the loop drain first
      if (rc != BRG_OK) {
        out->problem = std::string("brg_submit: ") + brg_status_name(rc) + ": " + brg_last_error();
        return false;
      }
      ++submitted;
    }
    const int rc = brg_poll(e_, b.rate_per_s > 0 && submitted < b.n ? 1 : 100);
    if (rc < 0) {
      out->problem = std::string("brg_poll: ") + brg_status_name(rc);
      return false;
    }
    const int64_t now = now_ns();
    size_t got;
    while ((got = brg_results(e_, results, 256)) > 0) {
      for (size_t i = 0; i < got; ++i) {
        std::string why;
        if (!check(*results[i], b, &why) && out->wrong++ == 0) out->problem = why;
        out->done_ns.push_back(now - out->start_ns);
        out->total_us.push_back(results[i]->total_us);
        out->service_us.push_back(results[i]->total_us - results[i]->queued_us);
        brg_result_free(results[i]);
      }
      finished += got;
      last_progress = now;
    }
    if (now - last_progress > kStallNs) {
      const struct brg_stats st = stats();
      out->problem = "stalled: " + std::to_string(finished) + " of " + std::to_string(b.n) +
                     " results, none for 30 s (engine: in_flight " + std::to_string(st.in_flight) + ", queued " +
                     std::to_string(st.queued) + ", connections_open " + std::to_string(st.connections_open) + ")";
      return false;
    }
  }
  out->end_ns = now_ns();
  if (out->wrong > 1) out->problem += " (and " + std::to_string(out->wrong - 1) + " more wrong results)";
  return out->wrong == 0;
}

bool Client::settle(std::chrono::milliseconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    // One turn at least, as any host gives an idle engine: with no request
    // left it hands a handshake burst's free heap back (Engine::run_turn).
    if (brg_poll(e_, 0) < 0) return false;
    const struct brg_stats st = stats();
    if (st.connections_idle == st.connections_open) return true;
    if (brg_poll(e_, 10) < 0) return false;
  }
  return false;
}

}  // namespace barrage::e2e
