// ResponseCache: key hashing, byte-exact round trips, TTL, persistence,
// batching, back-pressure by dropping, refusal of bad files, and sharing one
// file between instances and between processes.
#include <gtest/gtest.h>
#include <spawn.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cache/response_cache.hpp"

extern char** environ;

namespace barrage {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// The child half of TwoProcessesShareOneFile reads its file from here.
constexpr const char* kChildEnv = "BRG_TEST_CACHE_CHILD_FILE";
constexpr int kPerProcess = 3000;

std::atomic<int64_t> g_fake_now{1700000000};
int64_t fake_now() { return g_fake_now.load(); }

std::string key_of(int i, const char* who = "p") {
  return ResponseCache::key("POST", "https://api.example.com/v1/chat/completions",
                            std::string("{\"who\":\"") + who + "\",\"i\":" + std::to_string(i) + "}");
}

CachedAnswer answer_of(int i) {
  CachedAnswer a;
  a.http_status = 200;
  a.body = "{\"answer\":" + std::to_string(i) + "}";
  a.prompt_tokens = i;
  a.completion_tokens = 2 * i;
  return a;
}

// Waits until pred holds or the limit passes; true if it held.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = 5000ms) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// A raw connection to the same file, as another program would hold it.
struct RawDb {
  sqlite3* db = nullptr;
  explicit RawDb(const std::string& path) { sqlite3_open(path.c_str(), &db); }
  ~RawDb() { sqlite3_close(db); }
  int exec(const std::string& sql) { return sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr); }
};

class ResponseCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "brg-cache-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = (fs::path(dir_) / "cache.db").string();
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::unique_ptr<ResponseCache> open(int64_t ttl_s = 0,
                                      const ResponseCache::Options& o = ResponseCache::Options{}) {
    std::string err;
    auto c = ResponseCache::open(path_, ttl_s, o, &err);
    EXPECT_NE(c, nullptr) << err;
    return c;
  }
  std::string open_error(const std::string& path) {
    std::string err;
    auto c = ResponseCache::open(path, 0, &err);
    EXPECT_EQ(c, nullptr);
    EXPECT_FALSE(err.empty());
    return err;
  }

  std::string dir_, path_;
};

TEST(ResponseCacheKey, IsStableLowercaseHexSha256OfTheSeparatedFields) {
  const std::string k =
      ResponseCache::key("POST", "https://api.example.com/v1/chat/completions", "{\"model\":\"m\"}");
  // printf 'POST\0https://api.example.com/v1/chat/completions\0{"model":"m"}' | sha256sum
  EXPECT_EQ(k, "a384b8fef665aa4d707c40c945bcdcf33d80b4b6b80db5f2bf9872fdc1fdd6fb");
  EXPECT_EQ(ResponseCache::key("POST", "https://api.example.com/v1/chat/completions", "{\"model\":\"m\"}"), k);
  EXPECT_EQ(ResponseCache::key("GET", "", ""), "5a38288745e2d987ae290d43c1e895f67401a819c27cb9050b1d786c56fd0fe5");
}

TEST(ResponseCacheKey, DiffersForAnyByteChangeInAnyField) {
  const std::string method = "POST", url = "https://h/v1/x?q=1";
  std::string body("{\"m\":\"a\",\"bin\":\"", 16);
  body.push_back('\0');
  body += "\xff\"}";
  std::set<std::string> seen{ResponseCache::key(method, url, body)};
  size_t variants = 1;
  auto flip_each = [&](int field) {
    std::string f = field == 0 ? method : field == 1 ? url : body;
    for (size_t i = 0; i < f.size(); ++i) {
      for (unsigned x : {0x01u, 0x80u}) {
        std::string g = f;
        g[i] = static_cast<char>(static_cast<unsigned char>(g[i]) ^ x);
        seen.insert(ResponseCache::key(field == 0 ? g : method, field == 1 ? g : url, field == 2 ? g : body));
        ++variants;
      }
    }
    // Longer and shorter by one byte as well.
    seen.insert(ResponseCache::key(field == 0 ? f + "x" : method, field == 1 ? f + "x" : url,
                                   field == 2 ? f + "x" : body));
    seen.insert(ResponseCache::key(field == 0 ? f.substr(1) : method, field == 1 ? f.substr(1) : url,
                                   field == 2 ? f.substr(1) : body));
    variants += 2;
  };
  flip_each(0);
  flip_each(1);
  flip_each(2);
  EXPECT_EQ(seen.size(), variants);
  // A byte moved across a field boundary changes the key: the separators count.
  EXPECT_NE(ResponseCache::key("POST", "ab", ""), ResponseCache::key("POST", "a", "b"));
  EXPECT_NE(ResponseCache::key("POS", "Tab", ""), ResponseCache::key("POST", "ab", ""));
}

