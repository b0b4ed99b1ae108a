// Google Benchmark suite for the HTTP/1.1 work each request costs: writing
// the request, parsing a ~600-byte JSON answer (Content-Length or chunked,
// fed whole or in network-sized pieces) with the llhttp-based ResponseParser
// (and llhttp alone, as its floor), the header reads the engine makes on each
// answer, and its token usage (OpenAI and Anthropic shapes) via UsageReader.
// It also parses a streamed (server-sent events) answer with SseParser.
// Each benchmark checks what came out against what went in.
#include "bench_check.hpp"
#include "bench_fixtures.hpp"
#include "flow/rate_headers.hpp"
#include "flow/retry_policy.hpp"
#include "http/request_writer.hpp"
#include "http/response_parser.hpp"
#include "http/sse_parser.hpp"
#include "http/url.hpp"
#include "http/usage.hpp"

#include <benchmark/benchmark.h>
#include <llhttp.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <string_view>

namespace barrage {
namespace {

using bench::fail;

constexpr std::string_view kRequestId = "req_5f0c1e7ad2b94c3e8a1f6d2b7c9e0a41";

// ---- request serialization --------------------------------------------------

// What Engine::submit writes for a chat completion: a parsed URL, the
// caller's two headers, the body; the engine adds the rest. Arg fresh:1
// writes into a new string each time, as submit does (Request::wire), and
// fresh:0 into one reused buffer, the steady state write_request is built for.
void BM_WriteRequest(benchmark::State& state) {
  const bool fresh = state.range(0) != 0;
  const std::string body = bench::chat_request_body(size_t(state.range(1)));
  http::Url url;
  if (!http::parse_url("https://api.openai.com/v1/chat/completions", false, url).empty())
    return fail(state, "write_request: the fixture URL does not parse");
  const http::HeaderView headers[] = {
      {"Authorization", "Bearer sk-proj-Xq3vT9mB2nL7kR4wZ8yC1dF6hJ0sA5gP-benchmarkbenchmark"},
      {"OpenAI-Organization", "org-9hT2kLmQ4vX7bN1cR8sD3fG6"},
  };
  std::string want = "POST /v1/chat/completions HTTP/1.1\r\nHost: api.openai.com\r\n";
  for (const auto& h : headers) want.append(h.name).append(": ").append(h.value).append("\r\n");
  want += "User-Agent: barrage/0.1.0\r\nAccept: application/json\r\nContent-Type: application/json\r\n";
  want += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;

  std::string reused, last;
  uint64_t wrong = 0;
  for (auto _ : state) {
    std::string fresh_out;
    std::string& out = fresh ? fresh_out : reused;
    const std::string why = http::write_request(out, "POST", url, headers, 2, body, "0.1.0");
    wrong += !why.empty() || out.size() != want.size();
    benchmark::DoNotOptimize(out.data());
    // Keeps the last request for the check; the one swapped out is freed
    // here, as the engine frees each request's buffer.
    if (fresh) last.swap(fresh_out);
  }
  if (!fresh) last = reused;
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(int64_t(state.iterations() * want.size()));
  state.counters["wire_bytes"] = double(want.size());
  if (wrong) return fail(state, "write_request: " + std::to_string(wrong) + " requests refused or of the wrong size");
  if (last != want) return fail(state, "write_request: the request differs from the expected bytes");
}

// ---- response parsing -------------------------------------------------------

// An OpenAI answer's real header set (~20 lines), then the body, either with
// Content-Length or as `chunks` chunks of near-equal size.
std::string openai_response(std::string_view body, int chunks) {
  std::string r =
      "HTTP/1.1 200 OK\r\n"
      "Date: Sun, 24 Nov 2024 01:48:16 GMT\r\n"
      "Content-Type: application/json\r\n";
  if (chunks == 0)
    r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  else
    r += "Transfer-Encoding: chunked\r\n";
  r += "Connection: keep-alive\r\n"
       "access-control-expose-headers: X-Request-ID\r\n"
       "openai-organization: org-9ht2klmq4vx7bn1cr8sd3fg6\r\n"
       "openai-processing-ms: 731\r\n"
       "openai-version: 2020-10-01\r\n"
       "x-ratelimit-limit-requests: 30000\r\n"
       "x-ratelimit-limit-tokens: 150000000\r\n"
       "x-ratelimit-remaining-requests: 29999\r\n"
       "x-ratelimit-remaining-tokens: 149999967\r\n"
       "x-ratelimit-reset-requests: 2ms\r\n"
       "x-ratelimit-reset-tokens: 0s\r\n"
       "x-request-id: ";
  r += kRequestId;
  r += "\r\n"
       "strict-transport-security: max-age=31536000; includeSubDomains; preload\r\n"
       "CF-Cache-Status: DYNAMIC\r\n"
       "X-Content-Type-Options: nosniff\r\n"
       "Server: cloudflare\r\n"
       "CF-RAY: 8e7b2c1d4f5a6b7c-FRA\r\n"
       "alt-svc: h3=\":443\"; ma=86400\r\n"
       "\r\n";
  if (chunks == 0) return r + std::string(body);
  const size_t step = (body.size() + size_t(chunks) - 1) / size_t(chunks);
  char hex[32];
  for (size_t at = 0; at < body.size(); at += step) {
    const size_t n = std::min(step, body.size() - at);
    std::snprintf(hex, sizeof hex, "%zx\r\n", n);
    r += hex;
    r.append(body.substr(at, n));
    r += "\r\n";
  }
  return r + "0\r\n\r\n";
}

// Whole responses parsed by one reused ResponseParser, as a keep-alive
// connection does. Args: chunked (0 = Content-Length, else that many
// chunks), piece (bytes per feed(); 0 = the whole response in one call, as
// when one TLS record holds it). With body_moved:1 the body is moved out
// after each response, as Engine::on_response does, so the next response
// allocates its body again; body_moved:0 keeps the capacity.
void BM_ParseResponse(benchmark::State& state) {
  const int chunks = int(state.range(0));
  const size_t piece = state.range(1) > 0 ? size_t(state.range(1)) : SIZE_MAX;
  const bool move_body = state.range(2) != 0;
  const std::string_view body = bench::kOpenAiAnswer;
  const std::string wire = openai_response(body, chunks);
  http::ResponseParser parser;
  std::string taken;
  uint64_t wrong = 0;
  for (auto _ : state) {
    parser.reset();
    size_t at = 0;
    http::ResponseParser::State st = http::ResponseParser::State::need_more;
    while (at < wire.size() && st == http::ResponseParser::State::need_more) {
      size_t used = 0;
      st = parser.feed(wire.data() + at, std::min(piece, wire.size() - at), &used);
      at += used;
    }
    wrong += st != http::ResponseParser::State::complete || at != wire.size() || parser.status() != 200 ||
             parser.body().size() != body.size();
    if (move_body) taken = std::move(parser.body());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(int64_t(state.iterations() * wire.size()));
  state.counters["wire_bytes"] = double(wire.size());
  if (wrong) return fail(state, "parse: " + std::to_string(wrong) + " responses incomplete or of the wrong size");
  if ((move_body ? taken : parser.body()) != body) return fail(state, "parse: the body differs from what was sent");
  if (parser.header("X-Request-ID") != kRequestId || parser.headers().size() != 21 || !parser.keep_alive())
    return fail(state, "parse: headers or keep-alive differ from what was sent");
}

void parse_args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"chunked", "piece", "body_moved"});
  for (int chunks : {0, 5})
    for (int piece : {0, 64, 16}) b->Args({chunks, piece, 0});
  b->Args({0, 0, 1});
  b->Args({5, 0, 1});
}

