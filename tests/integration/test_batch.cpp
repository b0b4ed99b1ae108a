// The batch runner through brg_batch_run against the in-process mock
// endpoint, on both backends: a large batch, malformed lines, ordered
// output, resume after an abort, a stop and a torn line, refusal of
// duplicate ids before anything is sent, dry runs, error shapes, shards.
#include <simdjson.h>
#include <sys/stat.h>

#include <fstream>
#include <functional>
#include <set>
#include <sstream>

#include "capi_harness.hpp"

namespace barrage::testing {
namespace {

std::string input_line(int i) {
  return R"({"custom_id":"req-)" + std::to_string(i) +
         R"(","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"document )" +
         std::to_string(i) + R"("}]}})" "\n";
}

std::string input_file(int n) {
  std::string s;
  s.reserve(size_t(n) * 150);
  for (int i = 0; i < n; ++i) s += input_line(i);
  return s;
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

// An output path in /tmp that is removed afterwards and does not exist yet.
struct OutputPath {
  std::string path;
  OutputPath() {
    TempFile t("");
    path = t.path() + ".out.jsonl";
  }
  ~OutputPath() { ::unlink(path.c_str()); }
};

struct OutLine {
  std::string custom_id;  // "" for null
  uint64_t line = 0;
  int status_code = 0;  // 0: response null
  std::string body_content;  // choices[0].message.content
  std::string error_code;    // "" for null
  std::string error_message;
  int64_t prompt_tokens = -1;
  double cost = -1;
};

// Every line of the output, which must all be whole JSON objects.
std::vector<OutLine> read_output(const std::string& path) {
  std::vector<OutLine> out;
  std::string text = read_file(path);
  EXPECT_TRUE(text.empty() || text.back() == '\n') << "torn last line";
  simdjson::dom::parser parser;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string_view line(text.data() + pos, nl - pos);
    pos = nl + 1;
    simdjson::dom::element doc;
    auto err = parser.parse(line.data(), line.size()).get(doc);
    EXPECT_EQ(err, simdjson::SUCCESS) << line;
    if (err) continue;
    OutLine o;
    std::string_view s;
    if (!doc["custom_id"].get_string().get(s)) o.custom_id = s;
    o.line = uint64_t(doc["barrage"]["line"].get_uint64().value_unsafe());
    int64_t status = 0;
    if (!doc["response"]["status_code"].get_int64().get(status)) o.status_code = int(status);
    if (!doc["response"]["body"]["choices"].at(0)["message"]["content"].get_string().get(s)) o.body_content = s;
    if (!doc["error"]["code"].get_string().get(s)) o.error_code = s;
    if (!doc["error"]["message"].get_string().get(s)) o.error_message = s;
    if (doc["barrage"]["prompt_tokens"].get_int64().get(o.prompt_tokens)) o.prompt_tokens = -1;
    if (doc["barrage"]["cost_usd"].get_double().get(o.cost)) o.cost = -1;
    std::string_view id;
    EXPECT_FALSE(doc["id"].get_string().get(id));
    EXPECT_EQ(id.size(), 34u);
    out.push_back(std::move(o));
  }
  return out;
}

// Every input 0..n-1 exactly once, each answer echoing its own request.
void expect_complete(const std::vector<OutLine>& lines, int n) {
  std::set<std::string> seen;
  for (auto& l : lines) {
    EXPECT_TRUE(seen.insert(l.custom_id).second) << "custom_id twice: " << l.custom_id;
    int i = std::stoi(l.custom_id.substr(4));
    EXPECT_EQ(l.line, uint64_t(i) + 1);
    EXPECT_EQ(l.status_code, 200) << l.custom_id << " " << l.error_message;
    EXPECT_EQ(l.error_code, "");
    EXPECT_TRUE(l.body_content.ends_with(": document " + std::to_string(i))) << l.custom_id << ": " << l.body_content;
  }
  EXPECT_EQ(seen.size(), size_t(n));
}

// brg_batch_run with a std::function as progress callback.
struct Runner {
  brg_batch_options opts{};
  std::function<int(const brg_batch_progress&)> on_progress;
  brg_batch_progress final{};
  int calls = 0;

