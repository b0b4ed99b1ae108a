// HTTP/1.1 wire form -> HTTP/2 fields. The input is our own request_writer
// output, but it is still checked line by line: a malformed buffer must be
// refused here rather than become a malformed HEADERS frame that costs the
// whole connection.
#include "http/h2_request.hpp"

#include <charconv>
#include <new>

#include "http/ascii.hpp"

namespace barrage::http {
namespace {

std::string_view trim_ows(std::string_view v) noexcept {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

// RFC 9113 8.2.2: these describe the HTTP/1.1 connection, not the request,
// and a peer must treat a request that carries them as malformed.
constexpr std::string_view kDropped[] = {"connection", "keep-alive", "proxy-connection", "upgrade"};

bool is_dropped(std::string_view lower_name) noexcept {
  for (std::string_view d : kDropped) {
    if (lower_name == d) return true;
  }
  return false;
}

}  // namespace

H2RequestBuilder::Result H2RequestBuilder::fail(Result r, const char* reason) noexcept {
  fields_.clear();
  body_ = {};
  reason_ = reason;
  return r;
}

H2RequestBuilder::Result H2RequestBuilder::build(std::string_view wire,
                                                 std::string_view scheme) noexcept {
  fields_.clear();
  names_.clear();
  body_ = {};
  reason_ = "";

  const size_t head_end = wire.find("\r\n\r\n");
  if (head_end == std::string_view::npos) return fail(Result::invalid, "request has no end of headers");
  const std::string_view head = wire.substr(0, head_end + 2);  // every line ends in CRLF
  const std::string_view body = wire.substr(head_end + 4);

  const size_t line_end = head.find("\r\n");
  const std::string_view request_line = head.substr(0, line_end);
  const size_t sp1 = request_line.find(' ');
  const size_t sp2 = request_line.rfind(' ');
  if (sp1 == std::string_view::npos || sp1 == 0 || sp2 == sp1 + 1 || sp2 == sp1) {
    return fail(Result::invalid, "malformed request line");
  }
  const std::string_view method = request_line.substr(0, sp1);
  const std::string_view target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (request_line.substr(sp2 + 1).substr(0, 7) != "HTTP/1.") {
    return fail(Result::invalid, "malformed request line");
  }
  // CONNECT has no :scheme or :path in HTTP/2; the engine never tunnels.
  if (method == "CONNECT") return fail(Result::invalid, "CONNECT is not supported over HTTP/2");

  try {
    names_.reserve(head.size());
    fields_.reserve(16);
    // Pseudo-headers must precede regular ones; :authority is filled in
    // when the Host line is found.
    fields_.push_back({":method", method});
    fields_.push_back({":scheme", scheme});
    fields_.push_back({":authority", {}});
    fields_.push_back({":path", target});

    bool have_host = false;
    for (size_t pos = line_end + 2; pos < head.size();) {
      const size_t eol = head.find("\r\n", pos);
      const std::string_view line = head.substr(pos, eol - pos);
      pos = eol + 2;
      if (line.empty() || line.front() == ' ' || line.front() == '\t') {
        return fail(Result::invalid, "folded header line");
      }
      const size_t colon = line.find(':');
      if (colon == std::string_view::npos || colon == 0) {
        return fail(Result::invalid, "malformed header line");
      }
      const std::string_view raw_name = line.substr(0, colon);
      const std::string_view value = trim_ows(line.substr(colon + 1));
      const size_t start = names_.size();
      for (char c : raw_name) names_.push_back(to_lower(c));
      const std::string_view name(names_.data() + start, raw_name.size());

      if (name == "host") {
        if (have_host) return fail(Result::invalid, "more than one Host header");
        have_host = true;
        fields_[2].value = value;
        continue;
      }
      if (is_dropped(name)) continue;
      if (name == "te") {
        // The only TE value HTTP/2 allows.
        if (iequals(value, "trailers")) fields_.push_back({name, value});
        continue;
      }
      if (name == "transfer-encoding") {
        return fail(Result::invalid, "Transfer-Encoding is not supported over HTTP/2");
      }
      if (name == "content-length") {
        size_t n = 0;
        const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
        if (ec != std::errc() || end != value.data() + value.size() || n != body.size()) {
          return fail(Result::invalid, "Content-Length does not match the body");
        }
      }
      fields_.push_back({name, value});
    }
    if (!have_host || fields_[2].value.empty()) return fail(Result::invalid, "request has no Host header");
  } catch (const std::bad_alloc&) {
    return fail(Result::no_memory, "out of memory");
  }
  body_ = body;
  return Result::ok;
}

}  // namespace barrage::http
