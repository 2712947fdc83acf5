#include "common/db.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <thread>

namespace feedpipe {
namespace {

std::atomic<uint64_t> g_busy_retries{0};
std::atomic<uint64_t> g_checkpoints{0};
std::atomic<uint64_t> g_busy_wait_us{0};

}  // namespace

struct Database::SharedFile {
  // Writers of one process take turns on a mutex per database file before they ask SQLite for the
  // write lock. SQLite's own wait is a sleep in steps of up to 100 ms, so a writer that lost the
  // race slept on after the winner committed: the two writers of a standalone process left the
  // file idle between their transactions. Other processes still meet at SQLite's lock, where
  // on_busy waits in shorter steps than SQLite's own.
  std::mutex write_turn;
  // The WAL's size in pages when a connection last decided to checkpoint it (see on_wal_commit).
  std::atomic<int> checkpointed_at_pages{0};
};

Database::SharedFile& Database::shared_file(const std::string& path) {
  static std::mutex registry_mu;
  static std::map<std::string, std::unique_ptr<Database::SharedFile>> files;
  std::lock_guard lock(registry_mu);
  auto& file = files[path];
  if (!file) file = std::make_unique<Database::SharedFile>();
  return *file;
}

namespace {

[[noreturn]] void throw_error(sqlite3* db, int rc, std::string_view what) {
  throw DbError(rc, std::string(what) + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
}

void check(sqlite3* db, int rc, std::string_view what) {
  if (rc != SQLITE_OK) throw_error(db, rc, what);
}

}  // namespace

Statement& Statement::bind(int i, int64_t v) {
  check(sqlite3_db_handle(stmt_), sqlite3_bind_int64(stmt_, i, v), "bind");
  return *this;
}
Statement& Statement::bind(int i, double v) {
  check(sqlite3_db_handle(stmt_), sqlite3_bind_double(stmt_, i, v), "bind");
  return *this;
}
Statement& Statement::bind(int i, std::string_view v) {
  check(sqlite3_db_handle(stmt_),
        sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT), "bind");
  return *this;
}
Statement& Statement::bind_null(int i) {
  check(sqlite3_db_handle(stmt_), sqlite3_bind_null(stmt_, i), "bind");
  return *this;
}
Statement& Statement::bind_text_or_null(int i, std::string_view v) {
  return v.empty() ? bind_null(i) : bind(i, v);
}
Statement& Statement::bind_text_or_null_unowned(int i, std::string_view v) {
  if (v.empty()) return bind_null(i);
  check(sqlite3_db_handle(stmt_),
        sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC), "bind");
  return *this;
}

bool Statement::step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  sqlite3* db = sqlite3_db_handle(stmt_);
  std::string sql = sqlite3_sql(stmt_) ? sqlite3_sql(stmt_) : "";
  sqlite3_reset(stmt_);
  throw_error(db, rc, "SQL failed (" + sql.substr(0, 80) + ")");
}

void Statement::run() {
  while (step()) {
  }
}

std::string Statement::text(int col) const {
  auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
  return p ? std::string(p, sqlite3_column_bytes(stmt_, col)) : std::string();
}

void Statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

void set_sqlite_memory_limit(int64_t bytes) {
  if (bytes > 0) {
    sqlite3_soft_heap_limit64(bytes);
    return;
  }
  // No limit: SQLite need not keep memory statistics, whose one global mutex every allocation of
  // every connection took (a few per cent of each thread's time, much of it waiting on the others).
  if (sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) != SQLITE_OK)
    spdlog::warn("SQLite memory statistics stay on: configured after the first connection opened");
}

Database::Database(const std::string& path, int busy_timeout_ms) : path_(path), shared_(&shared_file(path)) {
  int rc = sqlite3_open_v2(path.c_str(), &db_,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = "cannot open database " + path + ": " +
                      (db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc));
    sqlite3_close(db_);
    throw DbError(rc, msg);
  }
  busy_timeout_ = std::chrono::milliseconds(busy_timeout_ms);
  sqlite3_busy_handler(db_, &Database::on_busy, this);
  // Switching to WAL needs a moment of exclusive access; retry while another process opens it.
  for (int attempt = 0;; ++attempt) {
    try {
      exec("PRAGMA journal_mode=WAL");
      break;
    } catch (const DbError& e) {
      if (!e.busy() || attempt > 50) throw;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  exec("PRAGMA synchronous=NORMAL");
  exec("PRAGMA foreign_keys=ON");
  sqlite3_wal_hook(db_, &Database::on_wal_commit, this);  // replaces SQLite's automatic checkpoint
  // Every thread of a role keeps its own connection; most only read a little. Threads that write
  // a lot raise it (set_cache_kib).
  set_cache_kib(kDefaultCacheKib);
}

void Database::set_cache_kib(int kib) { exec("PRAGMA cache_size=-" + std::to_string(kib)); }

Database::~Database() {
  for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
  sqlite3_close_v2(db_);
}

void Database::exec(std::string_view sql) {
  std::string s(sql);
  char* err = nullptr;
  int rc = sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    throw DbError(rc, "SQL failed: " + msg);
  }
}

