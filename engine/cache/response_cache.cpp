// ResponseCache on SQLite: opening with the schema and version check, the
// writer thread that commits queued entries in batches, and the pool of read
// connections that serves lookups from any thread.
#include "cache/response_cache.hpp"

#include <openssl/evp.h>
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <utility>

namespace barrage {
namespace {

// Inspect a cache with the sqlite3 CLI, e.g.
//   sqlite3 cache.db 'SELECT key, created_unix_s, http_status, length(body) FROM responses'
// user_version is the schema version; bump it (and migrate) when the table changes.
constexpr int64_t kSchemaVersion = 1;
// PRAGMA application_id 'BRGC': a database of another program is refused, never altered.
constexpr int64_t kApplicationId = 0x42524743;
// Bookkeeping added to key and body sizes, so a flood of tiny entries is bounded too.
constexpr size_t kEntryOverhead = 128;

// A rowid table with the key as a separate unique index, not WITHOUT ROWID:
// SQLite's own advice is WITHOUT ROWID only for rows under ~1/20 of a page,
// and answers are kilobytes. Measured with 100k 1 KiB bodies in 1,000-row
// transactions: WITHOUT ROWID inserted 4x slower (65 vs 16 us/row), read 3x
// slower (16 vs 5 us) and made a 3x larger file (461 vs 146 MiB), because
// random hash keys split its leaf pages that hold only ~3 rows each.
constexpr const char* kCreateSchema =
    "CREATE TABLE responses ("
    " key TEXT PRIMARY KEY NOT NULL,"  // ResponseCache::key(): 64 hex chars
    " created_unix_s INTEGER NOT NULL,"
    " http_status INTEGER NOT NULL,"
    " body BLOB NOT NULL,"
    " prompt_tokens INTEGER NOT NULL,"  // -1: unknown
    " completion_tokens INTEGER NOT NULL"
    ");";
constexpr const char* kInsert =
    "INSERT OR REPLACE INTO responses"
    " (key, created_unix_s, http_status, body, prompt_tokens, completion_tokens)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
constexpr const char* kSelect =
    "SELECT created_unix_s, http_status, body, prompt_tokens, completion_tokens"
    " FROM responses WHERE key = ?1";

// Messages carry no path: the caller (the engine) names the file it opened.
std::string db_error(sqlite3* db, const std::string& what) {
  std::string s = what;
  if (db != nullptr) {
    s += ": ";
    s += sqlite3_errmsg(db);
  }
  return s;
}

// First column of the first row of sql (0 if no row).
int query_int(sqlite3* db, const char* sql, int64_t* out) {
  sqlite3_stmt* st = nullptr;
  int rc = sqlite3_prepare_v2(db, sql, -1, &st, nullptr);
  if (rc != SQLITE_OK) return rc;
  rc = sqlite3_step(st);
  *out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  if (rc == SQLITE_ROW || rc == SQLITE_DONE) rc = SQLITE_OK;
  sqlite3_finalize(st);
  return rc;
}

int query_text(sqlite3* db, const char* sql, std::string* out) {
  sqlite3_stmt* st = nullptr;
  int rc = sqlite3_prepare_v2(db, sql, -1, &st, nullptr);
  if (rc != SQLITE_OK) return rc;
  rc = sqlite3_step(st);
  out->clear();
  if (rc == SQLITE_ROW) {
    const unsigned char* t = sqlite3_column_text(st, 0);
    if (t != nullptr) out->assign(reinterpret_cast<const char*>(t));
  }
  if (rc == SQLITE_ROW || rc == SQLITE_DONE) rc = SQLITE_OK;
  sqlite3_finalize(st);
  return rc;
}

// NOMUTEX: each connection is used by one thread at a time (the writer
// thread, or a lookup holding it from the reader pool), so SQLite's own
// per-connection mutex would only add cost.
sqlite3* open_connection(const std::string& path, int flags, int busy_timeout_ms, std::string* err) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, flags | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
    *err = db_error(db, "cannot open");
    sqlite3_close(db);
    return nullptr;
  }
  sqlite3_busy_timeout(db, busy_timeout_ms);
  // SQLite silently falls back to read-only for a write-protected file; a
  // cache that cannot store is a misconfiguration worth reporting.
  if (sqlite3_db_readonly(db, "main") == 1) {
    *err = "file is read-only";
    sqlite3_close(db);
    return nullptr;
  }
  return db;
}

