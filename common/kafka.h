#pragma once
// Kafka wrappers over librdkafka: client configuration with feedpipe's defaults, a producer
// with delivery reports, topic creation, and the embedded broker (librdkafka's mock cluster)
// that standalone, kafka-mock and the tests use in place of a real cluster.
#include <librdkafka/rdkafkacpp.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

struct rd_kafka_mock_cluster_s;

namespace feedpipe {

class KafkaError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One `key=value` line of a --kafka-config file.
struct KafkaProperty {
  std::string name, value;
  int line = 0;
};

struct KafkaSettings {
  std::string brokers;              // bootstrap servers, host:port[,host:port]
  int partitions = 12;              // for topics feedpipe creates
  int linger_ms = 5;                // job producer: batching helps throughput
  // The producer of events: latency first. One request in flight at a time, sent without
  // lingering; what is produced while it is in flight goes out together in the next one.
  int events_linger_ms = 0;
  int fetch_wait_max_ms = 10;       // librdkafka's default (500) caps a consumer at a few thousand msg/s
  int session_timeout_ms = 6000;
  std::string compression = "lz4";  // producers' compression.type (none, gzip, snappy, lz4, zstd)
  // Producers' message.max.bytes: the largest message they send (a larger one is refused with
  // ERR_MSG_SIZE_TOO_LARGE); the topics feedpipe creates accept kMaxMessageBytes.
  int max_message_bytes = 16 << 20;
  // --kafka-config: properties for every client, applied over feedpipe's defaults.
  std::string config_file;
  std::vector<KafkaProperty> file_properties;
  // Properties whose --kafka-* flag was given explicitly (not its default): they win over the file.
  std::set<std::string> explicit_properties;
  std::map<std::string, std::string> extra;  // set by code (tests), applied after the file and flags
};

// Parses a client.properties file (the format of Kafka's tools and `kcat -F`): `key=value`
// lines, `#` and `!` comment lines, blank lines; whitespace around key and value is trimmed.
// Throws ConfigError naming `path` and the line (never its text: it may hold a secret).
std::vector<KafkaProperty> parse_kafka_config(std::string_view text, const std::string& path);
std::vector<KafkaProperty> read_kafka_config(const std::string& path);

// Refuses, with a ConfigError naming the file and line, a file property feedpipe's correctness
// depends on (offset commits, group ids, idempotence, callbacks) or one librdkafka rejects.
void check_kafka_config(const KafkaSettings& settings);

// sasl.password, ssl.key.pem, any name containing "password" or "secret", ...
bool is_secret_kafka_property(std::string_view name);
// `text` with the value of every secret property set so far replaced by "[redacted]".
std::string redact_kafka_secrets(std::string text);

// What one client sets on top of the common properties. Build one with producer_client() or
// consumer_client() and add to it; then make_conf().
struct KafkaClientConf {
  std::string name;                             // in logs: "jobs producer", "group consumer", ...
  std::map<std::string, std::string> defaults;  // feedpipe's tuning: the file may change it
  std::map<std::string, std::string> required;  // what the client depends on: refused in the file
};
// Idempotent (enable.idempotence, acks=all); linger.ms, compression.type and message.max.bytes
// from the settings.
KafkaClientConf producer_client(const KafkaSettings& settings, std::string name);
// Offsets committed by feedpipe only (no auto commit or store); fetch.wait.max.ms from the settings.
KafkaClientConf consumer_client(const KafkaSettings& settings, std::string name, std::string group_id);

// The one place a client's configuration is built, in this order: client.id=feedpipe and
// client.defaults; the --kafka-config file; the defaults whose --kafka-* flag was given
// explicitly; bootstrap.servers (settings.brokers); settings.extra; client.required and feedpipe's
// log callback. Logs the properties at debug level ("kafka client NAME: ...", secrets redacted).
// Throws ConfigError for a property librdkafka rejects or a file property the client requires.
// A client puts its tuning in client.defaults, not in set_conf() calls after make_conf(), so
// that the file can change it.
std::unique_ptr<RdKafka::Conf> make_conf(const KafkaSettings& settings, const KafkaClientConf& client);
// Sets one property; throws ConfigError with librdkafka's message (a secret's value redacted).
void set_conf(RdKafka::Conf& conf, const std::string& name, const std::string& value);

// The producer of events: latency first. events_linger_ms, one request in flight.
KafkaClientConf event_producer_client(const KafkaSettings& settings);

// Creates feed.refresh.jobs, feed.refresh.events and feed.refresh.outcomes when missing, with
// max.message.bytes of 16 MiB (existing topics are kept as they are).
void ensure_topics(const KafkaSettings& settings);

// The number of partitions of a topic, from the cluster's metadata.
int partition_count(RdKafka::Handle& handle, const std::string& topic, int timeout_ms = 5000);

// Closes `consumer` (what it must wait for: commits in flight, the group's LeaveGroup answer),
// serving its callbacks (rebalance_cb) on this thread, for up to `timeout`, then destroys it.
// librdkafka's own close() has no timeout and hung on a broker that died at that moment. Past the
// timeout the handle is leaked (destroying it would wait again) and the give-up recorded: the
// process must then end with _exit (common/shutdown_wait.h, commands/signals.h). `name` says
// which consumer, in logs. True when it closed.
bool close_consumer(std::unique_ptr<RdKafka::KafkaConsumer>& consumer, std::chrono::milliseconds timeout,
                    const std::string& name);

// A producer whose delivery reports go to one callback, served by a thread of its own.
// Idempotent (acks=all, enable.idempotence), small linger. Thread-safe.
class KafkaProducer {
 public:
  // Called for every message once Kafka acknowledged or finally rejected it. `opaque` is the
  // value given to produce(). Runs on the producer's poll thread.
  using DeliveryCallback = std::function<void(uint64_t opaque, RdKafka::ErrorCode err)>;

  // `name` names it in logs ("jobs producer"); its configuration is producer_client()'s.
  KafkaProducer(const KafkaSettings& settings, const std::string& name, DeliveryCallback on_delivery);
  // `topics`: the topics it will produce to. Their metadata is read as soon as the producer starts:
  // librdkafka otherwise looks up a topic first produced to only at its next one-second topic
  // scan, which held the first events of a new consumer back for up to a second.
  KafkaProducer(const KafkaSettings& settings, const KafkaClientConf& client, DeliveryCallback on_delivery,
                std::vector<std::string> topics = {});
  ~KafkaProducer();  // close(5 s) unless closed

  // Waits up to `timeout` for Kafka to acknowledge outstanding messages, then drops those left
  // (their delivery reports say ERR__PURGE_*) and stops serving reports; false when any was
  // dropped. Call it once, when nothing is produced any more.
  bool close(std::chrono::milliseconds timeout);

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
  void learn_topics();
  std::unique_ptr<Reporter> reporter_;
  std::unique_ptr<RdKafka::Producer> producer_;
  std::vector<std::unique_ptr<RdKafka::Topic>> topics_;  // kept known to the producer
  std::atomic<bool> stop_{false};
  std::thread poller_;
  bool closed_ = false;
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
