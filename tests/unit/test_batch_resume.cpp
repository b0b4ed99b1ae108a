// Unit tests for batch/ resume_scan and output_file: what a resume
// skips, a torn last line cut back to the last whole one, and appending
// whole lines.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "batch/output_file.hpp"
#include "batch/resume_scan.hpp"

namespace barrage {
namespace {

class TempPath {
 public:
  TempPath() {
    char tmpl[] = "/tmp/barrage-resume-XXXXXX";
    int fd = mkstemp(tmpl);
    ::close(fd);
    path_ = tmpl;
  }
  explicit TempPath(const std::string& content) : TempPath() { write(content); }
  ~TempPath() { ::unlink(path_.c_str()); }
  void write(const std::string& content) const { std::ofstream(path_, std::ios::binary | std::ios::trunc) << content; }
  std::string read() const {
    std::ifstream f(path_, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string ok_line(const std::string& id, int line) {
  return R"({"id":"batch_req_1","custom_id":")" + id +
         R"(","response":{"status_code":200,"request_id":null,"body":{"x":"\n"}},"error":null,"barrage":{"line":)" +
         std::to_string(line) + "}}\n";
}
std::string invalid_line(int line) {
  return R"({"id":"batch_req_2","custom_id":null,"response":null,"error":{"code":"invalid_request","message":"line )" +
         std::to_string(line) + R"(: bad"},"barrage":{"line":)" + std::to_string(line) + "}}\n";
}

TEST(ResumeScan, MissingFileIsEmpty) {
  ResumeState s;
  EXPECT_EQ(scan_output("/tmp/barrage-no-such-output.jsonl", true, &s), "");
  EXPECT_EQ(s.lines, 0u);
  EXPECT_FALSE(s.torn);
}

TEST(ResumeScan, CollectsCustomIdsAndInvalidLineNumbers) {
  TempPath f(ok_line("a", 1) + invalid_line(2) + ok_line("b", 3) + ok_line("c\\u00e9", 4) + invalid_line(7));
  ResumeState s;
  ASSERT_EQ(scan_output(f.path(), true, &s), "");
  EXPECT_EQ(s.lines, 5u);
  EXPECT_FALSE(s.torn);
  EXPECT_EQ(s.custom_ids, (std::unordered_set<std::string>{"a", "b", "c\xC3\xA9"}));
  EXPECT_EQ(s.invalid_lines, (std::unordered_set<uint64_t>{2, 7}));
}

TEST(ResumeScan, ErrorLinesWithACustomIdCountAsDone) {
  TempPath f(R"({"id":"x","custom_id":"g","response":null,"error":{"code":"invalid_request","message":"line 5: only POST"},"barrage":{"line":5}})"
             "\n");
  ResumeState s;
  ASSERT_EQ(scan_output(f.path(), true, &s), "");
  EXPECT_TRUE(s.custom_ids.contains("g"));
  EXPECT_TRUE(s.invalid_lines.empty());
}

TEST(ResumeScan, UnterminatedLastLineIsCutOff) {
  std::string whole = ok_line("a", 1) + ok_line("b", 2);
  TempPath f(whole + ok_line("c", 3).substr(0, 40));
  ResumeState s;
  ASSERT_EQ(scan_output(f.path(), false, &s), "");
  EXPECT_TRUE(s.torn);
  EXPECT_EQ(s.keep_bytes, whole.size());
  EXPECT_EQ(f.read().size(), whole.size() + 40) << "truncate=false leaves the file alone";
  ResumeState t;
  ASSERT_EQ(scan_output(f.path(), true, &t), "");
  EXPECT_EQ(f.read(), whole);
  EXPECT_EQ(t.custom_ids.size(), 2u);
  EXPECT_FALSE(t.custom_ids.contains("c"));
}

TEST(ResumeScan, TerminatedButBrokenLastLineIsCutOff) {
  std::string whole = ok_line("a", 1);
  TempPath f(whole + "{\"id\":\"batch_req_9\",\"custom_id\":\"z\n");
  ResumeState s;
  ASSERT_EQ(scan_output(f.path(), true, &s), "");
  EXPECT_TRUE(s.torn);
  EXPECT_EQ(s.lines, 1u);
  EXPECT_EQ(f.read(), whole);
  EXPECT_FALSE(s.custom_ids.contains("z"));
}

