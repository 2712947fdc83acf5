#pragma once
// Reads every partition of feed.refresh.events and hands each event to a callback. Not a
// consumer-group member: partitions are assigned explicitly, so every broadcaster replica reads
// every event, and no offsets are committed. Reading starts at the end of each partition as it
// was when ready() turned true (history comes from the hub's source, SQLite or the API, not Kafka).
//
// Threading: one thread of its own calls the callback, one event at a time. start(), stop() and
// ready() may be called from any thread.
// Errors: the constructor throws KafkaError for a bad configuration. An unreachable broker is
// retried until stop(); payloads that are not events are logged and skipped; an exception from
// the callback is logged and the event skipped.
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <thread>

#include "common/kafka.h"
#include "common/model.h"

namespace feedpipe {

class EventReader {
 public:
  using Callback = std::function<void(const EventMessage&)>;

  EventReader(const KafkaSettings& settings, Callback on_event);
  ~EventReader();  // stop(10 s)
  EventReader(const EventReader&) = delete;
  EventReader& operator=(const EventReader&) = delete;

  void start();
  // Stops reading and closes the Kafka handle, waiting for it up to `close_timeout`.
  void stop(std::chrono::milliseconds close_timeout = std::chrono::seconds(10));
  // True once every partition is assigned: events produced from then on are delivered.
  bool ready() const { return ready_.load(); }

 private:
  void run();
  void assign_all();

  Callback on_event_;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> ready_{false};
  std::thread thread_;
};

}  // namespace feedpipe
