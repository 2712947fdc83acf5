#pragma once
// Helpers for the broadcaster tests: a migrated SQLite file in a temp directory, batches and
// jobs inserted directly, and real events written by record_outcomes (common/job_outcomes.h).
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "common/db.h"
#include "common/job_outcomes.h"
#include "common/migrations.h"
#include "common/model.h"

namespace feedpipe::testing {

class TempDb {
 public:
  TempDb() {
    static std::atomic<int> counter{0};
    dir_ = std::filesystem::temp_directory_path() /
           ("feedpipe-bc-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" +
            std::to_string(std::random_device{}()));
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "feedpipe.db").string();
    db_ = std::make_unique<Database>(path_);
    apply_migrations(*db_);
  }
  ~TempDb() {
    db_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  const std::string& path() const { return path_; }
  Database& db() { return *db_; }  // the test thread's connection

  // A batch of `jobs` jobs; returns the job ids by position.
  std::vector<int64_t> create_batch(const std::string& batch_id, int jobs) {
    std::vector<int64_t> ids;
    db_->write([&] {
      db_->prepare("INSERT INTO batches (id, created_at, total) VALUES (?, '2026-01-01T00:00:00Z', ?)")
          .bind(1, batch_id)
          .bind(2, jobs)
          .run();
      for (int i = 0; i < jobs; ++i) {
        db_->prepare("INSERT INTO jobs (batch_id, position, url) VALUES (?, ?, ?)")
            .bind(1, batch_id)
            .bind(2, i)
            .bind(3, "https://example.com/feed" + std::to_string(i))
            .run();
        ids.push_back(db_->last_insert_rowid());
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
    return record_outcomes(*db_, {o});
  }

 private:
  std::filesystem::path dir_;
  std::string path_;
  std::unique_ptr<Database> db_;
};

}  // namespace feedpipe::testing
