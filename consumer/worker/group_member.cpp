#include "consumer/worker/group_member.h"

#include <spdlog/spdlog.h>

#include <optional>
#include <thread>

#include "common/config.h"
#include "common/shutdown_wait.h"

namespace feedpipe::consumer {

GroupMember::GroupMember(const KafkaSettings& k, GroupMemberOptions options, OffsetTracker& offsets)
    : options_(std::move(options)), offsets_(offsets), read_ahead_(options_.max_read_ahead) {
  auto client = consumer_client(k, options_.client_name, options_.group_id);
  client.defaults["session.timeout.ms"] = std::to_string(k.session_timeout_ms);
  client.defaults["heartbeat.interval.ms"] = std::to_string(std::max(100, k.session_timeout_ms / 6));
  client.required["auto.offset.reset"] = "earliest";
  client.required["partition.assignment.strategy"] = "cooperative-sticky";
  auto conf = make_conf(k, client);
  std::string err;
  if (conf->set("rebalance_cb", static_cast<RdKafka::RebalanceCb*>(this), err) != RdKafka::Conf::CONF_OK)
    throw KafkaError("rebalance_cb: " + err);
  kafka_.reset(RdKafka::KafkaConsumer::create(conf.get(), err));
  if (!kafka_) throw ConfigError("cannot create the Kafka " + options_.client_name + ": " + redact_kafka_secrets(err));
  read_ahead_.attach(kafka_.get());
  auto rc = kafka_->subscribe({options_.topic});
  if (rc != RdKafka::ERR_NO_ERROR)
    throw KafkaError("cannot subscribe to " + options_.topic + ": " + RdKafka::err2str(rc));
  if (options_.lag_gauge) lag_ = std::make_unique<LagWatcher>(*kafka_, *options_.lag_gauge, options_.lag_interval);
}

GroupMember::~GroupMember() = default;

void GroupMember::rebalance_cb(RdKafka::KafkaConsumer* consumer, RdKafka::ErrorCode err,
                               std::vector<RdKafka::TopicPartition*>& partitions) {
  const bool cooperative = consumer->rebalance_protocol() == "COOPERATIVE";
  std::vector<int32_t> ids;
  for (auto* tp : partitions) ids.push_back(tp->partition());
  RdKafka::Error* e = nullptr;
  const auto n = static_cast<int64_t>(ids.size());
  if (err == RdKafka::ERR__ASSIGN_PARTITIONS) {
    for (int32_t p : ids) offsets_.assign(p);
    if (cooperative) e = consumer->incremental_assign(partitions);
    else consumer->assign(partitions);
    read_ahead_.on_assign(partitions);
    spdlog::info("{} assigned {} partition(s) of {}", options_.role, n, options_.topic);
    if (options_.on_partitions_changed) options_.on_partitions_changed(n);
    joined_ = true;
  } else {
    // Commit what is finished before the partitions move; work still in flight here is read
    // again by the new owner, and recording it twice changes nothing. While closing, the commit
    // is asynchronous: close waits for it, within its own bound.
    read_ahead_.on_revoke(partitions);
    commit(offsets_.revoke(ids), !closing_);
    if (cooperative) e = consumer->incremental_unassign(partitions);
    else consumer->unassign();
    spdlog::info("{} revoked {} partition(s) of {}", options_.role, n, options_.topic);
    if (options_.on_partitions_changed) options_.on_partitions_changed(-n);
  }
  if (e) {
    spdlog::error("{} rebalance: {}", options_.role, e->str());
    delete e;
  }
}

void GroupMember::commit(const std::vector<PartitionOffset>& offsets, bool sync) {
  if (offsets.empty()) return;
  std::vector<RdKafka::TopicPartition*> tps;
  for (const auto& po : offsets) tps.push_back(RdKafka::TopicPartition::create(options_.topic, po.partition, po.offset));
  std::optional<ShutdownWait> wait;
  if (sync) wait.emplace("Kafka to answer the " + options_.role + "'s synchronous offset commit (rebalance)");
  auto rc = sync ? kafka_->commitSync(tps) : kafka_->commitAsync(tps);
  if (rc != RdKafka::ERR_NO_ERROR && rc != RdKafka::ERR__NO_OFFSET)
    spdlog::warn("offset commit failed: {} ({})", RdKafka::err2str(rc), options_.redelivery_note);
  RdKafka::TopicPartition::destroy(tps);
}

void GroupMember::finish_joining(std::chrono::steady_clock::time_point deadline) {
  if (joined_ || RdKafka::version() >= 0x020300ff) return;
  spdlog::info("{} stopping before its first assignment: letting the group join finish first", options_.role);
  while (!joined_ && std::chrono::steady_clock::now() < deadline)
    std::unique_ptr<RdKafka::Message>(kafka_->consume(50));  // a message read here stays uncommitted
  if (!joined_) spdlog::warn("the {} group join did not finish before the drain timeout", options_.role);
}

void GroupMember::close(std::chrono::milliseconds timeout) {
  closing_ = true;
  if (lag_) lag_->stop();
  commit(offsets_.to_commit(), false);  // close waits for it
  close_consumer(kafka_, timeout, "the " + options_.role);
}

}  // namespace feedpipe::consumer
