// MpscQueue: FIFO per producer, nothing lost or duplicated under contention.
#include <gtest/gtest.h>

#include <memory>
#include <thread>
#include <vector>

#include "loop/mpsc_queue.hpp"

namespace barrage {
namespace {

struct Item : MpscNode {
  int producer = 0;
  int seq = 0;
};

TEST(MpscQueue, EmptyQueuePopsNothing) {
  MpscQueue q;
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.pop(), nullptr);
}

TEST(MpscQueue, SingleThreadIsFifo) {
  MpscQueue q;
  Item items[5];
  for (int i = 0; i < 5; ++i) {
    items[i].seq = i;
    q.push(&items[i]);
  }
  EXPECT_FALSE(q.empty());
  for (int i = 0; i < 5; ++i) {
    auto* it = static_cast<Item*>(q.pop());
    ASSERT_NE(it, nullptr);
    EXPECT_EQ(it->seq, i);
  }
  EXPECT_EQ(q.pop(), nullptr);
  EXPECT_TRUE(q.empty());
  // Reusable after draining (the stub node went back in).
  q.push(&items[2]);
  EXPECT_EQ(q.pop(), &items[2]);
}

TEST(MpscQueue, FourProducersLoseNothingAndKeepEachProducersOrder) {
  constexpr int kProducers = 4, kEach = 50000;
  MpscQueue q;
  std::vector<std::unique_ptr<Item[]>> items;
  for (int p = 0; p < kProducers; ++p) items.push_back(std::make_unique<Item[]>(kEach));
  std::vector<std::thread> threads;
  for (int p = 0; p < kProducers; ++p)
    threads.emplace_back([&, p] {
      for (int i = 0; i < kEach; ++i) {
        items[p][i].producer = p;
        items[p][i].seq = i;
        q.push(&items[p][i]);
      }
    });
  std::vector<int> next(kProducers, 0);
  int got = 0;
  while (got < kProducers * kEach) {
    auto* it = static_cast<Item*>(q.pop());
    if (!it) continue;  // a producer may be between its two steps
    ASSERT_EQ(it->seq, next[it->producer]) << "producer " << it->producer << " out of order";
    ++next[it->producer];
    ++got;
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(q.pop(), nullptr);
}

}  // namespace
}  // namespace barrage