// Creates the schema in a fresh file or checks an existing one. Runs in one
// IMMEDIATE transaction so two processes creating the same file at once
// serialise on the write lock and the second sees the first one's schema.
bool prepare_schema(sqlite3* db, std::string* err) {
  if (sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) {
    *err = db_error(db, "cannot lock for the schema check");
    return false;
  }
  int64_t app_id = 0, version = 0, objects = 0;
  bool ok = query_int(db, "PRAGMA application_id", &app_id) == SQLITE_OK &&
            query_int(db, "PRAGMA user_version", &version) == SQLITE_OK &&
            query_int(db, "SELECT count(*) FROM sqlite_master", &objects) == SQLITE_OK;
  if (!ok) {
    *err = db_error(db, "cannot read the schema");
  } else if (app_id == 0 && version == 0 && objects == 0) {
    const std::string create = std::string(kCreateSchema) +
                               "PRAGMA application_id = " + std::to_string(kApplicationId) +
                               "; PRAGMA user_version = " + std::to_string(kSchemaVersion) + ";";
    ok = sqlite3_exec(db, create.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK;
    if (!ok) *err = db_error(db, "cannot create the schema");
  } else if (app_id != kApplicationId) {
    ok = false;
    *err = "not a barrage cache (application_id " + std::to_string(app_id) + ", " +
           std::to_string(objects) + " schema objects)";
  } else if (version != kSchemaVersion) {
    ok = false;
    *err = "schema version " + std::to_string(version) +
           (version > kSchemaVersion ? " is newer than" : " is not") + " this build's (" +
           std::to_string(kSchemaVersion) + ")";
  }
  if (ok && sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
    ok = false;
    *err = db_error(db, "cannot commit the schema");
  }
  if (!ok) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
  return ok;
}

}  // namespace

struct ResponseCache::Reader {
  sqlite3* db = nullptr;
  sqlite3_stmt* select = nullptr;

  Reader() = default;
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;
  ~Reader() {
    sqlite3_finalize(select);
    sqlite3_close(db);
  }

  static std::unique_ptr<Reader> open(const std::string& path, int busy_timeout_ms, std::string* err) noexcept {
    try {
      auto r = std::make_unique<Reader>();
      r->db = open_connection(path, SQLITE_OPEN_READWRITE, busy_timeout_ms, err);
      if (r->db == nullptr) return nullptr;
      // Guards against a stray write from the read side, which would take
      // the database write lock away from the writer thread.
      sqlite3_exec(r->db, "PRAGMA query_only = 1", nullptr, nullptr, nullptr);
      if (sqlite3_prepare_v3(r->db, kSelect, -1, SQLITE_PREPARE_PERSISTENT, &r->select, nullptr) != SQLITE_OK) {
        *err = db_error(r->db, "cannot prepare the lookup");
        return nullptr;
      }
      return r;
    } catch (...) {
      *err = "out of memory";
      return nullptr;
    }
  }
};

std::unique_ptr<ResponseCache> ResponseCache::open(const std::string& path, int64_t ttl_s, std::string* err) {
  return open(path, ttl_s, Options{}, err);
}

