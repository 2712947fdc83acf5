#pragma once
// Turning a parsed POST /v1/batches request (producer/batch_request.h) into a batch: the
// one transaction that writes the batch, its feeds and jobs, and the immediate failures of
// strings that are not fetchable URLs.
#include <nlohmann/json.hpp>

#include <functional>
#include <optional>
#include <variant>
#include <string>
#include <vector>

#include "common/db.h"
#include "common/model.h"
#include "producer/batch_request.h"

namespace feedpipe::producer {

struct CreatedBatch {
  std::string batch_id;
  std::vector<JobMessage> jobs;    // to publish (fetchable URLs only)
  std::vector<EventMessage> events;  // written at once (failed jobs, maybe batch.completed)
  bool replayed = false;           // an Idempotency-Key repeat: nothing new was written
};

// The partition of feed.refresh.jobs a job message keyed by this (normalized) feed URL goes to.
using JobPartitioner = std::function<int32_t(const std::string& url)>;

// Writes the batch. With `partition_of`, the jobs (and the feeds it creates) are numbered
// partition by partition (see write_order in the .cpp); without it, in submitted order. With an
// idempotency key, a repeat of the same body returns the first batch (replayed) and another body
// under the same key is a 422 Refusal. A checkpoint the commit makes due is left for the caller
// to run once the jobs are published (Database::run_due_checkpoint).
std::variant<CreatedBatch, Refusal> create_batch(Database& db, const BatchRequest& request,
                                                 const std::string& idempotency_key,
                                                 const std::string& body,
                                                 const JobPartitioner& partition_of = {});

std::string new_batch_id();  // time-ordered: sorts by creation time

// 64-bit FNV-1a of `s` as 16 hex digits: request fingerprints and ETags.
std::string fnv1a_hex(const std::string& s);

}  // namespace feedpipe::producer