  Runner(const std::string& in, const std::string& out, const MockEndpoint& m) : in_(in), out_(out), endpoint_(m.base) {
    opts.size = sizeof opts;
    opts.input_path = in_.c_str();
    opts.output_path = out_.c_str();
    opts.endpoint = endpoint_.c_str();
    opts.max_retries = -1;
  }
  int run(brg_engine* e) {
    return brg_batch_run(e, &opts, &Runner::trampoline, this, &final);
  }

 private:
  static int trampoline(const brg_batch_progress* p, void* user) {
    auto* self = static_cast<Runner*>(user);
    ++self->calls;
    EXPECT_EQ(p->size, sizeof(brg_batch_progress));
    // A dry run writes nothing: its `invalid` counts the invalid lines found.
    if (!(self->opts.flags & BRG_BATCH_DRY_RUN)) EXPECT_EQ(p->done, p->ok + p->failed + p->invalid);
    return self->on_progress ? self->on_progress(*p) : 0;
  }
  std::string in_, out_, endpoint_;
};

class Batch : public ::testing::TestWithParam<int> {
 protected:
  int backend() const { return GetParam(); }
};

TEST_P(Batch, TwentyThousandLinesEveryIdOnceEchoingItsOwnRequest) {
  MockEndpoint m = MockEndpoint::start();
  Engine e(backend(), m.ca->path(), {{BRG_OPT_MAX_INFLIGHT, 256}});
  TempFile in(input_file(20000));
  OutputPath out;
  Runner r(in.path(), out.path, m);
  uint64_t most_in_flight = 0;
  r.on_progress = [&](const brg_batch_progress& p) {
    most_in_flight = std::max(most_in_flight, p.in_flight);
    return 0;
  };
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(r.run(e.get()), 0) << brg_last_error();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("20000 lines in %.2f s, progress calls %d, most in flight %llu\n", secs, r.calls,
              (unsigned long long)most_in_flight);
  EXPECT_EQ(r.final.total, 20000u);
  EXPECT_EQ(r.final.done, 20000u);
  EXPECT_EQ(r.final.ok, 20000u);
  EXPECT_EQ(r.final.in_flight, 0u);
  EXPECT_GT(r.final.prompt_tokens, 0);
  EXPECT_GT(r.final.cost_usd, 0.0) << "gpt-4o-mini is in the built-in price table";
  EXPECT_GE(r.calls, 1);
  EXPECT_LE(most_in_flight, 2u * 256u + 256u) << "back-pressure: the file is not submitted at once";
  auto lines = read_output(out.path);
  EXPECT_EQ(lines.size(), 20000u);
  expect_complete(lines, 20000);
  EXPECT_GT(lines[0].prompt_tokens, 0);
  EXPECT_GT(lines[0].cost, 0);
  EXPECT_EQ(m.server->stats().requests, 20000u);
}

TEST_P(Batch, MalformedLinesAreReportedWithTheirLineNumbersAndTheRestRuns) {
  MockEndpoint m = MockEndpoint::start();
  Engine e(backend(), m.ca->path());
  std::string content;
  std::map<uint64_t, std::string> bad;  // line number -> expected message part
  for (int i = 0; i < 100; ++i) {
    content += input_line(i);
    uint64_t next = uint64_t(std::count(content.begin(), content.end(), '\n')) + 1;
    if (i == 10) content += "{\"custom_id\": \"broken\n", bad[next] = "not valid JSON";
    if (i == 20) content += R"({"method":"POST","url":"/v1/chat/completions","body":{}})" "\n", bad[next] = "custom_id is missing";
    if (i == 30) content += R"({"custom_id":"get-1","method":"GET","url":"/v1/models","body":{}})" "\n", bad[next] = "only POST";
    if (i == 40) content += R"({"custom_id":"nobody","method":"POST","url":"/v1/chat/completions"})" "\n", bad[next] = "body is missing";
    if (i == 50) content += R"({"custom_id":"ftp","method":"POST","url":"ftp://x/y","body":{}})" "\n", bad[next] = "url must be";
    if (i == 60) content += "\n";  // blank: no line at all
  }
  TempFile in(content);
  OutputPath out;
  Runner r(in.path(), out.path, m);
  ASSERT_EQ(r.run(e.get()), 0) << brg_last_error();
  EXPECT_EQ(r.final.ok, 100u);
  EXPECT_EQ(r.final.invalid, 5u);
  EXPECT_EQ(r.final.total, 105u);
  auto lines = read_output(out.path);
  ASSERT_EQ(lines.size(), 105u);
  int invalid = 0;
  for (auto& l : lines) {
    if (l.error_code != "invalid_request") continue;
    ++invalid;
    ASSERT_TRUE(bad.contains(l.line)) << "line " << l.line;
    EXPECT_EQ(l.status_code, 0);
    EXPECT_EQ(l.error_message.rfind("line " + std::to_string(l.line) + ": ", 0), 0u) << l.error_message;
    EXPECT_NE(l.error_message.find(bad[l.line]), std::string::npos) << l.error_message;
  }
  EXPECT_EQ(invalid, 5);
  EXPECT_EQ(m.server->stats().requests, 100u);
}

