// Callbacks (DESIGN.md, Callbacks): the signature against a vector computed with openssl, the
// retry schedule with an injected clock and random draw, the queue's claims and leases on a real
// SQLite file (two connections, as two processes), the snapshot's callback state, and the
// "callback_url" field of a submission.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include "common/callbacks/callback_signature.h"
#include "common/callbacks/callback_store.h"
#include "common/callbacks/retry_schedule.h"
#include "common/clock.h"
#include "common/job_outcomes.h"
#include "common/queries.h"
#include "common/retention.h"
#include "producer/batch_intake.h"
#include "producer/batch_request.h"
#include "tests/support/temp_db.h"

namespace feedpipe {
namespace {

using namespace std::chrono_literals;
using callbacks::RetryPolicy;

// printf '%s' '1700000000.{"batch_id":"b1","event":"batch.completed"}' | openssl dgst -sha256 -hmac 'whsec_test'
TEST(CallbackSignature, MatchesOpensslHmacOfTimestampDotBody) {
  EXPECT_EQ(callbacks::signature_header("whsec_test", 1700000000, R"({"batch_id":"b1","event":"batch.completed"})"),
            "t=1700000000,v1=1d338bd5ebc8400da8a45614cadf192385b4d7e3164423bdf0004cc8a9b590c4");
  // Another t or another secret is another signature.
  EXPECT_NE(callbacks::signature_header("whsec_test", 1700000001, R"({"batch_id":"b1","event":"batch.completed"})"),
            "t=1700000001,v1=1d338bd5ebc8400da8a45614cadf192385b4d7e3164423bdf0004cc8a9b590c4");
}

TEST(CallbackRetrySchedule, FirstRetryAfterMinThenDoublingCapUpToMax) {
  RetryPolicy p{1000ms, 3600000ms, 24h};
  EXPECT_EQ(callbacks::retry_delay_cap_ms(p, 1), 1000);
  EXPECT_EQ(callbacks::retry_delay_cap_ms(p, 2), 2000);
  EXPECT_EQ(callbacks::retry_delay_cap_ms(p, 3), 4000);
  EXPECT_EQ(callbacks::retry_delay_cap_ms(p, 12), 2048000);
  EXPECT_EQ(callbacks::retry_delay_cap_ms(p, 13), 3600000);  // 4096 s is over the hour
  EXPECT_EQ(callbacks::retry_delay_cap_ms(p, 1000), 3600000);  // no overflow however many

  const int64_t created = 1'000'000, now = created + 5000;
  auto lowest = [](int64_t lo, int64_t) { return lo; };
  auto highest = [](int64_t, int64_t hi) { return hi; };
  // The first retry is exactly min after the first attempt, whatever the draw.
  EXPECT_EQ(callbacks::next_attempt(p, created, now, 1, lowest).next_attempt_at_ms, now + 1000);
  EXPECT_EQ(callbacks::next_attempt(p, created, now, 1, highest).next_attempt_at_ms, now + 1000);
  // Full jitter: the draw is asked for [min, cap] and its answer used.
  int64_t asked_lo = 0, asked_hi = 0;
  auto record = [&](int64_t lo, int64_t hi) {
    asked_lo = lo;
    asked_hi = hi;
    return lo + (hi - lo) / 2;
  };
  auto d = callbacks::next_attempt(p, created, now, 4, record);
  EXPECT_EQ(asked_lo, 1000);
  EXPECT_EQ(asked_hi, 8000);
  EXPECT_EQ(d.next_attempt_at_ms, now + 4500);
  EXPECT_FALSE(d.give_up);
  // A draw out of range is clamped into it.
  auto wild = [](int64_t, int64_t) { return int64_t{1} << 50; };
  EXPECT_EQ(callbacks::next_attempt(p, created, now, 30, wild).next_attempt_at_ms, now + 3600000);
  // Real draws stay within the bounds.
  for (int i = 0; i < 1000; ++i) {
    auto r = callbacks::next_attempt(p, created, now, 5);
    EXPECT_GE(r.next_attempt_at_ms, now + 1000);
    EXPECT_LE(r.next_attempt_at_ms, now + 16000);
  }
}

TEST(CallbackRetrySchedule, GivesUpAtMaxAgeAndTriesOnceMoreAtTheDeadline) {
  RetryPolicy p{1000ms, 3600000ms, 24h};
  const int64_t created = 0, day = 24LL * 3600 * 1000;
  auto highest = [](int64_t, int64_t hi) { return hi; };
  // Half an hour before the deadline, a one-hour delay is cut to the deadline itself.
  auto d = callbacks::next_attempt(p, created, day - 1800000, 20, highest);
  EXPECT_FALSE(d.give_up);
  EXPECT_EQ(d.next_attempt_at_ms, day);
  // An attempt that fails at or after the deadline is the last.
  EXPECT_TRUE(callbacks::next_attempt(p, created, day, 21, highest).give_up);
  EXPECT_TRUE(callbacks::next_attempt(p, created, day + 5, 21, highest).give_up);
}

class CallbackStoreTest : public testing::MigratedDbTest {
 protected:
  producer::CreatedBatch submit(const std::string& callback_url, int feeds = 1) {
    producer::BatchRequest request;
    for (int i = 0; i < feeds; ++i) request.feeds.push_back("http://a.test/" + std::to_string(++feed_));
    request.callback_url = callback_url;
    return std::get<producer::CreatedBatch>(producer::create_batch(*db_, request, "", ""));
  }

