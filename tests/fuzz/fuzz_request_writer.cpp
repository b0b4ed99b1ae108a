// URL parser and request writer: whatever URL, method and headers are
// accepted, the request written has exactly one request line (method, the
// URL's target, HTTP/1.1), one Host line naming the URL's host, header lines
// of the form token ":" value, no CR, LF or NUL except the CRLFs it writes
// itself, and the body unchanged after the blank line. RequestHead writes the
// same bytes, and its HTTP/2 fields carry no CR, LF or NUL either.
#include <string>
#include <vector>

#include "fuzz_util.hpp"
#include "http/request_head.hpp"
#include "http/request_writer.hpp"
#include "http/url.hpp"

using namespace barrage::http;

namespace {

bool clean(std::string_view s) {
  for (char c : s) {
    if (c == '\r' || c == '\n' || c == '\0') return false;
  }
  return true;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if ((a[i] | 0x20) != (b[i] | 0x20)) return false;
  }
  return true;
}

void check_wire(std::string_view wire, std::string_view method, const Url& url, std::string_view body) {
  const size_t end = wire.find("\r\n\r\n");
  FUZZ_CHECK(end != std::string_view::npos);
  FUZZ_CHECK(wire.substr(end + 4) == body);
  const std::string_view head = wire.substr(0, end + 2);  // every line with its CRLF
  size_t lines = 0, hosts = 0, pos = 0;
  while (pos < head.size()) {
    const size_t eol = head.find("\r\n", pos);
    FUZZ_CHECK(eol != std::string_view::npos);
    const std::string_view line = head.substr(pos, eol - pos);
    FUZZ_CHECK(clean(line));
    if (lines == 0) {
      FUZZ_CHECK(line == std::string(method) + " " + url.target + " HTTP/1.1");
      FUZZ_CHECK(url.target.find(' ') == std::string::npos);
    } else {
      const size_t colon = line.find(':');
      FUZZ_CHECK(colon != std::string_view::npos && is_http_token(line.substr(0, colon)));
      // "HTTP/1.1" can only be the first line: a second request line would be no header.
      const std::string_view name = line.substr(0, colon);
      if (iequals(name, "host")) {
        ++hosts;
        FUZZ_CHECK(line.substr(colon + 1) == " " + url.host_header());
      }
    }
    ++lines;
    pos = eol + 2;
  }
  FUZZ_CHECK(hosts == 1);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Input in(data, size);
  const uint8_t flags = in.byte();
  const std::string_view url_text = in.take(in.byte());
  const std::string_view method = in.take(in.byte() % 16);
  std::vector<HeaderView> headers(in.byte() % 8);
  for (auto& h : headers) {
    h.name = in.take(in.byte() % 32);
    h.value = in.take(in.byte());
  }
  const std::string_view body = in.rest();

  Url url;
  if (!parse_url(url_text, flags & 1, url).empty()) return 0;
  FUZZ_CHECK(!url.host.empty() && clean(url.host) && url.host.find(' ') == std::string::npos);
  FUZZ_CHECK(!url.target.empty() && url.target[0] == '/' && clean(url.target));
  FUZZ_CHECK(clean(url.origin()) && clean(url.host_header()));
  FUZZ_CHECK(url.port != 0);

  std::string out;
  const std::string why = write_request(out, method, url, headers.data(), headers.size(), body, "0.1.0");
  RequestHead rh;
  const std::string why_head = rh.build(method, url, headers.data(), headers.size(), body, "0.1.0");
  if (!why.empty()) {
    FUZZ_CHECK(out.empty());
    FUZZ_CHECK(!why_head.empty());
    return 0;
  }
  check_wire(out, method, url, body);
  if (why_head.empty()) {
    FUZZ_CHECK(rh.wire() == out);
    FUZZ_CHECK(rh.body() == body);
    std::string h2_why;
    if (rh.h2_ready(&h2_why)) {
      FUZZ_CHECK(rh.h2_fields().size() >= 4);
      for (const auto& f : rh.h2_fields()) FUZZ_CHECK(clean(f.name) && clean(f.value));
      FUZZ_CHECK(rh.h2_fields()[0].name == ":method" && rh.h2_fields()[0].value == method);
      FUZZ_CHECK(rh.h2_fields()[3].name == ":path" && rh.h2_fields()[3].value == url.target);
    }
  }
  return 0;
}