TEST_F(ResponseCacheTest, StoreFlushLookupReturnsIdenticalBytes) {
  auto c = open();
  ASSERT_NE(c, nullptr);

  CachedAnswer binary;
  binary.http_status = 200;
  for (int i = 0; i < 1024; ++i) binary.body.push_back(static_cast<char>(i & 0xff));  // NULs included
  binary.prompt_tokens = 12;
  binary.completion_tokens = 34;

  CachedAnswer empty;
  empty.http_status = 204;  // tokens stay -1: unknown

  CachedAnswer big;
  big.http_status = 200;
  big.body.resize(size_t{5} << 20);
  std::mt19937_64 rng(42);
  for (char& ch : big.body) ch = static_cast<char>(rng());
  big.prompt_tokens = 1;
  big.completion_tokens = 1 << 20;

  const std::string kb = ResponseCache::key("POST", "u", "binary");
  const std::string ke = ResponseCache::key("POST", "u", "empty");
  const std::string kg = ResponseCache::key("POST", "u", "big");
  EXPECT_FALSE(c->lookup(kb).has_value());
  c->store(kb, binary);
  c->store(ke, empty);
  c->store(kg, big);
  c->flush();

  for (const auto& [k, want] : {std::pair{kb, &binary}, std::pair{ke, &empty}, std::pair{kg, &big}}) {
    auto got = c->lookup(k);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->http_status, want->http_status);
    EXPECT_EQ(got->body.size(), want->body.size());
    EXPECT_TRUE(got->body == want->body);  // not EXPECT_EQ: 5 MiB diffs are unreadable
    EXPECT_EQ(got->prompt_tokens, want->prompt_tokens);
    EXPECT_EQ(got->completion_tokens, want->completion_tokens);
  }
  EXPECT_FALSE(c->lookup(ResponseCache::key("POST", "u", "absent")).has_value());
  EXPECT_FALSE(c->lookup("").has_value());

  const auto s = c->stats();
  EXPECT_EQ(s.stored, 3u);
  EXPECT_EQ(s.hits, 3u);
  EXPECT_EQ(s.misses, 3u);
  EXPECT_EQ(s.dropped, 0u);
  EXPECT_EQ(s.write_errors, 0u);
}

TEST_F(ResponseCacheTest, StoringTheSameKeyAgainReplacesTheAnswer) {
  auto c = open();
  ASSERT_NE(c, nullptr);
  c->store(key_of(1), answer_of(1));
  c->flush();
  c->store(key_of(1), answer_of(2));
  c->flush();
  auto got = c->lookup(key_of(1));
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->body, answer_of(2).body);
  EXPECT_EQ(c->stats().stored, 2u);
}

TEST_F(ResponseCacheTest, EntriesExpireAtTtlSecondsOnTheInjectedClock) {
  ResponseCache::Options o;
  o.now_unix_s = fake_now;
  g_fake_now = 1700000000;
  auto c = open(60, o);
  ASSERT_NE(c, nullptr);
  c->store(key_of(1), answer_of(1));
  c->flush();
  g_fake_now += 59;
  EXPECT_TRUE(c->lookup(key_of(1)).has_value());
  g_fake_now += 1;
  EXPECT_FALSE(c->lookup(key_of(1)).has_value());
  // Storing again restarts its life.
  c->store(key_of(1), answer_of(1));
  c->flush();
  EXPECT_TRUE(c->lookup(key_of(1)).has_value());
  // A clock that went backwards (another host's skew) does not expire anything.
  g_fake_now -= 1000;
  EXPECT_TRUE(c->lookup(key_of(1)).has_value());
}

