// hello.cpp: hello.c in C++. The same single request, with every barrage
// handle owned by a std::unique_ptr so that no early return can leak one.
//
//   c++ -std=c++17 hello.cpp $(pkg-config --cflags --libs barrage) -o hello_cpp
//   ./hello_cpp https://localhost:8443/v1/chat/completions ca.pem
//
// The C ABI never throws, so wrapping it needs no try/catch: each call
// returns a brg_status, and the deleters below run the matching free
// function. Ownership is as in hello.c: the config is copied by
// brg_engine_new, requests are copied by brg_submit, each brg_result is ours
// until brg_result_free and outlives the engine.
//
// Exit status: 0 on success (HTTP 2xx), 1 on failure, 2 on a usage error.
#include <barrage.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

namespace {

// One deleter per handle type; each free function accepts NULL.
struct ConfigDeleter {
  void operator()(brg_config* c) const noexcept { brg_config_free(c); }
};
struct EngineDeleter {
  void operator()(brg_engine* e) const noexcept { brg_engine_free(e); }
};
struct ResultDeleter {
  void operator()(brg_result* r) const noexcept { brg_result_free(r); }
};
using ConfigPtr = std::unique_ptr<brg_config, ConfigDeleter>;
using EnginePtr = std::unique_ptr<brg_engine, EngineDeleter>;
using ResultPtr = std::unique_ptr<brg_result, ResultDeleter>;

// Builds an engine, or returns null after printing why.
EnginePtr make_engine(const char* ca_file) {
  ConfigPtr cfg(brg_config_new());
  if (!cfg) {
    std::fprintf(stderr, "out of memory\n");
    return nullptr;
  }
  if (brg_config_from_env(cfg.get()) != BRG_OK) {
    std::fprintf(stderr, "bad environment: %s\n", brg_config_error(cfg.get()));
    return nullptr;
  }
  if (ca_file && brg_config_set_str(cfg.get(), BRG_OPT_CA_FILE, ca_file) != BRG_OK) {
    std::fprintf(stderr, "bad CA file option: %s\n", brg_config_error(cfg.get()));
    return nullptr;
  }
  brg_engine* raw = nullptr;
  int rc = brg_engine_new(cfg.get(), &raw);  // copies cfg; cfg is freed on return
  if (rc != BRG_OK) {
    std::fprintf(stderr, "brg_engine_new: %s: %s\n", brg_strerror(rc), brg_last_error());
    return nullptr;
  }
  return EnginePtr(raw);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::fprintf(stderr,
                 "usage: %s URL [CA_FILE]\n"
                 "  sends one chat-completion POST to URL and prints the answer;\n"
                 "  CA_FILE adds a trusted CA (PEM), e.g. for a local test server;\n"
                 "  OPENAI_API_KEY, if set, is sent as a Bearer token.\n",
                 argc > 0 ? argv[0] : "hello_cpp");
    return 2;
  }
  EnginePtr engine = make_engine(argc == 3 ? argv[2] : nullptr);
  if (!engine) return 1;

  const std::string body =
      R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello."}]})";
  std::vector<brg_header> headers{{"Content-Type", "application/json"}};
  std::string auth;
  if (const char* key = std::getenv("OPENAI_API_KEY"); key && *key) {
    auth = std::string("Bearer ") + key;
    headers.push_back({"Authorization", auth.c_str()});
  }

  brg_request req{};  // value-initialised: every field zero
  req.size = sizeof req;
  req.method = "POST";
  req.url = argv[1];
  req.headers = headers.data();
  req.n_headers = static_cast<uint32_t>(headers.size());
  req.body = body.data();
  req.body_len = body.size();
  req.max_retries = -1;

  if (int rc = brg_submit(engine.get(), &req, nullptr); rc != BRG_OK) {
    std::fprintf(stderr, "brg_submit: %s: %s\n", brg_strerror(rc), brg_last_error());
    return 1;  // engine's deleter frees it
  }

  ResultPtr result;
  for (;;) {
    brg_result* raw = nullptr;
    if (brg_results(engine.get(), &raw, 1) == 1) {
      result.reset(raw);
      break;
    }
    if (int rc = brg_poll(engine.get(), -1); rc < 0) {
      std::fprintf(stderr, "brg_poll: %s\n", brg_strerror(rc));
      return 1;
    }
  }

  // The engine may go first: results already taken stay valid on their own.
  engine.reset();

  std::printf("status=%s (%d) http=%d attempts=%u\n", brg_status_name(result->status),
              static_cast<int>(result->status), static_cast<int>(result->http_status),
              static_cast<unsigned>(result->attempts));
  if (result->error[0] != '\0') std::printf("error=%s\n", result->error);
  if (result->prompt_tokens >= 0)
    std::printf("usage: prompt_tokens=%lld completion_tokens=%lld\n",
                static_cast<long long>(result->prompt_tokens),
                static_cast<long long>(result->completion_tokens));
  std::printf("body=%.*s\n", static_cast<int>(result->body_len),
              result->body ? result->body : "");
  return result->status == BRG_OK ? 0 : 1;
}