TEST(ResumeScan, TornLineInTheMiddleIsLeftAndCounted) {
  std::string content = ok_line("a", 1) + "{\"id\":\"tor\n" + ok_line("b", 2);
  TempPath f(content);
  ResumeState s;
  ASSERT_EQ(scan_output(f.path(), true, &s), "");
  EXPECT_FALSE(s.torn);
  EXPECT_EQ(s.unreadable, 1u);
  EXPECT_EQ(f.read(), content);
  EXPECT_EQ(s.custom_ids.size(), 2u);
}

TEST(ResumeScan, OnlyATornLine) {
  TempPath f("{\"id\":");
  ResumeState s;
  ASSERT_EQ(scan_output(f.path(), true, &s), "");
  EXPECT_TRUE(s.torn);
  EXPECT_EQ(f.read(), "");
}

TEST(ResumeScan, HugeFile) {
  // 200,000 lines of ~1.3 KB answers (~270 MB) and one 8 MB answer: streamed.
  TempPath f;
  {
    std::ofstream out(f.path(), std::ios::binary);
    std::string filler(1200, 'w');
    for (int i = 1; i <= 200000; ++i) {
      out << R"({"id":"batch_req_1","custom_id":"req-)" << i
          << R"(","response":{"status_code":200,"request_id":"r","body":{"content":")" << filler
          << R"("}},"error":null,"barrage":{"line":)" << i << "}}\n";
      if (i == 100000) out << R"({"id":"b","custom_id":"big","response":{"body":")" << std::string(8 << 20, 'b') << "\"}}\n";
    }
    out << R"({"id":"batch_req_1","custom_id":"torn","resp)";
  }
  struct stat st {};
  ASSERT_EQ(::stat(f.path().c_str(), &st), 0);
  auto t0 = std::chrono::steady_clock::now();
  ResumeState s;
  ASSERT_EQ(scan_output(f.path(), true, &s), "");
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("scanned %.0f MB, %llu lines in %.2f s\n", double(st.st_size) / 1e6, (unsigned long long)s.lines, secs);
  EXPECT_EQ(s.lines, 200001u);
  EXPECT_EQ(s.custom_ids.size(), 200001u);
  EXPECT_TRUE(s.custom_ids.contains("req-200000"));
  EXPECT_TRUE(s.custom_ids.contains("big"));
  EXPECT_TRUE(s.torn);
  ASSERT_EQ(::stat(f.path().c_str(), &st), 0);
  EXPECT_EQ(uint64_t(st.st_size), s.keep_bytes);
}

TEST(OutputFile, AppendsWholeLinesAndMendsAMissingNewline) {
  TempPath f("{\"torn\":");
  {
    OutputFile out;
    ASSERT_EQ(out.open(f.path()), "");
    ASSERT_EQ(out.write_line("{\"a\":1}\n"), 0);
    ASSERT_EQ(out.write_line("{\"b\":2}\n"), 0);
  }
  EXPECT_EQ(f.read(), "{\"torn\":\n{\"a\":1}\n{\"b\":2}\n");
  {
    OutputFile out;
    ASSERT_EQ(out.open(f.path()), "");  // ends with "\n": nothing added
    ASSERT_EQ(out.write_line("{\"c\":3}\n"), 0);
  }
  EXPECT_EQ(f.read(), "{\"torn\":\n{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n");
}

TEST(OutputFile, CreatesAMissingFileAndRefusesAnUnwritableOne) {
  std::string path = "/tmp/barrage-output-" + std::to_string(::getpid()) + ".jsonl";
  ::unlink(path.c_str());
  {
    OutputFile out;
    ASSERT_EQ(out.open(path), "");
    ASSERT_EQ(out.write_line("{}\n"), 0);
  }
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 3);
  ::unlink(path.c_str());
  OutputFile bad;
  EXPECT_NE(bad.open("/nonexistent-dir/out.jsonl"), "");
}

}  // namespace
}  // namespace barrage
