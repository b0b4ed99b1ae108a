// Token estimate with simdjson's On-Demand parser: only the top-level keys
// are looked at, the values of all others are skipped unparsed. The body is
// copied into a reused padded buffer, because simdjson reads up to
// SIMDJSON_PADDING bytes past the end and a string_view promises none.
#include "flow/token_estimate.hpp"

#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>

namespace barrage {
namespace {

namespace od = simdjson::ondemand;

// Bodies up to this size reuse a per-thread buffer and parser, so the usual
// request allocates nothing; a larger one gets its own, so the thread does
// not keep that much memory after one huge prompt.
constexpr size_t kReusedBytes = size_t{1} << 20;

int64_t add_sat(int64_t a, int64_t b) noexcept { return a > INT64_MAX - b ? INT64_MAX : a + b; }

// A non-negative whole count, or -1. Proxies sometimes write 100.0.
int64_t read_count(od::value v) noexcept {
  od::number num;
  if (v.get_number().get(num) != simdjson::SUCCESS) return -1;
  if (num.is_int64()) return std::max<int64_t>(num.get_int64(), -1);
  if (num.is_uint64()) return INT64_MAX;
  const double d = num.get_double();
  if (!(d >= 0) || d != std::floor(d)) return -1;
  return d >= 9.2e18 ? INT64_MAX : int64_t(d);
}

// The completion ceiling the body asks for, or 0; -1 if it is no JSON object.
int64_t completion_ceiling(od::parser& parser, const char* buf, size_t len, size_t cap) noexcept {
  od::document doc;
  if (parser.iterate(buf, len, cap).get(doc) != simdjson::SUCCESS) return -1;
  od::object obj;
  if (doc.get_object().get(obj) != simdjson::SUCCESS) return -1;
  int64_t ceiling = 0, choices = 1;
  for (auto field : obj) {
    std::string_view key;
    if (field.unescaped_key().get(key) != simdjson::SUCCESS) return -1;
    if (key == "max_tokens" || key == "max_completion_tokens" || key == "max_output_tokens") {
      ceiling = std::max(ceiling, read_count(field.value()));
    } else if (key == "n") {
      choices = std::max<int64_t>(1, read_count(field.value()));
    }
  }
  if (ceiling > 0 && choices > INT64_MAX / ceiling) return INT64_MAX;
  return ceiling * choices;
}

}  // namespace

int64_t estimate_tokens(std::string_view body) noexcept {
  const size_t len = body.size();
  const int64_t prompt = int64_t(len / 4 + (len % 4 != 0));
  if (len == 0) return 0;
  // No JSON object can start with anything else; skip the copy for them.
  const size_t first = body.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos || body[first] != '{') return prompt;
  try {
    thread_local std::string t_buf;
    thread_local od::parser t_parser;
    std::string own_buf;
    std::unique_ptr<od::parser> own_parser;
    std::string* buf = &t_buf;
    od::parser* parser = &t_parser;
    if (len > kReusedBytes) {
      buf = &own_buf;
      own_parser = std::make_unique<od::parser>();
      parser = own_parser.get();
    }
    const size_t cap = len + simdjson::SIMDJSON_PADDING;
    if (buf->size() < cap) buf->resize(cap);
    std::memcpy(buf->data(), body.data(), len);
    // Blank padding: simdjson needs it readable, whitespace makes it inert.
    std::memset(buf->data() + len, ' ', simdjson::SIMDJSON_PADDING);
    const int64_t ceiling = completion_ceiling(*parser, buf->data(), len, buf->size());
    return ceiling > 0 ? add_sat(prompt, ceiling) : prompt;
  } catch (...) {
    // bad_alloc from growing the buffer: the prompt alone is still a fair guess.
    return prompt;
  }
}

}  // namespace barrage