  void complete(const producer::CreatedBatch& batch) {
    std::vector<JobOutcome> outcomes;
    for (const auto& job : batch.jobs) {
      JobOutcome o;
      o.job_id = job.job_id;
      o.status = JobStatus::failed;
      o.error = "test";
      outcomes.push_back(o);
    }
    record_outcomes(*db_, outcomes);
  }

  int64_t count(const std::string& sql) {
    auto q = db_->prepare(sql);
    EXPECT_TRUE(q.step());
    return q.int64(0);
  }

  int feed_ = 0;
};

TEST_F(CallbackStoreTest, TheCommitThatCompletesTheBatchQueuesItsCallbackWithTheCompletedEventAsBody) {
  auto with = submit("http://hooks.test/cb", 2);
  auto without = submit("");
  EXPECT_EQ(count("SELECT count(*) FROM callbacks"), 0);
  complete(with);
  complete(without);
  ASSERT_EQ(count("SELECT count(*) FROM callbacks"), 1);

  auto claimed = callbacks::claim_due(*db_, "a", now_ms() + 1, 60000, 10);
  ASSERT_EQ(claimed.size(), 1u);
  const auto& cb = claimed[0];
  EXPECT_EQ(cb.batch_id, with.batch_id);
  EXPECT_EQ(cb.url, "http://hooks.test/cb");
  EXPECT_EQ(cb.delivery_id.size(), 32u);
  auto body = nlohmann::json::parse(cb.body);
  EXPECT_EQ(body.begin().key(), "batch_id");  // {"batch_id",…}
  EXPECT_EQ(body["batch_id"], with.batch_id);
  EXPECT_EQ(body["event"], "batch.completed");
  EXPECT_EQ(body["status"], "completed");
  EXPECT_EQ(body["progress"], (nlohmann::json{{"total", 2}, {"done", 2}, {"failed", 2}}));
  // The same data as the batch.completed event.
  auto ev = db_->prepare("SELECT data FROM events WHERE batch_id = ? AND type = 'batch.completed'");
  ev.bind(1, with.batch_id);
  ASSERT_TRUE(ev.step());
  auto data = nlohmann::json::parse(ev.text(0));
  for (auto& [key, value] : data.items()) EXPECT_EQ(body[key], value) << key;
}

TEST_F(CallbackStoreTest, ABatchOfOnlyUnfetchableUrlsQueuesItsCallbackAtSubmit) {
  producer::BatchRequest request{{"not a url"}, "http://hooks.test/cb"};
  auto created = std::get<producer::CreatedBatch>(producer::create_batch(*db_, request, "", ""));
  EXPECT_EQ(count("SELECT count(*) FROM callbacks WHERE status = 'pending'"), 1);
  EXPECT_EQ(callbacks::claim_due(*db_, "a", now_ms() + 1, 1000, 5).at(0).batch_id, created.batch_id);
}

TEST_F(CallbackStoreTest, AClaimIsExclusiveUntilItsLeaseExpiresAndALostClaimRecordsNothing) {
  auto batch = submit("http://hooks.test/cb");
  complete(batch);
  Database other(path_);  // another process's connection
  const int64_t t0 = now_ms() + 1;

  auto a = callbacks::claim_due(*db_, "a", t0, 1000, 10);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_TRUE(callbacks::claim_due(other, "b", t0, 1000, 10).empty());
  EXPECT_TRUE(callbacks::claim_due(other, "b", t0 + 999, 1000, 10).empty());
  EXPECT_EQ(callbacks::next_due_ms(other), t0 + 1000);

  // a's lease expires (it died, or hangs): b takes the callback, with the same delivery id.
  auto b = callbacks::claim_due(other, "b", t0 + 1000, 1000, 10);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].delivery_id, a[0].delivery_id);
  EXPECT_FALSE(callbacks::record_delivered(*db_, batch.batch_id, "a"));  // a's claim is gone
  EXPECT_EQ(count("SELECT attempts FROM callbacks"), 0);

