// Google Benchmark suite for the Batch API runner's per-line work: parsing
// and checking an input JSONL line (and its URL resolution alone), minting
// the output line's id, formatting the output line around a ~600-byte answer
// (embedded JSON, or an HTML error page escaped into a string), and the
// --ordered reorder buffer. Each benchmark checks the line it got back
// against the one it gave.
#include "batch/batch_id.hpp"
#include "batch/input_line.hpp"
#include "batch/line_reader.hpp"
#include "batch/output_line.hpp"
#include "batch/reorder_buffer.hpp"
#include "bench_check.hpp"
#include "bench_fixtures.hpp"

#include <benchmark/benchmark.h>
#include <simdjson.h>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace barrage {
namespace {

using bench::fail;

constexpr std::string_view kEndpoint = "https://api.openai.com/v1";
constexpr std::string_view kCustomId = "req-000123";

// ---- input lines ------------------------------------------------------------

// One valid chat completion line with a prompt of N bytes, resolved against
// an OPENAI_BASE_URL-style endpoint that ends in /v1.
void BM_InputLine(benchmark::State& state) {
  const std::string body = bench::chat_request_body(size_t(state.range(0)));
  const std::string line = R"({"custom_id":")" + std::string(kCustomId) +
                           R"(","method":"POST","url":"/v1/chat/completions","body":)" + body + "}";
  // LineReader hands out lines with kLinePadding readable bytes behind them.
  const std::string storage = line + std::string(kLinePadding, ' ');
  const std::string_view text(storage.data(), line.size());
  InputLineParser parser{std::string(kEndpoint)};
  InputLine out;
  uint64_t wrong = 0;
  for (auto _ : state) {
    parser.parse(text, 123, &out);
    wrong += out.kind != InputLine::Kind::valid || out.body.size() != body.size();
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(int64_t(state.iterations() * line.size()));
  state.counters["line_bytes"] = double(line.size());
  if (wrong) return fail(state, "input line: " + std::to_string(wrong) + " parses invalid or with the wrong body (" + out.error + ")");
  if (out.custom_id != kCustomId || out.model != "gpt-4o-mini" || out.body != body ||
      out.url != "https://api.openai.com/v1/chat/completions")
    return fail(state, "input line: custom_id, model, body or url differ from the line");
}

// The URL part of BM_InputLine alone: joining the line's path to the
// endpoint and checking the result with parse_url, as every line does.
void BM_ResolveUrl(benchmark::State& state) {
  InputLineParser parser{std::string(kEndpoint)};
  std::string why;
  uint64_t wrong = 0;
  for (auto _ : state) {
    const std::string url = parser.resolve_url("/v1/chat/completions", &why);
    wrong += url.size() != 42;
  }
  state.SetItemsProcessed(state.iterations());
  if (wrong || parser.resolve_url("/v1/chat/completions", &why) != "https://api.openai.com/v1/chat/completions")
    return fail(state, "resolve_url: wrong URL (" + why + ")");
}

// ---- output lines -----------------------------------------------------------

// A 502 page as a proxy in front of the API sends it: not JSON, so the
// formatter escapes it into a JSON string (quotes and line breaks).
constexpr std::string_view kHtmlError =
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n"
    "<p class=\"detail\">The upstream server did not answer in time. The request was not "
    "processed; it is safe to retry it. If this keeps happening, look at the status page "
    "before you contact support, and quote the ray id below.</p>\r\n"
    "<p class=\"ray\">Ray ID: 8e7b2c1d4f5a6b7c &bull; 2024-11-24 01:48:16 UTC</p>\r\n"
    "<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n"
    "<!-- a padding to disable MSIE and Chrome friendly error page -->\r\n"
    "<!-- a padding to disable MSIE and Chrome friendly error page -->\r\n";

