#pragma once
// One Database connection per thread and file: HTTP handlers run on many threads, and an
// SQLite connection must not be used by two threads at once.
#include <string>

#include "common/db.h"

namespace feedpipe {

// The calling thread's connection to `path`, opened on first use and closed when the thread ends.
Database& thread_db(const std::string& path);

}  // namespace feedpipe
