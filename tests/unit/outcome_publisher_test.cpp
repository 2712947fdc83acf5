// The outcome publisher of a consumer without a database: offsets released only once Kafka
// acknowledged the outcome, and an outcome the broker refuses as too large replaced by a small
// failed one with the reason (the embedded broker checks no size: the refusal is injected).
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <thread>

#include "common/kafka.h"
#include "common/outcome_message.h"
#include "consumer/worker/outcome_publisher.h"

namespace feedpipe::consumer {
namespace {

using namespace std::chrono_literals;

constexpr int16_t kProduceApiKey = 0;

std::vector<OutcomeMessage> read_outcomes(const std::string& brokers, size_t want, std::chrono::milliseconds timeout) {
  KafkaSettings k;
  k.brokers = brokers;
  auto conf = make_conf(k, consumer_client(k, "test reader", "outcome-publisher-test"));
  std::string err;
  std::unique_ptr<RdKafka::KafkaConsumer> c(RdKafka::KafkaConsumer::create(conf.get(), err));
  std::vector<RdKafka::TopicPartition*> parts{
      RdKafka::TopicPartition::create(std::string(kOutcomesTopic), 0, RdKafka::Topic::OFFSET_BEGINNING)};
  c->assign(parts);
  RdKafka::TopicPartition::destroy(parts);
  std::vector<OutcomeMessage> out;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (out.size() < want && std::chrono::steady_clock::now() < deadline) {
    std::unique_ptr<RdKafka::Message> m(c->consume(100));
    if (m->err() == RdKafka::ERR_NO_ERROR)
      out.push_back(read_outcome_message({static_cast<const char*>(m->payload()), m->len()}));
  }
  c->close();
  return out;
}

JobOutcome ok_outcome(int64_t job_id) {
  JobOutcome o;
  o.job_id = job_id;
  o.status = JobStatus::ok;
  o.http_status = 200;
  o.duration_ms = 12;
  o.fetch = FeedFetch{"http://a.test/", "\"e\"", "", "Feed", "http://a.test/", {}};
  for (int i = 0; i < 3; ++i) o.fetch->items.push_back({"g" + std::to_string(i), "", "Item", "", "", "", "", ""});
  return o;
}

TEST(OutcomePublisher, ReleasesOffsetsOnAcknowledgementAndFailsAJobWhoseOutcomeTheBrokerRefusesAsTooLarge) {
  EmbeddedBroker broker(1);
  KafkaSettings kafka;
  kafka.brokers = broker.bootstrap();
  OffsetTracker offsets;
  offsets.assign(0);
  OutcomePublisher publisher(kafka, offsets);
  const auto now = std::chrono::steady_clock::now();

  offsets.taken(0, 0);
  publisher.submit("b1", ok_outcome(1), {1, 0, 0, now});
  ASSERT_TRUE(publisher.flush(10s));
  EXPECT_EQ(offsets.in_flight(), 0u);
  EXPECT_EQ(publisher.published(), 1u);

  // The broker refuses the next produce request as too large for the topic.
  rd_kafka_mock_push_request_errors(broker.cluster(), kProduceApiKey, 1, RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
  offsets.taken(0, 1);
  publisher.submit("b1", ok_outcome(2), {2, 0, 1, now});
  ASSERT_TRUE(publisher.flush(20s));
  EXPECT_EQ(offsets.in_flight(), 0u);
  EXPECT_EQ(publisher.published(), 2u);

  auto outcomes = read_outcomes(broker.bootstrap(), 2, 10s);
  ASSERT_EQ(outcomes.size(), 2u);
  EXPECT_EQ(outcomes[0].outcome.job_id, 1);
  EXPECT_EQ(outcomes[0].outcome.status, JobStatus::ok);
  ASSERT_TRUE(outcomes[0].outcome.fetch);
  EXPECT_EQ(outcomes[0].outcome.fetch->items.size(), 3u);
  EXPECT_EQ(outcomes[1].batch_id, "b1");
  EXPECT_EQ(outcomes[1].outcome.job_id, 2);
  EXPECT_EQ(outcomes[1].outcome.status, JobStatus::failed);
  EXPECT_FALSE(outcomes[1].outcome.fetch);
  EXPECT_EQ(outcomes[1].outcome.error.rfind("outcome of ", 0), 0u) << outcomes[1].outcome.error;
  EXPECT_NE(outcomes[1].outcome.error.find("exceeds the outcome topic's limit"), std::string::npos)
      << outcomes[1].outcome.error;
}

TEST(OutcomePublisher, AnOutcomeOverTheProducersLimitFailsItsJobAtOnce) {
  EmbeddedBroker broker(1);
  KafkaSettings kafka;
  kafka.brokers = broker.bootstrap();
  kafka.max_message_bytes = 1000;
  OffsetTracker offsets;
  offsets.assign(0);
  OutcomePublisher publisher(kafka, offsets);
  JobOutcome big = ok_outcome(7);
  big.fetch->items[0].content = std::string(5000, 'x');
  offsets.taken(0, 0);
  publisher.submit("b2", big, {7, 0, 0, std::chrono::steady_clock::now()});
  ASSERT_TRUE(publisher.flush(10s));
  EXPECT_EQ(offsets.in_flight(), 0u);
  auto outcomes = read_outcomes(broker.bootstrap(), 1, 10s);
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].outcome.status, JobStatus::failed);
  const std::string expected =
      OutcomePublisher::too_large_reason(serialize_outcome("b2", big).size(), 1000);
  EXPECT_EQ(outcomes[0].outcome.error, expected);
  EXPECT_NE(expected.find("exceeds the outcome topic's limit of 1000 bytes"), std::string::npos);
}

}  // namespace
}  // namespace feedpipe::consumer
