// Unit tests for batch/ batch_options and price_table: defaults from
// the environment, the API key header (never echoed), refused options, and
// prices by model with dated snapshots.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <string>

#include "batch/batch_options.hpp"
#include "batch/price_table.hpp"

namespace barrage {
namespace {

std::map<std::string, std::string> g_env;
const char* fake_getenv(const char* name) {
  auto it = g_env.find(name);
  return it == g_env.end() ? nullptr : it->second.c_str();
}

brg_batch_options base() {
  brg_batch_options o{};
  o.size = sizeof o;
  o.input_path = "/tmp/in.jsonl";
  o.output_path = "/tmp/out.jsonl";
  return o;
}

std::string header(const BatchSettings& s, const std::string& name) {
  for (auto& [n, v] : s.headers)
    if (n == name) return v;
  return "<absent>";
}

TEST(BatchOptions, DefaultsAndEnvironment) {
  g_env.clear();
  BatchSettings s;
  brg_batch_options o = base();
  ASSERT_EQ(settings_from_options(&o, fake_getenv, &s), "");
  EXPECT_EQ(s.endpoint, "https://api.openai.com");
  EXPECT_EQ(header(s, "Authorization"), "<absent>");
  EXPECT_EQ(header(s, "Content-Type"), "application/json");
  EXPECT_EQ(s.reorder_window, 10000u);
  EXPECT_EQ(s.shard_count, 1u);
  EXPECT_GT(s.prices.size(), 5u) << "built-in table";

  g_env = {{"OPENAI_BASE_URL", "https://gw.example/v1/"}, {"OPENAI_API_KEY", "sk-secret"}};
  ASSERT_EQ(settings_from_options(&o, fake_getenv, &s), "");
  EXPECT_EQ(s.endpoint, "https://gw.example/v1");
  EXPECT_EQ(header(s, "Authorization"), "Bearer sk-secret");

  o.endpoint = "https://explicit.example";
  o.api_key_env = "MY_KEY";
  g_env["MY_KEY"] = "k2";
  ASSERT_EQ(settings_from_options(&o, fake_getenv, &s), "");
  EXPECT_EQ(s.endpoint, "https://explicit.example");
  EXPECT_EQ(header(s, "Authorization"), "Bearer k2");
}

TEST(BatchOptions, CallersHeadersWin) {
  g_env = {{"OPENAI_API_KEY", "sk-secret"}};
  brg_header hs[] = {{"authorization", "Bearer mine"}, {"x-api-key", "anthropic"}, {"content-type", "application/json; charset=utf-8"}};
  brg_batch_options o = base();
  o.headers = hs;
  o.n_headers = 3;
  BatchSettings s;
  ASSERT_EQ(settings_from_options(&o, fake_getenv, &s), "");
  EXPECT_EQ(s.headers.size(), 3u);
  EXPECT_EQ(header(s, "authorization"), "Bearer mine");
}

TEST(BatchOptions, RefusedOptionsSayWhyAndNeverShowTheKey) {
  g_env = {{"OPENAI_API_KEY", "sk-line\nbreak"}};
  BatchSettings s;
  brg_batch_options o = base();
  std::string err = settings_from_options(&o, fake_getenv, &s);
  EXPECT_NE(err.find("OPENAI_API_KEY"), std::string::npos) << err;
  EXPECT_EQ(err.find("sk-line"), std::string::npos) << "the key must never be printed";
  g_env.clear();

  auto refused = [&](brg_batch_options x, const std::string& needle) {
    std::string why = settings_from_options(&x, fake_getenv, &s);
    EXPECT_NE(why.find(needle), std::string::npos) << "got: " << why;
  };
  EXPECT_NE(settings_from_options(nullptr, fake_getenv, &s), "");
  o = base();
  o.size = 8;
  refused(o, "size");
  o = base();
  o.flags = 0x80;
  refused(o, "flag");
  o = base();
  o.input_path = nullptr;
  refused(o, "input_path");
  o = base();
  o.output_path = "";
  refused(o, "output_path");
  o.flags = BRG_BATCH_DRY_RUN;  // a dry run writes nothing, so needs no output
  EXPECT_EQ(settings_from_options(&o, fake_getenv, &s), "");
  o = base();
  o.shard_count = 4;
  o.shard_index = 4;
  refused(o, "shard_index");
  o = base();
  o.deadline_ms = -1;
  refused(o, "deadline_ms");
  o = base();
  o.max_retries = -2;
  refused(o, "max_retries");
  o = base();
  o.endpoint = "ftp://x";
  refused(o, "https://");
  o = base();
  o.endpoint = "https://x.example/?q=1";
  refused(o, "query");
  o = base();
  o.n_headers = 1;
  refused(o, "headers is NULL");
  o = base();
  o.prices_path = "/nonexistent/prices.json";
  refused(o, "price table");
  o = base();
  o.output_path = o.input_path = "/proc/self/status";
  refused(o, "input file itself");
}

TEST(PriceTable, BuiltinTableFindsModelsAndSnapshots) {
  PriceTable t = PriceTable::builtin();
  ASSERT_NE(t.find("gpt-4o"), nullptr);
  EXPECT_DOUBLE_EQ(t.find("gpt-4o")->input_per_1m, 2.50);
  EXPECT_EQ(t.find("gpt-4o-2024-08-06"), t.find("gpt-4o"));
  EXPECT_EQ(t.find("gpt-4o-mini-2024-07-18"), t.find("gpt-4o-mini"));
  EXPECT_NE(t.find("gpt-4o-mini"), t.find("gpt-4o"));
  EXPECT_NE(t.find("claude-sonnet-4-20250514"), nullptr);
  EXPECT_EQ(t.find("gpt-4"), nullptr) << "a shorter name is not a snapshot of a longer one";
  EXPECT_EQ(t.find("mock-1"), nullptr);
  EXPECT_EQ(t.find("_updated"), nullptr) << "metadata keys are not models";
}

TEST(PriceTable, CostAndCustomTables) {
  PriceTable t;
  ASSERT_EQ(t.load_json(R"({"_note":"test","m":{"input":2,"output":8},"free":{"input":0,"output":0}})"), "");
  EXPECT_EQ(t.size(), 2u);
  EXPECT_DOUBLE_EQ(t.cost("m", 1000, 500), (1000 * 2.0 + 500 * 8.0) / 1e6);
  EXPECT_DOUBLE_EQ(t.cost("m-2025-01-01", 1000000, 0), 2.0);
  EXPECT_EQ(t.cost("free", 10, 10), 0.0);
  EXPECT_LT(t.cost("m", -1, 5), 0) << "unknown tokens: no cost";
  EXPECT_LT(t.cost("other", 1, 1), 0);
  EXPECT_LT(t.cost("", 1, 1), 0);
  EXPECT_NE(t.load_json("[1]"), "");
  EXPECT_NE(t.load_json(R"({"m":{"input":"2"}})"), "");
  EXPECT_NE(t.load_json(R"({"m":{"input":-1,"output":1}})"), "");
  EXPECT_NE(t.load_json("{"), "");
  EXPECT_EQ(t.size(), 2u) << "a refused table changes nothing";

  std::string path = "/tmp/barrage-prices-" + std::to_string(::getpid()) + ".json";
  std::ofstream(path) << R"({"x":{"input":1.5,"output":3}})";
  ASSERT_EQ(t.load_file(path), "");
  EXPECT_DOUBLE_EQ(t.find("x")->output_per_1m, 3.0);
  ::unlink(path.c_str());
}

}  // namespace
}  // namespace barrage
