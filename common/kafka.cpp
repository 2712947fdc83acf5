#include "common/kafka.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <spdlog/spdlog.h>

#include <fstream>
#include <mutex>
#include <sstream>

#include "common/config.h"
#include "common/model.h"
#include "common/shutdown_wait.h"
#include "common/thread_name.h"

namespace feedpipe {
namespace {

// Values of secret properties, scrubbed from librdkafka's log lines and from error messages;
// longest first, so that a secret holding another is scrubbed whole.
struct LongestFirst {
  bool operator()(const std::string& a, const std::string& b) const {
    return a.size() != b.size() ? a.size() > b.size() : a < b;
  }
};
std::mutex g_secrets_mu;
std::set<std::string, LongestFirst> g_secrets;

void remember_secret(const std::string& value) {
  if (value.empty()) return;
  std::lock_guard lock(g_secrets_mu);
  g_secrets.insert(value);
}

class LogCb : public RdKafka::EventCb {
 public:
  void event_cb(RdKafka::Event& event) override {
    switch (event.type()) {
      case RdKafka::Event::EVENT_ERROR:
        // Broker connection errors are retried by librdkafka; they matter only when they last.
        spdlog::warn("kafka: {} ({})", redact_kafka_secrets(event.str()), RdKafka::err2str(event.err()));
        break;
      case RdKafka::Event::EVENT_LOG:
        if (event.severity() <= RdKafka::Event::EVENT_SEVERITY_WARNING)
          spdlog::warn("kafka {}: {}", event.fac(), redact_kafka_secrets(event.str()));
        else
          spdlog::debug("kafka {}: {}", event.fac(), redact_kafka_secrets(event.str()));
        break;
      default:
        break;
    }
  }
};

LogCb g_log_cb;

// File properties feedpipe's correctness depends on, with the reason given when one is refused.
const std::map<std::string, std::string, std::less<>> kRefused = {
    {"group.id", "feedpipe names its consumer groups itself"},
    {"group.instance.id", "every consumer of the process would share it"},
    {"enable.auto.commit", "feedpipe commits offsets itself, only after a job's outcome is recorded"},
    {"auto.commit.enable", "feedpipe commits offsets itself, only after a job's outcome is recorded"},
    {"enable.auto.offset.store", "feedpipe commits offsets itself, only after a job's outcome is recorded"},
    {"auto.offset.reset", "feedpipe's consumers choose where they start reading"},
    {"enable.partition.eof", "feedpipe's consumers choose it"},
    {"partition.assignment.strategy", "the consumer's rebalance handling expects cooperative-sticky"},
    {"enable.idempotence", "jobs and events must not be lost or duplicated when a send is retried"},
    {"acks", "jobs and events must not be lost or duplicated when a send is retried"},
    {"request.required.acks", "jobs and events must not be lost or duplicated when a send is retried"},
    {"transactional.id", "feedpipe's producers are not transactional"},
};

std::string refusal(std::string_view name) {
  if (auto it = kRefused.find(name); it != kRefused.end()) return it->second;
  if (name.size() > 3 && name.substr(name.size() - 3) == "_cb") return "feedpipe installs its own callbacks";
  return "";
}

std::string file_place(const KafkaSettings& settings, const KafkaProperty& p) {
  return "--kafka-config " + settings.config_file + " line " + std::to_string(p.line) + ": ";
}

// "name=value, ..." with secrets redacted, for the debug log line of each client.
std::string describe(const std::map<std::string, std::string>& properties) {
  std::string out;
  for (const auto& [k, v] : properties) {
    if (!out.empty()) out += ", ";
    out += k + "=" + (is_secret_kafka_property(k) ? "[redacted]" : v);
  }
  return out;
}

}  // namespace

bool is_secret_kafka_property(std::string_view name) {
  return name.find("password") != std::string_view::npos || name.find("secret") != std::string_view::npos ||
         name == "ssl.key.pem" || name == "sasl.oauthbearer.config";
}

std::string redact_kafka_secrets(std::string text) {
  std::lock_guard lock(g_secrets_mu);
  for (const auto& secret : g_secrets)
    for (auto pos = text.find(secret); pos != std::string::npos; pos = text.find(secret, pos + 10))
      text.replace(pos, secret.size(), "[redacted]");
  return text;
}

std::vector<KafkaProperty> parse_kafka_config(std::string_view text, const std::string& path) {
  std::vector<KafkaProperty> properties;
  int line_no = 0;
  while (!text.empty()) {
    auto nl = text.find('\n');
    std::string_view line = trim_space(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_no;
    if (line.empty() || line.front() == '#' || line.front() == '!') continue;
    auto eq = line.find('=');
    std::string_view name = trim_space(line.substr(0, eq));
    if (eq == std::string_view::npos || name.empty())
      throw ConfigError("--kafka-config " + path + " line " + std::to_string(line_no) +
                        ": expected key=value");
    properties.push_back({std::string(name), std::string(trim_space(line.substr(eq + 1))), line_no});
  }
  return properties;
}

std::vector<KafkaProperty> read_kafka_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError("--kafka-config " + path + ": cannot read the file");
  std::ostringstream text;
  text << in.rdbuf();
  return parse_kafka_config(text.str(), path);
}

void check_kafka_config(const KafkaSettings& settings) {
  std::unique_ptr<RdKafka::Conf> scratch(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  for (const auto& p : settings.file_properties) {
    if (std::string why = refusal(p.name); !why.empty())
      throw ConfigError(file_place(settings, p) + p.name + " cannot be set here: " + why);
    try {
      set_conf(*scratch, p.name, p.value);
    } catch (const ConfigError& e) {
      throw ConfigError(file_place(settings, p) + e.what());
    }
  }
}

KafkaClientConf producer_client(const KafkaSettings& settings, std::string name) {
  KafkaClientConf c{std::move(name), {}, {}};
  c.defaults = {{"linger.ms", std::to_string(settings.linger_ms)},
                {"compression.type", settings.compression},
                {"message.max.bytes", std::to_string(settings.max_message_bytes)}};
  c.required = {{"enable.idempotence", "true"}, {"acks", "all"}};
  return c;
}

KafkaClientConf consumer_client(const KafkaSettings& settings, std::string name, std::string group_id) {
  KafkaClientConf c{std::move(name), {}, {}};
  c.defaults = {{"fetch.wait.max.ms", std::to_string(settings.fetch_wait_max_ms)}};
  c.required = {{"group.id", std::move(group_id)},
                {"enable.auto.commit", "false"},
                {"enable.auto.offset.store", "false"}};
  return c;
}

void set_conf(RdKafka::Conf& conf, const std::string& name, const std::string& value) {
  const bool secret = is_secret_kafka_property(name);
  if (secret) remember_secret(value);
  std::string err;
  if (conf.set(name, value, err) != RdKafka::Conf::CONF_OK)
    throw ConfigError("kafka property " + name + "=" + (secret ? "[redacted]" : value) + ": " +
                      redact_kafka_secrets(err));
}

std::unique_ptr<RdKafka::Conf> make_conf(const KafkaSettings& settings, const KafkaClientConf& client) {
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  if (settings.brokers.empty()) throw KafkaError("no Kafka brokers given (--brokers)");
  std::map<std::string, std::string> applied;  // the last value of each, for the log line
  auto set = [&](const std::string& name, const std::string& value) {
    set_conf(*conf, name, value);
    applied[name] = value;
  };
  set("client.id", "feedpipe");
  for (const auto& [k, v] : client.defaults) set(k, v);
  for (const auto& p : settings.file_properties) {
    if (client.required.count(p.name))
      throw ConfigError(file_place(settings, p) + p.name + " cannot be set here: the " + client.name +
                        " depends on its own value");
    try {
      set(p.name, p.value);
    } catch (const ConfigError& e) {
      throw ConfigError(file_place(settings, p) + e.what());
    }
  }
  for (const auto& [k, v] : client.defaults)
    if (settings.explicit_properties.count(k)) set(k, v);
  // --brokers (or the file's bootstrap.servers, which kafka_settings() took when no flag was given).
  set("bootstrap.servers", settings.brokers);
  for (const auto& [k, v] : settings.extra) set(k, v);
  for (const auto& [k, v] : client.required) set(k, v);
  std::string err;
  if (conf->set("event_cb", static_cast<RdKafka::EventCb*>(&g_log_cb), err) != RdKafka::Conf::CONF_OK)
    throw KafkaError("kafka event_cb: " + err);
  spdlog::debug("kafka client {}: {}", client.name, describe(applied));
  return conf;
}

// The embedded broker answers a fetch with at most one produced request's messages per partition
// (rdkafka_mock_handlers.c), and a real broker's fetch sessions favour few large batches too: a
// producer that sends each event as it comes makes a reader take one round trip per event.
// With one request in flight, the events produced during a round trip travel together in the
// next request, so batches grow with the load while an event alone leaves at once.
KafkaClientConf event_producer_client(const KafkaSettings& settings) {
  KafkaClientConf c = producer_client(settings, "events producer");
  c.defaults["linger.ms"] = std::to_string(settings.events_linger_ms);
  c.defaults["max.in.flight.requests.per.connection"] = "1";
  return c;
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
  // The admin requests go through a plain producer handle (no delivery reports, nothing produced).
  auto conf = make_conf(settings, {"admin", {}, {}});
  std::string err;
  std::unique_ptr<RdKafka::Producer> admin(RdKafka::Producer::create(conf.get(), err));
  if (!admin) throw ConfigError("cannot create the Kafka admin client: " + redact_kafka_secrets(err));
  rd_kafka_t* rk = admin->c_ptr();
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
    if (found == 3) return;
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
  if (!failure.empty()) throw KafkaError("cannot create topics: " + failure);
}

bool close_consumer(std::unique_ptr<RdKafka::KafkaConsumer>& consumer, std::chrono::milliseconds timeout,
                    const std::string& name) {
  if (!consumer) return true;
  std::string what = name + " closing (rd_kafka_consumer_close: offset commits, LeaveGroup)";
  ShutdownWait wait(what);
  rd_kafka_t* rk = consumer->c_ptr();
  rd_kafka_queue_t* queue = rd_kafka_queue_new(rk);
  if (rd_kafka_error_t* error = rd_kafka_consumer_close_queue(rk, queue)) {
    spdlog::warn("{}: close: {}", name, rd_kafka_error_string(error));
    rd_kafka_error_destroy(error);
  } else {
    // Served as rd_kafka_consumer_close() serves it: callbacks run here, messages still fetched
    // are dropped (their offsets stay uncommitted). RdKafka::Queue::poll() would abort on them.
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!rd_kafka_consumer_closed(rk) && std::chrono::steady_clock::now() < deadline)
      if (rd_kafka_message_t* message = rd_kafka_consume_queue(queue, 20)) rd_kafka_message_destroy(message);
    if (!rd_kafka_consumer_closed(rk)) {
      spdlog::warn("{}: Kafka did not let it close within {} ms; giving up (offsets not committed "
                   "are redelivered)", name, timeout.count());
      shutdown_gave_up(what);
      consumer.release();  // leaked with its queue: destroying either would wait again
      return false;
    }
  }
  rd_kafka_queue_destroy(queue);
  consumer.reset();
  return true;
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

KafkaProducer::KafkaProducer(const KafkaSettings& settings, const std::string& name, DeliveryCallback on_delivery)
    : KafkaProducer(settings, producer_client(settings, name), std::move(on_delivery)) {}

KafkaProducer::KafkaProducer(const KafkaSettings& settings, const KafkaClientConf& client,
                             DeliveryCallback on_delivery, std::vector<std::string> topics)
    : reporter_(std::make_unique<Reporter>(std::move(on_delivery))) {
  auto conf = make_conf(settings, client);
  std::string err;
  if (conf->set("dr_cb", static_cast<RdKafka::DeliveryReportCb*>(reporter_.get()), err) !=
      RdKafka::Conf::CONF_OK)
    throw KafkaError("kafka dr_cb: " + err);
  producer_.reset(RdKafka::Producer::create(conf.get(), err));
  if (!producer_) throw ConfigError("cannot create the Kafka " + client.name + ": " + redact_kafka_secrets(err));
  for (const auto& topic_name : topics) {
    std::unique_ptr<RdKafka::Topic> topic(RdKafka::Topic::create(producer_.get(), topic_name, nullptr, err));
    if (!topic) throw KafkaError("topic " + topic_name + ": " + err);
    topics_.push_back(std::move(topic));
  }
  poller_ = named_thread("fp-kafka-poll", [this] {
    learn_topics();
    while (!stop_) producer_->poll(50);
  });
}

KafkaProducer::~KafkaProducer() {
  if (!closed_) close(std::chrono::seconds(5));
}

bool KafkaProducer::close(std::chrono::milliseconds timeout) {
  closed_ = true;
  bool all = true;
  {
    ShutdownWait wait("Kafka to acknowledge " + std::to_string(outstanding()) + " produced message(s)");
    producer_->flush(static_cast<int>(timeout.count()));
  }
  if (int left = outstanding(); left > 0) {
    // A broker that is gone or frozen: waiting longer would hold the shutdown (and
    // rd_kafka_destroy would wait for in-flight requests).
    spdlog::warn("Kafka did not acknowledge {} message(s) within {} ms; dropping them", left, timeout.count());
    producer_->purge(RdKafka::Producer::PURGE_QUEUE | RdKafka::Producer::PURGE_INFLIGHT |
                     RdKafka::Producer::PURGE_NON_BLOCKING);
    all = false;
  }
  stop_ = true;
  poller_.join();
  producer_->poll(0);
  return all;
}

void KafkaProducer::learn_topics() {
  for (const auto& topic : topics_) {
    for (int attempt = 0; !stop_; ++attempt) {
      RdKafka::Metadata* raw = nullptr;
      auto rc = producer_->metadata(false, topic.get(), &raw, 1000);
      delete raw;
      if (rc == RdKafka::ERR_NO_ERROR) break;
      if (attempt == 0)  // librdkafka still finds the topic by itself, only later
        spdlog::debug("kafka: no metadata for {} yet: {}", topic->name(), RdKafka::err2str(rc));
      if (attempt >= 4) break;
    }
  }
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
