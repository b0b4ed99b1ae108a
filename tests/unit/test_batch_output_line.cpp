// Unit tests for batch/ json_text, output_line and batch_id: escaping,
// the answer body embedded byte for byte, and the shape of every kind of
// output line (success, HTTP error, transport error, invalid input).
#include <gtest/gtest.h>
#include <simdjson.h>

#include <set>
#include <string>

#include "barrage.h"
#include "batch/batch_id.hpp"
#include "batch/json_text.hpp"
#include "batch/output_line.hpp"

namespace barrage {
namespace {

std::string json_quoted(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

TEST(JsonText, EscapesWhatJsonRequires) {
  EXPECT_EQ(json_quoted("plain"), "\"plain\"");
  EXPECT_EQ(json_quoted("a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(json_quoted("\n\r\t\b\f"), R"("\n\r\t\b\f")");
  EXPECT_EQ(json_quoted(std::string("\x01\x1f", 2)), R"("\u0001\u001f")");
  EXPECT_EQ(json_quoted(std::string("a\0b", 3)), R"("a\u0000b")");
  EXPECT_EQ(json_quoted("/ and \x7f stay"), "\"/ and \x7f stay\"");
}

TEST(JsonText, KeepsValidUtf8AndReplacesInvalidBytes) {
  EXPECT_EQ(json_quoted("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"), "\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\"");
  EXPECT_EQ(json_quoted("a\xFF" "b"), "\"a\xEF\xBF\xBD" "b\"");        // stray byte
  EXPECT_EQ(json_quoted("\xC0\xAF"), "\"\xEF\xBF\xBD\xEF\xBF\xBD\"");  // overlong "/"
  EXPECT_EQ(json_quoted("\xED\xA0\x80"), "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"");  // surrogate
  EXPECT_EQ(json_quoted("\xE2\x82"), "\"\xEF\xBF\xBD\xEF\xBF\xBD\"");  // cut short at the end
  // Whatever goes in, the result is valid JSON.
  std::string all;
  for (int i = 0; i < 256; ++i) all += char(i);
  simdjson::dom::parser p;
  simdjson::padded_string text(json_quoted(all));
  EXPECT_EQ(p.parse(text).error(), simdjson::SUCCESS);
}

TEST(JsonText, Numbers) {
  std::string s;
  append_json_int(s, -42);
  s += ' ';
  append_json_fixed(s, 52.3146, 3);
  s += ' ';
  append_json_number(s, 0.000123, 8);
  s += ' ';
  append_json_number(s, 1.5e-7, 8);
  s += ' ';
  append_json_fixed(s, 1.0 / 0.0, 3);
  EXPECT_EQ(s, "-42 52.315 0.000123 1.5e-07 null");
}

TEST(StatusErrorCode, LowerCaseStatusNames) {
  EXPECT_EQ(status_error_code(BRG_E_TIMEOUT), "timeout");
  EXPECT_EQ(status_error_code(BRG_E_CONNECT), "connect");
  EXPECT_EQ(status_error_code(BRG_E_TOO_LARGE), "too_large");
  EXPECT_EQ(status_error_code(BRG_E_UNAVAILABLE), "unavailable");
  EXPECT_EQ(status_error_code(-999), "unknown");
}

TEST(BatchId, TwentyFourHexDigitsAndUnique) {
  BatchIdSource ids;
  std::set<std::string> seen;
  for (int i = 0; i < 20000; ++i) {
    std::string id = ids.next();
    ASSERT_EQ(id.size(), 10u + 24u);
    ASSERT_EQ(id.rfind("batch_req_", 0), 0u);
    ASSERT_EQ(id.find_first_not_of("0123456789abcdef", 10), std::string::npos) << id;
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 20000u);
  EXPECT_NE(BatchIdSource().next(), BatchIdSource().next()) << "each run is seeded afresh";
}

// The formatted line parsed back, plus its raw text.
struct Parsed {
  std::string text;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
};

void format_and_parse(OutputLineFormatter& f, const OutputRecord& r, Parsed* out) {
  out->text = f.format(r);
  ASSERT_FALSE(out->text.empty());
  ASSERT_EQ(out->text.back(), '\n');
  ASSERT_EQ(out->text.find('\n'), out->text.size() - 1) << "one line, one newline";
  ASSERT_EQ(out->parser.parse(out->text).get(out->doc), simdjson::SUCCESS) << out->text;
}

OutputRecord success(std::string_view body) {
  OutputRecord r;
  r.id = "batch_req_0123456789abcdef01234567";
  r.has_custom_id = true;
  r.custom_id = "req-\"7\"";
  r.has_response = true;
  r.status_code = 200;
  r.has_request_id = true;
  r.request_id = "req_abc";
  r.body = body;
  r.line = 12;
  r.attempts = 2;
  r.latency_us = 52314;
  r.ttfb_us = 50001;
  r.prompt_tokens = 10;
  r.completion_tokens = 5;
  r.model = "gpt-4o-mini";
  r.cost_usd = 0.0000045;
  r.finished_unix_ms = 1754000000123;
  return r;
}

TEST(OutputLine, SuccessLineHasEveryField) {
  OutputLineFormatter f;
  Parsed p;
  const std::string body = R"({"id":"chatcmpl-1","choices":[{"message":{"content":"hi \"there\"\n"}}]})";
  format_and_parse(f, success(body), &p);
  EXPECT_EQ(std::string_view(p.doc["id"]), "batch_req_0123456789abcdef01234567");
  EXPECT_EQ(std::string_view(p.doc["custom_id"]), "req-\"7\"");
  EXPECT_EQ(int64_t(p.doc["response"]["status_code"]), 200);
  EXPECT_EQ(std::string_view(p.doc["response"]["request_id"]), "req_abc");
  EXPECT_TRUE(p.doc["error"].is_null());
  auto b = p.doc["barrage"];
  EXPECT_EQ(int64_t(b["line"]), 12);
  EXPECT_EQ(int64_t(b["attempts"]), 2);
  EXPECT_FALSE(bool(b["cached"]));
  EXPECT_DOUBLE_EQ(double(b["latency_ms"]), 52.314);
  EXPECT_DOUBLE_EQ(double(b["ttfb_ms"]), 50.001);
  EXPECT_EQ(int64_t(b["prompt_tokens"]), 10);
  EXPECT_EQ(int64_t(b["completion_tokens"]), 5);
  EXPECT_EQ(std::string_view(b["model"]), "gpt-4o-mini");
  EXPECT_DOUBLE_EQ(double(b["cost_usd"]), 0.0000045);
  EXPECT_EQ(int64_t(b["finished_unix_ms"]), 1754000000123);
  // The answer is embedded byte for byte, not re-serialised.
  EXPECT_NE(p.text.find("\"body\":" + body + "}"), std::string::npos) << p.text;
}

TEST(OutputLine, PrettyPrintedBodyStaysOnOneLineWithSameLength) {
  OutputLineFormatter f;
  Parsed p;
  const std::string body = "{\r\n  \"a\": [1,\n 2],\n  \"s\": \"x\\ny\"\n}\n";
  format_and_parse(f, success(body), &p);
  std::string flat = body;
  for (char& c : flat)
    if (c == '\n' || c == '\r') c = ' ';
  EXPECT_NE(p.text.find("\"body\":" + flat + "}"), std::string::npos) << p.text;
  EXPECT_EQ(std::string_view(p.doc["response"]["body"]["s"]), "x\ny");
}

TEST(OutputLine, BodyThatIsNotJsonBecomesAString) {
  OutputLineFormatter f;
  for (std::string body : {std::string("<html>502 Bad Gateway</html>\n"), std::string(""),
                           std::string("{\"cut\":"), std::string("{} {}"), std::string("\xFF\xFE")}) {
    Parsed p;
    format_and_parse(f, success(body), &p);
    std::string_view got;
    ASSERT_EQ(p.doc["response"]["body"].get_string().get(got), simdjson::SUCCESS) << p.text;
    if (body != "\xFF\xFE") EXPECT_EQ(got, body);
  }
}

TEST(OutputLine, LargeBodyIsEmbeddedWhole) {
  OutputLineFormatter f;
  std::string body = "{\"content\":\"" + std::string(6 << 20, 'z') + "\"}";
  Parsed p;
  format_and_parse(f, success(body), &p);
  EXPECT_NE(p.text.find(body), std::string::npos);
  format_and_parse(f, success("{\"small\":true}"), &p);  // the parser was reset, not broken
  EXPECT_TRUE(bool(p.doc["response"]["body"]["small"]));
}

TEST(OutputLine, HttpErrorKeepsItsResponse) {
  OutputLineFormatter f;
  OutputRecord r = success(R"({"error":{"message":"Rate limit","type":"requests"}})");
  r.status_code = 429;
  r.has_request_id = false;
  r.error_code = "http_error";
  r.error_message = "HTTP 429 Too Many Requests";
  r.prompt_tokens = r.completion_tokens = -1;
  r.cost_usd = -1;
  Parsed p;
  format_and_parse(f, r, &p);
  EXPECT_EQ(int64_t(p.doc["response"]["status_code"]), 429);
  EXPECT_TRUE(p.doc["response"]["request_id"].is_null());
  EXPECT_EQ(std::string_view(p.doc["response"]["body"]["error"]["message"]), "Rate limit");
  EXPECT_EQ(std::string_view(p.doc["error"]["code"]), "http_error");
  EXPECT_EQ(std::string_view(p.doc["error"]["message"]), "HTTP 429 Too Many Requests");
  EXPECT_TRUE(p.doc["barrage"]["prompt_tokens"].is_null());
  EXPECT_TRUE(p.doc["barrage"]["cost_usd"].is_null());
}

TEST(OutputLine, TransportFailureHasNoResponse) {
  OutputLineFormatter f;
  OutputRecord r;
  r.id = "batch_req_x";
  r.has_custom_id = true;
  r.custom_id = "c";
  r.error_code = "timeout";
  r.error_message = "no response within 300 ms (deadline)\x01";
  r.line = 3;
  r.attempts = 3;
  r.latency_us = 300100;
  Parsed p;
  format_and_parse(f, r, &p);
  EXPECT_TRUE(p.doc["response"].is_null());
  EXPECT_EQ(std::string_view(p.doc["error"]["code"]), "timeout");
  EXPECT_EQ(std::string_view(p.doc["error"]["message"]), "no response within 300 ms (deadline)\x01");
  EXPECT_TRUE(p.doc["barrage"]["ttfb_ms"].is_null());
  EXPECT_TRUE(p.doc["barrage"]["model"].is_null());
}

TEST(OutputLine, InvalidInputLine) {
  OutputLineFormatter f;
  OutputRecord r;
  r.id = "batch_req_y";
  r.error_code = "invalid_request";
  r.error_message = "line 9: custom_id is missing";
  r.line = 9;
  Parsed p;
  format_and_parse(f, r, &p);
  EXPECT_TRUE(p.doc["custom_id"].is_null());
  EXPECT_TRUE(p.doc["response"].is_null());
  EXPECT_EQ(std::string_view(p.doc["error"]["code"]), "invalid_request");
  EXPECT_EQ(int64_t(p.doc["barrage"]["line"]), 9);
  EXPECT_EQ(int64_t(p.doc["barrage"]["attempts"]), 0);
  EXPECT_TRUE(p.doc["barrage"]["latency_ms"].is_null());
}

}  // namespace
}  // namespace barrage
