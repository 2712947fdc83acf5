#pragma once
// Read-side queries shared by the API and the broadcaster: batch snapshots, event pages, feeds
// and items, shaped as DESIGN.md's JSON.
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "common/db.h"
#include "common/model.h"

namespace feedpipe {

// {batch_id,status,created_at,total,done,failed,jobs:[…]} and, when the batch asked for one,
// callback {url,status,attempts,last_error}; nullopt for an unknown batch.
std::optional<nlohmann::json> batch_snapshot(Database& db, const std::string& batch_id);

// Newest first; `before` is a batch id (exclusive) for paging. Jobs are not included.
nlohmann::json list_batches(Database& db, int limit, const std::string& before);

struct BatchProgress {
  std::string status;
  int64_t total = 0, done = 0, failed = 0, last_seq = 0;
};
std::optional<BatchProgress> batch_progress(Database& db, const std::string& batch_id);

// Events of the batch with seq > after_seq, in seq order, at most `limit`.
std::vector<EventMessage> events_after(Database& db, const std::string& batch_id, int64_t after_seq,
                                       int limit);

// A page of a batch's events, for clients that poll: GET /v1/batches/{id}/events?after=SEQ with
// Accept: application/json, answered by the producer and by broadcasters alike
// (common/event_page_route.h), and read back by a broadcaster with --api.
struct EventPage {
  std::vector<EventMessage> events;
  int64_t next_after = 0;  // the seq to pass as `after` for the next page
  bool done = false;       // batch.completed is in this page or before `after`
};
// Events with seq > after_seq (negative: 0), at most `limit`, in one read transaction; nullopt
// for an unknown batch.
std::optional<EventPage> read_event_page(Database& db, const std::string& batch_id, int64_t after_seq,
                                         int limit);
// {"events":[{"id","event","data"}…],"next_after","done"} (data as JSON, not as a string).
nlohmann::json event_page_json(const EventPage& page);
// The inverse of event_page_json for batch `batch_id` (data back to JSON text). Throws
// std::invalid_argument when `body` is not such a page.
EventPage event_page_from_json(const nlohmann::json& body, const std::string& batch_id);

std::optional<nlohmann::json> feed_state(Database& db, int64_t feed_id);
// {"items":[…],"next_after":id|null}, newest first; `after` is an item id cursor (0 = from the newest).
std::optional<nlohmann::json> feed_items(Database& db, int64_t feed_id, int limit, int64_t after);

}  // namespace feedpipe
