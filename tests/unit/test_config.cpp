// EngineConfig: defaults, range checks, and the environment names
// (BARRAGE_* and the wrapper aliases, with their units).
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "barrage.h"
#include "config_adapter.hpp"

namespace barrage::capi {
namespace {

std::map<std::string, std::string>* g_env = nullptr;  // test-local fake environment
const char* fake_getenv(const char* name) {
  auto it = g_env->find(name);
  return it == g_env->end() ? nullptr : it->second.c_str();
}

std::string from_env(EngineConfig& c, std::map<std::string, std::string> env) {
  g_env = &env;
  std::string err = config_from_env(c, fake_getenv);
  g_env = nullptr;
  return err;
}

TEST(Config, DefaultsAreSafe) {
  EngineConfig c;
  EXPECT_EQ(c.verify_peer, 1);
  EXPECT_EQ(c.allow_http, 0);
  EXPECT_GT(c.max_inflight, 0);
  EXPECT_GT(c.max_response_bytes, 0);
  EXPECT_EQ(c.backend, BRG_BACKEND_AUTO);
}

TEST(Config, SetIntValidatesRangeAndLeavesValueOnError) {
  EngineConfig c;
  EXPECT_EQ(config_set_int(c, BRG_OPT_MAX_INFLIGHT, 1000), "");
  EXPECT_EQ(c.max_inflight, 1000);
  std::string err = config_set_int(c, BRG_OPT_MAX_INFLIGHT, 0);
  EXPECT_NE(err.find("out of range"), std::string::npos) << err;
  EXPECT_EQ(c.max_inflight, 1000);
  EXPECT_NE(config_set_int(c, BRG_OPT_BACKEND, 3), "");
  EXPECT_NE(config_set_int(c, BRG_OPT_VERIFY_PEER, 2), "");
  EXPECT_NE(config_set_int(c, BRG_OPT_CA_FILE, 1), "") << "string option through set_int";
  EXPECT_NE(config_set_int(c, 9999, 1), "");
}

TEST(Config, SetStrOnlyForStringOptions) {
  EngineConfig c;
  EXPECT_EQ(config_set_str(c, BRG_OPT_CA_FILE, "/tmp/ca.pem"), "");
  EXPECT_EQ(c.ca_file, "/tmp/ca.pem");
  EXPECT_EQ(config_set_str(c, BRG_OPT_CA_FILE, nullptr), "");
  EXPECT_EQ(c.ca_file, "");
  EXPECT_NE(config_set_str(c, BRG_OPT_MAX_INFLIGHT, "5"), "");
}

TEST(Config, WrapperAliasesUseTheirUnits) {
  EngineConfig c;
  EXPECT_EQ(from_env(c, {{"MAX_CONCURRENT_LLM", "40"},
                         {"LLM_RATE_LIMIT", "500"},
                         {"LLM_RATE_PERIOD", "60"},
                         {"ASYNC_LLM_TIMEOUT", "2.5"}}),
            "");
  EXPECT_EQ(c.max_inflight, 40);
  EXPECT_EQ(c.rate_limit, 500);
  EXPECT_EQ(c.rate_period_ms, 60000);
  EXPECT_EQ(c.timeout_ms, 2500);
}

TEST(Config, BarrageNamesWinOverAliases) {
  EngineConfig c;
  EXPECT_EQ(from_env(c, {{"MAX_CONCURRENT_LLM", "40"}, {"BARRAGE_MAX_INFLIGHT", "7"},
                         {"BARRAGE_TIMEOUT_MS", "1234"}, {"ASYNC_LLM_TIMEOUT", "99"},
                         {"BARRAGE_BACKEND", "epoll"}, {"BARRAGE_VERIFY_PEER", "false"},
                         {"BARRAGE_CA_FILE", "/x.pem"}}),
            "");
  EXPECT_EQ(c.max_inflight, 7);
  EXPECT_EQ(c.timeout_ms, 1234);
  EXPECT_EQ(c.backend, BRG_BACKEND_EPOLL);
  EXPECT_EQ(c.verify_peer, 0);
  EXPECT_EQ(c.ca_file, "/x.pem");
}

TEST(Config, BadEnvironmentValuesNameTheVariable) {
  EngineConfig c;
  std::string err = from_env(c, {{"MAX_CONCURRENT_LLM", "lots"}});
  EXPECT_NE(err.find("MAX_CONCURRENT_LLM"), std::string::npos) << err;
  EXPECT_NE(err.find("integer"), std::string::npos) << err;
  err = from_env(c, {{"ASYNC_LLM_TIMEOUT", "-3"}});
  EXPECT_NE(err.find("seconds"), std::string::npos) << err;
  err = from_env(c, {{"BARRAGE_MAX_INFLIGHT", "0"}});
  EXPECT_NE(err.find("out of range"), std::string::npos) << err;
  err = from_env(c, {{"BARRAGE_BACKEND", "kqueue"}});
  EXPECT_NE(err.find("backend"), std::string::npos) << err;
  EXPECT_EQ(c.max_inflight, EngineConfig{}.max_inflight) << "a refused value changes nothing";
}

TEST(Config, EmptyVariablesAreIgnored) {
  EngineConfig c;
  EXPECT_EQ(from_env(c, {{"MAX_CONCURRENT_LLM", ""}}), "");
  EXPECT_EQ(c.max_inflight, EngineConfig{}.max_inflight);
}

// Every row of the table is settable through its own type and refused
// through the other, and its default is what a new config holds.
TEST(Config, EveryTableRowIsReachableAndDefaultsMatchTheTable) {
  int rows = 0;
#define CHECK_ROW_(number, NAME, name, type, def, lo, hi, aliases, doc)                       \
  {                                                                                            \
    ++rows;                                                                                    \
    EngineConfig c;                                                                            \
    EXPECT_EQ(c.name, decltype(c.name)(def)) << #NAME;                                         \
    EXPECT_EQ(int(BRG_OPT_##NAME), number);                                                    \
    if (std::string(#type) == "STR") {                                                         \
      EXPECT_EQ(config_set_str(c, number, "x"), "") << #NAME;                                  \
      EXPECT_NE(config_set_int(c, number, 1), "") << #NAME;                                    \
    } else {                                                                                   \
      EXPECT_EQ(config_set_int(c, number, hi), "") << #NAME;                                   \
      EXPECT_NE(config_set_int(c, number, int64_t(lo) - 1), "") << #NAME;                     \
      EXPECT_NE(config_set_str(c, number, "1"), "") << #NAME;                                  \
    }                                                                                          \
  }
  BRG_OPTION_TABLE(CHECK_ROW_)
#undef CHECK_ROW_
  EXPECT_EQ(rows, 38);
}

TEST(Config, TimeoutsAcceptNoTimeout) {
  EngineConfig c;
  for (int o : {BRG_OPT_TIMEOUT_MS, BRG_OPT_CONNECT_TIMEOUT_MS, BRG_OPT_IDLE_TIMEOUT_MS,
                BRG_OPT_FIRST_TOKEN_TIMEOUT_MS, BRG_OPT_STREAM_IDLE_TIMEOUT_MS})
    EXPECT_EQ(config_set_int(c, o, BRG_NO_TIMEOUT), "") << o;
  EXPECT_EQ(c.timeout_ms, INT64_MAX);
}

TEST(Config, AnEmptyStringIsAValueButAnEmptyNumberIsNot) {
  EngineConfig c;
  // BARRAGE_PROXY="" says "direct" and hides https_proxy; an empty
  // BARRAGE_MAX_INFLIGHT is as if unset, so the alias counts.
  EXPECT_EQ(from_env(c, {{"BARRAGE_PROXY", ""}, {"https_proxy", "http://p:1"},
                         {"BARRAGE_MAX_INFLIGHT", ""}, {"MAX_CONCURRENT_LLM", "9"}}),
            "");
  EXPECT_EQ(c.proxy, "");
  EXPECT_EQ(c.max_inflight, 9);
  EngineConfig d;
  EXPECT_EQ(from_env(d, {{"no_proxy", "a"}, {"NO_PROXY", "b"}}), "");
  EXPECT_EQ(d.no_proxy, "a") << "curl reads the lower-case name first";
}

TEST(Config, ProxyComesFromTheNamesCurlReadsLowerCaseFirst) {
  EngineConfig a;
  EXPECT_EQ(from_env(a, {{"HTTPS_PROXY", "http://upper:3128"}, {"NO_PROXY", ".internal"}}), "");
  EXPECT_EQ(a.proxy, "http://upper:3128");
  EXPECT_EQ(a.no_proxy, ".internal");
  EngineConfig b;
  EXPECT_EQ(from_env(b, {{"HTTPS_PROXY", "http://upper:3128"}, {"https_proxy", "http://lower:3128"},
                         {"no_proxy", "a"}, {"NO_PROXY", "b"}}),
            "");
  EXPECT_EQ(b.proxy, "http://lower:3128");
  EXPECT_EQ(b.no_proxy, "a");
  EngineConfig c;
  EXPECT_EQ(from_env(c, {{"https_proxy", "http://lower:3128"}, {"BARRAGE_PROXY", "http://mine:8080"}}), "");
  EXPECT_EQ(c.proxy, "http://mine:8080");
}

TEST(Config, StreamAndProtocolOptions) {
  EngineConfig c;
  EXPECT_EQ(c.http_version, 0);
  EXPECT_EQ(config_set_int(c, BRG_OPT_HTTP_VERSION, 2), "");
  EXPECT_NE(config_set_int(c, BRG_OPT_HTTP_VERSION, 3), "");
  EXPECT_EQ(c.http_version, 2);
  EXPECT_EQ(from_env(c, {{"BARRAGE_FIRST_TOKEN_TIMEOUT_MS", "1500"}, {"BARRAGE_STREAM_IDLE_TIMEOUT_MS", "300"}}), "");
  EXPECT_EQ(c.first_token_timeout_ms, 1500);
  EXPECT_EQ(c.stream_idle_timeout_ms, 300);
}

}  // namespace
}  // namespace barrage::capi
