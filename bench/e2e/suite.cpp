// Shared helpers of the end-to-end benchmarks (see suite.hpp).
#include "suite.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace barrage::e2e {

bool g_failed = false;

void fail(benchmark::State& state, const std::string& what) {
  g_failed = true;
  std::fprintf(stderr, "FAIL: %s\n", what.c_str());
  state.SkipWithError(what.c_str());
}

bool quick() noexcept {
  const char* q = std::getenv("BARRAGE_E2E_QUICK");
  return q && std::strcmp(q, "0") != 0 && *q;
}

size_t scaled(size_t n, size_t floor) noexcept {
  if (!quick()) return n;
  return n / 10 > floor ? n / 10 : floor;
}

std::unique_ptr<Client> open_client(benchmark::State& state, const ClientOptions& opts) {
  std::string why;
  auto c = Client::open(opts, &why);
  if (!c) fail(state, why);
  return c;
}

bool run_or_fail(benchmark::State& state, Client& c, const Batch& b, Outcome* out, const char* what) {
  if (c.run(b, out)) return true;
  fail(state, std::string(what) + ": " + out->problem);
  return false;
}

}  // namespace barrage::e2e
