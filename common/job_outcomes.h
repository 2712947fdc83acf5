#pragma once
// Recording job outcomes: the one write that moves a job to its final state. For each outcome,
// in one transaction: the feed's state, its items (upserted by feed and guid/link), the job row,
// the batch counters, the job's event with the batch's next seq, and — with the batch's last
// job — the batch.completed event and, when the batch asked for one, its callback
// (common/callbacks). Idempotent: a job that is already final is left unchanged and produces no
// event. Positions of the same feed in the same batch share the fetch: they all get
// the outcome (and one event each) with the first of them.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/db.h"
#include "common/model.h"

namespace feedpipe {

struct ItemRecord {
  std::string guid, link, title, author, published, updated, summary, content;
};

// What one fetch learned about its feed.
struct FeedFetch {
  std::string final_url, etag, last_modified;
  std::string title, link;          // status ok only
  std::vector<ItemRecord> items;    // status ok only, in document order (newest first)
};

struct JobOutcome {
  int64_t job_id = 0;
  JobStatus status = JobStatus::failed;  // ok | not_modified | failed
  long http_status = 0;
  int64_t duration_ms = 0;
  std::string error;
  std::optional<int64_t> retry_after_s;  // failed: the server asked for this many seconds of peace
  std::optional<FeedFetch> fetch;  // absent when nothing was fetched (invalid URL, refused address …)
};

// What a group of outcomes recorded, per job position (for metrics without rereading the events).
struct OutcomeCounts {
  uint64_t ok = 0, not_modified = 0, failed = 0, items_new = 0, batches_completed = 0;
};

// Writes the outcomes inside the caller's open write transaction; returns the events written
// and, when `counts` is given, adds to it.
std::vector<EventMessage> record_outcomes_in_transaction(Database& db, const std::vector<JobOutcome>& outcomes,
                                                         OutcomeCounts* counts = nullptr);
// Jobs to write as running, and batches to write as running (a batch runs from its first job
// taken, even while its jobs are not yet written as running themselves).
struct RunningMarks {
  std::vector<int64_t> job_ids;
  std::vector<std::string> batch_ids;
  bool empty() const { return job_ids.empty() && batch_ids.empty(); }
};

// Same, in a transaction of its own (retried when the database is busy); `counts` is reset first.
// `newly_running` is first written, as mark_jobs_running() does, in the same transaction.
// `due`: whether a checkpoint the commit makes due runs before this returns (Database::write).
std::vector<EventMessage> record_outcomes(Database& db, const std::vector<JobOutcome>& outcomes,
                                          OutcomeCounts* counts = nullptr, const RunningMarks& newly_running = {},
                                          Database::DueCheckpoint due = Database::DueCheckpoint::run);

// Marks queued jobs as running (and their batches as running); already running or final
// jobs are left alone.
void mark_jobs_running(Database& db, const std::vector<int64_t>& job_ids);

// The job's status, or nullopt when there is no such job.
std::optional<JobStatus> job_status(Database& db, int64_t job_id);

// What a consumer needs before it fetches a job: is the job still open, and what its feed's last
// fetch said (validators for a conditional GET, a Retry-After's next fetch time).
struct JobFetchState {
  std::optional<JobStatus> status;  // nullopt: no such job
  std::string etag, last_modified;
  std::string next_fetch_at;  // RFC 3339 UTC, empty when the feed may be fetched now
};

// The state of each job in `job_ids`, in the same order, read with one statement (one read
// transaction for the lot, which is most of what a read costs).
std::vector<JobFetchState> job_fetch_states(Database& db, const std::vector<int64_t>& job_ids);

}  // namespace feedpipe
