#include "producer/batch_intake.h"

#include <chrono>
#include <cstdio>
#include <random>
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

// The feed of a submitted URL (created when new) and its normalized URL, or why it cannot be
// fetched. Looks up first: feeds are usually refreshed again and again, and inside the write
// transaction nobody else can insert the URL in between. A URL submitted exactly as a feed
// stores it is normalized already (normalizing is idempotent), so a feed refreshed again skips
// the URL parser.
std::optional<std::pair<std::string, KnownFeed>> feed_of(Database& db, const std::string& raw, const std::string& now,
                                                        std::string* why) {
  if (auto feed = feed_with_url(db, raw, now)) return std::pair{raw, std::move(*feed)};
  auto url = normalize_feed_url(raw, why);
  if (!url) return std::nullopt;
  std::optional<KnownFeed> feed;
  if (*url != raw) feed = feed_with_url(db, *url, now);  // another spelling of a known feed
  if (!feed) {
    db.prepare("INSERT INTO feeds (url) VALUES (?)").bind(1, *url).run();
    feed = KnownFeed{db.last_insert_rowid(), "", "", ""};
  }
  return std::pair{std::move(*url), std::move(*feed)};
}

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
                                                 const std::string& body) {
  const std::string hash = idempotency_key.empty() ? "" : fnv1a_hex(body);
  std::optional<Refusal> refusal;
  CreatedBatch created;
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
    std::vector<JobOutcome> invalid;
    std::unordered_set<int64_t> feeds_seen;
    bool duplicate_feeds = false;
    for (size_t pos = 0; pos < request.feeds.size(); ++pos) {
      const std::string& raw = request.feeds[pos];
      std::string why;
      auto feed = feed_of(db, raw, now, &why);
      std::optional<int64_t> feed_id;
      if (feed) {
        feed_id = feed->second.id;
        duplicate_feeds |= !feeds_seen.insert(*feed_id).second;
      }
      db.prepare("INSERT INTO jobs (batch_id, position, url, feed_id) VALUES (?, ?, ?, ?)")
          .bind(1, created.batch_id)
          .bind(2, static_cast<int64_t>(pos))
          .bind(3, raw)
          .bind(4, feed_id)
          .run();
      int64_t job_id = db.last_insert_rowid();
      if (feed) {
        KnownFeed& known = feed->second;
        created.jobs.push_back({job_id, created.batch_id, static_cast<int64_t>(pos), std::move(feed->first),
                                known.id, known.etag, known.last_modified, known.not_before});
      } else {
        JobOutcome o;
        o.job_id = job_id;
        o.status = JobStatus::failed;
        o.error = "invalid feed URL: " + why;
        invalid.push_back(std::move(o));
      }
    }
    db.prepare("UPDATE batches SET duplicate_feeds = ? WHERE id = ?")
        .bind(1, static_cast<int64_t>(duplicate_feeds))
        .bind(2, created.batch_id)
        .run();
    if (!invalid.empty()) created.events = record_outcomes_in_transaction(db, invalid);
  });
  if (refusal) return *refusal;
  return created;
}

}  // namespace feedpipe::producer