// Read-your-writes: an answer is served again the moment it was stored,
// before the writer commits it (the engine stores before it delivers the
// result, so a repeat submitted after the result always hits). Expiry holds
// for such entries too, and the newest of two stores of one key wins.
TEST_F(ResponseCacheTest, StoredEntriesAreServedBeforeTheirCommit) {
  ResponseCache::Options o;
  o.batch_delay_ms = 60000;  // the writer holds its batch until flush()
  o.now_unix_s = fake_now;
  g_fake_now = 1700000000;
  auto c = open(60, o);
  ASSERT_NE(c, nullptr);
  c->store(key_of(1), answer_of(1));
  c->store(key_of(2), answer_of(2));
  c->store(key_of(2), answer_of(3));
  auto one = c->lookup(key_of(1));
  ASSERT_TRUE(one.has_value());
  EXPECT_EQ(one->body, answer_of(1).body);
  EXPECT_EQ(one->http_status, answer_of(1).http_status);
  EXPECT_EQ(one->prompt_tokens, answer_of(1).prompt_tokens);
  auto two = c->lookup(key_of(2));
  ASSERT_TRUE(two.has_value());
  EXPECT_EQ(two->body, answer_of(3).body) << "the newest store of a key wins";
  EXPECT_FALSE(c->lookup(key_of(4)).has_value());
  EXPECT_EQ(c->stats().stored, 0u) << "nothing was committed yet: the hits came from the queue";
  g_fake_now += 60;
  EXPECT_FALSE(c->lookup(key_of(1)).has_value()) << "an uncommitted entry expires like a committed one";
  g_fake_now -= 60;
  c->flush();
  EXPECT_EQ(c->stats().stored, 3u);
  two = c->lookup(key_of(2));
  ASSERT_TRUE(two.has_value());
  EXPECT_EQ(two->body, answer_of(3).body);
  EXPECT_EQ(c->stats().hits, 3u);
  EXPECT_EQ(c->stats().misses, 2u);
}

TEST_F(ResponseCacheTest, TtlZeroNeverExpires) {
  ResponseCache::Options o;
  o.now_unix_s = fake_now;
  g_fake_now = 1700000000;
  auto c = open(0, o);
  ASSERT_NE(c, nullptr);
  c->store(key_of(1), answer_of(1));
  c->flush();
  g_fake_now += int64_t{10} * 365 * 86400;
  EXPECT_TRUE(c->lookup(key_of(1)).has_value());
}

TEST_F(ResponseCacheTest, EntriesExpireOnTheWallClock) {
  auto c = open(1);
  ASSERT_NE(c, nullptr);
  c->store(key_of(1), answer_of(1));
  c->flush();
  std::this_thread::sleep_for(1100ms);
  EXPECT_FALSE(c->lookup(key_of(1)).has_value());
  c.reset();
  // The same file under a long TTL still has it: expiry is a reading rule.
  c = open(3600);
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(c->lookup(key_of(1)).has_value());
}

TEST_F(ResponseCacheTest, ReopenAfterCloseKeepsEntries) {
  {
    auto c = open();
    ASSERT_NE(c, nullptr);
    for (int i = 0; i < 100; ++i) c->store(key_of(i), answer_of(i));
    c->flush();
  }
  auto c = open();
  ASSERT_NE(c, nullptr);
  for (int i = 0; i < 100; ++i) {
    auto got = c->lookup(key_of(i));
    ASSERT_TRUE(got.has_value()) << i;
    EXPECT_EQ(got->body, answer_of(i).body);
    EXPECT_EQ(got->completion_tokens, 2 * i);
  }
}

TEST_F(ResponseCacheTest, DestructorCommitsEverythingQueued) {
  constexpr int kN = 5000;
  {
    ResponseCache::Options o;
    o.batch_delay_ms = 60000;  // nothing would be written on time alone
    o.batch_entries = 100000;
    auto c = open(0, o);
    ASSERT_NE(c, nullptr);
    for (int i = 0; i < kN; ++i) c->store(key_of(i), answer_of(i));
    EXPECT_EQ(c->stats().stored, 0u);
  }
  auto c = open();
  ASSERT_NE(c, nullptr);
  for (int i = 0; i < kN; ++i) ASSERT_TRUE(c->lookup(key_of(i)).has_value()) << i;
}

TEST_F(ResponseCacheTest, WriterCommitsAfterTheBatchDelayWithoutFlush) {
  auto c = open();  // default: ~50 ms
  ASSERT_NE(c, nullptr);
  const auto t0 = std::chrono::steady_clock::now();
  c->store(key_of(1), answer_of(1));
  ASSERT_TRUE(eventually([&] { return c->stats().stored == 1; }));
  const auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(waited, 40ms);  // it did wait to gather a batch
  EXPECT_TRUE(c->lookup(key_of(1)).has_value());
}

