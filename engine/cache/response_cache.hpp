// The response cache: answers already paid for, kept in one SQLite file
// (WAL mode, table `responses`) so a rerun or a second process gets them
// again without a request. Reads are point lookups from any thread; writes
// never touch the disk on the caller's thread but go to one writer thread
// that commits them in batches, because the reactor must never block on I/O.
// Lookups also see stored entries the writer has not committed yet, so an
// answer is served again as soon as its result was delivered.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

struct sqlite3;
struct sqlite3_stmt;

namespace barrage {

struct CachedAnswer {
  int http_status = 0;
  std::string body;
  int64_t prompt_tokens = -1, completion_tokens = -1;
};

class ResponseCache {
 public:
  // Tuning and test hooks; the defaults are what open(path, ttl_s, err) uses.
  struct Options {
    size_t max_queue_entries = 100000;            // queued + being written
    size_t max_queue_bytes = size_t{256} << 20;   // key + body + overhead, same scope
    size_t batch_entries = 1000;                  // one transaction at most this many
    int batch_delay_ms = 50;                      // the oldest queued entry waits at most this
    int busy_timeout_ms = 5000;                   // another process holding the write lock
    size_t max_readers = 8;                       // read connections, opened on demand
    int64_t (*now_unix_s)() = nullptr;            // clock for created/expiry; nullptr = wall clock
  };

  // Opens (creates) the SQLite file in WAL mode with a schema version check;
  // nullptr and *err on failure (unwritable path, not a database, a database
  // of another application, newer schema). ttl_s 0 = entries never expire.
  // Blocking file I/O: call it at start-up, not on the reactor thread.
  static std::unique_ptr<ResponseCache> open(const std::string& path, int64_t ttl_s, std::string* err);
  static std::unique_ptr<ResponseCache> open(const std::string& path, int64_t ttl_s, const Options& options,
                                             std::string* err);
  // Commits everything queued, stops the writer thread. No lookup or store
  // may be running on another thread.
  ~ResponseCache();
  ResponseCache(const ResponseCache&) = delete;
  ResponseCache& operator=(const ResponseCache&) = delete;

  // SHA-256 over method, '\0', url, '\0', body as 64 lowercase hex chars.
  // method and url come from C strings, so the separators make the encoding
  // unambiguous. "" only if OpenSSL fails, which lookup/store treat as a miss/drop.
  static std::string key(std::string_view method, std::string_view url, std::string_view body);

  // Any thread. Entries stored but not committed yet first (under the queue's
  // mutex), then a point read on one of a small pool of read connections;
  // entries whose age in whole seconds is >= ttl_s are misses, so nothing is
  // served later than ttl_s after it was stored. Errors count as misses.
  std::optional<CachedAnswer> lookup(const std::string& key) noexcept;
  // Any thread, never blocks on disk (only on a mutex held for O(1) work):
  // queues the entry, stamped now, for the writer thread. When the queue is
  // full the entry is dropped and counted; a cache may forget, never stall.
  void store(std::string key, CachedAnswer answer) noexcept;
  // Blocks until every entry queued before the call is committed (or failed).
  void flush() noexcept;

  // After flush(), every store() is counted exactly once in stored (committed),
  // dropped (queue full, empty key, out of memory) or write_errors (its
  // transaction failed). lookup() counts hits or misses.
  struct Stats {
    uint64_t hits, misses, stored, dropped, write_errors;
  };
  Stats stats() const noexcept;

 private:
  struct Entry {
    std::string key;
    CachedAnswer answer;
    int64_t created_unix_s;
  };
  struct Reader;

  ResponseCache(std::string path, int64_t ttl_s, const Options& options);
  int64_t now_unix_s() const noexcept;
  static size_t entry_bytes(const Entry& e) noexcept;

  Reader* acquire_reader() noexcept;
  void release_reader(Reader* r) noexcept;
  void writer_main() noexcept;
  // Commits entries [begin, end) in one transaction; returns how many were committed.
  size_t write_batch(std::deque<Entry>::iterator begin, std::deque<Entry>::iterator end) noexcept;

  const std::string path_;
  const int64_t ttl_s_;
  const Options options_;

  // Writer side: the connection and statement belong to the writer thread
  // once it runs.
  sqlite3* write_db_ = nullptr;
  sqlite3_stmt* insert_ = nullptr;
  std::thread writer_;

  // The queue. pending_* count entries from store() until their commit ends,
  // so the bound covers the batch being written too.
  std::mutex mu_;
  std::condition_variable work_cv_;   // writer waits for entries / flush / stop
  std::condition_variable done_cv_;   // flush() waits for done_seq_
  std::deque<Entry> queue_;
  std::chrono::steady_clock::time_point oldest_at_{};
  size_t pending_entries_ = 0;
  size_t pending_bytes_ = 0;
  uint64_t accepted_seq_ = 0;
  uint64_t done_seq_ = 0;
  int flush_waiters_ = 0;
  bool stop_ = false;
  // Every entry from store() until its commit ended (in queue_ or in the
  // writer's batch; deque elements do not move), the newest per key. The
  // writer reads those entries unlocked, so it erases them here before it
  // frees their strings.
  std::unordered_map<std::string_view, const Entry*> unsettled_;

  // Read connections: created on demand up to max_readers, reused LIFO.
  std::mutex readers_mu_;
  std::condition_variable readers_cv_;
  std::vector<std::unique_ptr<Reader>> readers_;
  std::vector<Reader*> idle_readers_;
  size_t readers_opening_ = 0;

  std::atomic<uint64_t> hits_{0}, misses_{0}, stored_{0}, dropped_{0}, write_errors_{0};
};

}  // namespace barrage
