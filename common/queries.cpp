#include "common/queries.h"

#include <algorithm>
#include <stdexcept>

#include "common/callbacks/callback_store.h"

namespace feedpipe {
namespace {

nlohmann::json column_json(Statement& q, int col) {
  if (q.is_null(col)) return nullptr;
  return q.text(col);
}

nlohmann::json column_int(Statement& q, int col) {
  if (q.is_null(col)) return nullptr;
  return q.int64(col);
}

}  // namespace

std::optional<BatchProgress> batch_progress(Database& db, const std::string& batch_id) {
  auto q = db.prepare("SELECT status, total, done, failed, last_seq FROM batches WHERE id = ?");
  q.bind(1, batch_id);
  if (!q.step()) return std::nullopt;
  return BatchProgress{q.text(0), q.int64(1), q.int64(2), q.int64(3), q.int64(4)};
}

std::optional<nlohmann::json> batch_snapshot(Database& db, const std::string& batch_id) {
  std::optional<nlohmann::json> result;
  db.read([&] {
    auto b = db.prepare("SELECT status, created_at, total, done, failed FROM batches WHERE id = ?");
    b.bind(1, batch_id);
    if (!b.step()) return;
    nlohmann::json snap{{"batch_id", batch_id}, {"status", b.text(0)}, {"created_at", b.text(1)},
                        {"total", b.int64(2)},  {"done", b.int64(3)},   {"failed", b.int64(4)}};
    b.reset();
    auto jobs = nlohmann::json::array();
    auto q = db.prepare(
        "SELECT j.position, j.url, j.feed_id, j.status, j.http_status, j.items_new, j.items_total, "
        "j.duration_ms, j.error, f.title FROM jobs j LEFT JOIN feeds f ON f.id = j.feed_id "
        "WHERE j.batch_id = ? ORDER BY j.position");
    q.bind(1, batch_id);
    while (q.step()) {
      jobs.push_back({{"position", q.int64(0)},
                      {"url", q.text(1)},
                      {"feed_id", column_int(q, 2)},
                      {"status", q.text(3)},
                      {"http_status", column_int(q, 4)},
                      {"items_new", column_int(q, 5)},
                      {"items_total", column_int(q, 6)},
                      {"duration_ms", column_int(q, 7)},
                      {"error", column_json(q, 8)},
                      {"title", column_json(q, 9)}});  // the feed's, once fetched
    }
    snap["jobs"] = std::move(jobs);
    q.reset();
    auto callback = callbacks::callback_state(db, batch_id);
    if (!callback.is_null()) snap["callback"] = std::move(callback);  // only when one was asked for
    result = std::move(snap);
  });
  return result;
}

nlohmann::json list_batches(Database& db, int limit, const std::string& before) {
  auto q = db.prepare(
      "SELECT id, status, created_at, total, done, failed, completed_at, last_seq FROM batches "
      "WHERE (?1 = '' OR id < ?1) ORDER BY id DESC LIMIT ?2");
  q.bind(1, before).bind(2, static_cast<int64_t>(limit));
  auto batches = nlohmann::json::array();
  while (q.step()) {
    batches.push_back({{"batch_id", q.text(0)},
                       {"status", q.text(1)},
                       {"created_at", q.text(2)},
                       {"total", q.int64(3)},
                       {"done", q.int64(4)},
                       {"failed", q.int64(5)},
                       {"completed_at", column_json(q, 6)},
                       {"last_seq", q.int64(7)},
                       {"status_url", "/v1/batches/" + q.text(0)},
                       {"events_url", "/v1/batches/" + q.text(0) + "/events"}});
  }
  nlohmann::json next = nullptr;
  if (static_cast<int>(batches.size()) == limit && limit > 0) next = batches.back()["batch_id"];
  return {{"batches", std::move(batches)}, {"next_before", next}};
}

std::vector<EventMessage> events_after(Database& db, const std::string& batch_id, int64_t after_seq,
                                       int limit) {
  auto q = db.prepare(
      "SELECT seq, type, data FROM events WHERE batch_id = ? AND seq > ? ORDER BY seq LIMIT ?");
  q.bind(1, batch_id).bind(2, after_seq).bind(3, static_cast<int64_t>(limit));
  std::vector<EventMessage> events;
  while (q.step()) events.push_back({batch_id, q.int64(0), q.text(1), q.text(2)});
  return events;
}

std::optional<EventPage> read_event_page(Database& db, const std::string& batch_id, int64_t after_seq,
                                         int limit) {
  after_seq = std::max<int64_t>(after_seq, 0);
  std::optional<BatchProgress> progress;
  EventPage page;
  db.read([&] {
    progress = batch_progress(db, batch_id);
    if (progress) page.events = events_after(db, batch_id, after_seq, limit);
  });
  if (!progress) return std::nullopt;
  page.next_after = page.events.empty() ? after_seq : page.events.back().seq;
  page.done = progress->status == "completed" && progress->last_seq <= page.next_after;
  return page;
}

nlohmann::json event_page_json(const EventPage& page) {
  auto events = nlohmann::json::array();
  for (const EventMessage& e : page.events) {
    auto data = nlohmann::json::parse(e.data, nullptr, false);
    if (data.is_discarded()) data = e.data;  // never expected: events are written as JSON
    events.push_back({{"id", e.seq}, {"event", e.type}, {"data", std::move(data)}});
  }
  return nlohmann::json{{"events", std::move(events)}, {"next_after", page.next_after}, {"done", page.done}};
}

EventPage event_page_from_json(const nlohmann::json& body, const std::string& batch_id) {
  auto fail = [](const std::string& why) { throw std::invalid_argument("not an events page: " + why); };
  if (!body.is_object()) fail("not a JSON object");
  auto events = body.find("events");
  auto next_after = body.find("next_after");
  auto done = body.find("done");
  if (events == body.end() || !events->is_array()) fail("no \"events\" array");
  if (next_after == body.end() || !next_after->is_number_integer()) fail("no integer \"next_after\"");
  if (done == body.end() || !done->is_boolean()) fail("no boolean \"done\"");
  EventPage page;
  page.next_after = next_after->get<int64_t>();
  page.done = done->get<bool>();
  page.events.reserve(events->size());
  for (const auto& e : *events) {
    if (!e.is_object() || !e.contains("id") || !e["id"].is_number_integer() || !e.contains("event") ||
        !e["event"].is_string() || !e.contains("data"))
      fail("an event without an integer \"id\", a string \"event\" and \"data\"");
    const auto& data = e["data"];
    page.events.push_back({batch_id, e["id"].get<int64_t>(), e["event"].get<std::string>(),
                           data.is_string() ? data.get<std::string>() : data.dump()});
  }
  return page;
}

std::optional<nlohmann::json> feed_state(Database& db, int64_t feed_id) {
  auto q = db.prepare(
      "SELECT url, final_url, title, link, last_fetch_at, last_success_at, last_http_status, "
      "consecutive_failures, last_error, etag, last_modified, next_fetch_at, "
      "item_count FROM feeds WHERE id = ?");
  q.bind(1, feed_id);
  if (!q.step()) return std::nullopt;
  return nlohmann::json{{"feed_id", feed_id},
                        {"url", q.text(0)},
                        {"final_url", column_json(q, 1)},
                        {"title", column_json(q, 2)},
                        {"link", column_json(q, 3)},
                        {"last_fetch_at", column_json(q, 4)},
                        {"last_success_at", column_json(q, 5)},
                        {"last_http_status", column_int(q, 6)},
                        {"consecutive_failures", q.int64(7)},
                        {"last_error", column_json(q, 8)},
                        {"etag", column_json(q, 9)},
                        {"last_modified", column_json(q, 10)},
                        {"next_fetch_allowed_at", column_json(q, 11)},
                        {"items_total", q.int64(12)},
                        {"items_url", "/v1/feeds/" + std::to_string(feed_id) + "/items"}};
}

std::optional<nlohmann::json> feed_items(Database& db, int64_t feed_id, int limit, int64_t after) {
  std::optional<nlohmann::json> result;
  db.read([&] {
    auto f = db.prepare("SELECT 1 FROM feeds WHERE id = ?");
    f.bind(1, feed_id);
    if (!f.step()) return;
    f.reset();
    auto q = db.prepare(
        "SELECT id, guid, link, title, author, published, updated, summary, content, first_seen_at "
        "FROM items WHERE feed_id = ?1 AND (?2 = 0 OR id < ?2) ORDER BY id DESC LIMIT ?3");
    q.bind(1, feed_id).bind(2, after).bind(3, static_cast<int64_t>(limit));
    auto items = nlohmann::json::array();
    int64_t last_id = 0;
    while (q.step()) {
      last_id = q.int64(0);
      items.push_back({{"id", last_id},
                       {"guid", column_json(q, 1)},
                       {"link", column_json(q, 2)},
                       {"title", column_json(q, 3)},
                       {"author", column_json(q, 4)},
                       {"published", column_json(q, 5)},
                       {"updated", column_json(q, 6)},
                       {"summary", column_json(q, 7)},
                       {"content", column_json(q, 8)},
                       {"first_seen_at", column_json(q, 9)}});
    }
    nlohmann::json next = nullptr;
    if (static_cast<int>(items.size()) == limit && limit > 0) next = last_id;
    result = nlohmann::json{{"items", std::move(items)}, {"next_after", next}};
  });
  return result;
}

}  // namespace feedpipe
