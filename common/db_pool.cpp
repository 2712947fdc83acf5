#include "common/db_pool.h"

#include <memory>
#include <unordered_map>

namespace feedpipe {

Database& thread_db(const std::string& path) {
  thread_local std::unordered_map<std::string, std::unique_ptr<Database>> connections;
  auto& db = connections[path];
  if (!db) db = std::make_unique<Database>(path);
  return *db;
}

}  // namespace feedpipe
