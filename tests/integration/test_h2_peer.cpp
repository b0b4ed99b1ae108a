// HTTP/2 wire behaviour against an independent nghttp2 server that records
// the client's frames with arrival times (tests/support/h2_peer): a cancel or
// deadline puts RST_STREAM on the wire within the call (or reactor turn) that
// caused it, with no brg_poll during the wait; GOAWAY precedes every close
// the client makes; refused streams are re-sent free and bounded. Both
// backends, inline and threaded mode.
#include <nghttp2/nghttp2.h>
#include <poll.h>

#include <algorithm>
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

  // Once the engine polls again, every reset must arrive: this shows the
  // peer records them, so a miss in the window is the engine's timing.
  static void expect_resets_after_polling(brg_engine* e, const H2Peer& peer, const std::vector<StreamKey>& streams,
                                          const char* what, int round) {
    const std::set<StreamKey> want(streams.begin(), streams.end());
    auto all_reset = [&] {
      size_t n = 0;
      for (auto& ev : peer.events()) n += ev.kind == H2PeerEvent::rst_stream && want.count({ev.conn, ev.stream});
      return n >= want.size();
    };
    const auto until = Clock::now() + std::chrono::seconds(2);
    while (!all_reset() && Clock::now() < until) EXPECT_GE(brg_poll(e, 5), 0);
    EXPECT_TRUE(all_reset()) << what << ", round " << round << ": some streams were never reset, even with polling";
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
    expect_resets_after_polling(e->get(), peer, streams, "brg_cancel, inline", round);
  }
  std::printf("cancel inline: latest RST_STREAM %lld us after the first brg_cancel\n", (long long)worst);
}

