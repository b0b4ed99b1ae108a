// Unit tests for engine/http/usage: token counts from OpenAI and Anthropic
// answers, and -1 for everything that is not a clean count.
#include "http/usage.hpp"

#include <gtest/gtest.h>

#include <simdjson.h>

#include <string>

namespace barrage::http {
namespace {

Usage extract(std::string body) {
  const std::string before = body;
  const Usage u = extract_usage(body);
  EXPECT_EQ(body, before) << "contents must be unchanged";
  return u;
}

TEST(Usage, OpenAiChatCompletion) {
  const Usage u = extract(R"({
    "id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "usage: {\"prompt_tokens\": 1}"},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29,
              "prompt_tokens_details": {"cached_tokens": 0}}
  })");
  EXPECT_EQ(u.prompt_tokens, 19);
  EXPECT_EQ(u.completion_tokens, 10);
}

TEST(Usage, AnthropicMessages) {
  const Usage u = extract(R"({"id":"msg_1","type":"message","role":"assistant",
    "content":[{"type":"text","text":"Hi"}],"stop_reason":"end_turn",
    "usage":{"input_tokens":2095,"output_tokens":503,"cache_read_input_tokens":0}})");
  EXPECT_EQ(u.prompt_tokens, 2095);
  EXPECT_EQ(u.completion_tokens, 503);
}

TEST(Usage, OpenAiNamesWinOverAnthropicNames) {
  const Usage u = extract(R"({"usage":{"input_tokens":1,"prompt_tokens":2,"output_tokens":3,"completion_tokens":4}})");
  EXPECT_EQ(u.prompt_tokens, 2);
  EXPECT_EQ(u.completion_tokens, 4);
}

TEST(Usage, EmbeddingsHavePromptOnly) {
  const Usage u = extract(R"({"object":"list","data":[],"usage":{"prompt_tokens":8,"total_tokens":8}})");
  EXPECT_EQ(u.prompt_tokens, 8);
  EXPECT_EQ(u.completion_tokens, -1);
}

TEST(Usage, Missing) {
  EXPECT_EQ(extract(R"({"id":"x","choices":[]})").prompt_tokens, -1);
  EXPECT_EQ(extract(R"({"id":"x","choices":[]})").completion_tokens, -1);
  EXPECT_EQ(extract(R"({"usage":{}})").prompt_tokens, -1);
  EXPECT_EQ(extract("").prompt_tokens, -1);
  // A nested "usage" is not the answer's usage.
  EXPECT_EQ(extract(R"({"data":{"usage":{"prompt_tokens":5,"completion_tokens":6}}})").prompt_tokens, -1);
}

TEST(Usage, MalformedJson) {
  for (const char* body : {
           R"({"usage":{"prompt_tokens":5,"completion_tokens":6})",   // unclosed
           R"({"usage":{"prompt_tokens":5,"completion_tokens":6}}, )",  // trailing junk
           R"({"usage":{"prompt_tokens":5,"completion_tokens":6},"choices":[)",
           R"({usage:{prompt_tokens:5}})",
           "data: {\"usage\":{\"prompt_tokens\":5}}\n\n",  // SSE, not JSON
           "<html>502 Bad Gateway</html>",
           "\xff\xfe{}",
       }) {
    const Usage u = extract(body);
    EXPECT_EQ(u.prompt_tokens, -1) << body;
    EXPECT_EQ(u.completion_tokens, -1) << body;
  }
}

TEST(Usage, UsageNotAnObject) {
  for (const char* body : {R"({"usage":null})", R"({"usage":[19,10]})", R"({"usage":"19/10"})",
                           R"({"usage":42})", R"([{"usage":{"prompt_tokens":1}}])", R"("usage")", "17"}) {
    const Usage u = extract(body);
    EXPECT_EQ(u.prompt_tokens, -1) << body;
    EXPECT_EQ(u.completion_tokens, -1) << body;
  }
}

TEST(Usage, FieldsOfTheWrongTypeAreUnknown) {
  const Usage u = extract(R"({"usage":{"prompt_tokens":"19","completion_tokens":null}})");
  EXPECT_EQ(u.prompt_tokens, -1);
  EXPECT_EQ(u.completion_tokens, -1);
  const Usage v = extract(R"({"usage":{"prompt_tokens":-5,"completion_tokens":1.5}})");
  EXPECT_EQ(v.prompt_tokens, -1);
  EXPECT_EQ(v.completion_tokens, -1);
  const Usage w = extract(R"({"usage":{"prompt_tokens":12.0,"completion_tokens":0}})");
  EXPECT_EQ(w.prompt_tokens, 12) << "a whole number written as a float is still a count";
  EXPECT_EQ(w.completion_tokens, 0);
}

TEST(Usage, HugeNumbers) {
  const Usage max = extract(R"({"usage":{"prompt_tokens":9223372036854775807,"completion_tokens":1}})");
  EXPECT_EQ(max.prompt_tokens, INT64_MAX);
  EXPECT_EQ(max.completion_tokens, 1);
  const Usage over = extract(R"({"usage":{"prompt_tokens":9223372036854775808,"completion_tokens":2}})");
  EXPECT_EQ(over.prompt_tokens, -1) << "beyond int64";
  EXPECT_EQ(over.completion_tokens, 2);
  const Usage exp = extract(R"({"usage":{"prompt_tokens":1e300,"completion_tokens":3}})");
  EXPECT_EQ(exp.prompt_tokens, -1);
  EXPECT_EQ(exp.completion_tokens, 3);
  // Beyond 64 bits simdjson refuses the whole document, so nothing is read.
  const Usage big = extract(R"({"usage":{"prompt_tokens":123456789012345678901234567890,"completion_tokens":4}})");
  EXPECT_EQ(big.prompt_tokens, -1);
  EXPECT_EQ(big.completion_tokens, -1);
}

TEST(Usage, BodyWithoutPaddingCapacity) {
  std::string body = R"({"usage":{"prompt_tokens":3,"completion_tokens":4}})";
  body.shrink_to_fit();
  ASSERT_LT(body.capacity(), body.size() + simdjson::SIMDJSON_PADDING);
  const std::string before = body;
  const Usage u = extract_usage(body);
  EXPECT_EQ(u.prompt_tokens, 3);
  EXPECT_EQ(u.completion_tokens, 4);
  EXPECT_EQ(body, before);
  EXPECT_GE(body.capacity(), body.size() + simdjson::SIMDJSON_PADDING);
}

TEST(Usage, BodyWithPaddingIsNotReallocated) {
  std::string body;
  body.reserve(4096);
  body = R"({"usage":{"prompt_tokens":7,"completion_tokens":8}})";
  const char* data = body.data();
  const Usage u = extract_usage(body);
  EXPECT_EQ(u.prompt_tokens, 7);
  EXPECT_EQ(u.completion_tokens, 8);
  EXPECT_EQ(body.data(), data);
}

TEST(Usage, LargeBodyUsesItsOwnParser) {
  std::string body = R"({"choices":[{"message":{"content":")" + std::string(2u << 20, 'x') +
                     R"("}}],"usage":{"prompt_tokens":11,"completion_tokens":2000000}})";
  const Usage u = extract_usage(body);
  EXPECT_EQ(u.prompt_tokens, 11);
  EXPECT_EQ(u.completion_tokens, 2000000);
  // The shared parser still works after it.
  EXPECT_EQ(extract(R"({"usage":{"prompt_tokens":1,"completion_tokens":1}})").prompt_tokens, 1);
}

}  // namespace
}  // namespace barrage::http
