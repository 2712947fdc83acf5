// Retention: old completed batches go with their jobs and events; each feed keeps its newest
// items. The clock is injected: rows are written at the real time, the pruner is told it is later.
#include <gtest/gtest.h>

#include <thread>

#include "common/clock.h"
#include "common/config.h"
#include "common/job_outcomes.h"
#include "common/metrics.h"
#include "common/queries.h"
#include "common/retention.h"
#include "producer/batch_intake.h"
#include "tests/support/temp_db.h"

namespace feedpipe {
namespace {

using namespace std::chrono_literals;
constexpr int64_t kDayMs = 24LL * 3600 * 1000;

class RetentionTest : public testing::MigratedDbTest {
 protected:
  // A batch of `feeds`, every job finished ok with `items` (so the batch is completed).
  std::string completed_batch(const std::vector<std::string>& feeds, const std::vector<ItemRecord>& items = {}) {
    auto batch = std::get<producer::CreatedBatch>(
        producer::create_batch(*db_, {feeds}, "", "body:" + std::to_string(++bodies_)));
    std::vector<JobOutcome> outcomes;
    for (const auto& job : batch.jobs) {
      JobOutcome o;
      o.job_id = job.job_id;
      o.status = JobStatus::ok;
      o.http_status = 200;
      o.fetch = FeedFetch{job.url, "", "", "Title", "", items};
      outcomes.push_back(o);
    }
    record_outcomes(*db_, outcomes);
    return batch.batch_id;
  }

  int64_t count(const std::string& sql, const std::string& arg = "") {
    auto q = db_->prepare(sql);
    if (!arg.empty()) q.bind(1, arg);
    EXPECT_TRUE(q.step());
    return q.int64(0);
  }