TEST_P(Batch, OrderedOutputFollowsTheInput) {
  mock::MockOptions o;
  o.latency_ms = 1;
  o.latency_jitter_ms = 30;  // answers finish well out of order
  MockEndpoint m = MockEndpoint::start(o);
  Engine e(backend(), m.ca->path(), {{BRG_OPT_MAX_INFLIGHT, 100}});
  std::string content;
  for (int i = 0; i < 2000; ++i) {
    content += input_line(i);
    if (i % 500 == 7) content += "oops\n";
  }
  TempFile in(content);
  OutputPath out;
  Runner r(in.path(), out.path, m);
  r.opts.flags = BRG_BATCH_ORDERED;
  r.opts.reorder_window = 64;  // smaller than in-flight: the window holds submission back
  ASSERT_EQ(r.run(e.get()), 0) << brg_last_error();
  auto lines = read_output(out.path);
  ASSERT_EQ(lines.size(), 2004u);
  for (size_t i = 1; i < lines.size(); ++i) ASSERT_LT(lines[i - 1].line, lines[i].line) << "at output line " << i + 1;
  EXPECT_EQ(r.final.invalid, 4u);
}

TEST_P(Batch, ResumeAfterAbortRunsEveryIdExactlyOnce) {
  mock::MockOptions o;
  o.latency_ms = 20;
  MockEndpoint m = MockEndpoint::start(o);
  Engine e(backend(), m.ca->path(), {{BRG_OPT_MAX_INFLIGHT, 100}});
  TempFile in(input_file(3000));
  OutputPath out;
  Runner first(in.path(), out.path, m);
  first.on_progress = [](const brg_batch_progress& p) { return p.done >= 500 ? 2 : 0; };
  ASSERT_EQ(first.run(e.get()), BRG_E_CANCELLED);
  EXPECT_NE(std::string(brg_last_error()).find("aborted"), std::string::npos) << brg_last_error();
  EXPECT_EQ(first.final.in_flight, 0u);
  auto partial = read_output(out.path);
  EXPECT_GE(partial.size(), 500u);
  EXPECT_LT(partial.size(), 3000u);
  EXPECT_EQ(partial.size(), first.final.done);

  Runner second(in.path(), out.path, m);
  second.opts.flags = BRG_BATCH_RESUME;
  ASSERT_EQ(second.run(e.get()), 0) << brg_last_error();
  EXPECT_EQ(second.final.skipped, partial.size());
  EXPECT_EQ(second.final.total, 3000u - partial.size());
  EXPECT_EQ(second.final.done, second.final.total);
  auto lines = read_output(out.path);
  EXPECT_EQ(lines.size(), 3000u);
  expect_complete(lines, 3000);
}

TEST_P(Batch, StopLetsInFlightRequestsFinishAndResumeCompletes) {
  mock::MockOptions o;
  o.latency_ms = 20;
  MockEndpoint m = MockEndpoint::start(o);
  Engine e(backend(), m.ca->path(), {{BRG_OPT_MAX_INFLIGHT, 100}});
  TempFile in(input_file(2000));
  OutputPath out;
  Runner first(in.path(), out.path, m);
  first.on_progress = [](const brg_batch_progress& p) { return p.done >= 300 ? 1 : 0; };
  ASSERT_EQ(first.run(e.get()), 0) << brg_last_error();
  EXPECT_EQ(first.final.in_flight, 0u);
  EXPECT_LT(first.final.done, 2000u);
  EXPECT_EQ(m.server->stats().requests, first.final.done) << "everything sent was written";
  Runner second(in.path(), out.path, m);
  second.opts.flags = BRG_BATCH_RESUME | BRG_BATCH_ORDERED;
  ASSERT_EQ(second.run(e.get()), 0) << brg_last_error();
  expect_complete(read_output(out.path), 2000);
}

