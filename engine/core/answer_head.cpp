// keep_answer_head: the request id and, when asked for, the header block.
#include "core/answer_head.hpp"

#include "core/request.hpp"
#include "http/ascii.hpp"

namespace barrage {

void keep_answer_head(Request& r, const http::Response& resp) noexcept {
  std::string_view rid = resp.header("x-request-id");  // OpenAI; Anthropic says request-id
  if (rid.empty()) rid = resp.header("request-id");
  try {
    r.request_id.assign(rid);
    r.headers.clear();
    if (!r.keep_headers) return;
    // "name: value\n" per field, names in lower case whichever protocol
    // carried them. Both parsers refuse CR and LF inside names and values,
    // so the block splits unambiguously at '\n'.
    for (const auto& [name, value] : resp.headers()) {
      const size_t at = r.headers.size();
      r.headers.append(name).append(": ").append(value).push_back('\n');
      for (size_t i = at; i < at + name.size(); ++i) r.headers[i] = http::to_lower(r.headers[i]);
    }
  } catch (...) {  // out of memory: the result goes without them rather than not at all
    r.request_id.clear();
    r.headers.clear();
  }
}

}  // namespace barrage
