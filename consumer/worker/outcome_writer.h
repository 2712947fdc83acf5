#pragma once
// The consumer's writer thread: records job outcomes in SQLite with group commit (the outcomes
// waiting at one moment go into one transaction, each still all-or-nothing by construction),
// then publishes their events to feed.refresh.events and releases the jobs' offsets.
// submit() and mark_running() are thread-safe.
#include <atomic>
#include <functional>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/job_outcomes.h"
#include "common/kafka.h"
#include "consumer/worker/offset_tracker.h"

namespace feedpipe::consumer {

struct JobRef {
  int64_t job_id;
  int32_t partition;
  int64_t offset;
  std::chrono::steady_clock::time_point taken_at;  // when the consumer read the job
};

// Told the events of each committed group, on the writer thread, after they went to Kafka.
using CommittedEventsListener = std::function<void(const std::vector<EventMessage>&)>;

class OutcomeWriter {
 public:
  // `events` null: events are not published to Kafka (only told to `on_committed`).
  OutcomeWriter(std::string db_path, KafkaProducer* events, OffsetTracker& offsets, size_t max_group,
                CommittedEventsListener on_committed = nullptr);
  ~OutcomeWriter();

  void submit(JobOutcome outcome, JobRef ref);
  void mark_running(std::vector<int64_t> job_ids);
  // Stops after writing everything submitted so far.
  void stop();
  size_t backlog() const;
  uint64_t written() const { return written_; }

 private:
  Database& connection();  // the writer thread's, configured on first use
  void run();
  void write_group(std::vector<JobOutcome>& outcomes, std::vector<JobRef>& refs,
                   std::vector<int64_t>& running);

  std::string db_path_;
  KafkaProducer* events_;
  CommittedEventsListener on_committed_;
  OffsetTracker& offsets_;
  size_t max_group_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::vector<JobOutcome> outcomes_;
  std::vector<JobRef> refs_;
  std::vector<int64_t> running_;
  bool stop_ = false;
  std::atomic<uint64_t> written_{0};
  bool configured_ = false;  // writer thread only
  std::thread thread_;
};

}  // namespace feedpipe::consumer
