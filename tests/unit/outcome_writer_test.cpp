// The consumer's writer thread: a batch is written running at once, a job only once it has gone
// the delay without an outcome, and a job that finishes sooner never.
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <thread>

#include "common/job_outcomes.h"
#include "consumer/worker/offset_tracker.h"
#include "consumer/worker/outcome_writer.h"
#include "producer/batch_intake.h"
#include "tests/support/temp_db.h"

namespace feedpipe {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class OutcomeWriterTest : public testing::MigratedDbTest {
 protected:
  producer::CreatedBatch create(int feeds) {
    std::vector<std::string> urls;
    for (int i = 0; i < feeds; ++i) urls.push_back("http://a.test/feed/" + std::to_string(i) + ".xml");
    auto result = producer::create_batch(*db_, {urls}, "", "");
    EXPECT_TRUE(std::holds_alternative<producer::CreatedBatch>(result));
    return std::get<producer::CreatedBatch>(result);
  }

  std::string text(const std::string& sql) {
    auto q = db_->prepare(sql);
    std::string value = q.step() ? q.text(0) : "(no row)";
    q.reset();
    return value;
  }
  std::string job_status(int64_t id) { return text("SELECT status FROM jobs WHERE id = " + std::to_string(id)); }
  std::string batch_status(const std::string& id) { return text("SELECT status FROM batches WHERE id = '" + id + "'"); }

  static bool poll_until(const std::function<bool()>& done) { return testing::wait_until(done, 10s); }

  static JobOutcome not_modified(int64_t job_id) {
    JobOutcome o;
    o.job_id = job_id;
    o.status = JobStatus::not_modified;
    o.http_status = 304;
    o.fetch = FeedFetch{};
    return o;
  }

  consumer::OffsetTracker offsets_;
};

TEST_F(OutcomeWriterTest, TheBatchRunsAtOnceAndItsJobOnlyAfterTheDelay) {
  auto batch = create(2);
  const int64_t job = batch.jobs[0].job_id;
  consumer::OutcomeWriter writer(path_, nullptr, offsets_, 512, 400ms);
  const auto taken = Clock::now();
  writer.mark_running({{job}, {batch.batch_id}});

  std::string job_when_batch_ran;
  ASSERT_TRUE(poll_until([&] {
    auto q = db_->prepare("SELECT b.status, j.status FROM batches b JOIN jobs j ON j.batch_id = b.id WHERE j.id = ?");
    q.bind(1, job);
    bool ran = q.step() && q.text(0) == "running";
    if (ran) job_when_batch_ran = q.text(1);
    q.reset();
    return ran;
  }));
  // Nothing may write the job as running before its delay has passed.
  if (Clock::now() - taken < 400ms) {
    EXPECT_EQ(job_when_batch_ran, "queued");
  }

  ASSERT_TRUE(poll_until([&] { return job_status(job) == "running"; })) << job_status(job);
  EXPECT_GE(Clock::now() - taken, 400ms);
  EXPECT_EQ(job_status(batch.jobs[1].job_id), "queued");  // never taken
}

TEST_F(OutcomeWriterTest, AJobThatFinishesWithinTheDelayIsNeverWrittenRunning) {
  auto batch = create(1);
  const int64_t job = batch.jobs[0].job_id;
  consumer::OutcomeWriter writer(path_, nullptr, offsets_, 512, 1h);
  offsets_.assign(0);
  offsets_.taken(0, 0);
  writer.mark_running({{job}, {batch.batch_id}});
  writer.submit(not_modified(job), {job, 0, 0, Clock::now()});
  ASSERT_TRUE(poll_until([&] { return job_status(job) == "not_modified"; })) << job_status(job);
  EXPECT_EQ(text("SELECT coalesce(started_at, 'never') FROM jobs WHERE id = " + std::to_string(job)), "never");
  EXPECT_EQ(batch_status(batch.batch_id), "completed");
  // Stopping does not wait for marks that are not due (here: in an hour).
  const auto stopping = Clock::now();
  writer.stop();
  EXPECT_LT(Clock::now() - stopping, 5s);
}

TEST_F(OutcomeWriterTest, WithoutADelayATakenJobIsWrittenRunningAtOnce) {
  auto batch = create(1);
  const int64_t job = batch.jobs[0].job_id;
  consumer::OutcomeWriter writer(path_, nullptr, offsets_, 512, 0ms);
  writer.mark_running({{job}, {batch.batch_id}});
  EXPECT_TRUE(poll_until([&] { return job_status(job) == "running"; })) << job_status(job);
  EXPECT_EQ(batch_status(batch.batch_id), "running");
}

}  // namespace
}  // namespace feedpipe
