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
#include "consumer/worker/read_ahead.h"

namespace feedpipe::consumer {
namespace {

metrics::Counter& skipped_total(const std::string& reason) {
  return metrics::counter("feedpipe_outcomes_skipped_total",
                          "Messages of feed.refresh.outcomes the recorder could not read, by reason.",
                          "reason=\"" + reason + "\"");
}

}  // namespace

class Recorder::Loop : public RdKafka::RebalanceCb {
 public:
  explicit Loop(RecorderSettings settings)
      : settings_(std::move(settings)), read_ahead_(settings_.max_read_ahead) {
    // Register the skip counters up front, so that /metrics shows them at 0.
    for (const char* reason : {"malformed", "unknown_version", "bad_fields"}) skipped_total(reason);
    events_ = std::make_unique<KafkaProducer>(settings_.kafka, event_producer_client(settings_.kafka), nullptr,
                                             std::vector<std::string>{std::string(kEventsTopic)});
    writer_ = std::make_unique<OutcomeWriter>(settings_.db_path, events_.get(), offsets_, settings_.max_write_group);
    const auto& k = settings_.kafka;
    auto client = consumer_client(k, "recorder consumer", settings_.group_id);
    client.defaults["session.timeout.ms"] = std::to_string(k.session_timeout_ms);
    client.defaults["heartbeat.interval.ms"] = std::to_string(std::max(100, k.session_timeout_ms / 6));
    client.required["auto.offset.reset"] = "earliest";
    client.required["partition.assignment.strategy"] = "cooperative-sticky";
    auto conf = make_conf(k, client);
    std::string err;
    if (conf->set("rebalance_cb", static_cast<RdKafka::RebalanceCb*>(this), err) != RdKafka::Conf::CONF_OK)
      throw KafkaError("rebalance_cb: " + err);
    kafka_.reset(RdKafka::KafkaConsumer::create(conf.get(), err));
    if (!kafka_) throw KafkaError("cannot create Kafka consumer: " + err);
    read_ahead_.attach(kafka_.get());
    auto rc = kafka_->subscribe({std::string(kOutcomesTopic)});
    if (rc != RdKafka::ERR_NO_ERROR)
      throw KafkaError("cannot subscribe to " + std::string(kOutcomesTopic) + ": " + RdKafka::err2str(rc));
  }

  void rebalance_cb(RdKafka::KafkaConsumer* consumer, RdKafka::ErrorCode err,
                    std::vector<RdKafka::TopicPartition*>& partitions) override {
    bool cooperative = consumer->rebalance_protocol() == "COOPERATIVE";
    std::vector<int32_t> ids;
    for (auto* tp : partitions) ids.push_back(tp->partition());
    RdKafka::Error* e = nullptr;
    if (err == RdKafka::ERR__ASSIGN_PARTITIONS) {
      for (int32_t p : ids) offsets_.assign(p);
      if (cooperative) e = consumer->incremental_assign(partitions);
      else consumer->assign(partitions);
      read_ahead_.on_assign(*consumer, partitions);
      spdlog::info("recorder assigned {} partition(s)", ids.size());
      joined_ = true;
    } else {
      // What is recorded is committed; outcomes still in the writer are read again by the new
      // owner, and recording them twice changes nothing.
      read_ahead_.on_revoke(ids);
      commit(offsets_.revoke(ids), !closing_);
      if (cooperative) e = consumer->incremental_unassign(partitions);
      else consumer->unassign();
      spdlog::info("recorder revoked {} partition(s)", ids.size());
    }
    if (e) {
      spdlog::error("recorder rebalance: {}", e->str());
      delete e;
    }
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
        commit(offsets_.to_commit(), false);
        next_commit = std::chrono::steady_clock::now() + settings_.commit_interval;
      }
    }
    drain();
  }

  void stop() { stopping_ = true; }
  bool joined() const { return joined_; }
  RecorderStats stats() const { return {read_, writer_->written(), skipped_}; }

 private:
  void step() {
    read_ahead_.read(
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

  void commit(const std::vector<PartitionOffset>& offsets, bool sync) {
    if (offsets.empty()) return;
    std::vector<RdKafka::TopicPartition*> tps;
    for (const auto& po : offsets)
      tps.push_back(RdKafka::TopicPartition::create(std::string(kOutcomesTopic), po.partition, po.offset));
    std::optional<ShutdownWait> wait;
    if (sync) wait.emplace("Kafka to answer the recorder's synchronous offset commit (rebalance)");
    auto rc = sync ? kafka_->commitSync(tps) : kafka_->commitAsync(tps);
    if (rc != RdKafka::ERR_NO_ERROR && rc != RdKafka::ERR__NO_OFFSET)
      spdlog::warn("offset commit failed: {} (outcomes will be read again and change nothing)", RdKafka::err2str(rc));
    RdKafka::TopicPartition::destroy(tps);
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
    // librdkafka before 2.3 aborts (its issue #4312) when a cooperative-sticky consumer is
    // destroyed between JoinGroup and SyncGroup: let a join in progress finish first.
    if (!joined_ && RdKafka::version() < 0x020300ff) {
      while (!joined_ && std::chrono::steady_clock::now() < deadline)
        std::unique_ptr<RdKafka::Message>(kafka_->consume(50));  // read here, stays uncommitted
    }
    auto kafka_deadline = std::chrono::steady_clock::now() + settings_.kafka_close_timeout;
    closing_ = true;
    commit(offsets_.to_commit(), false);  // close waits for it
    close_consumer(kafka_, settings_.kafka_close_timeout, "the recorder");
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(kafka_deadline - std::chrono::steady_clock::now());
    events_->close(std::max(left, std::chrono::milliseconds(0)));
  }

  RecorderSettings settings_;
  OffsetTracker offsets_;
  std::unique_ptr<KafkaProducer> events_;
  std::unique_ptr<OutcomeWriter> writer_;
  std::unique_ptr<RdKafka::KafkaConsumer> kafka_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> joined_{false};
  ReadAhead read_ahead_;  // loop thread only (the rebalance callback runs inside consume(), on it)
  bool closing_ = false;  // only the loop's thread reads it (in rebalance_cb, served there)
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