std::unique_ptr<ResponseCache> ResponseCache::open(const std::string& path, int64_t ttl_s,
                                                   const Options& options, std::string* err) {
  std::string scratch;
  if (err == nullptr) err = &scratch;
  // Each connection of an in-memory database would see its own empty
  // database, and a temporary one ("") lives in one connection only.
  if (path.empty() || path == ":memory:") {
    *err = "the cache path must name a file";
    return nullptr;
  }
  try {
    std::unique_ptr<ResponseCache> c(new ResponseCache(path, ttl_s, options));
    c->write_db_ = open_connection(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                                   c->options_.busy_timeout_ms, err);
    if (c->write_db_ == nullptr) return nullptr;
    // The first read of the file happens here, so a file that is not a
    // database is reported by this statement.
    std::string mode;
    if (query_text(c->write_db_, "PRAGMA journal_mode = WAL", &mode) != SQLITE_OK) {
      *err = db_error(c->write_db_, "cannot set WAL mode");
      return nullptr;
    }
    if (mode != "wal") {
      *err = "WAL mode unavailable (journal_mode " + mode + ")";
      return nullptr;
    }
    // NORMAL in WAL mode: a power cut may lose the last commits but never
    // corrupts the file, which is all a cache needs.
    sqlite3_exec(c->write_db_, "PRAGMA synchronous = NORMAL", nullptr, nullptr, nullptr);
    if (!prepare_schema(c->write_db_, err)) return nullptr;
    if (sqlite3_prepare_v3(c->write_db_, kInsert, -1, SQLITE_PREPARE_PERSISTENT, &c->insert_, nullptr) !=
        SQLITE_OK) {
      *err = db_error(c->write_db_, "cannot prepare the insert");
      return nullptr;
    }
    // One read connection now, so a problem on the read side shows at open.
    std::unique_ptr<Reader> r = Reader::open(path, c->options_.busy_timeout_ms, err);
    if (!r) return nullptr;
    c->idle_readers_.push_back(r.get());
    c->readers_.push_back(std::move(r));
    c->writer_ = std::thread([p = c.get()] { p->writer_main(); });
    return c;
  } catch (const std::exception& e) {
    *err = e.what();
    return nullptr;
  }
}

ResponseCache::ResponseCache(std::string path, int64_t ttl_s, const Options& options)
    : path_(std::move(path)), ttl_s_(ttl_s > 0 ? ttl_s : 0), options_([&] {
        Options o = options;
        o.max_readers = std::max<size_t>(o.max_readers, 1);
        o.batch_entries = std::max<size_t>(o.batch_entries, 1);
        o.batch_delay_ms = std::max(o.batch_delay_ms, 0);
        return o;
      }()) {
  // Reserved so that the reader pool never allocates under its lock.
  readers_.reserve(options_.max_readers);
  idle_readers_.reserve(options_.max_readers);
}

ResponseCache::~ResponseCache() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  work_cv_.notify_one();
  if (writer_.joinable()) writer_.join();
  idle_readers_.clear();
  readers_.clear();
  // The writer connection closes last: the last connection to close
  // checkpoints the WAL into the main file and removes it.
  sqlite3_finalize(insert_);
  sqlite3_close(write_db_);
}

std::string ResponseCache::key(std::string_view method, std::string_view url, std::string_view body) {
  // Fetched once: OpenSSL 3's implicit fetch through EVP_sha256() takes a
  // lock and a property query on every init.
  static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  const char sep = '\0';
  const bool ok = sha256 != nullptr && ctx != nullptr && EVP_DigestInit_ex(ctx, sha256, nullptr) == 1 &&
                  EVP_DigestUpdate(ctx, method.data(), method.size()) == 1 &&
                  EVP_DigestUpdate(ctx, &sep, 1) == 1 && EVP_DigestUpdate(ctx, url.data(), url.size()) == 1 &&
                  EVP_DigestUpdate(ctx, &sep, 1) == 1 && EVP_DigestUpdate(ctx, body.data(), body.size()) == 1 &&
                  EVP_DigestFinal_ex(ctx, md, &len) == 1 && len == 32;
  EVP_MD_CTX_free(ctx);
  if (!ok) return {};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(64, '\0');
  for (unsigned i = 0; i < 32; ++i) {
    out[2 * i] = kHex[md[i] >> 4];
    out[2 * i + 1] = kHex[md[i] & 15];
  }
  return out;
}

