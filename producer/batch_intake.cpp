#include "producer/batch_intake.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <unordered_map>
#include <unordered_set>

#include "common/clock.h"
#include "common/job_outcomes.h"
#include "common/url.h"

namespace feedpipe::producer {
namespace {

std::optional<std::string> existing_batch(Database& db, const std::string& key, std::string* hash) {
  auto q = db.prepare("SELECT id, request_hash FROM batches WHERE idempotency_key = ?");
  q.bind(1, key);
  if (!q.step()) return std::nullopt;
  *hash = q.text(1);
  return q.text(0);
}

// A stored feed: its id and what a fetch of it needs (see JobMessage), read in the same lookup.
struct KnownFeed {
  int64_t id = 0;
  std::string etag, last_modified, not_before;
};

// `now`: RFC 3339 UTC text, which compares as the stored times do.
std::optional<KnownFeed> feed_with_url(Database& db, const std::string& url, const std::string& now) {
  auto q = db.prepare(
      "SELECT id, etag, last_modified, CASE WHEN next_fetch_at > ?2 THEN next_fetch_at END "
      "FROM feeds WHERE url = ?1");
  q.bind(1, url).bind(2, now);
  std::optional<KnownFeed> feed;
  if (q.step()) feed = KnownFeed{q.int64(0), q.text(1), q.text(2), q.text(3)};
  q.reset();
  return feed;
}

// A submitted URL resolved to its feed before any job is written: a stored feed, or the
// normalized URL of a feed to create, or why it cannot be fetched.
struct Resolved {
  std::string url;                 // normalized; empty when not fetchable
  std::optional<KnownFeed> feed;   // stored already
  std::string why;                 // not fetchable: the reason
  int32_t partition = 0;           // of feed.refresh.jobs, where its job message goes
};

// Looks up first: feeds are usually refreshed again and again, and inside the write transaction
// nobody else can insert the URL in between. A URL submitted exactly as a feed stores it is
// normalized already (normalizing is idempotent), so a feed refreshed again skips the URL parser.
Resolved resolve(Database& db, const std::string& raw, const std::string& now) {
  Resolved r;
  if ((r.feed = feed_with_url(db, raw, now))) {
    r.url = raw;
    return r;
  }
  auto url = normalize_feed_url(raw, &r.why);
  if (!url) return r;
  r.url = std::move(*url);
  if (r.url != raw) r.feed = feed_with_url(db, r.url, now);  // another spelling of a known feed
  return r;
}

// The order in which the jobs (and new feeds) are written: partition by partition, each in
// submitted order, then the URLs that cannot be fetched. A consumer takes a partition's
// messages in runs, so the outcomes a writer records together then touch neighbouring rows of
// `jobs` and `feeds` instead of one row per page.
std::vector<size_t> write_order(std::vector<Resolved>& resolved, const JobPartitioner& partition_of) {
  std::vector<size_t> order(resolved.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  if (!partition_of) return order;
  for (Resolved& r : resolved)
    if (!r.url.empty()) r.partition = partition_of(r.url);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const Resolved &x = resolved[a], &y = resolved[b];
    if (x.url.empty() != y.url.empty()) return y.url.empty();
    return x.partition < y.partition;
  });
  return order;
}

// Foreign keys go unchecked while a batch is written: each row it writes refers to the batch it
// has just inserted or to a feed it has just read or inserted, in the same transaction. Their
// checks (a lookup of each job's batch and feed) were a fifth of the intake of known feeds.
// (SQLite ignores the pragma inside a transaction, so it is set around it.)
class ForeignKeysUnchecked {
 public:
  explicit ForeignKeysUnchecked(Database& db) : db_(db) {
    auto q = db_.prepare("PRAGMA foreign_keys");
    was_on_ = q.step() && q.int64(0) != 0;
    q.reset();
    if (was_on_) db_.exec("PRAGMA foreign_keys=OFF");
  }
  ~ForeignKeysUnchecked() {
    if (!was_on_) return;
    try {
      db_.exec("PRAGMA foreign_keys=ON");
    } catch (const std::exception&) {  // the connection is broken; its next use reports that
    }
  }
  ForeignKeysUnchecked(const ForeignKeysUnchecked&) = delete;
  ForeignKeysUnchecked& operator=(const ForeignKeysUnchecked&) = delete;

