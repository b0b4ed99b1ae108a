// HTTP/1.1 request serialization: one request, one contiguous buffer, so the
// connection can hand it to TLS (or the socket) in a single write.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "http/url.hpp"

namespace barrage::http {

struct HeaderView {
  std::string_view name, value;
};

// Serializes one HTTP/1.1 request into `out` (cleared first) as one contiguous buffer:
// "METHOD target HTTP/1.1\r\nHost: ..\r\n" + user headers + defaults + "\r\n" + body.
// Adds User-Agent: barrage/<user_agent_version> and Accept: application/json
// unless given; adds Content-Type: application/json when a body is present and
// none is given; adds Content-Length whenever the body is non-empty or the
// method is POST/PUT/PATCH. Header values are written with surrounding
// spaces and tabs trimmed.
// Returns "" on success, else the reason the request was refused: a method
// that is not an HTTP token, a header name that is not a token, CR/LF/NUL in
// a value, or a header the engine manages itself (Host, Content-Length,
// Transfer-Encoding, Connection, Upgrade, TE). `out` is empty on failure.
std::string write_request(std::string& out, std::string_view method, const Url& url,
                          const HeaderView* headers, size_t n_headers, std::string_view body,
                          std::string_view user_agent_version);

// True when `s` is a non-empty RFC 9110 token (method and header-name syntax).
bool is_http_token(std::string_view s) noexcept;

}  // namespace barrage::http
