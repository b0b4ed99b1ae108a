// Unit tests for engine/http/connect_tunnel: the CONNECT request bytes, the
// reply reader fed whole and byte by byte (established, refusals, malformed
// and oversize replies, EOF), and, at the end, the loopback CONNECT proxy
// fixture (tests/support) driven through a blocking socket with these pieces.
#include "http/connect_tunnel.hpp"
#include "net/proxy_config.hpp"
#include "support/connect_proxy.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <string>
#include <thread>

namespace barrage::http {
namespace {

using State = ConnectResponse::State;
using Error = ConnectResponse::Error;

constexpr std::string_view kProxy = "proxy 127.0.0.1:3128";

// --- write_connect ---------------------------------------------------------

TEST(WriteConnect, PlainHost) {
  EXPECT_EQ(write_connect("api.openai.com", 443, ""),
            "CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\n\r\n");
}

TEST(WriteConnect, WithProxyAuthorization) {
  EXPECT_EQ(write_connect("api.openai.com", 443, "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
            "CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\n"
            "Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\r\n");
}

TEST(WriteConnect, Ipv6IsBracketedOnce) {
  const std::string expected = "CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n";
  EXPECT_EQ(write_connect("::1", 8443, ""), expected);
  EXPECT_EQ(write_connect("[::1]", 8443, ""), expected);
  EXPECT_EQ(write_connect("10.0.0.1", 1, ""), "CONNECT 10.0.0.1:1 HTTP/1.1\r\nHost: 10.0.0.1:1\r\n\r\n");
}

TEST(WriteConnect, RefusesWhatCouldInjectOrIsNotAHost) {
  EXPECT_EQ(write_connect("", 443, ""), "");
  EXPECT_EQ(write_connect("api.openai.com", 0, ""), "");
  EXPECT_EQ(write_connect("a b", 443, ""), "");
  EXPECT_EQ(write_connect("evil\r\nX-Injected: 1", 443, ""), "");
  EXPECT_EQ(write_connect("user@host", 443, ""), "");
  EXPECT_EQ(write_connect("host:443", 443, ""), "");  // a colon means IPv6, and this is not one
  EXPECT_EQ(write_connect("[::zz]", 443, ""), "");
  EXPECT_EQ(write_connect(std::string(256, 'a'), 443, ""), "");
  EXPECT_EQ(write_connect("api.openai.com", 443, "Basic x\r\nX-Injected: 1"), "");
  EXPECT_EQ(write_connect("api.openai.com", 443, std::string("Basic \0x", 8)), "");
  // An IPv6 literal is checked whole, not up to its first NUL.
  static constexpr char kBare[] = "::\0\r\nX-Injected: 1";
  static constexpr char kBracketed[] = "[::\0\r\nX-Injected: 1]";
  EXPECT_EQ(write_connect(std::string_view(kBare, sizeof kBare - 1), 443, ""), "");
  EXPECT_EQ(write_connect(std::string_view(kBracketed, sizeof kBracketed - 1), 443, ""), "");
}

// --- ConnectResponse: success ------------------------------------------------

ConnectResponse reader() { return ConnectResponse(kProxy, "api.openai.com", 443); }

// Feeds one byte at a time; every byte but the last must ask for more.
State feed_bytewise(ConnectResponse& r, std::string_view bytes) {
  State s = State::need_more;
  for (size_t i = 0; i < bytes.size(); ++i) {
    s = r.feed(bytes.substr(i, 1));
    if (s != State::need_more) {
      EXPECT_EQ(i + 1, bytes.size()) << "decided early at byte " << i;
      return s;
    }
  }
  return s;
}

TEST(ConnectResponse, Established) {
  ConnectResponse r = reader();
  EXPECT_EQ(r.state(), State::need_more);
  EXPECT_EQ(r.feed("HTTP/1.1 200 Connection established\r\n\r\n"), State::established);
  EXPECT_EQ(r.status(), 200);
  EXPECT_EQ(r.reason(), "Connection established");
  EXPECT_EQ(r.error(), Error::none);
  EXPECT_EQ(r.error_message(), "");
  EXPECT_EQ(r.leftover(), "");
}

TEST(ConnectResponse, EstablishedFedByteByByte) {
  ConnectResponse r = reader();
  EXPECT_EQ(feed_bytewise(r, "HTTP/1.1 200 Connection established\r\nVia: 1.1 squid\r\n\r\n"), State::established);
  EXPECT_EQ(r.status(), 200);
  EXPECT_EQ(r.leftover(), "");
}

TEST(ConnectResponse, EmptyFeedsChangeNothing) {
  ConnectResponse r = reader();
  EXPECT_EQ(r.feed(""), State::need_more);
  EXPECT_EQ(r.feed("HTTP/1.1 200 OK\r\n"), State::need_more);
  EXPECT_EQ(r.feed(""), State::need_more);
  EXPECT_EQ(r.feed("\r\n"), State::established);
}

TEST(ConnectResponse, BytesAfterTheReplyAreKeptAsLeftover) {
  ConnectResponse r = reader();
  const std::string tls("\x16\x03\x03\x00\x05hello", 10);
  EXPECT_EQ(r.feed("HTTP/1.1 200 OK\r\n\r\n" + tls), State::established);
  EXPECT_EQ(r.leftover(), tls);
}

TEST(ConnectResponse, FramingHeadersOnA2xxAreIgnored) {
  // RFC 9110 9.3.6: a client ignores Content-Length and Transfer-Encoding
  // in a successful CONNECT reply; what follows belongs to the tunnel.
  ConnectResponse r = reader();
  EXPECT_EQ(r.feed("HTTP/1.0 200 OK\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\nTLS"),
            State::established);
  EXPECT_EQ(r.leftover(), "TLS");
}

TEST(ConnectResponse, AnyTwoHundredEstablishes) {
  ConnectResponse r = reader();
  EXPECT_EQ(r.feed("HTTP/1.1 204\r\n\r\n"), State::established);
  EXPECT_EQ(r.status(), 204);
  EXPECT_EQ(r.reason(), "");
}

TEST(ConnectResponse, BareLfLineEndings) {
  ConnectResponse r = reader();
  EXPECT_EQ(feed_bytewise(r, "HTTP/1.1 200 OK\nVia: x\n\n"), State::established);
}

TEST(ConnectResponse, InterimRepliesAreSkipped) {
  ConnectResponse r = reader();
  EXPECT_EQ(feed_bytewise(r, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n"
                             "HTTP/1.1 200 OK\r\n\r\n"),
            State::established);
  EXPECT_EQ(r.status(), 200);
  EXPECT_EQ(r.reason(), "OK");
}

TEST(ConnectResponse, FeedAfterTheOutcomeIsIgnored) {
  ConnectResponse r = reader();
  ASSERT_EQ(r.feed("HTTP/1.1 200 OK\r\n\r\nA"), State::established);
  EXPECT_EQ(r.feed("HTTP/1.1 500 No\r\n\r\n"), State::established);
  EXPECT_EQ(r.finish(), State::established);
  EXPECT_EQ(r.leftover(), "A");
  EXPECT_EQ(r.status(), 200);
}

// --- ConnectResponse: refusals -------------------------------------------------

TEST(ConnectResponse, ProxyAuthenticationRequired) {
  ConnectResponse r = reader();
  // Decided at the status line: the headers and body need not arrive.
  EXPECT_EQ(r.feed("HTTP/1.1 407 Proxy Authentication Required\r\n"), State::failed);
  EXPECT_EQ(r.error(), Error::refused);
  EXPECT_EQ(r.status(), 407);
  EXPECT_EQ(r.error_message(),
            "proxy 127.0.0.1:3128 refused CONNECT to api.openai.com:443: 407 Proxy Authentication Required");
  EXPECT_EQ(r.feed("Proxy-Authenticate: Basic\r\n\r\n"), State::failed);
  EXPECT_EQ(r.leftover(), "");
}

TEST(ConnectResponse, ForbiddenAndBadGatewayByteByByte) {
  {
    ConnectResponse r = reader();
    EXPECT_EQ(feed_bytewise(r, "HTTP/1.1 403 Forbidden\r\n"), State::failed);
    EXPECT_EQ(r.error_message(), "proxy 127.0.0.1:3128 refused CONNECT to api.openai.com:443: 403 Forbidden");
  }
  {
    ConnectResponse r = reader();
    EXPECT_EQ(feed_bytewise(r, "HTTP/1.0 502 Bad Gateway\n"), State::failed);
    EXPECT_EQ(r.error_message(), "proxy 127.0.0.1:3128 refused CONNECT to api.openai.com:443: 502 Bad Gateway");
  }
}

TEST(ConnectResponse, RefusalWithoutReasonAndRedirects) {
  ConnectResponse r = reader();
  EXPECT_EQ(r.feed("HTTP/1.1 502\r\n"), State::failed);
  EXPECT_EQ(r.error_message(), "proxy 127.0.0.1:3128 refused CONNECT to api.openai.com:443: 502");
  ConnectResponse r3 = reader();
  EXPECT_EQ(r3.feed("HTTP/1.1 302 Found\r\nLocation: http://login\r\n\r\n"), State::failed);
  EXPECT_EQ(r3.status(), 302);
  EXPECT_EQ(r3.error(), Error::refused);
}

TEST(ConnectResponse, ReasonIsSanitizedAndCut) {
  ConnectResponse r = reader();
  EXPECT_EQ(r.feed("HTTP/1.1 403 Verboten \xc3\xa4\tx\r\n"), State::failed);
  EXPECT_EQ(r.reason(), "Verboten ??\tx");
  ConnectResponse r2 = reader();
  EXPECT_EQ(r2.feed("HTTP/1.1 403 " + std::string(500, 'r') + "\r\n"), State::failed);
  EXPECT_EQ(r2.reason(), std::string(128, 'r'));
}

TEST(ConnectResponse, Ipv6TargetAndDefaultProxyName) {
  ConnectResponse r("", "::1", 8443);
  EXPECT_EQ(r.feed("HTTP/1.1 403 Forbidden\r\n"), State::failed);
  EXPECT_EQ(r.error_message(), "proxy refused CONNECT to [::1]:8443: 403 Forbidden");
}

// --- ConnectResponse: protocol errors --------------------------------------------

std::string protocol_error(std::string_view bytes) {
  ConnectResponse r = reader();
  const State s = r.feed(bytes);
  EXPECT_EQ(s, State::failed) << bytes;
  EXPECT_EQ(r.error(), Error::protocol) << bytes;
  const std::string prefix = "proxy 127.0.0.1:3128 sent an invalid reply to CONNECT to api.openai.com:443: ";
  EXPECT_EQ(r.error_message().rfind(prefix, 0), 0u) << r.error_message();
  return r.error_message().substr(std::min(prefix.size(), r.error_message().size()));
}

TEST(ConnectResponse, MalformedStatusLines) {
  for (std::string_view bad : {
           "HTTP/1.1 20 OK\r\n", "HTTP/1.1 200OK\r\n", "HTTP/1.1  200 OK\r\n", "HTTP/1.x 200 OK\r\n",
           "HTTP/1.1 2x0 OK\r\n", "HTTP/1.1\r\n", "HTTP/1.1 200\x01OK\r\n",
       }) {
    EXPECT_EQ(protocol_error(bad).rfind("malformed status line", 0), 0u) << bad;
  }
  EXPECT_EQ(protocol_error("HTTP/1.1 099 Low\r\n"), "malformed status line (status out of range)");
  EXPECT_EQ(protocol_error("HTTP/1.1 600 High\r\n"), "malformed status line (status out of range)");
  EXPECT_EQ(protocol_error("HTTP/1.1 403 No\x7f\r\n"), "malformed status line (control character in reason)");
}

TEST(ConnectResponse, NonHttpPeersFailOnTheirFirstBytes) {
  // No newline needed: a SOCKS or TLS peer might never send one.
  EXPECT_EQ(protocol_error(std::string("\x05\x00", 2)), "not an HTTP/1.x reply (is it an HTTP proxy?)");
  EXPECT_EQ(protocol_error("\x15\x03\x03"), "not an HTTP/1.x reply (is it an HTTP proxy?)");
  EXPECT_EQ(protocol_error("HTTP/2 200"), "not an HTTP/1.x reply (is it an HTTP proxy?)");
  EXPECT_EQ(protocol_error("http/1.1 200 OK"), "not an HTTP/1.x reply (is it an HTTP proxy?)");
  EXPECT_EQ(protocol_error("\r\nHTTP/1.1 200 OK\r\n"), "not an HTTP/1.x reply (is it an HTTP proxy?)");
  ConnectResponse r = reader();
  EXPECT_EQ(r.feed("HTT"), State::need_more);
  EXPECT_EQ(r.feed("P/1"), State::need_more);
  EXPECT_EQ(r.feed("X"), State::failed);
}

TEST(ConnectResponse, MalformedHeaders) {
  EXPECT_EQ(protocol_error("HTTP/1.1 200 OK\r\n folded\r\n\r\n"), "obsolete header line folding");
  EXPECT_EQ(protocol_error("HTTP/1.1 200 OK\r\nVia: x\r\n\tfolded\r\n\r\n"), "obsolete header line folding");
  EXPECT_EQ(protocol_error("HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n"), "malformed header line");
  EXPECT_EQ(protocol_error("HTTP/1.1 200 OK\r\nVia : x\r\n\r\n"), "malformed header line");
  EXPECT_EQ(protocol_error("HTTP/1.1 200 OK\r\n: x\r\n\r\n"), "malformed header line");
  EXPECT_EQ(protocol_error("HTTP/1.1 200 OK\r\nNoColon\r\n\r\n"), "malformed header line");
  static constexpr char kNul[] = "HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n";
  EXPECT_EQ(protocol_error(std::string(kNul, sizeof kNul - 1)), "control character in header value");
  EXPECT_EQ(protocol_error("HTTP/1.1 200 OK\rVia: x\r\n\r\n"), "bare CR in reply");
  EXPECT_EQ(protocol_error("HTTP/1.1 200 OK\r\nVia: x\r\r\n\r\n"), "bare CR in reply");
}

TEST(ConnectResponse, SwitchingProtocolsIsAnError) {
  EXPECT_EQ(protocol_error("HTTP/1.1 101 Switching Protocols\r\n"), "unexpected 101 Switching Protocols");
}

// --- ConnectResponse: limits and EOF ----------------------------------------------

// A 2xx reply of exactly `total` bytes, header padding included.
std::string reply_of_size(size_t total) {
  const std::string start = "HTTP/1.1 200 OK\r\nX-Pad: ";
  const std::string end = "\r\n\r\n";
  return start + std::string(total - start.size() - end.size(), 'p') + end;
}

TEST(ConnectResponse, HeadersUpToTheLimitAreAccepted) {
  const std::string reply = reply_of_size(kMaxConnectReplyHeaderBytes);
  ASSERT_EQ(reply.size(), 16384u);
  ConnectResponse r = reader();
  EXPECT_EQ(r.feed(reply + "after"), State::established);
  EXPECT_EQ(r.leftover(), "after");
  ConnectResponse bytewise = reader();
  EXPECT_EQ(feed_bytewise(bytewise, reply), State::established);
}

TEST(ConnectResponse, OversizeHeadersFail) {
  const std::string reply = reply_of_size(kMaxConnectReplyHeaderBytes + 1);
  const std::string expected =
      "proxy 127.0.0.1:3128 sent an invalid reply to CONNECT to api.openai.com:443: reply headers exceed 16384 bytes";
  ConnectResponse r = reader();
  EXPECT_EQ(r.feed(reply), State::failed);
  EXPECT_EQ(r.error(), Error::too_large);
  EXPECT_EQ(r.error_message(), expected);
  // Byte by byte it fails on the first byte past the budget.
  ConnectResponse bytewise = reader();
  State s = State::need_more;
  size_t fed = 0;
  while (s == State::need_more && fed < reply.size()) s = bytewise.feed(reply.substr(fed++, 1));
  EXPECT_EQ(s, State::failed);
  EXPECT_EQ(fed, kMaxConnectReplyHeaderBytes + 1);
  EXPECT_EQ(bytewise.error_message(), expected);
}

TEST(ConnectResponse, EndlessHeaderWithoutNewlineFails) {
  ConnectResponse r = reader();
  EXPECT_EQ(r.feed("HTTP/1.1 200 OK\r\nX: "), State::need_more);
  EXPECT_EQ(r.feed(std::string(20000, 'x')), State::failed);
  EXPECT_EQ(r.error(), Error::too_large);
}

TEST(ConnectResponse, InterimRepliesCountTowardTheLimit) {
  std::string flood;
  while (flood.size() <= kMaxConnectReplyHeaderBytes) flood += "HTTP/1.1 100 Continue\r\n\r\n";
  ConnectResponse r = reader();
  EXPECT_EQ(r.feed(flood + "HTTP/1.1 200 OK\r\n\r\n"), State::failed);
  EXPECT_EQ(r.error(), Error::too_large);
}

TEST(ConnectResponse, ClosedBeforeOrDuringTheReply) {
  ConnectResponse r = reader();
  EXPECT_EQ(r.finish(), State::failed);
  EXPECT_EQ(r.error(), Error::closed);
  EXPECT_EQ(r.error_message(),
            "proxy 127.0.0.1:3128 closed the connection without answering CONNECT to api.openai.com:443");
  ConnectResponse r2 = reader();
  EXPECT_EQ(r2.feed("HTTP/1.1 200 OK\r\n"), State::need_more);
  EXPECT_EQ(r2.finish(), State::failed);
  EXPECT_EQ(r2.error_message(),
            "proxy 127.0.0.1:3128 closed the connection in the middle of its reply to CONNECT to api.openai.com:443");
  EXPECT_EQ(r2.status(), 200);
}

// --- the loopback CONNECT proxy fixture ---------------------------------------------

// Accepts one connection on 127.0.0.1, greets it with "hello\n", then echoes
// until the client's EOF.
class EchoServer {
 public:
  EchoServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd_, 4) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      return;
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] {
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      (void)!::send(c, "hello\n", 6, MSG_NOSIGNAL);
      char buf[8192];
      for (;;) {
        const ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        for (ssize_t off = 0; off < n;) {
          const ssize_t w = ::send(c, buf + off, static_cast<size_t>(n - off), MSG_NOSIGNAL);
          if (w <= 0) break;
          off += w;
        }
      }
      ::close(c);
    });
  }
  ~EchoServer() {
    if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);  // wakes an accept() that never got its client
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) ::close(fd_);
  }
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
};