TEST_P(Batch, ResumeCutsATornLastLine) {
  MockEndpoint m = MockEndpoint::start();
  Engine e(backend(), m.ca->path());
  TempFile in(input_file(300));
  OutputPath out;
  Runner first(in.path(), out.path, m);
  ASSERT_EQ(first.run(e.get()), 0) << brg_last_error();
  // Keep 200 whole lines and half of the 201st, as a crash mid-write would.
  std::string text = read_file(out.path);
  size_t cut = 0;
  for (int i = 0; i < 200; ++i) cut = text.find('\n', cut) + 1;
  size_t next = text.find('\n', cut);
  std::ofstream(out.path, std::ios::binary | std::ios::trunc) << text.substr(0, cut + (next - cut) / 2);
  uint64_t before = m.server->stats().requests;

  Runner second(in.path(), out.path, m);
  second.opts.flags = BRG_BATCH_RESUME;
  ASSERT_EQ(second.run(e.get()), 0) << brg_last_error();
  EXPECT_EQ(second.final.skipped, 200u);
  EXPECT_EQ(second.final.done, 100u);
  EXPECT_EQ(m.server->stats().requests - before, 100u);
  expect_complete(read_output(out.path), 300);
}

TEST_P(Batch, ResumeSkipsInvalidLinesAlreadyReported) {
  MockEndpoint m = MockEndpoint::start();
  Engine e(backend(), m.ca->path());
  TempFile in(input_file(10) + "garbage\n" + input_line(10));
  OutputPath out;
  Runner first(in.path(), out.path, m);
  ASSERT_EQ(first.run(e.get()), 0) << brg_last_error();
  Runner second(in.path(), out.path, m);
  second.opts.flags = BRG_BATCH_RESUME;
  ASSERT_EQ(second.run(e.get()), 0) << brg_last_error();
  EXPECT_EQ(second.final.skipped, 12u);
  EXPECT_EQ(second.final.total, 0u);
  EXPECT_EQ(read_output(out.path).size(), 12u);
}

TEST_P(Batch, DuplicateCustomIdIsRefusedBeforeAnythingIsSent) {
  MockEndpoint m = MockEndpoint::start();
  Engine e(backend(), m.ca->path());
  TempFile in(input_file(50) + input_line(7));
  OutputPath out;
  Runner r(in.path(), out.path, m);
  EXPECT_EQ(r.run(e.get()), BRG_E_INVALID);
  std::string why = brg_last_error();
  EXPECT_NE(why.find("req-7"), std::string::npos) << why;
  EXPECT_NE(why.find("lines 8 and 51"), std::string::npos) << why;
  EXPECT_EQ(m.server->stats().requests, 0u);
  EXPECT_FALSE(exists(out.path)) << "nothing is written either";
}

TEST_P(Batch, DryRunValidatesAndCountsButSendsAndWritesNothing) {
  MockEndpoint m = MockEndpoint::start();
  Engine e(backend(), m.ca->path());
  TempFile in(input_file(40) + "{bad\n" + R"({"custom_id":"x","method":"DELETE","url":"/v1/a","body":{}})" "\n");
  OutputPath out;
  Runner r(in.path(), out.path, m);
  r.opts.flags = BRG_BATCH_DRY_RUN;
  ASSERT_EQ(r.run(e.get()), 0) << brg_last_error();
  EXPECT_EQ(r.final.total, 42u);
  EXPECT_EQ(r.final.invalid, 2u);
  EXPECT_EQ(r.final.done, 0u);
  EXPECT_EQ(r.calls, 1) << "one report, at the end";
  EXPECT_EQ(m.server->stats().requests, 0u);
  EXPECT_FALSE(exists(out.path));
}

