// Database's busy handler: a connection that finds the write lock held by another process (here a
// raw SQLite connection, which the process's write turn does not see) waits for it, counts the
// wait, and gives up with a busy error once its busy timeout has passed.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include "common/db.h"
#include "tests/support/temp_db.h"

namespace feedpipe {
namespace {

// Another process's writer: holds SQLite's write lock from construction until release().
class ForeignWriter {
 public:
  explicit ForeignWriter(const std::string& path) {
    EXPECT_EQ(sqlite3_open(path.c_str(), &db_), SQLITE_OK);
    EXPECT_EQ(sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  }
  void release() {
    if (released_.exchange(true)) return;
    EXPECT_EQ(sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
  }
  ~ForeignWriter() {
    release();
    sqlite3_close(db_);
  }

 private:
  sqlite3* db_ = nullptr;
  std::atomic<bool> released_{false};
};

class DatabaseBusy : public testing::MigratedDbTest {
 protected:
  void SetUp() override { db_->exec("CREATE TABLE t (id INTEGER PRIMARY KEY)"); }
  int64_t rows() {
    auto q = db_->prepare("SELECT count(*) FROM t");
    q.step();
    int64_t n = q.int64(0);
    q.reset();
    return n;
  }
};

TEST_F(DatabaseBusy, AWriterWaitsForAnotherProcesssLockAndCountsTheWait) {
  ForeignWriter other(path_);
  const double waited_before = Database::busy_wait_seconds();
  const uint64_t retries_before = Database::busy_retries();
  auto write = std::async(std::launch::async, [this] {
    Database db(path_);
    db.write([&] { db.exec("INSERT INTO t DEFAULT VALUES"); });
  });
  // Still waiting while the lock is held (the default busy timeout is 5 s).
  EXPECT_EQ(write.wait_for(std::chrono::milliseconds(200)), std::future_status::timeout);
  other.release();
  ASSERT_EQ(write.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  write.get();
  EXPECT_EQ(rows(), 1);
  EXPECT_GT(Database::busy_wait_seconds(), waited_before);
  EXPECT_EQ(Database::busy_retries(), retries_before);  // SQLite's wait sufficed: no retry
}

TEST_F(DatabaseBusy, TheWaitEndsWithABusyErrorOnceTheBusyTimeoutHasPassed) {
  ForeignWriter other(path_);
  Database db(path_, /*busy_timeout_ms=*/100);
  auto started = std::chrono::steady_clock::now();
  try {
    db.exec("BEGIN IMMEDIATE");
    FAIL() << "took the write lock another connection holds";
  } catch (const DbError& e) {
    EXPECT_TRUE(e.busy()) << e.what();
  }
  EXPECT_GE(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(100));
  // The next wait starts its own timeout: the connection takes the lock once it is free.
  other.release();
  db.exec("BEGIN IMMEDIATE");
  db.exec("COMMIT");
}

}  // namespace
}  // namespace feedpipe