// One finished request's output line. Arg html:0 embeds the OpenAI answer
// as JSON (validated with simdjson first), html:1 escapes an HTML 502 page.
void BM_OutputLine(benchmark::State& state) {
  const bool html = state.range(0) != 0;
  BatchIdSource ids(42);
  const std::string id = ids.next();
  OutputRecord r;
  r.id = id;
  r.has_custom_id = true;
  r.custom_id = kCustomId;
  r.has_response = true;
  r.status_code = html ? 502 : 200;
  r.has_request_id = true;
  r.request_id = "req_5f0c1e7ad2b94c3e8a1f6d2b7c9e0a41";
  r.body = html ? kHtmlError : bench::kOpenAiAnswer;
  if (html) {
    r.error_code = "http_error";
    r.error_message = "HTTP 502 from https://api.openai.com:443";
  }
  r.line = 123;
  r.attempts = 1;
  r.latency_us = 812'345;
  r.ttfb_us = 731'002;
  r.prompt_tokens = html ? -1 : bench::kPromptTokens;
  r.completion_tokens = html ? -1 : bench::kCompletionTokens;
  r.model = "gpt-4o-mini";
  r.cost_usd = html ? -1 : 0.0000358;
  r.finished_unix_ms = 1'732'412'345'678;

  OutputLineFormatter formatter;
  const size_t want_size = formatter.format(r).size();
  uint64_t wrong = 0;
  const std::string* line = nullptr;
  for (auto _ : state) {
    line = &formatter.format(r);
    wrong += line->size() != want_size;
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(int64_t(state.iterations() * want_size));
  state.counters["line_bytes"] = double(want_size);
  if (wrong) return fail(state, "output line: " + std::to_string(wrong) + " lines of a different size");
  if (line == nullptr) return;
  if (line->back() != '\n' || std::count(line->begin(), line->end(), '\n') != 1)
    return fail(state, "output line: not exactly one line");

  // The line must read back as what the record said.
  simdjson::dom::parser p;
  simdjson::dom::element doc;
  if (p.parse(*line).get(doc)) return fail(state, "output line: not valid JSON");
  std::string_view s;
  int64_t n = 0;
  bool ok = !doc["custom_id"].get_string().get(s) && s == kCustomId;
  ok = ok && !doc["barrage"]["line"].get_int64().get(n) && n == 123;
  ok = ok && !doc["response"]["status_code"].get_int64().get(n) && n == r.status_code;
  if (html) {
    ok = ok && !doc["response"]["body"].get_string().get(s) && s == kHtmlError;
    ok = ok && !doc["error"]["code"].get_string().get(s) && s == "http_error";
  } else {
    ok = ok && !doc["response"]["body"]["usage"]["completion_tokens"].get_int64().get(n) && n == bench::kCompletionTokens;
    ok = ok && !doc["barrage"]["prompt_tokens"].get_int64().get(n) && n == bench::kPromptTokens;
    ok = ok && doc["error"].is_null();
  }
  if (!ok) return fail(state, "output line: fields differ from the record");
}

// The "batch_req_" + 24 hex digits id each output line starts with.
void BM_BatchId(benchmark::State& state) {
  BatchIdSource ids(7);
  uint64_t wrong = 0;
  std::string last;
  for (auto _ : state) {
    std::string id = ids.next();
    wrong += id.size() != 34;
    last.swap(id);
  }
  state.SetItemsProcessed(state.iterations());
  if (wrong || !last.starts_with("batch_req_") ||
      last.find_first_not_of("0123456789abcdef", 10) != std::string::npos)
    return fail(state, "batch id: not batch_req_ and 24 hex digits: " + last);
}

// ---- reorder buffer ---------------------------------------------------------

// What --ordered holds: the formatted line and the figures the progress needs.
struct Finished {
  uint64_t seq = 0;
  std::string line;
  int64_t prompt_tokens = -1;
  int64_t completion_tokens = -1;
};

// --ordered with a window of W lines: lines finish in a random order within
// each run of W consecutive lines (as concurrent requests do), each is put()
// and every line now in order is popped. One iteration is one put plus its
// share of pops. Line strings circulate through a pool, so nothing allocates.
void BM_Reorder(benchmark::State& state) {
  const auto window = uint32_t(state.range(0));
  std::vector<uint32_t> order(size_t(window) * 16);
  std::mt19937 rng(window);
  for (size_t at = 0; at < order.size(); at += window) {
    std::iota(order.begin() + long(at), order.begin() + long(at + window), uint32_t(at));
    std::shuffle(order.begin() + long(at), order.begin() + long(at + window), rng);
  }
  std::vector<std::string> pool(window, std::string(700, 'x'));
  ReorderBuffer<Finished> buffer(window);
  Finished popped;
  uint64_t base = 0, next_out = 0, wrong = 0;
  size_t i = 0;
  for (auto _ : state) {
    const uint64_t seq = base + order[i];
    Finished f;
    f.seq = seq;
    f.line = std::move(pool[seq % window]);
    buffer.put(seq, std::move(f));
    while (buffer.pop(&popped)) {
      wrong += popped.seq != next_out++;
      pool[popped.seq % window] = std::move(popped.line);
    }
    if (++i == order.size()) {
      i = 0;
      base += order.size();
    }
  }
  state.SetItemsProcessed(state.iterations());
  if (wrong) return fail(state, "reorder: " + std::to_string(wrong) + " lines out of order");
  // Every line whose predecessors have all arrived must be out.
  if (buffer.head() != next_out || next_out + buffer.held() != uint64_t(state.iterations()))
    return fail(state, "reorder: lines lost or held back");
}

BENCHMARK(BM_InputLine)->ArgName("prompt_bytes")->Arg(40)->Arg(4 << 10);
BENCHMARK(BM_ResolveUrl);
BENCHMARK(BM_OutputLine)->ArgName("html")->Arg(0)->Arg(1);
BENCHMARK(BM_BatchId);
BENCHMARK(BM_Reorder)->ArgName("window")->Arg(64)->Arg(10000);

}  // namespace
}  // namespace barrage

int main(int argc, char** argv) { return barrage::bench::run_benchmarks(argc, argv); }