int64_t ResponseCache::now_unix_s() const noexcept {
  if (options_.now_unix_s != nullptr) return options_.now_unix_s();
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

size_t ResponseCache::entry_bytes(const Entry& e) noexcept {
  return e.key.size() + e.answer.body.size() + kEntryOverhead;
}

ResponseCache::Reader* ResponseCache::acquire_reader() noexcept {
  std::unique_lock lk(readers_mu_);
  for (;;) {
    if (!idle_readers_.empty()) {
      Reader* r = idle_readers_.back();
      idle_readers_.pop_back();
      return r;
    }
    if (readers_.size() + readers_opening_ < options_.max_readers) break;
    readers_cv_.wait(lk);
  }
  // Opening reads the file: do it outside the lock so other lookups go on.
  ++readers_opening_;
  lk.unlock();
  std::string err;
  std::unique_ptr<Reader> r = Reader::open(path_, options_.busy_timeout_ms, &err);
  lk.lock();
  --readers_opening_;
  if (!r) {
    readers_cv_.notify_one();  // the slot this call reserved is free again
    return nullptr;
  }
  Reader* raw = r.get();
  readers_.push_back(std::move(r));  // within the reserved capacity: no allocation
  return raw;
}

void ResponseCache::release_reader(Reader* r) noexcept {
  {
    std::lock_guard lk(readers_mu_);
    idle_readers_.push_back(r);  // within the reserved capacity: no allocation
  }
  readers_cv_.notify_one();
}

std::optional<CachedAnswer> ResponseCache::lookup(const std::string& key) noexcept {
  std::optional<CachedAnswer> out;
  {
    std::lock_guard lk(mu_);
    auto it = unsettled_.find(std::string_view(key));
    if (it != unsettled_.end() && (ttl_s_ == 0 || now_unix_s() - it->second->created_unix_s < ttl_s_)) {
      try {
        out = it->second->answer;
      } catch (...) {
        out.reset();
      }
    }
  }
  if (out) {
    hits_.fetch_add(1, std::memory_order_relaxed);
    return out;
  }
  Reader* r = key.empty() || key.size() > INT_MAX ? nullptr : acquire_reader();
  if (r != nullptr) {
    sqlite3_stmt* st = r->select;
    if (sqlite3_bind_text(st, 1, key.data(), static_cast<int>(key.size()), SQLITE_STATIC) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
      // 128-bit so a nonsense created value (edited by hand) cannot overflow.
      const __int128 age = static_cast<__int128>(now_unix_s()) - sqlite3_column_int64(st, 0);
      if (ttl_s_ == 0 || age < ttl_s_) {
        try {
          CachedAnswer a;
          a.http_status = sqlite3_column_int(st, 1);
          // column_blob before column_bytes, as SQLite asks; a zero-length blob comes back as NULL.
          const void* p = sqlite3_column_blob(st, 2);
          const int n = sqlite3_column_bytes(st, 2);
          if (p != nullptr && n > 0) a.body.assign(static_cast<const char*>(p), static_cast<size_t>(n));
          a.prompt_tokens = sqlite3_column_int64(st, 3);
          a.completion_tokens = sqlite3_column_int64(st, 4);
          out = std::move(a);
        } catch (...) {
          out.reset();
        }
      }
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    release_reader(r);
  }
  (out ? hits_ : misses_).fetch_add(1, std::memory_order_relaxed);
  return out;
}

void ResponseCache::store(std::string key, CachedAnswer answer) noexcept {
  if (key.empty()) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  try {
    // Declared before the lock, so a dropped entry is freed after unlocking.
    Entry e{std::move(key), std::move(answer), now_unix_s()};
    const size_t bytes = entry_bytes(e);
    std::unique_lock lk(mu_);
    if (stop_ || pending_entries_ >= options_.max_queue_entries ||
        bytes > options_.max_queue_bytes - std::min(pending_bytes_, options_.max_queue_bytes)) {
      lk.unlock();
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    const bool was_empty = queue_.empty();
    if (was_empty) oldest_at_ = std::chrono::steady_clock::now();
    queue_.push_back(std::move(e));
    try {
      unsettled_.insert_or_assign(std::string_view(queue_.back().key), &queue_.back());
    } catch (...) {
      queue_.pop_back();
      throw;
    }
    ++pending_entries_;
    pending_bytes_ += bytes;
    ++accepted_seq_;
    // The writer sleeps until the first entry arrives, then until the batch
    // delay ends; only these two events can shorten its sleep.
    const bool wake = was_empty || queue_.size() == options_.batch_entries;
    lk.unlock();
    if (wake) work_cv_.notify_one();
  } catch (...) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
  }
}

void ResponseCache::flush() noexcept {
  std::unique_lock lk(mu_);
  const uint64_t target = accepted_seq_;
  if (done_seq_ >= target) return;
  ++flush_waiters_;
  work_cv_.notify_one();
  done_cv_.wait(lk, [&] { return done_seq_ >= target; });
  --flush_waiters_;
}

ResponseCache::Stats ResponseCache::stats() const noexcept {
  return Stats{hits_.load(std::memory_order_relaxed), misses_.load(std::memory_order_relaxed),
               stored_.load(std::memory_order_relaxed), dropped_.load(std::memory_order_relaxed),
               write_errors_.load(std::memory_order_relaxed)};
}

void ResponseCache::writer_main() noexcept {
  std::deque<Entry> batch;
  std::unique_lock lk(mu_);
  for (;;) {
    if (queue_.empty()) {
      if (stop_) return;
      work_cv_.wait(lk);
      continue;
    }
    const auto deadline = oldest_at_ + std::chrono::milliseconds(options_.batch_delay_ms);
    work_cv_.wait_until(lk, deadline, [&] {
      return stop_ || flush_waiters_ > 0 || queue_.size() >= options_.batch_entries;
    });
    batch.swap(queue_);
    lk.unlock();
    for (auto it = batch.begin(); it != batch.end();) {
      const auto end = it + static_cast<std::ptrdiff_t>(
                                std::min<size_t>(options_.batch_entries, static_cast<size_t>(batch.end() - it)));
      const size_t n = static_cast<size_t>(end - it);
      size_t bytes = 0;
      for (auto p = it; p != end; ++p) bytes += entry_bytes(*p);
      const size_t ok = write_batch(it, end);
      stored_.fetch_add(ok, std::memory_order_relaxed);
      write_errors_.fetch_add(n - ok, std::memory_order_relaxed);
      // Committed (or failed): lookups read the file from now on.
      lk.lock();
      for (auto p = it; p != end; ++p) {
        auto u = unsettled_.find(std::string_view(p->key));
        if (u != unsettled_.end() && u->second == &*p) unsettled_.erase(u);
      }
      lk.unlock();
      // Free the bodies before announcing the room, so the byte bound holds
      // for memory, not just for the queue.
      for (auto p = it; p != end; ++p) {
        std::string().swap(p->key);
        std::string().swap(p->answer.body);
      }
      lk.lock();
      pending_entries_ -= n;
      pending_bytes_ -= bytes;
      done_seq_ += n;
      const bool wake = flush_waiters_ > 0;
      lk.unlock();
      if (wake) done_cv_.notify_all();
      it = end;
    }
    batch.clear();
    lk.lock();
  }
}

size_t ResponseCache::write_batch(std::deque<Entry>::iterator begin, std::deque<Entry>::iterator end) noexcept {
  if (sqlite3_exec(write_db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) return 0;
  size_t ok = 0;
  for (auto p = begin; p != end; ++p) {
    const std::string& body = p->answer.body;
    sqlite3_bind_text64(insert_, 1, p->key.data(), p->key.size(), SQLITE_STATIC, SQLITE_UTF8);
    sqlite3_bind_int64(insert_, 2, p->created_unix_s);
    sqlite3_bind_int(insert_, 3, p->answer.http_status);
    // Never a NULL pointer: SQLite would store NULL instead of an empty blob.
    sqlite3_bind_blob64(insert_, 4, body.empty() ? "" : body.data(), body.size(), SQLITE_STATIC);
    sqlite3_bind_int64(insert_, 5, p->answer.prompt_tokens);
    sqlite3_bind_int64(insert_, 6, p->answer.completion_tokens);
    const int rc = sqlite3_step(insert_);
    sqlite3_reset(insert_);
    if (rc == SQLITE_DONE) {
      ++ok;
      continue;
    }
    // An entry too big for SQLite fails alone; anything else (I/O error,
    // full disk) leaves the transaction in doubt, so all of it is given up.
    if ((rc & 0xff) == SQLITE_TOOBIG) continue;
    sqlite3_clear_bindings(insert_);
    sqlite3_exec(write_db_, "ROLLBACK", nullptr, nullptr, nullptr);
    return 0;
  }
  sqlite3_clear_bindings(insert_);
  if (sqlite3_exec(write_db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
    sqlite3_exec(write_db_, "ROLLBACK", nullptr, nullptr, nullptr);
    return 0;
  }
  return ok;
}

}  // namespace barrage
