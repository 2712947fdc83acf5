#include "consumer/worker/outcome_publisher.h"

#include <spdlog/spdlog.h>

#include <thread>

#include "common/metrics.h"
#include "common/outcome_message.h"

namespace feedpipe::consumer {
namespace {

metrics::Counter& published_total() {
  static auto& c = metrics::counter("feedpipe_outcomes_published_total",
                                    "Job outcomes Kafka acknowledged on feed.refresh.outcomes.");
  return c;
}

metrics::Counter& too_large_total() {
  static auto& c = metrics::counter("feedpipe_outcomes_too_large_total",
                                    "Job outcomes too large for the outcomes topic (their jobs failed).");
  return c;
}

}  // namespace

OutcomePublisher::OutcomePublisher(const KafkaSettings& kafka, OffsetTracker& offsets)
    : offsets_(offsets), max_message_bytes_(kafka.max_message_bytes) {
  kafka_ = std::make_unique<KafkaProducer>(
      kafka, producer_client(kafka, "outcomes producer"),
      [this](uint64_t id, RdKafka::ErrorCode err) { on_delivery(id, err); },
      std::vector<std::string>{std::string(kOutcomesTopic)});
}

OutcomePublisher::~OutcomePublisher() { kafka_.reset(); }

std::string OutcomePublisher::too_large_reason(size_t bytes, int limit) {
  return "outcome of " + std::to_string(bytes) + " bytes exceeds the outcome topic's limit of " +
         std::to_string(limit) + " bytes";
}

// Entries of pending_ stay where they are until erased (unordered_map nodes), and only the
// code handling an entry's message touches it: produce() below, or the message's delivery report
// once it was queued. So the lock guards the map, and Kafka is called without it (a full local
// queue makes produce() wait for the poll thread, which needs the lock to report deliveries).
void OutcomePublisher::submit(const std::string& batch_id, const JobOutcome& outcome, JobRef ref) {
  Pending fresh;
  fresh.batch_id = batch_id;
  fresh.payload = serialize_outcome(batch_id, outcome);
  fresh.summary = outcome;
  fresh.summary.fetch.reset();
  fresh.ref = ref;
  uint64_t id;
  Pending* p;
  {
    std::lock_guard lock(mu_);
    id = next_id_++;
    p = &pending_.emplace(id, std::move(fresh)).first->second;
  }
  send(id, *p);
}

void OutcomePublisher::send(uint64_t id, Pending& p) {
  std::string error;
  RdKafka::ErrorCode code = RdKafka::ERR_NO_ERROR;
  if (kafka_->produce(kOutcomesTopic, p.batch_id, p.payload, id, &error, &code)) return;
  if (code == RdKafka::ERR_MSG_SIZE_TOO_LARGE && !p.replacement)
    return replace_with_failure(id, p, too_large_reason(p.payload.size(), max_message_bytes_));
  // Not even queued (the local queue stayed full): the offset stays in flight, so the job is
  // redelivered after a restart or a rebalance.
  spdlog::error("outcome of job {} not queued for Kafka ({}); the job will be redelivered", p.summary.job_id, error);
  std::lock_guard lock(mu_);
  pending_.erase(id);
}

void OutcomePublisher::replace_with_failure(uint64_t id, Pending& p, const std::string& reason) {
  too_large_total().add();
  spdlog::warn("job {} of batch {} fails: {}", p.summary.job_id, p.batch_id, reason);
  JobOutcome failed = p.summary;
  failed.status = JobStatus::failed;
  failed.error = reason;
  failed.retry_after_s.reset();
  p.payload = serialize_outcome(p.batch_id, failed);
  p.replacement = true;
  send(id, p);
}

void OutcomePublisher::on_delivery(uint64_t id, RdKafka::ErrorCode err) {
  Pending* p;
  {
    std::lock_guard lock(mu_);
    auto it = pending_.find(id);
    if (it == pending_.end()) return;
    if (err == RdKafka::ERR_NO_ERROR) {
      offsets_.done(it->second.ref.partition, it->second.ref.offset);
      ++published_;
      published_total().add();
      pending_.erase(it);
      return;
    }
    p = &it->second;
  }
  if (err == RdKafka::ERR_MSG_SIZE_TOO_LARGE && !p->replacement) {
    // The broker refused it: the topic's max.message.bytes is below the producer's limit.
    std::string reason = "outcome of " + std::to_string(p->payload.size()) +
                         " bytes exceeds the outcome topic's limit (the broker refused it: " +
                         RdKafka::err2str(err) + ")";
    return replace_with_failure(id, *p, reason);
  }
  if (closing_ || err == RdKafka::ERR__PURGE_QUEUE || err == RdKafka::ERR__PURGE_INFLIGHT) {
    std::lock_guard lock(mu_);  // dropped at close: the job is redelivered
    pending_.erase(id);
    return;
  }
  // librdkafka already retried for message.timeout.ms: try again, keeping the offset in flight.
  spdlog::warn("outcome of job {} not delivered to Kafka ({}); publishing it again", p->summary.job_id,
               RdKafka::err2str(err));
  send(id, *p);
}

bool OutcomePublisher::flush(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (pending_.empty()) return true;
    }
    if (std::chrono::steady_clock::now() >= deadline) return false;
    kafka_->flush(50);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

void OutcomePublisher::close(std::chrono::milliseconds timeout) {
  closing_ = true;
  kafka_->close(timeout);
}

uint64_t OutcomePublisher::published() const {
  std::lock_guard lock(mu_);
  return published_;
}

}  // namespace feedpipe::consumer
