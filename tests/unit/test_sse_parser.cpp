// Unit tests for engine/http/sse_parser: OpenAI and Anthropic streams, line
// ends, fields, BOM, id and retry, every way of splitting a stream, the size
// limit, early stop, out of memory and reuse.
#include "http/sse_parser.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <ostream>
#include <string>
#include <vector>

// Counts down allocations to make the next ones fail, so the out-of-memory
// paths run (nghttp2's failmalloc idea). Global because operator new is;
// only this test binary sees it, and -1 leaves allocation alone.
namespace {
long g_allocs_until_failure = -1;
}

void* operator new(size_t size) {
  if (g_allocs_until_failure == 0) throw std::bad_alloc();
  if (g_allocs_until_failure > 0) --g_allocs_until_failure;
  if (void* p = std::malloc(size ? size : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t size) { return operator new(size); }
// The pairs match (new above is malloc); GCC cannot see through the replacement.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace barrage::http {
namespace {

using Status = SseParser::Status;
using namespace std::string_view_literals;

struct Event {
  std::string type;
  std::string data;
  std::string id;
  bool operator==(const Event&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Event& e) {
  return os << "{" << e.type << ", \"" << e.data << "\", id " << e.id << "}";
}

// Feeds each piece from a fresh heap copy, so that ASan catches any view the
// parser keeps into an earlier piece.
Status feed_piece(SseParser& p, std::string_view piece, std::vector<Event>& out, size_t* consumed = nullptr) {
  const std::unique_ptr<char[]> copy(new char[piece.size() + 1]);
  std::memcpy(copy.get(), piece.data(), piece.size());
  return p.feed(
      std::string_view(copy.get(), piece.size()),
      [&out](const SseEvent& e) noexcept {
        out.push_back({std::string(e.type), std::string(e.data), std::string(e.id)});
        return true;
      },
      consumed);
}

std::vector<Event> parse(std::string_view stream, size_t max = 1 << 20) {
  SseParser p(max);
  std::vector<Event> out;
  EXPECT_EQ(feed_piece(p, stream, out), Status::ok) << p.error();
  EXPECT_EQ(p.finish(), Status::ok);
  EXPECT_EQ(p.events(), out.size());
  return out;
}

std::vector<Event> parse_pieces(const std::vector<std::string_view>& pieces) {
  SseParser p(1 << 20);
  std::vector<Event> out;
  for (const auto piece : pieces) EXPECT_EQ(feed_piece(p, piece, out), Status::ok) << p.error();
  EXPECT_EQ(p.finish(), Status::ok);
  return out;
}

Event msg(std::string data, std::string id = "") { return {"message", std::move(data), std::move(id)}; }

TEST(SseParser, OpenAiStreamWithDone) {
  const std::string_view stream =
      "data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n"
      "data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n"
      "data: {\"id\":\"chatcmpl-1\",\"choices\":[],\"usage\":{\"prompt_tokens\":5}}\n\n"
      "data: [DONE]\n\n";
  const auto events = parse(stream);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0], msg("{\"id\":\"chatcmpl-1\",\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}"));
  EXPECT_EQ(events[1], msg("{\"id\":\"chatcmpl-1\",\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}"));
  EXPECT_EQ(events[3], msg("[DONE]"));
}

TEST(SseParser, AnthropicEventTypes) {
  const std::string_view stream =
      "event: message_start\n"
      "data: {\"type\":\"message_start\"}\n\n"
      "event: content_block_delta\n"
      "data: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"Hello\"}}\n\n"
      "event: ping\n"
      "data: {\"type\": \"ping\"}\n\n"
      "data: {\"untyped\":true}\n\n"
      "event: message_stop\n"
      "data: {\"type\":\"message_stop\"}\n\n";
  const auto events = parse(stream);
  ASSERT_EQ(events.size(), 5u);
  EXPECT_EQ(events[0], (Event{"message_start", "{\"type\":\"message_start\"}", ""}));
  EXPECT_EQ(events[1].type, "content_block_delta");
  EXPECT_EQ(events[1].data, "{\"type\":\"content_block_delta\",\"delta\":{\"text\":\"Hello\"}}");
  EXPECT_EQ(events[2].type, "ping");
  // The type does not carry over to the next event.
  EXPECT_EQ(events[3], msg("{\"untyped\":true}"));
  EXPECT_EQ(events[4].type, "message_stop");
}

// Everything at once: BOM, all three line ends, comments, multi-line data,
// ids, retry, a field without colon, an event without data.
constexpr std::string_view kMixed =
    "\xEF\xBB\xBF"
    ": hello\r\n"
    "retry: 2500\r"
    "event: first\n"
    "id: 7\r\n"
    "data: one\r"
    "data:two\n"
    "data\n"
    "\r\n"
    "data: {\"x\":1}\r"
    "\r"
    "event: nothing\n"
    "\n"
    "id\n"
    "data:  spaced\r\n"
    ":comment between\n"
    "data: [DONE]\n"
    "\n"
    "data: cut short";

const std::vector<Event> kMixedEvents = {
    {"first", "one\ntwo\n", "7"},
    {"message", "{\"x\":1}", "7"},
    {"message", " spaced\n[DONE]", ""},
};

TEST(SseParser, MixedStreamWholeIsReference) {
  SseParser p(1 << 20);
  std::vector<Event> out;
  ASSERT_EQ(feed_piece(p, kMixed, out), Status::ok);
  EXPECT_TRUE(p.mid_event());
  EXPECT_EQ(p.finish(), Status::ok);
  EXPECT_EQ(out, kMixedEvents);
  EXPECT_EQ(p.retry_ms(), 2500);
  EXPECT_EQ(p.last_id(), "");
}

TEST(SseParser, ByteByByteGivesSameEvents) {
  SseParser p(1 << 20);
  std::vector<Event> out;
  for (const char c : kMixed) ASSERT_EQ(feed_piece(p, std::string_view(&c, 1), out), Status::ok);
  ASSERT_EQ(p.finish(), Status::ok);
  EXPECT_EQ(out, kMixedEvents);
  EXPECT_EQ(p.retry_ms(), 2500);
}

TEST(SseParser, EveryTwoPieceSplitGivesSameEvents) {
  for (size_t cut = 0; cut <= kMixed.size(); ++cut) {
    SseParser p(1 << 20);
    std::vector<Event> out;
    size_t consumed = 0;
    ASSERT_EQ(feed_piece(p, kMixed.substr(0, cut), out, &consumed), Status::ok) << "cut " << cut;
    ASSERT_EQ(consumed, cut);
    ASSERT_EQ(feed_piece(p, kMixed.substr(cut), out, &consumed), Status::ok) << "cut " << cut;
    ASSERT_EQ(consumed, kMixed.size() - cut);
    ASSERT_EQ(p.finish(), Status::ok);
    ASSERT_EQ(out, kMixedEvents) << "cut " << cut;
    ASSERT_EQ(p.retry_ms(), 2500) << "cut " << cut;
  }
}

TEST(SseParser, EveryThreePieceSplitGivesSameEvents) {
  const std::string_view s = kMixed.substr(0, 70);  // BOM, all line ends, the first event
  const auto want = parse(s);
  ASSERT_EQ(want.size(), 1u);
  for (size_t a = 0; a <= s.size(); ++a) {
    for (size_t b = a; b <= s.size(); ++b) {
      ASSERT_EQ(parse_pieces({s.substr(0, a), s.substr(a, b - a), s.substr(b)}), want) << a << "/" << b;
    }
  }
}

TEST(SseParser, LineEnds) {
  EXPECT_EQ(parse("data: a\n\n"), std::vector<Event>{msg("a")});
  EXPECT_EQ(parse("data: a\r\r"), std::vector<Event>{msg("a")});
  EXPECT_EQ(parse("data: a\r\n\r\n"), std::vector<Event>{msg("a")});
  EXPECT_EQ(parse("data: a\rdata: b\ndata: c\r\n\n"), std::vector<Event>{msg("a\nb\nc")});
  // LF CR is two line ends, so the event ends there.
  EXPECT_EQ(parse("data: a\n\rdata: b\n\n"), (std::vector<Event>{msg("a"), msg("b")}));
}

TEST(SseParser, CrLfSplitAcrossPiecesIsOneLineEnd) {
  // Were CR|LF two line ends, the empty line would dispatch "a" alone.
  EXPECT_EQ(parse_pieces({"data: a\r", "\ndata: b\n\n"}), std::vector<Event>{msg("a\nb")});
  EXPECT_EQ(parse_pieces({"data: a\r", "\n", "\r", "\n"}), std::vector<Event>{msg("a")});
  // An empty piece in between does not forget the CR.
  EXPECT_EQ(parse_pieces({"data: a\r", "", "\ndata: b\n\n"}), std::vector<Event>{msg("a\nb")});
  // A CR at a piece's end followed by something else.
  EXPECT_EQ(parse_pieces({"data: a\r", "data: b\r", "\r"}), std::vector<Event>{msg("a\nb")});
}

TEST(SseParser, CrDispatchesWithoutWaitingForNextByte) {
  SseParser p(1024);
  std::vector<Event> out;
  ASSERT_EQ(feed_piece(p, "data: a\r\r", out), Status::ok);
  EXPECT_EQ(out, std::vector<Event>{msg("a")});
  ASSERT_EQ(feed_piece(p, "\ndata: b\r\n\r\n", out), Status::ok);
  EXPECT_EQ(out, (std::vector<Event>{msg("a"), msg("b")}));
}

TEST(SseParser, CommentsAreIgnored) {
  EXPECT_EQ(parse(": ping\n\n:\n\ndata: a\n: in between\ndata: b\n:\n\n"), std::vector<Event>{msg("a\nb")});
  EXPECT_TRUE(parse(": keep-alive\n\n: another\r\n\r\n").empty());
}

TEST(SseParser, MultiLineDataJoinedWithNewline) {
  EXPECT_EQ(parse("data: {\ndata: \"a\": 1\ndata: }\n\n"), std::vector<Event>{msg("{\n\"a\": 1\n}")});
  EXPECT_EQ(parse("data:\ndata:\n\n"), std::vector<Event>{msg("\n")});
  EXPECT_EQ(parse("data: a\ndata:\n\n"), std::vector<Event>{msg("a\n")});
}

TEST(SseParser, FieldWithoutColonHasEmptyValue) {
  EXPECT_EQ(parse("data\n\n"), std::vector<Event>{msg("")});
  EXPECT_EQ(parse("event: x\nevent\ndata: a\n\n"), std::vector<Event>{msg("a")});
  EXPECT_EQ(parse("id: 5\nid\ndata: a\n\n"), std::vector<Event>{msg("a", "")});
  EXPECT_EQ(parse("datum\ndata: a\n\n"), std::vector<Event>{msg("a")});
}

TEST(SseParser, OnlyOneLeadingSpaceIsStripped) {
  EXPECT_EQ(parse("data:a\n\n"), std::vector<Event>{msg("a")});
  EXPECT_EQ(parse("data: a\n\n"), std::vector<Event>{msg("a")});
  EXPECT_EQ(parse("data:  a \n\n"), std::vector<Event>{msg(" a ")});
  EXPECT_EQ(parse("data:\ta\n\n"), std::vector<Event>{msg("\ta")});
  EXPECT_EQ(parse("data: a: b\n\n"), std::vector<Event>{msg("a: b")});
  EXPECT_EQ(parse("event:  t\ndata\n\n"), (std::vector<Event>{{" t", "", ""}}));
  // Field names are exact: no space before the colon, no case folding.
  EXPECT_TRUE(parse("data : a\n\nDATA: b\n\n data: c\n\n").empty());
}

TEST(SseParser, LeadingBomIsIgnoredOnce) {
  EXPECT_EQ(parse("\xEF\xBB\xBF" "data: a\n\n"), std::vector<Event>{msg("a")});
  EXPECT_EQ(parse_pieces({"\xEF", "\xBB", "\xBF" "data: a\n\n"}), std::vector<Event>{msg("a")});
  // A second BOM belongs to the field name, which is then unknown.
  EXPECT_TRUE(parse("\xEF\xBB\xBF\xEF\xBB\xBF" "data: a\n\n").empty());
  EXPECT_TRUE(parse("data: a\n\n\xEF\xBB\xBF" "data: b\n\n").size() == 1);
  // Part of a BOM is kept as the line's bytes.
  EXPECT_TRUE(parse("\xEF\xBB" "data: a\n\n").empty());
  EXPECT_EQ(parse_pieces({"\xEF\xBB", "\n", "data: a\n\n"}), std::vector<Event>{msg("a")});
}

TEST(SseParser, IdIsRememberedAcrossEvents) {
  SseParser p(1024);
  std::vector<Event> out;
  ASSERT_EQ(feed_piece(p, "id: 1\ndata: a\n\ndata: b\n\nid: 2\n\ndata: c\n\n", out), Status::ok);
  EXPECT_EQ(out, (std::vector<Event>{msg("a", "1"), msg("b", "1"), msg("c", "2")}));
  EXPECT_EQ(p.last_id(), "2");
  // An id with NUL is ignored; an empty id clears.
  out.clear();
  ASSERT_EQ(feed_piece(p, "id: 3\0x\ndata: d\n\nid:\ndata: e\n\n"sv, out), Status::ok);
  EXPECT_EQ(out, (std::vector<Event>{msg("d", "2"), msg("e", "")}));
  EXPECT_EQ(p.last_id(), "");
  // An id without data is remembered, though nothing is dispatched.
  out.clear();
  ASSERT_EQ(feed_piece(p, "id: 9\n\n", out), Status::ok);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(p.last_id(), "9");
}

TEST(SseParser, RetryKeepsTheLastValidValue) {
  SseParser p(1024);
  std::vector<Event> out;
  EXPECT_EQ(p.retry_ms(), -1);
  ASSERT_EQ(feed_piece(p, "retry: 1500\n\n", out), Status::ok);
  EXPECT_EQ(p.retry_ms(), 1500);
  for (const char* bad : {"retry: 10a\n", "retry:\n", "retry\n", "retry:  20\n", "retry: -5\n", "retry: +5\n",
                          "retry: 1.5\n", "retry: 99999999999999999999\n"}) {
    ASSERT_EQ(feed_piece(p, bad, out), Status::ok);
    EXPECT_EQ(p.retry_ms(), 1500) << bad;
  }
  ASSERT_EQ(feed_piece(p, "retry:0\n", out), Status::ok);
  EXPECT_EQ(p.retry_ms(), 0);
  EXPECT_TRUE(out.empty());
}

TEST(SseParser, EventWithoutDataIsNotDispatched) {
  EXPECT_TRUE(parse("event: x\n\nid: 1\n\nretry: 5\n\n\n\n\r\n\r").empty());
  // The type set by a data-less event does not leak into the next one.
  EXPECT_EQ(parse("event: x\n\ndata: a\n\n"), std::vector<Event>{msg("a")});
  // An empty data field is still data.
  EXPECT_EQ(parse("data:\n\n"), std::vector<Event>{msg("")});
}

TEST(SseParser, UnknownFieldsAreIgnored) {
  EXPECT_EQ(parse("foo: bar\ndata: a\nx\n\n"), std::vector<Event>{msg("a")});
}

TEST(SseParser, FinishDiscardsUnterminatedEvent) {
  for (const std::string_view tail : {"data: x\n", "data: x", "data: x\r", "event: t\ndata: x\n", "da"}) {
    SseParser p(1024);
    std::vector<Event> out;
    ASSERT_EQ(feed_piece(p, "data: a\n\n", out), Status::ok);
    EXPECT_FALSE(p.mid_event());
    ASSERT_EQ(feed_piece(p, tail, out), Status::ok);
    EXPECT_TRUE(p.mid_event()) << tail;
    EXPECT_EQ(p.finish(), Status::ok);
    EXPECT_FALSE(p.mid_event());
    EXPECT_EQ(out, std::vector<Event>{msg("a")}) << tail;
    EXPECT_EQ(p.events(), 1u);
  }
}

TEST(SseParser, FeedAfterFinishIsAnError) {
  SseParser p(1024);
  std::vector<Event> out;
  ASSERT_EQ(p.finish(), Status::ok);
  EXPECT_EQ(feed_piece(p, "data: a\n\n", out), Status::error);
  EXPECT_EQ(p.error(), "SSE stream fed after finish()");
  EXPECT_TRUE(out.empty());
}

TEST(SseParser, SizeLimitIsExactAndSticks) {
  // Data "abcd" plus the line "data: e" as it is read: 4 + 7 = 11 bytes.
  const std::string_view stream = "data: abcd\ndata: e\n\n";
  {
    SseParser p(11);
    std::vector<Event> out;
    ASSERT_EQ(feed_piece(p, stream, out), Status::ok) << p.error();
    EXPECT_EQ(out, std::vector<Event>{msg("abcd\ne")});
    // The limit is per event, not per stream.
    ASSERT_EQ(feed_piece(p, stream, out), Status::ok);
    EXPECT_EQ(out.size(), 2u);
  }
  for (const bool bytewise : {false, true}) {
    SseParser p(10);
    std::vector<Event> out;
    Status s = Status::ok;
    if (bytewise) {
      for (const char c : stream) {
        s = feed_piece(p, std::string_view(&c, 1), out);
        if (s != Status::ok) break;
      }
    } else {
      s = feed_piece(p, stream, out);
    }
    EXPECT_EQ(s, Status::error);
    EXPECT_EQ(p.error(), "SSE event exceeds 10 bytes");
    size_t consumed = 99;
    EXPECT_EQ(feed_piece(p, "data: x\n\n", out, &consumed), Status::error);
    EXPECT_EQ(consumed, 0u);
    EXPECT_EQ(p.finish(), Status::error);
    EXPECT_EQ(p.error(), "SSE event exceeds 10 bytes");
    EXPECT_TRUE(out.empty());
  }
}

TEST(SseParser, SizeLimitBoundsALineWithoutEnd) {
  SseParser p(1048576);
  std::vector<Event> out;
  const std::string chunk(64 * 1024, 'x');
  Status s = feed_piece(p, "data: ", out);
  for (int i = 0; i < 20 && s == Status::ok; ++i) s = feed_piece(p, chunk, out);
  EXPECT_EQ(s, Status::error);
  EXPECT_EQ(p.error(), "SSE event exceeds 1048576 bytes");
  // Comments count too: they are lines the parser must hold.
  SseParser q(16);
  EXPECT_EQ(feed_piece(q, ": a long comment line\n", out), Status::error);
  EXPECT_TRUE(out.empty());
}

TEST(SseParser, StopLeavesTheRestUnconsumed) {
  const std::string_view stream = "data: a\r\n\r\ndata: b\r\r\ndata: c\n\n";
  SseParser p(1024);
  std::vector<std::string> seen;
  auto stop_each = [&seen](const SseEvent& e) noexcept {
    seen.emplace_back(e.data);
    return false;
  };
  size_t consumed = 0;
  ASSERT_EQ(p.feed(stream, stop_each, &consumed), Status::stopped);
  EXPECT_EQ(consumed, 11u);  // after the CRLF that ended the event
  std::string_view rest = stream.substr(consumed);
  // A CR dispatches; the LF after it in the same piece is consumed too.
  ASSERT_EQ(p.feed(rest, stop_each, &consumed), Status::stopped);
  EXPECT_EQ(rest.substr(consumed), "data: c\n\n");
  rest.remove_prefix(consumed);
  ASSERT_EQ(p.feed(rest, stop_each, &consumed), Status::stopped);
  EXPECT_EQ(consumed, rest.size());
  EXPECT_EQ(seen, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(p.events(), 3u);
  EXPECT_EQ(p.finish(), Status::ok);
}

TEST(SseParser, StopOnCrAtPieceEndStillSkipsTheLf) {
  SseParser p(1024);
  std::vector<std::string> seen;
  auto stop_each = [&seen](const SseEvent& e) noexcept {
    seen.emplace_back(e.data);
    return false;
  };
  size_t consumed = 0;
  ASSERT_EQ(p.feed("data: a\r\r", stop_each, &consumed), Status::stopped);
  EXPECT_EQ(consumed, 9u);
  std::vector<Event> out;
  ASSERT_EQ(feed_piece(p, "\ndata: b\n\n", out), Status::ok);
  EXPECT_EQ(out, std::vector<Event>{msg("b")});
}

TEST(SseParser, OutOfMemoryBecomesAnError) {
  // Each run fails the n-th allocation; every allocating path is hit by some n.
  const std::string big(200, 'x');
  const std::string stream = "event: content_block_delta\nid: " + big + "\ndata: " + big + "\ndata: " + big + "\n\n";
  bool saw_failure = false;
  bool last_ok = false;
  for (long n = 0; n < 40; ++n) {
    SseParser p(1 << 20);
    std::vector<Event> out;
    out.reserve(4);
    Status s = Status::ok;
    g_allocs_until_failure = n;
    // Small pieces, so that lines span pieces and borrowed data is copied.
    for (size_t at = 0; at < stream.size() && s == Status::ok; at += 50) {
      s = p.feed(std::string_view(stream).substr(at, 50), [](const SseEvent&) noexcept { return true; });
    }
    g_allocs_until_failure = -1;
    if (s == Status::error) {
      saw_failure = true;
      EXPECT_EQ(p.error(), "out of memory while parsing SSE stream");
      EXPECT_EQ(p.events(), 0u);
      EXPECT_EQ(p.finish(), Status::error);
      last_ok = false;
    } else {
      EXPECT_EQ(p.events(), 1u);
      last_ok = true;
    }
  }
  EXPECT_TRUE(saw_failure);
  EXPECT_TRUE(last_ok) << "more allocations than runs: raise the bound";
}

TEST(SseParser, ResetReusesTheParser) {
  SseParser p(16);
  std::vector<Event> out;
  ASSERT_EQ(feed_piece(p, "\xEF\xBB\xBFretry: 7\nid: 4\ndata: a\n\ndata: b", out), Status::ok);
  EXPECT_EQ(p.events(), 1u);
  EXPECT_EQ(feed_piece(p, "cdefghijklmnopqrstuvwxyz\n\n", out), Status::error);

  p.reset();
  EXPECT_EQ(p.error(), "");
  EXPECT_EQ(p.events(), 0u);
  EXPECT_EQ(p.retry_ms(), -1);
  EXPECT_EQ(p.last_id(), "");
  EXPECT_FALSE(p.mid_event());
  out.clear();
  // The BOM is checked again, and nothing of the old event survives.
  ASSERT_EQ(feed_piece(p, "\xEF\xBB\xBF" "data: c\n\n", out), Status::ok);
  EXPECT_EQ(out, std::vector<Event>{msg("c")});
  ASSERT_EQ(p.finish(), Status::ok);

  p.reset();
  out.clear();
  ASSERT_EQ(feed_piece(p, "data: d\n\n", out), Status::ok);
  EXPECT_EQ(out, std::vector<Event>{msg("d")});
}

}  // namespace
}  // namespace barrage::http
