#include "broadcaster/event_reader.h"

#include "broadcaster/delivery_metrics.h"
#include "common/config.h"
#include "common/metrics.h"
#include "common/thread_name.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <vector>

namespace feedpipe {
namespace {

// The C++ API wants a group.id even when no group is joined; a unique one keeps replicas apart.
std::string unique_group_id() {
  std::random_device rd;
  return "feedpipe-broadcaster-" + std::to_string(::getpid()) + "-" + std::to_string(rd());
}

}  // namespace

EventReader::EventReader(const KafkaSettings& settings, Callback on_event)
    : on_event_(std::move(on_event)) {
  auto client = consumer_client(settings, "events reader", unique_group_id());
  client.required["enable.partition.eof"] = "false";
  auto conf = make_conf(settings, client);
  std::string err;
  consumer_.reset(RdKafka::KafkaConsumer::create(conf.get(), err));
  if (!consumer_) throw ConfigError("cannot create the Kafka events reader: " + redact_kafka_secrets(err));
}

EventReader::~EventReader() { stop(); }

void EventReader::start() {
  if (thread_.joinable()) return;
  thread_ = named_thread("fp-event-read", [this] { run(); });
}

void EventReader::stop(std::chrono::milliseconds close_timeout) {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (consumer_) {
    consumer_->unassign();
    close_consumer(consumer_, close_timeout, "the events reader");
  }
  ready_ = false;
}

// Assigns every partition at its current end. Explicit offsets (rather than OFFSET_END, which is
// resolved later) make ready() exact: nothing produced after it is skipped.
void EventReader::assign_all() {
  const std::string topic(kEventsTopic);
  int partitions = partition_count(*consumer_, topic, 2000);
  std::vector<RdKafka::TopicPartition*> assignment;
  for (int p = 0; p < partitions; ++p) {
    int64_t low = 0, high = RdKafka::Topic::OFFSET_END;
    if (consumer_->query_watermark_offsets(topic, p, &low, &high, 2000) != RdKafka::ERR_NO_ERROR)
      high = RdKafka::Topic::OFFSET_END;
    assignment.push_back(RdKafka::TopicPartition::create(topic, p, high));
  }
  auto rc = consumer_->assign(assignment);
  RdKafka::TopicPartition::destroy(assignment);
  if (rc != RdKafka::ERR_NO_ERROR)
    throw KafkaError("cannot assign " + topic + ": " + RdKafka::err2str(rc));
  spdlog::info("reading {} partitions of {}", partitions, topic);
}

void EventReader::run() {
  auto last_warning = std::chrono::steady_clock::time_point{};
  while (!stop_) {
    if (!ready_) {
      try {
        assign_all();
        ready_ = true;
      } catch (const KafkaError& e) {
        auto now = std::chrono::steady_clock::now();
        if (now - last_warning > std::chrono::seconds(10)) {
          spdlog::warn("events reader: {} (retrying)", e.what());
          last_warning = now;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        continue;
      }
    }
    std::unique_ptr<RdKafka::Message> msg(consumer_->consume(100));
    switch (msg->err()) {
      case RdKafka::ERR_NO_ERROR:
        break;
      case RdKafka::ERR__TIMED_OUT:
      case RdKafka::ERR__PARTITION_EOF:
        continue;
      default:
        spdlog::warn("events reader: {}", msg->errstr());
        continue;
    }
    EventMessage event;
    try {
      event = event_message_from_json(
          std::string_view(static_cast<const char*>(msg->payload()), msg->len()));
    } catch (const std::exception& e) {
      spdlog::warn("events reader: skipping a message at {}[{}]@{}: {}", msg->topic_name(),
                   msg->partition(), msg->offset(), e.what());
      continue;
    }
    delivery::observe_arrival(event.data);
    try {
      on_event_(event);
    } catch (const std::exception& e) {
      spdlog::warn("events reader: batch {} seq {}: {}", event.batch_id, event.seq, e.what());
    }
  }
}

}  // namespace feedpipe
