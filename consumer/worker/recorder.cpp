#include "consumer/worker/recorder.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <optional>

#include "common/db_pool.h"
#include "common/metrics.h"
#include "common/outcome_message.h"
#include "common/shutdown_wait.h"
#include "common/thread_name.h"
#include "consumer/worker/offset_tracker.h"
#include "consumer/worker/outcome_writer.h"
#include "consumer/worker/group_member.h"

namespace feedpipe::consumer {
namespace {

metrics::Counter& skipped_total(const std::string& reason) {
  return metrics::counter("feedpipe_outcomes_skipped_total",
                          "Messages of feed.refresh.outcomes the recorder could not read, by reason.",
                          "reason=\"" + reason + "\"");
}

}  // namespace

class Recorder::Loop {
 public:
  explicit Loop(RecorderSettings settings)
      : settings_(std::move(settings)) {
    // Register the skip counters up front, so that /metrics shows them at 0.
    for (const char* reason : {"malformed", "unknown_version", "bad_fields"}) skipped_total(reason);
    events_ = std::make_unique<KafkaProducer>(settings_.kafka, event_producer_client(settings_.kafka), nullptr,
                                             std::vector<std::string>{std::string(kEventsTopic)});
    writer_ = std::make_unique<OutcomeWriter>(settings_.db_path, events_.get(), offsets_, settings_.max_write_group,
                                               std::chrono::milliseconds(0));  // it is told outcomes only
    member_ = std::make_unique<GroupMember>(
        settings_.kafka,
        GroupMemberOptions{"recorder", std::string(kOutcomesTopic), settings_.group_id, "recorder consumer",
                           settings_.max_read_ahead, "outcomes will be read again and change nothing", nullptr,
                           &metrics::gauge("feedpipe_kafka_recorder_lag",
                                           "Outcome messages not yet recorded on the partitions of feed.refresh.outcomes "
                                           "assigned to this recorder: log end offset less the group's committed offset.")},
        offsets_);
  }

  void run() {
    auto next_commit = std::chrono::steady_clock::now() + settings_.commit_interval;
    while (!stopping_) {
      try {
        step();
      } catch (const std::exception& e) {
        spdlog::error("recorder loop: {}", e.what());
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      if (std::chrono::steady_clock::now() >= next_commit) {
        member_->commit_finished();
        next_commit = std::chrono::steady_clock::now() + settings_.commit_interval;
      }
    }
    drain();
  }

  void stop() { stopping_ = true; }
  bool joined() const { return member_->joined(); }
  RecorderStats stats() const { return {read_, writer_->written(), skipped_}; }

 private:
  void step() {
    member_->read(
        50, [&] { return offsets_.in_flight() < settings_.max_backlog; }, [&](RdKafka::Message& msg) { take(msg); });
  }

  void take(RdKafka::Message& msg) {
    const int32_t partition = msg.partition();
    const int64_t offset = msg.offset();
    offsets_.taken(partition, offset);
    ++read_;
    OutcomeMessage m;
    try {
      m = read_outcome_message(std::string_view(static_cast<const char*>(msg.payload()), msg.len()));
    } catch (const OutcomeMessageError& e) {
      // Nothing a retry would change: skip it, so that the partition goes on.
      spdlog::warn("skipping message at {}[{}]@{}: {}", kOutcomesTopic, partition, offset, e.what());
      skipped_total(e.reason()).add();
      ++skipped_;
      offsets_.done(partition, offset);
      return;
    }
    const int64_t job_id = m.outcome.job_id;
    writer_->submit(std::move(m.outcome), {job_id, partition, offset, std::chrono::steady_clock::now()});
  }

  // The writer records what was read (at most the backlog; once stopped it gives up on a
  // failing database after three attempts); Kafka (the last commits, the group leave, the events)
  // gets the close timeout; what Kafka does not take is read again and changes nothing.
  void drain() {
    auto deadline = std::chrono::steady_clock::now() + settings_.drain_timeout;
    {
      ShutdownWait wait("the recorder's SQLite writer");
      writer_->stop();  // records everything read so far
    }
    member_->finish_joining(deadline);
    auto kafka_deadline = std::chrono::steady_clock::now() + settings_.kafka_close_timeout;
    member_->close(settings_.kafka_close_timeout);
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(kafka_deadline - std::chrono::steady_clock::now());
    events_->close(std::max(left, std::chrono::milliseconds(0)));
  }

  RecorderSettings settings_;
  OffsetTracker offsets_;
  std::unique_ptr<KafkaProducer> events_;
  std::unique_ptr<OutcomeWriter> writer_;
  std::unique_ptr<GroupMember> member_;  // after offsets_, which it uses
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> read_{0}, skipped_{0};
};

Recorder::Recorder(RecorderSettings settings) : loop_(std::make_unique<Loop>(std::move(settings))) {}

Recorder::~Recorder() { stop(); }

void Recorder::start() {
  thread_ = named_thread("fp-recorder", [this] { loop_->run(); });
}

void Recorder::begin_stop() {
  if (thread_.joinable()) loop_->stop();
}

void Recorder::stop() {
  if (!thread_.joinable()) return;
  loop_->stop();
  thread_.join();
}

std::string Recorder::readiness() const {
  return loop_->joined() ? "" : "recorder group not joined yet";
}

RecorderStats Recorder::stats() const { return loop_->stats(); }

}  // namespace feedpipe::consumer
