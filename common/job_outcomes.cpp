#include "common/job_outcomes.h"


#include <map>
#include <set>

#include "common/callbacks/callback_store.h"
#include "common/clock.h"
#include "common/logging.h"

namespace feedpipe {
namespace {

struct JobRow {
  int64_t id;
  std::string batch_id;
  int64_t position;
  std::string url;
  std::optional<int64_t> feed_id;
  int64_t feed_item_count = 0;  // the feed's stored items when the job was read
};

std::string item_key(const ItemRecord& item) {
  if (!item.guid.empty()) return item.guid;
  if (!item.link.empty()) return "link:" + item.link;
  // No identity in the feed: the content is the identity.
  return "hash:" + std::to_string(std::hash<std::string>{}(item.title + '\n' + item.summary + '\n' +
                                                           item.content + '\n' + item.published));
}

// Records the fetch in the feed's row, with `items_added` new items to the `item_count` it had.
// After a success, returns the feed's stored item count. (Not by RETURNING, which builds a
// temporary table at every run: the transaction is the only writer, so the count read with the
// job is still the feed's.)
std::optional<int64_t> update_feed_state(Database& db, int64_t feed_id, const JobOutcome& o, int64_t item_count,
                                         int64_t items_added, const std::string& now) {
  bool success = o.status != JobStatus::failed;
  if (!success) {
    auto q = db.prepare(
        "UPDATE feeds SET last_fetch_at = ?1, last_http_status = ?2, "
        "consecutive_failures = consecutive_failures + 1, last_error = ?3, "
        "next_fetch_at = CASE WHEN ?5 IS NULL THEN next_fetch_at "
        "ELSE strftime('%Y-%m-%dT%H:%M:%SZ', ?1, '+' || ?5 || ' seconds') END WHERE id = ?4");
    q.bind(1, now).bind(2, static_cast<int64_t>(o.http_status)).bind(3, o.error).bind(4, feed_id);
    if (o.retry_after_s) q.bind(5, *o.retry_after_s);
    q.run();
    return std::nullopt;
  }
  const FeedFetch& f = *o.fetch;
  bool ok = o.status == JobStatus::ok;
  // A 200 replaces the validators; a 304 keeps the old ones unless the server sent new ones.
  auto q = db.prepare(
      "UPDATE feeds SET last_fetch_at = ?1, last_success_at = ?1, last_http_status = ?2, "
      "consecutive_failures = 0, last_error = NULL, next_fetch_at = NULL, "
      "final_url = COALESCE(?3, final_url), "
      "etag = CASE WHEN ?7 THEN ?4 ELSE COALESCE(?4, etag) END, "
      "last_modified = CASE WHEN ?7 THEN ?5 ELSE COALESCE(?5, last_modified) END, "
      "title = CASE WHEN ?7 THEN ?8 ELSE title END, link = CASE WHEN ?7 THEN ?9 ELSE link END, "
      "item_count = item_count + ?10 WHERE id = ?6");
  q.bind(1, now)
      .bind(2, static_cast<int64_t>(o.http_status))
      .bind_text_or_null(3, f.final_url)
      .bind_text_or_null(4, f.etag)
      .bind_text_or_null(5, f.last_modified)
      .bind(6, feed_id)
      .bind(7, static_cast<int64_t>(ok))
      .bind_text_or_null(8, f.title)
      .bind_text_or_null(9, f.link)
      .bind(10, items_added)
      .run();
  return item_count + items_added;
}

// ?1 the feed, ?2 the item's key, ?3 its guid, ?4-?10 its text: the numbering of both statements
// of upsert_items(). The text is bound without a copy: the item outlives the statement's step.
Statement& bind_item(Statement& s, int64_t feed_id, const std::string& key, const ItemRecord& item) {
  return s.bind(1, feed_id)
      .bind(2, key)
      .bind_text_or_null_unowned(3, item.guid)
      .bind_text_or_null_unowned(4, item.link)
      .bind_text_or_null_unowned(5, item.title)
      .bind_text_or_null_unowned(6, item.author)
      .bind_text_or_null_unowned(7, item.published)
      .bind_text_or_null_unowned(8, item.updated)
      .bind_text_or_null_unowned(9, item.summary)
      .bind_text_or_null_unowned(10, item.content);
}

// Returns the number of items first stored now.
int64_t upsert_items(Database& db, int64_t feed_id, const std::vector<ItemRecord>& items,
                     const std::string& now) {
  int64_t added = 0;
  // Oldest first, so that higher ids are newer items.
  for (auto it = items.rbegin(); it != items.rend(); ++it) {
    const ItemRecord& item = *it;
    std::string key = item_key(item);
    auto insert = db.prepare(
        "INSERT INTO items (feed_id, item_key, guid, link, title, author, published, updated, "
        "summary, content, first_seen_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) "
        "ON CONFLICT (feed_id, item_key) DO NOTHING");
    bind_item(insert, feed_id, key, item).bind(11, now).run();
    if (db.changes() == 1) {
      ++added;
      continue;
    }
    // The guid (?3) is part of the key when there is one: left as it is.
    auto update = db.prepare(
        "UPDATE items SET link = ?4, title = ?5, author = ?6, published = ?7, updated = ?8, "
        "summary = ?9, content = ?10 WHERE feed_id = ?1 AND item_key = ?2");
    bind_item(update, feed_id, key, item).run();
  }
  return added;
}

std::optional<JobRow> load_open_job(Database& db, int64_t job_id) {
  auto q = db.prepare(
      "SELECT j.batch_id, j.position, j.url, j.feed_id, f.item_count FROM jobs j "
      "LEFT JOIN feeds f ON f.id = j.feed_id WHERE j.id = ? AND j.status IN ('queued', 'running')");
  q.bind(1, job_id);
  if (!q.step()) return std::nullopt;
  JobRow row{job_id, q.text(0), q.int64(1), q.text(2), std::nullopt};
  if (!q.is_null(3)) row.feed_id = q.int64(3);
  if (!q.is_null(4)) row.feed_item_count = q.int64(4);
  q.reset();
  return row;
}

// Other open positions of the same feed in the same batch.
std::vector<JobRow> open_siblings(Database& db, const JobRow& job) {
  std::vector<JobRow> rows;
  if (!job.feed_id) return rows;
  auto q = db.prepare(
      // Without INDEXED BY the planner walks the batch by position to save the sort: one
      // scan of the whole batch per outcome, quadratic in the batch size.
      "SELECT id, position, url FROM jobs INDEXED BY jobs_batch_feed "
      "WHERE batch_id = ? AND feed_id = ? AND id != ? "
      "AND status IN ('queued', 'running') ORDER BY position");
  q.bind(1, job.batch_id).bind(2, *job.feed_id).bind(3, job.id);
  while (q.step()) rows.push_back({q.int64(0), job.batch_id, q.int64(1), q.text(2), job.feed_id});
  return rows;
}

struct Progress {
  int64_t total, done, failed, seq;
};

// The counters of the batches a group of outcomes touches, read once and written back once per
// batch (instead of one UPDATE per job): the transaction is the only writer, so nothing can
// change them in between.
class BatchCounters {
 public:
  explicit BatchCounters(Database& db) : db_(db) {}

