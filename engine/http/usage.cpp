// "usage" extraction with simdjson's DOM parser. The whole document is
// validated, so a truncated or corrupt answer never yields token counts.
#include "http/usage.hpp"

#include "http/usage_json.hpp"

#include <simdjson.h>

#include <cmath>
#include <memory>

namespace barrage::http {
namespace {

// Bodies up to this size reuse one parser per thread; a larger one gets a
// parser of its own so its buffers are not held for the thread's lifetime.
constexpr size_t kReusedParserBytes = 1u << 20;

int64_t read_count(simdjson::dom::object usage, std::string_view key) noexcept {
  simdjson::dom::element value;
  if (usage[key].get(value) != simdjson::SUCCESS) return -1;
  int64_t n = -1;
  if (value.get_int64().get(n) == simdjson::SUCCESS) return n >= 0 ? n : -1;
  // Some proxies re-serialise counts as 12.0; accept exact whole numbers only.
  double d = 0;
  if (value.get_double().get(d) == simdjson::SUCCESS && std::isfinite(d) && d >= 0 &&
      d < 9007199254740992.0 && d == std::floor(d)) {
    return static_cast<int64_t>(d);
  }
  return -1;
}

int64_t read_first(simdjson::dom::object usage, std::string_view a, std::string_view b) noexcept {
  const int64_t n = read_count(usage, a);
  return n >= 0 ? n : read_count(usage, b);
}

}  // namespace

Usage usage_from(simdjson::dom::object u) noexcept {
  Usage usage;
  usage.prompt_tokens = read_first(u, "prompt_tokens", "input_tokens");
  usage.completion_tokens = read_first(u, "completion_tokens", "output_tokens");
  return usage;
}

UsageReader::UsageReader() : parser_(std::make_unique<simdjson::dom::parser>()) {}
UsageReader::~UsageReader() = default;

Usage extract_usage(std::string& body) noexcept {
  try {
    UsageReader reader;
    return reader.read(body);
  } catch (...) {
    return Usage{};
  }
}

Usage UsageReader::read(std::string& body) noexcept {
  Usage usage;
  try {
    const size_t len = body.size();
    if (len == 0) return usage;
    // simdjson reads up to SIMDJSON_PADDING bytes past the end. Growing and
    // shrinking the size gives us that many initialised bytes of capacity
    // without touching the contents, and without a copy when the capacity
    // is already there.
    if (body.capacity() < len + simdjson::SIMDJSON_PADDING) {
      body.resize(len + simdjson::SIMDJSON_PADDING);
      body.resize(len);
    }
    std::unique_ptr<simdjson::dom::parser> own;
    simdjson::dom::parser* parser = parser_.get();
    // A parser keeps capacity for the largest document it saw: one huge
    // answer must not pin that much memory for the engine's lifetime.
    if (len > kReusedParserBytes) {
      own = std::make_unique<simdjson::dom::parser>();
      parser = own.get();
    }
    simdjson::dom::element doc;
    if (parser->parse(body.data(), len, /*realloc_if_needed=*/false).get(doc) != simdjson::SUCCESS) {
      return usage;
    }
    simdjson::dom::object root;
    if (doc.get_object().get(root) != simdjson::SUCCESS) return usage;
    simdjson::dom::object u;
    if (root["usage"].get_object().get(u) != simdjson::SUCCESS) return usage;
    usage = usage_from(u);
  } catch (...) {
    // bad_alloc from growing the body or the parser: usage stays unknown.
    return Usage{};
  }
  return usage;
}

}  // namespace barrage::http
