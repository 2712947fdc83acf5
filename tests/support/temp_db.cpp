#include "tests/support/temp_db.h"

#include <thread>

#include <stdlib.h>

#include <filesystem>
#include <stdexcept>
#include <system_error>

#include "common/migrations.h"

namespace feedpipe::testing {

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "feedpipe-test-XXXXXX").string();
  if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

TempDb::TempDb() : path_(dir_.file("feedpipe.db")), db_(std::make_unique<Database>(path_)) {
  apply_migrations(*db_);
}

bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return condition();
}

}  // namespace feedpipe::testing
