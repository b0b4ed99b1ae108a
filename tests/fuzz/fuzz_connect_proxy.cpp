// Proxy settings and the CONNECT exchange: whatever HTTPS_PROXY / NO_PROXY
// text is accepted, and whatever host, port and credentials reach
// write_connect, the CONNECT request is exactly its request line, Host line,
// optional Proxy-Authorization line and blank line, with no CR, LF or NUL
// inside them; every host a URL accepts can be tunnelled to. The reader of
// the proxy's reply decides the same (state, error, status, reason, tunnel
// bytes) whether the reply comes whole or in three pieces.
#include <string>
#include <vector>

#include "fuzz_util.hpp"
#include "http/connect_tunnel.hpp"
#include "http/url.hpp"
#include "net/proxy_config.hpp"

using barrage::ProxyConfig;
using barrage::http::ConnectResponse;

namespace {

bool clean(std::string_view s) {
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return false;
  }
  return true;
}

void check_connect(std::string_view host, uint16_t port, std::string_view auth, bool must_succeed) {
  const std::string req = barrage::http::write_connect(host, port, auth);
  if (req.empty()) {
    FUZZ_CHECK(!must_succeed);
    return;
  }
  const size_t l1 = req.find("\r\n");
  FUZZ_CHECK(l1 != std::string::npos);
  const std::string_view line1 = std::string_view(req).substr(0, l1);
  FUZZ_CHECK(line1.substr(0, 8) == "CONNECT " && line1.size() > 17 &&
             line1.substr(line1.size() - 9) == " HTTP/1.1");
  const std::string_view authority = line1.substr(8, line1.size() - 17);
  FUZZ_CHECK(clean(authority) && authority.find(' ') == std::string_view::npos);
  FUZZ_CHECK(authority.substr(authority.rfind(':') + 1) == std::to_string(port));
  std::string expected = std::string(line1) + "\r\nHost: " + std::string(authority) + "\r\n";
  if (!auth.empty()) expected += "Proxy-Authorization: " + std::string(auth) + "\r\n";
  expected += "\r\n";
  FUZZ_CHECK(req == expected);
  FUZZ_CHECK(clean(auth));
}

struct Reply {
  ConnectResponse::State state;
  ConnectResponse::Error error;
  int status;
  std::string reason, tunnel;
  bool operator==(const Reply&) const = default;
};

Reply read_reply(std::string_view bytes, const std::vector<size_t>& cuts, bool eof) {
  ConnectResponse r("proxy 127.0.0.1:3128", "api.example.com", 443);
  size_t from = 0;
  std::string after;  // bytes the caller hands to TLS after "established"
  for (size_t i = 0; i <= cuts.size(); ++i) {
    const size_t to = i < cuts.size() ? cuts[i] : bytes.size();
    const std::string_view piece = bytes.substr(from, to - from);
    from = to;
    if (r.state() == ConnectResponse::State::need_more) {
      const auto s = r.feed(piece);
      FUZZ_CHECK(s == r.state());
      if (s == ConnectResponse::State::established) after = r.leftover();
    } else if (r.state() == ConnectResponse::State::established) {
      after.append(piece);
    }
  }
  if (eof) r.finish();
  FUZZ_CHECK(r.state() != ConnectResponse::State::failed || !r.error_message().empty());
  FUZZ_CHECK((r.state() == ConnectResponse::State::failed) == (r.error() != ConnectResponse::Error::none));
  FUZZ_CHECK(r.reason().size() <= 128);
  if (r.state() == ConnectResponse::State::established) {
    FUZZ_CHECK(r.status() >= 200 && r.status() <= 299);
  }
  if (r.error() == ConnectResponse::Error::refused) FUZZ_CHECK(r.status() >= 300 && r.status() <= 999);
  if (r.state() == ConnectResponse::State::need_more) after.clear();
  // Which protocol error a garbled reply hits first may differ; the verdict may not.
  const bool keep = r.error() == ConnectResponse::Error::none || r.error() == ConnectResponse::Error::refused;
  return {r.state(), r.error(), keep ? r.status() : 0, keep ? r.reason() : "", after};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Input in(data, size);
  const uint8_t flags = in.byte();
  const uint16_t port = in.u16();
  const std::string_view proxy_url = in.take(in.byte());
  const std::string_view no_proxy = in.take(in.byte());
  const std::string_view host = in.take(in.byte());
  const std::string_view auth = in.take(in.byte());
  const fuzz::Splits sp = fuzz::splits(in);
  const std::string_view reply = in.rest();

  ProxyConfig cfg;
  if (ProxyConfig::parse(proxy_url, no_proxy, &cfg).empty() && cfg.is_set()) {
    FUZZ_CHECK(clean(cfg.host()) && cfg.host().find(' ') == std::string::npos && cfg.port() != 0);
    const std::string& pa = cfg.proxy_authorization();
    FUZZ_CHECK(pa.empty() || (pa.substr(0, 6) == "Basic " && clean(pa)));
    FUZZ_CHECK(clean(cfg.redacted()));
    (void)cfg.bypass(host, port);
    check_connect(host, port, pa, false);
  }
  check_connect(host, port, auth, false);

  // Every host a URL accepts can be tunnelled to, and written cleanly.
  barrage::http::Url url;
  if (barrage::http::parse_url(host, true, url).empty()) check_connect(url.host, url.port, "", true);

  const Reply whole = read_reply(reply, {}, flags & 1);
  FUZZ_CHECK(whole == read_reply(reply, {sp.a, sp.b}, flags & 1));
  return 0;
}
