#include "consumer/worker/read_ahead.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace feedpipe::consumer {

void ReadAhead::read(int timeout_ms, const HasRoom& has_room, const Take& take, size_t batch) {
  while (!waiting_.empty() && has_room()) {
    take(*waiting_.front());
    waiting_.pop_front();
  }
  if (waiting_.size() >= max_) pause(true);
  else if (waiting_.empty()) pause(false);
  for (size_t n = 0; n < batch && (n == 0 || waiting_.size() < max_); ++n) {
    std::unique_ptr<RdKafka::Message> msg(kafka_->consume(n == 0 ? timeout_ms : 0));
    if (msg->err() == RdKafka::ERR__TIMED_OUT) break;
    if (msg->err() == RdKafka::ERR__PARTITION_EOF) continue;
    if (msg->err() != RdKafka::ERR_NO_ERROR) {
      spdlog::warn("kafka consume: {}", msg->errstr());
      break;
    }
    if (waiting_.empty() && has_room())
      take(*msg);
    else
      waiting_.push_back(std::move(msg));  // a message fetched before a pause lands here too
  }
}

void ReadAhead::on_assign(RdKafka::KafkaConsumer& kafka, const std::vector<RdKafka::TopicPartition*>& partitions) {
  auto rc = paused_ ? kafka.pause(const_cast<std::vector<RdKafka::TopicPartition*>&>(partitions))
                    : kafka.resume(const_cast<std::vector<RdKafka::TopicPartition*>&>(partitions));
  if (rc != RdKafka::ERR_NO_ERROR) spdlog::warn("kafka pause/resume on assign: {}", RdKafka::err2str(rc));
}

void ReadAhead::on_revoke(const std::vector<int32_t>& partitions) {
  std::erase_if(waiting_, [&](const auto& m) {
    return std::find(partitions.begin(), partitions.end(), m->partition()) != partitions.end();
  });
}

void ReadAhead::pause(bool pause) {
  if (pause == paused_) return;
  std::vector<RdKafka::TopicPartition*> parts;
  if (kafka_->assignment(parts) != RdKafka::ERR_NO_ERROR) return;
  auto rc = pause ? kafka_->pause(parts) : kafka_->resume(parts);
  RdKafka::TopicPartition::destroy(parts);
  if (rc != RdKafka::ERR_NO_ERROR) {
    spdlog::warn("kafka {}: {}", pause ? "pause" : "resume", RdKafka::err2str(rc));
    return;
  }
  paused_ = pause;
}

}  // namespace feedpipe::consumer
