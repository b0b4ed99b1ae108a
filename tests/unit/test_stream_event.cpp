// StreamEventReader: which streamed events count as the first token, the
// [DONE] sentinel, and usage in the OpenAI and Anthropic stream shapes.
#include "http/stream_event.hpp"

#include <gtest/gtest.h>

namespace barrage::http {
namespace {

TEST(StreamEvent, OpenAiRoleOnlyAndEmptyDeltasAreNotTokens) {
  StreamEventReader r;
  EXPECT_FALSE(r.read(R"({"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]})").token);
  EXPECT_FALSE(r.read(R"({"choices":[{"index":0,"delta":{}}]})").token);
  EXPECT_FALSE(r.read(R"({"choices":[{"index":0,"delta":{"content":null},"finish_reason":"stop"}]})").token);
  EXPECT_FALSE(r.read(R"({"choices":[]})").token);
}

TEST(StreamEvent, OpenAiTextReasoningRefusalAndToolCallsAreTokens) {
  StreamEventReader r;
  EXPECT_TRUE(r.read(R"({"choices":[{"delta":{"content":"Hi"}}]})").token);
  EXPECT_TRUE(r.read(R"({"choices":[{"delta":{"reasoning_content":"hm"}}]})").token);
  EXPECT_TRUE(r.read(R"({"choices":[{"delta":{"refusal":"no"}}]})").token);
  EXPECT_TRUE(r.read(R"({"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{"}}]}}]})").token);
  EXPECT_TRUE(r.read(R"({"choices":[{"text":" once","index":0}]})").token);  // legacy completions
  EXPECT_FALSE(r.read(R"({"choices":[{"text":"","index":0}]})").token);
  // A later choice may carry the text.
  EXPECT_TRUE(r.read(R"({"choices":[{"delta":{}},{"delta":{"content":"x"}}]})").token);
}

TEST(StreamEvent, DoneSentinelAndNonJsonData) {
  StreamEventReader r;
  StreamEventInfo done = r.read("[DONE]");
  EXPECT_TRUE(done.done);
  EXPECT_FALSE(done.token);
  StreamEventInfo junk = r.read("not json {");
  EXPECT_FALSE(junk.done);
  EXPECT_FALSE(junk.token);
  EXPECT_EQ(junk.usage.prompt_tokens, -1);
  EXPECT_FALSE(r.read("").token);
}

TEST(StreamEvent, OpenAiIncludeUsageChunk) {
  StreamEventReader r;
  StreamEventInfo i = r.read(R"({"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":34,"total_tokens":46}})");
  EXPECT_FALSE(i.token);
  EXPECT_EQ(i.usage.prompt_tokens, 12);
  EXPECT_EQ(i.usage.completion_tokens, 34);
}

TEST(StreamEvent, AnthropicDeltasAndUsage) {
  StreamEventReader r;
  StreamEventInfo start =
      r.read(R"({"type":"message_start","message":{"id":"m","usage":{"input_tokens":25,"output_tokens":1}}})");
  EXPECT_FALSE(start.token);
  EXPECT_EQ(start.usage.prompt_tokens, 25);
  EXPECT_FALSE(r.read(R"({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})").token);
  EXPECT_TRUE(r.read(R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}})").token);
  EXPECT_TRUE(r.read(R"({"type":"content_block_delta","delta":{"type":"input_json_delta","partial_json":"{\"a"}})").token);
  EXPECT_FALSE(r.read(R"({"type":"content_block_delta","delta":{"type":"text_delta","text":""}})").token);
  StreamEventInfo end = r.read(R"({"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":15}})");
  EXPECT_EQ(end.usage.completion_tokens, 15);
  EXPECT_EQ(end.usage.prompt_tokens, -1);
  EXPECT_FALSE(r.read(R"({"type":"ping"})").token);
}

TEST(StreamEvent, ResponsesApiDeltas) {
  StreamEventReader r;
  EXPECT_TRUE(r.read(R"({"type":"response.output_text.delta","delta":"Hi"})").token);
  EXPECT_FALSE(r.read(R"({"type":"response.created","response":{}})").token);
  StreamEventInfo done =
      r.read(R"({"type":"response.completed","response":{"usage":{"input_tokens":5,"output_tokens":7}}})");
  EXPECT_EQ(done.usage.prompt_tokens, 5);
  EXPECT_EQ(done.usage.completion_tokens, 7);
}

TEST(StreamEvent, ReaderIsReusableAcrossSizes) {
  StreamEventReader r;
  std::string big = R"({"choices":[{"delta":{"content":")" + std::string(100000, 'a') + R"("}}]})";
  EXPECT_TRUE(r.read(big).token);
  EXPECT_TRUE(r.read(R"({"choices":[{"delta":{"content":"b"}}]})").token);
}

}  // namespace
}  // namespace barrage::http
