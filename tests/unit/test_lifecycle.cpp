// Lifecycle with a fake pool and fake channels and a manual clock: the
// transitions (slot, gate, channel, outcome), retries on the wheel, free
// re-sends, the stale-connection retry, cancel, deadlines, and that events
// never start other work (only run_ready does).
#include <gtest/gtest.h>

#include <deque>
#include <vector>

#include "barrage.h"
#include "core/lifecycle.hpp"
#include "core/mailbox.hpp"

namespace barrage {
namespace {

struct ManualClock final : Clock {
  uint64_t now = 1'000'000'000;  // ns
  uint64_t now_ns() const noexcept override { return now; }
};

struct FakeChannel final : Channel {
  struct Started {
    int64_t handle;
    ExchangeSink* sink;
    void* user;
    bool watch;
  };
  bool room = true;
  int64_t next = 1;
  std::vector<Started> started;
  std::vector<int64_t> cancelled;
  bool can_take() const noexcept override { return room; }
  int64_t start(const http::RequestHead&, bool watch, ExchangeSink* sink, void* user, std::string*) noexcept override {
    started.push_back({next, sink, user, watch});
    return next++;
  }
  void cancel(int64_t h) noexcept override { cancelled.push_back(h); }
  bool multiplexed() const noexcept override { return true; }
  size_t active() const noexcept override { return started.size() - cancelled.size(); }
  uint32_t capacity() const noexcept override { return 100; }
  bool going_away() const noexcept override { return false; }

  void answer(size_t i, int status, std::string body = "{}", const char* retry_after = nullptr) {
    http::Response r;
    r.set_status(status);
    if (retry_after) r.add_header("Retry-After", retry_after);
    r.body() = std::move(body);
    started[i].sink->on_complete(started[i].user, r);
  }
  void fail(size_t i, ExchangeFailure f) { started[i].sink->on_failure(started[i].user, std::move(f)); }
};

// Hands out `channel` while `open`, else keeps requests waiting (FIFO) until serve().
struct FakePool final : ChannelSource {
  OriginPool origin_pool;
  FakeChannel channel;
  bool open = true;
  std::deque<PoolWaiter*> waiting;
  std::vector<bool> fresh_asks;
  PoolClient* client = nullptr;
  int flushes = 0;

  OriginPool* origin(const http::Url& url) noexcept override {
    origin_pool.key = url.origin();
    return &origin_pool;
  }
  Acquired acquire(OriginPool&, PoolWaiter& w, bool fresh) noexcept override {
    fresh_asks.push_back(fresh);
    Acquired a;
    if (open) {
      a.channel = &channel;
      return a;
    }
    waiting.push_back(&w);
    return a;
  }
  void withdraw(OriginPool&, PoolWaiter& w) noexcept override {
    for (auto it = waiting.begin(); it != waiting.end(); ++it)
      if (*it == &w) {
        waiting.erase(it);
        return;
      }
  }
  bool flush(const TimeBudget&) noexcept override {
    ++flushes;
    return false;
  }
  bool has_work() const noexcept override { return false; }
  void serve() {
    while (!waiting.empty()) {
      PoolWaiter* w = waiting.front();
      waiting.pop_front();
      client->channel_ready(w, &channel);
    }
  }
};

struct LifecycleTest : ::testing::Test {
  void SetUp() override {
    backend = make_backend(BackendKind::epoll).backend;
    ASSERT_TRUE(backend);
    std::string err;
    mailbox = Mailbox::create(*backend, &err);
    ASSERT_TRUE(mailbox) << err;
    mailbox->set_store(&store);
    wheel = std::make_unique<TimerWheel>(clock.now_ms());
    results = std::make_unique<Results>(*mailbox, store);
    settings.max_inflight = 2;
    settings.retry = RetryPolicy{100, 1000};
    make();
  }
  void make() {
    keys = std::make_unique<LimitKeys>(limits, *wheel, clock);
    life = std::make_unique<Lifecycle>(settings, *wheel, clock, pool, *keys, *results, nullptr, 42);
    keys->bind(*life);
    pool.client = life.get();
  }
  void TearDown() override {
    life.reset();
    while (true) {
      Outcome* o = nullptr;
      if (mailbox->take(&o, 1) == 0) break;
      store.destroy(o);
    }
  }

