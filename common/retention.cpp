#include "common/retention.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "common/clock.h"
#include "common/metrics.h"
#include "common/thread_name.h"

namespace feedpipe {
namespace {

bool cancelled(const std::atomic<bool>* cancel) { return cancel && cancel->load(); }

metrics::Counter& pruned_total(const char* kind) {
  return metrics::counter("feedpipe_retention_pruned_total",
                          "Rows deleted by the retention pruner: completed batches (with their jobs and events), items.",
                          std::string("kind=\"") + kind + "\"");
}
metrics::Counter& batches_pruned() {
  static auto& c = pruned_total("batches");
  return c;
}
metrics::Counter& items_pruned() {
  static auto& c = pruned_total("items");
  return c;
}

}  // namespace

uint64_t prune_batches(Database& db, int64_t now_ms, std::chrono::milliseconds batch_age, size_t chunk,
                       const std::atomic<bool>* cancel) {
  if (batch_age.count() <= 0) return 0;
  if (chunk == 0) chunk = 1;
  const std::string cutoff = rfc3339_utc(now_ms - batch_age.count());
  uint64_t deleted = 0;
  for (bool more = true; more && !cancelled(cancel);) {
    size_t taken = 0;
    db.write([&] {
      std::vector<std::string> ids;
      {
        auto q = db.prepare(
            "SELECT id, total FROM batches WHERE status = 'completed' AND completed_at < ?1 "
            "ORDER BY completed_at LIMIT ?2");
        q.bind(1, cutoff).bind(2, static_cast<int64_t>(chunk) + 1);
        size_t rows = 0, candidates = 0;
        while (q.step()) {
          ++candidates;
          size_t jobs = static_cast<size_t>(std::max<int64_t>(q.int64(1), 1));
          if (!ids.empty() && rows + jobs > chunk) break;
          ids.push_back(q.text(0));
          rows += jobs;
        }
        more = candidates > ids.size();
      }
      for (const auto& id : ids) {
        // Events reference jobs, jobs and callbacks reference batches: delete in that order.
        db.prepare("DELETE FROM events WHERE batch_id = ?").bind(1, id).run();
        db.prepare("DELETE FROM callbacks WHERE batch_id = ?").bind(1, id).run();
        db.prepare("DELETE FROM jobs WHERE batch_id = ?").bind(1, id).run();
        db.prepare("DELETE FROM batches WHERE id = ?").bind(1, id).run();
      }
      taken = ids.size();
    });
    deleted += taken;
    if (taken == 0) break;
  }
  return deleted;
}

uint64_t prune_items(Database& db, size_t keep, size_t chunk, const std::atomic<bool>* cancel) {
  if (keep == 0) return 0;
  if (chunk == 0) chunk = 1;
  std::vector<int64_t> feeds;  // read first: no statement may stay open across the writes below
  {
    auto q = db.prepare("SELECT feed_id FROM items GROUP BY feed_id HAVING count(*) > ?");
    q.bind(1, static_cast<int64_t>(keep));
    while (q.step()) feeds.push_back(q.int64(0));
  }
  uint64_t deleted = 0;
  for (int64_t feed_id : feeds) {
    for (;;) {
      if (cancelled(cancel)) return deleted;
      size_t n = 0;
      db.write([&] {
        db.prepare(
              "DELETE FROM items WHERE id IN (SELECT id FROM items WHERE feed_id = ?1 "
              "ORDER BY coalesce(published, first_seen_at) DESC, id DESC LIMIT ?3 OFFSET ?2)")
            .bind(1, feed_id)
            .bind(2, static_cast<int64_t>(keep))
            .bind(3, static_cast<int64_t>(chunk))
            .run();
        n = static_cast<size_t>(db.changes());
        if (n > 0)
          db.prepare("UPDATE feeds SET item_count = item_count - ?2 WHERE id = ?1")
              .bind(1, feed_id)
              .bind(2, static_cast<int64_t>(n))
              .run();
      });
      deleted += n;
      if (n < chunk) break;
    }
  }
  return deleted;
}

PruneResult prune_once(Database& db, const RetentionSettings& settings, const std::atomic<bool>* cancel) {
  PruneResult r;
  int64_t now = settings.now_ms ? settings.now_ms() : now_ms();
  r.batches = prune_batches(db, now, settings.batch_age, settings.chunk, cancel);
  batches_pruned().add(r.batches);
  r.items = prune_items(db, settings.items_per_feed, settings.chunk, cancel);
  items_pruned().add(r.items);
  return r;
}

RetentionPruner::RetentionPruner(std::string db_path, RetentionSettings settings)
    : db_path_(std::move(db_path)), settings_(std::move(settings)) {
  batches_pruned();  // registered now, so /metrics shows 0 before the first pass
  items_pruned();
}

RetentionPruner::~RetentionPruner() { stop(); }

void RetentionPruner::start() {
  if (thread_.joinable()) return;
  thread_ = named_thread("fp-retention", [this] { run(); });
}

void RetentionPruner::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

uint64_t RetentionPruner::passes() const {
  std::lock_guard lock(mu_);
  return passes_;
}

void RetentionPruner::run() {
  std::unique_ptr<Database> db;
  std::unique_lock lock(mu_);
  auto wait = settings_.first_delay;
  for (;;) {
    if (wake_.wait_for(lock, wait, [this] { return stop_.load(); })) return;
    lock.unlock();
    auto started = std::chrono::steady_clock::now();
    try {
      if (!db) db = std::make_unique<Database>(db_path_);
      PruneResult r = prune_once(*db, settings_, &stop_);
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
      if (r.batches > 0 || r.items > 0)
        spdlog::info("retention: deleted {} batch(es) completed over {} s ago and {} item(s) beyond {} per feed in {} ms",
                     r.batches, settings_.batch_age.count() / 1000, r.items, settings_.items_per_feed, ms.count());
      else
        spdlog::debug("retention: nothing to delete ({} ms)", ms.count());
    } catch (const std::exception& e) {
      spdlog::error("retention: {} (retrying in {} s)", e.what(), settings_.interval.count() / 1000);
      db.reset();
    }
    lock.lock();
    ++passes_;
    wait = settings_.interval;
  }
}

}  // namespace feedpipe
