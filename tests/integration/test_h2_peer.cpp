// HTTP/2 wire behaviour against an independent nghttp2 server that records
// the client's frames with arrival times (tests/support/h2_peer): a cancel or
// deadline puts RST_STREAM on the wire within the call (or reactor turn) that
// caused it, with no brg_poll during the wait; GOAWAY precedes every close
// the client makes; refused streams are re-sent free and bounded. Both
// backends, inline and threaded mode.
#include <nghttp2/nghttp2.h>
#include <poll.h>

#include <set>
#include <thread>

#include "capi_harness.hpp"
#include "support/h2_peer.hpp"

namespace barrage::testing {
namespace {

using test_support::H2Peer;
using test_support::H2PeerEvent;
using test_support::H2PeerOptions;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

const std::string kStreamBody =
    R"({"model":"mock-1","stream":true,"messages":[{"role":"user","content":"count slowly"}]})";

struct StreamKey {
  int conn;
  int32_t stream;
  auto operator<=>(const StreamKey&) const = default;
};

class H2Wire : public ::testing::TestWithParam<int> {
 protected:
  int backend() const { return GetParam(); }

  // An engine on this backend that trusts peer's CA and speaks HTTP/2 only.
  std::unique_ptr<Engine> engine(const H2Peer& peer, std::vector<std::pair<brg_option, int64_t>> opts = {}) {
    ca_ = std::make_unique<TempFile>(peer.ca_pem());
    opts.push_back({BRG_OPT_HTTP_VERSION, 2});
    return std::make_unique<Engine>(backend(), ca_->path(), std::move(opts));
  }

  static uint64_t submit(brg_engine* e, const std::string& url, uint32_t flags, int64_t deadline_ms = 0,
                         int32_t max_retries = -1) {
    const std::string& body = (flags & BRG_REQ_STREAM) ? kStreamBody : chat_body("hello");
    brg_request r{};
    r.size = sizeof r;
    r.flags = flags;
    r.url = url.c_str();
    r.body = body.data();
    r.body_len = body.size();
    r.deadline_ms = deadline_ms;
    r.max_retries = max_retries;
    uint64_t id = 0;
    EXPECT_EQ(brg_submit(e, &r, &id), 0) << brg_last_error();
    return id;
  }

  // Request HEADERS the peer saw, not counting the first `skip` of them.
  static std::vector<StreamKey> headers_after(const std::vector<H2PeerEvent>& ev, size_t skip) {
    std::vector<StreamKey> out;
    size_t seen = 0;
    for (auto& e : ev)
      if (e.kind == H2PeerEvent::headers && seen++ >= skip) out.push_back({e.conn, e.stream});
    return out;
  }

  // Checks that each stream got RST_STREAM CANCEL by `by`; returns the
  // latest arrival relative to `from`, in microseconds.
  static int64_t expect_resets(const H2Peer& peer, const std::vector<StreamKey>& streams, Clock::time_point from,
                               Clock::time_point by, const char* what, int round) {
    std::map<StreamKey, H2PeerEvent> rst;
    for (auto& e : peer.events())
      if (e.kind == H2PeerEvent::rst_stream) rst.emplace(StreamKey{e.conn, e.stream}, e);
    int64_t worst = 0;
    int missing = 0;
    for (auto& k : streams) {
      auto it = rst.find(k);
      if (it == rst.end() || it->second.at > by) {
        ++missing;
        continue;
      }
      EXPECT_EQ(it->second.error_code, uint32_t(NGHTTP2_CANCEL)) << what << " stream " << k.stream;
      worst = std::max<int64_t>(worst, std::chrono::duration_cast<std::chrono::microseconds>(it->second.at - from).count());
    }
    EXPECT_EQ(missing, 0) << what << ", round " << round << ": " << missing << " of " << streams.size()
                          << " streams had no RST_STREAM on the wire within the window (no brg_poll ran in it)";
    return worst;
  }

  // Inline mode: polls until `finals` final results arrived (partials are
  // dropped) or limit passed; finals by id. *last_poll_end is when the poll
  // that delivered the last of them returned.
  static std::map<uint64_t, ResultPtr> finals_inline(brg_engine* e, size_t finals, milliseconds limit,
                                                     Clock::time_point* last_poll_end = nullptr) {
    std::map<uint64_t, ResultPtr> out;
    const auto until = Clock::now() + limit;
    while (out.size() < finals && Clock::now() < until) {
      EXPECT_GE(brg_poll(e, 5), 0);
      const auto polled = Clock::now();
      take_finals(e, out);
      if (out.size() >= finals && last_poll_end) *last_poll_end = polled;
    }
    EXPECT_EQ(out.size(), finals);
    return out;
  }