  // Counts the job as final in its batch and reserves the next seq.
  Progress advance(const std::string& batch_id, bool failed) {
    Progress& p = load(batch_id).progress;
    ++p.done;
    p.failed += failed ? 1 : 0;
    return {p.total, p.done, p.failed, ++p.seq};
  }
  int64_t next_seq(const std::string& batch_id) { return ++load(batch_id).progress.seq; }
  // Whether the batch names a feed at more than one position (then positions share outcomes).
  bool has_duplicate_feeds(const std::string& batch_id) { return load(batch_id).duplicate_feeds; }

  void write(const std::string& now) {
    for (const auto& [id, batch] : batches_) {
      db_.prepare(
            "UPDATE batches SET done = ?2, failed = ?3, last_seq = ?4, "
            "status = CASE WHEN ?2 >= total THEN 'completed' ELSE 'running' END, "
            "completed_at = CASE WHEN ?2 >= total THEN COALESCE(completed_at, ?5) ELSE completed_at END "
            "WHERE id = ?1")
          .bind(1, id)
          .bind(2, batch.progress.done)
          .bind(3, batch.progress.failed)
          .bind(4, batch.progress.seq)
          .bind(5, now)
          .run();
    }
  }

 private:
  struct Batch {
    Progress progress;
    bool duplicate_feeds;
  };

  Batch& load(const std::string& batch_id) {
    auto it = batches_.find(batch_id);
    if (it != batches_.end()) return it->second;
    auto q = db_.prepare("SELECT total, done, failed, last_seq, duplicate_feeds FROM batches WHERE id = ?");
    q.bind(1, batch_id);
    if (!q.step()) throw DbError(SQLITE_NOTFOUND, "batch " + batch_id + " vanished");
    Batch batch{{q.int64(0), q.int64(1), q.int64(2), q.int64(3)}, q.int64(4) != 0};
    q.reset();
    return batches_.emplace(batch_id, batch).first->second;
  }

