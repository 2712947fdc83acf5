#pragma once
// Kafka wrappers over librdkafka: client configuration with feedpipe's defaults, a producer
// with delivery reports, topic creation, and the embedded broker (librdkafka's mock cluster)
// that standalone, kafka-mock and the tests use in place of a real cluster.
#include <librdkafka/rdkafkacpp.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>

struct rd_kafka_mock_cluster_s;

namespace feedpipe {

class KafkaError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct KafkaSettings {
  std::string brokers;              // bootstrap servers, host:port[,host:port]
  int partitions = 12;              // for topics feedpipe creates
  int linger_ms = 5;
  int fetch_wait_max_ms = 10;       // librdkafka's default (500) caps a consumer at a few thousand msg/s
  int session_timeout_ms = 6000;
  std::string compression = "lz4";  // producers' compression.type (none, gzip, snappy, lz4, zstd)
  // Producers' message.max.bytes: the largest message they send (a larger one is refused with
  // ERR_MSG_SIZE_TOO_LARGE); the topics feedpipe creates accept kMaxMessageBytes.
  int max_message_bytes = 16 << 20;
  std::map<std::string, std::string> extra;  // any librdkafka property, applied last
};

// A configuration with the common properties set; throws KafkaError on a bad property.
std::unique_ptr<RdKafka::Conf> make_conf(const KafkaSettings& settings);
void set_conf(RdKafka::Conf& conf, const std::string& name, const std::string& value);

// Creates feed.refresh.jobs, feed.refresh.events and feed.refresh.outcomes when missing, with
// max.message.bytes of 16 MiB (existing topics are kept as they are).
void ensure_topics(const KafkaSettings& settings);

// The number of partitions of a topic, from the cluster's metadata.
int partition_count(RdKafka::Handle& handle, const std::string& topic, int timeout_ms = 5000);

// A producer whose delivery reports go to one callback, served by a thread of its own.
// Idempotent (acks=all, enable.idempotence), small linger. Thread-safe.
class KafkaProducer {
 public:
  // Called for every message once Kafka acknowledged or finally rejected it. `opaque` is the
  // value given to produce(). Runs on the producer's poll thread.
  using DeliveryCallback = std::function<void(uint64_t opaque, RdKafka::ErrorCode err)>;

  KafkaProducer(const KafkaSettings& settings, DeliveryCallback on_delivery);
  ~KafkaProducer();  // flushes for up to 5 s

  // Queues a message; false (with the reason in `error`, librdkafka's code in `code`) when it
  // cannot even be queued.
  bool produce(std::string_view topic, std::string_view key, std::string_view value,
               uint64_t opaque = 0, std::string* error = nullptr, RdKafka::ErrorCode* code = nullptr);
  // Waits for outstanding messages; true when none is left.
  bool flush(int timeout_ms);
  int outstanding() const { return producer_->outq_len(); }
  RdKafka::Producer& handle() { return *producer_; }

 private:
  class Reporter;
  std::unique_ptr<Reporter> reporter_;
  std::unique_ptr<RdKafka::Producer> producer_;
  std::atomic<bool> stop_{false};
  std::thread poller_;
};

// librdkafka's mock cluster: a Kafka protocol server on loopback, in this process. It keeps
// messages in memory only. Creates feedpipe's topics with `partitions` partitions.
class EmbeddedBroker {
 public:
  explicit EmbeddedBroker(int partitions = 12, int brokers = 1);
  ~EmbeddedBroker();
  const std::string& bootstrap() const { return bootstrap_; }
  rd_kafka_mock_cluster_s* cluster() { return cluster_; }

 private:
  std::unique_ptr<RdKafka::Producer> owner_;  // the mock cluster lives inside a client handle
  rd_kafka_mock_cluster_s* cluster_ = nullptr;
  std::string bootstrap_;
};

}  // namespace feedpipe