  // Threaded mode: waits on the results descriptor; never polls the engine.
  static std::map<uint64_t, ResultPtr> finals_threaded(brg_engine* e, size_t finals, milliseconds limit) {
    std::map<uint64_t, ResultPtr> out;
    const auto until = Clock::now() + limit;
    while (out.size() < finals && Clock::now() < until) {
      pollfd p{brg_results_fd(e), POLLIN, 0};
      ::poll(&p, 1, 20);
      take_finals(e, out);
    }
    EXPECT_EQ(out.size(), finals);
    return out;
  }

  static void take_finals(brg_engine* e, std::map<uint64_t, ResultPtr>& out) {
    brg_result* buf[64];
    size_t n;
    while ((n = brg_results(e, buf, 64)) > 0)
      for (size_t i = 0; i < n; ++i) {
        if (buf[i]->flags & BRG_RES_PARTIAL) {
          brg_result_free(buf[i]);
          continue;
        }
        EXPECT_TRUE(out.find(buf[i]->id) == out.end()) << "two final results for id " << buf[i]->id;
        out[buf[i]->id] = ResultPtr(buf[i]);
      }
  }

  std::unique_ptr<TempFile> ca_;
};

constexpr int kRounds = 10;
constexpr size_t kStreams = 8;
constexpr milliseconds kWindow{50};

// Behaviour 1, inline mode, brg_cancel: RST_STREAM CANCEL leaves before
// brg_cancel returns; the test sleeps through the window without polling.
TEST_P(H2Wire, CancelResetsStreamsWithinTheCallWithoutPolling) {
  H2Peer peer(H2PeerOptions{.stream_interval_ms = 20});
  ASSERT_TRUE(peer.ok()) << peer.error();
  auto e = engine(peer);
  int64_t worst = 0;
  for (int round = 0; round < kRounds; ++round) {
    const size_t before = peer.count(H2PeerEvent::headers);
    std::vector<uint64_t> ids;
    for (size_t i = 0; i < kStreams; ++i) ids.push_back(submit(e->get(), peer.url(), BRG_REQ_STREAM));
    // Poll until the server has every stream's HEADERS (and one event each).
    std::map<uint64_t, ResultPtr> early;
    const auto until = Clock::now() + std::chrono::seconds(10);
    while (peer.count(H2PeerEvent::headers) < before + kStreams && Clock::now() < until) {
      ASSERT_GE(brg_poll(e->get(), 5), 0);
      take_finals(e->get(), early);
    }
    ASSERT_TRUE(early.empty()) << "a streamed request ended early: " << early.begin()->second->error;
    auto streams = headers_after(peer.events(), before);
    ASSERT_EQ(streams.size(), kStreams);

    const auto t0 = Clock::now();
    for (uint64_t id : ids) ASSERT_EQ(brg_cancel(e->get(), id), 0);
    std::this_thread::sleep_until(t0 + kWindow);  // no brg_poll, no brg_results
    worst = std::max(worst, expect_resets(peer, streams, t0, t0 + kWindow, "brg_cancel, inline", round));

    auto results = finals_inline(e->get(), kStreams, std::chrono::seconds(10));
    for (auto& [id, r] : results) EXPECT_EQ(r->status, BRG_E_CANCELLED) << r->error;
  }
  std::printf("cancel inline: latest RST_STREAM %lld us after the first brg_cancel\n", (long long)worst);
}

// Behaviour 1, inline mode, deadline: the brg_poll that ends the requests
// with BRG_E_TIMEOUT has written their resets by the time it returns.
TEST_P(H2Wire, DeadlineResetsStreamsWithinThePollThatEndsThem) {
  H2Peer peer(H2PeerOptions{.stream_interval_ms = 20});
  ASSERT_TRUE(peer.ok()) << peer.error();
  auto e = engine(peer);
  int64_t worst = 0;
  for (int round = 0; round < kRounds; ++round) {
    const size_t before = peer.count(H2PeerEvent::headers);
    for (size_t i = 0; i < kStreams; ++i) submit(e->get(), peer.url(), BRG_REQ_STREAM, 200);
    Clock::time_point ended{};
    auto results = finals_inline(e->get(), kStreams, std::chrono::seconds(10), &ended);
    for (auto& [id, r] : results) EXPECT_EQ(r->status, BRG_E_TIMEOUT) << r->error;
    auto streams = headers_after(peer.events(), before);
    ASSERT_EQ(streams.size(), kStreams) << "every request reached the server before its deadline";
    std::this_thread::sleep_until(ended + kWindow);  // no brg_poll
    worst = std::max(worst, expect_resets(peer, streams, ended, ended + kWindow, "deadline, inline", round));
  }
  std::printf("deadline inline: latest RST_STREAM %lld us after the ending brg_poll returned\n", (long long)worst);
}

// Behaviour 1, threaded mode: a cancel from the caller's thread is reset on
// the wire within the reactor's turn; the caller never touches the engine
// during the window.
TEST_P(H2Wire, ThreadedCancelResetsStreamsWithinTheWindow) {
  H2Peer peer(H2PeerOptions{.stream_interval_ms = 20});
  ASSERT_TRUE(peer.ok()) << peer.error();
  auto e = engine(peer);
  ASSERT_EQ(brg_start(e->get()), 0);
  int64_t worst = 0;
  for (int round = 0; round < kRounds; ++round) {
    const size_t before = peer.count(H2PeerEvent::headers);
    std::vector<uint64_t> ids;
    for (size_t i = 0; i < kStreams; ++i) ids.push_back(submit(e->get(), peer.url(), BRG_REQ_STREAM));
    ASSERT_TRUE(peer.wait_for([&](auto& ev) { return headers_after(ev, before).size() >= kStreams; },
                              std::chrono::seconds(10)));
    auto streams = headers_after(peer.events(), before);
    const auto t0 = Clock::now();
    for (uint64_t id : ids) ASSERT_EQ(brg_cancel(e->get(), id), 0);
    std::this_thread::sleep_until(t0 + kWindow);
    worst = std::max(worst, expect_resets(peer, streams, t0, t0 + kWindow, "brg_cancel, threaded", round));
    auto results = finals_threaded(e->get(), kStreams, std::chrono::seconds(10));
    for (auto& [id, r] : results) EXPECT_EQ(r->status, BRG_E_CANCELLED) << r->error;
  }
  std::printf("cancel threaded: latest RST_STREAM %lld us after the first brg_cancel\n", (long long)worst);
}

// Behaviour 1, threaded mode, deadline: reset on the wire within the window
// after the deadline passes, never before it; the caller does nothing.
TEST_P(H2Wire, ThreadedDeadlineResetsStreamsWithinTheWindow) {
  H2Peer peer(H2PeerOptions{.stream_interval_ms = 20});
  ASSERT_TRUE(peer.ok()) << peer.error();
  auto e = engine(peer);
  ASSERT_EQ(brg_start(e->get()), 0);
  constexpr milliseconds kDeadline{200};
  int64_t worst = 0;
  for (int round = 0; round < kRounds; ++round) {
    const size_t before = peer.count(H2PeerEvent::headers);
    const auto t_submit = Clock::now();
    for (size_t i = 0; i < kStreams; ++i) submit(e->get(), peer.url(), BRG_REQ_STREAM, kDeadline.count());
    const auto t_submitted = Clock::now();
    ASSERT_TRUE(peer.wait_for([&](auto& ev) { return headers_after(ev, before).size() >= kStreams; },
                              std::chrono::seconds(10)));
    auto streams = headers_after(peer.events(), before);
    std::this_thread::sleep_until(t_submitted + kDeadline + kWindow);
    worst = std::max(worst, expect_resets(peer, streams, t_submitted + kDeadline, t_submitted + kDeadline + kWindow,
                                          "deadline, threaded", round));
    const std::set<StreamKey> mine(streams.begin(), streams.end());
    for (auto& ev : peer.events()) {
      if (ev.kind == H2PeerEvent::rst_stream && mine.count({ev.conn, ev.stream})) {
        EXPECT_GE(ev.at, t_submit + kDeadline) << "stream " << ev.stream << " was reset before its deadline";
      }
    }
    auto results = finals_threaded(e->get(), kStreams, std::chrono::seconds(10));
    for (auto& [id, r] : results) EXPECT_EQ(r->status, BRG_E_TIMEOUT) << r->error;
  }
  std::printf("deadline threaded: latest RST_STREAM %lld us after the deadline\n", (long long)worst);
}

INSTANTIATE_TEST_SUITE_P(Backends, H2Wire, ::testing::Values(BRG_BACKEND_IO_URING, BRG_BACKEND_EPOLL), backend_label);

}  // namespace
}  // namespace barrage::testing
