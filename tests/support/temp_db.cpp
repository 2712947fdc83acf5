#include "tests/support/temp_db.h"

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

}  // namespace feedpipe::testing
