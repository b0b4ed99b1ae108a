// Shared scaffolding for the C-ABI integration tests: an engine configured
// for one backend, a mock server with its CA on disk, and a loop that runs
// submitted requests to completion through the public API only.
#pragma once

#include <barrage.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "mock_server.hpp"

namespace barrage::testing {

struct ResultDeleter {
  void operator()(brg_result* r) const { brg_result_free(r); }
};
using ResultPtr = std::unique_ptr<brg_result, ResultDeleter>;

inline std::string backend_label(const ::testing::TestParamInfo<int>& info) {
  return info.param == BRG_BACKEND_IO_URING ? "io_uring" : "epoll";
}

// A temporary file that disappears with the object.
class TempFile {
 public:
  explicit TempFile(const std::string& content) {
    char tmpl[] = "/tmp/barrage-test-XXXXXX";
    int fd = mkstemp(tmpl);
    path_ = tmpl;
    if (fd >= 0) {
      ssize_t n = ::write(fd, content.data(), content.size());
      (void)n;
      ::close(fd);
    }
  }
  ~TempFile() { ::unlink(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct MockEndpoint {
  std::unique_ptr<mock::MockServer> server;
  std::unique_ptr<TempFile> ca;
  std::string base;  // "https://127.0.0.1:PORT"

  static MockEndpoint start(mock::MockOptions opts = {}) {
    MockEndpoint m;
    std::string err;
    m.server = mock::MockServer::start(opts, &err);
    if (!m.server) {
      ADD_FAILURE() << "mock server failed to start: " << err;
      return m;
    }
    if (!m.server->ca_pem().empty()) m.ca = std::make_unique<TempFile>(m.server->ca_pem());
    m.base = std::string(opts.tls ? "https" : "http") + "://127.0.0.1:" + std::to_string(m.server->port());
    return m;
  }
  std::string url(const std::string& path = "/v1/chat/completions") const { return base + path; }
};

class Engine {
 public:
  // Options as (option, value) pairs applied after the backend choice.
  Engine(int backend, const std::string& ca_file, std::vector<std::pair<brg_option, int64_t>> opts = {}) {
    brg_config* c = brg_config_new();
    EXPECT_EQ(brg_config_set_int(c, BRG_OPT_BACKEND, backend), 0);
    if (!ca_file.empty()) EXPECT_EQ(brg_config_set_str(c, BRG_OPT_CA_FILE, ca_file.c_str()), 0);
    for (auto [k, v] : opts) {
      EXPECT_EQ(brg_config_set_int(c, k, v), 0) << "option " << k;
    }
    int rc = brg_engine_new(c, &e_);
    brg_config_free(c);
    EXPECT_EQ(rc, 0) << brg_last_error();
  }
  ~Engine() { brg_engine_free(e_); }
  brg_engine* get() const { return e_; }

  int backend() const {
    struct brg_stats s {};
    s.size = sizeof s;
    brg_stats(e_, &s);
    return s.backend;
  }
  struct brg_stats stats() const {
    struct brg_stats s {};
    s.size = sizeof s;
    brg_stats(e_, &s);
    return s;
  }

  // Submits and returns the id (0 on failure, with the status in *rc).
  uint64_t submit(const std::string& url, const std::string& body = R"({"model":"mock-1","messages":[{"role":"user","content":"hello"}]})",
                  std::vector<std::pair<std::string, std::string>> headers = {}, int64_t deadline_ms = 0,
                  int32_t max_retries = -1, int64_t timeout_ms = 0, int* rc_out = nullptr,
                  const char* limit_key = nullptr) {
    std::vector<brg_header> hs;
    for (auto& [n, v] : headers) hs.push_back({n.c_str(), v.c_str()});
    brg_request r{};
    r.size = sizeof r;
    r.url = url.c_str();
    r.headers = hs.data();
    r.n_headers = uint32_t(hs.size());
    r.body = body.data();
    r.body_len = body.size();
    r.deadline_ms = deadline_ms;
    r.max_retries = max_retries;
    r.timeout_ms = timeout_ms;
    r.limit_key = limit_key;
    r.user_data = next_user_data_++;
    uint64_t id = 0;
    int rc = brg_submit(e_, &r, &id);
    if (rc_out) *rc_out = rc;
    EXPECT_TRUE(rc == 0 || rc_out) << "submit failed: " << brg_strerror(rc) << ": " << brg_last_error();
    return rc == 0 ? id : 0;
  }

  // Polls until `count` results arrived or `limit` passed.
  std::map<uint64_t, ResultPtr> collect(size_t count, std::chrono::milliseconds limit = std::chrono::seconds(30)) {
    std::map<uint64_t, ResultPtr> out;
    auto until = std::chrono::steady_clock::now() + limit;
    while (out.size() < count && std::chrono::steady_clock::now() < until) {
      int rc = brg_poll(e_, 50);
      EXPECT_GE(rc, 0);
      take(out);
    }
    take(out);
    EXPECT_EQ(out.size(), count) << "results missing after " << limit.count() << " ms";
    return out;
  }

  void take(std::map<uint64_t, ResultPtr>& out) {
    brg_result* buf[128];
    size_t n;
    while ((n = brg_results(e_, buf, 128)) > 0)
      for (size_t i = 0; i < n; ++i) {
        EXPECT_TRUE(out.find(buf[i]->id) == out.end()) << "duplicate result for id " << buf[i]->id;
        out[buf[i]->id] = ResultPtr(buf[i]);
      }
  }

 private:
  brg_engine* e_ = nullptr;
  uint64_t next_user_data_ = 1;
};

using EnginePtr = std::unique_ptr<brg_engine, void (*)(brg_engine*)>;

// An engine for `backend` with no retries and whatever else configure(brg_config*)
// sets; a null pointer (and a test failure) when it cannot be made.
template <class Configure>
EnginePtr make_engine(int backend, Configure&& configure) {
  brg_config* c = brg_config_new();
  EXPECT_EQ(brg_config_set_int(c, BRG_OPT_BACKEND, backend), 0);
  EXPECT_EQ(brg_config_set_int(c, BRG_OPT_MAX_RETRIES, 0), 0);
  configure(c);
  brg_engine* e = nullptr;
  int rc = brg_engine_new(c, &e);
  brg_config_free(c);
  EXPECT_EQ(rc, 0) << brg_last_error();
  return EnginePtr(e, brg_engine_free);
}

// Submits n identical POSTs of body to url and polls until all n results
// are in (or 30 s pass); the results in arrival order.
inline std::vector<ResultPtr> run_requests(brg_engine* e, const std::string& url, int n, const std::string& body) {
  for (int i = 0; i < n; ++i) {
    brg_request r{};
    r.size = sizeof r;
    r.url = url.c_str();
    r.body = body.data();
    r.body_len = body.size();
    r.max_retries = -1;
    EXPECT_EQ(brg_submit(e, &r, nullptr), 0) << brg_last_error();
  }
  std::vector<ResultPtr> out;
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (int(out.size()) < n && std::chrono::steady_clock::now() < until) {
    EXPECT_GE(brg_poll(e, 20), 0);
    brg_result* buf[32];
    size_t k;
    while ((k = brg_results(e, buf, 32)) > 0)
      for (size_t i = 0; i < k; ++i) out.emplace_back(buf[i]);
  }
  EXPECT_EQ(int(out.size()), n);
  return out;
}

inline std::string chat_body(const std::string& content) {
  return R"({"model":"mock-1","messages":[{"role":"user","content":")" + content + R"("}]})";
}

}  // namespace barrage::testing
