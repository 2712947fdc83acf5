#include "consumer/worker/consumer.h"

#include <spdlog/spdlog.h>

#include <unordered_map>

#include "common/clock.h"
#include "common/config.h"
#include "common/db_pool.h"
#include "common/job_outcomes.h"
#include "common/metrics.h"
#include "common/model.h"
#include "common/shutdown_wait.h"
#include "common/thread_name.h"
#include "consumer/parser/parser.h"
#include "consumer/worker/offset_tracker.h"
#include "consumer/worker/outcome_publisher.h"
#include "consumer/worker/outcome_writer.h"
#include "consumer/worker/group_member.h"

namespace feedpipe::consumer {
namespace {

std::string charset_of(const std::string& content_type) {
  auto pos = content_type.find("charset=");
  if (pos == std::string::npos) return "";
  std::string cs = content_type.substr(pos + 8);
  if (auto end = cs.find(';'); end != std::string::npos) cs.resize(end);
  if (cs.size() >= 2 && cs.front() == '"' && cs.back() == '"') cs = cs.substr(1, cs.size() - 2);
  return cs;
}

ItemRecord to_record(parser::Item&& item) {
  return {std::move(item.guid),    std::move(item.link),    std::move(item.title),
          std::move(item.author),  std::move(item.published), std::move(item.updated),
          std::move(item.summary), std::move(item.content)};
}

// The outcome of one fetch (before it is given to each job that shares it).
JobOutcome outcome_of(fetcher::FetchResult&& r) {
  JobOutcome o;
  o.http_status = r.http_status;
  o.duration_ms = r.duration.count();
  switch (r.status) {
    case fetcher::FetchStatus::failed:
      o.status = JobStatus::failed;
      o.error = r.error;
      o.retry_after_s = r.retry_after_s;
      break;
    case fetcher::FetchStatus::not_modified:
      o.status = JobStatus::not_modified;
      o.fetch = FeedFetch{r.final_url, r.etag, r.last_modified, "", "", {}};
      break;
    case fetcher::FetchStatus::ok: {
      parser::ParseOptions options;
      options.base_url = r.final_url;
      options.http_charset = charset_of(r.content_type);
      auto parsed = parser::parse_feed(r.body, options);
      if (!parsed) {
        o.status = JobStatus::failed;
        o.error = "parse error: " + parsed.error;
        break;
      }
      o.status = JobStatus::ok;
      FeedFetch f{r.final_url, r.etag, r.last_modified, std::move(parsed.feed->title),
                  std::move(parsed.feed->link), {}};
      f.items.reserve(parsed.feed->items.size());
      for (auto& item : parsed.feed->items) f.items.push_back(to_record(std::move(item)));
      o.fetch = std::move(f);
      break;
    }
  }
  return o;
}

metrics::Gauge& assigned_partitions() {
  return metrics::gauge("feedpipe_consumer_assigned_partitions",
                        "Partitions of feed.refresh.jobs assigned to this process's consumers.");
}

metrics::Gauge& consumer_lag() {
  return metrics::gauge("feedpipe_kafka_consumer_lag",
                        "Job messages not yet finished on the partitions of feed.refresh.jobs assigned to this "
                        "process's consumers: log end offset less the group's committed offset, as "
                        "kafka-consumer-groups.sh reports LAG.");
}

}  // namespace

class Consumer::Loop {
 public:
  explicit Loop(ConsumerSettings settings)
      : settings_(std::move(settings)), fetcher_(settings_.fetch) {
    if (local()) {
      events_ = std::make_unique<KafkaProducer>(settings_.kafka, event_producer_client(settings_.kafka), nullptr,
                                               std::vector<std::string>{std::string(kEventsTopic)});
      writer_ = std::make_unique<OutcomeWriter>(settings_.db_path, settings_.publish_events ? events_.get() : nullptr, offsets_, settings_.max_write_group,
                                                settings_.mark_running_after, settings_.on_events_committed);
    } else {
      publisher_ = std::make_unique<OutcomePublisher>(settings_.kafka, offsets_);
    }
    member_ = std::make_unique<GroupMember>(
        settings_.kafka,
        GroupMemberOptions{"consumer", std::string(kJobsTopic), settings_.group_id, "group consumer",
                           settings_.max_read_ahead, "jobs will be redelivered and skipped",
                           [](int64_t n) { assigned_partitions().add(n); }, &consumer_lag()},
        offsets_);
  }

