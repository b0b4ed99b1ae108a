// Unit tests for batch/ reorder_buffer: lines come out in sequence
// order whatever order they finish in, and the window bounds what is held.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "batch/reorder_buffer.hpp"

namespace barrage {
namespace {

TEST(ReorderBuffer, InOrderPassesStraightThrough) {
  ReorderBuffer<std::string> b(4);
  std::string out;
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(b.can_start(uint64_t(i)));
    b.put(uint64_t(i), std::to_string(i));
    ASSERT_TRUE(b.pop(&out));
    EXPECT_EQ(out, std::to_string(i));
    EXPECT_FALSE(b.pop(&out));
  }
  EXPECT_EQ(b.head(), 10u);
  EXPECT_EQ(b.held(), 0u);
}

TEST(ReorderBuffer, HoldsLaterLinesUntilTheHeadArrives) {
  ReorderBuffer<std::string> b(3);
  std::string out;
  b.put(2, "c");
  b.put(1, "b");
  EXPECT_FALSE(b.pop(&out));
  EXPECT_EQ(b.held(), 2u);
  EXPECT_FALSE(b.can_start(3)) << "3 would be a full window ahead of the head";
  b.put(0, "a");
  std::string got;
  while (b.pop(&out)) got += out;
  EXPECT_EQ(got, "abc");
  EXPECT_TRUE(b.can_start(5));
  EXPECT_FALSE(b.can_start(6));
}

TEST(ReorderBuffer, RefusesOutsideTheWindowAndTwice) {
  ReorderBuffer<std::string> b(2);
  EXPECT_THROW(b.put(2, "x"), std::logic_error);
  b.put(1, "y");
  EXPECT_THROW(b.put(1, "y"), std::logic_error);
  b.put(0, "x");
  std::string out;
  ASSERT_TRUE(b.pop(&out));
  EXPECT_THROW(b.put(0, "again"), std::logic_error);
}

TEST(ReorderBuffer, RandomCompletionOrderWithWindowAsBackPressure) {
  // A model of the runner: start while the window allows, finish a random
  // running line, pop what is ready. Everything comes out in order, and the
  // window is never exceeded.
  const uint32_t window = 64;
  ReorderBuffer<uint64_t> b(window);
  std::mt19937_64 rng(7);
  std::vector<uint64_t> running;
  uint64_t next = 0, expect = 0, out = 0;
  const uint64_t n = 100000;
  while (expect < n) {
    while (next < n && b.can_start(next) && running.size() < 40) running.push_back(next++);
    ASSERT_FALSE(running.empty()) << "the head must always be running or done";
    size_t i = rng() % running.size();
    b.put(running[i], running[i]);
    running.erase(running.begin() + long(i));
    ASSERT_LE(b.held() + running.size(), window);
    while (b.pop(&out)) ASSERT_EQ(out, expect++);
  }
  EXPECT_EQ(b.held(), 0u);
}

}  // namespace
}  // namespace barrage
