#pragma once
// The callbacks table (migrations/0006_callbacks.sql): the durable queue of the POSTs batches
// asked for with "callback_url". A callback is created in the transaction that completes its
// batch, so a crash can lose none; senders on any number of processes sharing the SQLite file
// claim due callbacks with a conditional UPDATE and a lease, so that one callback is never sent
// by two of them at once, and a claimer that dies only delays it until its lease expires.
// Every function takes the caller's Database (one per thread); none keeps state.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/db.h"

namespace feedpipe::callbacks {

// The POST body of a batch's callback: {"batch_id","event":"batch.completed",…} followed by the
// fields of the batch.completed event's data (status, progress, seq, ts).
std::string callback_body(const std::string& batch_id, const std::string& completed_event_data);

// Inside the caller's write transaction that writes the batch's batch.completed event: queues
// the batch's callback when it asked for one (nothing otherwise, nor when one is queued already).
void queue_callback(Database& db, const std::string& batch_id, const std::string& completed_event_data,
                    int64_t now_ms);

// A random 32-hex-digit id (Feedpipe-Delivery).
std::string new_delivery_id();

struct ClaimedCallback {
  std::string batch_id, url, delivery_id, body;
  int64_t attempts = 0;  // attempts finished before this one
  int64_t created_at_ms = 0;
};

// Claims up to `limit` pending callbacks due at `now_ms` that nobody holds (or whose holder's
// lease expired), for `claimer` until now_ms + lease_ms; oldest due first. One transaction.
std::vector<ClaimedCallback> claim_due(Database& db, const std::string& claimer, int64_t now_ms, int64_t lease_ms,
                                       size_t limit);

// When the earliest pending callback is due (nullopt: none pending). Claimed ones count at the
// end of their lease.
std::optional<int64_t> next_due_ms(Database& db);

// The end of an attempt by `claimer`; false (and nothing written) when its claim was lost (its
// lease expired and another sender took the callback). Each counts the attempt and releases it.
bool record_delivered(Database& db, const std::string& batch_id, const std::string& claimer);
bool record_retry(Database& db, const std::string& batch_id, const std::string& claimer, const std::string& error,
                  int64_t next_attempt_at_ms);
bool record_failed(Database& db, const std::string& batch_id, const std::string& claimer, const std::string& error);
// Gives the claim back without counting an attempt (a sender that stops mid-transfer).
void release_claim(Database& db, const std::string& batch_id, const std::string& claimer);

// {"url","status","attempts","last_error"} of the batch's callback, read in the caller's
// transaction; null when the batch asked for none. Before the batch completes: pending, 0 attempts.
nlohmann::json callback_state(Database& db, const std::string& batch_id);

}  // namespace feedpipe::callbacks