  void run() {
    try {
      if (local()) thread_db(settings_.db_path).set_cache_kib(Database::kConsumerCacheKib);
    } catch (const std::exception& e) {
      spdlog::warn("consumer loop: {}", e.what());  // step() retries opening and reports
    }
    auto next_commit = std::chrono::steady_clock::now() + settings_.commit_interval;
    while (!stopping_) {
      try {
        step();
      } catch (const std::exception& e) {
        spdlog::error("consumer loop: {}", e.what());
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      if (std::chrono::steady_clock::now() >= next_commit) {
        member_->commit_finished();
        next_commit = std::chrono::steady_clock::now() + settings_.commit_interval;
      }
    }
    drain();
  }

  void stop() { stopping_ = true; fetcher_.wakeup(); }
  bool joined() const { return member_->joined(); }
  ConsumerStats stats() const {
    return {taken_, writer_ ? writer_->written() : publisher_ ? publisher_->published() : 0, fetches_};
  }

 private:
  // With a database the consumer records outcomes itself; without one it publishes them to
  // feed.refresh.outcomes for a recorder, and everything the fetch needs comes in the job message.
  bool local() const { return !settings_.db_path.empty(); }

  struct Waiting {
    JobMessage job;
    int32_t partition;
    int64_t offset;
    std::chrono::steady_clock::time_point taken_at;
  };

  void step() {
    now_text_.clear();
    const bool reading = offsets_.in_flight() < settings_.max_backlog;
    int timeout = reading && fetcher_.pending() == 0 ? 50 : 0;  // wait only when curl is idle
    member_->read(
        timeout, [&] { return offsets_.in_flight() < settings_.max_backlog; },
        [&](RdKafka::Message& msg) { arrive(msg); });
    take_arrivals();
    // With the backlog full and nothing in curl, the writer has the jobs: wait for it in curl's
    // poll (woken by new results) instead of spinning, which starved the writer of a core.
    auto wait = std::chrono::milliseconds(fetcher_.pending() || !reading ? 10 : 0);
    for (auto& result : fetcher_.poll(wait)) finish(std::move(result));
  }

  void arrive(RdKafka::Message& msg) {
    int32_t partition = msg.partition();
    int64_t offset = msg.offset();
    offsets_.taken(partition, offset);
    ++taken_;
    try {
      arrivals_.push_back({job_message_from_json(std::string_view(static_cast<const char*>(msg.payload()), msg.len())),
                           partition, offset, std::chrono::steady_clock::now()});
    } catch (const std::exception& e) {
      spdlog::warn("skipping message at {}[{}]@{}: {}", kJobsTopic, partition, offset, e.what());
      offsets_.done(partition, offset);
    }
  }

  // The jobs read in this step: their state is read in one go, then each is fetched, shares a
  // fetch in flight, or is skipped. Should the read fail (the database busy or gone), the jobs
  // wait for the next step's read.
  void take_arrivals() {
    if (arrivals_.empty()) return;
    std::vector<JobFetchState> states = local() ? read_job_states() : job_states_from_messages();
    std::vector<Waiting> arrivals;
    arrivals.swap(arrivals_);
    RunningMarks started;
    for (size_t i = 0; i < arrivals.size(); ++i) take(std::move(arrivals[i]), states[i], started);
    if (writer_) writer_->mark_running(std::move(started));
  }

  void take(Waiting&& arrival, JobFetchState& state, RunningMarks& started) {
    if (!state.status || is_final(*state.status)) {
      // Already recorded (a redelivery), or a job this database does not know.
      if (!state.status)
        spdlog::warn("job {} of batch {} is not in the database; skipped", arrival.job.job_id, arrival.job.batch_id);
      offsets_.done(arrival.partition, arrival.offset);
      return;
    }
    started.job_ids.push_back(arrival.job.job_id);
    if (started.batch_ids.empty() || started.batch_ids.back() != arrival.job.batch_id)
      started.batch_ids.push_back(arrival.job.batch_id);
    auto [it, first] = waiting_.try_emplace(arrival.job.feed_id);
    it->second.push_back(std::move(arrival));
    if (!first) return;  // the feed is already being fetched: share that fetch
    // RFC 3339 UTC strings of one format compare as times do.
    if (!state.next_fetch_at.empty() && state.next_fetch_at > now_text())
      return refuse_until_retry_after(it->first, state.next_fetch_at);
    fetcher::FetchRequest request;
    request.tag = static_cast<uint64_t>(it->first);
    request.url = it->second.front().job.url;
    request.etag = std::move(state.etag);
    request.last_modified = std::move(state.last_modified);
    fetcher_.add(std::move(request));
    ++fetches_;
  }

  std::vector<JobFetchState> read_job_states() {
    std::vector<int64_t> ids;
    ids.reserve(arrivals_.size());
    for (const Waiting& a : arrivals_) ids.push_back(a.job.job_id);
    return job_fetch_states(thread_db(settings_.db_path), ids);
  }

  // Without a database the job message says it all; whether the job is still open is the
  // recorder's question (it leaves a final job as it is).
  std::vector<JobFetchState> job_states_from_messages() {
    std::vector<JobFetchState> states(arrivals_.size());
    for (size_t i = 0; i < arrivals_.size(); ++i) {
      const JobMessage& job = arrivals_[i].job;
      states[i] = {JobStatus::queued, job.etag, job.last_modified, job.not_before};
    }
    return states;
  }

  // The time as RFC 3339 text, formatted at most once per step (not once per job).
  const std::string& now_text() {
    if (now_text_.empty()) now_text_ = now_rfc3339();
    return now_text_;
  }

  // The feed's server answered an earlier fetch with 429/503 and a Retry-After that has not
  // passed: fail the feed's jobs at once rather than knock again.
  void refuse_until_retry_after(int64_t feed_id, const std::string& until) {
    fetcher::FetchResult r;
    r.tag = static_cast<uint64_t>(feed_id);
    r.status = fetcher::FetchStatus::failed;
    r.error = "not fetched: the server asked (Retry-After) not to be fetched before " + until;
    finish(std::move(r));
  }

  void finish(fetcher::FetchResult&& result) {
    auto node = waiting_.extract(static_cast<int64_t>(result.tag));
    if (node.empty()) return;
    static auto& fetch_seconds = metrics::histogram("feedpipe_fetch_duration_seconds",
                                                    "Fetch time per feed, retries included.");
    fetch_seconds.observe(std::chrono::duration<double>(result.duration).count());
    JobOutcome outcome = outcome_of(std::move(result));
    auto& jobs = node.mapped();
    for (size_t i = 0; i < jobs.size(); ++i) {
      const Waiting& w = jobs[i];
      JobRef ref{w.job.job_id, w.partition, w.offset, w.taken_at};
      if (publisher_) {  // serializes it at once: no copy needed
        outcome.job_id = w.job.job_id;
        publisher_->submit(w.job.batch_id, outcome, ref);
        continue;
      }
      // Most fetches serve one job: the last one takes the outcome itself, items and all.
      JobOutcome given = i + 1 == jobs.size() ? std::move(outcome) : JobOutcome(outcome);
      given.job_id = w.job.job_id;
      writer_->submit(std::move(given), ref);
    }
  }

  // Every wait here is bounded: the fetches by the drain timeout, Kafka (the last commits, the
  // group leave, the events) by the close timeout; what Kafka does not take is redelivered.
  void drain() {
    auto deadline = std::chrono::steady_clock::now() + settings_.drain_timeout;
    {
      ShutdownWait wait("the consumer's fetches in flight");
      while (fetcher_.pending() > 0 && std::chrono::steady_clock::now() < deadline)
        for (auto& result : fetcher_.poll(std::chrono::milliseconds(50))) finish(std::move(result));
    }
    if (fetcher_.pending() > 0)
      spdlog::warn("stopping with {} fetch(es) unfinished; their jobs will be redelivered", fetcher_.pending());
    {
      ShutdownWait wait(writer_ ? "the consumer's SQLite writer" : "Kafka to acknowledge the consumer's outcomes");
      if (writer_) writer_->stop();
      // The outcomes of the fetches that finished: their jobs' offsets move only once Kafka has them.
      if (publisher_ && !publisher_->flush(std::max(std::chrono::milliseconds(1000), remaining(deadline))))
        spdlog::warn("stopping with outcomes Kafka has not acknowledged; their jobs will be redelivered");
    }
    member_->finish_joining(deadline);
    auto kafka_deadline = std::chrono::steady_clock::now() + settings_.kafka_close_timeout;
    member_->close(settings_.kafka_close_timeout);
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(kafka_deadline - std::chrono::steady_clock::now());
    if (events_) events_->close(std::max(left, std::chrono::milliseconds(0)));
    if (publisher_) publisher_->close(std::max(left, std::chrono::milliseconds(0)));
  }

  static std::chrono::milliseconds remaining(std::chrono::steady_clock::time_point deadline) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
        std::max(deadline - std::chrono::steady_clock::now(), std::chrono::steady_clock::duration::zero()));
  }