TEST_F(ResponseCacheTest, WriterCommitsAFullBatchWithoutWaitingForTheDelay) {
  ResponseCache::Options o;
  o.batch_delay_ms = 60000;
  o.batch_entries = 100;
  auto c = open(0, o);
  ASSERT_NE(c, nullptr);
  for (int i = 0; i < 100; ++i) c->store(key_of(i), answer_of(i));
  EXPECT_TRUE(eventually([&] { return c->stats().stored == 100; }));
  c->store(key_of(100), answer_of(100));  // a partial batch waits for its delay
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(c->stats().stored, 100u);
  c->flush();
  EXPECT_EQ(c->stats().stored, 101u);
}

TEST_F(ResponseCacheTest, QueueFullDropsAndCounts) {
  ResponseCache::Options o;
  o.max_queue_entries = 8;
  o.busy_timeout_ms = 30000;
  auto c = open(0, o);
  ASSERT_NE(c, nullptr);
  // Another connection holds the write lock, so the writer cannot commit and
  // every accepted entry stays pending.
  RawDb other(path_);
  ASSERT_EQ(other.exec("BEGIN IMMEDIATE"), SQLITE_OK);
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 100; ++i) c->store(key_of(i), answer_of(i));
  // store() returned at once although the disk was unavailable.
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
  EXPECT_EQ(c->stats().dropped, 92u);
  EXPECT_EQ(c->stats().stored, 0u);
  ASSERT_EQ(other.exec("COMMIT"), SQLITE_OK);
  c->flush();
  const auto s = c->stats();
  EXPECT_EQ(s.stored, 8u);
  EXPECT_EQ(s.write_errors, 0u);
  for (int i = 0; i < 8; ++i) EXPECT_TRUE(c->lookup(key_of(i)).has_value()) << i;
  EXPECT_FALSE(c->lookup(key_of(8)).has_value());
  // Room again once committed.
  c->store(key_of(8), answer_of(8));
  c->flush();
  EXPECT_TRUE(c->lookup(key_of(8)).has_value());
  EXPECT_EQ(c->stats().dropped, 92u);
}

TEST_F(ResponseCacheTest, QueueByteBoundDropsWhatDoesNotFit) {
  ResponseCache::Options o;
  o.max_queue_bytes = 64 * 1024;
  auto c = open(0, o);
  ASSERT_NE(c, nullptr);
  CachedAnswer huge;
  huge.http_status = 200;
  huge.body.assign(64 * 1024, 'x');  // with its key it exceeds the bound alone
  c->store(key_of(1), huge);
  c->store(key_of(2), answer_of(2));
  c->store("", answer_of(3));  // no key: nothing to store under
  c->flush();
  EXPECT_FALSE(c->lookup(key_of(1)).has_value());
  EXPECT_TRUE(c->lookup(key_of(2)).has_value());
  const auto s = c->stats();
  EXPECT_EQ(s.dropped, 2u);
  EXPECT_EQ(s.stored, 1u);
}

TEST_F(ResponseCacheTest, FailedCommitCountsWriteErrorsAndRecovers) {
  ResponseCache::Options o;
  o.busy_timeout_ms = 20;
  auto c = open(0, o);
  ASSERT_NE(c, nullptr);
  {
    RawDb other(path_);
    ASSERT_EQ(other.exec("BEGIN IMMEDIATE"), SQLITE_OK);
    for (int i = 0; i < 5; ++i) c->store(key_of(i), answer_of(i));
    c->flush();  // returns: the batch failed after the busy timeout
    EXPECT_EQ(c->stats().write_errors, 5u);
    EXPECT_EQ(c->stats().stored, 0u);
    ASSERT_EQ(other.exec("ROLLBACK"), SQLITE_OK);
  }
  c->store(key_of(5), answer_of(5));
  c->flush();
  EXPECT_EQ(c->stats().stored, 1u);
  EXPECT_TRUE(c->lookup(key_of(5)).has_value());
  EXPECT_FALSE(c->lookup(key_of(0)).has_value());
}

