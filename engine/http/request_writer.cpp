// HTTP/1.1 request serialization. Everything is validated before a byte is
// written so that no user-supplied string can smuggle a second header or
// request onto a shared keep-alive connection.
#include "http/ascii.hpp"
#include "http/request_writer.hpp"

#include <array>
#include <charconv>
#include <new>

namespace barrage::http {
namespace {

constexpr std::array<bool, 256> make_token_table() {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}
constexpr std::array<bool, 256> kTokenChars = make_token_table();

std::string_view trim_ows(std::string_view v) noexcept {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

// Framing and connection management belong to the engine: a user value for
// any of these could desynchronise the response stream on a reused connection.
constexpr std::string_view kManaged[] = {"host", "content-length", "transfer-encoding",
                                         "connection", "upgrade", "te"};

bool has_forbidden_value_byte(std::string_view v) noexcept {
  for (char c : v) {
    if (c == '\r' || c == '\n' || c == '\0') return true;
  }
  return false;
}

void append_header(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out.append(": ");
  out.append(value);
  out.append("\r\n");
}

std::string quoted(std::string_view prefix, std::string_view name, std::string_view suffix) {
  std::string s;
  s.reserve(prefix.size() + 64 + suffix.size());
  s.append(prefix);
  s.append(name.substr(0, 64));
  s.append(suffix);
  return s;
}

}  // namespace

bool is_http_token(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (char c : s) {
    if (!kTokenChars[static_cast<unsigned char>(c)]) return false;
  }
  return true;
}

std::string write_request(std::string& out, std::string_view method, const Url& url,
                          const HeaderView* headers, size_t n_headers, std::string_view body,
                          std::string_view user_agent_version) {
  out.clear();
  if (!is_http_token(method)) return "invalid HTTP method";
  // A hand-built Url bypasses parse_url, so the target is checked here too.
  if (url.target.empty() || url.target.front() != '/') return "request target must start with '/'";
  for (char ch : url.target) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c == 0x7f) return "invalid character in request target";
  }
  if (url.host.empty()) return "missing host";
  for (char ch : url.host) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c == 0x7f || ch == '/' || ch == '@') return "invalid character in host";
  }
  for (char ch : user_agent_version) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) return "invalid character in user agent version";
  }

  bool have_user_agent = false;
  bool have_accept = false;
  bool have_content_type = false;
  size_t size = method.size() + 1 + url.target.size() + 11 /* " HTTP/1.1\r\n" */ +
                8 /* "Host: \r\n" */ + url.host.size() + 8 /* "[]:65535" */;
  for (size_t i = 0; i < n_headers; ++i) {
    const std::string_view name = headers[i].name;
    if (!is_http_token(name)) return quoted("invalid header name '", name, "'");
    for (std::string_view managed : kManaged) {
      if (iequals(name, managed)) return quoted("header '", name, "' is managed by the engine");
    }
    if (has_forbidden_value_byte(headers[i].value)) {
      return quoted("CR, LF or NUL in value of header '", name, "'");
    }
    if (iequals(name, "user-agent")) have_user_agent = true;
    else if (iequals(name, "accept")) have_accept = true;
    else if (iequals(name, "content-type")) have_content_type = true;
    size += name.size() + 4 + headers[i].value.size();
  }

  const bool send_length = !body.empty() || method == "POST" || method == "PUT" || method == "PATCH";
  char length_buf[24];
  std::string_view length_text;
  if (send_length) {
    auto [end, ec] = std::to_chars(length_buf, length_buf + sizeof length_buf, body.size());
    (void)ec;
    length_text = std::string_view(length_buf, static_cast<size_t>(end - length_buf));
  }
  size += 20 + user_agent_version.size() + 4 /* "User-Agent: barrage/" */;
  size += 26 /* "Accept: application/json\r\n" */ + 32 /* Content-Type */;
  size += 18 + length_text.size() + 2 + body.size();

  // One allocation at most: the buffer is reused across requests by callers
  // that keep it, so steady state allocates nothing here.
  try {
    out.reserve(size);
  } catch (const std::bad_alloc&) {
    return "out of memory";
  }
  out.append(method);
  out.push_back(' ');
  out.append(url.target);
  out.append(" HTTP/1.1\r\nHost: ");
  url.append_host_header(out);
  out.append("\r\n");
  for (size_t i = 0; i < n_headers; ++i) append_header(out, headers[i].name, trim_ows(headers[i].value));
  if (!have_user_agent) {
    out.append("User-Agent: barrage");
    if (!user_agent_version.empty()) {
      out.push_back('/');
      out.append(user_agent_version);
    }
    out.append("\r\n");
  }
  if (!have_accept) out.append("Accept: application/json\r\n");
  if (!have_content_type && !body.empty()) out.append("Content-Type: application/json\r\n");
  if (send_length) append_header(out, "Content-Length", length_text);
  out.append("\r\n");
  out.append(body);
  return {};
}

}  // namespace barrage::http
