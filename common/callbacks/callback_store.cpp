#include "common/callbacks/callback_store.h"

#include <openssl/rand.h>

#include <random>

#include "common/hmac.h"

namespace feedpipe::callbacks {

std::string callback_body(const std::string& batch_id, const std::string& completed_event_data) {
  nlohmann::ordered_json body;
  body["batch_id"] = batch_id;
  body["event"] = "batch.completed";
  auto data = nlohmann::ordered_json::parse(completed_event_data, nullptr, false);
  if (data.is_object())
    for (auto& [key, value] : data.items())
      if (key != "batch_id") body[key] = value;
  return body.dump();
}

std::string new_delivery_id() {
  Digest bytes{};
  if (RAND_bytes(bytes.data(), 16) != 1) {  // never expected; a weaker source still gives an id
    std::random_device rd;
    for (size_t i = 0; i < 16; ++i) bytes[i] = static_cast<uint8_t>(rd());
  }
  return to_hex(bytes).substr(0, 32);
}

void queue_callback(Database& db, const std::string& batch_id, const std::string& completed_event_data,
                    int64_t now_ms) {
  std::string url;
  {
    auto q = db.prepare("SELECT callback_url FROM batches WHERE id = ? AND callback_url IS NOT NULL");
    q.bind(1, batch_id);
    if (!q.step()) return;
    url = q.text(0);
  }
  db.prepare(
        "INSERT INTO callbacks (batch_id, url, delivery_id, body, created_at_ms, next_attempt_at_ms) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?5) ON CONFLICT (batch_id) DO NOTHING")
      .bind(1, batch_id)
      .bind(2, url)
      .bind(3, new_delivery_id())
      .bind(4, callback_body(batch_id, completed_event_data))
      .bind(5, now_ms)
      .run();
}

std::vector<ClaimedCallback> claim_due(Database& db, const std::string& claimer, int64_t now_ms, int64_t lease_ms,
                                       size_t limit) {
  std::vector<ClaimedCallback> claimed;
  if (limit == 0) return claimed;
  db.write([&] {
    claimed.clear();
    // The condition is checked again by the UPDATE itself, inside the write lock: of two
    // senders, only one can move claimed_until_ms past now.
    auto q = db.prepare(
        "UPDATE callbacks SET claimed_by = ?1, claimed_until_ms = ?2 + ?3 "
        "WHERE batch_id IN (SELECT batch_id FROM callbacks "
        "  WHERE status = 'pending' AND next_attempt_at_ms <= ?2 AND claimed_until_ms <= ?2 "
        "  ORDER BY next_attempt_at_ms LIMIT ?4) "
        "AND status = 'pending' AND claimed_until_ms <= ?2 "
        "RETURNING batch_id, url, delivery_id, body, attempts, created_at_ms");
    q.bind(1, claimer).bind(2, now_ms).bind(3, lease_ms).bind(4, static_cast<int64_t>(limit));
    while (q.step()) claimed.push_back({q.text(0), q.text(1), q.text(2), q.text(3), q.int64(4), q.int64(5)});
  });
  return claimed;
}

std::optional<int64_t> next_due_ms(Database& db) {
  auto q = db.prepare(
      "SELECT min(max(next_attempt_at_ms, claimed_until_ms)) FROM callbacks WHERE status = 'pending'");
  if (!q.step() || q.is_null(0)) return std::nullopt;
  return q.int64(0);
}

namespace {

bool finish_attempt(Database& db, const std::string& batch_id, const std::string& claimer, const char* status,
                    const std::string& error, int64_t next_attempt_at_ms) {
  bool applied = false;
  db.write([&] {
    db.prepare(
          "UPDATE callbacks SET status = ?3, attempts = attempts + 1, last_error = ?4, "
          "next_attempt_at_ms = ?5, claimed_by = NULL, claimed_until_ms = 0 "
          "WHERE batch_id = ?1 AND claimed_by = ?2 AND status = 'pending'")
        .bind(1, batch_id)
        .bind(2, claimer)
        .bind(3, status)
        .bind_text_or_null(4, error)
        .bind(5, next_attempt_at_ms)
        .run();
    applied = db.changes() == 1;
  });
  return applied;
}

}  // namespace

bool record_delivered(Database& db, const std::string& batch_id, const std::string& claimer) {
  return finish_attempt(db, batch_id, claimer, "delivered", "", 0);
}

bool record_retry(Database& db, const std::string& batch_id, const std::string& claimer, const std::string& error,
                  int64_t next_attempt_at_ms) {
  return finish_attempt(db, batch_id, claimer, "pending", error, next_attempt_at_ms);
}

bool record_failed(Database& db, const std::string& batch_id, const std::string& claimer, const std::string& error) {
  return finish_attempt(db, batch_id, claimer, "failed", error, 0);
}

void release_claim(Database& db, const std::string& batch_id, const std::string& claimer) {
  db.write([&] {
    db.prepare(
          "UPDATE callbacks SET claimed_by = NULL, claimed_until_ms = 0 WHERE batch_id = ?1 AND claimed_by = ?2")
        .bind(1, batch_id)
        .bind(2, claimer)
        .run();
  });
}

nlohmann::json callback_state(Database& db, const std::string& batch_id) {
  auto q = db.prepare(
      "SELECT b.callback_url, c.url, c.status, c.attempts, c.last_error FROM batches b "
      "LEFT JOIN callbacks c ON c.batch_id = b.id WHERE b.id = ? AND b.callback_url IS NOT NULL");
  q.bind(1, batch_id);
  if (!q.step()) return nullptr;
  if (q.is_null(1))
    return nlohmann::json{{"url", q.text(0)}, {"status", "pending"}, {"attempts", 0}, {"last_error", nullptr}};
  nlohmann::json last_error = nullptr;
  if (!q.is_null(4)) last_error = q.text(4);
  return nlohmann::json{{"url", q.text(1)}, {"status", q.text(2)}, {"attempts", q.int64(3)}, {"last_error", last_error}};
}

}  // namespace feedpipe::callbacks