  int bodies_ = 0;
};

TEST_F(RetentionTest, DeletesCompletedBatchesOlderThanTheAgeWithTheirJobsAndEvents) {
  std::string old1 = completed_batch({"http://a.test/1", "http://a.test/2"});
  std::string old2 = completed_batch({"http://a.test/3"});
  auto open = std::get<producer::CreatedBatch>(producer::create_batch(*db_, {{"http://a.test/4"}}, "", "open"));
  ASSERT_EQ(count("SELECT count(*) FROM events"), 5);  // 2+1 job events, 2 batch.completed

  // Six days later nothing is old enough.
  EXPECT_EQ(prune_batches(*db_, now_ms() + 6 * kDayMs, 7 * 24h, 500), 0u);
  EXPECT_EQ(count("SELECT count(*) FROM batches"), 3);

  // Eight days later both completed batches go, the open one stays.
  EXPECT_EQ(prune_batches(*db_, now_ms() + 8 * kDayMs, 7 * 24h, 500), 2u);
  EXPECT_EQ(count("SELECT count(*) FROM batches"), 1);
  EXPECT_EQ(count("SELECT count(*) FROM batches WHERE id = ?", open.batch_id), 1);
  EXPECT_EQ(count("SELECT count(*) FROM jobs WHERE batch_id <> ?", open.batch_id), 0);
  EXPECT_EQ(count("SELECT count(*) FROM events"), 0);
  EXPECT_EQ(count("SELECT count(*) FROM jobs"), 1);
  EXPECT_FALSE(batch_snapshot(*db_, old1).has_value());
  EXPECT_FALSE(batch_snapshot(*db_, old2).has_value());
  // Feeds stay: their fetch state makes the next refresh a conditional GET.
  EXPECT_EQ(count("SELECT count(*) FROM feeds"), 4);
  auto fk = db_->prepare("PRAGMA foreign_key_check");
  EXPECT_FALSE(fk.step());
}

TEST_F(RetentionTest, SmallTransactionsStillDeleteEverythingThatIsDue) {
  std::vector<std::string> ids;
  for (int i = 0; i < 7; ++i) ids.push_back(completed_batch({"http://a.test/" + std::to_string(i)}));
  std::string big = completed_batch({"http://b.test/1", "http://b.test/2", "http://b.test/3"});
  // Two jobs per transaction: the 3-job batch goes alone; the rest two by two.
  EXPECT_EQ(prune_batches(*db_, now_ms() + 8 * kDayMs, 7 * 24h, 2), 8u);
  EXPECT_EQ(count("SELECT count(*) FROM batches"), 0);
  EXPECT_EQ(count("SELECT count(*) FROM jobs"), 0);
  EXPECT_EQ(count("SELECT count(*) FROM events"), 0);
}

TEST_F(RetentionTest, ZeroAgeKeepsBatchesForever) {
  completed_batch({"http://a.test/1"});
  EXPECT_EQ(prune_batches(*db_, now_ms() + 3650 * kDayMs, 0ms, 500), 0u);
  EXPECT_EQ(count("SELECT count(*) FROM batches"), 1);
}

TEST_F(RetentionTest, EachFeedKeepsItsNewestItemsByPublishedThenFirstSeen) {
  // Feed a: 6 items with dates (i0 newest … i5 oldest) and one without (first seen now: newest).
  std::vector<ItemRecord> items;
  for (int i = 0; i < 6; ++i)
    items.push_back({"a" + std::to_string(i), "", "", "", "2020-01-0" + std::to_string(9 - i) + "T00:00:00Z", "", "", ""});
  items.push_back({"undated", "", "", "", "", "", "", ""});
  completed_batch({"http://a.test/feed"}, items);
  // Feed b: 2 items, under the cap.
  completed_batch({"http://b.test/feed"}, {{"b0", "", "", "", "", "", "", ""}, {"b1", "", "", "", "", "", "", ""}});
  ASSERT_EQ(count("SELECT count(*) FROM items"), 9);

  EXPECT_EQ(prune_items(*db_, 3, 2), 4u);  // chunks of 2: several transactions for feed a
  EXPECT_EQ(count("SELECT count(*) FROM items"), 5);
  std::vector<std::string> kept;
  auto q = db_->prepare("SELECT guid FROM items WHERE feed_id = (SELECT id FROM feeds WHERE url = ?) ORDER BY guid");
  q.bind(1, "http://a.test/feed");
  while (q.step()) kept.push_back(q.text(0));
  EXPECT_EQ(kept, (std::vector<std::string>{"a0", "a1", "undated"}));
  EXPECT_EQ(count("SELECT count(*) FROM items WHERE guid LIKE 'b%'"), 2);

  // Each feed's stored item count follows what was deleted.
  EXPECT_EQ(count("SELECT count(*) FROM feeds WHERE item_count != "
                  "(SELECT count(*) FROM items WHERE items.feed_id = feeds.id)"), 0);
  EXPECT_EQ(count("SELECT item_count FROM feeds WHERE url = 'http://a.test/feed'"), 3);

  EXPECT_EQ(prune_items(*db_, 3, 500), 0u);  // idempotent
  EXPECT_EQ(prune_items(*db_, 0, 500), 0u);  // 0: keep every item
  EXPECT_EQ(count("SELECT count(*) FROM items"), 5);
}

TEST_F(RetentionTest, PruneOnceCountsWhatItDeletedInMetrics) {
  auto& batches = metrics::counter("feedpipe_retention_pruned_total", "", "kind=\"batches\"");
  auto& items = metrics::counter("feedpipe_retention_pruned_total", "", "kind=\"items\"");
  uint64_t batches_before = batches.value(), items_before = items.value();
  completed_batch({"http://a.test/1"}, {{"x", "", "", "", "", "", "", ""}, {"y", "", "", "", "", "", "", ""}});
  RetentionSettings settings;
  settings.items_per_feed = 1;
  settings.now_ms = [] { return now_ms() + 8 * kDayMs; };
  PruneResult r = prune_once(*db_, settings);
  EXPECT_EQ(r.batches, 1u);
  EXPECT_EQ(r.items, 1u);
  EXPECT_EQ(batches.value() - batches_before, 1u);
  EXPECT_EQ(items.value() - items_before, 1u);
  std::string text = metrics::render();
  EXPECT_NE(text.find("feedpipe_retention_pruned_total{kind=\"batches\"}"), std::string::npos);
  EXPECT_NE(text.find("feedpipe_retention_pruned_total{kind=\"items\"}"), std::string::npos);
}

TEST_F(RetentionTest, PrunerRunsShortlyAfterStartOnItsOwnThread) {
  completed_batch({"http://a.test/1"});
  RetentionSettings settings;
  settings.first_delay = 0ms;
  settings.interval = 1h;
  settings.now_ms = [] { return now_ms() + 8 * kDayMs; };
  RetentionPruner pruner(path_, settings);
  pruner.start();
  ASSERT_TRUE([&] {
    for (int i = 0; i < 500 && pruner.passes() == 0; ++i) std::this_thread::sleep_for(20ms);
    return pruner.passes() > 0;
  }());
  pruner.stop();
  EXPECT_EQ(pruner.passes(), 1u);  // the next pass is an hour away
  EXPECT_EQ(count("SELECT count(*) FROM batches"), 0);
}

TEST(Durations, AcceptSecondsAndUnits) {
  EXPECT_EQ(parse_duration("90", "x"), 90s);
  EXPECT_EQ(parse_duration("250ms", "x"), 250ms);
  EXPECT_EQ(parse_duration("30s", "x"), 30s);
  EXPECT_EQ(parse_duration("30m", "x"), 30min);
  EXPECT_EQ(parse_duration("12h", "x"), 12h);
  EXPECT_EQ(parse_duration("7d", "x"), 7 * 24h);
  EXPECT_EQ(parse_duration("0", "x"), 0ms);
  for (const char* bad : {"", "d", "7 d", "7w", "-1", "1.5h", "7dd"}) {
    try {
      parse_duration(bad, "retention-age");
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("--retention-age"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace feedpipe
