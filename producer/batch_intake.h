#pragma once
// Turning a POST /v1/batches body into a batch: validation (DESIGN.md's status per case) and the
// one transaction that writes the batch, its feeds and jobs, and the immediate failures of
// strings that are not fetchable URLs.
#include <nlohmann/json.hpp>

#include <optional>
#include <variant>
#include <string>
#include <vector>

#include "common/db.h"
#include "common/model.h"

namespace feedpipe::producer {

// A refusal: HTTP status, machine-readable code and a message for the user.
struct Refusal {
  int status;
  std::string code;
  std::string message;
};

struct BatchRequest {
  std::vector<std::string> feeds;
};

// Parses and validates the body; a Refusal for malformed JSON, wrong shape, empty or too large.
std::variant<BatchRequest, Refusal> parse_batch_request(const std::string& body, size_t max_feeds);

struct CreatedBatch {
  std::string batch_id;
  std::vector<JobMessage> jobs;    // to publish (fetchable URLs only)
  std::vector<EventMessage> events;  // written at once (failed jobs, maybe batch.completed)
  bool replayed = false;           // an Idempotency-Key repeat: nothing new was written
};

// Writes the batch. With an idempotency key, a repeat of the same body returns the first batch
// (replayed) and another body under the same key is a 422 Refusal.
std::variant<CreatedBatch, Refusal> create_batch(Database& db, const BatchRequest& request,
                                                 const std::string& idempotency_key,
                                                 const std::string& body);

std::string new_batch_id();  // time-ordered: sorts by creation time

// 64-bit FNV-1a of `s` as 16 hex digits: request fingerprints and ETags.
std::string fnv1a_hex(const std::string& s);

}  // namespace feedpipe::producer
