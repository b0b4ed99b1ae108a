// SSE parser and stream-event reader: the same body fed whole, in three
// pieces, or with the callback stopping after every event (the rest fed
// again) gives the same events, last id, retry and error; every event's
// reading (token, done, usage) is -1 or >= 0 for usage and the same each way.
#include <string>
#include <vector>

#include "fuzz_util.hpp"
#include "http/sse_parser.hpp"
#include "http/stream_event.hpp"

using barrage::http::SseEvent;
using barrage::http::SseParser;
using barrage::http::StreamEventReader;

namespace {

struct Ev {
  std::string type, data, id;
  bool token, done;
  int64_t prompt, completion;
  bool operator==(const Ev&) const = default;
};

struct Outcome {
  std::vector<Ev> events;
  SseParser::Status status;
  std::string last_id;
  int64_t retry_ms;
  bool mid_event;
  bool operator==(const Outcome&) const = default;
};

StreamEventReader& reader() {
  static StreamEventReader r;
  return r;
}

Outcome run(size_t max_event, std::string_view body, const std::vector<size_t>& cuts, bool stop_each) {
  SseParser p(max_event);
  Outcome o{};
  auto on_event = [&](const SseEvent& e) noexcept -> bool {
    FUZZ_CHECK(e.data.size() <= max_event);
    FUZZ_CHECK(!e.type.empty());
    const auto info = reader().read(e.data);
    FUZZ_CHECK(info.usage.prompt_tokens >= -1 && info.usage.completion_tokens >= -1);
    o.events.push_back({std::string(e.type), std::string(e.data), std::string(e.id), info.token, info.done,
                        info.usage.prompt_tokens, info.usage.completion_tokens});
    return !stop_each;
  };
  SseParser::Status s = SseParser::Status::ok;
  size_t from = 0;
  for (size_t i = 0; i <= cuts.size() && s != SseParser::Status::error; ++i) {
    const size_t to = i < cuts.size() ? cuts[i] : body.size();
    std::string_view piece = body.substr(from, to - from);
    from = to;
    const size_t piece_size = piece.size();
    for (size_t guard = 0;; ++guard) {
      FUZZ_CHECK(guard <= piece_size + 1);  // each stop takes a line end, so this ends
      size_t consumed = 0;
      const size_t before = o.events.size();
      s = p.feed(piece, on_event, &consumed);
      if (s == SseParser::Status::ok) {
        FUZZ_CHECK(consumed == piece.size());
        break;
      }
      if (s == SseParser::Status::error) {
        FUZZ_CHECK(consumed == 0 && !p.error().empty());
        break;
      }
      FUZZ_CHECK(stop_each && consumed <= piece.size() && o.events.size() == before + 1);
      piece.remove_prefix(consumed);
    }
  }
  o.status = s;
  o.last_id = std::string(p.last_id());
  o.retry_ms = p.retry_ms();
  // After an error the stream is over: what it still holds depends on where
  // the pieces broke (a partial line kept from an earlier piece), so only a
  // healthy parser's mid_event() is compared.
  o.mid_event = s != SseParser::Status::error && p.mid_event();
  FUZZ_CHECK(o.retry_ms >= -1);
  FUZZ_CHECK(p.events() == o.events.size());
  const SseParser::Status fin = p.finish();
  FUZZ_CHECK(fin == (s == SseParser::Status::error ? SseParser::Status::error : SseParser::Status::ok));
  return o;
}

void dump(const char* label, const Outcome& o) {
  std::fprintf(stderr, "%s: status=%d events=%zu last_id=%zu bytes retry=%lld mid_event=%d\n", label, int(o.status),
               o.events.size(), o.last_id.size(), static_cast<long long>(o.retry_ms), int(o.mid_event));
  for (const Ev& e : o.events) std::fprintf(stderr, "  event type=%zu bytes data=%zu bytes\n", e.type.size(), e.data.size());
}

void same(const Outcome& whole, const Outcome& other, const char* label) {
  if (whole == other) return;
  dump("whole", whole);
  dump(label, other);
  fuzz::violated(label);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Input in(data, size);
  const size_t max_event = (in.byte() & 1) ? 1 + in.byte() : 64 * 1024;
  const fuzz::Splits sp = fuzz::splits(in);
  const std::string_view body = in.rest();

  const Outcome whole = run(max_event, body, {}, false);
  same(whole, run(max_event, body, {sp.a, sp.b}, false), "split in three differs from whole");
  same(whole, run(max_event, body, {sp.a, sp.b}, true), "stopping after each event differs from whole");
  return 0;
}