// Behaviour 1, inline mode, brg_cancel_group: the same for a whole group.
TEST_P(H2Wire, GroupCancelResetsStreamsWithinTheCallWithoutPolling) {
  H2Peer peer(H2PeerOptions{.stream_interval_ms = 20});
  ASSERT_TRUE(peer.ok()) << peer.error();
  auto e = engine(peer);
  int64_t worst = 0;
  for (int round = 0; round < kRounds; ++round) {
    const size_t before = peer.count(H2PeerEvent::headers);
    const uint64_t group = uint64_t(round) + 1;
    for (size_t i = 0; i < kStreams; ++i) {
      brg_request r{};
      r.size = sizeof r;
      r.flags = BRG_REQ_STREAM;
      const std::string url = peer.url();
      r.url = url.c_str();
      r.body = kStreamBody.data();
      r.body_len = kStreamBody.size();
      r.max_retries = -1;
      r.group = group;
      ASSERT_EQ(brg_submit(e->get(), &r, nullptr), 0) << brg_last_error();
    }
    std::map<uint64_t, ResultPtr> early;
    const auto until = Clock::now() + std::chrono::seconds(10);
    while (peer.count(H2PeerEvent::headers) < before + kStreams && Clock::now() < until) {
      ASSERT_GE(brg_poll(e->get(), 5), 0);
      take_finals(e->get(), early);
    }
    ASSERT_TRUE(early.empty());
    auto streams = headers_after(peer.events(), before);
    ASSERT_EQ(streams.size(), kStreams);
    const auto t0 = Clock::now();
    ASSERT_EQ(brg_cancel_group(e->get(), group), int(kStreams));
    std::this_thread::sleep_until(t0 + kWindow);  // no brg_poll, no brg_results
    worst = std::max(worst, expect_resets(peer, streams, t0, t0 + kWindow, "brg_cancel_group, inline", round));
    auto results = finals_inline(e->get(), kStreams, std::chrono::seconds(10));
    for (auto& [id, r] : results) EXPECT_EQ(r->status, BRG_E_CANCELLED) << r->error;
    expect_resets_after_polling(e->get(), peer, streams, "brg_cancel_group, inline", round);
  }
  std::printf("group cancel inline: latest RST_STREAM %lld us after brg_cancel_group\n", (long long)worst);
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
    expect_resets_after_polling(e->get(), peer, streams, "deadline, inline", round);
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

// Behaviour 2: for every connection the client closes, the server saw
// GOAWAY (NO_ERROR) from it before EOF. Returns how many connections closed.
static size_t expect_goaway_before_eof(const H2Peer& peer, const char* what) {
  std::map<int, H2PeerEvent> goaway, eof;
  std::set<int> used;
  for (auto& e : peer.events()) {
    if (e.kind == H2PeerEvent::goaway && !goaway.count(e.conn)) goaway.emplace(e.conn, e);
    if (e.kind == H2PeerEvent::eof) {
      eof.emplace(e.conn, e);
      EXPECT_TRUE(goaway.count(e.conn)) << what << ": connection " << e.conn << " closed without GOAWAY first ("
                                        << (e.error_code == 0 ? "orderly close" : e.error_code == ECONNRESET ? "reset" : "error")
                                        << ")";
    }
    if (e.kind == H2PeerEvent::headers) used.insert(e.conn);
  }
  for (int c : used) EXPECT_TRUE(eof.count(c)) << what << ": connection " << c << " was never closed";
  for (auto& [c, g] : goaway) {
    EXPECT_EQ(g.error_code, uint32_t(NGHTTP2_NO_ERROR)) << what << ", connection " << c;
    if (eof.count(c)) {
      EXPECT_LE(g.at, eof.at(c).at);
    }
  }
  return eof.size();
}

static bool all_used_closed(const std::vector<H2PeerEvent>& ev) {
  std::set<int> used, closed;
  for (auto& e : ev) {
    if (e.kind == H2PeerEvent::headers) used.insert(e.conn);
    if (e.kind == H2PeerEvent::eof) closed.insert(e.conn);
  }
  return !used.empty() && std::includes(closed.begin(), closed.end(), used.begin(), used.end());
}

// Ten rounds each: a missing GOAWAY at engine free showed up in about one
// run in two of a single round.
constexpr int kFreeRounds = 10;

TEST_P(H2Wire, EngineFreeSendsGoawayBeforeClosing) {
  for (int round = 0; round < kFreeRounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    H2Peer peer;
    ASSERT_TRUE(peer.ok()) << peer.error();
    auto e = engine(peer, {{BRG_OPT_MAX_CONNS_PER_HOST, 2}});
    for (int i = 0; i < 20; ++i) submit(e->get(), peer.url(), 0);
    auto results = finals_inline(e->get(), 20, std::chrono::seconds(10));
    for (auto& [id, r] : results) EXPECT_EQ(r->status, BRG_OK) << r->error;
    e.reset();  // brg_engine_free
    EXPECT_TRUE(peer.wait_for(all_used_closed, std::chrono::seconds(5)));
    EXPECT_GE(expect_goaway_before_eof(peer, "brg_engine_free"), 1u);
  }
}

TEST_P(H2Wire, ThreadedEngineFreeSendsGoawayBeforeClosing) {
  for (int round = 0; round < kFreeRounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    H2Peer peer;
    ASSERT_TRUE(peer.ok()) << peer.error();
    auto e = engine(peer);
    ASSERT_EQ(brg_start(e->get()), 0);
    for (int i = 0; i < 20; ++i) submit(e->get(), peer.url(), 0);
    auto results = finals_threaded(e->get(), 20, std::chrono::seconds(10));
    for (auto& [id, r] : results) EXPECT_EQ(r->status, BRG_OK) << r->error;
    e.reset();
    EXPECT_TRUE(peer.wait_for(all_used_closed, std::chrono::seconds(5)));
    EXPECT_GE(expect_goaway_before_eof(peer, "brg_engine_free, threaded"), 1u);
  }
}

// Also with streams still open at engine free: GOAWAY, then the close.
TEST_P(H2Wire, EngineFreeWithOpenStreamsSendsGoawayBeforeClosing) {
  for (int round = 0; round < kFreeRounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    H2Peer peer(H2PeerOptions{.stream_interval_ms = 20});
    ASSERT_TRUE(peer.ok()) << peer.error();
    auto e = engine(peer);
    for (int i = 0; i < 4; ++i) submit(e->get(), peer.url(), BRG_REQ_STREAM);
    const auto until = Clock::now() + std::chrono::seconds(10);
    while (peer.count(H2PeerEvent::headers) < 4 && Clock::now() < until) ASSERT_GE(brg_poll(e->get(), 5), 0);
    e.reset();
    EXPECT_TRUE(peer.wait_for(all_used_closed, std::chrono::seconds(5)));
    EXPECT_GE(expect_goaway_before_eof(peer, "brg_engine_free with open streams"), 1u);
  }
}

TEST_P(H2Wire, IdleCloseSendsGoawayBeforeClosing) {
  H2Peer peer;
  ASSERT_TRUE(peer.ok()) << peer.error();
  auto e = engine(peer, {{BRG_OPT_IDLE_TIMEOUT_MS, 200}});
  for (int i = 0; i < 10; ++i) submit(e->get(), peer.url(), 0);
  auto results = finals_inline(e->get(), 10, std::chrono::seconds(10));
  for (auto& [id, r] : results) EXPECT_EQ(r->status, BRG_OK) << r->error;
  // Keep the engine turning (and alive) until the idle timeout closes.
  const auto until = Clock::now() + std::chrono::seconds(5);
  while (!all_used_closed(peer.events()) && Clock::now() < until) ASSERT_GE(brg_poll(e->get(), 20), 0);
  EXPECT_GE(expect_goaway_before_eof(peer, "idle close"), 1u);
  EXPECT_EQ(e->stats().connections_open, 0u);
}

// Behaviour 3: with every 7th stream refused, every request ends OK on its
// first charged attempt and none waits out a backoff (set to 5 s so that one
// would show in the run time). Three runs of 700: the old bound of 3 free
// re-sends failed about 40 % of single runs.
TEST_P(H2Wire, RefusedStreamsAreResentFreeWithoutBackoff) {
  for (int run = 0; run < 3; ++run) {
    H2Peer peer(H2PeerOptions{.refuse_every = 7});
    ASSERT_TRUE(peer.ok()) << peer.error();
    auto e = engine(peer, {{BRG_OPT_BACKOFF_BASE_MS, 5000}, {BRG_OPT_BACKOFF_MAX_MS, 5000}, {BRG_OPT_MAX_RETRIES, 2}});
    const auto t0 = Clock::now();
    for (int i = 0; i < 700; ++i) submit(e->get(), peer.url(), 0);
    auto results = finals_inline(e->get(), 700, std::chrono::seconds(20));
    const auto elapsed = Clock::now() - t0;
    int not_ok = 0, charged = 0;
    for (auto& [id, r] : results) {
      if (r->status != BRG_OK) ++not_ok;
      if (r->attempts != 1) ++charged;
      EXPECT_EQ(r->status, BRG_OK) << r->error;
      EXPECT_EQ(r->attempts, 1u) << "a free re-send was counted as an attempt";
    }
    EXPECT_EQ(e->stats().retried, 0u);
    EXPECT_GE(peer.count(H2PeerEvent::refused), 100u);  // the refusals really happened
    EXPECT_LT(elapsed, std::chrono::milliseconds(4500)) << "a request waited out a backoff";
    std::printf("run %d: 700 requests, %zu refused streams, %d not OK, %d with attempts != 1, %lld ms\n", run,
                peer.count(H2PeerEvent::refused), not_ok, charged,
                (long long)std::chrono::duration_cast<milliseconds>(elapsed).count());
  }
}

// Behaviour 3, GOAWAY: streams above the server's last-stream-id are
// re-sent free on another connection.
TEST_P(H2Wire, StreamsAboveGoawayAreResentFree) {
  H2Peer peer(H2PeerOptions{.goaway_after = 40});
  ASSERT_TRUE(peer.ok()) << peer.error();
  auto e = engine(peer, {{BRG_OPT_BACKOFF_BASE_MS, 5000}, {BRG_OPT_BACKOFF_MAX_MS, 5000}, {BRG_OPT_MAX_RETRIES, 2}});
  const auto t0 = Clock::now();
  for (int i = 0; i < 300; ++i) submit(e->get(), peer.url(), 0);
  auto results = finals_inline(e->get(), 300, std::chrono::seconds(20));
  for (auto& [id, r] : results) {
    EXPECT_EQ(r->status, BRG_OK) << r->error;
    EXPECT_EQ(r->attempts, 1u);
  }
  EXPECT_EQ(e->stats().retried, 0u);
  EXPECT_GE(peer.count(H2PeerEvent::goaway_sent), 2u);
  EXPECT_GE(peer.count(H2PeerEvent::ignored), 1u) << "no stream above a GOAWAY was exercised";
  EXPECT_LT(Clock::now() - t0, std::chrono::milliseconds(4500)) << "a request waited out a backoff";
  std::printf("300 requests: %zu GOAWAYs sent, %zu streams above last-stream-id re-sent\n",
              peer.count(H2PeerEvent::goaway_sent), peer.count(H2PeerEvent::ignored));
}

// Behaviour 3, a server that refuses everything: no retries allowed, each
// request ends after 1 + kMaxFreeResends (32) streams with a clear error.
TEST_P(H2Wire, RefuseAllEndsAfterTheFreeResendBound) {
  H2Peer peer(H2PeerOptions{.refuse_all = true});
  ASSERT_TRUE(peer.ok()) << peer.error();
  auto e = engine(peer);
  const auto t0 = Clock::now();
  for (int i = 0; i < 5; ++i) submit(e->get(), peer.url(), 0, 0, 0);
  auto results = finals_inline(e->get(), 5, std::chrono::seconds(10));
  for (auto& [id, r] : results) {
    EXPECT_EQ(r->status, BRG_E_IO) << r->error;
    EXPECT_NE(std::string(r->error).find("REFUSED_STREAM"), std::string::npos) << r->error;
    EXPECT_EQ(r->attempts, 1u);
    EXPECT_EQ(r->http_status, 0);
  }
  EXPECT_EQ(peer.count(H2PeerEvent::refused), 5u * 33u) << "1 + 32 free re-sends per request";
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(5));
}