// The floor under BM_ParseResponse: llhttp alone on the same bytes, with
// callbacks that only count the body and stop at the end of the message.
// The difference is ResponseParser's own work (header strings, limits,
// body copy). Same args as BM_ParseResponse, without body_moved.
struct LlhttpTally {
  size_t body = 0;
  bool done = false;
};

int count_body(llhttp_t* p, const char*, size_t len) {
  static_cast<LlhttpTally*>(p->data)->body += len;
  return 0;
}

int mark_done(llhttp_t* p) {
  static_cast<LlhttpTally*>(p->data)->done = true;
  return HPE_PAUSED;
}

void BM_LlhttpAlone(benchmark::State& state) {
  const int chunks = int(state.range(0));
  const size_t piece = state.range(1) > 0 ? size_t(state.range(1)) : SIZE_MAX;
  const std::string wire = openai_response(bench::kOpenAiAnswer, chunks);
  llhttp_settings_t settings;
  llhttp_settings_init(&settings);
  settings.on_body = count_body;
  settings.on_message_complete = mark_done;
  llhttp_t parser;
  LlhttpTally tally;
  uint64_t wrong = 0;
  for (auto _ : state) {
    llhttp_init(&parser, HTTP_RESPONSE, &settings);
    parser.data = &tally;
    tally = {};
    for (size_t at = 0; at < wire.size() && !tally.done; at += piece) {
      const llhttp_errno_t err = llhttp_execute(&parser, wire.data() + at, std::min(piece, wire.size() - at));
      if (err != HPE_OK && err != HPE_PAUSED) break;
    }
    wrong += !tally.done || tally.body != bench::kOpenAiAnswer.size() || parser.status_code != 200;
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(int64_t(state.iterations() * wire.size()));
  if (wrong) return fail(state, "llhttp: " + std::to_string(wrong) + " responses incomplete or of the wrong size");
}

// What Engine::on_response reads from every answer's headers: Retry-After
// (both spellings), the request id (copied into a string) and the four
// x-ratelimit-* values the key's gate is tightened with. The wall clock is
// a constant here; the engine also reads it for every answer.
void BM_AnswerHeaders(benchmark::State& state) {
  const std::string wire = openai_response(bench::kOpenAiAnswer, 0);
  http::ResponseParser parser;
  size_t used = 0;
  if (parser.feed(wire.data(), wire.size(), &used) != http::ResponseParser::State::complete)
    return fail(state, "answer headers: the fixture does not parse");
  constexpr int64_t kNowUnixMs = 1'732'412'345'678;
  uint64_t wrong = 0;
  for (auto _ : state) {
    const int64_t retry = retry_after_ms(parser.header("retry-after"), parser.header("retry-after-ms"), kNowUnixMs);
    std::string request_id(parser.header("x-request-id"));
    if (request_id.empty()) request_id = parser.header("request-id");
    const int64_t rem_req = parse_count(parser.header("x-ratelimit-remaining-requests"));
    const int64_t reset_req = parse_reset_duration_ns(parser.header("x-ratelimit-reset-requests"));
    const int64_t rem_tok = parse_count(parser.header("x-ratelimit-remaining-tokens"));
    const int64_t reset_tok = parse_reset_duration_ns(parser.header("x-ratelimit-reset-tokens"));
    benchmark::DoNotOptimize(request_id.data());
    wrong += retry != -1 || request_id.size() != kRequestId.size() || rem_req != 29999 ||
             reset_req != 2'000'000 || rem_tok != 149999967 || reset_tok != 0;
  }
  state.SetItemsProcessed(state.iterations());
  if (wrong) return fail(state, "answer headers: " + std::to_string(wrong) + " reads with wrong values");
}

// ---- usage ------------------------------------------------------------------

// UsageReader::read() on an answer whose string already has room for
// simdjson's padding (a reused buffer). Arg shape: 0 OpenAI, 1 Anthropic.
void BM_Usage(benchmark::State& state) {
  std::string body(state.range(0) == 0 ? bench::kOpenAiAnswer : bench::kAnthropicAnswer);
  body.reserve(body.size() + 64);
  http::UsageReader reader;
  uint64_t wrong = 0;
  for (auto _ : state) {
    const http::Usage u = reader.read(body);
    wrong += u.prompt_tokens != bench::kPromptTokens || u.completion_tokens != bench::kCompletionTokens;
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(int64_t(state.iterations() * body.size()));
  state.counters["body_bytes"] = double(body.size());
  if (wrong) return fail(state, "usage: " + std::to_string(wrong) + " reads with the wrong token counts");
}

// The engine's case: each answer is a new string, and the parser reserved
// exactly its Content-Length, so read() must grow it for the padding
// (allocate, copy, free). Arg padded:1 reserves the padding up front
// instead; the difference is what that growth costs. Both include making
// the string, which the engine pays in the parser.
void BM_UsageFreshBody(benchmark::State& state) {
  const bool padded = state.range(0) != 0;
  const std::string_view answer = bench::kOpenAiAnswer;
  http::UsageReader reader;
  uint64_t wrong = 0;
  for (auto _ : state) {
    std::string body;
    body.reserve(answer.size() + (padded ? 64 : 0));
    body.append(answer);
    const http::Usage u = reader.read(body);
    wrong += u.prompt_tokens != bench::kPromptTokens || u.completion_tokens != bench::kCompletionTokens;
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(int64_t(state.iterations() * answer.size()));
  if (wrong) return fail(state, "usage: " + std::to_string(wrong) + " reads with the wrong token counts");
}


// ---- streaming (server-sent events) -----------------------------------------

struct SseStream {
  std::string wire;
  size_t events = 0;
  size_t data_bytes = 0;
};

// What OpenAI sends for `stream: true`: a role delta, one ~150-byte event per
// token of content, a finish_reason event, then [DONE]. 200 events in all.
SseStream openai_sse_stream() {
  static constexpr std::string_view kWords[] = {" Water", " evaporates", " from", " seas", " and", " plants",
                                                ",", " cools", " into", " clouds", " and", " falls"};
  constexpr std::string_view kHead =
      R"({"id":"chatcmpl-AXk2bR7Qm3Lz","object":"chat.completion.chunk","created":1732412345,)"
      R"("choices":[{"index":0,"delta":{)";
  SseStream s;
  auto add = [&s](const std::string& data) {
    s.wire.append("data: ").append(data).append("\n\n");
    ++s.events;
    s.data_bytes += data.size();
  };
  add(std::string(kHead) + R"("role":"assistant","content":""},"finish_reason":null}]})");
  for (size_t i = 0; i < 197; ++i)
    add(std::string(kHead) + R"("content":")" + std::string(kWords[i % std::size(kWords)]) +
        R"("},"finish_reason":null}]})");
  add(std::string(kHead) + R"(},"finish_reason":"stop"}]})");
  add("[DONE]");
  return s;
}

