#pragma once
// Test support for unit and integration tests alike (no feedpipe binary needed): a temporary
// directory, and a temporary SQLite database with the migrations applied, used in process.
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "common/db.h"

namespace feedpipe::testing {

// Polls `condition` every 20 ms until it holds or `timeout` passes; returns the last result.
bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout);


// A temporary directory removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A fresh SQLite file (feedpipe.db in a TempDir, so its -wal and -shm go with it) with every
// migration applied, and the test thread's connection to it.
class TempDb {
 public:
  TempDb();
  const std::string& path() const { return path_; }
  Database& db() { return *db_; }

 private:
  TempDir dir_;
  std::string path_;
  std::unique_ptr<Database> db_;  // declared last: closed before its directory goes
};

// A fixture whose every test has its own TempDb: `db_` is the test thread's connection, `path_`
// the file (for more connections, as other threads or processes would open).
class MigratedDbTest : public ::testing::Test {
 protected:
  TempDb temp_db_;
  const std::string path_ = temp_db_.path();
  Database* const db_ = &temp_db_.db();
};

}  // namespace feedpipe::testing