  Database& db_;
  std::map<std::string, Batch> batches_;
};

// An event whose row is written at the end of the transaction, so that its `ts` is the moment
// the transaction commits (the whole group's work precedes it), as DESIGN.md defines `ts`.
// `data` is the JSON object without its closing brace; insert_event adds seq, batch_id and ts.
struct PendingEvent {
  std::string batch_id;
  int64_t seq;
  std::string type;
  std::optional<int64_t> job_id;
  std::string data;
};

EventMessage insert_event(Database& db, PendingEvent& e, int64_t ts) {
  std::string& data = e.data;
  data += ",\"seq\":";
  data += std::to_string(e.seq);
  data += ",\"batch_id\":\"";
  append_json_escaped(data, e.batch_id);
  data += "\",\"ts\":";
  data += std::to_string(ts);
  data += '}';
  db.prepare("INSERT INTO events (batch_id, seq, type, job_id, ts, data) VALUES (?, ?, ?, ?, ?, ?)")
      .bind(1, e.batch_id)
      .bind(2, e.seq)
      .bind(3, e.type)
      .bind(4, e.job_id)
      .bind(5, ts)
      .bind(6, data)
      .run();
  return EventMessage{std::move(e.batch_id), e.seq, std::move(e.type), std::move(data)};
}

// Event JSON is written directly: building it as a JSON tree was a tenth of the writer's time.
void append_field(std::string& out, std::string_view key, const std::optional<int64_t>& value) {
  out += ",\"";
  out += key;
  out += "\":";
  out += value ? std::to_string(*value) : "null";
}

void append_field(std::string& out, std::string_view key, std::string_view text, bool null_when_empty) {
  out += ",\"";
  out += key;
  out += "\":";
  if (null_when_empty && text.empty()) {
    out += "null";
    return;
  }
  out += '"';
  append_json_escaped(out, text);
  out += '"';
}

std::string progress_json(const Progress& p) {
  return "{\"total\":" + std::to_string(p.total) + ",\"done\":" + std::to_string(p.done) +
         ",\"failed\":" + std::to_string(p.failed) + "}";
}

void finish_job(Database& db, const JobRow& job, const JobOutcome& o, int64_t items_new,
                std::optional<int64_t> items_total, const std::string& now,
                BatchCounters& counters, std::vector<PendingEvent>& events, OutcomeCounts* counts) {
  bool failed = o.status == JobStatus::failed;
  std::optional<int64_t> http_status;
  if (o.http_status) http_status = o.http_status;
  std::optional<int64_t> new_count;
  if (!failed) new_count = items_new;
  db.prepare(
        "UPDATE jobs SET status = ?2, http_status = ?3, items_new = ?4, items_total = ?5, "
        "duration_ms = ?6, error = ?7, finished_at = ?8 WHERE id = ?1")
      .bind(1, job.id)
      .bind(2, to_string(o.status))
      .bind(3, http_status)
      .bind(4, new_count)
      .bind(5, items_total)
      .bind(6, o.duration_ms)
      .bind_text_or_null(7, o.error)
      .bind(8, now)
      .run();
  Progress p = counters.advance(job.batch_id, failed);
  const std::string progress = progress_json(p);
  std::string data = "{\"position\":" + std::to_string(job.position);
  append_field(data, "url", job.url, false);
  append_field(data, "feed_id", job.feed_id);
  append_field(data, "status", to_string(o.status), false);
  append_field(data, "http_status", http_status);
  append_field(data, "items_new", new_count);
  append_field(data, "items_total", items_total);
  append_field(data, "duration_ms", o.duration_ms);
  append_field(data, "error", o.error, true);
  data += ",\"progress\":" + progress;
  events.push_back({job.batch_id, p.seq, failed ? "job.failed" : "job.completed", job.id, std::move(data)});
  if (counts) {
    (o.status == JobStatus::ok ? counts->ok : o.status == JobStatus::not_modified ? counts->not_modified : counts->failed)++;
    if (new_count) counts->items_new += static_cast<uint64_t>(*new_count);
  }
  if (p.done >= p.total) {
    events.push_back({job.batch_id, counters.next_seq(job.batch_id), "batch.completed", std::nullopt,
                      "{\"status\":\"completed\",\"progress\":" + progress});
    if (counts) ++counts->batches_completed;
  }
}

}  // namespace

std::vector<EventMessage> record_outcomes_in_transaction(Database& db, const std::vector<JobOutcome>& outcomes,
                                                         OutcomeCounts* counts) {
  std::vector<PendingEvent> pending;
  BatchCounters counters(db);
  const std::string now = now_rfc3339();
  for (const JobOutcome& o : outcomes) {
    auto job = load_open_job(db, o.job_id);
    if (!job) continue;  // already final: a redelivery changes nothing
    int64_t items_new = 0;
    std::optional<int64_t> items_total;
    if (job->feed_id && o.fetch) {
      // Items first: the feed's update adds the new ones to its stored count.
      if (o.status == JobStatus::ok) items_new = upsert_items(db, *job->feed_id, o.fetch->items, now);
      items_total = update_feed_state(db, *job->feed_id, o, job->feed_item_count, items_new, now);
    } else if (job->feed_id && o.status == JobStatus::failed) {
      update_feed_state(db, *job->feed_id, o, job->feed_item_count, 0, now);
    }
    if (job->feed_id && o.status != JobStatus::failed && !items_total) items_total = job->feed_item_count;
    finish_job(db, *job, o, items_new, items_total, now, counters, pending, counts);
    if (!counters.has_duplicate_feeds(job->batch_id)) continue;
    for (const JobRow& sibling : open_siblings(db, *job))
      finish_job(db, sibling, o, items_new, items_total, now, counters, pending, counts);
  }
  counters.write(now);
  std::vector<EventMessage> events;
  events.reserve(pending.size());
  const int64_t ts = now_ms();
  for (auto& e : pending) {
    events.push_back(insert_event(db, e, ts));
    const EventMessage& written = events.back();
    // The batch's callback, if it asked for one, is queued by the commit that completes it.
    if (written.type == "batch.completed") callbacks::queue_callback(db, written.batch_id, written.data, ts);
  }
  return events;
}

namespace {

void mark_jobs_running_in_transaction(Database& db, const RunningMarks& marks) {
  std::set<std::string> batches(marks.batch_ids.begin(), marks.batch_ids.end());
  if (!marks.job_ids.empty()) {
    const std::string now = now_rfc3339();
    // One statement for the whole list (a JSON array of ids).
    std::string ids = "[";
    for (int64_t id : marks.job_ids) ids += std::to_string(id) + ",";
    ids.back() = ']';
    auto q = db.prepare(
        "UPDATE jobs SET status = 'running', started_at = ?1 "
        "WHERE id IN (SELECT value FROM json_each(?2)) AND status = 'queued' RETURNING batch_id");
    q.bind(1, now).bind(2, ids);
    while (q.step()) batches.insert(q.text(0));
    q.reset();
  }
  for (const std::string& batch_id : batches)
    db.prepare("UPDATE batches SET status = 'running' WHERE id = ? AND status = 'queued'").bind(1, batch_id).run();
}

}  // namespace

std::vector<EventMessage> record_outcomes(Database& db, const std::vector<JobOutcome>& outcomes,
                                          OutcomeCounts* counts, const RunningMarks& newly_running,
                                          Database::DueCheckpoint due) {
  std::vector<EventMessage> events;
  db.write([&] {
    if (counts) *counts = {};  // a retried transaction counts again from zero
    mark_jobs_running_in_transaction(db, newly_running);
    events = record_outcomes_in_transaction(db, outcomes, counts);
  }, due);
  return events;
}

void mark_jobs_running(Database& db, const std::vector<int64_t>& job_ids) {
  if (job_ids.empty()) return;
  db.write([&] { mark_jobs_running_in_transaction(db, RunningMarks{job_ids, {}}); });
}

std::optional<JobStatus> job_status(Database& db, int64_t job_id) {
  auto q = db.prepare("SELECT status FROM jobs WHERE id = ?");
  q.bind(1, job_id);
  if (!q.step()) return std::nullopt;
  return job_status_from_string(q.text(0));
}

std::vector<JobFetchState> job_fetch_states(Database& db, const std::vector<int64_t>& job_ids) {
  std::vector<JobFetchState> states(job_ids.size());
  if (job_ids.empty()) return states;
  std::string ids = "[";
  for (int64_t id : job_ids) ids += std::to_string(id) + ",";
  ids.back() = ']';
  // k.key is the id's index in the array.
  auto q = db.prepare(
      "SELECT k.key, j.status, f.etag, f.last_modified, f.next_fetch_at "
      "FROM json_each(?1) k JOIN jobs j ON j.id = k.value LEFT JOIN feeds f ON f.id = j.feed_id");
  q.bind(1, ids);
  while (q.step()) {
    JobFetchState& s = states.at(static_cast<size_t>(q.int64(0)));
    s.status = job_status_from_string(q.text(1));
    s.etag = q.text(2);
    s.last_modified = q.text(3);
    s.next_fetch_at = q.text(4);
  }
  return states;
}

}  // namespace feedpipe