  uint64_t submit(int64_t deadline_ms = 0, uint32_t max_retries = 2) {
    auto* r = new Request;
    EXPECT_EQ(http::parse_url("https://api.test/v1/chat/completions", false, r->url), "");
    EXPECT_EQ(r->head.build("POST", r->url, nullptr, 0, "{}", "test"), "");
    r->id = mailbox->next_id();
    r->timeout_ms = 5000;
    r->max_retries = max_retries;
    r->submit_ns = clock.now;
    if (deadline_ms) r->deadline_ms = deadline_ms, r->own_deadline_at_ms = r->deadline_at_ms = clock.now_ms() + deadline_ms;
    life->accept(r);
    return r->id;
  }
  void advance_ms(uint64_t ms) {
    clock.now += ms * 1000000;
    wheel->advance(clock.now_ms());
    life->run_ready();
  }
  std::vector<Outcome*> outcomes() {
    std::vector<Outcome*> v;
    Outcome* o = nullptr;
    while (mailbox->take(&o, 1) == 1) v.push_back(o);
    taken.insert(taken.end(), v.begin(), v.end());
    return v;
  }

  ManualClock clock;
  HeapOutcomeStore store;
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Mailbox> mailbox;
  std::unique_ptr<TimerWheel> wheel;
  std::unique_ptr<Results> results;
  LifecycleSettings settings;
  FlowLimits limits;
  FakePool pool;
  std::unique_ptr<LimitKeys> keys;
  std::unique_ptr<Lifecycle> life;
  std::vector<Outcome*> taken;

 public:
  ~LifecycleTest() override {
    for (Outcome* o : taken) store.destroy(o);
  }
};

TEST_F(LifecycleTest, AcceptedRequestsMoveOnlyInRunReady) {
  submit();
  EXPECT_TRUE(pool.channel.started.empty()) << "accept() records; run_ready() moves";
  life->run_ready();
  ASSERT_EQ(pool.channel.started.size(), 1u);
  pool.channel.answer(0, 200, R"({"usage":{"prompt_tokens":3,"completion_tokens":4}})");
  auto out = outcomes();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0]->status, BRG_OK);
  EXPECT_EQ(out[0]->http_status, 200);
  EXPECT_EQ(out[0]->attempts, 1u);
  EXPECT_EQ(out[0]->prompt_tokens, 3);
  EXPECT_EQ(out[0]->completion_tokens, 4);
  EXPECT_EQ(life->live(), 0u);
}

TEST_F(LifecycleTest, InFlightSlotsQueueTheRestInOrder) {
  uint64_t a = submit(), b = submit(), c = submit();
  life->run_ready();
  ASSERT_EQ(pool.channel.started.size(), 2u) << "max_inflight 2";
  EXPECT_EQ(life->counters().queued.get(), 1u);
  pool.channel.answer(0, 200);
  EXPECT_EQ(pool.channel.started.size(), 2u) << "the freed slot is taken at run_ready, not inside the event";
  life->run_ready();
  ASSERT_EQ(pool.channel.started.size(), 3u);
  EXPECT_EQ(static_cast<Request*>(pool.channel.started[2].user)->id, c);
  (void)a, (void)b;
}

// A spent budget stops run_ready() after one step, so the turn's timers run
// in time; has_ready() tells the turn not to sleep on what is left.
TEST_F(LifecycleTest, RunReadyStopsWhenItsBudgetIsSpentAndSaysWorkIsLeft) {
  submit();
  submit();
  EXPECT_TRUE(life->has_ready());
  life->run_ready(TimeBudget(0));
  EXPECT_LE(pool.channel.started.size(), 1u) << "went on past a spent budget";
  EXPECT_TRUE(life->has_ready());
  life->run_ready();
  EXPECT_EQ(pool.channel.started.size(), 2u);
  EXPECT_FALSE(life->has_ready());
}

