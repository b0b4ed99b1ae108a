// Unit tests for batch/ line_reader and input_line: streaming lines
// with their numbers and offsets, and turning Batch API input lines into
// requests or into the reason they cannot run.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "batch/input_line.hpp"
#include "batch/line_reader.hpp"

namespace barrage {
namespace {

class TempPath {
 public:
  explicit TempPath(const std::string& content) {
    char tmpl[] = "/tmp/barrage-batch-XXXXXX";
    int fd = mkstemp(tmpl);
    path_ = tmpl;
    EXPECT_EQ(::write(fd, content.data(), content.size()), ssize_t(content.size()));
    ::close(fd);
  }
  ~TempPath() { ::unlink(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::vector<Line> read_all(const std::string& content, std::vector<std::string>* texts) {
  TempPath f(content);
  LineReader r;
  EXPECT_EQ(r.open(f.path()), "");
  std::vector<Line> out;
  Line l;
  int rc;
  while ((rc = r.next(&l)) > 0) {
    texts->emplace_back(l.text);
    out.push_back(l);
  }
  EXPECT_EQ(rc, 0);
  return out;
}

TEST(LineReader, NumbersOffsetsAndTerminators) {
  std::vector<std::string> t;
  auto lines = read_all("a\r\n\nbcd\nlast", &t);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(t, (std::vector<std::string>{"a", "", "bcd", "last"}));
  EXPECT_EQ(lines[0].offset, 0u);
  EXPECT_EQ(lines[1].offset, 3u);
  EXPECT_EQ(lines[2].offset, 4u);
  EXPECT_EQ(lines[3].offset, 8u);
  EXPECT_EQ(lines[3].number, 4u);
  EXPECT_TRUE(lines[2].terminated);
  EXPECT_FALSE(lines[3].terminated);
}

TEST(LineReader, EmptyFileHasNoLines) {
  std::vector<std::string> t;
  EXPECT_TRUE(read_all("", &t).empty());
}

TEST(LineReader, ByteOrderMarkIsDropped) {
  std::vector<std::string> t;
  read_all("\xEF\xBB\xBF{\"x\":1}\n", &t);
  EXPECT_EQ(t[0], "{\"x\":1}");
}

TEST(LineReader, LinesLongerThanTheBufferAndAcrossChunkEdges) {
  std::string big(3 << 20, 'x');  // three times the 1 MiB chunk
  std::string content;
  std::vector<std::string> want;
  for (int i = 0; i < 5000; ++i) want.push_back(std::string(size_t(i % 977), char('a' + i % 26)));
  want.insert(want.begin() + 2500, big);
  for (auto& w : want) content += w + "\n";
  std::vector<std::string> t;
  auto lines = read_all(content, &t);
  ASSERT_EQ(t.size(), want.size());
  uint64_t offset = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_EQ(t[i], want[i]) << "line " << i + 1;
    ASSERT_EQ(lines[i].offset, offset);
    offset += want[i].size() + 1;
  }
}

TEST(LineReader, MissingFileIsAnError) {
  LineReader r;
  EXPECT_NE(r.open("/nonexistent/batch.jsonl").find("cannot open"), std::string::npos);
}

// Parses one line from padded storage, as LineReader would hand it out.
struct Parsed {
  InputLine in;
  std::string storage;
};

Parsed parse(InputLineParser& p, const std::string& text, uint64_t number = 7) {
  Parsed out;
  out.storage.reserve(text.size() + kLinePadding);
  out.storage = text;
  p.parse(out.storage, number, &out.in);
  return out;
}

TEST(InputLine, ValidLineKeepsTheBodyByteExact) {
  InputLineParser p("https://api.example.com");
  const std::string body =
      R"({ "model" : "gpt-4o-mini",  "messages":[{"role":"user","content":"caf\u00e9 \"q\" \\ é"}], "n":1.50 })";
  auto r = parse(p, R"({"custom_id":"req-1","method":"POST","url":"/v1/chat/completions","body":)" + body + "}");
  ASSERT_EQ(r.in.kind, InputLine::Kind::valid) << r.in.error;
  EXPECT_EQ(r.in.custom_id, "req-1");
  EXPECT_EQ(r.in.url, "https://api.example.com/v1/chat/completions");
  EXPECT_EQ(r.in.body, body);
  EXPECT_EQ(r.in.model, "gpt-4o-mini");
}

