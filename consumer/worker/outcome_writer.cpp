#include "consumer/worker/outcome_writer.h"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <chrono>
#include <unordered_set>

#include "common/db_pool.h"
#include "common/metrics.h"
#include "common/thread_name.h"

namespace feedpipe::consumer {
namespace {

metrics::Counter& jobs_total(const std::string& status) {
  return metrics::counter("feedpipe_jobs_total", "Jobs recorded, by outcome.", "status=\"" + status + "\"");
}

// Counts outcomes in metrics and logs them: one line per job at debug, one per batch at info.
// The events' JSON is only read again for those log lines.
void count_and_log_events(const std::vector<EventMessage>& events, const OutcomeCounts& counts) {
  static auto& items = metrics::counter("feedpipe_items_stored_total", "Items stored for the first time.");
  static auto& ok = jobs_total("ok");
  static auto& not_modified = jobs_total("not_modified");
  static auto& failed = jobs_total("failed");
  ok.add(counts.ok);
  not_modified.add(counts.not_modified);
  failed.add(counts.failed);
  items.add(counts.items_new);
  const bool debug = spdlog::should_log(spdlog::level::debug);
  if (!debug && counts.batches_completed == 0) return;
  for (const auto& ev : events) {
    const bool completed = ev.type == "batch.completed";
    if (!completed && !debug) continue;
    auto data = nlohmann::json::parse(ev.data, nullptr, false);
    if (!data.is_object()) continue;
    if (completed) {
      auto p = data.value("progress", nlohmann::json::object());
      if (!p.is_object()) p = nlohmann::json::object();
      spdlog::info("batch {} completed: {} feed(s), {} failed", ev.batch_id, p.value("total", 0L),
                   p.value("failed", 0L));
      continue;
    }
    // One line per job outcome (the fetcher's per-attempt lines are at trace).
    const std::string status = data.value("status", "");
    auto number = [&](const char* key) { return data[key].is_number() ? data[key].dump() : std::string("-"); };
    spdlog::debug("job {}#{} {} {} http={} items_new={} {} ms{}{}", ev.batch_id, number("position"), status,
                  data["url"].is_string() ? data["url"].get<std::string>() : "", number("http_status"),
                  number("items_new"), number("duration_ms"), status == "failed" ? ": " : "",
                  data["error"].is_string() ? data["error"].get<std::string>() : "");
  }
}

}  // namespace

OutcomeWriter::OutcomeWriter(std::string db_path, KafkaProducer* events, OffsetTracker& offsets,
                             size_t max_group, std::chrono::milliseconds mark_running_after,
                             CommittedEventsListener on_committed)
    : db_path_(std::move(db_path)),
      events_(events),
      on_committed_(std::move(on_committed)),
      offsets_(offsets),
      max_group_(max_group),
      mark_running_after_(mark_running_after) {
  thread_ = named_thread("fp-writer", [this] { run(); });
}

OutcomeWriter::~OutcomeWriter() { stop(); }

void OutcomeWriter::submit(JobOutcome outcome, JobRef ref) {
  {
    std::lock_guard lock(mu_);
    outcomes_.push_back(std::move(outcome));
    refs_.push_back(ref);
  }
  wake_.notify_one();
}

void OutcomeWriter::mark_running(RunningMarks taken) {
  if (taken.empty()) return;
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(mu_);
    for (int64_t id : taken.job_ids) running_.push_back({id, now});
    if (batches_marked_.size() > kMaxBatchesRemembered) batches_marked_.clear();  // at worst written twice
    for (std::string& batch : taken.batch_ids)
      if (batches_marked_.insert(batch).second) batches_due_.push_back(std::move(batch));
  }
  wake_.notify_one();  // the writer may be waiting without a deadline
}