// ... and with retries and a deadline: the request ends by its deadline
// (plus the reactor's slack), not later, and not OK.
TEST_P(H2Wire, RefuseAllEndsByTheDeadline) {
  H2Peer peer(H2PeerOptions{.refuse_all = true});
  ASSERT_TRUE(peer.ok()) << peer.error();
  // Breaker off: the deadline, not the breaker, must be what ends them.
  auto e = engine(peer, {{BRG_OPT_BACKOFF_BASE_MS, 100}, {BRG_OPT_BACKOFF_MAX_MS, 200}, {BRG_OPT_BREAKER_THRESHOLD, 0}});
  for (int i = 0; i < 5; ++i) submit(e->get(), peer.url(), 0, 800, 1000);
  auto results = finals_inline(e->get(), 5, std::chrono::seconds(10));
  for (auto& [id, r] : results) {
    EXPECT_TRUE(r->status == BRG_E_TIMEOUT || r->status == BRG_E_IO) << brg_status_name(r->status) << ": " << r->error;
    EXPECT_LE(r->total_us, 800000 + 300000) << r->error;
    EXPECT_GE(r->attempts, 1u);
  }
}

// BRG_REQ_NO_STREAM_BODY over HTTP/2: streams of 200 events (~35 KB each)
// on one connection with BRG_OPT_MAX_RESPONSE_BYTES at 4096 end BRG_OK with
// every event and an empty final body; the same streams with their bodies
// kept exceed the limit (their resets do not touch the others).
TEST_P(H2Wire, StreamsWithoutBodyKeepNoBytesAndOutgrowTheBodyLimit) {
  H2Peer peer(H2PeerOptions{.stream_interval_ms = 1, .stream_events = 200});
  ASSERT_TRUE(peer.ok()) << peer.error();
  auto e = engine(peer, {{BRG_OPT_MAX_RESPONSE_BYTES, 4096}, {BRG_OPT_MAX_RETRIES, 0}});
  std::set<uint64_t> lean, whole;
  for (size_t i = 0; i < kStreams; ++i) {
    lean.insert(submit(e->get(), peer.url(), BRG_REQ_STREAM | BRG_REQ_NO_STREAM_BODY));
    whole.insert(submit(e->get(), peer.url(), BRG_REQ_STREAM));
  }
  auto results = finals_inline(e->get(), 2 * kStreams, std::chrono::seconds(20));
  for (auto& [id, r] : results) {
    if (lean.count(id)) {
      EXPECT_EQ(r->status, BRG_OK) << r->error;
      EXPECT_EQ(r->events, 200u);
      EXPECT_EQ(r->body_len, 0u);
    } else {
      EXPECT_TRUE(whole.count(id));
      EXPECT_EQ(r->status, BRG_E_TOO_LARGE) << r->error;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, H2Wire, ::testing::Values(BRG_BACKEND_IO_URING, BRG_BACKEND_EPOLL), backend_label);

}  // namespace
}  // namespace barrage::testing
