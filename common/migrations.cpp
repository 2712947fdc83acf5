#include "common/migrations.h"

#include <spdlog/spdlog.h>

#include "common/embedded.h"

namespace feedpipe {

int apply_migrations(Database& db) {
  int applied = 0;
  db.write([&] {
    db.exec(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version TEXT PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')))");
    for (const auto& file : feedpipe_embedded_migrations()) {
      std::string version(file.name);
      auto check = db.prepare("SELECT 1 FROM schema_migrations WHERE version = ?");
      check.bind(1, version);
      if (check.step()) continue;
      try {
        db.exec(file.content);
      } catch (const DbError& e) {
        throw DbError(e.code(), "migration " + version + " failed: " + e.what());
      }
      db.prepare("INSERT INTO schema_migrations (version) VALUES (?)").bind(1, version).run();
      spdlog::info("applied migration {}", version);
      ++applied;
    }
  });
  return applied;
}

}  // namespace feedpipe