TEST_P(Batch, HttpAndTransportFailuresHaveTheirShapes) {
  MockEndpoint m = MockEndpoint::start();
  Engine e(backend(), m.ca->path());
  TempFile in(input_file(5));
  {
    OutputPath out;
    Runner r(in.path(), out.path, m);
    brg_header h[] = {{"x-mock-status", "500"}};
    r.opts.headers = h;
    r.opts.n_headers = 1;
    r.opts.max_retries = 0;
    ASSERT_EQ(r.run(e.get()), 0) << brg_last_error();
    EXPECT_EQ(r.final.failed, 5u);
    for (auto& l : read_output(out.path)) {
      EXPECT_EQ(l.status_code, 500);
      EXPECT_EQ(l.error_code, "http_error");
      EXPECT_NE(l.error_message.find("500"), std::string::npos);
    }
  }
  {
    OutputPath out;
    Runner r(in.path(), out.path, m);
    brg_header h[] = {{"x-mock-fault", "stall"}};
    r.opts.headers = h;
    r.opts.n_headers = 1;
    r.opts.deadline_ms = 200;
    ASSERT_EQ(r.run(e.get()), 0) << brg_last_error();
    EXPECT_EQ(r.final.failed, 5u);
    for (auto& l : read_output(out.path)) {
      EXPECT_EQ(l.status_code, 0) << "no response";
      EXPECT_EQ(l.error_code, "timeout");
    }
  }
}

TEST_P(Batch, AFullEngineHoldsLinesBackInsteadOfFailingThem) {
  MockEndpoint m = MockEndpoint::start();
  Engine e(backend(), m.ca->path(), {{BRG_OPT_MAX_INFLIGHT, 256}, {BRG_OPT_MAX_PENDING, 40}});
  TempFile in(input_file(1000));
  OutputPath out;
  Runner r(in.path(), out.path, m);
  ASSERT_EQ(r.run(e.get()), 0) << brg_last_error();
  EXPECT_EQ(r.final.ok, 1000u);
  expect_complete(read_output(out.path), 1000);
}

TEST_P(Batch, ShardsTogetherRunEveryLineOnce) {
  MockEndpoint m = MockEndpoint::start();
  Engine e(backend(), m.ca->path());
  TempFile in(input_file(999));
  OutputPath out;
  uint64_t total = 0;
  for (uint32_t s = 0; s < 3; ++s) {
    Runner r(in.path(), out.path, m);
    r.opts.shard_count = 3;
    r.opts.shard_index = s;
    ASSERT_EQ(r.run(e.get()), 0) << brg_last_error();
    EXPECT_EQ(r.final.total, 333u);
    EXPECT_EQ(r.final.skipped, 666u);
    total += r.final.done;
  }
  EXPECT_EQ(total, 999u);
  expect_complete(read_output(out.path), 999);
}

TEST_P(Batch, RefusesAStartedEngineAndBadOptions) {
  MockEndpoint m = MockEndpoint::start();
  TempFile in(input_file(3));
  OutputPath out;
  Runner r(in.path(), out.path, m);
  EXPECT_EQ(brg_batch_run(nullptr, &r.opts, nullptr, nullptr, nullptr), BRG_E_INVALID);
  Engine e(backend(), m.ca->path());
  EXPECT_EQ(brg_batch_run(e.get(), nullptr, nullptr, nullptr, nullptr), BRG_E_INVALID);
  brg_batch_options bad = r.opts;
  bad.input_path = "/nonexistent/in.jsonl";
  EXPECT_EQ(brg_batch_run(e.get(), &bad, nullptr, nullptr, nullptr), BRG_E_INVALID);
  EXPECT_NE(std::string(brg_last_error()).find("/nonexistent/in.jsonl"), std::string::npos) << brg_last_error();
  bad = r.opts;
  bad.output_path = "/nonexistent-dir/out.jsonl";
  EXPECT_EQ(brg_batch_run(e.get(), &bad, nullptr, nullptr, nullptr), BRG_E_INVALID);
  ASSERT_EQ(brg_start(e.get()), 0);
  EXPECT_EQ(brg_batch_run(e.get(), &r.opts, nullptr, nullptr, nullptr), BRG_E_INVALID);
  EXPECT_NE(std::string(brg_last_error()).find("inline"), std::string::npos) << brg_last_error();
  EXPECT_EQ(m.server->stats().requests, 0u);
}

INSTANTIATE_TEST_SUITE_P(Backends, Batch, ::testing::Values(BRG_BACKEND_IO_URING, BRG_BACKEND_EPOLL), backend_label);

}  // namespace
}  // namespace barrage::testing
