// Token estimates before a request runs: bytes / 4 for the prompt plus the
// completion ceiling the JSON body names, with unpadded, odd and huge bodies.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "flow/token_estimate.hpp"

namespace barrage {
namespace {

int64_t bytes4(std::string_view s) { return int64_t((s.size() + 3) / 4); }

// The body in an allocation of exactly its size: reading one byte past the
// end is a heap-buffer-overflow under ASan.
int64_t estimate_unpadded(std::string_view body) {
  std::unique_ptr<char[]> exact(new char[body.size()]);
  std::memcpy(exact.get(), body.data(), body.size());
  return estimate_tokens(std::string_view(exact.get(), body.size()));
}

constexpr std::string_view kChatMax =
    R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hi"}],"max_tokens":256})";

TEST(TokenEstimate, OpenAiChatWithMaxTokens) {
  EXPECT_EQ(estimate_unpadded(kChatMax), bytes4(kChatMax) + 256);
  EXPECT_EQ(estimate_tokens(kChatMax), bytes4(kChatMax) + 256);
}

TEST(TokenEstimate, OpenAiChatWithMaxCompletionTokens) {
  const std::string_view body =
      R"({"model":"o3-mini","max_completion_tokens":1000,"messages":[{"role":"user","content":"x"}]})";
  EXPECT_EQ(estimate_unpadded(body), bytes4(body) + 1000);
}

TEST(TokenEstimate, BothCeilingsTakeTheLarger) {
  const std::string_view body = R"({"max_tokens":50,"max_completion_tokens":70,"messages":[]})";
  EXPECT_EQ(estimate_unpadded(body), bytes4(body) + 70);
  const std::string_view rev = R"({"max_completion_tokens":70,"max_tokens":500,"messages":[]})";
  EXPECT_EQ(estimate_unpadded(rev), bytes4(rev) + 500);
}

TEST(TokenEstimate, AnthropicMessagesAndResponsesApi) {
  const std::string_view anthropic =
      R"({"model":"claude-sonnet-4","max_tokens":1024,"system":"Be brief.",)"
      R"("messages":[{"role":"user","content":[{"type":"text","text":"Hello"}]}]})";
  EXPECT_EQ(estimate_unpadded(anthropic), bytes4(anthropic) + 1024);
  const std::string_view responses = R"({"model":"gpt-4.1","input":"Hi","max_output_tokens":300})";
  EXPECT_EQ(estimate_unpadded(responses), bytes4(responses) + 300);
}

TEST(TokenEstimate, ChoicesMultiplyTheCeiling) {
  const std::string_view body = R"({"n":3,"max_tokens":100,"messages":[]})";
  EXPECT_EQ(estimate_unpadded(body), bytes4(body) + 300);
  const std::string_view one = R"({"n":1,"max_tokens":100})";
  EXPECT_EQ(estimate_unpadded(one), bytes4(one) + 100);
  const std::string_view odd = R"({"n":"3","max_tokens":100})";
  EXPECT_EQ(estimate_unpadded(odd), bytes4(odd) + 100);
}

TEST(TokenEstimate, NoCeilingCountsBytesOnly) {
  const std::string_view body = R"({"model":"gpt-4o","messages":[{"role":"user","content":"hello"}]})";
  EXPECT_EQ(estimate_unpadded(body), bytes4(body));
  // Only top-level keys count: these are message text and metadata.
  const std::string_view nested =
      R"({"messages":[{"role":"user","content":"max_tokens"}],"metadata":{"max_tokens":900}})";
  EXPECT_EQ(estimate_unpadded(nested), bytes4(nested));
}

TEST(TokenEstimate, OddCeilingValues) {
  struct Case {
    std::string_view body;
    int64_t ceiling;
  };
  for (const Case& c : {
           Case{R"({"max_tokens":null})", 0},
           Case{R"({"max_tokens":"256"})", 0},
           Case{R"({"max_tokens":-5})", 0},
           Case{R"({"max_tokens":12.5})", 0},
           Case{R"({"max_tokens":true})", 0},
           Case{R"({"max_tokens":{"a":1}})", 0},
           Case{R"({"max_tokens":256.0})", 256},
           Case{R"({"max_tokens":2e3})", 2000},
           Case{R"({"max\u005ftokens":64})", 64},  // escaped key
           Case{R"({"max_tokens":0})", 0},
       }) {
    EXPECT_EQ(estimate_unpadded(c.body), bytes4(c.body) + c.ceiling) << c.body;
  }
  // Absurd ceilings saturate instead of overflowing.
  EXPECT_EQ(estimate_unpadded(R"({"max_tokens":18446744073709551615})"), INT64_MAX);
  EXPECT_EQ(estimate_unpadded(R"({"max_tokens":1e300})"), INT64_MAX);
  EXPECT_EQ(estimate_unpadded(R"({"max_tokens":9223372036854775807,"n":2})"), INT64_MAX);
}

TEST(TokenEstimate, NotJsonOrNotAnObjectCountsBytes) {
  for (std::string_view body : {
           std::string_view("hello world"),
           std::string_view("[1,2,3]"),
           std::string_view(R"("max_tokens")"),
           std::string_view("42"),
           std::string_view(R"({"max_tokens":100,"messages":[)"),   // truncated
           std::string_view(R"({"max_tokens":100 "messages":1})"),  // missing comma
           std::string_view(R"({"max_tokens":100,})"),
           std::string_view("{"),
           std::string_view("   "),
           std::string_view("\xff\xfe{\"max_tokens\":5}"),
       }) {
    EXPECT_EQ(estimate_unpadded(body), bytes4(body)) << body;
  }
  // Leading whitespace before a real object is fine.
  const std::string_view spaced = " \n\t{\"max_tokens\":8}\n";
  EXPECT_EQ(estimate_unpadded(spaced), bytes4(spaced) + 8);
}

TEST(TokenEstimate, EmptyBodyCostsNothing) {
  EXPECT_EQ(estimate_tokens(""), 0);
  EXPECT_EQ(estimate_tokens(std::string_view()), 0);
  EXPECT_EQ(estimate_unpadded("a"), 1);
  EXPECT_EQ(estimate_unpadded("abcd"), 1);
  EXPECT_EQ(estimate_unpadded("abcde"), 2);
}

std::string chat_body(size_t content_bytes, int64_t max_tokens) {
  std::string body = R"({"model":"gpt-4o","messages":[{"role":"user","content":")";
  body.append(content_bytes, 'a');
  body += R"("}],"max_tokens":)" + std::to_string(max_tokens) + "}";
  return body;
}

TEST(TokenEstimate, HugeBodiesAndTheSmallOnesAfterThem) {
  for (size_t size : {size_t{1} << 20, (size_t{1} << 20) + 1, size_t{5} << 20, size_t{20} << 20}) {
    const std::string body = chat_body(size, 4096);
    EXPECT_EQ(estimate_unpadded(body), bytes4(body) + 4096) << size;
  }
  // The reused buffer is longer than these now: stale bytes must not leak in.
  const std::string small = chat_body(10, 7);
  EXPECT_EQ(estimate_unpadded(small), bytes4(small) + 7);
  EXPECT_EQ(estimate_unpadded("{\"max_tokens\":1"), bytes4("{\"max_tokens\":1"));
  EXPECT_EQ(estimate_unpadded(kChatMax), bytes4(kChatMax) + 256);
}

TEST(TokenEstimate, ManyBodiesInARowReuseTheParser) {
  for (int i = 0; i < 10000; ++i) {
    const std::string body = chat_body(size_t(i % 3000), i);
    ASSERT_EQ(estimate_tokens(body), bytes4(body) + i) << i;
  }
}

}  // namespace
}  // namespace barrage