// One streamed answer through one reused SseParser, fed whole (piece:0) or
// in 64-byte pieces, as TLS records cut it. The callback only tallies, so
// this is the parser's own cost. Each iteration checks the event count and
// the total data bytes; after the loop, the last event must be [DONE].
// time_per_event reads as ns (the "n" suffix) per event.
void BM_SseStream(benchmark::State& state) {
  const size_t piece = state.range(0) > 0 ? size_t(state.range(0)) : SIZE_MAX;
  const SseStream stream = openai_sse_stream();
  const std::string_view wire = stream.wire;
  http::SseParser parser(1 << 20);
  struct Tally {
    size_t events = 0;
    size_t data_bytes = 0;
    bool last_done = false;
  } tally;
  auto on_event = [&tally](const http::SseEvent& e) noexcept {
    ++tally.events;
    tally.data_bytes += e.data.size();
    tally.last_done = e.data == "[DONE]" && e.type == "message";
    return true;
  };
  uint64_t wrong = 0;
  for (auto _ : state) {
    parser.reset();
    tally = {};
    http::SseParser::Status st = http::SseParser::Status::ok;
    for (size_t at = 0; at < wire.size() && st == http::SseParser::Status::ok; at += piece)
      st = parser.feed(wire.substr(at, std::min(piece, wire.size() - at)), on_event);
    if (st == http::SseParser::Status::ok) st = parser.finish();
    wrong += st != http::SseParser::Status::ok || tally.events != stream.events ||
             tally.data_bytes != stream.data_bytes || parser.events() != stream.events;
  }
  state.SetItemsProcessed(int64_t(state.iterations() * stream.events));
  state.SetBytesProcessed(int64_t(state.iterations() * wire.size()));
  state.counters["wire_bytes"] = double(wire.size());
  state.counters["time_per_event"] = benchmark::Counter(
      double(stream.events), benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  if (wrong) return fail(state, "sse: " + std::to_string(wrong) + " streams with the wrong events or data bytes");
  if (!tally.last_done) return fail(state, "sse: the last event is not [DONE]");
}

BENCHMARK(BM_WriteRequest)->ArgNames({"fresh", "prompt_bytes"})->ArgsProduct({{0, 1}, {40, 16 << 10}});
BENCHMARK(BM_ParseResponse)->Apply(parse_args);
BENCHMARK(BM_LlhttpAlone)->ArgNames({"chunked", "piece"})->ArgsProduct({{0, 5}, {0, 16}});
BENCHMARK(BM_AnswerHeaders);
BENCHMARK(BM_Usage)->ArgName("anthropic")->Arg(0)->Arg(1);
BENCHMARK(BM_UsageFreshBody)->ArgName("padded")->Arg(0)->Arg(1);
BENCHMARK(BM_SseStream)->ArgName("piece")->Arg(0)->Arg(64);

}  // namespace
}  // namespace barrage

int main(int argc, char** argv) { return barrage::bench::run_benchmarks(argc, argv); }