  ConsumerSettings settings_;
  fetcher::Fetcher fetcher_;
  OffsetTracker offsets_;
  std::unique_ptr<KafkaProducer> events_;
  std::unique_ptr<OutcomeWriter> writer_;       // with a database
  std::unique_ptr<OutcomePublisher> publisher_;  // without one
  std::unique_ptr<GroupMember> member_;  // after offsets_, which it uses
  std::unordered_map<int64_t, std::vector<Waiting>> waiting_;  // by feed id
  std::vector<Waiting> arrivals_;  // read from Kafka, not yet taken
  std::string now_text_;  // see now_text()
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> taken_{0}, fetches_{0};
};

Consumer::Consumer(ConsumerSettings settings) : loop_(std::make_unique<Loop>(std::move(settings))) {}

Consumer::~Consumer() { stop(); }

void Consumer::start() {
  thread_ = named_thread("fp-fetch", [this] { loop_->run(); });
}

void Consumer::begin_stop() {
  if (thread_.joinable()) loop_->stop();
}

void Consumer::stop() {
  if (!thread_.joinable()) return;
  loop_->stop();
  thread_.join();
}

std::string Consumer::readiness() const {
  return loop_->joined() ? "" : "consumer group not joined yet";
}

ConsumerStats Consumer::stats() const { return loop_->stats(); }

}  // namespace feedpipe::consumer
