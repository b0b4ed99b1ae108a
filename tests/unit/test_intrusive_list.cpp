// IntrusiveList: order, O(1) removal from anywhere, hook state.
#include <gtest/gtest.h>

#include "loop/intrusive_list.hpp"

namespace barrage {
namespace {

struct Node {
  int v = 0;
  ListHook<Node> hook;
};

TEST(IntrusiveList, PushBackIsFifoPushFrontIsLifo) {
  IntrusiveList<Node> l;
  Node a, b, c;
  a.v = 1, b.v = 2, c.v = 3;
  l.push_back(a.hook, &a);
  l.push_back(b.hook, &b);
  l.push_front(c.hook, &c);
  EXPECT_EQ(l.size(), 3u);
  EXPECT_EQ(l.pop_front(), &c);
  EXPECT_EQ(l.pop_front(), &a);
  EXPECT_EQ(l.front(), &b);
  EXPECT_EQ(l.pop_front(), &b);
  EXPECT_EQ(l.pop_front(), nullptr);
  EXPECT_TRUE(l.empty());
  EXPECT_FALSE(a.hook.linked());
}

TEST(IntrusiveList, RemoveFromTheMiddleKeepsTheRest) {
  IntrusiveList<Node> l;
  Node n[4];
  for (int i = 0; i < 4; ++i) {
    n[i].v = i;
    l.push_back(n[i].hook, &n[i]);
  }
  EXPECT_TRUE(n[1].hook.linked());
  l.remove(n[1].hook);
  EXPECT_FALSE(n[1].hook.linked());
  l.remove(n[3].hook);
  EXPECT_EQ(l.size(), 2u);
  EXPECT_EQ(l.pop_front()->v, 0);
  EXPECT_EQ(l.pop_front()->v, 2);
  EXPECT_TRUE(l.empty());
  // A removed node can be linked again.
  l.push_back(n[1].hook, &n[1]);
  EXPECT_EQ(l.front(), &n[1]);
}

}  // namespace
}  // namespace barrage
