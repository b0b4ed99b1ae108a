// OpenAI-shaped response bodies (see responses.hpp).
#include "responses.hpp"

#include <charconv>
#include <cstdio>

#include "request_json.hpp"

namespace barrage::mock {
namespace {

void append_i64(std::string& out, int64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, static_cast<size_t>(r.ptr - buf));
}

void append_hex(std::string& out, uint64_t v) {
  char buf[20];
  auto r = std::to_chars(buf, buf + sizeof buf, v, 16);
  out.append(buf, static_cast<size_t>(r.ptr - buf));
}

void append_model(std::string& out, std::string_view model) {
  append_json_string(out, model.empty() ? std::string_view("mock-1") : model);
}

void append_usage(std::string& out, const Answer& a) {
  out += "\"usage\":{\"prompt_tokens\":";
  append_u64(out, a.prompt_tokens);
  out += ",\"completion_tokens\":";
  append_u64(out, a.completion_tokens);
  out += ",\"total_tokens\":";
  append_u64(out, a.prompt_tokens + a.completion_tokens);
  out += '}';
}

void append_head(std::string& out, const Answer& a, std::string_view id_prefix,
                 std::string_view object) {
  out += "{\"id\":\"";
  out += id_prefix;
  append_u64(out, a.id);
  out += "\",\"object\":\"";
  out += object;
  out += "\",\"created\":";
  append_i64(out, a.created);
  out += ",\"model\":";
  append_model(out, a.model);
}

void append_chunk(std::string& out, std::string_view data) {
  append_hex(out, data.size());
  out += "\r\n";
  out += data;
  out += "\r\n";
}

}  // namespace

void append_u64(std::string& out, uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, static_cast<size_t>(r.ptr - buf));
}

void append_chat_prefix(std::string& out, const Answer& a) {
  append_head(out, a, "chatcmpl-", "chat.completion");
  out += ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"";
}

void append_chat_suffix(std::string& out, const Answer& a) {
  out += "\",\"refusal\":null},\"logprobs\":null,\"finish_reason\":\"stop\"}],";
  append_usage(out, a);
  out += ",\"system_fingerprint\":\"fp_mock\"}";
}

void append_chat_body(std::string& out, const Answer& a) {
  append_chat_prefix(out, a);
  append_json_escaped(out, a.content);
  append_chat_suffix(out, a);
}

void append_completion_body(std::string& out, const Answer& a) {
  append_head(out, a, "cmpl-", "text_completion");
  out += ",\"choices\":[{\"text\":";
  append_json_string(out, a.content);
  out += ",\"index\":0,\"logprobs\":null,\"finish_reason\":\"stop\"}],";
  append_usage(out, a);
  out += '}';
}

namespace {

// The same set count_words() splits on, so pieces and usage agree.
bool is_stream_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

}  // namespace

size_t next_word_piece(std::string_view rest) {
  size_t i = 0;
  while (i < rest.size() && is_stream_space(rest[i])) ++i;
  while (i < rest.size() && !is_stream_space(rest[i])) ++i;
  // Trailing whitespace rides on the last word rather than an empty delta.
  size_t j = i;
  while (j < rest.size() && is_stream_space(rest[j])) ++j;
  return j == rest.size() ? j : i;
}

void append_sse_event(std::string& out, std::string& tmp, const Answer& a, bool chat,
                      SseEvent kind, std::string_view piece) {
  bool finish = kind == SseEvent::kFinish;
  tmp.assign("data: ");
  append_head(tmp, a, chat ? "chatcmpl-" : "cmpl-", chat ? "chat.completion.chunk" : "text_completion");
  tmp += ",\"choices\":[{\"index\":0,";
  if (chat) {
    tmp += "\"delta\":{";
    if (kind == SseEvent::kRole) {
      tmp += "\"role\":\"assistant\",\"content\":\"\"";
    } else if (!finish) {
      tmp += "\"content\":";
      append_json_string(tmp, piece);
    }
    tmp += '}';
  } else {
    tmp += "\"text\":";
    append_json_string(tmp, finish ? std::string_view() : piece);
    tmp += ",\"logprobs\":null";
  }
  tmp += finish ? ",\"finish_reason\":\"stop\"}]}\n\n" : ",\"finish_reason\":null}]}\n\n";
  append_chunk(out, tmp);
}