TEST_F(LifecycleTest, A503WaitsOnTheWheelForItsRetryAfterThenSucceeds) {
  submit();
  life->run_ready();
  pool.channel.answer(0, 503, "{}", "1");  // Retry-After: 1 s
  EXPECT_TRUE(outcomes().empty());
  EXPECT_EQ(life->counters().retried.get(), 1u);
  advance_ms(999);
  EXPECT_EQ(pool.channel.started.size(), 1u) << "never sooner than the server asked";
  advance_ms(2);
  ASSERT_EQ(pool.channel.started.size(), 2u);
  pool.channel.answer(1, 200);
  auto out = outcomes();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0]->status, BRG_OK);
  EXPECT_EQ(out[0]->attempts, 2u);
}

TEST_F(LifecycleTest, AnUnprocessedStreamIsResentFreeAndNotCountedAsAnAttempt) {
  submit(0, /*max_retries=*/0);
  life->run_ready();
  ExchangeFailure f;
  f.status = BRG_E_IO;
  f.phase = ExchangePhase::send;
  f.unprocessed = true;
  pool.channel.fail(0, f);
  EXPECT_EQ(pool.channel.started.size(), 1u);
  life->run_ready();
  ASSERT_EQ(pool.channel.started.size(), 2u) << "re-sent at once, without backoff";
  pool.channel.answer(1, 200);
  auto out = outcomes();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0]->status, BRG_OK);
  EXPECT_EQ(out[0]->attempts, 1u);
  EXPECT_EQ(life->counters().retried.get(), 0u);
}

TEST_F(LifecycleTest, AStaleKeepAliveConnectionGetsOneFreshConnection) {
  submit(0, 0);
  life->run_ready();
  ExchangeFailure f;
  f.status = BRG_E_IO;
  f.phase = ExchangePhase::send;
  f.reused = true;
  pool.channel.fail(0, f);
  life->run_ready();
  ASSERT_EQ(pool.fresh_asks.size(), 2u);
  EXPECT_FALSE(pool.fresh_asks[0]);
  EXPECT_TRUE(pool.fresh_asks[1]) << "the retry must not reuse an idle connection";
  pool.channel.fail(1, f);  // the second time it is charged, and no retries are left
  auto out = outcomes();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0]->status, BRG_E_IO);
}

TEST_F(LifecycleTest, CancelOfAnActiveRequestCancelsItsExchange) {
  uint64_t id = submit();
  life->run_ready();
  ASSERT_TRUE(life->cancel(id));
  ASSERT_EQ(pool.channel.cancelled.size(), 1u);
  EXPECT_EQ(pool.channel.cancelled[0], pool.channel.started[0].handle);
  auto out = outcomes();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0]->status, BRG_E_CANCELLED);
  EXPECT_FALSE(life->cancel(id)) << "finished: no such request";
}

TEST_F(LifecycleTest, ARequestWaitingForAChannelIsWithdrawnByItsDeadline) {
  pool.open = false;
  submit(/*deadline_ms=*/300);
  life->run_ready();
  EXPECT_EQ(pool.waiting.size(), 1u);
  advance_ms(299);
  EXPECT_TRUE(outcomes().empty());
  advance_ms(2);
  auto out = outcomes();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0]->status, BRG_E_TIMEOUT);
  EXPECT_NE(out[0]->error.find("deadline of 300 ms"), std::string::npos) << out[0]->error;
  EXPECT_TRUE(pool.waiting.empty()) << "withdrawn from the pool";
}

TEST_F(LifecycleTest, AServedWaiterStartsOnItsChannel) {
  pool.open = false;
  submit();
  life->run_ready();
  EXPECT_TRUE(pool.channel.started.empty());
  pool.serve();
  ASSERT_EQ(pool.channel.started.size(), 1u);
}

TEST_F(LifecycleTest, ARetryThatCannotStartBeforeTheDeadlineReportsTheRealFailure) {
  submit(/*deadline_ms=*/1000);
  life->run_ready();
  pool.channel.answer(0, 429, "{}", "5");  // Retry-After 5 s: past the deadline
  auto out = outcomes();
  ASSERT_EQ(out.size(), 1u) << "reported now, not as a timeout a second later";
  EXPECT_EQ(out[0]->status, BRG_E_HTTP);
  EXPECT_EQ(out[0]->http_status, 429);
  EXPECT_EQ(life->counters().retried.get(), 0u);
}

}  // namespace
}  // namespace barrage