TEST_F(ResponseCacheTest, ConcurrentLookupsWhileStoring) {
  constexpr int kN = 2000;
  ResponseCache::Options o;
  o.batch_delay_ms = 5;  // many small commits, so readers see the table grow
  auto c = open(0, o);
  ASSERT_NE(c, nullptr);
  std::atomic<bool> done{false};
  std::atomic<int> wrong{0};
  std::atomic<uint64_t> lookups{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t));
      while (!done.load()) {
        const int i = static_cast<int>(rng() % kN);
        auto got = c->lookup(key_of(i));
        lookups.fetch_add(1);
        if (got && (got->body != answer_of(i).body || got->prompt_tokens != i)) wrong.fetch_add(1);
      }
    });
  }
  std::thread writer([&] {
    for (int i = 0; i < kN; ++i) {
      c->store(key_of(i), answer_of(i));
      if (i % 100 == 0) std::this_thread::sleep_for(1ms);
    }
  });
  writer.join();
  c->flush();
  std::this_thread::sleep_for(20ms);  // readers also run against the complete table
  done = true;
  for (auto& r : readers) r.join();
  EXPECT_EQ(wrong.load(), 0);
  const auto s = c->stats();
  EXPECT_EQ(s.hits + s.misses, lookups.load());
  EXPECT_GT(s.hits, 0u);
  EXPECT_EQ(s.stored, static_cast<uint64_t>(kN));
  for (int i = 0; i < kN; ++i) ASSERT_TRUE(c->lookup(key_of(i)).has_value()) << i;
}

TEST_F(ResponseCacheTest, SecondInstanceOnTheSameFileSeesCommittedEntries) {
  auto a = open();
  auto b = open();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  a->store(key_of(1), answer_of(1));
  b->store(key_of(2), answer_of(2));
  a->flush();
  b->flush();
  EXPECT_TRUE(a->lookup(key_of(2)).has_value());
  EXPECT_TRUE(b->lookup(key_of(1)).has_value());
  // Both writing in bursts at once: the write lock is shared through busy_timeout.
  std::thread ta([&] {
    for (int i = 0; i < 2000; ++i) a->store(key_of(i, "a"), answer_of(i));
    a->flush();
  });
  std::thread tb([&] {
    for (int i = 0; i < 2000; ++i) b->store(key_of(i, "b"), answer_of(i));
    b->flush();
  });
  ta.join();
  tb.join();
  EXPECT_EQ(a->stats().write_errors + b->stats().write_errors, 0u);
  for (int i = 0; i < 2000; ++i) {
    ASSERT_TRUE(a->lookup(key_of(i, "b")).has_value()) << i;
    ASSERT_TRUE(b->lookup(key_of(i, "a")).has_value()) << i;
  }
}

// The other process of TwoProcessesShareOneFile: skipped unless spawned by it.
TEST(ResponseCacheChild, StoresForTheParent) {
  const char* path = std::getenv(kChildEnv);
  if (path == nullptr) GTEST_SKIP() << "runs only as the child of TwoProcessesShareOneFile";
  ResponseCache::Options o;
  o.batch_entries = 50;  // many transactions, to interleave with the parent's
  std::string err;
  auto c = ResponseCache::open(path, 0, o, &err);
  ASSERT_NE(c, nullptr) << err;
  for (int i = 0; i < kPerProcess; ++i) c->store(key_of(i, "child"), answer_of(i));
  c->flush();
  EXPECT_EQ(c->stats().stored, static_cast<uint64_t>(kPerProcess));
  EXPECT_EQ(c->stats().write_errors, 0u);
  for (int i = 0; i < kPerProcess; ++i) ASSERT_TRUE(c->lookup(key_of(i, "child")).has_value());
}

