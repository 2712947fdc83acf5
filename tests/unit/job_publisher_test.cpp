// The outbox: acknowledgements recorded, unacknowledged and stuck jobs published again.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <thread>

#include "common/db_pool.h"
#include "producer/batch_intake.h"
#include "producer/job_publisher.h"
#include "tests/support/temp_db.h"

namespace feedpipe::producer {
namespace {

using namespace std::chrono_literals;

// Reads job messages from every partition of the jobs topic (and, if asked, the partition of each).
std::vector<JobMessage> read_jobs(const std::string& brokers, size_t want, std::chrono::milliseconds timeout,
                                  std::vector<int32_t>* partitions = nullptr) {
  KafkaSettings k;
  k.brokers = brokers;
  auto conf = make_conf(k, consumer_client(k, "test reader", "job-publisher-test"));
  std::string err;
  std::unique_ptr<RdKafka::KafkaConsumer> c(RdKafka::KafkaConsumer::create(conf.get(), err));
  std::vector<RdKafka::TopicPartition*> parts;
  for (int p = 0; p < 12; ++p)
    parts.push_back(RdKafka::TopicPartition::create(std::string(kJobsTopic), p, RdKafka::Topic::OFFSET_BEGINNING));
  c->assign(parts);
  RdKafka::TopicPartition::destroy(parts);
  std::vector<JobMessage> jobs;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (jobs.size() < want && std::chrono::steady_clock::now() < deadline) {
    std::unique_ptr<RdKafka::Message> m(c->consume(100));
    if (m->err() != RdKafka::ERR_NO_ERROR) continue;
    jobs.push_back(job_message_from_json({static_cast<const char*>(m->payload()), m->len()}));
    if (partitions) partitions->push_back(m->partition());
  }
  c->close();
  return jobs;
}

TEST(JobPublisher, RecordsAcknowledgementsAndRepublishesStuckJobs) {
  static EmbeddedBroker broker;
  testing::TempDb tmp;
  const std::string& path = tmp.path();
  Database& db = thread_db(path);
  auto created = std::get<CreatedBatch>(create_batch(db, {{"http://a.test/1", "http://a.test/2"}}, "", ""));

  PublisherSettings settings{path, KafkaSettings{}, 100ms, false, 1000ms};
  settings.kafka.brokers = broker.bootstrap();
  {
    JobPublisher publisher(settings);
    publisher.start();
    publisher.publish(created.jobs);
    ASSERT_EQ(read_jobs(broker.bootstrap(), 2, 10s).size(), 2u);
    auto published = [&] {
      auto q = db.prepare("SELECT count(*) FROM jobs WHERE published = 1");
      q.step();
      return q.int64(0);
    };
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (published() < 2 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(20ms);
    EXPECT_EQ(published(), 2);

    // A consumer took job 1 long ago and vanished: the lease runs out and it is sent again,
    // with what the feed's row says by then (validators, a Retry-After still running).
    db.prepare("UPDATE feeds SET etag = '\"v2\"', last_modified = 'Mon, 01 Jan 2024 12:00:00 GMT', "
               "next_fetch_at = '2999-01-01T00:00:00Z' WHERE id = ?")
        .bind(1, created.jobs[0].feed_id)
        .run();
    db.prepare("UPDATE jobs SET status = 'running', started_at = '2000-01-01T00:00:00Z' WHERE id = ?")
        .bind(1, created.jobs[0].job_id)
        .run();
    auto again = read_jobs(broker.bootstrap(), 3, 10s);
    ASSERT_EQ(again.size(), 3u);
    EXPECT_EQ(again[2].job_id == created.jobs[0].job_id || again[0].job_id == created.jobs[0].job_id ||
                  again[1].job_id == created.jobs[0].job_id,
              true);
    // (A sweep before the first acknowledgements were recorded may have sent it once more before.)
    std::vector<JobMessage> resent;
    for (auto until = std::chrono::steady_clock::now() + 10s; resent.empty() && std::chrono::steady_clock::now() < until;)
      for (const JobMessage& job : read_jobs(broker.bootstrap(), 100, 1s))
        if (job.job_id == created.jobs[0].job_id && !job.etag.empty()) resent.push_back(job);
    ASSERT_GE(resent.size(), 1u);  // (the lease of this test is 1 s: it may have run out again)
    EXPECT_EQ(resent[0].etag, "\"v2\"");
    EXPECT_EQ(resent[0].last_modified, "Mon, 01 Jan 2024 12:00:00 GMT");
    EXPECT_EQ(resent[0].not_before, "2999-01-01T00:00:00Z");
    publisher.stop();
  }
}

// The intake numbers a batch's jobs partition by partition (see create_batch); the partitioner it
// is given must put each job where Kafka's producer does, or the order is only a guess.
void expect_each_job_where_kafka_puts_it(const std::string& configured_partitioner) {
  EmbeddedBroker broker;
  testing::TempDb tmp;
  Database& db = thread_db(tmp.path());
  PublisherSettings settings{tmp.path(), KafkaSettings{}, 100ms, false, 300000ms};
  settings.kafka.brokers = broker.bootstrap();
  if (!configured_partitioner.empty()) settings.kafka.extra["partitioner"] = configured_partitioner;
  JobPublisher publisher(settings);
  EXPECT_FALSE(publisher.partitioner());  // the partition count is read by the outbox thread
  publisher.start();
  ASSERT_TRUE(testing::wait_until([&] { return bool(publisher.partitioner()); }, 10s));
  auto partition_of = publisher.partitioner();

  std::vector<std::string> urls;
  for (int i = 0; i < 60; ++i) urls.push_back("http://feeds.test/" + std::to_string(i) + ".xml");
  auto created = std::get<CreatedBatch>(create_batch(db, {urls}, "", "", partition_of));
  publisher.publish(created.jobs);
  std::vector<int32_t> partitions;
  auto jobs = read_jobs(broker.bootstrap(), urls.size(), 10s, &partitions);
  ASSERT_EQ(jobs.size(), urls.size());
  std::map<int64_t, int32_t> partition_by_job;
  for (size_t i = 0; i < jobs.size(); ++i) {
    EXPECT_EQ(partitions[i], partition_of(jobs[i].url)) << jobs[i].url;
    partition_by_job[jobs[i].job_id] = partitions[i];
  }
  // In job id order, the partitions never go back: each partition's jobs are one run of ids.
  std::set<int32_t> used;
  int32_t last = -1;
  for (const auto& [job_id, partition] : partition_by_job) {
    EXPECT_GE(partition, last) << "job " << job_id;
    last = partition;
    used.insert(partition);
  }
  EXPECT_GT(used.size(), 3u);  // 60 URLs over 12 partitions
  publisher.stop();
}

TEST(JobPublisher, ItsPartitionerPlacesEveryJobWhereKafkaPutsIt) { expect_each_job_where_kafka_puts_it(""); }

TEST(JobPublisher, ItsPartitionerFollowsTheConfiguredOne) {
  expect_each_job_where_kafka_puts_it("murmur2_random");  // the Java client's placement
}

TEST(JobPublisher, ARandomPartitionerLeavesTheJobsInSubmittedOrder) {
  EmbeddedBroker broker;
  testing::TempDb tmp;
  PublisherSettings settings{tmp.path(), KafkaSettings{}, 100ms, false, 300000ms};
  settings.kafka.brokers = broker.bootstrap();
  settings.kafka.extra["partitioner"] = "random";
  JobPublisher publisher(settings);
  publisher.start();
  ASSERT_TRUE(testing::wait_until([&] { return publisher.job_partitions() > 0; }, 10s));
  EXPECT_FALSE(publisher.partitioner());
  publisher.stop();
}

}  // namespace
}  // namespace feedpipe::producer
