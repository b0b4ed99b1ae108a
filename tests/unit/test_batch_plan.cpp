// Unit tests for batch/ batch_plan: the validation pass counts what
// this invocation will run, refuses duplicate custom_ids naming both lines,
// and skips by shard and by what a resumed output already holds.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "barrage.h"
#include "batch/batch_plan.hpp"

namespace barrage {
namespace {

std::string line(const std::string& id) {
  return R"({"custom_id":")" + id + R"(","method":"POST","url":"/v1/chat/completions","body":{"model":"m"}})" "\n";
}

struct Fixture {
  std::string path = "/tmp/barrage-plan-" + std::to_string(::getpid()) + ".jsonl";
  BatchSettings settings;
  ResumeState resume;
  explicit Fixture(const std::string& content) {
    std::ofstream(path, std::ios::binary) << content;
    settings.input_path = path;
    settings.endpoint = "https://api.example.com";
  }
  ~Fixture() { ::unlink(path.c_str()); }
  int plan(BatchPlan* out, std::string* err) {
    LineSelector selector(settings, resume);
    InputLineParser parser(settings.endpoint);
    return plan_batch(settings, selector, parser, out, err);
  }
};

TEST(BatchPlan, CountsValidInvalidAndBlankLines) {
  Fixture f(line("a") + "\n" + "not json\n" + line("b") + R"({"custom_id":"c","method":"GET","url":"/x","body":{}})" "\n");
  BatchPlan p;
  std::string err;
  ASSERT_EQ(f.plan(&p, &err), 0) << err;
  EXPECT_EQ(p.total, 4u);  // a, not json, b, c; the blank line is no line
  EXPECT_EQ(p.invalid, 2u);
  EXPECT_EQ(p.skipped, 0u);
}

TEST(BatchPlan, DuplicateCustomIdNamesBothLines) {
  Fixture f(line("a") + line("b") + "\n" + line("c") + line("b"));
  BatchPlan p;
  std::string err;
  EXPECT_EQ(f.plan(&p, &err), BRG_E_INVALID);
  EXPECT_NE(err.find("\"b\""), std::string::npos) << err;
  EXPECT_NE(err.find("lines 2 and 5"), std::string::npos) << err;
}

TEST(BatchPlan, DuplicatesAcrossShardsAndOnInvalidLinesAreFound) {
  Fixture f(line("a") + R"({"custom_id":"a","method":"PUT","url":"/x","body":{}})" "\n");
  f.settings.shard_count = 2;
  BatchPlan p;
  std::string err;
  EXPECT_EQ(f.plan(&p, &err), BRG_E_INVALID) << "line 2 is another shard's and invalid, yet its id clashes";
}

TEST(BatchPlan, ShardsPartitionTheLines) {
  std::string content;
  for (int i = 0; i < 10; ++i) content += line("id" + std::to_string(i));
  uint64_t total = 0;
  for (uint32_t s = 0; s < 3; ++s) {
    Fixture f(content);
    f.settings.shard_count = 3;
    f.settings.shard_index = s;
    BatchPlan p;
    std::string err;
    ASSERT_EQ(f.plan(&p, &err), 0) << err;
    EXPECT_EQ(p.total + p.skipped, 10u);
    total += p.total;
  }
  EXPECT_EQ(total, 10u);
}

TEST(BatchPlan, ResumeSkipsDoneIdsAndReportedInvalidLines) {
  Fixture f(line("a") + "garbage\n" + line("b") + "garbage again\n");
  f.settings.flags = BRG_BATCH_RESUME;
  f.resume.custom_ids = {"a"};
  f.resume.invalid_lines = {2, 3};  // 3 has an id now: it runs by its id
  BatchPlan p;
  std::string err;
  ASSERT_EQ(f.plan(&p, &err), 0) << err;
  EXPECT_EQ(p.skipped, 2u);
  EXPECT_EQ(p.total, 2u);  // b and line 4
  EXPECT_EQ(p.invalid, 1u);
}

TEST(BatchPlan, UnreadableInput) {
  BatchSettings s;
  s.input_path = "/nonexistent/in.jsonl";
  ResumeState r;
  LineSelector selector(s, r);
  InputLineParser parser("https://x.example");
  BatchPlan p;
  std::string err;
  EXPECT_EQ(plan_batch(s, selector, parser, &p, &err), BRG_E_INVALID);
  EXPECT_NE(err.find("cannot open"), std::string::npos);
}

}  // namespace
}  // namespace barrage