  ASSERT_TRUE(callbacks::record_retry(other, batch.batch_id, "b", "HTTP 500", t0 + 5000));
  EXPECT_EQ(count("SELECT attempts FROM callbacks"), 1);
  EXPECT_TRUE(callbacks::claim_due(*db_, "a", t0 + 4999, 1000, 10).empty());  // not due yet
  auto again = callbacks::claim_due(*db_, "a", t0 + 5000, 1000, 10);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].attempts, 1);
  EXPECT_EQ(again[0].delivery_id, a[0].delivery_id);
  ASSERT_TRUE(callbacks::record_delivered(*db_, batch.batch_id, "a"));
  EXPECT_TRUE(callbacks::claim_due(other, "b", t0 + 100000000, 1000, 10).empty());  // delivered: never again
  EXPECT_EQ(callbacks::next_due_ms(other), std::nullopt);
}

TEST_F(CallbackStoreTest, AReleasedClaimIsDueAgainAtOnceWithoutCountingAnAttempt) {
  auto batch = submit("http://hooks.test/cb");
  complete(batch);
  const int64_t t0 = now_ms() + 1;
  ASSERT_EQ(callbacks::claim_due(*db_, "a", t0, 60000, 10).size(), 1u);
  callbacks::release_claim(*db_, batch.batch_id, "a");
  auto b = callbacks::claim_due(*db_, "b", t0, 60000, 10);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].attempts, 0);
}

TEST_F(CallbackStoreTest, SendersOnSeveralConnectionsClaimEachCallbackOnce) {
  std::vector<std::string> batches;
  for (int i = 0; i < 40; ++i) {
    auto b = submit("http://hooks.test/" + std::to_string(i));
    complete(b);
    batches.push_back(b.batch_id);
  }
  const int64_t now = now_ms() + 1;
  std::mutex mu;
  std::multiset<std::string> claimed;
  std::vector<std::thread> senders;
  for (int s = 0; s < 4; ++s)
    senders.emplace_back([&, s] {
      Database db(path_);
      for (int round = 0; round < 20; ++round)
        for (auto& c : callbacks::claim_due(db, "sender" + std::to_string(s), now, 60000, 3)) {
          std::lock_guard lock(mu);
          claimed.insert(c.batch_id);
        }
    });
  for (auto& t : senders) t.join();
  EXPECT_EQ(claimed.size(), 40u);
  for (const auto& id : batches) EXPECT_EQ(claimed.count(id), 1u) << id;
}

