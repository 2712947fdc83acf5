#pragma once
// SQLite access: one Database per thread (connections are not shared), prepared statements
// cached per connection, WAL mode, busy timeout, and write transactions that are retried as a
// whole when another process holds the write lock, so SQLITE_BUSY never escapes to callers.
#include <sqlite3.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>

namespace feedpipe {

class DbError : public std::runtime_error {
 public:
  DbError(int code, const std::string& message) : std::runtime_error(message), code_(code) {}
  int code() const { return code_; }
  bool busy() const { return (code_ & 0xff) == SQLITE_BUSY || (code_ & 0xff) == SQLITE_LOCKED; }

 private:
  int code_;
};

// A prepared statement (owned by its Database's cache). Bind with 1-based indexes, step, read
// columns with 0-based indexes. Reset when it goes out of scope: a statement left mid-row would
// keep its connection's read snapshot open, and a later write transaction on that connection
// would then fail with SQLITE_BUSY_SNAPSHOT forever.
class Statement {
 public:
  explicit Statement(sqlite3_stmt* stmt) : stmt_(stmt) {}
  Statement(Statement&& other) noexcept : stmt_(other.stmt_) { other.stmt_ = nullptr; }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement() {
    if (stmt_) sqlite3_reset(stmt_);
  }
  Statement& bind(int i, int64_t v);
  Statement& bind(int i, int v) { return bind(i, static_cast<int64_t>(v)); }
  Statement& bind(int i, double v);
  Statement& bind(int i, std::string_view v);
  Statement& bind(int i, const char* v) { return bind(i, std::string_view(v)); }
  Statement& bind(int i, const std::string& v) { return bind(i, std::string_view(v)); }
  Statement& bind_null(int i);
  // Binds NULL for an empty string.
  Statement& bind_text_or_null(int i, std::string_view v);
  // The same without copying the text: the caller keeps it alive and unchanged until the
  // statement has been stepped (the writers' hot path, where item text is most of the bytes).
  Statement& bind_text_or_null_unowned(int i, std::string_view v);
  template <typename T>
  Statement& bind(int i, const std::optional<T>& v) { return v ? bind(i, *v) : bind_null(i); }

  bool step();  // true while a row is available
  void run();   // steps to completion
  int64_t int64(int col) const { return sqlite3_column_int64(stmt_, col); }
  std::string text(int col) const;
  bool is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  void reset();

 private:
  sqlite3_stmt* stmt_;
};

class Database {
 public:
  // Opens (creating if needed) the file, sets WAL, synchronous=NORMAL, busy timeout, foreign keys.
  explicit Database(const std::string& path, int busy_timeout_ms = 5000);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  void exec(std::string_view sql);
  // This connection's page cache (SQLite's default is 2 MiB per connection). Every thread has a
  // connection, and each cache fills up over hours: most keep a small one; a consumer's fetch
  // loop (one lookup per job) and the writers keep more.
  static constexpr int kDefaultCacheKib = 64;
  static constexpr int kConsumerCacheKib = 256;
  static constexpr int kWriterCacheKib = 2048;
  void set_cache_kib(int kib);
  // A cached prepared statement, reset and with bindings cleared.
  Statement prepare(const std::string& sql);
  // The same for SQL text that does not change, usually a literal: its cache entry is found by
  // address (checked against the statement's text), without copying and hashing the text.
  Statement prepare(const char* sql);
  int64_t last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }
  int changes() const { return sqlite3_changes(db_); }

  // Runs `body` inside BEGIN IMMEDIATE … COMMIT. When the database is busy the whole body is
  // rolled back and run again (with backoff) so a concurrent writer never fails a caller;
  // any other exception rolls back and propagates.
  //
  // A commit can leave a checkpoint due (see kCheckpointPages), which write() runs once it has
  // handed the turn on. A caller with something more urgent to do first (publishing the jobs or
  // events it has just committed) passes DueCheckpoint::leave and calls run_due_checkpoint() after;
  // if it never does, this connection's next write() runs it.
  enum class DueCheckpoint { run, leave };
  void write(const std::function<void()>& body, DueCheckpoint due = DueCheckpoint::run);
  void run_due_checkpoint() {
    if (checkpoint_due_) checkpoint();
  }
  // Runs `body` in a read transaction (one consistent snapshot).
  void read(const std::function<void()>& body);

  const std::string& path() const { return path_; }
  sqlite3* handle() { return db_; }
  static uint64_t busy_retries();  // process-wide count of retried write transactions
  // Process-wide time spent waiting for a lock another connection held (another process's writer,
  // mostly): SQLite's busy handler.
  static double busy_wait_seconds();

  // SQLite's automatic checkpoint, paced by the WAL's growth and moved out of the write turn. A
  // commit that leaves the WAL kCheckpointPages past the size at which this process last
  // checkpointed it (or past its start) is followed by a PASSIVE checkpoint, which write() runs once
  // it has handed the turn on, so the process's next writer does not wait for it. (SQLite's own
  // runs after every commit once the WAL holds 1,000 pages. A PASSIVE checkpoint leaves the frames
  // a reader still uses, so with readers coming and going the WAL seldom started over, and nearly
  // every commit was followed by a checkpoint and its fdatasync.)
  // Past kCheckpointInTurnPages (checkpoints that ran beside writes could not finish, and the WAL only
  // starts over once one has) the checkpoint runs within the turn, as SQLite's own does; the WAL
  // can still pass that limit by what other writers commit while a checkpoint outside the turn runs.
  static constexpr int kCheckpointPages = 1000;  // SQLite's default wal_autocheckpoint
  static constexpr int kCheckpointInTurnPages = 4 * kCheckpointPages;
  static uint64_t checkpoints();  // process-wide count of checkpoints run

 private:
  static int on_wal_commit(void* self, sqlite3* db, const char* schema, int wal_pages);
  // SQLite's busy handler. Its own (sqlite3_busy_timeout) sleeps 1, 2, 5, 10 … up to 100 ms
  // between tries, so a writer of one process kept sleeping for milliseconds after another
  // process's writer had committed. This one polls at 50 µs, doubling to 1 ms, until busy_timeout_.
  static int on_busy(void* self, int attempts_before);
  void checkpoint();
  void write_in_turn(const std::function<void()>& body);

  std::string path_;
  struct SharedFile;  // what this process's connections to one file share
  static SharedFile& shared_file(const std::string& path);
  SharedFile* shared_ = nullptr;  // of path_
  sqlite3* db_ = nullptr;
  bool in_write_turn_ = false;
  bool checkpoint_due_ = false;
  std::chrono::milliseconds busy_timeout_{0};
  std::chrono::steady_clock::time_point busy_since_;
  sqlite3_stmt* cached_statement(const std::string& sql);

  std::unordered_map<std::string, sqlite3_stmt*> statements_;
  std::unordered_map<const char*, sqlite3_stmt*> statements_by_address_;
};

// A soft bound on the memory of every SQLite connection of the process together (page caches
// first give pages back). 0: none, each connection's cache is bounded on its own (set_cache_kib);
// then SQLite keeps no memory statistics, which must be decided before the first connection opens.
void set_sqlite_memory_limit(int64_t bytes);

}  // namespace feedpipe
