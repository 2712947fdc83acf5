#pragma once
// Retention: what feedpipe keeps in SQLite over time. Completed batches older than `batch_age`
// are deleted with their jobs and events; each feed keeps its newest `items_per_feed` items (by
// published date, else first-seen time). Feeds themselves stay (their fetch state is what makes
// the next conditional GET cheap).
//
// Deletes run in short write transactions of at most `chunk` batches (or items), so writers
// (consumers recording outcomes, the producer accepting batches) wait at most one chunk.
// Idempotent: two pruners on one file (two producers) only repeat each other's deletes.
//
// RetentionPruner runs prune_once() on a thread of its own: `first_delay` after start(), then
// every `interval`. Errors are logged and retried at the next pass.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "common/db.h"

namespace feedpipe {

struct RetentionSettings {
  std::chrono::milliseconds batch_age{7LL * 24 * 3600 * 1000};  // 0: keep batches forever
  size_t items_per_feed = 500;                                   // 0: keep every item
  // Rows per delete transaction: batches are taken oldest first while their jobs add up to at
  // most this many (a larger batch goes alone, with its jobs and events); items this many at most.
  size_t chunk = 5000;
  std::chrono::milliseconds interval{3600 * 1000};
  std::chrono::milliseconds first_delay{10000};
  std::function<int64_t()> now_ms;  // wall clock in Unix ms; empty: the system clock
};

struct PruneResult {
  uint64_t batches = 0;  // batches deleted (with their jobs and events)
  uint64_t items = 0;    // items deleted
};

// `cancel`, when given and set, ends a pass between two transactions.
// Deletes completed batches whose completed_at is before now − batch_age (see chunk above).
uint64_t prune_batches(Database& db, int64_t now_ms, std::chrono::milliseconds batch_age, size_t chunk,
                       const std::atomic<bool>* cancel = nullptr);
// Deletes the items beyond the newest `keep` of each feed, at most `chunk` per transaction.
uint64_t prune_items(Database& db, size_t keep, size_t chunk, const std::atomic<bool>* cancel = nullptr);
// Both, as configured; adds to feedpipe_retention_pruned_total{kind="batches|items"}.
PruneResult prune_once(Database& db, const RetentionSettings& settings,
                       const std::atomic<bool>* cancel = nullptr);

class RetentionPruner {
 public:
  RetentionPruner(std::string db_path, RetentionSettings settings);
  ~RetentionPruner();  // stop()
  RetentionPruner(const RetentionPruner&) = delete;
  RetentionPruner& operator=(const RetentionPruner&) = delete;

  void start();
  void stop();  // idempotent; waits for a pass in progress to finish its current chunk
  uint64_t passes() const;

 private:
  void run();

  std::string db_path_;
  RetentionSettings settings_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::atomic<bool> stop_{false};
  uint64_t passes_ = 0;
  std::thread thread_;
};

}  // namespace feedpipe
