// One engine driven inline through the C ABI, as an application would: it
// submits a batch of identical requests, polls until every result is in and
// checks each one (status, HTTP code, exact body, usage), recording when each
// finished. Every benchmark of the end-to-end suite measures through this.
#pragma once

#include <barrage.h>

#include <cstdint>
#include <memory>
#include <chrono>
#include <string>
#include <vector>

namespace barrage::e2e {

struct ClientOptions {
  brg_backend backend = BRG_BACKEND_AUTO;
  int max_inflight = 256;
  int max_conns_per_host = 0;  // 0: same as max_inflight
  int idle_timeout_ms = 0;     // 0: engine default
  bool tls_resume = true;
  int http_version = 1;  // BRG_OPT_HTTP_VERSION; the peer offers h2, so 0 would pick it
};

// What every result of a batch must be.
enum class Want {
  answer,   // BRG_OK, HTTP 200, the peer's exact body, usage 17/42
  timeout,  // BRG_E_TIMEOUT
};

struct Batch {
  std::string url;
  size_t n = 0;
  // Most requests submitted and not yet finished; 0 submits all n at once.
  // The engine's MAX_INFLIGHT still bounds what is really in flight.
  size_t window = 0;
  // > 0: open loop, request i is submitted at start + i / rate_per_s
  // whatever the answers do (window still bounds what is outstanding).
  double rate_per_s = 0;
  int64_t deadline_ms = 0;
  Want want = Want::answer;
};

struct Outcome {
  std::string problem;            // the first wrong result or failure; empty when all n were right
  size_t wrong = 0;               // results that were not what the batch wanted
  int64_t start_ns = 0, end_ns = 0;  // first submit, last result taken
  std::vector<int64_t> done_ns;   // when each result was taken, from start_ns
  std::vector<int64_t> total_us;  // brg_result.total_us of each result (from submit)
  std::vector<int64_t> service_us;  // total_us - queued_us: from getting an in-flight slot
  double seconds() const { return double(end_ns - start_ns) / 1e9; }
};

const char* backend_name(int backend) noexcept;

class Client {
 public:
  // nullptr and *why when the engine cannot be made or did not start on the
  // backend asked for.
  static std::unique_ptr<Client> open(const ClientOptions& opts, std::string* why);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Runs one batch to its end. False when any result was wrong or the run
  // failed (out->problem says why). Gives up when no result arrives for
  // 30 s, so a stalled engine fails the benchmark instead of hanging it.
  bool run(const Batch& batch, Outcome* out);
  struct brg_stats stats() const;
  // Polls until every open connection is idle (handshakes the pool started
  // for requests that another connection served have finished), one turn at
  // least, at most `limit`; so the handshakes of a warm-up are never timed.
  // False on timeout.
  bool settle(std::chrono::milliseconds limit);

 private:
  explicit Client(brg_engine* e) : e_(e) {}
  bool check(const brg_result& r, const Batch& batch, std::string* why) const;
  brg_engine* e_;
};

}  // namespace barrage::e2e
