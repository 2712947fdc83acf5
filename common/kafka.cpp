#include "common/kafka.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <spdlog/spdlog.h>

#include "common/model.h"
#include "common/thread_name.h"

namespace feedpipe {
namespace {

class LogCb : public RdKafka::EventCb {
 public:
  void event_cb(RdKafka::Event& event) override {
    switch (event.type()) {
      case RdKafka::Event::EVENT_ERROR:
        // Broker connection errors are retried by librdkafka; they matter only when they last.
        spdlog::warn("kafka: {} ({})", event.str(), RdKafka::err2str(event.err()));
        break;
      case RdKafka::Event::EVENT_LOG:
        if (event.severity() <= RdKafka::Event::EVENT_SEVERITY_WARNING)
          spdlog::warn("kafka {}: {}", event.fac(), event.str());
        else
          spdlog::debug("kafka {}: {}", event.fac(), event.str());
        break;
      default:
        break;
    }
  }
};

LogCb g_log_cb;

}  // namespace

void set_conf(RdKafka::Conf& conf, const std::string& name, const std::string& value) {
  std::string err;
  if (conf.set(name, value, err) != RdKafka::Conf::CONF_OK)
    throw KafkaError("kafka setting " + name + "=" + value + ": " + err);
}

std::unique_ptr<RdKafka::Conf> make_conf(const KafkaSettings& settings) {
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  if (settings.brokers.empty()) throw KafkaError("no Kafka brokers given (--brokers)");
  set_conf(*conf, "bootstrap.servers", settings.brokers);
  set_conf(*conf, "client.id", "feedpipe");
  std::string err;
  if (conf->set("event_cb", static_cast<RdKafka::EventCb*>(&g_log_cb), err) != RdKafka::Conf::CONF_OK)
    throw KafkaError("kafka event_cb: " + err);
  for (const auto& [k, v] : settings.extra) set_conf(*conf, k, v);
  return conf;
}

int partition_count(RdKafka::Handle& handle, const std::string& topic, int timeout_ms) {
  std::string err;
  std::unique_ptr<RdKafka::Topic> t(RdKafka::Topic::create(&handle, topic, nullptr, err));
  if (!t) throw KafkaError("topic " + topic + ": " + err);
  RdKafka::Metadata* raw = nullptr;
  auto rc = handle.metadata(false, t.get(), &raw, timeout_ms);
  std::unique_ptr<RdKafka::Metadata> md(raw);
  if (rc != RdKafka::ERR_NO_ERROR)
    throw KafkaError("cannot read metadata of " + topic + ": " + RdKafka::err2str(rc));
  for (const auto* tm : *md->topics())
    if (tm->topic() == topic) {
      if (tm->err() != RdKafka::ERR_NO_ERROR)
        throw KafkaError("topic " + topic + ": " + RdKafka::err2str(tm->err()));
      return static_cast<int>(tm->partitions()->size());
    }
  throw KafkaError("topic " + topic + " not found");
}

void ensure_topics(const KafkaSettings& settings) {
  char errstr[512];
  rd_kafka_conf_t* cconf = rd_kafka_conf_new();
  rd_kafka_conf_set(cconf, "bootstrap.servers", settings.brokers.c_str(), errstr, sizeof errstr);
  for (const auto& [k, v] : settings.extra)
    rd_kafka_conf_set(cconf, k.c_str(), v.c_str(), errstr, sizeof errstr);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, cconf, errstr, sizeof errstr);
  if (!rk) throw KafkaError(std::string("kafka admin client: ") + errstr);
  // Topics that exist are kept as they are (and a mock cluster has no CreateTopics).
  const rd_kafka_metadata_t* md = nullptr;
  if (rd_kafka_metadata(rk, 1, nullptr, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    int found = 0;
    for (int i = 0; i < md->topic_cnt; ++i) {
      std::string name = md->topics[i].topic;
      if ((name == kJobsTopic || name == kEventsTopic || name == kOutcomesTopic) &&
          md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR)
        ++found;
    }
    rd_kafka_metadata_destroy(md);
    if (found == 3) {
      rd_kafka_destroy(rk);
      return;
    }
  }
  constexpr int kTopics = 3;
  rd_kafka_NewTopic_t* topics[kTopics];
  const std::string names[kTopics] = {std::string(kJobsTopic), std::string(kEventsTopic), std::string(kOutcomesTopic)};
  const std::string max_bytes = std::to_string(kMaxMessageBytes);
  for (int i = 0; i < kTopics; ++i) {
    topics[i] = rd_kafka_NewTopic_new(names[i].c_str(), settings.partitions, -1, errstr, sizeof errstr);
    // Outcomes carry a feed's parsed items: let every topic take messages of up to 16 MiB.
    rd_kafka_NewTopic_set_config(topics[i], "max.message.bytes", max_bytes.c_str());
  }
  rd_kafka_queue_t* queue = rd_kafka_queue_new(rk);
  rd_kafka_AdminOptions_t* options = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
  rd_kafka_AdminOptions_set_operation_timeout(options, 10000, errstr, sizeof errstr);
  rd_kafka_CreateTopics(rk, topics, kTopics, options, queue);
  rd_kafka_event_t* ev = rd_kafka_queue_poll(queue, 15000);
  std::string failure;
  if (!ev) {
    failure = "no answer from the brokers within 15 s";
  } else if (rd_kafka_event_error(ev)) {
    failure = rd_kafka_event_error_string(ev);
  } else {
    size_t n = 0;
    const rd_kafka_topic_result_t** results =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
    for (size_t i = 0; i < n; ++i) {
      auto err = rd_kafka_topic_result_error(results[i]);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
        spdlog::info("created topic {} with {} partitions", rd_kafka_topic_result_name(results[i]),
                     settings.partitions);
      else if (err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
        failure += std::string(rd_kafka_topic_result_name(results[i])) + ": " +
                   rd_kafka_err2str(err) + "; ";
    }
  }
  if (ev) rd_kafka_event_destroy(ev);
  rd_kafka_AdminOptions_destroy(options);
  rd_kafka_queue_destroy(queue);
  rd_kafka_NewTopic_destroy_array(topics, kTopics);
  rd_kafka_destroy(rk);
  if (!failure.empty()) throw KafkaError("cannot create topics: " + failure);
}

class KafkaProducer::Reporter : public RdKafka::DeliveryReportCb {
 public:
  explicit Reporter(DeliveryCallback cb) : cb_(std::move(cb)) {}
  void dr_cb(RdKafka::Message& msg) override {
    if (cb_) cb_(reinterpret_cast<uint64_t>(msg.msg_opaque()), msg.err());
  }

 private:
  DeliveryCallback cb_;
};

KafkaProducer::KafkaProducer(const KafkaSettings& settings, DeliveryCallback on_delivery)
    : reporter_(std::make_unique<Reporter>(std::move(on_delivery))) {
  auto conf = make_conf(settings);
  set_conf(*conf, "enable.idempotence", "true");
  set_conf(*conf, "acks", "all");
  set_conf(*conf, "linger.ms", std::to_string(settings.linger_ms));
  set_conf(*conf, "compression.type", settings.compression);
  set_conf(*conf, "message.max.bytes", std::to_string(settings.max_message_bytes));
  for (const auto& [k, v] : settings.extra) set_conf(*conf, k, v);
  std::string err;
  if (conf->set("dr_cb", static_cast<RdKafka::DeliveryReportCb*>(reporter_.get()), err) !=
      RdKafka::Conf::CONF_OK)
    throw KafkaError("kafka dr_cb: " + err);
  producer_.reset(RdKafka::Producer::create(conf.get(), err));
  if (!producer_) throw KafkaError("cannot create Kafka producer: " + err);
  poller_ = named_thread("fp-kafka-poll", [this] {
    while (!stop_) producer_->poll(50);
  });
}

KafkaProducer::~KafkaProducer() {
  producer_->flush(5000);
  stop_ = true;
  poller_.join();
  producer_->poll(0);
}

bool KafkaProducer::produce(std::string_view topic, std::string_view key, std::string_view value,
                            uint64_t opaque, std::string* error, RdKafka::ErrorCode* code) {
  for (int attempt = 0;; ++attempt) {
    auto rc = producer_->produce(std::string(topic), RdKafka::Topic::PARTITION_UA,
                                 RdKafka::Producer::RK_MSG_COPY, const_cast<char*>(value.data()),
                                 value.size(), key.data(), key.size(), 0,
                                 reinterpret_cast<void*>(opaque));
    if (rc == RdKafka::ERR_NO_ERROR) return true;
    // A full local queue drains as the poll thread serves delivery reports.
    if (rc == RdKafka::ERR__QUEUE_FULL && attempt < 100) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    if (error) *error = RdKafka::err2str(rc);
    if (code) *code = rc;
    return false;
  }
}

bool KafkaProducer::flush(int timeout_ms) {
  return producer_->flush(timeout_ms) == RdKafka::ERR_NO_ERROR;
}

EmbeddedBroker::EmbeddedBroker(int partitions, int brokers) {
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  std::string err;
  conf->set("client.id", "feedpipe-embedded-broker", err);
  conf->set("log_level", "3", err);  // the owner handle never connects; keep it quiet
  owner_.reset(RdKafka::Producer::create(conf.get(), err));
  if (!owner_) throw KafkaError("cannot create the embedded broker's handle: " + err);
  cluster_ = rd_kafka_mock_cluster_new(owner_->c_ptr(), brokers);
  if (!cluster_) throw KafkaError("cannot start the embedded Kafka broker (librdkafka mock cluster)");
  bootstrap_ = rd_kafka_mock_cluster_bootstraps(cluster_);
  // The mock cluster checks no message size (no max.message.bytes to set).
  for (auto topic : {kJobsTopic, kEventsTopic, kOutcomesTopic}) {
    auto rc = rd_kafka_mock_topic_create(cluster_, std::string(topic).c_str(), partitions, 1);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR)
      throw KafkaError("embedded broker: cannot create topic " + std::string(topic) + ": " +
                       rd_kafka_err2str(rc));
  }
}

EmbeddedBroker::~EmbeddedBroker() {
  if (cluster_) rd_kafka_mock_cluster_destroy(cluster_);
}

}  // namespace feedpipe