 private:
  Database& db_;
  bool was_on_ = false;
};

}  // namespace

std::string fnv1a_hex(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::string new_batch_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[32];
  std::snprintf(buf, sizeof buf, "%012llx%08llx", static_cast<unsigned long long>(now_ms()),
                static_cast<unsigned long long>(rng() & 0xffffffffull));
  return buf;
}

std::variant<CreatedBatch, Refusal> create_batch(Database& db, const BatchRequest& request,
                                                 const std::string& idempotency_key,
                                                 const std::string& body,
                                                 const JobPartitioner& partition_of) {
  const std::string hash = idempotency_key.empty() ? "" : fnv1a_hex(body);
  std::optional<Refusal> refusal;
  CreatedBatch created;
  ForeignKeysUnchecked unchecked(db);
  db.write([&] {
    created = CreatedBatch{};
    refusal.reset();
    if (!idempotency_key.empty()) {
      std::string first_hash;
      if (auto id = existing_batch(db, idempotency_key, &first_hash)) {
        if (first_hash != hash)
          refusal = Refusal{422, "idempotency_key_reused",
                            "the Idempotency-Key was already used with a different request body"};
        created.batch_id = *id;
        created.replayed = true;
        return;
      }
    }
    created.batch_id = new_batch_id();
    const std::string now = now_rfc3339();
    db.prepare(
          "INSERT INTO batches (id, created_at, total, idempotency_key, request_hash, callback_url) "
          "VALUES (?, ?, ?, ?, ?, ?)")
        .bind(1, created.batch_id)
        .bind(2, now)
        .bind(3, static_cast<int64_t>(request.feeds.size()))
        .bind_text_or_null(4, idempotency_key)
        .bind_text_or_null(5, hash)
        .bind_text_or_null(6, request.callback_url)
        .run();
    std::vector<Resolved> resolved;
    resolved.reserve(request.feeds.size());
    for (const std::string& raw : request.feeds) resolved.push_back(resolve(db, raw, now));
    std::vector<JobOutcome> invalid;
    std::unordered_map<std::string, int64_t> created_feeds;  // by URL: a new feed named twice
    std::unordered_set<int64_t> feeds_seen;
    bool duplicate_feeds = false;
    created.jobs.reserve(request.feeds.size());
    for (size_t pos : write_order(resolved, partition_of)) {
      Resolved& r = resolved[pos];
      std::optional<int64_t> feed_id;
      if (!r.url.empty()) {
        if (!r.feed) {
          auto [it, is_new] = created_feeds.try_emplace(r.url, 0);
          if (is_new) {
            db.prepare("INSERT INTO feeds (url) VALUES (?)").bind(1, r.url).run();
            it->second = db.last_insert_rowid();
          }
          r.feed = KnownFeed{it->second, "", "", ""};
        }
        feed_id = r.feed->id;
        duplicate_feeds |= !feeds_seen.insert(*feed_id).second;
      }
      db.prepare("INSERT INTO jobs (batch_id, position, url, feed_id) VALUES (?, ?, ?, ?)")
          .bind(1, created.batch_id)
          .bind(2, static_cast<int64_t>(pos))
          .bind(3, request.feeds[pos])
          .bind(4, feed_id)
          .run();
      int64_t job_id = db.last_insert_rowid();
      if (feed_id) {
        KnownFeed& known = *r.feed;
        created.jobs.push_back({job_id, created.batch_id, static_cast<int64_t>(pos), std::move(r.url),
                                known.id, std::move(known.etag), std::move(known.last_modified),
                                std::move(known.not_before)});
      } else {
        JobOutcome o;
        o.job_id = job_id;
        o.status = JobStatus::failed;
        o.error = "invalid feed URL: " + r.why;
        invalid.push_back(std::move(o));
      }
    }
    db.prepare("UPDATE batches SET duplicate_feeds = ? WHERE id = ?")
        .bind(1, static_cast<int64_t>(duplicate_feeds))
        .bind(2, created.batch_id)
        .run();
    if (!invalid.empty()) created.events = record_outcomes_in_transaction(db, invalid);
  }, Database::DueCheckpoint::leave);
  if (refusal) return *refusal;
  return created;
}

}  // namespace feedpipe::producer
