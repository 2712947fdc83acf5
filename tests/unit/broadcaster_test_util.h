#pragma once
// Helpers for the broadcaster tests: a migrated SQLite file in a temp directory, batches and
// jobs inserted directly, and real events written by record_outcomes (common/job_outcomes.h).
#include <string>
#include <vector>

#include "common/db.h"
#include "common/job_outcomes.h"
#include "common/model.h"
#include "tests/support/temp_db.h"

namespace feedpipe::testing {

// A TempDb (tests/support/temp_db.h) with batches and jobs inserted directly.
class BroadcasterDb : public TempDb {
 public:
  // A batch of `jobs` jobs; returns the job ids by position.
  std::vector<int64_t> create_batch(const std::string& batch_id, int jobs) {
    std::vector<int64_t> ids;
    db().write([&] {
      db().prepare("INSERT INTO batches (id, created_at, total) VALUES (?, '2026-01-01T00:00:00Z', ?)")
          .bind(1, batch_id)
          .bind(2, jobs)
          .run();
      for (int i = 0; i < jobs; ++i) {
        db().prepare("INSERT INTO jobs (batch_id, position, url) VALUES (?, ?, ?)")
            .bind(1, batch_id)
            .bind(2, i)
            .bind(3, "https://example.com/feed" + std::to_string(i))
            .run();
        ids.push_back(db().last_insert_rowid());
      }
    });
    return ids;
  }

  // Finishes one job (failed, nothing fetched); returns its events (two with the batch's last job).
  std::vector<EventMessage> finish_job(int64_t job_id) {
    JobOutcome o;
    o.job_id = job_id;
    o.status = JobStatus::failed;
    o.error = "connection refused";
    return record_outcomes(db(), {o});
  }
};

}  // namespace feedpipe::testing
