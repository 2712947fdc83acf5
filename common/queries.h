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

// {batch_id,status,created_at,total,done,failed,jobs:[…]}; nullopt for an unknown batch.
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

std::optional<nlohmann::json> feed_state(Database& db, int64_t feed_id);
// {"items":[…],"next_after":id|null}, newest first; `after` is an item id cursor (0 = from the newest).
std::optional<nlohmann::json> feed_items(Database& db, int64_t feed_id, int limit, int64_t after);

}  // namespace feedpipe