sqlite3_stmt* Database::cached_statement(const std::string& sql) {
  auto it = statements_.find(sql);
  if (it == statements_.end()) {
    sqlite3_stmt* stmt = nullptr;
    check(db_, sqlite3_prepare_v3(db_, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr),
          "prepare");
    it = statements_.emplace(sql, stmt).first;
  }
  return it->second;
}

Statement Database::prepare(const std::string& sql) {
  Statement s(cached_statement(sql));
  s.reset();
  return s;
}

Statement Database::prepare(const char* sql) {
  auto it = statements_by_address_.find(sql);
  if (it == statements_by_address_.end() || std::strcmp(sqlite3_sql(it->second), sql) != 0)
    it = statements_by_address_.insert_or_assign(sql, cached_statement(sql)).first;
  Statement s(it->second);
  s.reset();
  return s;
}

int Database::on_busy(void* self_ptr, int attempts_before) {
  auto* self = static_cast<Database*>(self_ptr);
  auto now = std::chrono::steady_clock::now();
  if (attempts_before == 0) self->busy_since_ = now;
  if (now - self->busy_since_ >= self->busy_timeout_) return 0;  // SQLITE_BUSY to the caller
  // 50 µs, doubling up to 1 ms: another process's write transaction usually ends within a few.
  auto pause = std::chrono::microseconds(std::min(1000, 50 << std::min(attempts_before, 5)));
  std::this_thread::sleep_for(pause);
  g_busy_wait_us += static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - now).count());
  return 1;
}

int Database::on_wal_commit(void* self_ptr, sqlite3*, const char*, int wal_pages) {
  auto* self = static_cast<Database*>(self_ptr);
  std::atomic<int>& checkpointed_at = self->shared_->checkpointed_at_pages;
  int last = checkpointed_at.load();
  if (wal_pages < last) {  // fewer pages than then: the WAL started over since
    checkpointed_at.compare_exchange_strong(last, 0);
    last = 0;
  }
  if (wal_pages - last < kCheckpointPages) return SQLITE_OK;
  // Of the connections that see the same growth at once, one checkpoints.
  if (!checkpointed_at.compare_exchange_strong(last, wal_pages) && wal_pages < kCheckpointInTurnPages)
    return SQLITE_OK;
  if (self->in_write_turn_ && wal_pages < kCheckpointInTurnPages)
    self->checkpoint_due_ = true;  // write() runs it after the turn
  else
    self->checkpoint();
  return SQLITE_OK;
}

void Database::checkpoint() {
  checkpoint_due_ = false;
  // PASSIVE never waits: it copies what no reader still needs, and the next one does the rest.
  if (sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr) == SQLITE_OK)
    ++g_checkpoints;
}

void Database::write(const std::function<void()>& body, DueCheckpoint due) {
  {
    std::lock_guard turn(shared_->write_turn);
    struct InTurn {
      bool& flag;
      explicit InTurn(bool& f) : flag(f) { flag = true; }
      ~InTurn() { flag = false; }
    } in_turn(in_write_turn_);
    write_in_turn(body);
  }
  if (due == DueCheckpoint::run) run_due_checkpoint();
}

void Database::write_in_turn(const std::function<void()>& body) {
  thread_local std::minstd_rand rng{std::random_device{}()};
  for (int attempt = 0;; ++attempt) {
    try {
      exec("BEGIN IMMEDIATE");
    } catch (const DbError& e) {
      if (!e.busy()) throw;
      ++g_busy_retries;
      std::this_thread::sleep_for(std::chrono::milliseconds(1 + rng() % (5 + 5 * std::min(attempt, 20))));
      continue;
    }
    try {
      body();
      exec("COMMIT");
      return;
    } catch (const DbError& e) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      if (!e.busy()) throw;
      ++g_busy_retries;
      std::this_thread::sleep_for(std::chrono::milliseconds(1 + rng() % (5 + 5 * std::min(attempt, 20))));
    } catch (...) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }
}

void Database::read(const std::function<void()>& body) {
  exec("BEGIN");
  try {
    body();
    exec("COMMIT");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

uint64_t Database::busy_retries() { return g_busy_retries.load(); }
uint64_t Database::checkpoints() { return g_checkpoints.load(); }
double Database::busy_wait_seconds() { return static_cast<double>(g_busy_wait_us.load()) / 1e6; }

}  // namespace feedpipe
