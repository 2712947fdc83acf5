#include "consumer/worker/read_ahead.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace feedpipe::consumer {

void ReadAhead::read(int timeout_ms, const HasRoom& has_room, const Take& take, size_t batch) {
  while (!waiting_.empty() && has_room()) {
    take(*waiting_.front());
    waiting_.pop_front();
  }
  if (waiting_.size() >= max_) hold(true);
  else if (waiting_.empty()) hold(false);
  for (size_t n = 0; n < batch && (n == 0 || waiting_.size() < max_); ++n) {
    std::unique_ptr<RdKafka::Message> msg(kafka_->consume(n == 0 ? timeout_ms : 0));
    if (msg->err() == RdKafka::ERR__TIMED_OUT) break;
    if (msg->err() == RdKafka::ERR__PARTITION_EOF) continue;
    if (msg->err() != RdKafka::ERR_NO_ERROR) {
      spdlog::warn("kafka consume: {}", msg->errstr());
      break;
    }
    Partition& p = partition(msg->partition());
    if (p.assigned && !p.started) {
      p.started = true;
      if (holding_) set_paused({msg->partition()}, true);
    }
    if (waiting_.empty() && has_room())
      take(*msg);
    else
      waiting_.push_back(std::move(msg));  // a message fetched before a pause lands here too
  }
}

void ReadAhead::on_assign(const std::vector<RdKafka::TopicPartition*>& partitions) {
  for (auto* tp : partitions) {
    topic_ = tp->topic();
    partition(tp->partition()) = Partition{true, false, false};
  }
}

void ReadAhead::on_revoke(const std::vector<RdKafka::TopicPartition*>& partitions) {
  std::vector<int32_t> ids, paused;
  for (auto* tp : partitions) {
    ids.push_back(tp->partition());
    if (partition(tp->partition()).paused) paused.push_back(tp->partition());
  }
  set_paused(paused, false);
  for (int32_t id : ids) partition(id) = Partition{};
  std::erase_if(waiting_, [&](const auto& m) { return std::find(ids.begin(), ids.end(), m->partition()) != ids.end(); });
}

size_t ReadAhead::paused_partitions() const {
  return static_cast<size_t>(std::count_if(partitions_.begin(), partitions_.end(), [](const Partition& p) { return p.paused; }));
}

ReadAhead::Partition& ReadAhead::partition(int32_t id) {
  if (id < 0) id = 0;
  if (static_cast<size_t>(id) >= partitions_.size()) partitions_.resize(static_cast<size_t>(id) + 1);
  return partitions_[static_cast<size_t>(id)];
}

// Asks again for what an earlier call failed to do: a partition left paused would never be read.
void ReadAhead::hold(bool hold) {
  holding_ = hold;
  std::vector<int32_t> ids;
  for (size_t id = 0; id < partitions_.size(); ++id) {
    const Partition& p = partitions_[id];
    if (hold ? (p.assigned && p.started && !p.paused) : p.paused) ids.push_back(static_cast<int32_t>(id));
  }
  set_paused(ids, hold);
}

void ReadAhead::set_paused(const std::vector<int32_t>& ids, bool pause) {
  if (ids.empty() || !kafka_) return;
  std::vector<RdKafka::TopicPartition*> parts;
  for (int32_t id : ids) parts.push_back(RdKafka::TopicPartition::create(topic_, id));
  auto rc = pause ? kafka_->pause(parts) : kafka_->resume(parts);
  if (rc != RdKafka::ERR_NO_ERROR) spdlog::warn("kafka {}: {}", pause ? "pause" : "resume", RdKafka::err2str(rc));
  for (size_t i = 0; i < parts.size(); ++i)
    if (rc == RdKafka::ERR_NO_ERROR && parts[i]->err() == RdKafka::ERR_NO_ERROR) partition(ids[i]).paused = pause;
  RdKafka::TopicPartition::destroy(parts);
}

}  // namespace feedpipe::consumer
