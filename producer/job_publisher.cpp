#include "producer/job_publisher.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "common/db_pool.h"
#include "common/thread_name.h"

namespace feedpipe::producer {
namespace {

constexpr std::chrono::seconds kPartitionCountRefresh{60};

// The partitioner the jobs producer runs with (librdkafka's `partitioner`, default
// consistent_random), as a function of the key; nullptr when placement is random. The *_random
// variants differ from their plain ones only for an empty key, and a feed URL never is.
JobPublisher::PartitionerFn configured_partitioner(const KafkaSettings& kafka) {
  std::string name = "consistent_random";
  for (const KafkaProperty& p : kafka.file_properties)
    if (p.name == "partitioner") name = p.value;
  if (auto it = kafka.extra.find("partitioner"); it != kafka.extra.end()) name = it->second;
  if (name == "consistent" || name == "consistent_random") return rd_kafka_msg_partitioner_consistent;
  if (name == "murmur2" || name == "murmur2_random") return rd_kafka_msg_partitioner_murmur2;
  if (name == "fnv1a" || name == "fnv1a_random") return rd_kafka_msg_partitioner_fnv1a;
  return nullptr;
}

}  // namespace

JobPublisher::JobPublisher(PublisherSettings settings)
    : settings_(std::move(settings)), place_(configured_partitioner(settings_.kafka)) {
  kafka_ = std::make_unique<KafkaProducer>(
      settings_.kafka, producer_client(settings_.kafka, "jobs producer"),
      [this](uint64_t opaque, RdKafka::ErrorCode err) { on_delivery(opaque, err); },
      std::vector<std::string>{std::string(kJobsTopic)});
}

JobPublisher::~JobPublisher() { stop(); }

void JobPublisher::start() {
  republish(settings_.republish_open_jobs_on_start);
  thread_ = named_thread("fp-outbox", [this] { run(); });
}

void JobPublisher::stop() {
  if (stop_.exchange(true)) return;
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  kafka_->close(settings_.flush_timeout);
  record_acknowledgements();
}

void JobPublisher::publish(const std::vector<JobMessage>& jobs) {
  {
    std::lock_guard lock(mu_);
    for (const auto& job : jobs) in_flight_.insert(job.job_id);
  }
  for (const auto& job : jobs) {
    std::string error;
    if (!kafka_->produce(kJobsTopic, job.url, serialize(job), static_cast<uint64_t>(job.job_id),
                         &error)) {
      spdlog::warn("job {} not queued for Kafka ({}); the outbox sweep will retry", job.job_id, error);
      std::lock_guard lock(mu_);
      in_flight_.erase(job.job_id);
    }
  }
}

void JobPublisher::publish_events(const std::vector<EventMessage>& events) {
  for (const auto& ev : events) kafka_->produce(kEventsTopic, ev.batch_id, serialize(ev), 0);
}

void JobPublisher::on_delivery(uint64_t job_id, RdKafka::ErrorCode err) {
  if (job_id == 0) return;  // an event, not a job
  std::lock_guard lock(mu_);
  in_flight_.erase(static_cast<int64_t>(job_id));
  if (err == RdKafka::ERR_NO_ERROR) {
    acked_.push_back(static_cast<int64_t>(job_id));
    ++acknowledged_;
    if (acked_.size() >= 1000) wake_.notify_one();
  } else {
    spdlog::warn("job {} not delivered to Kafka: {}; the outbox sweep will retry", job_id,
                 RdKafka::err2str(err));
  }
}

void JobPublisher::record_acknowledgements() {
  std::vector<int64_t> ids;
  {
    std::lock_guard lock(mu_);
    ids.swap(acked_);
  }
  if (ids.empty()) return;
  // A batch's jobs have consecutive ids and are acknowledged in order: one UPDATE per run.
  std::sort(ids.begin(), ids.end());
  Database& db = thread_db(settings_.db_path);
  db.write([&] {
    for (size_t first = 0; first < ids.size();) {
      size_t last = first;
      while (last + 1 < ids.size() && ids[last + 1] <= ids[last] + 1) ++last;
      db.prepare("UPDATE jobs SET published = 1 WHERE id BETWEEN ? AND ?").bind(1, ids[first]).bind(2, ids[last]).run();
      first = last + 1;
    }
  });
}

void JobPublisher::republish(bool all_open) {
  Database& db = thread_db(settings_.db_path);
  std::vector<JobMessage> jobs;
  {
    std::lock_guard lock(mu_);
    // The feed's validators and Retry-After travel with the job (for consumers without a database).
    static constexpr const char* kColumns =
        "SELECT j.id, j.batch_id, j.position, f.url, j.feed_id, f.etag, f.last_modified, "
        "CASE WHEN f.next_fetch_at > strftime('%Y-%m-%dT%H:%M:%SZ', 'now') THEN f.next_fetch_at END "
        "FROM jobs j JOIN feeds f ON f.id = j.feed_id ";
    auto q = db.prepare(std::string(kColumns) + (all_open
        ? "WHERE j.status IN ('queued', 'running') ORDER BY j.id"
        : "WHERE j.status IN ('queued', 'running') AND (j.published = 0 OR (j.status = 'running' "
          "AND j.started_at < strftime('%Y-%m-%dT%H:%M:%SZ', 'now', ?1))) ORDER BY j.id LIMIT 10000"));
    if (!all_open)
      q.bind(1, "-" + std::to_string(settings_.running_lease.count() / 1000) + " seconds");
    while (q.step()) {
      int64_t id = q.int64(0);
      if (in_flight_.count(id)) continue;
      jobs.push_back({id, q.text(1), q.int64(2), q.text(3), q.int64(4), q.text(5), q.text(6), q.text(7)});
    }
  }
  if (jobs.empty()) return;
  // Restart the lease of running jobs sent again, so that they are not sent at every sweep.
  db.write([&] {
    for (const auto& job : jobs)
      db.prepare("UPDATE jobs SET started_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') "
                 "WHERE id = ? AND status = 'running'")
          .bind(1, job.job_id)
          .run();
  });
  spdlog::info("publishing {} job(s) again from the outbox", jobs.size());
  publish(jobs);
}

void JobPublisher::run() {
  auto next_sweep = std::chrono::steady_clock::now() + settings_.sweep_interval;
  auto next_partition_count = std::chrono::steady_clock::now();
  while (!stop_) {
    if (std::chrono::steady_clock::now() >= next_partition_count) {
      refresh_partition_count();
      // Read again now and then: an operator may add partitions to the topic.
      next_partition_count = std::chrono::steady_clock::now() +
                             (job_partitions_ ? kPartitionCountRefresh : std::chrono::seconds(1));
    }
    {
      std::unique_lock lock(mu_);
      wake_.wait_for(lock, std::chrono::milliseconds(100), [this] { return stop_.load() || acked_.size() >= 1000; });
    }
    try {
      record_acknowledgements();
      if (std::chrono::steady_clock::now() >= next_sweep) {
        republish(false);
        next_sweep = std::chrono::steady_clock::now() + settings_.sweep_interval;
      }
    } catch (const std::exception& e) {
      spdlog::error("outbox: {}", e.what());
    }
  }
}

void JobPublisher::refresh_partition_count() {
  try {
    job_partitions_ = partition_count(kafka_->handle(), std::string(kJobsTopic), 2000);
  } catch (const std::exception& e) {
    spdlog::debug("partition count of {} not read: {}", kJobsTopic, e.what());
  }
}

std::function<int32_t(const std::string&)> JobPublisher::partitioner() const {
  const int32_t partitions = job_partitions_;
  const PartitionerFn place = place_;
  if (partitions <= 0 || !place) return {};
  return [partitions, place](const std::string& url) {
    return place(nullptr, url.data(), url.size(), partitions, nullptr, nullptr);
  };
}

bool JobPublisher::broker_reachable() {
  try {
    partition_count(kafka_->handle(), std::string(kJobsTopic), 2000);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace feedpipe::producer
