#pragma once
// The consumer's writer thread: records job outcomes in SQLite with group commit (the outcomes
// waiting at one moment go into one transaction, each still all-or-nothing by construction),
// then publishes their events to feed.refresh.events and releases the jobs' offsets.
// submit() and mark_running() are thread-safe.
#include <atomic>
#include <functional>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
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
  // A job handed to mark_running() is written as running once it has gone `mark_running_after`
  // without an outcome; one that finishes sooner goes from queued straight to its outcome, which
  // saves a row update per job (in a pass of quick 304s, a seventh of the writer's time).
  OutcomeWriter(std::string db_path, KafkaProducer* events, OffsetTracker& offsets, size_t max_group,
                std::chrono::milliseconds mark_running_after, CommittedEventsListener on_committed = nullptr);
  ~OutcomeWriter();

  void submit(JobOutcome outcome, JobRef ref);
  // Jobs just taken, and their batches (written as running in the next group, the jobs later).
  void mark_running(RunningMarks taken);
  // Stops after writing everything submitted so far.
  void stop();
  size_t backlog() const;
  uint64_t written() const { return written_; }

 private:
  Database& connection();  // the writer thread's, configured on first use
  void run();
  void write_group(std::vector<JobOutcome>& outcomes, std::vector<JobRef>& refs,
                   RunningMarks& running);
  // With mu_ held: waits until there are outcomes, a running mark is due, or stop.
  void wait_for_work(std::unique_lock<std::mutex>& lock);
  // With mu_ held: the running marks due now, minus jobs finishing in `outcomes`.
  std::vector<int64_t> take_due_running(const std::vector<JobOutcome>& outcomes);

  static constexpr size_t kMaxBatchesRemembered = 4096;

  struct Taken {
    int64_t job_id;
    std::chrono::steady_clock::time_point at;
  };

  std::string db_path_;
  KafkaProducer* events_;
  CommittedEventsListener on_committed_;
  OffsetTracker& offsets_;
  size_t max_group_;
  std::chrono::milliseconds mark_running_after_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::vector<JobOutcome> outcomes_;
  std::vector<JobRef> refs_;
  std::deque<Taken> running_;  // taken, not yet written as running; oldest first
  std::vector<std::string> batches_due_;              // batches to write as running in the next group
  std::unordered_set<std::string> batches_marked_;  // batches written as running already (bounded)
  bool stop_ = false;
  std::atomic<uint64_t> written_{0};
  bool configured_ = false;  // writer thread only
  std::thread thread_;
};

}  // namespace feedpipe::consumer