void append_sse_usage(std::string& out, std::string& tmp, const Answer& a, bool chat) {
  tmp.assign("data: ");
  append_head(tmp, a, chat ? "chatcmpl-" : "cmpl-", chat ? "chat.completion.chunk" : "text_completion");
  tmp += ",\"choices\":[],";
  append_usage(tmp, a);
  tmp += "}\n\n";
  append_chunk(out, tmp);
}

void append_sse_done(std::string& out) {
  append_chunk(out, "data: [DONE]\n\n");
  out += "0\r\n\r\n";
}

void append_sse_stream(std::string& out, const Answer& a, bool chat, bool include_usage,
                       std::string& tmp) {
  if (chat) append_sse_event(out, tmp, a, chat, SseEvent::kRole, {});
  std::string_view rest = a.content;
  while (!rest.empty()) {
    size_t n = next_word_piece(rest);
    append_sse_event(out, tmp, a, chat, SseEvent::kPiece, rest.substr(0, n));
    rest.remove_prefix(n);
  }
  append_sse_event(out, tmp, a, chat, SseEvent::kFinish, {});
  if (include_usage) append_sse_usage(out, tmp, a, chat);
  append_sse_done(out);
}

void append_embeddings_body(std::string& out, std::string_view model,
                            const std::vector<uint64_t>& input_hashes, uint64_t prompt_tokens) {
  constexpr int kDims = 8;
  out += "{\"object\":\"list\",\"data\":[";
  for (size_t i = 0; i < input_hashes.size(); ++i) {
    if (i != 0) out += ',';
    out += "{\"object\":\"embedding\",\"index\":";
    append_u64(out, i);
    out += ",\"embedding\":[";
    uint64_t x = input_hashes[i];
    for (int d = 0; d < kDims; ++d) {
      // splitmix64 step: a well-spread deterministic value per dimension.
      x += 0x9e3779b97f4a7c15ULL;
      uint64_t z = x;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      z ^= z >> 31;
      double v = static_cast<double>(z >> 11) / static_cast<double>(1ULL << 53) * 2.0 - 1.0;
      char buf[32];
      int n = std::snprintf(buf, sizeof buf, "%s%.6f", d == 0 ? "" : ",", v);
      out.append(buf, static_cast<size_t>(n));
    }
    out += "]}";
  }
  out += "],\"model\":";
  append_model(out, model);
  out += ",\"usage\":{\"prompt_tokens\":";
  append_u64(out, prompt_tokens);
  out += ",\"total_tokens\":";
  append_u64(out, prompt_tokens);
  out += "}}";
}

void append_error_body(std::string& out, std::string_view message, std::string_view type,
                       std::string_view code) {
  out += "{\"error\":{\"message\":";
  append_json_string(out, message);
  out += ",\"type\":";
  append_json_string(out, type);
  out += ",\"param\":null,\"code\":";
  if (code.empty()) out += "null";
  else append_json_string(out, code);
  out += "}}";
}

ErrorShape error_shape(int status) {
  switch (status) {
    case 400: return {"Bad request.", "invalid_request_error", ""};
    case 401: return {"Incorrect API key provided (mock).", "invalid_request_error", "invalid_api_key"};
    case 403: return {"You are not allowed to access this resource (mock).", "invalid_request_error", ""};
    case 404: return {"The requested resource does not exist (mock).", "invalid_request_error", "unknown_url"};
    case 405: return {"Method not allowed.", "invalid_request_error", ""};
    case 408: return {"Request timed out (mock).", "invalid_request_error", ""};
    case 413: return {"Request body too large.", "invalid_request_error", ""};
    case 429: return {"Rate limit reached for requests (mock). Please try again later.", "requests",
                      "rate_limit_exceeded"};
    case 500: return {"The server had an error while processing your request (mock).", "server_error", ""};
    case 502: return {"Bad gateway (mock).", "server_error", ""};
    case 503: return {"The engine is currently overloaded, please try again later (mock).",
                      "server_error", ""};
    case 504: return {"Gateway timeout (mock).", "server_error", ""};
    default:
      if (status >= 500) return {"Server error (mock).", "server_error", ""};
      return {"Request error (mock).", "invalid_request_error", ""};
  }
}

std::string_view reason_phrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Status";
  }
}

}  // namespace barrage::mock