TEST(InputLine, FieldOrderAndSpacingDoNotMatter) {
  InputLineParser p("https://api.example.com");
  auto r = parse(p, R"(  { "body" : {"model":"m","x":[1,{"body":2}]} , "url":"https://other.example/v1/embeddings", "method":"POST", "custom_id":"a b" }  )");
  ASSERT_EQ(r.in.kind, InputLine::Kind::valid) << r.in.error;
  EXPECT_EQ(r.in.body, R"({"model":"m","x":[1,{"body":2}]})");
  EXPECT_EQ(r.in.url, "https://other.example/v1/embeddings");
  EXPECT_EQ(r.in.custom_id, "a b");
}

TEST(InputLine, BlankLines) {
  InputLineParser p("https://api.example.com");
  EXPECT_EQ(parse(p, "").in.kind, InputLine::Kind::blank);
  EXPECT_EQ(parse(p, " \t ").in.kind, InputLine::Kind::blank);
}

TEST(InputLine, EachDefectIsNamedWithItsLineNumber) {
  InputLineParser p("https://api.example.com");
  struct Case {
    std::string line, needle;
    bool has_id;
  } cases[] = {
      {R"({"custom_id":"a","method":"POST",)", "not valid JSON", false},
      {R"(["custom_id"])", "not a JSON object", false},
      {R"({"method":"POST","url":"/v1/x","body":{}})", "custom_id is missing", false},
      {R"({"custom_id":"","method":"POST","url":"/v1/x","body":{}})", "custom_id is empty", false},
      {R"({"custom_id":12,"method":"POST","url":"/v1/x","body":{}})", "custom_id is not a string", false},
      {R"({"custom_id":"a","method":"GET","url":"/v1/x","body":{}})", "only POST", true},
      {R"({"custom_id":"a","url":"/v1/x","body":{}})", "method is missing", true},
      {R"({"custom_id":"a","method":"POST","body":{}})", "url is missing", true},
      {R"({"custom_id":"a","method":"POST","url":"v1/x","body":{}})", "url must be a path", true},
      {R"({"custom_id":"a","method":"POST","url":"//evil.example/x","body":{}})", "url must be a path", true},
      {R"({"custom_id":"a","method":"POST","url":"http://api.example.com/v1/x","body":{}})", "url must be a path", true},
      {R"({"custom_id":"a","method":"POST","url":"https://","body":{}})", "not usable", true},
      {R"({"custom_id":"a","method":"POST","url":"/v1/x"})", "body is missing", true},
      {R"({"custom_id":"a","method":"POST","url":"/v1/x","body":"{}"})", "body is not a JSON object", true},
      {R"({"custom_id":"a","method":"POST","url":"/v1/x","body":{"model":tru}})", "not valid JSON", false},
  };
  for (auto& c : cases) {
    auto r = parse(p, c.line, 42);
    EXPECT_EQ(r.in.kind, InputLine::Kind::invalid) << c.line;
    EXPECT_EQ(r.in.error.rfind("line 42: ", 0), 0u) << r.in.error;
    EXPECT_NE(r.in.error.find(c.needle), std::string::npos) << c.line << " -> " << r.in.error;
    EXPECT_EQ(r.in.has_custom_id, c.has_id) << c.line;
  }
}

TEST(InputLine, EndpointJoining) {
  std::string why;
  InputLineParser v1("https://api.openai.com/v1");
  EXPECT_EQ(v1.resolve_url("/v1/chat/completions", &why), "https://api.openai.com/v1/chat/completions");
  EXPECT_EQ(v1.resolve_url("/other", &why), "https://api.openai.com/v1/other");
  InputLineParser prefix("https://gw.example:8443/proxy");
  EXPECT_EQ(prefix.resolve_url("/v1/chat/completions?x=1", &why), "https://gw.example:8443/proxy/v1/chat/completions?x=1");
  InputLineParser plain("http://127.0.0.1:8080");
  EXPECT_EQ(plain.resolve_url("/v1/embeddings", &why), "http://127.0.0.1:8080/v1/embeddings");
  EXPECT_EQ(plain.resolve_url("http://127.0.0.1:8080/v1/embeddings", &why), "");
  EXPECT_EQ(plain.resolve_url("https://x.example/a", &why), "https://x.example/a");
}

}  // namespace
}  // namespace barrage