TEST_F(CallbackStoreTest, TheSnapshotShowsTheCallbackStateOnlyWhenOneWasAskedFor) {
  auto with = submit("http://hooks.test/cb");
  auto without = submit("");
  auto snap = batch_snapshot(*db_, with.batch_id);
  ASSERT_TRUE(snap);
  EXPECT_EQ((*snap)["callback"],
            (nlohmann::json{{"url", "http://hooks.test/cb"}, {"status", "pending"}, {"attempts", 0}, {"last_error", nullptr}}));
  EXPECT_FALSE(batch_snapshot(*db_, without.batch_id)->contains("callback"));

  complete(with);
  const int64_t t0 = now_ms() + 1;
  ASSERT_EQ(callbacks::claim_due(*db_, "a", t0, 60000, 10).size(), 1u);
  ASSERT_TRUE(callbacks::record_retry(*db_, with.batch_id, "a", "HTTP 503", t0 + 1000));
  auto before = batch_snapshot(*db_, with.batch_id)->dump();
  EXPECT_EQ((*batch_snapshot(*db_, with.batch_id))["callback"],
            (nlohmann::json{{"url", "http://hooks.test/cb"}, {"status", "pending"}, {"attempts", 1}, {"last_error", "HTTP 503"}}));
  ASSERT_EQ(callbacks::claim_due(*db_, "a", t0 + 1000, 60000, 10).size(), 1u);
  ASSERT_TRUE(callbacks::record_failed(*db_, with.batch_id, "a", "refused address 127.0.0.1 (loopback)"));
  auto after = batch_snapshot(*db_, with.batch_id);
  EXPECT_EQ((*after)["callback"]["status"], "failed");
  EXPECT_EQ((*after)["callback"]["attempts"], 2);
  EXPECT_EQ((*after)["callback"]["last_error"], "refused address 127.0.0.1 (loopback)");
  EXPECT_NE(after->dump(), before);  // the ETag (a hash of the body) changes with it
}

TEST_F(CallbackStoreTest, RetentionDeletesABatchWithItsCallback) {
  auto batch = submit("http://hooks.test/cb");
  complete(batch);
  EXPECT_EQ(prune_batches(*db_, now_ms() + 8LL * 24 * 3600 * 1000, 7 * 24h, 500), 1u);
  EXPECT_EQ(count("SELECT count(*) FROM callbacks"), 0);
}

TEST(BatchRequestCallbackUrl, AnHttpUrlIsKeptAndAnythingElseIs422) {
  using producer::BatchRequest;
  using producer::Refusal;
  auto parse = [](const std::string& body) { return producer::parse_batch_request(body, 100); };
  auto ok = parse(R"({"feeds":["http://a.test/"],"callback_url":"https://hooks.test/x?y=1"})");
  ASSERT_TRUE(std::holds_alternative<BatchRequest>(ok));
  EXPECT_EQ(std::get<BatchRequest>(ok).callback_url, "https://hooks.test/x?y=1");
  auto none = parse(R"({"callback_url":null,"feeds":["http://a.test/"]})");
  ASSERT_TRUE(std::holds_alternative<BatchRequest>(none));
  EXPECT_EQ(std::get<BatchRequest>(none).callback_url, "");
  for (const char* body : {R"({"feeds":["http://a.test/"],"callback_url":"ftp://hooks.test/x"})",
                           R"({"feeds":["http://a.test/"],"callback_url":"file:///etc/passwd"})",
                           R"({"feeds":["http://a.test/"],"callback_url":"/relative"})",
                           R"({"feeds":["http://a.test/"],"callback_url":""})",
                           R"({"feeds":["http://a.test/"],"callback_url":42})",
                           R"({"feeds":["http://a.test/"],"callback_url":["http://hooks.test/"]})",
                           R"({"feeds":["http://a.test/"],"callback_url":{"url":"http://hooks.test/"}})"}) {
    auto r = parse(body);
    ASSERT_TRUE(std::holds_alternative<Refusal>(r)) << body;
    EXPECT_EQ(std::get<Refusal>(r).status, 422) << body;
    EXPECT_EQ(std::get<Refusal>(r).code, "invalid_callback_url") << body;
    EXPECT_NE(std::get<Refusal>(r).message.find("callback_url"), std::string::npos);
  }
  auto long_url = parse(R"({"feeds":["http://a.test/"],"callback_url":"http://hooks.test/)" + std::string(3000, 'a') + "\"}");
  ASSERT_TRUE(std::holds_alternative<Refusal>(long_url));
  EXPECT_EQ(std::get<Refusal>(long_url).status, 422);
  // The feeds' own refusals come first.
  auto empty = parse(R"({"feeds":[],"callback_url":"ftp://x"})");
  EXPECT_EQ(std::get<Refusal>(empty).code, "empty_batch");
}

}  // namespace
}  // namespace feedpipe
