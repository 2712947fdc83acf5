#pragma once
// Schema migrations: the numbered files of migrations/ (compiled in) are applied in name order,
// each recorded in schema_migrations. Safe when several processes start at once: the check and
// the apply run in one write transaction.
#include "common/db.h"

namespace feedpipe {

// Applies the migrations that are missing; returns how many were applied.
int apply_migrations(Database& db);

}  // namespace feedpipe
