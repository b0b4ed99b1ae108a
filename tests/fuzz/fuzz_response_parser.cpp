// HTTP/1.1 response parser: the same bytes fed whole or in three pieces give
// the same status, headers, body, keep-alive, error and consumed count; a
// complete response never exceeds the header and body limits.
#include <string>
#include <utility>
#include <vector>

#include "fuzz_util.hpp"
#include "http/response_parser.hpp"

using barrage::http::ResponseLimits;
using barrage::http::ResponseParser;

namespace {

struct Outcome {
  ResponseParser::State state;
  ResponseParser::Error error;
  int status;
  bool keep_alive;
  size_t consumed;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool operator==(const Outcome&) const = default;
};

Outcome run(const ResponseLimits& limits, bool head, std::string_view data, const std::vector<size_t>& cuts) {
  ResponseParser p(limits);
  p.reset(head);
  size_t total = 0, from = 0;
  ResponseParser::State s = ResponseParser::State::need_more;
  for (size_t i = 0; i <= cuts.size() && s == ResponseParser::State::need_more; ++i) {
    const size_t to = i < cuts.size() ? cuts[i] : data.size();
    size_t consumed = 0;
    s = p.feed(data.data() + from, to - from, &consumed);
    FUZZ_CHECK(consumed <= to - from);
    // need_more means every byte offered was taken.
    FUZZ_CHECK(s != ResponseParser::State::need_more || consumed == to - from);
    total += consumed;
    from = to;
  }
  if (s == ResponseParser::State::need_more) s = p.finish();
  FUZZ_CHECK(s == p.state());
  FUZZ_CHECK((s == ResponseParser::State::error) == (p.error() != ResponseParser::Error::none));
  FUZZ_CHECK(s != ResponseParser::State::error || !p.error_message().empty());
  if (s == ResponseParser::State::complete) {
    FUZZ_CHECK(p.status() >= 200 && p.status() <= 999);
    FUZZ_CHECK(p.body().size() <= limits.max_body_bytes);
    FUZZ_CHECK(!head || p.body().empty());
    size_t header_bytes = 0;
    for (const auto& h : p.headers()) header_bytes += h.first.size() + h.second.size();
    FUZZ_CHECK(header_bytes <= limits.max_header_bytes);
  }
  // After a final state, more bytes change nothing.
  size_t more = 0;
  if (s != ResponseParser::State::need_more) {
    FUZZ_CHECK(p.feed("HTTP/1.1 200 OK\r\n\r\n", 19, &more) == s && more == 0);
  }
  // On error, what was parsed before it depends on where the pieces broke.
  if (s == ResponseParser::State::error) return {s, p.error(), 0, false, 0, {}, {}};
  return {s, p.error(), p.status(), s == ResponseParser::State::complete && p.keep_alive(), total,
          p.headers(), p.body()};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Input in(data, size);
  const uint8_t flags = in.byte();
  ResponseLimits limits;
  if (flags & 1) limits.max_header_bytes = 16 + in.byte() * 4;
  if (flags & 2) limits.max_body_bytes = in.byte();
  const bool head = flags & 4;
  const fuzz::Splits sp = fuzz::splits(in);
  const std::string_view payload = in.rest();

  const Outcome whole = run(limits, head, payload, {});
  const Outcome split = run(limits, head, payload, {sp.a, sp.b});
  FUZZ_CHECK(whole == split);
  return 0;
}