TEST_F(ResponseCacheTest, TwoProcessesShareOneFile) {
  ResponseCache::Options o;
  o.batch_entries = 50;
  auto c = open(0, o);
  ASSERT_NE(c, nullptr);

  std::vector<std::string> env_store;
  for (char** e = environ; *e != nullptr; ++e) env_store.emplace_back(*e);
  env_store.push_back(std::string(kChildEnv) + "=" + path_);
  std::vector<char*> envp;
  for (auto& s : env_store) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string exe = fs::read_symlink("/proc/self/exe").string();
  std::string filter = "--gtest_filter=ResponseCacheChild.StoresForTheParent";
  char* argv[] = {exe.data(), filter.data(), nullptr};
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, exe.c_str(), nullptr, nullptr, argv, envp.data()), 0);

  for (int i = 0; i < kPerProcess; ++i) c->store(key_of(i, "parent"), answer_of(i));
  c->flush();
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);

  EXPECT_EQ(c->stats().write_errors, 0u);
  for (int i = 0; i < kPerProcess; ++i) {
    ASSERT_TRUE(c->lookup(key_of(i, "parent")).has_value()) << i;
    auto got = c->lookup(key_of(i, "child"));
    ASSERT_TRUE(got.has_value()) << i;
    EXPECT_EQ(got->body, answer_of(i).body);
  }
}

TEST_F(ResponseCacheTest, FileIsInspectableAsTableResponses) {
  {
    auto c = open();
    ASSERT_NE(c, nullptr);
    c->store(key_of(7), answer_of(7));
  }
  RawDb raw(path_);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(raw.db,
                               "SELECT key, http_status, body, prompt_tokens, completion_tokens FROM responses",
                               -1, &st, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), key_of(7));
  EXPECT_EQ(sqlite3_column_int(st, 1), 200);
  EXPECT_EQ(std::string(static_cast<const char*>(sqlite3_column_blob(st, 2)),
                        static_cast<size_t>(sqlite3_column_bytes(st, 2))),
            answer_of(7).body);
  EXPECT_EQ(sqlite3_column_int64(st, 3), 7);
  EXPECT_EQ(sqlite3_column_int64(st, 4), 14);
  EXPECT_EQ(sqlite3_step(st), SQLITE_DONE);
  sqlite3_finalize(st);
  int64_t version = -1;
  ASSERT_EQ(sqlite3_prepare_v2(raw.db, "PRAGMA user_version", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  version = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  EXPECT_EQ(version, 1);
  ASSERT_EQ(sqlite3_prepare_v2(raw.db, "PRAGMA journal_mode", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), "wal");
  sqlite3_finalize(st);
}

TEST_F(ResponseCacheTest, NonDatabaseFileIsRefused) {
  {
    std::ofstream f(path_, std::ios::binary);
    for (int i = 0; i < 1000; ++i) f << "this is not an SQLite database, only text\n";
  }
  const auto size = fs::file_size(path_);
  const std::string err = open_error(path_);
  EXPECT_NE(err.find("not a database"), std::string::npos) << err;
  // And the file is left as it was, with no WAL beside it.
  EXPECT_EQ(fs::file_size(path_), size);
  EXPECT_FALSE(fs::exists(path_ + "-wal"));
}

TEST_F(ResponseCacheTest, DatabaseOfAnotherProgramIsRefusedAndUntouched) {
  {
    RawDb raw(path_);
    ASSERT_EQ(raw.exec("CREATE TABLE theirs (x INTEGER)"), SQLITE_OK);
  }
  const std::string err = open_error(path_);
  EXPECT_NE(err.find("not a barrage cache"), std::string::npos) << err;
  RawDb raw(path_);
  EXPECT_NE(raw.exec("SELECT 1 FROM responses"), SQLITE_OK);
}

TEST_F(ResponseCacheTest, NewerSchemaVersionIsRefused) {
  { auto c = open(); }
  {
    RawDb raw(path_);
    ASSERT_EQ(raw.exec("PRAGMA user_version = 2"), SQLITE_OK);
  }
  const std::string err = open_error(path_);
  EXPECT_NE(err.find("newer"), std::string::npos) << err;
}

TEST_F(ResponseCacheTest, UnusablePathsAreRefused) {
  EXPECT_NE(open_error(dir_ + "/no/such/dir/cache.db").find("cannot open"), std::string::npos);
  open_error(dir_);  // a directory
  open_error("");
  open_error(":memory:");
  EXPECT_EQ(ResponseCache::open(dir_ + "/no/such/dir/cache.db", 0, nullptr), nullptr);  // err may be null
}

TEST_F(ResponseCacheTest, EmptyExistingFileBecomesACache) {
  { std::ofstream f(path_); }
  auto c = open();
  ASSERT_NE(c, nullptr);
  c->store(key_of(1), answer_of(1));
  c->flush();
  EXPECT_TRUE(c->lookup(key_of(1)).has_value());
}

}  // namespace
}  // namespace barrage
