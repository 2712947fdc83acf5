#include "common/migrations.h"

#include <spdlog/spdlog.h>

#include "common/embedded.h"

namespace feedpipe {
namespace {

// Tells every other connection to read the schema again. DDL does it by itself; a migration that
// edits sqlite_schema directly (PRAGMA writable_schema) relies on this.
void bump_schema_version(Database& db) {
  auto q = db.prepare("PRAGMA schema_version");
  if (!q.step()) throw DbError(SQLITE_ERROR, "cannot read the schema version");
  const int64_t version = q.int64(0);
  q.reset();
  db.exec("PRAGMA schema_version=" + std::to_string(version + 1));
}

}  // namespace

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
      bump_schema_version(db);
      spdlog::info("applied migration {}", version);
      ++applied;
    }
  });
  return applied;
}

}  // namespace feedpipe