// A blocking client socket to 127.0.0.1:port, with timeouts so a broken
// fixture fails the test instead of hanging it.
int dial(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Reads until `want` bytes are in `have` (or EOF / timeout).
void recv_until(int fd, std::string& have, size_t want) {
  char buf[8192];
  while (have.size() < want) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return;
    have.append(buf, static_cast<size_t>(n));
  }
}

// Sends a CONNECT for 127.0.0.1:target_port (or `host`) and reads the reply.
State open_tunnel(int fd, ConnectResponse& r, std::string_view host, uint16_t target_port,
                  std::string_view authorization = "") {
  const std::string request = write_connect(host, target_port, authorization);
  EXPECT_NE(request, "");
  if (!send_all(fd, request)) return State::failed;
  char buf[4096];
  while (r.state() == State::need_more) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return r.finish();
    r.feed(std::string_view(buf, static_cast<size_t>(n)));
  }
  return r.state();
}

struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

std::string proxy_name(const test_support::ConnectProxy& proxy) {
  ProxyConfig cfg;
  EXPECT_EQ(ProxyConfig::parse("http://127.0.0.1:" + std::to_string(proxy.port()), "", &cfg), "");
  return cfg.redacted();
}

TEST(ConnectProxyFixture, TunnelCarriesBytesBothWays) {
  EchoServer echo;
  ASSERT_NE(echo.port(), 0);
  test_support::ConnectProxy proxy;
  ASSERT_TRUE(proxy.ok()) << proxy.error();
  Fd client{dial(proxy.port())};
  ASSERT_GE(client.fd, 0);

  ConnectResponse r(proxy_name(proxy), "127.0.0.1", echo.port());
  ASSERT_EQ(open_tunnel(client.fd, r, "127.0.0.1", echo.port()), State::established) << r.error_message();
  EXPECT_EQ(r.status(), 200);
  EXPECT_EQ(r.reason(), "Connection established");

  // Server to client: the greeting, part of which may have come with the reply.
  std::string got = std::move(r.leftover());
  recv_until(client.fd, got, 6);
  EXPECT_EQ(got, "hello\n");

  // Client to server and back, with more than one socket buffer's worth.
  std::string blob;
  for (int i = 0; blob.size() < 300 * 1024; ++i) blob += "line " + std::to_string(i) + "\n";
  std::thread writer([&] { EXPECT_TRUE(send_all(client.fd, blob)); });
  std::string echoed;
  recv_until(client.fd, echoed, blob.size());
  writer.join();
  EXPECT_EQ(echoed.size(), blob.size());
  EXPECT_TRUE(echoed == blob);

  // Our EOF reaches the server, whose close comes back as EOF.
  ::shutdown(client.fd, SHUT_WR);
  char c;
  EXPECT_EQ(::recv(client.fd, &c, 1, 0), 0);

  EXPECT_EQ(proxy.connect_count(), 1u);
  EXPECT_EQ(proxy.targets(), std::vector<std::string>{"127.0.0.1:" + std::to_string(echo.port())});
}