void OutcomeWriter::stop() {
  {
    std::lock_guard lock(mu_);
    if (stop_) return;
    stop_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

size_t OutcomeWriter::backlog() const {
  std::lock_guard lock(mu_);
  return outcomes_.size();
}

// The writer's own connection. It writes only rows whose parents it has just read in the same
// transaction (a job's batch and feed, an item's feed), so SQLite's foreign-key checks, a B-tree
// lookup per item and two per event, are left to the other connections: in alternating runs they
// were about a tenth of the writer's CPU.
Database& OutcomeWriter::connection() {
  Database& db = thread_db(db_path_);
  if (!configured_) {
    db.set_cache_kib(Database::kWriterCacheKib);
    db.exec("PRAGMA foreign_keys=OFF");
    configured_ = true;
  }
  return db;
}

void OutcomeWriter::run() {
  try {
    connection();
  } catch (const std::exception& e) {
    spdlog::warn("outcome writer: {}", e.what());  // write_group retries opening and reports
  }
  for (;;) {
    std::vector<JobOutcome> outcomes;
    std::vector<JobRef> refs;
    RunningMarks running;
    {
      std::unique_lock lock(mu_);
      wait_for_work(lock);
      // Marks not yet due are left: the jobs are open either way, and a redelivery finds them so.
      if (outcomes_.empty() && stop_) return;
      size_t n = std::min(outcomes_.size(), max_group_);
      outcomes.assign(std::make_move_iterator(outcomes_.begin()), std::make_move_iterator(outcomes_.begin() + n));
      outcomes_.erase(outcomes_.begin(), outcomes_.begin() + n);
      refs.assign(refs_.begin(), refs_.begin() + n);
      refs_.erase(refs_.begin(), refs_.begin() + n);
      running.job_ids = take_due_running(outcomes);
      running.batch_ids.swap(batches_due_);
    }
    write_group(outcomes, refs, running);
  }
}

void OutcomeWriter::wait_for_work(std::unique_lock<std::mutex>& lock) {
  while (!stop_ && outcomes_.empty() && batches_due_.empty()) {
    if (running_.empty()) {
      wake_.wait(lock);
      continue;
    }
    const auto due = running_.front().at + mark_running_after_;
    if (std::chrono::steady_clock::now() >= due) return;
    wake_.wait_until(lock, due);
  }
}

std::vector<int64_t> OutcomeWriter::take_due_running(const std::vector<JobOutcome>& outcomes) {
  if (running_.empty()) return {};
  // A job that finishes in this group is never shown running: no reader could see it so.
  if (!outcomes.empty()) {
    std::unordered_set<int64_t> finishing;
    for (const JobOutcome& o : outcomes) finishing.insert(o.job_id);
    std::erase_if(running_, [&](const Taken& t) { return finishing.count(t.job_id) > 0; });
  }
  std::vector<int64_t> due;
  const auto now = std::chrono::steady_clock::now();
  while (!running_.empty() && running_.front().at + mark_running_after_ <= now) {
    due.push_back(running_.front().job_id);
    running_.pop_front();
  }
  return due;
}

void OutcomeWriter::write_group(std::vector<JobOutcome>& outcomes, std::vector<JobRef>& refs,
                                RunningMarks& running) {
  Database& db = connection();
  for (int attempt = 1;; ++attempt) {
    try {
      // One transaction: the jobs taken long enough ago become running, these finish.
      OutcomeCounts counts;
      // A checkpoint this commit makes due waits until the events are on their way.
      std::vector<EventMessage> events =
          record_outcomes(db, outcomes, &counts, running, Database::DueCheckpoint::leave);
      running = {};
      for (size_t i = 0; events_ && i < events.size(); ++i) {
        const EventMessage& ev = events[i];
        std::string error;
        if (!events_->produce(kEventsTopic, ev.batch_id, serialize(ev), 0, &error))
          spdlog::warn("event {}#{} not published ({}); broadcasters read it from SQLite", ev.batch_id,
                       ev.seq, error);
      }
      if (on_committed_ && !events.empty()) {
        try {
          on_committed_(events);
        } catch (const std::exception& e) {  // Kafka and the SQLite sweep still deliver them
          spdlog::warn("in-process event listener: {}", e.what());
        }
      }
      static auto& latency = metrics::histogram(
          "feedpipe_job_latency_seconds", "From a consumer taking a job to its outcome being committed.");
      static auto& group_size = metrics::histogram(
          "feedpipe_outcome_group_size", "Job outcomes recorded per SQLite transaction by a writer.",
          {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024});
      if (!outcomes.empty()) group_size.observe(static_cast<double>(outcomes.size()));
      auto now = std::chrono::steady_clock::now();
      for (const auto& ref : refs) {
        offsets_.done(ref.partition, ref.offset);
        latency.observe(std::chrono::duration<double>(now - ref.taken_at).count());
      }
      count_and_log_events(events, counts);
      written_ += outcomes.size();
      db.run_due_checkpoint();
      return;
    } catch (const std::exception& e) {
      // The offsets stay uncommitted, so the jobs are redelivered if this process goes away.
      spdlog::error("cannot record {} job outcome(s) (attempt {}): {}", outcomes.size(), attempt, e.what());
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min(5000, 100 * attempt)));
      bool stopping;
      {
        std::lock_guard lock(mu_);
        stopping = stop_;
      }
      if (stopping && attempt >= 3) return;
    }
  }
}

}  // namespace feedpipe::consumer