TEST(ConnectProxyFixture, LocalhostTargetAndEagerClientBytes) {
  EchoServer echo;
  test_support::ConnectProxy proxy;
  ASSERT_TRUE(proxy.ok()) << proxy.error();
  Fd client{dial(proxy.port())};
  ASSERT_GE(client.fd, 0);
  // Bytes sent right behind the CONNECT (as an eager ClientHello would be)
  // must reach the server once the tunnel opens.
  ASSERT_TRUE(send_all(client.fd, write_connect("localhost", echo.port(), "") + "early\n"));
  ConnectResponse r(proxy_name(proxy), "localhost", echo.port());
  std::string got;
  char buf[4096];
  while (r.state() == State::need_more) {
    const ssize_t n = ::recv(client.fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    r.feed(std::string_view(buf, static_cast<size_t>(n)));
  }
  ASSERT_EQ(r.state(), State::established) << r.error_message();
  got = std::move(r.leftover());
  recv_until(client.fd, got, 12);
  EXPECT_EQ(got, "hello\nearly\n");
  EXPECT_EQ(proxy.targets(), std::vector<std::string>{"localhost:" + std::to_string(echo.port())});
}

TEST(ConnectProxyFixture, CredentialsFromProxyConfig) {
  EchoServer echo;
  test_support::ConnectProxyOptions options;
  options.user = "alice";
  options.password = "s3cret:@/";
  test_support::ConnectProxy proxy(options);
  ASSERT_TRUE(proxy.ok()) << proxy.error();
  const std::string port = std::to_string(proxy.port());

  ProxyConfig good;
  ASSERT_EQ(ProxyConfig::parse("http://alice:s3cret%3A%40%2F@127.0.0.1:" + port, "", &good), "");
  ProxyConfig wrong;
  ASSERT_EQ(ProxyConfig::parse("http://alice:guess@127.0.0.1:" + port, "", &wrong), "");
  EXPECT_EQ(wrong.redacted(), "proxy 127.0.0.1:" + port);

  for (const ProxyConfig* cfg : {static_cast<const ProxyConfig*>(&wrong), static_cast<const ProxyConfig*>(nullptr)}) {
    Fd client{dial(proxy.port())};
    ASSERT_GE(client.fd, 0);
    ConnectResponse r(wrong.redacted(), "127.0.0.1", echo.port());
    EXPECT_EQ(open_tunnel(client.fd, r, "127.0.0.1", echo.port(), cfg ? cfg->proxy_authorization() : ""),
              State::failed);
    EXPECT_EQ(r.error(), Error::refused);
    EXPECT_EQ(r.error_message(), "proxy 127.0.0.1:" + port + " refused CONNECT to 127.0.0.1:" +
                                     std::to_string(echo.port()) + ": 407 Proxy Authentication Required");
  }

  Fd client{dial(proxy.port())};
  ASSERT_GE(client.fd, 0);
  ConnectResponse r(good.redacted(), "127.0.0.1", echo.port());
  ASSERT_EQ(open_tunnel(client.fd, r, "127.0.0.1", echo.port(), good.proxy_authorization()), State::established)
      << r.error_message();
  std::string got = std::move(r.leftover());
  recv_until(client.fd, got, 6);
  EXPECT_EQ(got, "hello\n");
  EXPECT_EQ(proxy.connect_count(), 3u);
}

TEST(ConnectProxyFixture, RefusedTargetIs403) {
  test_support::ConnectProxyOptions options;
  options.refuse = {"127.0.0.1:9"};
  test_support::ConnectProxy proxy(options);
  ASSERT_TRUE(proxy.ok()) << proxy.error();
  Fd client{dial(proxy.port())};
  ASSERT_GE(client.fd, 0);
  ConnectResponse r(proxy_name(proxy), "127.0.0.1", 9);
  EXPECT_EQ(open_tunnel(client.fd, r, "127.0.0.1", 9), State::failed);
  EXPECT_EQ(r.error_message(), proxy_name(proxy) + " refused CONNECT to 127.0.0.1:9: 403 Forbidden");
}

TEST(ConnectProxyFixture, NonLoopbackOrUnreachableTargetsAre502) {
  // Closed loopback port: bind one, note it, close it.
  uint16_t closed_port = 0;
  {
    EchoServer gone;
    closed_port = gone.port();
  }
  test_support::ConnectProxy proxy;
  ASSERT_TRUE(proxy.ok()) << proxy.error();
  struct Target {
    std::string host;
    uint16_t port;
  };
  for (const Target& t : {Target{"api.openai.com", 443}, Target{"8.8.8.8", 53}, Target{"127.0.0.1", closed_port}}) {
    Fd client{dial(proxy.port())};
    ASSERT_GE(client.fd, 0);
    ConnectResponse r(proxy_name(proxy), t.host, t.port);
    EXPECT_EQ(open_tunnel(client.fd, r, t.host, t.port), State::failed) << t.host;
    EXPECT_EQ(r.status(), 502) << t.host;
    EXPECT_EQ(r.error_message(), proxy_name(proxy) + " refused CONNECT to " + t.host + ":" + std::to_string(t.port) +
                                     ": 502 Bad Gateway");
  }
  EXPECT_EQ(proxy.connect_count(), 3u);
}

TEST(ConnectProxyFixture, CannedReplyReachesTheReader) {
  test_support::ConnectProxyOptions options;
  options.canned_reply = "SSH-2.0-OpenSSH_9.2\r\n";
  test_support::ConnectProxy proxy(options);
  ASSERT_TRUE(proxy.ok()) << proxy.error();
  Fd client{dial(proxy.port())};
  ASSERT_GE(client.fd, 0);
  ConnectResponse r(proxy_name(proxy), "localhost", 443);
  EXPECT_EQ(open_tunnel(client.fd, r, "localhost", 443), State::failed);
  EXPECT_EQ(r.error(), Error::protocol);
}

TEST(ConnectProxyFixture, ProxyClosingWithoutAnswerIsClosed) {
  test_support::ConnectProxyOptions options;
  options.canned_reply = "HTTP/1.1 200 OK\r\n";  // then the fixture closes mid-reply
  test_support::ConnectProxy proxy(options);
  ASSERT_TRUE(proxy.ok()) << proxy.error();
  Fd client{dial(proxy.port())};
  ASSERT_GE(client.fd, 0);
  ConnectResponse r(proxy_name(proxy), "localhost", 443);
  EXPECT_EQ(open_tunnel(client.fd, r, "localhost", 443), State::failed);
  EXPECT_EQ(r.error(), Error::closed);
}

}  // namespace
}  // namespace barrage::http
